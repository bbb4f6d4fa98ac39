/* test-metadata.c: reserved names, -bin values, repeated values, merging
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-error.h"
#include "cp-metadata.h"
#include "cp-metadata-private.h"

static SoupMessageHeaders *
new_headers (void)
{
  return soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
}

static guint
count_headers (SoupMessageHeaders *headers)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;
  guint n = 0;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    n++;
  return n;
}

static void
test_reserved (void)
{
  static const char * const reserved[] = {
    "Content-Type", "content-length", "CONTENT-ENCODING", "Accept-Encoding",
    "Transfer-Encoding", "Connection", "Host", "User-Agent", "Trailer", "TE",
    "Date", "Keep-Alive", "Connect-Timeout-Ms", "connect-protocol-version",
    "Connect-Content-Encoding", "Connect-Accept-Encoding", "connect-anything",
    "Grpc-Status", "grpc-message", "GRPC-status-details-bin",
  };
  static const char * const allowed[] = {
    "acme-tenant", "X-Trace-Bin", "trailer-acme-cost", "content", "connect",
    "connection-id", "grpc", "x-connect-id", "date-of-birth", "hosts", "tee",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (reserved); i++)
    g_assert_true (cp_metadata_is_reserved (reserved[i]));
  for (gsize i = 0; i < G_N_ELEMENTS (allowed); i++)
    g_assert_false (cp_metadata_is_reserved (allowed[i]));
}

static void
test_binary_key (void)
{
  g_assert_true (cp_metadata_is_binary_key ("x-trace-bin"));
  g_assert_true (cp_metadata_is_binary_key ("X-Trace-Bin"));
  g_assert_true (cp_metadata_is_binary_key ("X-TRACE-BIN"));
  g_assert_true (cp_metadata_is_binary_key ("-bin"));
  g_assert_false (cp_metadata_is_binary_key ("bin"));
  g_assert_false (cp_metadata_is_binary_key ("x-trace"));
  g_assert_false (cp_metadata_is_binary_key ("x-trace-bin2"));
  g_assert_false (cp_metadata_is_binary_key ("x-tracebin"));
  g_assert_false (cp_metadata_is_binary_key (""));
}

static void
test_binary_round_trip (void)
{
  g_autoptr(SoupMessageHeaders) headers = new_headers ();
  g_autoptr(GBytes) v1 = g_bytes_new_static ("\x00\x01\x02\x03", 4);
  g_autoptr(GBytes) v2 = g_bytes_new_static ("\xfb\xff", 2);
  g_autoptr(GBytes) v3 = g_bytes_new (NULL, 0);
  g_autoptr(GPtrArray) values = NULL;
  g_autoptr(GError) error = NULL;

  cp_metadata_append_binary (headers, "X-Trace-Bin", v1);
  cp_metadata_append_binary (headers, "X-Trace-Bin", v2);
  g_assert_cmpstr (soup_message_headers_get_list (headers, "x-trace-bin"), ==, "AAECAw, +/8");

  values = cp_metadata_get_binary (headers, "x-trace-bin", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (values->len, ==, 2);
  g_assert_true (g_bytes_equal (g_ptr_array_index (values, 0), v1));
  g_assert_true (g_bytes_equal (g_ptr_array_index (values, 1), v2));
  g_clear_pointer (&values, g_ptr_array_unref);

  /* An empty value is written as an empty header, whose value is skipped. */
  cp_metadata_append_binary (headers, "empty-bin", v3);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "empty-bin"), ==, "");
}

