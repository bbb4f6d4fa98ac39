/* cp-kubernetes-parse.c: EndpointSlices, lists of them and watch events, from the apiserver's JSON
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Only what discovery needs is read: a slice's name, its ports (to find the
 * one followed) and, per endpoint, the first address, the ready condition
 * and a name. Anything of the wrong shape is a CP_ERROR_INTERNAL (the
 * apiserver broke the API contract), never a crash.
 */
#include <string.h>

#include "cp-kubernetes-private.h"
#include "cp-error.h"

#define MAX_NAME 253

static gboolean
bad (GError     **error,
     const char  *what)
{
  g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "apiserver answer: %s", what);
  return FALSE;
}

static JsonObject *
get_object (JsonObject *object,
            const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
get_array (JsonObject *object,
           const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static const char *
get_string (JsonObject *object,
            const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
get_int (JsonObject *object,
         const char *name,
         gint64     *out)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (node);
  return TRUE;
}

/* An address the discovery can dial: an IP address or a DNS name. */
static gboolean
valid_address (const char *address)
{
  gsize len = address != NULL ? strlen (address) : 0;

  if (len == 0 || len > MAX_NAME)
    return FALSE;
  if (g_hostname_is_ip_address (address))
    return TRUE;
  for (const char *p = address; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
      return FALSE;
  return address[0] != '-' && address[0] != '.';
}

/* @name in lower case with anything but [a-z0-9-] as '-'. */
static char *
url_safe_name (const char *name)
{
  char *safe = g_ascii_strdown (name, MIN (strlen (name), (gsize) MAX_NAME));

  for (char *p = safe; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-')
      *p = '-';
  return safe;
}

static void
endpoint_free (gpointer data)
{
  CpKubeEndpoint *endpoint = data;

  g_free (endpoint->name);
  g_free (endpoint->address);
  g_free (endpoint);
}

void
cp_kube_slice_free (CpKubeSlice *slice)
{
  if (slice == NULL)
    return;
  g_free (slice->name);
  g_clear_pointer (&slice->endpoints, g_ptr_array_unref);
  g_free (slice);
}

/* The port followed in @ports: named @port_name, or the first. */
static gboolean
find_port (JsonArray   *ports,
           const char  *port_name,
           guint16     *out_port,
           gboolean    *out_tls)
{
  for (guint i = 0; ports != NULL && i < json_array_get_length (ports); i++)
    {
      JsonNode *node = json_array_get_element (ports, i);
      JsonObject *port = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *name = get_string (port, "name");
      const char *app = get_string (port, "appProtocol");
      gint64 number = 0;

      if (port_name != NULL && g_strcmp0 (name != NULL ? name : "", port_name) != 0)
        continue;
      if (!get_int (port, "port", &number) || number < 1 || number > 65535)
        return FALSE;
      *out_port = (guint16) number;
      *out_tls = g_strcmp0 (app, "https") == 0 || g_strcmp0 (name, "https") == 0 ||
                 (name != NULL && g_str_has_prefix (name, "https-"));
      return TRUE;
    }
  return FALSE;
}

static CpKubeEndpoint *
parse_endpoint (JsonNode *node,
                guint16   port,
                gboolean  tls)
{
  JsonObject *object = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonArray *addresses = get_array (object, "addresses");
  JsonObject *conditions = get_object (object, "conditions");
  JsonNode *ready = conditions != NULL ? json_object_get_member (conditions, "ready") : NULL;
  const char *address, *name;
  CpKubeEndpoint *endpoint;

  if (addresses == NULL || json_array_get_length (addresses) == 0)
    return NULL;
  node = json_array_get_element (addresses, 0);
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  address = json_node_get_string (node);
  if (!valid_address (address))
    return NULL;
  name = get_string (get_object (object, "targetRef"), "name");
  if (name == NULL || *name == '\0')
    name = get_string (object, "hostname");
  if (name == NULL || *name == '\0')
    name = address;

  endpoint = g_new0 (CpKubeEndpoint, 1);
  endpoint->name = url_safe_name (name);
  endpoint->address = g_strdup (address);
  endpoint->port = port;
  endpoint->tls = tls;
  /* "A nil value should be interpreted as ready" (discovery.k8s.io/v1). */
  endpoint->ready = ready == NULL || JSON_NODE_HOLDS_NULL (ready) ||
                    (JSON_NODE_HOLDS_VALUE (ready) &&
                     json_node_get_value_type (ready) == G_TYPE_BOOLEAN &&
                     json_node_get_boolean (ready));
  return endpoint;
}

CpKubeSlice *
cp_kube_slice_parse (JsonNode    *node,
                     const char  *port_name,
                     GError     **error)
{
  JsonObject *object = node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *name = get_string (get_object (object, "metadata"), "name");
  JsonArray *endpoints = get_array (object, "endpoints");
  g_autoptr(CpKubeSlice) slice = NULL;
  guint16 port = 0;
  gboolean tls = FALSE;

  if (object == NULL)
    return bad (error, "an EndpointSlice is not an object"), NULL;
  if (name == NULL || *name == '\0' || strlen (name) > MAX_NAME)
    return bad (error, "an EndpointSlice has no metadata.name"), NULL;
  slice = g_new0 (CpKubeSlice, 1);
  slice->name = g_strdup (name);
  slice->endpoints = g_ptr_array_new_with_free_func (endpoint_free);
  /* A slice without the port followed (or with none) adds no endpoint. */
  if (!find_port (get_array (object, "ports"), port_name, &port, &tls))
    return g_steal_pointer (&slice);
  for (guint i = 0; endpoints != NULL && i < json_array_get_length (endpoints); i++)
    {
      CpKubeEndpoint *endpoint = parse_endpoint (json_array_get_element (endpoints, i), port, tls);

      if (endpoint != NULL)
        g_ptr_array_add (slice->endpoints, endpoint);
    }
  return g_steal_pointer (&slice);
}

/* Whether @data is one JSON object and nothing after it but spaces (the
 * brackets balanced outside strings; json-glib checks the rest). json-glib
 * 1.6 leaks the first value of an input holding two ("[1] [2]"), so such
 * input never reaches it. */
gboolean
cp_kube_json_is_one_object (const char *data,
                            gsize       length)
{
  const char *p = data, *end = data + length;
  gboolean in_string = FALSE;
  gsize depth = 0;

  while (p < end && g_ascii_isspace (*p))
    p++;
  if (p == end || *p != '{')
    return FALSE;
  for (; p < end; p++)
    {
      if (in_string)
        {
          if (*p == '\\')
            p++;
          else if (*p == '"')
            in_string = FALSE;
          continue;
        }
      if (*p == '"')
        in_string = TRUE;
      else if (*p == '{' || *p == '[')
        depth++;
      else if ((*p == '}' || *p == ']') && depth > 0 && --depth == 0)
        break;
    }
  if (p == end)
    return TRUE;   /* unbalanced: json-glib says what is wrong */
  for (p++; p < end; p++)
    if (!g_ascii_isspace (*p))
      return FALSE;
  return TRUE;
}

static JsonNode *
parse_json (const char  *data,
            gsize        length,
            GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  if (length > G_MAXSSIZE || memchr (data, '\0', length) != NULL ||
      !cp_kube_json_is_one_object (data, length) ||
      !json_parser_load_from_data (parser, data, (gssize) length, &local))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "apiserver answer: bad JSON%s%s",
                   local != NULL ? ": " : "", local != NULL ? local->message : "");
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return bad (error, "not a JSON object"), NULL;
  return json_node_ref (root);
}

gboolean
cp_kube_slice_list_parse (const char   *data,
                          gsize         length,
                          const char   *port_name,
                          GPtrArray   **out_slices,
                          char        **out_resource_version,
                          GError      **error)
{
  g_autoptr(JsonNode) root = parse_json (data, length, error);
  g_autoptr(GPtrArray) slices = NULL;
  JsonObject *object;
  JsonArray *items;
  const char *rv;

  if (root == NULL)
    return FALSE;
  object = json_node_get_object (root);
  if (g_strcmp0 (get_string (object, "kind"), "Status") == 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE, "apiserver: %s",
                   get_string (object, "message") != NULL ? get_string (object, "message") : "error");
      return FALSE;
    }
  rv = get_string (get_object (object, "metadata"), "resourceVersion");
  if (rv == NULL || *rv == '\0')
    return bad (error, "a list has no metadata.resourceVersion");
  items = get_array (object, "items");
  if (items == NULL && json_object_get_member (object, "items") != NULL &&
      !JSON_NODE_HOLDS_NULL (json_object_get_member (object, "items")))
    return bad (error, "items is not an array");
  slices = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_kube_slice_free);
  for (guint i = 0; items != NULL && i < json_array_get_length (items); i++)
    {
      CpKubeSlice *slice = cp_kube_slice_parse (json_array_get_element (items, i), port_name, error);

      if (slice == NULL)
        return FALSE;
      g_ptr_array_add (slices, slice);
    }
  *out_slices = g_steal_pointer (&slices);
  *out_resource_version = g_strdup (rv);
  return TRUE;
}

void
cp_kube_event_free (CpKubeEvent *event)
{
  if (event == NULL)
    return;
  cp_kube_slice_free (event->slice);
  g_free (event->resource_version);
  g_free (event->message);
  g_free (event);
}

CpKubeEvent *
cp_kube_event_parse (const char  *line,
                     gsize        length,
                     const char  *port_name,
                     GError     **error)
{
  static const char * const types[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
  g_autoptr(JsonNode) root = parse_json (line, length, error);
  g_autoptr(CpKubeEvent) event = NULL;
  JsonObject *object;
  JsonNode *inner;
  const char *type, *rv;
  guint i;

  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  type = get_string (object, "type");
  for (i = 0; i < G_N_ELEMENTS (types); i++)
    if (g_strcmp0 (type, types[i]) == 0)
      break;
  if (i == G_N_ELEMENTS (types))
    return bad (error, "a watch event of unknown type"), NULL;
  inner = json_object_get_member (object, "object");
  if (inner == NULL || !JSON_NODE_HOLDS_OBJECT (inner))
    return bad (error, "a watch event without an object"), NULL;

  event = g_new0 (CpKubeEvent, 1);
  event->type = (CpKubeEventType) i;
  if (event->type == CP_KUBE_EVENT_ERROR)
    {
      gint64 code = 0;
      const char *message = get_string (json_node_get_object (inner), "message");

      get_int (json_node_get_object (inner), "code", &code);
      event->code = (int) CLAMP (code, 0, 999);
      event->message = g_strdup (message != NULL ? message : "watch error");
      return g_steal_pointer (&event);
    }
  rv = get_string (get_object (json_node_get_object (inner), "metadata"), "resourceVersion");
  if (rv == NULL || *rv == '\0')
    return bad (error, "a watch event without metadata.resourceVersion"), NULL;
  event->resource_version = g_strdup (rv);
  if (event->type != CP_KUBE_EVENT_BOOKMARK)
    {
      event->slice = cp_kube_slice_parse (inner, port_name, error);
      if (event->slice == NULL)
        return NULL;
    }
  return g_steal_pointer (&event);
}

char *
cp_kube_endpoint_url (const CpKubeEndpoint *endpoint,
                      const char           *namespace)
{
  return g_strdup_printf ("k8s:///%s.%s:%u", endpoint->name, namespace, endpoint->port);
}
