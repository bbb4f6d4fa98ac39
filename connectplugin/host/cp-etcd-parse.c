/* cp-etcd-parse.c: reading what etcd's JSON gateway answers, and the registry's entries
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here reads network bytes: a malformed answer is a GError
 * (`internal`, or the gateway's own gRPC code), never an assertion.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cp-etcd-client-private.h"
#include "cp-error.h"
#include "cp-registry-private.h"

/* Larger values are not ours (an entry is a few hundred bytes). */
#define MAX_ENTRY_SIZE (64 * 1024)

void
cp_etcd_kv_free (CpEtcdKv *kv)
{
  if (kv == NULL)
    return;
  g_free (kv->key);
  g_clear_pointer (&kv->value, g_bytes_unref);
  g_free (kv);
}

void
cp_etcd_watch_result_clear (CpEtcdWatchResult *result)
{
  g_clear_pointer (&result->events, g_ptr_array_unref);
  memset (result, 0, sizeof *result);
}

void
cp_etcd_entry_free (CpEtcdEntry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->name);
  g_free (entry->url);
  g_free (entry->version);
  g_clear_pointer (&entry->metadata, g_hash_table_unref);
  g_free (entry);
}

char *
cp_etcd_prefix_end (const char *prefix)
{
  gsize len = strlen (prefix);
  g_autofree char *end = g_strdup (prefix);

  /* The first key after every key starting with @prefix: its last byte
   * below 0xff plus one, the rest dropped. All-0xff (or empty): no end,
   * which etcd spells "\0" (every key). */
  while (len > 0)
    {
      if ((guchar) end[len - 1] < 0xff)
        {
          end[len - 1]++;
          end[len] = '\0';
          return g_steal_pointer (&end);
        }
      len--;
    }
  return g_strdup ("");
}

void
cp_etcd_set_bytes (JsonObject *object,
                   const char *member,
                   const char *value,
                   gsize       len)
{
  g_autofree char *encoded = g_base64_encode ((const guchar *) value, len);

  json_object_set_string_member (object, member, encoded);
}

/* @what names the text in messages ("etcd", "etcd entry"). */
static JsonObject *
parse_object (const char  *data,
              gsize        len,
              const char  *what,
              GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;

  if (len == 0 || !json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "%s: not JSON%s%s", what,
                   local_error != NULL ? ": " : "",
                   local_error != NULL ? local_error->message : "");
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "%s: not a JSON object", what);
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

/* The gateway's error, `{"error":"…","message":"…","code":N}` (in a
 * stream, `{"error":{"grpc_code":N,"message":"…",…}}`): the GError it
 * means, with the gRPC code as the Connect code (the same numbers). */
static gboolean
take_gateway_error (JsonObject  *object,
                    GError     **error)
{
  JsonNode *node = json_object_get_member (object, "error");
  JsonObject *details = object;
  const char *message = NULL;
  gint64 code = CP_ERROR_UNKNOWN;

  if (node == NULL)
    return FALSE;
  if (JSON_NODE_HOLDS_OBJECT (node))
    details = json_node_get_object (node);
  node = json_object_get_member (details, "message");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    message = json_node_get_string (node);
  /* Unary answers say "code", the lines of a stream "grpc_code". */
  node = json_object_get_member (details, "code");
  if (node == NULL)
    node = json_object_get_member (details, "grpc_code");
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
    code = json_node_get_int (node);
  if (code < CP_ERROR_CANCELED || code > CP_ERROR_UNAUTHENTICATED)
    code = CP_ERROR_UNKNOWN;
  g_set_error (error, CP_ERROR, (int) code, "etcd: %s", message != NULL ? message : "error");
  return TRUE;
}

JsonObject *
cp_etcd_parse_response (const char  *data,
                        gsize        len,
                        GError     **error)
{
  g_autoptr(JsonObject) object = parse_object (data, len, "etcd", error);

  if (object == NULL)
    return NULL;
  if (take_gateway_error (object, error))
    return NULL;
  return g_steal_pointer (&object);
}

