/* test-error.c: the CP_ERROR domain, code tables and the unary error JSON
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <json-glib/json-glib.h>

#include "cp-error.h"
#include "cp-error-private.h"
#include "cp-enum-types.h"

static const char conformance_message[] =
  "\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\n";

static GBytes *
bytes_from_string (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

static void
test_code_names (void)
{
  static const char * const names[] = {
    NULL, "canceled", "unknown", "invalid_argument", "deadline_exceeded",
    "not_found", "already_exists", "permission_denied", "resource_exhausted",
    "failed_precondition", "aborted", "out_of_range", "unimplemented",
    "internal", "unavailable", "data_loss", "unauthenticated",
  };

  for (int code = 1; code <= 16; code++)
    {
      CpErrorCode parsed = 0;

      g_assert_cmpstr (cp_error_code_to_string (code), ==, names[code]);
      g_assert_true (cp_error_code_from_string (names[code], &parsed));
      g_assert_cmpint (parsed, ==, code);
    }

  g_assert_false (cp_error_code_from_string ("foobar", NULL));
  g_assert_false (cp_error_code_from_string ("NOT_FOUND", NULL));
  g_assert_false (cp_error_code_from_string ("", NULL));
  g_assert_false (cp_error_code_from_string (NULL, NULL));
  g_assert_false (cp_error_code_from_string ("ok", NULL));
  g_assert_cmpstr (cp_error_code_to_string (0), ==, "unknown");
  g_assert_cmpstr (cp_error_code_to_string (99), ==, "unknown");
}

static void
test_enum_type (void)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (CP_TYPE_ERROR);
  GEnumValue *value = g_enum_get_value (klass, CP_ERROR_NOT_FOUND);

  g_assert_nonnull (value);
  g_assert_cmpstr (value->value_name, ==, "CP_ERROR_NOT_FOUND");
  g_assert_true (G_TYPE_IS_BOXED (CP_TYPE_ERROR_DETAIL));
}

static void
test_code_to_http (void)
{
  static const guint statuses[] = {
    0, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
  };

  for (int code = 1; code <= 16; code++)
    g_assert_cmpuint (cp_error_code_to_http_status (code), ==, statuses[code]);
}

static void
test_http_to_code (void)
{
  static const struct { guint status; CpErrorCode code; } cases[] = {
    { 400, CP_ERROR_INTERNAL },
    { 401, CP_ERROR_UNAUTHENTICATED },
    { 403, CP_ERROR_PERMISSION_DENIED },
    { 404, CP_ERROR_UNIMPLEMENTED },
    { 429, CP_ERROR_UNAVAILABLE },
    { 502, CP_ERROR_UNAVAILABLE },
    { 503, CP_ERROR_UNAVAILABLE },
    { 504, CP_ERROR_UNAVAILABLE },
    { 405, CP_ERROR_UNKNOWN },
    { 409, CP_ERROR_UNKNOWN },
    { 412, CP_ERROR_UNKNOWN },
    { 413, CP_ERROR_UNKNOWN },
    { 415, CP_ERROR_UNKNOWN },
    { 418, CP_ERROR_UNKNOWN },
    { 431, CP_ERROR_UNKNOWN },
    { 500, CP_ERROR_UNKNOWN },
    { 505, CP_ERROR_UNKNOWN },
    { 800, CP_ERROR_UNKNOWN },
    { 0, CP_ERROR_UNKNOWN },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (cp_error_code_from_http_status (cases[i].status), ==, cases[i].code);
}

static void
test_get_code (void)
{
  g_autoptr(GError) cp = g_error_new_literal (CP_ERROR, CP_ERROR_ABORTED, "x");
  g_autoptr(GError) cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "c");
  g_autoptr(GError) timed_out = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "t");
  g_autoptr(GError) other = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "boom");
  g_autoptr(GError) converted = NULL;

  g_assert_cmpint (cp_error_get_code (cp), ==, CP_ERROR_ABORTED);
  g_assert_cmpint (cp_error_get_code (cancelled), ==, CP_ERROR_CANCELED);
  g_assert_cmpint (cp_error_get_code (timed_out), ==, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_cmpint (cp_error_get_code (other), ==, CP_ERROR_UNKNOWN);

  converted = cp_error_to_connect (other);
  g_assert_error (converted, CP_ERROR, CP_ERROR_UNKNOWN);
  g_assert_cmpstr (converted->message, ==, "boom");
  g_clear_error (&converted);

  converted = cp_error_to_connect (cancelled);
  g_assert_error (converted, CP_ERROR, CP_ERROR_CANCELED);
  g_clear_error (&converted);

  converted = cp_error_to_connect (cp);
  g_assert_error (converted, CP_ERROR, CP_ERROR_ABORTED);
  g_assert_true (converted != cp);
}

static void
test_detail (void)
{
  g_autoptr(GBytes) value = g_bytes_new_static ("\x0a\x02\x08\x1e", 4);
  g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("type.googleapis.com/google.rpc.RetryInfo", value);
  g_autoptr(CpErrorDetail) plain = cp_error_detail_new ("google.rpc.RetryInfo", NULL);
  CpErrorDetail *copy;

  g_assert_cmpstr (cp_error_detail_get_type_name (detail), ==, "google.rpc.RetryInfo");
  g_assert_true (g_bytes_equal (cp_error_detail_get_value (detail), value));
  g_assert_cmpstr (cp_error_detail_get_type_name (plain), ==, "google.rpc.RetryInfo");
  g_assert_cmpuint (g_bytes_get_size (cp_error_detail_get_value (plain)), ==, 0);

  copy = g_boxed_copy (CP_TYPE_ERROR_DETAIL, detail);
  g_assert_true (copy == detail);
  g_boxed_free (CP_TYPE_ERROR_DETAIL, copy);
  g_assert_cmpstr (cp_error_detail_get_type_name (detail), ==, "google.rpc.RetryInfo");
}

static void
test_extended_copy (void)
{
  g_autoptr(GError) error = g_error_new (CP_ERROR, CP_ERROR_NOT_FOUND, "no %s", "key");
  g_autoptr(GError) copy = NULL;
  g_autoptr(GBytes) value = g_bytes_new_static ("ab", 2);
  g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("acme.Info", value);
  g_autoptr(SoupMessageHeaders) replacement = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GError) io = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "io");
  GPtrArray *details;

  g_assert_cmpuint (cp_error_get_details (error)->len, ==, 0);
  cp_error_add_detail (error, detail);
  soup_message_headers_append (cp_error_get_metadata (error), "acme-shard", "7");

  copy = g_error_copy (error);
  g_assert_error (copy, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (copy->message, ==, "no key");
  details = cp_error_get_details (copy);
  g_assert_cmpuint (details->len, ==, 1);
  g_assert_cmpstr (cp_error_detail_get_type_name (g_ptr_array_index (details, 0)), ==, "acme.Info");
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (copy), "Acme-Shard"), ==, "7");

  /* The copy owns its own headers. */
  g_assert_true (cp_error_get_metadata (copy) != cp_error_get_metadata (error));
  soup_message_headers_append (cp_error_get_metadata (error), "acme-other", "1");
  g_assert_null (soup_message_headers_get_one (cp_error_get_metadata (copy), "acme-other"));

  soup_message_headers_append (replacement, "x-y", "z");
  cp_error_set_metadata (copy, replacement);
  g_assert_null (soup_message_headers_get_one (cp_error_get_metadata (copy), "acme-shard"));
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (copy), "x-y"), ==, "z");
  cp_error_set_metadata (copy, NULL);
  g_assert_null (soup_message_headers_get_one (cp_error_get_metadata (copy), "x-y"));

  g_assert_null (cp_error_get_details (io));
  g_assert_null (cp_error_get_metadata (io));
}

