/* cp-error-json.c: Connect error JSON (unary bodies and EndStream)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <json-glib/json-glib.h>

#include "cp-base64-private.h"
#include "cp-error-private.h"
#include "cp-metadata.h"
#include "cp-metadata-private.h"

/* Deeper JSON is refused before json-glib's recursive parser sees it: an
 * error body is three levels deep, "debug" a few more. */
#define MAX_JSON_DEPTH 64

/* JSON helpers */

/* The value of the 4 hex digits at @data[@i]; -1 if they are not there. */
static gint
hex4_at (const char *data,
         gsize       len,
         gsize       i)
{
  gint value = 0;

  if (i + 4 > len)
    return -1;
  for (gsize k = i; k < i + 4; k++)
    {
      gint digit = g_ascii_xdigit_value (data[k]);
      if (digit < 0)
        return -1;
      value = value * 16 + digit;
    }
  return value;
}

/* The strict JSON check below (RFC 8259) stands in front of json-glib 1.6,
 * which accepts some malformed input ("{}{}", "1[]": it keeps the last value),
 * leaks memory on several of its error paths (a \u escape with fewer than 4
 * hex digits, a surrogate escape followed by a quote or by another escape
 * that does not pair with it) and recurses once per nesting level. Input
 * that passes never reaches those paths. A lone surrogate followed by other
 * text is still let through, as before (json-glib decodes it to invalid
 * UTF-8, which the readers make valid). */

static void
skip_json_space (const char **p,
                 const char  *end)
{
  while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
    (*p)++;
}

/* At the backslash of a \u escape; FALSE on what json-glib mishandles. */
static gboolean
scan_unicode_escape (const char **p,
                     const char  *end)
{
  gint first = hex4_at (*p, end - *p, 2), second;

  if (first < 0)
    return FALSE;
  *p += 6;
  if (first < 0xD800 || first > 0xDFFF)
    return TRUE;
  if (*p < end && **p == '"')
    return FALSE;
  if (*p >= end || **p != '\\')
    return TRUE;
  second = hex4_at (*p, end - *p, 2);
  if (second < 0 || (*p)[1] != 'u' || first > 0xDBFF || second < 0xDC00 || second > 0xDFFF)
    return FALSE;
  *p += 6;
  return TRUE;
}

static gboolean
scan_json_string (const char **p,
                  const char  *end)
{
  for ((*p)++; *p < end;)
    {
      guchar c = **p;

      if (c == '"')
        {
          (*p)++;
          return TRUE;
        }
      /* Raw control characters are let through (json-glib takes them, and
       * its generator writes U+001F unescaped); NUL is refused earlier. */
      if (c != '\\')
        (*p)++;
      else if (end - *p >= 2 && (*p)[1] == 'u')
        {
          if (!scan_unicode_escape (p, end))
            return FALSE;
        }
      else if (end - *p >= 2 && (*p)[1] != '\0' && strchr ("\"\\/bfnrt", (*p)[1]) != NULL)
        *p += 2;
      else
        return FALSE;
    }
  return FALSE;
}

static gboolean
scan_json_digits (const char **p,
                  const char  *end)
{
  const char *start = *p;

  while (*p < end && g_ascii_isdigit (**p))
    (*p)++;
  return *p > start;
}

static gboolean
scan_json_number (const char **p,
                  const char  *end)
{
  if (**p == '-')
    (*p)++;
  if (*p < end && **p == '0')
    (*p)++;
  else if (!scan_json_digits (p, end))
    return FALSE;
  if (*p < end && **p == '.')
    {
      (*p)++;
      if (!scan_json_digits (p, end))
        return FALSE;
    }
  if (*p < end && (**p == 'e' || **p == 'E'))
    {
      (*p)++;
      if (*p < end && (**p == '+' || **p == '-'))
        (*p)++;
      if (!scan_json_digits (p, end))
        return FALSE;
    }
  return TRUE;
}

/* A string, number or literal at *@p. */
static gboolean
scan_json_scalar (const char **p,
                  const char  *end)
{
  static const char * const literals[] = { "true", "false", "null" };

  if (**p == '"')
    return scan_json_string (p, end);
  if (**p == '-' || g_ascii_isdigit (**p))
    return scan_json_number (p, end);
  for (guint i = 0; i < G_N_ELEMENTS (literals); i++)
    {
      gsize n = strlen (literals[i]);

      if ((gsize) (end - *p) >= n && memcmp (*p, literals[i], n) == 0)
        {
          *p += n;
          return TRUE;
        }
    }
  return FALSE;
}