gboolean
cp_etcd_get_int64 (JsonObject  *object,
                   const char  *member,
                   gint64      *out,
                   GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);
  const char *text;
  char *end = NULL;
  gint64 value;

  *out = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
    {
      *out = json_node_get_int (node);
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    goto bad;
  text = json_node_get_string (node);
  if (text[0] == '\0' || g_ascii_isspace (text[0]))
    goto bad;
  errno = 0;
  value = g_ascii_strtoll (text, &end, 10);
  if (errno != 0 || *end != '\0')
    goto bad;
  *out = value;
  return TRUE;

bad:
  g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: \"%s\" is not an integer", member);
  return FALSE;
}

static gboolean
get_bytes (JsonObject  *object,
           const char  *member,
           GBytes     **out,
           GError     **error)
{
  JsonNode *node = json_object_get_member (object, member);
  guchar *data;
  gsize len = 0;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *out = g_bytes_new (NULL, 0);
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: \"%s\" is not base64", member);
      return FALSE;
    }
  data = g_base64_decode (json_node_get_string (node), &len);
  *out = g_bytes_new_take (data, len);
  return TRUE;
}

static gboolean
get_header_revision (JsonObject  *object,
                     gint64      *revision,
                     GError     **error)
{
  JsonNode *node = json_object_get_member (object, "header");

  *revision = 0;
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: the answer has no header");
      return FALSE;
    }
  return cp_etcd_get_int64 (json_node_get_object (node), "revision", revision, error);
}

static CpEtcdKv *
parse_kv (JsonNode  *node,
          GError   **error)
{
  g_autoptr(CpEtcdKv) kv = g_new0 (CpEtcdKv, 1);
  g_autoptr(GBytes) key = NULL;
  JsonObject *object;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: a key-value is not an object");
      return NULL;
    }
  object = json_node_get_object (node);
  if (!get_bytes (object, "key", &key, error) ||
      !get_bytes (object, "value", &kv->value, error) ||
      !cp_etcd_get_int64 (object, "mod_revision", &kv->mod_revision, error))
    return NULL;
  kv->key = g_bytes_get_size (key) > 0
             ? g_strndup (g_bytes_get_data (key, NULL), g_bytes_get_size (key))
             : g_strdup ("");
  return g_steal_pointer (&kv);
}

gboolean
cp_etcd_parse_range (JsonObject  *response,
                     gint64      *revision,
                     GPtrArray   *kvs,
                     GError     **error)
{
  JsonNode *node;
  JsonArray *array;

  if (!get_header_revision (response, revision, error))
    return FALSE;
  node = json_object_get_member (response, "kvs");
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: \"kvs\" is not an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      CpEtcdKv *kv = parse_kv (json_array_get_element (array, i), error);

      if (kv == NULL)
        return FALSE;
      g_ptr_array_add (kvs, kv);
    }
  return TRUE;
}

static gboolean
get_bool (JsonObject *object,
          const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_BOOLEAN && json_node_get_boolean (node);
}

static gboolean
parse_events (JsonObject         *object,
              CpEtcdWatchResult  *result,
              GError            **error)
{
  JsonNode *node = json_object_get_member (object, "events");
  JsonArray *array;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: \"events\" is not an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *event = json_array_get_element (array, i);
      const char *type = NULL;
      CpEtcdKv *kv;

      if (!JSON_NODE_HOLDS_OBJECT (event))
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: an event is not an object");
          return FALSE;
        }
      /* "type" is absent for PUT, proto3 JSON's default. */
      node = json_object_get_member (json_node_get_object (event), "type");
      if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
        type = json_node_get_string (node);
      else if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: bad event type");
          return FALSE;
        }
      kv = parse_kv (json_object_get_member (json_node_get_object (event), "kv"), error);
      if (kv == NULL)
        return FALSE;
      kv->deleted = g_strcmp0 (type, "DELETE") == 0;
      g_ptr_array_add (result->events, kv);
    }
  return TRUE;
}