/* Parses @json and checks it is an object whose members are exactly @keys. */
static JsonObject *
parse_object (const char *json, JsonParser *parser)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, json, -1, &error));
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_node_get_object (json_parser_get_root (parser));
}

static void
test_json_write (void)
{
  g_autoptr(GError) error = g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE, "overloaded: back off");
  g_autoptr(GBytes) value = g_bytes_new_static ("\x0a\x02\x08\x1e", 4);
  g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("google.rpc.RetryInfo", value);
  g_autofree char *json = NULL;
  g_autoptr(GBytes) json_bytes = NULL;

  cp_error_add_detail (error, detail);
  json = cp_error_to_json_string (error);
  g_assert_cmpstr (json, ==,
                   "{\"code\":\"unavailable\",\"message\":\"overloaded: back off\","
                   "\"details\":[{\"type\":\"google.rpc.RetryInfo\",\"value\":\"CgIIHg\"}]}");

  json_bytes = cp_error_to_json (error);
  g_assert_cmpmem (g_bytes_get_data (json_bytes, NULL), g_bytes_get_size (json_bytes), json, strlen (json));
}

static void
test_json_write_minimal (void)
{
  g_autoptr(GError) empty = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL, "");
  g_autoptr(GError) io = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "stop");
  g_autofree char *json_empty = cp_error_to_json_string (empty);
  g_autofree char *json_io = cp_error_to_json_string (io);

  g_assert_cmpstr (json_empty, ==, "{\"code\":\"internal\"}");
  g_assert_cmpstr (json_io, ==, "{\"code\":\"canceled\",\"message\":\"stop\"}");
}

