/* cp-etcd-watch-private.h: one `/v3/watch` on a key prefix, read line by line
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared by CpEtcdDiscovery and CpEtcdRegistry: opens the watch from a
 * revision, reads its lines (one JSON object each, at most
 * CP_WATCH_MAX_LINE bytes) as they come, parses
 * them (cp_etcd_parse_watch_line ()) and tells its owner what they say.
 * What to do when the watch ends (list again, or retry after a delay) is
 * the owner's: a watch that ended stays dropped until opened again.
 *
 * The callbacks run in the thread-default context of the open () call,
 * with the owner held; never after cp_etcd_watch_drop () or _free ().
 */
#pragma once

#include "cp-etcd-client-private.h"

G_BEGIN_DECLS

typedef struct _CpEtcdWatch CpEtcdWatch;

typedef struct {
  /* etcd created the watch (a `created` line): it is live */
  void (*created) (GObject *owner);
  /* the events of one response, CpEtcdKv's, in order */
  void (*events)  (GObject *owner, GPtrArray *events);
  /* the watch is over and dropped: @compacted when the start revision was
   * compacted away (list again), else it broke or etcd cancelled it
   * (retry later); @error says why, when known */
  void (*ended)   (GObject *owner, gboolean compacted, const GError *error);
} CpEtcdWatchCallbacks;

/* @owner is not referenced but while a callback runs; @name prefixes the
 * debug messages ("etcd discovery"). */
CpEtcdWatch *cp_etcd_watch_new  (CpEtcdClient               *client,
                                 const char                 *prefix,
                                 const char                 *name,
                                 const CpEtcdWatchCallbacks *callbacks,
                                 GObject                    *owner);
/* Drops the current watch, if any, and opens one for the keys under the
 * prefix from @start_revision; @cancellable cancels the opening. */
void         cp_etcd_watch_open (CpEtcdWatch                *watch,
                                 gint64                      start_revision,
                                 GCancellable               *cancellable);
/* Ends the current watch: its pending read is cancelled, so its HTTP
 * connection goes away with the stream. No callback follows. */
void         cp_etcd_watch_drop (CpEtcdWatch                *watch);
void         cp_etcd_watch_free (CpEtcdWatch                *watch);

G_END_DECLS