gboolean
cp_etcd_parse_watch_line (const char         *line,
                          gsize               len,
                          CpEtcdWatchResult  *result,
                          GError            **error)
{
  g_autoptr(JsonObject) object = parse_object (line, len, "etcd watch", error);
  JsonNode *node;
  JsonObject *body;

  memset (result, 0, sizeof *result);
  result->events = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_etcd_kv_free);
  if (object == NULL || take_gateway_error (object, error))
    return FALSE;
  node = json_object_get_member (object, "result");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd: a watch line has no result");
      return FALSE;
    }
  body = json_node_get_object (node);
  /* A cancellation for compaction carries no revision in its header. */
  node = json_object_get_member (body, "header");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node) &&
      !cp_etcd_get_int64 (json_node_get_object (node), "revision", &result->revision, error))
    return FALSE;
  if (!cp_etcd_get_int64 (body, "compact_revision", &result->compact_revision, error))
    return FALSE;
  result->created = get_bool (body, "created");
  result->canceled = get_bool (body, "canceled");
  return parse_events (body, result, error);
}

static const char *
get_string (JsonObject *object,
            const char *member,
            gboolean   *bad)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      *bad = TRUE;
      return NULL;
    }
  return json_node_get_string (node);
}

static gboolean
parse_metadata (JsonObject  *object,
                GHashTable  *metadata,
                GError     **error)
{
  JsonNode *node = json_object_get_member (object, "metadata");
  JsonObjectIter iter;
  const char *member;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    goto bad;
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &member, &node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        goto bad;
      g_hash_table_replace (metadata, g_strdup (member), g_strdup (json_node_get_string (node)));
    }
  return TRUE;

bad:
  g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "etcd entry: \"metadata\" is not an object of strings");
  return FALSE;
}

CpEtcdEntry *
cp_etcd_entry_parse (const char  *data,
                     gsize        len,
                     GError     **error)
{
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(CpEtcdEntry) entry = NULL;
  const char *name, *url, *version;
  gboolean bad = FALSE;

  if (len > MAX_ENTRY_SIZE)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd entry: %" G_GSIZE_FORMAT
                   " bytes, more than %d", len, MAX_ENTRY_SIZE);
      return NULL;
    }
  object = parse_object (data, len, "etcd entry", error);
  if (object == NULL)
    return NULL;
  name = get_string (object, "name", &bad);
  url = get_string (object, "url", &bad);
  version = get_string (object, "version", &bad);
  if (bad || name == NULL || url == NULL || name[0] == '\0' ||
      !(g_str_has_prefix (url, "http://") || g_str_has_prefix (url, "https://") ||
        g_str_has_prefix (url, "unix:")))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "etcd entry: needs a \"name\" and an http://, https:// or unix: \"url\"");
      return NULL;
    }
  entry = g_new0 (CpEtcdEntry, 1);
  entry->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!parse_metadata (object, entry->metadata, error))
    return NULL;
  entry->name = g_strdup (name);
  entry->url = g_strdup (url);
  entry->version = g_strdup (version);
  return g_steal_pointer (&entry);
}

char *
cp_etcd_entry_to_json (const char *name,
                       const char *url,
                       const char *version,
                       GHashTable *metadata)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "name");
  json_builder_add_string_value (builder, name);
  json_builder_set_member_name (builder, "url");
  json_builder_add_string_value (builder, url);
  if (version != NULL)
    {
      json_builder_set_member_name (builder, "version");
      json_builder_add_string_value (builder, version);
    }
  json_builder_set_member_name (builder, "metadata");
  json_builder_begin_object (builder);
  if (metadata != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, metadata);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          json_builder_set_member_name (builder, key);
          json_builder_add_string_value (builder, value);
        }
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}

/* ---- the broker's service registry in etcd (CpEtcdRegistry) ---- */

#define MAX_ID_LEN 128

void
cp_etcd_service_free (CpEtcdService *service)
{
  if (service == NULL)
    return;
  g_free (service->registration_id);
  g_free (service->service_type);
  g_free (service->version);
  g_free (service->provider_id);
  g_free (service->host_id);
  g_free (service->router_url);
  g_clear_pointer (&service->metadata, g_hash_table_unref);
  g_free (service);
}

/* An id that can stand in a key or a router path: 1 to MAX_ID_LEN bytes of
 * printable ASCII without `/`, `?`, `%` or `#`. */