/* TRUE when @data is exactly one JSON value nested at most MAX_JSON_DEPTH
 * deep (strings are checked for UTF-8 by the caller). */
static gboolean
json_strictly_valid (const char *data,
                     gsize       len)
{
  const char *p = data, *end = data + len;
  char open[MAX_JSON_DEPTH];  /* '{' or '[' per level */
  guint depth = 0;

  for (;;)
    {
      /* a value */
      skip_json_space (&p, end);
      if (p >= end)
        return FALSE;
      if (*p == '{' || *p == '[')
        {
          if (depth == MAX_JSON_DEPTH)
            return FALSE;
          open[depth++] = *p++;
          skip_json_space (&p, end);
          if (p < end && *p == (open[depth - 1] == '{' ? '}' : ']'))
            {
              p++;
              depth--;
            }
          else if (open[depth - 1] == '{')
            goto member_name;
          else
            continue;
        }
      else if (!scan_json_scalar (&p, end))
        return FALSE;

      /* after a value: close containers, or go on to the next element */
      for (;;)
        {
          skip_json_space (&p, end);
          if (depth == 0)
            return p == end;
          if (p >= end)
            return FALSE;
          if (*p == (open[depth - 1] == '{' ? '}' : ']'))
            {
              p++;
              depth--;
              continue;
            }
          if (*p++ != ',')
            return FALSE;
          if (open[depth - 1] == '[')
            break;
        member_name:
          skip_json_space (&p, end);
          if (p >= end || *p != '"' || !scan_json_string (&p, end))
            return FALSE;
          skip_json_space (&p, end);
          if (p >= end || *p++ != ':')
            return FALSE;
          break;
        }
    }
}

/* Parses @data into a root node; NULL when it is not JSON. */
static JsonNode *
parse_json (const char *data,
            gsize       len)
{
  g_autoptr(JsonParser) parser = NULL;
  JsonNode *root;

  if (len == 0 || len > G_MAXSSIZE || !json_strictly_valid (data, len))
    return NULL;
  /* json-glib stops at a NUL and expects UTF-8. */
  if (memchr (data, '\0', len) != NULL || !g_utf8_validate (data, len, NULL))
    return NULL;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, len, NULL))
    return NULL;

  root = json_parser_get_root (parser);
  return root != NULL ? json_node_ref (root) : NULL;
}

static const char *
object_get_string (JsonObject *object,
                   const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static void
build_error_object (JsonBuilder  *builder,
                    const GError *connect_error)
{
  GPtrArray *details = cp_error_get_details (connect_error);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "code");
  json_builder_add_string_value (builder, cp_error_code_to_string (cp_error_get_code (connect_error)));

  if (connect_error->message != NULL && connect_error->message[0] != '\0')
    {
      /* JSON text must be UTF-8; a GError message usually is, but may
       * come from anywhere. */
      g_autofree char *message = g_utf8_make_valid (connect_error->message, -1);

      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, message);
    }

  if (details != NULL && details->len > 0)
    {
      json_builder_set_member_name (builder, "details");
      json_builder_begin_array (builder);
      for (guint i = 0; i < details->len; i++)
        {
          CpErrorDetail *detail = g_ptr_array_index (details, i);
          GBytes *value = cp_error_detail_get_value (detail);
          gsize size;
          const guint8 *data = g_bytes_get_data (value, &size);
          g_autofree char *b64 = cp_base64_encode_unpadded (data, size);

          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "type");
          json_builder_add_string_value (builder, cp_error_detail_get_type_name (detail));
          json_builder_set_member_name (builder, "value");
          json_builder_add_string_value (builder, b64);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
    }

  json_builder_end_object (builder);
}

static char *
builder_to_string (JsonBuilder *builder,
                   gsize       *out_len)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);

  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, out_len);
}

char *
cp_error_to_json_string (const GError *error)
{
  g_autoptr(GError) connect_error = NULL;
  g_autoptr(JsonBuilder) builder = NULL;

  g_return_val_if_fail (error != NULL, NULL);

  connect_error = cp_error_to_connect (error);
  builder = json_builder_new ();
  build_error_object (builder, connect_error);
  return builder_to_string (builder, NULL);
}

GBytes *
cp_error_to_json (const GError *error)
{
  char *text;

  g_return_val_if_fail (error != NULL, NULL);

  text = cp_error_to_json_string (error);
  return g_bytes_new_take (text, strlen (text));
}

/* Adds the well-formed entries of a JSON "details" array to @error; a
 * malformed detail is skipped, not fatal. */