static void
test_json_unicode_round_trip (void)
{
  g_autoptr(GError) error = g_error_new_literal (CP_ERROR, CP_ERROR_INVALID_ARGUMENT, conformance_message);
  g_autoptr(GBytes) json = cp_error_to_json (error);
  g_autoptr(GError) read = cp_error_from_json (json, 400, "Bad Request");
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *text = g_strndup (g_bytes_get_data (json, NULL), g_bytes_get_size (json));
  JsonObject *object;

  /* The writer's output is valid JSON whose message is the same string. */
  object = parse_object (text, parser);
  g_assert_cmpstr (json_object_get_string_member (object, "message"), ==, conformance_message);
  g_assert_null (strchr (text, '\n'));
  g_assert_null (strchr (text, '\r'));

  g_assert_error (read, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (read->message, ==, conformance_message);

  /* A peer escaping non-ASCII as \u sequences (surrogate pair included). */
  {
    g_autoptr(GBytes) escaped = bytes_from_string (
      "{\"code\":\"invalid_argument\",\"message\":\"\\ntest with whitespace\\r\\nand Unicode BMP "
      "\\u263a and non-BMP \\ud83d\\ude08\\n\"}");
    g_autoptr(GError) from_escaped = cp_error_from_json (escaped, 400, NULL);

    g_assert_error (from_escaped, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr (from_escaped->message, ==, conformance_message);
  }
}

static void
test_json_control_characters (void)
{
  g_autoptr(GString) message = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) json = NULL;
  g_autoptr(GError) read = NULL;

  for (int c = 1; c < 0x80; c++)
    g_string_append_c (message, (char) c);
  g_string_append (message, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x88\"\\/");

  error = g_error_new_literal (CP_ERROR, CP_ERROR_DATA_LOSS, message->str);
  json = cp_error_to_json (error);
  read = cp_error_from_json (json, 500, NULL);
  g_assert_error (read, CP_ERROR, CP_ERROR_DATA_LOSS);
  g_assert_cmpstr (read->message, ==, message->str);
}

static void
test_json_read_full (void)
{
  g_autoptr(GBytes) body = bytes_from_string (
    "{\"code\":\"not_found\",\"message\":\"no greeting for Buf\",\"extra\":[1,2],"
    "\"details\":[{\"type\":\"google.rpc.RetryInfo\",\"value\":\"CgIIHg\",\"debug\":{\"retryDelay\":\"30s\"}},"
    "{\"type\":\"type.googleapis.com/acme.Padded\",\"value\":\"AAECAw==\",\"debug\":\"garbage\",\"more\":1},"
    "{\"type\":\"acme.UrlSafe\",\"value\":\"-_8\"},"
    "{\"type\":\"acme.Std\",\"value\":\"+/8=\"},"
    "{\"type\":\"acme.NoValue\"},"
    "{\"type\":\"acme.BadValue\",\"value\":\"!!!\"},"
    "{\"value\":\"AAAA\"},"
    "{\"type\":42,\"value\":\"AAAA\"},"
    "{\"type\":\"acme.NumValue\",\"value\":12},"
    "\"not an object\"]}");
  g_autoptr(GError) error = cp_error_from_json (body, 404, "Not Found");
  GPtrArray *details;
  CpErrorDetail *d;

  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "no greeting for Buf");

  details = cp_error_get_details (error);
  g_assert_cmpuint (details->len, ==, 5);

  d = g_ptr_array_index (details, 0);
  g_assert_cmpstr (cp_error_detail_get_type_name (d), ==, "google.rpc.RetryInfo");
  g_assert_cmpmem (g_bytes_get_data (cp_error_detail_get_value (d), NULL),
                   g_bytes_get_size (cp_error_detail_get_value (d)), "\x0a\x02\x08\x1e", 4);

  d = g_ptr_array_index (details, 1);
  g_assert_cmpstr (cp_error_detail_get_type_name (d), ==, "acme.Padded");
  g_assert_cmpmem (g_bytes_get_data (cp_error_detail_get_value (d), NULL),
                   g_bytes_get_size (cp_error_detail_get_value (d)), "\x00\x01\x02\x03", 4);

  d = g_ptr_array_index (details, 2);
  g_assert_cmpstr (cp_error_detail_get_type_name (d), ==, "acme.UrlSafe");
  g_assert_cmpmem (g_bytes_get_data (cp_error_detail_get_value (d), NULL),
                   g_bytes_get_size (cp_error_detail_get_value (d)), "\xfb\xff", 2);

  d = g_ptr_array_index (details, 3);
  g_assert_cmpstr (cp_error_detail_get_type_name (d), ==, "acme.Std");
  g_assert_cmpmem (g_bytes_get_data (cp_error_detail_get_value (d), NULL),
                   g_bytes_get_size (cp_error_detail_get_value (d)), "\xfb\xff", 2);

  d = g_ptr_array_index (details, 4);
  g_assert_cmpstr (cp_error_detail_get_type_name (d), ==, "acme.NoValue");
  g_assert_cmpuint (g_bytes_get_size (cp_error_detail_get_value (d)), ==, 0);
}