static gboolean
valid_id (const char *id)
{
  gsize len = id != NULL ? strlen (id) : 0;

  if (len == 0 || len > MAX_ID_LEN || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (*p <= ' ' || *p >= 0x7f || strchr ("/?%#", *p) != NULL)
      return FALSE;
  return TRUE;
}

static const char * const health_names[] = { NULL, "healthy", "degraded", "unhealthy" };

CpEtcdService *
cp_etcd_service_parse (const char  *data,
                       gsize        len,
                       GError     **error)
{
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(CpEtcdService) service = NULL;
  g_autoptr(GUri) uri = NULL;
  const char *registration_id, *type, *version, *provider_id, *host_id, *router_url, *health;
  gboolean bad = FALSE;

  if (len > MAX_ENTRY_SIZE)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "etcd service entry: %" G_GSIZE_FORMAT
                   " bytes, more than %d", len, MAX_ENTRY_SIZE);
      return NULL;
    }
  object = parse_object (data, len, "etcd service entry", error);
  if (object == NULL)
    return NULL;
  registration_id = get_string (object, "registration_id", &bad);
  type = get_string (object, "service_type", &bad);
  version = get_string (object, "version", &bad);
  provider_id = get_string (object, "provider_id", &bad);
  host_id = get_string (object, "host_id", &bad);
  router_url = get_string (object, "router_url", &bad);
  health = get_string (object, "health", &bad);
  if (bad || !valid_id (registration_id) || !valid_id (provider_id) || !valid_id (host_id) ||
      type == NULL || version == NULL || router_url == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "etcd service entry: needs string \"registration_id\", \"service_type\", "
                           "\"version\", \"provider_id\", \"host_id\" and \"router_url\"");
      return NULL;
    }
  if (!cp_registry_validate_service_type (type, error) ||
      !cp_registry_validate_version (version, error))
    {
      g_prefix_error (error, "etcd service entry: ");
      return NULL;
    }
  uri = g_uri_parse (router_url, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL || g_uri_get_host (uri)[0] == '\0' ||
      (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 &&
       g_strcmp0 (g_uri_get_scheme (uri), "https") != 0))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "etcd service entry: \"router_url\" is not an http or https URL");
      return NULL;
    }
  service = g_new0 (CpEtcdService, 1);
  service->health = 1;
  for (guint i = 1; health != NULL && i < G_N_ELEMENTS (health_names); i++)
    if (strcmp (health, health_names[i]) == 0)
      service->health = i;
  service->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!parse_metadata (object, service->metadata, error))
    return NULL;
  if (!cp_registry_validate_metadata (service->metadata, error))
    {
      g_prefix_error (error, "etcd service entry: ");
      return NULL;
    }
  service->registration_id = g_strdup (registration_id);
  service->service_type = g_strdup (type);
  service->version = g_strdup (version);
  service->provider_id = g_strdup (provider_id);
  service->host_id = g_strdup (host_id);
  service->router_url = g_strdup (router_url);
  return g_steal_pointer (&service);
}

char *
cp_etcd_service_to_json (const CpEtcdService *service)
{
  g_autoptr(JsonBuilder) builder = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  const char *members[][2] = {
    { "registration_id", service->registration_id },
    { "service_type", service->service_type },
    { "version", service->version },
    { "provider_id", service->provider_id },
    { "host_id", service->host_id },
    { "router_url", service->router_url },
    { "health", health_names[CLAMP (service->health, 1, 3)] },
  };

  json_builder_begin_object (builder);
  for (guint i = 0; i < G_N_ELEMENTS (members); i++)
    {
      json_builder_set_member_name (builder, members[i][0]);
      json_builder_add_string_value (builder, members[i][1]);
    }
  json_builder_set_member_name (builder, "metadata");
  json_builder_begin_object (builder);
  if (service->metadata != NULL)
    {
      g_autoptr(GList) keys = g_list_sort (g_hash_table_get_keys (service->metadata),
                                           (GCompareFunc) strcmp);

      for (GList *l = keys; l != NULL; l = l->next)
        {
          json_builder_set_member_name (builder, l->data);
          json_builder_add_string_value (builder, g_hash_table_lookup (service->metadata, l->data));
        }
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  return json_to_string (root, FALSE);
}
