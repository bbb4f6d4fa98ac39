/* fuzz-h2-response.c: server bytes into the client's HTTP/2 transport
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Input: what an HTTP/2 server sends on a connection where the client has
 * opened one stream (stream 1): frames nghttp2 parses, then our callbacks
 * (the :status value, headers and trailers into SoupMessageHeaders,
 * response data, resets, GOAWAY), then the connection closes. Whatever the
 * bytes, the exchange ends exactly once, the head (a status from 100 to
 * 999) comes before any chunk, trailers only after a clean end, and an
 * error is a CP_ERROR.
 */
#include <connectplugin.h>
#include <stdint.h>

#include "cp-channel-exchange-private.h"
#include "cp-h2-connection-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct {
  gboolean head;
  gboolean clean;
  guint ends;
} Seen;

static void
on_head (CpChannelExchange *exchange, gpointer user_data)
{
  Seen *seen = user_data;
  guint status = cp_channel_exchange_get_status (exchange);

  g_assert_false (seen->head);
  g_assert_cmpuint (seen->ends, ==, 0);
  g_assert_true (status >= 200 && status <= 999);
  g_assert_nonnull (cp_channel_exchange_get_response_headers (exchange));
  seen->head = TRUE;
}

static void
on_chunk (CpChannelExchange *exchange, GBytes *chunk, gpointer user_data)
{
  Seen *seen = user_data;

  g_assert_true (seen->head);
  g_assert_cmpuint (g_bytes_get_size (chunk), >, 0);
}

static void
on_end (CpChannelExchange *exchange, const GError *error, gpointer user_data)
{
  Seen *seen = user_data;

  seen->ends++;
  seen->clean = error == NULL;
  if (error != NULL)
    g_assert_true (error->domain == CP_ERROR);
  else
    g_assert_true (seen->head);
}

static const CpChannelExchangeCallbacks callbacks = { on_head, on_chunk, on_end };

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static CpChannel *channel;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GBytes) body = g_bytes_new_static ("\0\0\0\0\0", 5);
  CpChannelExchange *exchange;
  Seen seen = { 0 };

  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
  if (channel == NULL)
    channel = cp_channel_new ("http://127.0.0.1:1", NULL);
  soup_message_headers_append (headers, "Content-Type", "application/proto");
  exchange = cp_channel_exchange_new (channel, "POST", "/kv.v1.KVService/Get", headers, body, 0,
                                      NULL, &callbacks, &seen, NULL);
  cp_h2_fuzz_server_bytes (exchange, data, size);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (seen.ends, ==, 1);
  if (!seen.clean)
    g_assert_null (cp_channel_exchange_get_response_trailers (exchange));
  cp_channel_exchange_close (exchange);
  cp_channel_exchange_unref (exchange);
  return 0;
}
