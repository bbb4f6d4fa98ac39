/* fuzz-metadata.c: header values through get_binary / get_values
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-metadata.h"
#include "cp-metadata-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) again = NULL;
  g_autoptr(SoupMessageHeaders) response = NULL;
  g_autoptr(SoupMessageHeaders) leading = NULL;
  g_autoptr(SoupMessageHeaders) trailing = NULL;
  g_autoptr(GPtrArray) binary = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) values = NULL;
  g_autofree char *value = NULL;
  g_autofree char *name = NULL;

  fuzz_set_up ();

  /* libsoup refuses CR/LF in values: the transport would never hand them
   * over, so neither do we. */
  value = size > 0 ? g_strndup ((const char *) data, size) : g_strdup ("");
  for (char *p = value; *p != '\0'; p++)
    if (*p == '\r' || *p == '\n')
      *p = ' ';
  g_assert_true (cp_metadata_is_valid_value (value, -1));

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  soup_message_headers_append (headers, "X-Fuzz-Bin", value);
  soup_message_headers_append (headers, "x-fuzz-bin", value);

  values = cp_metadata_get_values (headers, "x-fuzz-bin");
  g_assert_nonnull (values);
  for (guint i = 0; values[i] != NULL; i++)
    {
      g_assert_cmpuint (strlen (values[i]), >, 0);
      g_assert_null (strchr (values[i], ','));
    }

  binary = cp_metadata_get_binary (headers, "x-fuzz-bin", &error);
  if (binary == NULL)
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  else
    {
      g_autoptr(GPtrArray) binary_again = NULL;

      g_assert_no_error (error);
      g_assert_cmpuint (binary->len, ==, g_strv_length (values));
      again = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      for (guint i = 0; i < binary->len; i++)
        cp_metadata_append_binary (again, "x-fuzz-bin", g_ptr_array_index (binary, i));
      binary_again = cp_metadata_get_binary (again, "x-fuzz-bin", &error);
      g_assert_no_error (error);
      /* Empty values are dropped on reading. */
      g_assert_cmpuint (binary_again->len, <=, binary->len);
    }

  /* The value as a header name: validation and name predicates. */
  name = size > 0 ? g_strndup ((const char *) data, MIN (size, 64)) : g_strdup ("");
  if (cp_metadata_is_valid_name (name))
    {
      response = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      leading = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      trailing = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      soup_message_headers_append (response, name, "v");
      cp_metadata_split_trailers (response, leading, trailing);
      cp_metadata_merge (leading, response, "trailer-");
      (void) cp_metadata_is_reserved (name);
      (void) cp_metadata_is_binary_key (name);
    }

  return 0;
}