static void
test_binary_liberal (void)
{
  g_autoptr(SoupMessageHeaders) headers = new_headers ();
  g_autoptr(GPtrArray) values = NULL;
  g_autoptr(GPtrArray) absent = NULL;
  g_autoptr(GError) error = NULL;

  soup_message_headers_append (headers, "x-bin", "AAECAw==,AAECAw");
  soup_message_headers_append (headers, "X-Bin", " -_8 , +/8= ");
  values = cp_metadata_get_binary (headers, "x-bin", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (values->len, ==, 4);
  for (guint i = 0; i < 2; i++)
    g_assert_cmpmem (g_bytes_get_data (g_ptr_array_index (values, i), NULL),
                     g_bytes_get_size (g_ptr_array_index (values, i)), "\x00\x01\x02\x03", 4);
  for (guint i = 2; i < 4; i++)
    g_assert_cmpmem (g_bytes_get_data (g_ptr_array_index (values, i), NULL),
                     g_bytes_get_size (g_ptr_array_index (values, i)), "\xfb\xff", 2);

  absent = cp_metadata_get_binary (headers, "y-bin", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (absent->len, ==, 0);
}

static void
test_binary_invalid (void)
{
  static const char * const bad[] = { "A", "AA AA", "AAAA,*", "AA=A", "%%" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(SoupMessageHeaders) headers = new_headers ();
      g_autoptr(GPtrArray) values = NULL;
      g_autoptr(GError) error = NULL;

      soup_message_headers_append (headers, "x-bin", bad[i]);
      values = cp_metadata_get_binary (headers, "x-bin", &error);
      g_assert_null (values);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_get_values (void)
{
  g_autoptr(SoupMessageHeaders) headers = new_headers ();
  g_auto(GStrv) values = NULL;
  g_auto(GStrv) none = NULL;
  g_auto(GStrv) single = NULL;

  soup_message_headers_append (headers, "X-Conformance-Test", "Value1");
  soup_message_headers_append (headers, "x-conformance-test", "Value2");
  soup_message_headers_append (headers, "X-Conformance-Test", " foo ,bar,, baz\t");
  soup_message_headers_append (headers, "Other", "x");

  values = cp_metadata_get_values (headers, "x-conformance-test");
  g_assert_nonnull (values);
  g_assert_cmpuint (g_strv_length (values), ==, 5);
  g_assert_cmpstr (values[0], ==, "Value1");
  g_assert_cmpstr (values[1], ==, "Value2");
  g_assert_cmpstr (values[2], ==, "foo");
  g_assert_cmpstr (values[3], ==, "bar");
  g_assert_cmpstr (values[4], ==, "baz");

  none = cp_metadata_get_values (headers, "absent");
  g_assert_nonnull (none);
  g_assert_null (none[0]);

  single = cp_metadata_get_values (headers, "other");
  g_assert_cmpuint (g_strv_length (single), ==, 1);
  g_assert_cmpstr (single[0], ==, "x");
}

static void
test_merge (void)
{
  g_autoptr(SoupMessageHeaders) src = new_headers ();
  g_autoptr(SoupMessageHeaders) dest = new_headers ();
  g_autoptr(SoupMessageHeaders) prefixed = new_headers ();

  soup_message_headers_append (src, "acme-cost", "12");
  soup_message_headers_append (src, "acme-cost", "13");
  soup_message_headers_append (src, "Content-Type", "application/proto");
  soup_message_headers_append (src, "Connect-Timeout-Ms", "5");
  soup_message_headers_append (src, "grpc-status", "0");
  soup_message_headers_append (src, "x-trace-bin", "AQ");
  soup_message_headers_append (dest, "existing", "1");

  cp_metadata_merge (dest, src, NULL);
  g_assert_cmpuint (count_headers (dest), ==, 4);
  g_assert_cmpstr (soup_message_headers_get_list (dest, "acme-cost"), ==, "12, 13");
  g_assert_cmpstr (soup_message_headers_get_one (dest, "x-trace-bin"), ==, "AQ");
  g_assert_cmpstr (soup_message_headers_get_one (dest, "existing"), ==, "1");
  g_assert_null (soup_message_headers_get_one (dest, "content-type"));

  cp_metadata_merge (prefixed, src, "trailer-");
  g_assert_cmpuint (count_headers (prefixed), ==, 3);
  g_assert_cmpstr (soup_message_headers_get_list (prefixed, "Trailer-Acme-Cost"), ==, "12, 13");
  g_assert_cmpstr (soup_message_headers_get_one (prefixed, "trailer-x-trace-bin"), ==, "AQ");
  g_assert_null (soup_message_headers_get_one (prefixed, "acme-cost"));
  g_assert_null (soup_message_headers_get_one (prefixed, "trailer-content-type"));
}

static void
test_split_trailers (void)
{
  g_autoptr(SoupMessageHeaders) response = new_headers ();
  g_autoptr(SoupMessageHeaders) headers = new_headers ();
  g_autoptr(SoupMessageHeaders) trailers = new_headers ();

  soup_message_headers_append (response, "Content-Type", "application/proto");
  soup_message_headers_append (response, "Acme-Shard", "7");
  soup_message_headers_append (response, "Trailer-Acme-Cost", "12");
  soup_message_headers_append (response, "trailer-acme-cost", "13");
  soup_message_headers_append (response, "TRAILER-X-Custom-Trailer", "v");
  soup_message_headers_append (response, "Trailer", "x");
  soup_message_headers_append (response, "trailers-not", "y");

  cp_metadata_split_trailers (response, headers, trailers);
  g_assert_cmpuint (count_headers (headers), ==, 4);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "acme-shard"), ==, "7");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "trailer"), ==, "x");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "trailers-not"), ==, "y");
  g_assert_null (soup_message_headers_get_one (headers, "trailer-acme-cost"));

  g_assert_cmpuint (count_headers (trailers), ==, 3);
  g_assert_cmpstr (soup_message_headers_get_list (trailers, "acme-cost"), ==, "12, 13");
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "x-custom-trailer"), ==, "v");

  /* Either side may be omitted. */
  {
    g_autoptr(SoupMessageHeaders) only = new_headers ();

    cp_metadata_split_trailers (response, NULL, only);
    g_assert_cmpuint (count_headers (only), ==, 3);
  }
}

