/* drain-plugin.h: a plugin server whose calls can be held, for graceful-shutdown tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <connectplugin.h>
#include "hosttest.cp.h"

G_BEGIN_DECLS

/* A CpServer serving plugin "echo" (hosttest.v1.EchoService) on
 * 127.0.0.1:0. Say answers "TAG:TEXT"; a Say of "slow" is held until
 * drain_plugin_release (). */
typedef struct {
  CpServer *server;
  char *url;          /* http://127.0.0.1:PORT */
  guint16 port;
  char *tag;
  GPtrArray *held;    /* CpInvocation of the Say calls held */
  HosttestEchoService *impl;
  guint calls;        /* Say calls received */
} DrainPlugin;

DrainPlugin *drain_plugin_new     (const char  *tag);
void         drain_plugin_release (DrainPlugin *plugin);
void         drain_plugin_free    (DrainPlugin *plugin);

/* One Say through @proxy, run to completion in the thread-default context:
 * the answer, or NULL with *@error set. */
char        *drain_say            (CpProxy     *proxy,
                                   const char  *text,
                                   GError     **error);

/* Starts a Say through @proxy; *@done becomes TRUE when it is over, with
 * *@answer or *@error set. */
void         drain_say_start      (CpProxy     *proxy,
                                   const char  *text,
                                   gboolean    *done,
                                   char       **answer,
                                   GError     **error);

/* cp_client_connect_async () run to completion in the thread-default
 * context (the plugin servers of the tests run in it too, so the
 * blocking connect_sync () would starve them). */
gboolean     drain_connect        (CpClient    *client,
                                   GError     **error);

G_END_DECLS
