/* fuzz-etcd-response.c: what etcd's JSON gateway answers, through our parsers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The first byte picks the reader: a unary answer (range), the lines of a
 * watch stream, a registry entry (the value stored under a key), or a
 * service entry of the broker's registry (CpEtcdRegistry).
 * Whatever the bytes, each reader either succeeds with a consistent result
 * or fails with a CP_ERROR — never both, never neither.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "cp-etcd-client-private.h"
#include "cp-error.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_error (gboolean  ok,
             GError   *error)
{
  if (ok)
    g_assert_null (error);
  else
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == CP_ERROR);
      g_assert_nonnull (error->message);
    }
}

static void
fuzz_range (const char *text,
            gsize       len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) object = cp_etcd_parse_response (text, len, &error);
  g_autoptr(GPtrArray) kvs = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_etcd_kv_free);
  gint64 revision = -1;
  gboolean ok;

  check_error (object != NULL, error);
  if (object == NULL)
    return;
  ok = cp_etcd_parse_range (object, &revision, kvs, &error);
  check_error (ok, error);
  for (guint i = 0; ok && i < kvs->len; i++)
    {
      CpEtcdKv *kv = kvs->pdata[i];

      g_assert_nonnull (kv->key);
      g_assert_nonnull (kv->value);
      g_assert_false (kv->deleted);
    }
}

static void
fuzz_watch (const char *text,
            gsize       len)
{
  const char *end = text + len;

  while (text < end)
    {
      const char *nl = memchr (text, '\n', end - text);
      gsize n = (nl != NULL ? nl : end) - text;
      g_autoptr(GError) error = NULL;
      CpEtcdWatchResult result;
      gboolean ok = cp_etcd_parse_watch_line (text, n, &result, &error);

      check_error (ok, error);
      g_assert_nonnull (result.events);
      for (guint i = 0; ok && i < result.events->len; i++)
        g_assert_nonnull (((CpEtcdKv *) result.events->pdata[i])->key);
      cp_etcd_watch_result_clear (&result);
      text += n + (nl != NULL);
    }
}

static void
fuzz_entry (const char *text,
            gsize       len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpEtcdEntry) entry = cp_etcd_entry_parse (text, len, &error);

  check_error (entry != NULL, error);
  if (entry != NULL)
    {
      g_autofree char *json = cp_etcd_entry_to_json (entry->name, entry->url, entry->version,
                                                     entry->metadata);
      g_autoptr(CpEtcdEntry) again = cp_etcd_entry_parse (json, strlen (json), &error);

      /* What parses writes back to the same entry. */
      g_assert_no_error (error);
      g_assert_cmpstr (again->name, ==, entry->name);
      g_assert_cmpstr (again->url, ==, entry->url);
      g_assert_cmpstr (again->version, ==, entry->version);
      g_assert_cmpuint (g_hash_table_size (again->metadata), ==, g_hash_table_size (entry->metadata));
    }
}

static void
fuzz_service (const char *text,
              gsize       len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpEtcdService) service = cp_etcd_service_parse (text, len, &error);

  check_error (service != NULL, error);
  if (service != NULL)
    {
      g_autofree char *json = cp_etcd_service_to_json (service);
      g_autoptr(CpEtcdService) again = cp_etcd_service_parse (json, strlen (json), &error);

      /* What parses writes back to the same entry. */
      g_assert_no_error (error);
      g_assert_cmpstr (again->registration_id, ==, service->registration_id);
      g_assert_cmpstr (again->service_type, ==, service->service_type);
      g_assert_cmpstr (again->version, ==, service->version);
      g_assert_cmpstr (again->provider_id, ==, service->provider_id);
      g_assert_cmpstr (again->host_id, ==, service->host_id);
      g_assert_cmpstr (again->router_url, ==, service->router_url);
      g_assert_cmpint (again->health, ==, service->health);
      g_assert_cmpuint (g_hash_table_size (again->metadata), ==,
                        g_hash_table_size (service->metadata));
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = (const char *) data + 1;

  if (size == 0)
    return 0;
  switch (data[0] % 4)
    {
    case 0:
      fuzz_range (text, size - 1);
      break;
    case 1:
      fuzz_watch (text, size - 1);
      break;
    case 2:
      fuzz_entry (text, size - 1);
      break;
    default:
      fuzz_service (text, size - 1);
      break;
    }
  return 0;
}
