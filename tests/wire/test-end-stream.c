/* test-end-stream.c: the EndStream JSON writer and reader
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-error.h"
#include "cp-error-private.h"

static const char conformance_message[] =
  "\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\n";

static GBytes *
bytes_from_string (const char *s)
{
  return g_bytes_new (s, strlen (s));
}

static void
assert_bytes_str (GBytes *bytes, const char *expected)
{
  g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

  g_assert_cmpstr (text, ==, expected);
}

static SoupMessageHeaders *
new_headers (void)
{
  return soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
}

static void
test_build_success (void)
{
  g_autoptr(GBytes) empty = cp_end_stream_build (NULL, NULL);
  g_autoptr(SoupMessageHeaders) trailers = new_headers ();
  g_autoptr(GBytes) with_trailers = NULL;

  assert_bytes_str (empty, "{}");

  soup_message_headers_append (trailers, "Acme-Cost", "12");
  soup_message_headers_append (trailers, "x-id-bin", "AAECAw");
  soup_message_headers_append (trailers, "acme-cost", "13");
  /* Protocol headers never go into EndStream metadata. */
  soup_message_headers_append (trailers, "Connect-Timeout-Ms", "5");
  soup_message_headers_append (trailers, "Content-Type", "application/json");
  with_trailers = cp_end_stream_build (NULL, trailers);
  assert_bytes_str (with_trailers,
                    "{\"metadata\":{\"acme-cost\":[\"12\",\"13\"],\"x-id-bin\":[\"AAECAw\"]}}");
}

static void
test_build_error (void)
{
  g_autoptr(GError) error = g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE, "overloaded");
  g_autoptr(SoupMessageHeaders) trailers = new_headers ();
  g_autoptr(GBytes) value = g_bytes_new_static ("\x0a\x02\x08\x1e", 4);
  g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("google.rpc.RetryInfo", value);
  g_autoptr(GBytes) json = NULL;

  soup_message_headers_append (trailers, "acme-cost", "12");
  soup_message_headers_append (cp_error_get_metadata (error), "Acme-Cost", "1");
  soup_message_headers_append (cp_error_get_metadata (error), "x-error", "yes");
  soup_message_headers_append (cp_error_get_metadata (error), "grpc-status", "14");
  cp_error_add_detail (error, detail);

  json = cp_end_stream_build (error, trailers);
  assert_bytes_str (json,
                    "{\"error\":{\"code\":\"unavailable\",\"message\":\"overloaded\","
                    "\"details\":[{\"type\":\"google.rpc.RetryInfo\",\"value\":\"CgIIHg\"}]},"
                    "\"metadata\":{\"acme-cost\":[\"12\",\"1\"],\"x-error\":[\"yes\"]}}");
}

/* Metadata values need not be UTF-8 (obs-text, or what a lone surrogate
 * escape in a peer's EndStream decodes to); the JSON built must be. */
static void
test_build_non_utf8_metadata (void)
{
  g_autoptr(SoupMessageHeaders) trailers = new_headers ();
  g_autoptr(SoupMessageHeaders) parsed = new_headers ();
  g_autoptr(SoupMessageHeaders) again = new_headers ();
  g_autoptr(GBytes) peer = bytes_from_string ("{\"metadata\":{\"x-s\":[\"a\\udd76b\"]}}");
  g_autoptr(GBytes) json = NULL;
  g_autoptr(GBytes) json_again = NULL;
  g_autoptr(GError) rpc_error = NULL;
  g_autoptr(GError) error = NULL;

  soup_message_headers_append (trailers, "x-latin1", "caf\xe9");
  json = cp_end_stream_build (NULL, trailers);
  g_assert_true (g_utf8_validate (g_bytes_get_data (json, NULL), g_bytes_get_size (json), NULL));
  g_assert_true (cp_end_stream_parse (json, parsed, &rpc_error, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (soup_message_headers_get_one (parsed, "x-latin1"), ==, "caf\xef\xbf\xbd");

  g_assert_true (cp_end_stream_parse (peer, parsed, &rpc_error, &error));
  json_again = cp_end_stream_build (NULL, parsed);
  g_assert_true (cp_end_stream_parse (json_again, again, &rpc_error, &error));
  g_assert_no_error (error);
  g_assert_nonnull (soup_message_headers_get_one (again, "x-s"));
}

static void
test_build_non_connect_error (void)
{
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "too slow");
  g_autoptr(GBytes) json = cp_end_stream_build (error, NULL);

  assert_bytes_str (json, "{\"error\":{\"code\":\"deadline_exceeded\",\"message\":\"too slow\"}}");
}

static void
test_round_trip (void)
{
  g_autoptr(GError) error = g_error_new_literal (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED, conformance_message);
  g_autoptr(SoupMessageHeaders) trailers = new_headers ();
  g_autoptr(SoupMessageHeaders) parsed = new_headers ();
  g_autoptr(GBytes) json = NULL;
  g_autoptr(GError) rpc_error = NULL;
  g_autoptr(GError) parse_error = NULL;
  g_auto(GStrv) values = NULL;

  soup_message_headers_append (trailers, "bing", "a");
  soup_message_headers_append (trailers, "bing", "b");
  soup_message_headers_append (trailers, "quux", "c");
  json = cp_end_stream_build (error, trailers);

  g_assert_true (cp_end_stream_parse (json, parsed, &rpc_error, &parse_error));
  g_assert_no_error (parse_error);
  g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpstr (rpc_error->message, ==, conformance_message);
  g_assert_cmpstr (soup_message_headers_get_list (parsed, "bing"), ==, "a, b");
  g_assert_cmpstr (soup_message_headers_get_one (parsed, "quux"), ==, "c");
  /* The error carries the stream's metadata too. */
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (rpc_error), "quux"), ==, "c");
}

