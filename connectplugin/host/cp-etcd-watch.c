/* cp-etcd-watch.c: one `/v3/watch` on a key prefix, read line by line
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-etcd-watch-private.h"
#include "cp-line-reader-private.h"

struct _CpEtcdWatch
{
  CpEtcdClient *client;
  char *prefix;
  char *range_end;
  char *name;
  const CpEtcdWatchCallbacks *callbacks;
  GObject *owner;

  guint generation;              /* bumped by each open and drop */
  CpLineReader *stream;          /* the current watch's body, by line */
  GCancellable *cancellable;     /* its reads */
};

typedef struct {
  CpEtcdWatch *watch;
  guint generation;
} Opening;

static void read_line (CpEtcdWatch *watch);

CpEtcdWatch *
cp_etcd_watch_new (CpEtcdClient               *client,
                   const char                 *prefix,
                   const char                 *name,
                   const CpEtcdWatchCallbacks *callbacks,
                   GObject                    *owner)
{
  CpEtcdWatch *watch = g_new0 (CpEtcdWatch, 1);

  watch->client = g_object_ref (client);
  watch->prefix = g_strdup (prefix);
  watch->range_end = cp_etcd_prefix_end (prefix);
  watch->name = g_strdup (name);
  watch->callbacks = callbacks;
  watch->owner = owner;
  return watch;
}

void
cp_etcd_watch_drop (CpEtcdWatch *watch)
{
  watch->generation++;
  if (watch->cancellable != NULL)
    g_cancellable_cancel (watch->cancellable);
  g_clear_object (&watch->cancellable);
  g_clear_object (&watch->stream);
}

void
cp_etcd_watch_free (CpEtcdWatch *watch)
{
  if (watch == NULL)
    return;
  cp_etcd_watch_drop (watch);
  g_object_unref (watch->client);
  g_free (watch->prefix);
  g_free (watch->range_end);
  g_free (watch->name);
  g_free (watch);
}

/* The watch is over: dropped, then the owner is told (it may open again). */
static void
end (CpEtcdWatch  *watch,
     gboolean      compacted,
     const GError *error)
{
  cp_etcd_watch_drop (watch);
  watch->callbacks->ended (watch->owner, compacted, error);
}

/* One line. Returns FALSE when the watch is over. */
static gboolean
handle_line (CpEtcdWatch *watch,
             const char  *line,
             gsize        len)
{
  CpEtcdWatchResult result;
  g_autoptr(GError) error = NULL;
  gboolean ok = cp_etcd_parse_watch_line (line, len, &result, &error);

  if (!ok)
    {
      g_debug ("%s: watch: %s", watch->name, error->message);
      cp_etcd_watch_result_clear (&result);
      end (watch, FALSE, error);
      return FALSE;
    }
  if (result.compact_revision > 0)
    {
      /* The revisions asked for are gone: what changed meanwhile can only
       * be learnt by listing again. */
      g_debug ("%s: compacted at revision %" G_GINT64_FORMAT ", listing again", watch->name,
               result.compact_revision);
      cp_etcd_watch_result_clear (&result);
      end (watch, TRUE, NULL);
      return FALSE;
    }
  if (result.canceled)
    {
      g_debug ("%s: etcd cancelled the watch", watch->name);
      cp_etcd_watch_result_clear (&result);
      end (watch, FALSE, NULL);
      return FALSE;
    }
  if (result.created)
    watch->callbacks->created (watch->owner);
  if (result.events->len > 0)
    watch->callbacks->events (watch->owner, result.events);
  cp_etcd_watch_result_clear (&result);
  return TRUE;
}

static void
read_line_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CpEtcdWatch *watch = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autoptr(GObject) hold = NULL;
  gsize len = 0;

  line = cp_line_reader_read_line_finish (CP_LINE_READER (source), result, &len, &error);
  /* Cancelled: this watch was dropped, maybe with its owner (and @watch). */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (CP_LINE_READER (source) != watch->stream)
    return;   /* a stale stream: a newer watch took over */
  hold = g_object_ref (watch->owner);   /* its handlers may drop the others */
  if (line == NULL)
    {
      g_debug ("%s: watch ended%s%s", watch->name, error != NULL ? ": " : "",
               error != NULL ? error->message : "");
      end (watch, FALSE, error);
    }
  else if ((len == 0 || handle_line (watch, line, len)) &&
           CP_LINE_READER (source) == watch->stream)
    read_line (watch);
}

static void
read_line (CpEtcdWatch *watch)
{
  cp_line_reader_read_line_async (watch->stream, watch->cancellable, read_line_cb, watch);
}

static void
opened_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Opening *opening = user_data;
  CpEtcdWatch *watch = opening->watch;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GObject) hold = NULL;
  gboolean current;

  stream = cp_etcd_client_watch_finish (CP_ETCD_CLIENT (source), result, &error);
  /* Cancelled: the opening was abandoned, maybe with the owner. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_free (opening);
      return;
    }
  current = opening->generation == watch->generation;
  g_free (opening);
  if (!current)
    return;   /* dropped or opened again meanwhile */
  if (stream == NULL)
    {
      g_debug ("%s: %s", watch->name, error->message);
      hold = g_object_ref (watch->owner);
      end (watch, FALSE, error);
      return;
    }
  watch->stream = cp_line_reader_new (stream, CP_WATCH_MAX_LINE);
  watch->cancellable = g_cancellable_new ();
  read_line (watch);
}

void
cp_etcd_watch_open (CpEtcdWatch  *watch,
                    gint64        start_revision,
                    GCancellable *cancellable)
{
  Opening *opening = g_new0 (Opening, 1);

  cp_etcd_watch_drop (watch);
  opening->watch = watch;
  opening->generation = watch->generation;
  cp_etcd_client_watch_async (watch->client, watch->prefix, watch->range_end, start_revision,
                              cancellable, opened_cb, opening);
}