static void
read_details (GError   *error,
              JsonNode *details_node)
{
  JsonArray *array;
  guint n;

  if (details_node == NULL || !JSON_NODE_HOLDS_ARRAY (details_node))
    return;

  array = json_node_get_array (details_node);
  n = json_array_get_length (array);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      JsonObject *object;
      JsonNode *value_node;
      const char *type_name;
      const char *value_text = "";
      const char *slash;
      g_autoptr(GBytes) value = NULL;
      g_autoptr(CpErrorDetail) detail = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      object = json_node_get_object (node);

      type_name = object_get_string (object, "type");
      if (type_name == NULL)
        continue;
      slash = strrchr (type_name, '/');
      if (slash != NULL)
        type_name = slash + 1;
      if (*type_name == '\0' || !g_utf8_validate (type_name, -1, NULL))
        continue;

      value_node = json_object_get_member (object, "value");
      if (value_node != NULL && !JSON_NODE_HOLDS_NULL (value_node))
        {
          value_text = object_get_string (object, "value");
          if (value_text == NULL)
            continue;
        }

      value = cp_base64_decode_liberal (value_text, -1, NULL);
      if (value == NULL)
        continue;

      detail = cp_error_detail_new (type_name, value);
      cp_error_add_detail (error, detail);
    }
}

GError *
cp_error_from_json (GBytes     *body,
                    guint       http_status,
                    const char *reason_phrase)
{
  g_autoptr(JsonNode) root = NULL;
  CpErrorCode code = cp_error_code_from_http_status (http_status);
  const char *message = NULL;
  JsonObject *object = NULL;
  g_autofree char *valid_message = NULL;
  GError *error;

  if (body != NULL)
    {
      gsize len;
      const char *data = g_bytes_get_data (body, &len);

      root = parse_json (data, len);
    }

  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      object = json_node_get_object (root);
      /* Missing, null or unknown codes keep the code from the status. */
      cp_error_code_from_string (object_get_string (object, "code"), &code);
      message = object_get_string (object, "message");
    }

  if (message == NULL)
    {
      if (reason_phrase != NULL && reason_phrase[0] != '\0')
        message = reason_phrase;
      else
        message = soup_status_get_phrase (http_status);
    }

  /* json-glib lets lone surrogate escapes through as invalid UTF-8. */
  valid_message = g_utf8_make_valid (message, -1);
  error = g_error_new_literal (CP_ERROR, code, valid_message);
  if (object != NULL)
    read_details (error, json_object_get_member (object, "details"));
  return error;
}

/* EndStream */

typedef struct
{
  char      *name;    /* lowercase */
  GPtrArray *values;  /* (element-type utf8) */
} MetadataEntry;

static void
metadata_entry_free (MetadataEntry *entry)
{
  g_free (entry->name);
  g_ptr_array_unref (entry->values);
  g_free (entry);
}

/* Groups the non-reserved headers of @headers by lowercase name, keeping the
 * first-seen order of names and the order of values. */
static void
collect_metadata (GPtrArray          *entries,
                  GHashTable         *by_name,
                  SoupMessageHeaders *headers)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;

  if (headers == NULL)
    return;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      g_autofree char *lower = NULL;
      MetadataEntry *entry;

      if (cp_metadata_is_reserved (name))
        continue;

      lower = g_ascii_strdown (name, -1);
      entry = g_hash_table_lookup (by_name, lower);
      if (entry == NULL)
        {
          entry = g_new0 (MetadataEntry, 1);
          entry->name = g_steal_pointer (&lower);
          entry->values = g_ptr_array_new_with_free_func (g_free);
          g_ptr_array_add (entries, entry);
          g_hash_table_insert (by_name, entry->name, entry);
        }
      /* JSON is UTF-8; a header value may be any obs-text (or come from a
       * lone surrogate escape of a peer's EndStream). */
      g_ptr_array_add (entry->values, g_utf8_make_valid (value, -1));
    }
}

GBytes *
cp_end_stream_build (const GError       *error,
                     SoupMessageHeaders *trailers)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) connect_error = NULL;
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) metadata_entry_free);
  g_autoptr(GHashTable) by_name = g_hash_table_new (g_str_hash, g_str_equal);
  char *text;
  gsize len;

  if (error != NULL)
    connect_error = cp_error_to_connect (error);

  collect_metadata (entries, by_name, trailers);
  if (connect_error != NULL)
    collect_metadata (entries, by_name, cp_error_get_metadata (connect_error));

  json_builder_begin_object (builder);

  if (connect_error != NULL)
    {
      json_builder_set_member_name (builder, "error");
      build_error_object (builder, connect_error);
    }

  if (entries->len > 0)
    {
      json_builder_set_member_name (builder, "metadata");
      json_builder_begin_object (builder);
      for (guint i = 0; i < entries->len; i++)
        {
          MetadataEntry *entry = g_ptr_array_index (entries, i);

          json_builder_set_member_name (builder, entry->name);
          json_builder_begin_array (builder);
          for (guint j = 0; j < entry->values->len; j++)
            json_builder_add_string_value (builder, g_ptr_array_index (entry->values, j));
          json_builder_end_array (builder);
        }
      json_builder_end_object (builder);
    }

  json_builder_end_object (builder);

  text = builder_to_string (builder, &len);
  return g_bytes_new_take (text, len);
}