static void
test_validation (void)
{
  g_assert_true (cp_metadata_is_valid_name ("x-trace-bin"));
  g_assert_true (cp_metadata_is_valid_name ("A!#$%&'*+-.^_`|~9"));
  g_assert_false (cp_metadata_is_valid_name (""));
  g_assert_false (cp_metadata_is_valid_name (NULL));
  g_assert_false (cp_metadata_is_valid_name ("a b"));
  g_assert_false (cp_metadata_is_valid_name ("a:b"));
  g_assert_false (cp_metadata_is_valid_name ("a\r\n"));
  g_assert_false (cp_metadata_is_valid_name ("caf\xc3\xa9"));

  g_assert_true (cp_metadata_is_valid_value ("", -1));
  g_assert_true (cp_metadata_is_valid_value ("a b\tc", -1));
  g_assert_false (cp_metadata_is_valid_value ("a\rb", -1));
  g_assert_false (cp_metadata_is_valid_value ("a\nb", -1));
  g_assert_false (cp_metadata_is_valid_value ("a\0b", 3));
  g_assert_true (cp_metadata_is_valid_value ("ab\n", 2));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/metadata/reserved", test_reserved);
  g_test_add_func ("/wire/metadata/binary-key", test_binary_key);
  g_test_add_func ("/wire/metadata/binary-round-trip", test_binary_round_trip);
  g_test_add_func ("/wire/metadata/binary-liberal", test_binary_liberal);
  g_test_add_func ("/wire/metadata/binary-invalid", test_binary_invalid);
  g_test_add_func ("/wire/metadata/get-values", test_get_values);
  g_test_add_func ("/wire/metadata/merge", test_merge);
  g_test_add_func ("/wire/metadata/split-trailers", test_split_trailers);
  g_test_add_func ("/wire/metadata/validation", test_validation);

  return g_test_run ();
}
