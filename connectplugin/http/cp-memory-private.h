/* cp-memory-private.h: giving freed memory back to the system
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Schedules one malloc_trim (0) (glibc; elsewhere nothing) on a
 * low-priority timeout in the thread-default context, after large
 * transient allocations (a big request body) or closed connections:
 * glibc keeps freed memory in its arenas, so RSS would otherwise stay at
 * its peak. Calls while one is pending are coalesced; cheap enough for
 * every connection close, not meant for every request. */
void cp_memory_trim_soon (void);

/* How many trims have run (tests). */
guint cp_memory_get_n_trims (void);

G_END_DECLS