static void
append_metadata_value (SoupMessageHeaders *trailers,
                       const char         *name,
                       JsonNode           *node)
{
  const char *value = json_node_get_string (node);

  /* Values libsoup would refuse are dropped rather than failing the RPC. */
  if (trailers != NULL && value != NULL && cp_metadata_is_valid_value (value, -1))
    soup_message_headers_append (trailers, name, value);
}

static gboolean
node_is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* Reads "metadata"; FALSE when it has the wrong shape. */
static gboolean
read_end_stream_metadata (JsonNode           *metadata_node,
                          SoupMessageHeaders *trailers)
{
  JsonObject *object;
  g_autoptr(GList) members = NULL;

  if (metadata_node == NULL || JSON_NODE_HOLDS_NULL (metadata_node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (metadata_node))
    return FALSE;

  object = json_node_get_object (metadata_node);
  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (object, name);
      gboolean valid_name = cp_metadata_is_valid_name (name);

      if (node_is_string (node))
        {
          /* connect-es may send one comma-joined string. */
          if (valid_name)
            append_metadata_value (trailers, name, node);
        }
      else if (JSON_NODE_HOLDS_ARRAY (node))
        {
          JsonArray *array = json_node_get_array (node);
          guint n = json_array_get_length (array);

          for (guint i = 0; i < n; i++)
            {
              JsonNode *element = json_array_get_element (array, i);

              if (!node_is_string (element))
                return FALSE;
              if (valid_name)
                append_metadata_value (trailers, name, element);
            }
        }
      else if (!JSON_NODE_HOLDS_NULL (node))
        return FALSE;
    }

  return TRUE;
}

gboolean
cp_end_stream_parse (GBytes             *payload,
                     SoupMessageHeaders *trailers,
                     GError            **out_rpc_error,
                     GError            **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(SoupMessageHeaders) metadata = NULL;
  JsonObject *object;
  JsonNode *error_node;
  const char *data = NULL;
  gsize len = 0;

  g_return_val_if_fail (out_rpc_error != NULL && *out_rpc_error == NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (payload != NULL)
    data = g_bytes_get_data (payload, &len);

  root = parse_json (data, len);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "protocol error: invalid end-of-stream message");
      return FALSE;
    }
  object = json_node_get_object (root);

  error_node = json_object_get_member (object, "error");
  if (error_node != NULL && !JSON_NODE_HOLDS_NULL (error_node) &&
      !JSON_NODE_HOLDS_OBJECT (error_node))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "protocol error: end-of-stream \"error\" is not an object");
      return FALSE;
    }

  /* Parse the metadata fully before touching @trailers, so that a rejected
   * EndStream leaves them unchanged. */
  metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  if (!read_end_stream_metadata (json_object_get_member (object, "metadata"), metadata))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "protocol error: end-of-stream \"metadata\" is not an object of string arrays");
      return FALSE;
    }

  if (trailers != NULL)
    {
      SoupMessageHeadersIter iter;
      const char *name, *value;

      soup_message_headers_iter_init (&iter, metadata);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        soup_message_headers_append (trailers, name, value);
    }

  if (error_node != NULL && JSON_NODE_HOLDS_OBJECT (error_node))
    {
      JsonObject *error_object = json_node_get_object (error_node);
      CpErrorCode code = CP_ERROR_UNKNOWN;
      const char *message;
      g_autofree char *valid_message = NULL;
      GError *rpc_error;

      /* No HTTP status to fall back on: missing/null/unknown → unknown. */
      cp_error_code_from_string (object_get_string (error_object, "code"), &code);
      message = object_get_string (error_object, "message");

      valid_message = g_utf8_make_valid (message != NULL ? message : "", -1);
      rpc_error = g_error_new_literal (CP_ERROR, code, valid_message);
      read_details (rpc_error, json_object_get_member (error_object, "details"));
      cp_error_set_metadata (rpc_error, metadata);
      *out_rpc_error = rpc_error;
    }

  return TRUE;
}
