/* test-grpc.c: gRPC wire pieces: grpc-timeout, status, trailers frames, grpc-web-text
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-error.h"
#include "cp-grpc-private.h"
#include "cp-base64-private.h"

static void
test_timeout_parse (void)
{
  static const struct { const char *text; gint64 us; } ok[] = {
    { "1n", 1 }, { "1000n", 1 }, { "1001n", 2 }, { "5u", 5 }, { "250m", 250000 },
    { "3S", 3000000 }, { "2M", 120000000 }, { "1H", G_GINT64_CONSTANT (3600000000) },
    { "0m", 0 }, { "99999999S", G_GINT64_CONSTANT (99999999000000) },
    { "99999999H", -1 },
  };
  static const char * const bad[] = {
    "", "m", "1", "1x", "-1m", "+1m", "123456789m", " 1m", "1m ", "1.5S", "1h", NULL,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 us = -2;

      g_assert_true (cp_grpc_timeout_parse (ok[i].text, &us, &error));
      g_assert_no_error (error);
      g_assert_cmpint (us, ==, ok[i].us);
    }
  for (gsize i = 0; bad[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 us = 0;

      g_assert_false (cp_grpc_timeout_parse (bad[i], &us, &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_timeout_format (void)
{
  static const struct { gint64 us; const char *text; } cases[] = {
    { 0, "0n" }, { -5, "0n" }, { 1, "1000n" }, { 99999, "99999000n" }, { 100000, "100000u" },
    { G_GINT64_CONSTANT (100000000), "100000m" }, { G_GINT64_CONSTANT (100000000001), "100001S" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = cp_grpc_timeout_format (cases[i].us);
      gint64 back = 0;

      g_assert_cmpstr (text, ==, cases[i].text);
      g_assert_true (cp_grpc_timeout_parse (text, &back, NULL));
      g_assert_cmpint (back, >=, MAX (cases[i].us, 0));
    }
}

static void
test_percent (void)
{
  g_autofree char *encoded = cp_grpc_percent_encode ("a 100% \xe2\x98\xba\n");
  g_autofree char *decoded = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr (encoded, ==, "a 100%25 %E2%98%BA%0A");
  decoded = cp_grpc_percent_decode (encoded, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (decoded, ==, "a 100% \xe2\x98\xba\n");
  g_assert_null (cp_grpc_percent_decode ("bad %G1", &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  g_clear_error (&error);
  g_assert_null (cp_grpc_percent_decode ("cut %4", &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
}

static GError *
rich_error (void)
{
  GError *error = g_error_new_literal (CP_ERROR, CP_ERROR_NOT_FOUND, "no such key: \xc3\xa9");
  g_autoptr(GBytes) value = g_bytes_new_static ("\x08\x01", 2);
  g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("google.rpc.RetryInfo", value);
  SoupMessageHeaders *metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

  cp_error_add_detail (error, detail);
  soup_message_headers_append (metadata, "x-meta", "m1");
  cp_error_set_metadata (error, metadata);
  soup_message_headers_unref (metadata);
  return error;
}

static void
test_status_roundtrip (void)
{
  g_autoptr(GError) error = rich_error ();
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GError) back = NULL;
  g_autoptr(GError) parse_error = NULL;
  GPtrArray *details;

  cp_grpc_error_to_trailers (error, trailers);
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "grpc-status"), ==, "5");
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "grpc-message"), ==, "no such key: %C3%A9");
  g_assert_nonnull (soup_message_headers_get_one (trailers, "grpc-status-details-bin"));
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "x-meta"), ==, "m1");

  g_assert_true (cp_grpc_error_from_trailers (trailers, &back, &parse_error));
  g_assert_no_error (parse_error);
  g_assert_error (back, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (back->message, ==, "no such key: \xc3\xa9");
  details = cp_error_get_details (back);
  g_assert_cmpuint (details->len, ==, 1);
  g_assert_cmpstr (cp_error_detail_get_type_name (details->pdata[0]), ==, "google.rpc.RetryInfo");
  g_assert_cmpuint (g_bytes_get_size (cp_error_detail_get_value (details->pdata[0])), ==, 2);
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (back), "x-meta"), ==, "m1");
  g_assert_null (soup_message_headers_get_one (cp_error_get_metadata (back), "grpc-status"));
}

static void
test_status_from_trailers (void)
{
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GError) rpc = NULL;
  g_autoptr(GError) error = NULL;

  /* Missing status. */
  g_assert_false (cp_grpc_error_from_trailers (trailers, &rpc, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  g_clear_error (&error);

  /* OK. */
  soup_message_headers_replace (trailers, "grpc-status", "0");
  g_assert_true (cp_grpc_error_from_trailers (trailers, &rpc, &error));
  g_assert_null (rpc);

  /* Codes beyond the known ones are unknown; junk is an error. */
  soup_message_headers_replace (trailers, "grpc-status", "99");
  g_assert_true (cp_grpc_error_from_trailers (trailers, &rpc, &error));
  g_assert_error (rpc, CP_ERROR, CP_ERROR_UNKNOWN);
  g_clear_error (&rpc);
  soup_message_headers_replace (trailers, "grpc-status", "x1");
  g_assert_false (cp_grpc_error_from_trailers (trailers, &rpc, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNKNOWN);
  g_clear_error (&error);

  /* Unpadded and padded details both accepted; broken ones refused. */
  {
    g_autoptr(GBytes) bin = cp_grpc_status_encode (7, "denied", NULL);
    g_autofree char *padded = g_base64_encode (g_bytes_get_data (bin, NULL), g_bytes_get_size (bin));

    soup_message_headers_replace (trailers, "grpc-status", "3");
    soup_message_headers_replace (trailers, "grpc-status-details-bin", padded);
    g_assert_true (cp_grpc_error_from_trailers (trailers, &rpc, &error));
    g_assert_error (rpc, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
    g_assert_cmpstr (rpc->message, ==, "denied");
    g_clear_error (&rpc);
    soup_message_headers_replace (trailers, "grpc-status-details-bin", "!!!");
    g_assert_false (cp_grpc_error_from_trailers (trailers, &rpc, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  }
}

static void
test_web_trailers (void)
{
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(SoupMessageHeaders) parsed = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GError) error = NULL;

  soup_message_headers_append (trailers, "Grpc-Status", "0");
  soup_message_headers_append (trailers, "X-Two", "a");
  soup_message_headers_append (trailers, "X-Two", "b");
  payload = cp_grpc_web_trailers_encode (trailers);
  g_assert_cmpmem (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload),
                   "grpc-status: 0\r\nx-two: a\r\nx-two: b\r\n", 36);
  g_assert_true (cp_grpc_web_trailers_decode (payload, parsed, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (soup_message_headers_get_one (parsed, "grpc-status"), ==, "0");
  g_assert_cmpstr (soup_message_headers_get_list (parsed, "x-two"), ==, "a, b");

  {
    g_autoptr(GBytes) lf = g_bytes_new_static ("Grpc-Status:5\ngrpc-message: gone", 32);
    g_autoptr(GBytes) bad = g_bytes_new_static ("no colon\r\n", 10);
    g_autoptr(GBytes) bad_name = g_bytes_new_static ("a b: c\r\n", 8);

    soup_message_headers_clear (parsed);
    g_assert_true (cp_grpc_web_trailers_decode (lf, parsed, &error));
    g_assert_cmpstr (soup_message_headers_get_one (parsed, "grpc-status"), ==, "5");
    g_assert_cmpstr (soup_message_headers_get_one (parsed, "grpc-message"), ==, "gone");
    g_assert_false (cp_grpc_web_trailers_decode (bad, parsed, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
    g_clear_error (&error);
    g_assert_false (cp_grpc_web_trailers_decode (bad_name, parsed, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  }
}

/* Decodes @text fed in pieces of @step characters. */
static GBytes *
text_decode (const char *text,
             gsize       step,
             GError    **error)
{
  g_autoptr(CpGrpcTextDecoder) decoder = cp_grpc_text_decoder_new ();
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GBytes) tail = NULL;
  gsize len = strlen (text);

  for (gsize i = 0; i < len; i += step)
    {
      GError *local = NULL;
      g_autoptr(GBytes) piece = cp_grpc_text_decoder_push (decoder, text + i, MIN (step, len - i), &local);

      if (local != NULL)
        {
          g_propagate_error (error, local);
          return NULL;
        }
      if (piece != NULL)
        g_byte_array_append (out, g_bytes_get_data (piece, NULL), g_bytes_get_size (piece));
    }
  if (!cp_grpc_text_decoder_finish (decoder, &tail, error))
    return NULL;
  if (tail != NULL)
    g_byte_array_append (out, g_bytes_get_data (tail, NULL), g_bytes_get_size (tail));
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static void
test_text_decoder (void)
{
  static const char * const bad[] = { "A", "AB=C", "A===", "ABC*", "QUJD\n", "QUJDRA=", NULL };

  for (gsize step = 1; step <= 7; step++)
    {
      g_autoptr(GError) error = NULL;
      /* "hello" padded, then " world" unpadded-by-size (8 chars), then "!" unpadded. */
      g_autoptr(GBytes) out = text_decode ("aGVsbG8=IHdvcmxkIQ", step, &error);

      g_assert_no_error (error);
      g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), "hello world!", 12);
    }
  for (gsize i = 0; bad[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) out = text_decode (bad[i], 3, &error);

      g_assert_null (out);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/grpc/timeout-parse", test_timeout_parse);
  g_test_add_func ("/wire/grpc/timeout-format", test_timeout_format);
  g_test_add_func ("/wire/grpc/percent", test_percent);
  g_test_add_func ("/wire/grpc/status-roundtrip", test_status_roundtrip);
  g_test_add_func ("/wire/grpc/status-from-trailers", test_status_from_trailers);
  g_test_add_func ("/wire/grpc/web-trailers", test_web_trailers);
  g_test_add_func ("/wire/grpc/text-decoder", test_text_decoder);

  return g_test_run ();
}
