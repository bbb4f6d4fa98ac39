/* cp-memory.c: giving freed memory back to the system when idle
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-memory-private.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Long enough to coalesce a burst of closes, short enough that RSS comes
 * back soon after the load. */
#define TRIM_DELAY_MS 1000
/* A pending trim whose context stopped running (its server is gone) does
 * not block later ones for longer than this. */
#define TRIM_STALE_US (30 * G_USEC_PER_SEC)

static GMutex trim_lock;
static gint64 trim_scheduled_at;  /* monotonic µs; 0: none pending */
static guint n_trims;

static gboolean
trim_cb (gpointer user_data)
{
  g_mutex_lock (&trim_lock);
  trim_scheduled_at = 0;
  n_trims++;
  g_mutex_unlock (&trim_lock);
#ifdef __GLIBC__
  malloc_trim (0);
#endif
  return G_SOURCE_REMOVE;
}

void
cp_memory_trim_soon (void)
{
  g_autoptr(GMainContext) context = NULL;
  GSource *source;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&trim_lock);
  if (trim_scheduled_at != 0 && now - trim_scheduled_at < TRIM_STALE_US)
    {
      g_mutex_unlock (&trim_lock);
      return;
    }
  trim_scheduled_at = now;
  g_mutex_unlock (&trim_lock);

  context = g_main_context_ref_thread_default ();
  source = g_timeout_source_new (TRIM_DELAY_MS);
  g_source_set_priority (source, G_PRIORITY_LOW);
  g_source_set_callback (source, trim_cb, NULL, NULL);
  g_source_set_static_name (source, "[connectplugin] malloc_trim");
  g_source_attach (source, context);
  g_source_unref (source);
}

guint
cp_memory_get_n_trims (void)
{
  guint n;

  g_mutex_lock (&trim_lock);
  n = n_trims;
  g_mutex_unlock (&trim_lock);
  return n;
}
