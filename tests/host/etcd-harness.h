/* etcd-harness.h: a real etcd (Debian's etcd-server) per test program
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* One etcd on 127.0.0.1 (free client and peer ports), its data in a
 * private temporary directory. The child gets SIGKILL if the test program
 * dies first (PR_SET_PDEATHSIG), so a failed assertion leaves no etcd. */
typedef struct {
  GSubprocess *process;
  char *dir;          /* temporary: data/ and etcd.log */
  guint client_port;
  guint peer_port;
  char *url;          /* http://127.0.0.1:CLIENT_PORT */
} EtcdHarness;

/* The etcd program: $CP_ETCD or /usr/bin/etcd; NULL when absent. */
const char  *etcd_harness_program (void);
/* Starts etcd and waits until it answers (g_error after 30 s). Exits 77
 * (skip) with a message when there is no etcd. */
EtcdHarness *etcd_harness_start   (void);
/* SIGKILL, waited for. */
void         etcd_harness_kill    (EtcdHarness *etcd);
/* Starts it again on the same ports and data directory. */
void         etcd_harness_restart (EtcdHarness *etcd);
/* Kills it and removes its directory. */
void         etcd_harness_free    (EtcdHarness *etcd);
/* A blocking call to the JSON gateway (its own session and context, so
 * the thread-default context does not run meanwhile): the response
 * object; g_error on failure. */
JsonObject  *etcd_harness_call    (EtcdHarness *etcd,
                                   const char  *path,
                                   const char  *json);
/* put KEY=VALUE (plain strings; @lease 0 for none); answers the revision. */
gint64       etcd_harness_put     (EtcdHarness *etcd,
                                   const char  *key,
                                   const char  *value,
                                   gint64       lease);
void         etcd_harness_delete  (EtcdHarness *etcd,
                                   const char  *key);
/* Compacts up to the current revision; answers it. */
gint64       etcd_harness_compact (EtcdHarness *etcd);
gint64       etcd_harness_grant   (EtcdHarness *etcd,
                                   int          ttl);

/* Iterates the thread-default context until *flag, failing the test
 * after @seconds. */
void         etcd_harness_wait    (gboolean    *flag,
                                   guint        seconds);

G_END_DECLS