static void
test_parse_success (void)
{
  static const char * const bodies[] = {
    "{}",
    "{\"error\":null}",
    "{\"error\":null,\"metadata\":null}",
    "{\"metadata\":{}}",
    "{\"unknown\":[1,{\"x\":2}],\"other\":true}",
    /* Stray top-level error fields are not an error. */
    "{\"code\":\"out_of_range\",\"message\":\"not wrapped\"}",
    " { } ",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr(GBytes) payload = bytes_from_string (bodies[i]);
      g_autoptr(GError) rpc_error = NULL;
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", bodies[i]);
      g_assert_true (cp_end_stream_parse (payload, NULL, &rpc_error, &error));
      g_assert_no_error (error);
      g_assert_null (rpc_error);
    }
}

static void
test_parse_error_codes (void)
{
  static const struct { const char *body; CpErrorCode code; const char *message; } cases[] = {
    { "{\"error\":{\"code\":\"not_found\",\"message\":\"gone\"}}", CP_ERROR_NOT_FOUND, "gone" },
    { "{\"error\":{\"code\":\"canceled\"}}", CP_ERROR_CANCELED, "" },
    { "{\"error\":{}}", CP_ERROR_UNKNOWN, "" },
    { "{\"error\":{\"message\":\"no code\"}}", CP_ERROR_UNKNOWN, "no code" },
    { "{\"error\":{\"code\":null,\"message\":\"null code\"}}", CP_ERROR_UNKNOWN, "null code" },
    { "{\"error\":{\"code\":\"foobar\",\"message\":\"bad code\"}}", CP_ERROR_UNKNOWN, "bad code" },
    { "{\"error\":{\"code\":14,\"message\":\"numeric\"}}", CP_ERROR_UNKNOWN, "numeric" },
    { "{\"error\":{\"code\":\"data_loss\",\"message\":\"m\",\"extra\":{\"a\":1},"
      "\"details\":[{\"type\":\"a.B\",\"value\":\"AQ\",\"debug\":\"garbage\"}]},\"x\":1}",
      CP_ERROR_DATA_LOSS, "m" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) payload = bytes_from_string (cases[i].body);
      g_autoptr(GError) rpc_error = NULL;
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", cases[i].body);
      g_assert_true (cp_end_stream_parse (payload, NULL, &rpc_error, &error));
      g_assert_no_error (error);
      g_assert_error (rpc_error, CP_ERROR, (gint) cases[i].code);
      g_assert_cmpstr (rpc_error->message, ==, cases[i].message);
    }
}

static void
test_parse_invalid_utf8_message (void)
{
  g_autoptr(GBytes) payload = bytes_from_string ("{\"error\":{\"code\":\"internal\",\"message\":\"x\\udc00y\"}}");
  g_autoptr(GError) rpc_error = NULL;

  g_assert_true (cp_end_stream_parse (payload, NULL, &rpc_error, NULL));
  g_assert_error (rpc_error, CP_ERROR, CP_ERROR_INTERNAL);
  g_assert_true (g_utf8_validate (rpc_error->message, -1, NULL));
  g_assert_true (g_str_has_prefix (rpc_error->message, "x"));
}

