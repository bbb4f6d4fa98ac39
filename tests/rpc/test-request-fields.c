/* test-request-fields.c: cp_request_fields_scan () against libsoup's own
 * lookups, on random heads
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The one walk a server call makes of its request headers must find what
 * soup_message_headers_get_one () finds (the last of repeated fields) and,
 * for the list fields, what soup_message_headers_get_list () joins: for
 * heads made of the fields read, other fields (some of the same lengths),
 * names in any case, repeats and empty values.
 */
#include "cp-request-fields-private.h"

#include <string.h>

static const char *const read_names[] = {
  "Content-Type", "Content-Encoding", "Connect-Content-Encoding",
  "Connect-Protocol-Version", "Connect-Timeout-Ms", "grpc-encoding",
  "grpc-timeout", "traceparent", "Accept-Encoding", "Connect-Accept-Encoding",
  "grpc-accept-encoding",
};

/* Others, several of the same lengths as the names read. */
static const char *const other_names[] = {
  "Content-Length", "Content-Typf", "X-Trace-Parent", "tracestate", "Accept",
  "grpc-timeouT-x", "Connect-Protocol-Versioo", "Accept-Encodinh", "Host",
  "User-Agent", "Connect-Accept-Encodinh",
};

static char *
random_case (GRand      *rand,
             const char *name)
{
  char *s = g_strdup (name);

  for (char *p = s; *p; p++)
    switch (g_rand_int_range (rand, 0, 3))
      {
      case 0: *p = g_ascii_tolower (*p); break;
      case 1: *p = g_ascii_toupper (*p); break;
      default: break;
      }
  return s;
}

static void
check_head (SoupMessageHeaders *headers)
{
  CpRequestFields f;

  cp_request_fields_scan (&f, headers);

  const struct {
    const char *name;
    const char *found;
    const guint *count;   /* list fields */
  } expect[] = {
    { "Content-Type", f.content_type, NULL },
    { "Content-Encoding", f.content_encoding, NULL },
    { "Connect-Content-Encoding", f.connect_content_encoding, NULL },
    { "Connect-Protocol-Version", f.connect_protocol_version, NULL },
    { "Connect-Timeout-Ms", f.connect_timeout_ms, NULL },
    { "grpc-encoding", f.grpc_encoding, NULL },
    { "grpc-timeout", f.grpc_timeout, NULL },
    { "traceparent", f.traceparent, NULL },
    { "Accept-Encoding", f.accept_encoding, &f.n_accept_encoding },
    { "Connect-Accept-Encoding", f.connect_accept_encoding, &f.n_connect_accept_encoding },
    { "grpc-accept-encoding", f.grpc_accept_encoding, &f.n_grpc_accept_encoding },
  };

  for (guint i = 0; i < G_N_ELEMENTS (expect); i++)
    {
      g_test_message ("%s", expect[i].name);
      /* The very string libsoup answers with, not only equal text. */
      g_assert_true (expect[i].found == soup_message_headers_get_one (headers, expect[i].name));
      if (expect[i].count != NULL)
        {
          guint n = 0;
          SoupMessageHeadersIter iter;
          const char *name, *value;

          soup_message_headers_iter_init (&iter, headers);
          while (soup_message_headers_iter_next (&iter, &name, &value))
            n += g_ascii_strcasecmp (name, expect[i].name) == 0;
          g_assert_cmpuint (*expect[i].count, ==, n);
          /* Once: its value is the list libsoup joins. */
          if (n == 1)
            g_assert_cmpstr (expect[i].found, ==,
                             soup_message_headers_get_list (headers, expect[i].name));
        }
    }
}

static void
test_random_heads (void)
{
  GRand *rand = g_rand_new_with_seed (20261206);

  for (guint round = 0; round < 2000; round++)
    {
      SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
      guint n = g_rand_int_range (rand, 0, 14);

      for (guint i = 0; i < n; i++)
        {
          gboolean read = g_rand_boolean (rand);
          const char *base = read ? read_names[g_rand_int_range (rand, 0, G_N_ELEMENTS (read_names))]
                                  : other_names[g_rand_int_range (rand, 0, G_N_ELEMENTS (other_names))];
          g_autofree char *name = random_case (rand, base);
          g_autofree char *value = g_rand_int_range (rand, 0, 5) == 0
                                     ? g_strdup ("")
                                     : g_strdup_printf ("v%u-%u", round, i);

          soup_message_headers_append (headers, name, value);
        }
      check_head (headers);
      soup_message_headers_unref (headers);
    }
  g_rand_free (rand);
}

static void
test_empty (void)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  CpRequestFields f;

  memset (&f, 0xaa, sizeof f);
  cp_request_fields_scan (&f, headers);
  g_assert_null (f.content_type);
  g_assert_null (f.traceparent);
  g_assert_cmpuint (f.n_accept_encoding, ==, 0);
  check_head (headers);
  soup_message_headers_unref (headers);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/request-fields/empty", test_empty);
  g_test_add_func ("/request-fields/random-heads", test_random_heads);
  return g_test_run ();
}