static void
test_json_read_fallbacks (void)
{
  static const struct {
    const char *body;   /* NULL = no body */
    guint status;
    CpErrorCode code;
    const char *message;
  } cases[] = {
    { NULL, 401, CP_ERROR_UNAUTHENTICATED, "Unauthorized" },
    { "", 403, CP_ERROR_PERMISSION_DENIED, "Forbidden" },
    { "null", 401, CP_ERROR_UNAUTHENTICATED, "Unauthorized" },
    { "not json {", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "[1,2]", 503, CP_ERROR_UNAVAILABLE, "Service Unavailable" },
    { "\"string\"", 400, CP_ERROR_INTERNAL, "Bad Request" },
    { "{}", 502, CP_ERROR_UNAVAILABLE, "Bad Gateway" },
    { "{\"message\":\"no code\"}", 429, CP_ERROR_UNAVAILABLE, "no code" },
    { "{\"code\":null,\"message\":\"null code\"}", 401, CP_ERROR_UNAUTHENTICATED, "null code" },
    { "{\"code\":\"foobar\",\"message\":\"bad code\"}", 429, CP_ERROR_UNAVAILABLE, "bad code" },
    { "{\"code\":7,\"message\":\"numeric code\"}", 418, CP_ERROR_UNKNOWN, "numeric code" },
    { "{\"code\":\"aborted\"}", 409, CP_ERROR_ABORTED, "Conflict" },
    { "{\"code\":\"aborted\",\"message\":null}", 409, CP_ERROR_ABORTED, "Conflict" },
    { "{\"code\":\"out_of_range\",\"message\":\"\"}", 400, CP_ERROR_OUT_OF_RANGE, "" },
    { "{\"code\":\"internal\",\"message\":\"x\",\"details\":\"garbage\"}", 500, CP_ERROR_INTERNAL, "x" },
    /* two values are not JSON (json-glib alone would keep the last one) */
    { "{\"code\":\"internal\",\"message\":\"x\"}{\"code\":\"aborted\",\"message\":\"y\"}",
      404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "null{\"code\":\"aborted\",\"message\":\"y\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    /* malformed \\u escapes are not JSON (json-glib leaked on some, took others) */
    { "{\"code\":\"aborted\",\"message\":\"\\ud800\\u0041\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"\\ud800\\uzzzz\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"\\ud80p\\u0\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"\\u00zz\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"\\udc00\\u0041\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"\\ude08\\ude08\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"\\udc00\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    /* what json-glib alone takes but JSON is not */
    { "{'code':'aborted'}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"\\x\"}", 404, CP_ERROR_UNIMPLEMENTED, "Not Found" },
    { "{\"code\":\"aborted\",\"message\":\"a\\ud83d\\ude00\"}", 409, CP_ERROR_ABORTED, "a\360\237\230\200" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) body = cases[i].body ? bytes_from_string (cases[i].body) : NULL;
      g_autoptr(GError) error = cp_error_from_json (body, cases[i].status,
                                                    soup_status_get_phrase (cases[i].status));

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, cases[i].body ? cases[i].body : "(null)");
      g_assert_error (error, CP_ERROR, (gint) cases[i].code);
      g_assert_cmpstr (error->message, ==, cases[i].message);
      g_assert_cmpuint (cp_error_get_details (error)->len, ==, 0);
    }
}

static void
test_json_read_keeps_details_with_bad_code (void)
{
  g_autoptr(GBytes) body = bytes_from_string (
    "{\"code\":\"foobar\",\"message\":\"m\",\"details\":[{\"type\":\"a.B\",\"value\":\"AQ\"}]}");
  g_autoptr(GError) error = cp_error_from_json (body, 429, NULL);

  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (error->message, ==, "m");
  g_assert_cmpuint (cp_error_get_details (error)->len, ==, 1);
}

static void
test_json_read_reason_phrase (void)
{
  g_autoptr(GError) with_phrase = cp_error_from_json (NULL, 418, "I'm a teapot, really");
  g_autoptr(GError) without = cp_error_from_json (NULL, 503, NULL);

  g_assert_error (with_phrase, CP_ERROR, CP_ERROR_UNKNOWN);
  g_assert_cmpstr (with_phrase->message, ==, "I'm a teapot, really");
  g_assert_error (without, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (without->message, ==, "Service Unavailable");
}

static void
test_json_read_hostile (void)
{
  g_autoptr(GString) deep = g_string_new ("{\"code\":\"not_found\",\"details\":");
  g_autoptr(GBytes) deep_body = NULL;
  g_autoptr(GError) deep_error = NULL;
  g_autoptr(GBytes) nul_body = g_bytes_new_static ("{\"code\":\"not_found\"}\0junk", 26);
  g_autoptr(GError) nul_error = cp_error_from_json (nul_body, 503, NULL);
  g_autoptr(GBytes) latin1 = g_bytes_new_static ("{\"code\":\"not_found\",\"message\":\"\xe9\"}", 34);
  g_autoptr(GError) latin1_error = cp_error_from_json (latin1, 503, NULL);

  for (int i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  deep_body = g_bytes_new (deep->str, deep->len);
  deep_error = cp_error_from_json (deep_body, 400, NULL);
  g_assert_error (deep_error, CP_ERROR, CP_ERROR_INTERNAL);

  /* Lone surrogate escapes must not leak invalid UTF-8 into the message. */
  {
    g_autoptr(GBytes) surrogate = bytes_from_string ("{\"code\":\"aborted\",\"message\":\"a\\ude08b\"}");
    g_autoptr(GError) surrogate_error = cp_error_from_json (surrogate, 409, NULL);

    g_assert_error (surrogate_error, CP_ERROR, CP_ERROR_ABORTED);
    g_assert_true (g_utf8_validate (surrogate_error->message, -1, NULL));
    g_assert_true (g_str_has_prefix (surrogate_error->message, "a"));
  }

  g_assert_error (nul_error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_error (latin1_error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_true (g_utf8_validate (latin1_error->message, -1, NULL));
}

static void
test_json_round_trip_details (void)
{
  g_autoptr(GError) error = g_error_new_literal (CP_ERROR, CP_ERROR_FAILED_PRECONDITION, "pre");
  g_autoptr(GBytes) json = NULL;
  g_autoptr(GError) read = NULL;
  guint8 all[256];

  for (int i = 0; i < 256; i++)
    all[i] = i;
  for (gsize n = 0; n < 5; n++)
    {
      g_autoptr(GBytes) value = g_bytes_new (all + 250, n);
      g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("acme.Len", value);
      cp_error_add_detail (error, detail);
    }
  {
    g_autoptr(GBytes) value = g_bytes_new (all, sizeof all);
    g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("acme.All", value);
    cp_error_add_detail (error, detail);
  }

  json = cp_error_to_json (error);
  /* Writers never pad. */
  g_assert_null (memchr (g_bytes_get_data (json, NULL), '=', g_bytes_get_size (json)));

  read = cp_error_from_json (json, 400, NULL);
  g_assert_error (read, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_cmpuint (cp_error_get_details (read)->len, ==, 6);
  for (guint i = 0; i < 6; i++)
    {
      CpErrorDetail *a = g_ptr_array_index (cp_error_get_details (error), i);
      CpErrorDetail *b = g_ptr_array_index (cp_error_get_details (read), i);

      g_assert_cmpstr (cp_error_detail_get_type_name (a), ==, cp_error_detail_get_type_name (b));
      g_assert_true (g_bytes_equal (cp_error_detail_get_value (a), cp_error_detail_get_value (b)));
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/error/code-names", test_code_names);
  g_test_add_func ("/wire/error/enum-type", test_enum_type);
  g_test_add_func ("/wire/error/code-to-http", test_code_to_http);
  g_test_add_func ("/wire/error/http-to-code", test_http_to_code);
  g_test_add_func ("/wire/error/get-code", test_get_code);
  g_test_add_func ("/wire/error/detail", test_detail);
  g_test_add_func ("/wire/error/extended-copy", test_extended_copy);
  g_test_add_func ("/wire/error/json/write", test_json_write);
  g_test_add_func ("/wire/error/json/write-minimal", test_json_write_minimal);
  g_test_add_func ("/wire/error/json/unicode-round-trip", test_json_unicode_round_trip);
  g_test_add_func ("/wire/error/json/control-characters", test_json_control_characters);
  g_test_add_func ("/wire/error/json/read-full", test_json_read_full);
  g_test_add_func ("/wire/error/json/read-fallbacks", test_json_read_fallbacks);
  g_test_add_func ("/wire/error/json/read-bad-code-keeps-details", test_json_read_keeps_details_with_bad_code);
  g_test_add_func ("/wire/error/json/read-reason-phrase", test_json_read_reason_phrase);
  g_test_add_func ("/wire/error/json/read-hostile", test_json_read_hostile);
  g_test_add_func ("/wire/error/json/round-trip-details", test_json_round_trip_details);

  return g_test_run ();
}