static void
test_parse_details (void)
{
  g_autoptr(GBytes) payload = bytes_from_string (
    "{\"error\":{\"code\":\"out_of_range\",\"details\":["
    "{\"type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"value\":\"CgIIHg==\",\"debug\":{\"retryDelay\":\"30s\"}},"
    "{\"type\":\"acme.Bad\",\"value\":\"%%%\"},"
    "{\"type\":\"acme.Good\",\"value\":\"_-8\"}]}}");
  g_autoptr(GError) rpc_error = NULL;
  GPtrArray *details;

  g_assert_true (cp_end_stream_parse (payload, NULL, &rpc_error, NULL));
  g_assert_error (rpc_error, CP_ERROR, CP_ERROR_OUT_OF_RANGE);
  details = cp_error_get_details (rpc_error);
  g_assert_cmpuint (details->len, ==, 2);
  g_assert_cmpstr (cp_error_detail_get_type_name (g_ptr_array_index (details, 0)), ==, "google.rpc.RetryInfo");
  g_assert_cmpuint (g_bytes_get_size (cp_error_detail_get_value (g_ptr_array_index (details, 0))), ==, 4);
  g_assert_cmpstr (cp_error_detail_get_type_name (g_ptr_array_index (details, 1)), ==, "acme.Good");
  g_assert_cmpmem (g_bytes_get_data (cp_error_detail_get_value (g_ptr_array_index (details, 1)), NULL), 2,
                   "\xff\xef", 2);
}

static void
test_parse_metadata (void)
{
  g_autoptr(GBytes) payload = bytes_from_string (
    "{\"metadata\":{\"Acme-Cost\":[\"12\",\"13\"],\"joined\":\"a, b\",\"empty\":[],\"nil\":null,"
    "\"bad name\":[\"dropped\"],\"bad-value\":[\"line\\r\\nbreak\"],\"x-id-bin\":[\"AAECAw\"]}}");
  g_autoptr(SoupMessageHeaders) trailers = new_headers ();
  g_autoptr(GError) rpc_error = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_end_stream_parse (payload, trailers, &rpc_error, &error));
  g_assert_no_error (error);
  g_assert_null (rpc_error);
  g_assert_cmpstr (soup_message_headers_get_list (trailers, "acme-cost"), ==, "12, 13");
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "joined"), ==, "a, b");
  g_assert_null (soup_message_headers_get_one (trailers, "empty"));
  g_assert_null (soup_message_headers_get_one (trailers, "nil"));
  g_assert_null (soup_message_headers_get_one (trailers, "bad name"));
  g_assert_null (soup_message_headers_get_one (trailers, "bad-value"));
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "x-id-bin"), ==, "AAECAw");
}

static void
test_parse_invalid (void)
{
  static const char * const bodies[] = {
    "",
    "not json",
    "null",
    "[]",
    "\"string\"",
    "42",
    "{\"error\":\"unavailable\"}",
    "{\"error\":[]}",
    "{\"error\":42}",
    "{\"metadata\":[]}",
    "{\"metadata\":\"x\"}",
    "{\"metadata\":{\"a\":42}}",
    "{\"metadata\":{\"a\":[1]}}",
    "{\"metadata\":{\"a\":[\"ok\",null]}}",
    "{\"metadata\":{\"a\":{}}}",
    "{\"error\":{\"code\":\"internal\"}",
    /* one value only (json-glib alone would keep the last one) */
    "{}{}",
    "{} []",
    "1{}",
    "\"x\"{}",
    "{\"metadata\":{}}{\"error\":{\"code\":\"internal\"}}",
    "{\"error\":{\"code\":\"internal\",\"message\":\"\\ud800\\u0041\"}}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr(GBytes) payload = bytes_from_string (bodies[i]);
      g_autoptr(SoupMessageHeaders) trailers = new_headers ();
      g_autoptr(GError) rpc_error = NULL;
      g_autoptr(GError) error = NULL;
      SoupMessageHeadersIter iter;
      const char *name, *value;

      g_test_message ("%s", bodies[i]);
      g_assert_false (cp_end_stream_parse (payload, trailers, &rpc_error, &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
      g_assert_null (rpc_error);
      soup_message_headers_iter_init (&iter, trailers);
      g_assert_false (soup_message_headers_iter_next (&iter, &name, &value));
    }

  /* A NULL payload is an empty one. */
  {
    g_autoptr(GError) rpc_error = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_false (cp_end_stream_parse (NULL, NULL, &rpc_error, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/end-stream/build-success", test_build_success);
  g_test_add_func ("/wire/end-stream/build-error", test_build_error);
  g_test_add_func ("/wire/end-stream/build-non-connect-error", test_build_non_connect_error);
  g_test_add_func ("/wire/end-stream/build-non-utf8-metadata", test_build_non_utf8_metadata);
  g_test_add_func ("/wire/end-stream/round-trip", test_round_trip);
  g_test_add_func ("/wire/end-stream/parse-success", test_parse_success);
  g_test_add_func ("/wire/end-stream/parse-error-codes", test_parse_error_codes);
  g_test_add_func ("/wire/end-stream/parse-details", test_parse_details);
  g_test_add_func ("/wire/end-stream/parse-invalid-utf8-message", test_parse_invalid_utf8_message);
  g_test_add_func ("/wire/end-stream/parse-metadata", test_parse_metadata);
  g_test_add_func ("/wire/end-stream/parse-invalid", test_parse_invalid);

  return g_test_run ();
}
