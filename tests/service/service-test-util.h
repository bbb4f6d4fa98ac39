/* service-test-util.h: small helpers shared by the service-layer tests
 * (tests/service) and the generator's service tests (tests/codegen)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <string.h>
#include <glib-object.h>
#include <gio/gio.h>

/* A GAsyncReadyCallback storing the result in *user_data (a GAsyncResult **). */
static inline void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **slot = user_data;

  g_assert_null (*slot);
  *slot = g_object_ref (result);
}

/* Iterates the thread-default context until store_result() filled *slot. */
static inline GAsyncResult *
wait_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static inline GBytes *
bytes_from_string (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

static inline void
assert_bytes_equal (GBytes     *bytes,
                    const char *expected)
{
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  g_assert_cmpmem (data, size, expected, strlen (expected));
}
