/* client.c: the conformance client under test
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Reads ClientCompatRequests from stdin until EOF, performs each call
 * through the generated ConformanceService Proxy (all at once, on one main
 * loop; at most HTTP1_MAX_IN_FLIGHT at once per HTTP/1.1 channel), in the
 * case's protocol (CpChannel:protocol) and HTTP version, and writes one
 * ClientCompatResponse per request to stdout. A
 * reader thread feeds the requests to the main loop; only the main thread
 * writes to stdout, so responses are never interleaved.
 */
#include "cf-common.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SERVICE_NAME "connectrpc.conformance.v1.ConformanceService"

typedef Connectrpc__Conformance__V1__ClientCompatRequest CompatRequest;
typedef Connectrpc__Conformance__V1__ConformancePayload Payload;
typedef Connectrpc__Conformance__V1__Error PbError;

/* The shape shared by every *Response message of the service. */
typedef struct {
  ProtobufCMessage base;
  Payload *payload;
} AnyResponse;

typedef enum {
  CANCEL_NONE,
  CANCEL_BEFORE_CLOSE_SEND,
  CANCEL_AFTER_CLOSE_SEND_MS,
  CANCEL_AFTER_NUM_RESPONSES,
} CancelKind;

/* At most this many calls at once on an HTTP/1.1 channel: its libsoup
 * connection limit (max-conns-per-host). The runner sends every case at
 * once; over HTTP/1.1 each call in flight needs a connection of its own,
 * and a call that waits for one has its deadline running (the deadline
 * counts from the call's creation, as it should). Over TLS each new
 * connection is a handshake, which glib-networking runs in a thread of
 * GLib's shared pool: with a thousand handshakes queued on two busy cores,
 * the 2 s cases of "Deadline Propagation" ran out while waiting. So the
 * cases wait here, before their call exists, instead (see start_test ()). */
#define HTTP1_MAX_IN_FLIGHT 64

typedef struct {
  guint   in_flight;
  GQueue  waiting;        /* of Test, not started yet */
  guint   idle;           /* starts waiting tests */
} Slots;

typedef struct {
  GMainLoop  *loop;
  GHashTable *channels;   /* base URL → CpChannel */
  GHashTable *slots;      /* CpChannel (HTTP/1.1) → Slots */
  GPtrArray  *ca_files;   /* PEM files of the trusted server certificates */
  guint       pending;
  gboolean    eof;
} Client;

static Client client;

typedef struct {
  CpMessage          *compat;      /* the ClientCompatRequest */
  CompatRequest      *req;         /* its protobuf-c struct */
  ConnectrpcConformanceService *proxy;
  CpChannel          *channel;
  CpCallOptions      *options;
  GCancellable       *cancellable;
  GPtrArray          *requests;    /* of CpMessage */
  GPtrArray          *responses;   /* of CpMessage */
  GError             *error;
  CancelKind          cancel;
  guint               cancel_value;
  guint               next_send;
  guint               timer;
  CpRequestStream    *request_stream;
  CpResponseStream   *response_stream;
  gboolean            duplex;      /* full-duplex bidi (HTTP/2) */
  gboolean            duplex_closed; /* ... its request closed (or cancelled) */
  SoupMessageHeaders *headers;     /* response headers, when from a stream */
  SoupMessageHeaders *trailers;
  Slots              *slots;       /* HTTP/1.1: the channel's call slots */
  gboolean            holds_slot;
} Test;

static void slots_release (Slots *slots);

static void
test_free (Test *test)
{
  if (test->holds_slot)
    slots_release (test->slots);
  if (test->timer != 0)
    g_source_remove (test->timer);
  if (test->response_stream != NULL)
    g_signal_handlers_disconnect_by_data (test->response_stream, test);
  g_clear_object (&test->response_stream);
  g_clear_object (&test->request_stream);
  g_clear_object (&test->proxy);
  g_clear_object (&test->channel);
  g_clear_object (&test->options);
  g_clear_object (&test->cancellable);
  g_clear_pointer (&test->requests, g_ptr_array_unref);
  g_clear_pointer (&test->responses, g_ptr_array_unref);
  g_clear_error (&test->error);
  g_clear_pointer (&test->headers, soup_message_headers_unref);
  g_clear_pointer (&test->trailers, soup_message_headers_unref);
  g_clear_object (&test->compat);
  g_free (test);
}

static void
maybe_quit (void)
{
  if (client.eof && client.pending == 0)
    g_main_loop_quit (client.loop);
}

/* ------------------------------------------------------------------ */
/* Results                                                              */

static void
write_error_result (const char *test_name,
                    const char *message)
{
  Connectrpc__Conformance__V1__ClientCompatResponse resp =
    CONNECTRPC__CONFORMANCE__V1__CLIENT_COMPAT_RESPONSE__INIT;
  Connectrpc__Conformance__V1__ClientErrorResult result =
    CONNECTRPC__CONFORMANCE__V1__CLIENT_ERROR_RESULT__INIT;

  result.message = (char *) message;
  resp.test_name = (char *) test_name;
  resp.result_case = CONNECTRPC__CONFORMANCE__V1__CLIENT_COMPAT_RESPONSE__RESULT_ERROR;
  resp.error = &result;
  cf_write_frame (&resp.base);
}

/* Writes the test's ClientResponseResult and frees it. */
static void
test_finish (Test *test)
{
  g_autoptr(CfArena) arena = cf_arena_new ();
  Connectrpc__Conformance__V1__ClientCompatResponse resp =
    CONNECTRPC__CONFORMANCE__V1__CLIENT_COMPAT_RESPONSE__INIT;
  Connectrpc__Conformance__V1__ClientResponseResult result =
    CONNECTRPC__CONFORMANCE__V1__CLIENT_RESPONSE_RESULT__INIT;
  PbError pb_error = CONNECTRPC__CONFORMANCE__V1__ERROR__INIT;
  Payload empty = CONNECTRPC__CONFORMANCE__V1__CONFORMANCE_PAYLOAD__INIT;
  SoupMessageHeaders *headers = test->headers;
  SoupMessageHeaders *trailers = test->trailers;

  if (headers == NULL)
    headers = cp_call_options_get_response_headers (test->options);
  if (trailers == NULL)
    trailers = cp_call_options_get_response_trailers (test->options);
  cf_headers_to_pb (arena, headers, &result.response_headers, &result.n_response_headers);
  cf_headers_to_pb (arena, trailers, &result.response_trailers, &result.n_response_trailers);

  result.n_payloads = test->responses->len;
  result.payloads = cf_arena_alloc (arena, test->responses->len * sizeof (Payload *));
  for (guint i = 0; i < test->responses->len; i++)
    {
      AnyResponse *response = cp_message_get_c_message (g_ptr_array_index (test->responses, i));

      result.payloads[i] = response->payload != NULL ? response->payload : &empty;
    }

  if (test->error != NULL)
    {
      GPtrArray *details = cp_error_get_details (test->error);

      pb_error.code = (Connectrpc__Conformance__V1__Code) cp_error_get_code (test->error);
      if (test->error->message != NULL && test->error->message[0] != '\0')
        {
          pb_error._message_case = CONNECTRPC__CONFORMANCE__V1__ERROR___MESSAGE_MESSAGE;
          pb_error.message = test->error->message;
        }
      if (details != NULL)
        {
          pb_error.n_details = details->len;
          pb_error.details = cf_arena_alloc (arena, details->len * sizeof (CfAny *));
          for (guint i = 0; i < details->len; i++)
            {
              CpErrorDetail *detail = g_ptr_array_index (details, i);
              GBytes *value = cp_error_detail_get_value (detail);

              pb_error.details[i] = cf_any_new (arena, cp_error_detail_get_type_name (detail),
                                                value);
            }
        }
      result.error = &pb_error;
    }

  resp.test_name = test->req->test_name;
  resp.result_case = CONNECTRPC__CONFORMANCE__V1__CLIENT_COMPAT_RESPONSE__RESULT_RESPONSE;
  resp.response = &result;
  cf_write_frame (&resp.base);

  test_free (test);
  client.pending--;
  maybe_quit ();
}

/* ------------------------------------------------------------------ */
/* Response streams (ServerStream, BidiStream)                          */

static void duplex_send_next (Test *test);

static void
cancel_response_stream (Test *test)
{
  if (test->response_stream != NULL)
    cp_response_stream_cancel (test->response_stream);
}

static gboolean
on_cancel_timer (gpointer user_data)
{
  Test *test = user_data;

  test->timer = 0;
  g_cancellable_cancel (test->cancellable);
  cancel_response_stream (test);
  if (test->request_stream != NULL && test->response_stream == NULL)
    cp_request_stream_cancel (test->request_stream);
  return G_SOURCE_REMOVE;
}

static void
arm_cancel_after_close (Test *test)
{
  if (test->cancel == CANCEL_AFTER_CLOSE_SEND_MS)
    test->timer = g_timeout_add (test->cancel_value, on_cancel_timer, test);
}

static void
on_stream_headers (CpResponseStream   *stream,
                   SoupMessageHeaders *headers,
                   gpointer            user_data)
{
  Test *test = user_data;

  if (test->cancel == CANCEL_AFTER_NUM_RESPONSES && test->cancel_value == 0)
    cp_response_stream_cancel (stream);
}

static void
on_stream_message (CpResponseStream *stream,
                   CpMessage        *message,
                   gpointer          user_data)
{
  Test *test = user_data;

  g_ptr_array_add (test->responses, g_object_ref (message));
  if (test->cancel == CANCEL_AFTER_NUM_RESPONSES && test->responses->len >= test->cancel_value)
    {
      cp_response_stream_cancel (stream);
      return;
    }
  /* Full duplex: the next request once the previous one was answered,
   * the end of the request once the last one was. */
  if (test->duplex && !test->duplex_closed)
    duplex_send_next (test);
}

static void
on_stream_closed (CpResponseStream *stream,
                  const GError     *error,
                  gpointer          user_data)
{
  Test *test = user_data;

  test->error = error != NULL ? g_error_copy (error) : NULL;
  test->headers = soup_message_headers_ref (cp_response_stream_get_response_headers (stream));
  test->trailers = soup_message_headers_ref (cp_response_stream_get_response_trailers (stream));
  test_finish (test);
}

static void
watch_response_stream (Test             *test,
                       CpResponseStream *stream)
{
  test->response_stream = stream;
  g_signal_connect (stream, "headers", G_CALLBACK (on_stream_headers), test);
  g_signal_connect (stream, "message", G_CALLBACK (on_stream_message), test);
  g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), test);
  if (test->cancel == CANCEL_BEFORE_CLOSE_SEND)
    {
      cp_response_stream_cancel (stream);
      return;
    }
  arm_cancel_after_close (test);
  /* Sent now rather than from an idle callback, which would wait behind
   * every request the runner has queued (the deadline is running). This may
   * close the stream, and finish the test, at once: keep it last. */
  cp_response_stream_start (stream);
}

/* ------------------------------------------------------------------ */
/* Request streams (ClientStream, BidiStream)                           */

static void send_next (Test *test);

static void
on_client_stream_closed (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  Test *test = user_data;
  CpMessage *response = cp_request_stream_close_finish (CP_REQUEST_STREAM (source), result,
                                                        &test->error);

  if (response != NULL)
    g_ptr_array_add (test->responses, response);
  test->headers = soup_message_headers_ref (
    cp_request_stream_get_response_headers (test->request_stream));
  test->trailers = soup_message_headers_ref (
    cp_request_stream_get_response_trailers (test->request_stream));
  test_finish (test);
}

static void
close_request_stream (Test *test)
{
  if (test->cancel == CANCEL_BEFORE_CLOSE_SEND)
    cp_request_stream_cancel (test->request_stream);

  if (test->req->stream_type == CONNECTRPC__CONFORMANCE__V1__STREAM_TYPE__STREAM_TYPE_CLIENT_STREAM)
    {
      cp_request_stream_close_async (test->request_stream, test->cancellable,
                                     on_client_stream_closed, test);
      arm_cancel_after_close (test);
    }
  else
    watch_response_stream (test, cp_request_stream_close_and_receive (test->request_stream));
}

static gboolean
on_send_timer (gpointer user_data)
{
  Test *test = user_data;
  g_autoptr(GError) error = NULL;

  test->timer = 0;
  if (!cp_request_stream_send (test->request_stream,
                               g_ptr_array_index (test->requests, test->next_send), &error))
    g_printerr ("conformance client: %s: %s\n", test->req->test_name, error->message);
  test->next_send++;
  send_next (test);
  return G_SOURCE_REMOVE;
}

static void
send_next (Test *test)
{
  if (test->next_send >= test->requests->len)
    {
      close_request_stream (test);
      return;
    }
  if (test->req->request_delay_ms > 0)
    test->timer = g_timeout_add (test->req->request_delay_ms, on_send_timer, test);
  else
    on_send_timer (test);
}

/* Full-duplex bidi, as the reference client: send a request, receive its
 * response (on_stream_message () calls back), and so on; once the last
 * one was answered (or when there is none), close or cancel the request. */
static void
duplex_send_next (Test *test)
{
  g_autoptr(GError) error = NULL;

  if (test->next_send < test->requests->len)
    {
      if (!cp_request_stream_send (test->request_stream,
                                   g_ptr_array_index (test->requests, test->next_send), &error))
        g_printerr ("conformance client: %s: %s\n", test->req->test_name, error->message);
      test->next_send++;
      return;
    }
  test->duplex_closed = TRUE;
  if (test->cancel == CANCEL_BEFORE_CLOSE_SEND)
    {
      cp_response_stream_cancel (test->response_stream);
      return;
    }
  cp_request_stream_close_send (test->request_stream);
  arm_cancel_after_close (test);
}

static void
start_duplex (Test *test)
{
  CpResponseStream *stream = cp_request_stream_start_duplex (test->request_stream);

  test->duplex = TRUE;
  test->response_stream = stream;
  g_signal_connect (stream, "headers", G_CALLBACK (on_stream_headers), test);
  g_signal_connect (stream, "message", G_CALLBACK (on_stream_message), test);
  g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), test);
  /* The first request is queued before the start, which may finish the
   * test at once: keep it last (as in watch_response_stream ()). */
  duplex_send_next (test);
  if (test->duplex_closed && test->cancel == CANCEL_BEFORE_CLOSE_SEND)
    return;
  cp_response_stream_start (stream);
}

/* ------------------------------------------------------------------ */
/* Unary calls                                                          */

static void
on_unary_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Test *test = user_data;
  CpMessage *response;

  if (CP_IS_PROXY (source))
    response = cp_proxy_call_finish (CP_PROXY (source), result, &test->error);
  else
    response = cp_channel_call_finish (CP_CHANNEL (source), result, &test->error);
  if (response != NULL)
    g_ptr_array_add (test->responses, response);
  test_finish (test);
}

static void
start_unary (Test *test)
{
  CompatRequest *req = test->req;
  CpMessage *request = g_ptr_array_index (test->requests, 0);
  const char *method = req->_method_case ? req->method : "";

  if (test->cancel == CANCEL_BEFORE_CLOSE_SEND)
    g_cancellable_cancel (test->cancellable);

  if (test->proxy != NULL && strcmp (method, "Unary") == 0)
    connectrpc_conformance_service_call_unary (test->proxy, CONNECTRPC_UNARY_REQUEST (request),
                                               test->options, test->cancellable,
                                               on_unary_done, test);
  else if (test->proxy != NULL && strcmp (method, "IdempotentUnary") == 0)
    connectrpc_conformance_service_call_idempotent_unary (
      test->proxy, CONNECTRPC_IDEMPOTENT_UNARY_REQUEST (request), test->options,
      test->cancellable, on_unary_done, test);
  else if (test->proxy != NULL && strcmp (method, "Unimplemented") == 0)
    connectrpc_conformance_service_call_unimplemented (
      test->proxy, CONNECTRPC_UNIMPLEMENTED_REQUEST (request), test->options,
      test->cancellable, on_unary_done, test);
  else
    {
      /* A method or service ConformanceService does not have: call the
       * procedure directly through the same engine. */
      g_autofree char *procedure = g_strdup_printf ("/%s/%s",
                                                    req->_service_case ? req->service : "",
                                                    method);

      cp_channel_call_async (test->channel, procedure, request,
                             CONNECTRPC_TYPE_UNIMPLEMENTED_RESPONSE, test->options,
                             test->cancellable, on_unary_done, test);
    }
  arm_cancel_after_close (test);
}

/* ------------------------------------------------------------------ */
/* Setting a test up                                                    */

/* A database trusting only @pem (the server's self-signed certificate).
 * GTlsFileDatabase reads its file lazily: it stays until the client exits. */
static GTlsDatabase *
tls_database_for (const ProtobufCBinaryData *pem,
                  GError                   **error)
{
  g_autofree char *path = NULL;
  GTlsDatabase *database;
  int fd;

  fd = g_file_open_tmp ("cf-ca-XXXXXX.pem", &path, error);
  if (fd < 0)
    return NULL;
  close (fd);
  g_ptr_array_add (client.ca_files, g_strdup (path));
  if (!g_file_set_contents (path, (const char *) pem->data, pem->len, error))
    return NULL;
  database = g_tls_file_database_new (path, error);
  return database;
}

static CpChannel *
channel_for (CompatRequest *req,
             GError       **error)
{
  gboolean tls = req->server_tls_cert.len > 0;
  g_autofree char *url = g_strdup_printf ("%s://%s:%u", tls ? "https" : "http",
                                          req->host, req->port);
  gboolean h2 = req->http_version == CONNECTRPC__CONFORMANCE__V1__HTTPVERSION__HTTP_VERSION_2;
  CpProtocol protocol;
  g_autofree char *key = NULL;
  CpChannel *channel;

  switch (req->protocol)
    {
    case CONNECTRPC__CONFORMANCE__V1__PROTOCOL__PROTOCOL_CONNECT:
      protocol = CP_PROTOCOL_CONNECT;
      break;
    case CONNECTRPC__CONFORMANCE__V1__PROTOCOL__PROTOCOL_GRPC:
      protocol = CP_PROTOCOL_GRPC;
      break;
    case CONNECTRPC__CONFORMANCE__V1__PROTOCOL__PROTOCOL_GRPC_WEB:
      protocol = CP_PROTOCOL_GRPC_WEB;
      break;
    default:
      g_set_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                   "protocol %d is not supported", req->protocol);
      return NULL;
    }
  /* Channels with a client certificate are kept apart from those without,
   * HTTP/2 ones (CpChannel:http-version) from HTTP/1.1 ones, and one per
   * protocol (CpChannel:protocol). */
  key = g_strdup_printf ("%s%s%s %d", url, req->client_tls_creds != NULL ? " mtls" : "",
                         h2 ? " h2" : "", (int) protocol);
  channel = g_hash_table_lookup (client.channels, key);

  if (channel == NULL)
    {
      g_autoptr(CpChannel) created = cp_channel_new (url, error);

      if (created == NULL)
        return NULL;
      if (h2)
        cp_channel_set_http_version (created, CP_HTTP_VERSION_HTTP_2);
      cp_channel_set_protocol (created, protocol);
      if (tls)
        {
          g_autoptr(GTlsDatabase) database = tls_database_for (&req->server_tls_cert, error);

          if (database == NULL)
            return NULL;
          g_object_set (created, "tls-database", database, NULL);
        }
      if (tls && req->client_tls_creds != NULL)
        {
          g_autofree char *pem = g_strdup_printf ("%.*s\n%.*s",
                                                  (int) req->client_tls_creds->cert.len,
                                                  (const char *) req->client_tls_creds->cert.data,
                                                  (int) req->client_tls_creds->key.len,
                                                  (const char *) req->client_tls_creds->key.data);
          g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_pem (pem, -1, error);

          if (certificate == NULL)
            return NULL;
          g_object_set (created, "tls-certificate", certificate, NULL);
        }
      channel = created;
      g_hash_table_insert (client.channels, g_steal_pointer (&key), g_steal_pointer (&created));
    }
  return g_object_ref (channel);
}

/* Sets the test up; FALSE with *message when the call cannot be tried. */
static gboolean
test_setup (Test  *test,
            char **message)
{
  CompatRequest *req = test->req;
  g_autoptr(GError) error = NULL;

  test->channel = channel_for (req, &error);
  if (test->channel == NULL)
    {
      *message = g_strdup (error->message);
      return FALSE;
    }
  if (req->_service_case && strcmp (req->service, SERVICE_NAME) == 0)
    test->proxy = connectrpc_conformance_service_proxy_new (test->channel);

  test->options = cp_call_options_new ();
  switch (req->codec)
    {
    case CONNECTRPC__CONFORMANCE__V1__CODEC__CODEC_PROTO:
      cp_call_options_set_codec (test->options, CP_CODEC_PROTO);
      break;
    case CONNECTRPC__CONFORMANCE__V1__CODEC__CODEC_JSON:
      cp_call_options_set_codec (test->options, CP_CODEC_JSON);
      break;
    default:
      *message = g_strdup_printf ("codec %d is not supported", req->codec);
      return FALSE;
    }
  switch (req->compression)
    {
    case CONNECTRPC__CONFORMANCE__V1__COMPRESSION__COMPRESSION_UNSPECIFIED:
    case CONNECTRPC__CONFORMANCE__V1__COMPRESSION__COMPRESSION_IDENTITY:
      cp_call_options_set_compression (test->options, CP_COMPRESSION_IDENTITY);
      break;
    case CONNECTRPC__CONFORMANCE__V1__COMPRESSION__COMPRESSION_GZIP:
      cp_call_options_set_compression (test->options, CP_COMPRESSION_GZIP);
      break;
    default:
      *message = g_strdup_printf ("compression %d is not supported", req->compression);
      return FALSE;
    }
  /* A case without a timeout expects none on the wire: not the channel's
   * default either (the reference server echoes what it received). */
  cp_call_options_set_timeout_ms (test->options, req->_timeout_ms_case ? (gint64) req->timeout_ms : -1);
  cp_call_options_set_use_get (test->options, req->use_get_http_method);
  cf_headers_from_pb (cp_call_options_get_request_headers (test->options),
                      req->request_headers, req->n_request_headers);

  for (size_t i = 0; i < req->n_request_messages; i++)
    {
      const CfAny *any = req->request_messages[i];
      GType type = cp_message_type_from_name (cf_any_type_name (any));
      g_autoptr(GBytes) value = g_bytes_new (any->value.data, any->value.len);
      CpMessage *request;

      if (type == G_TYPE_INVALID)
        {
          *message = g_strdup_printf ("unknown request type %s", any->type_url);
          return FALSE;
        }
      request = cp_message_new_from_bytes (type, CP_CODEC_PROTO, value, &error);
      if (request == NULL)
        {
          *message = g_strdup (error->message);
          return FALSE;
        }
      g_ptr_array_add (test->requests, request);
    }

  if (req->cancel != NULL)
    switch (req->cancel->cancel_timing_case)
      {
      case CONNECTRPC__CONFORMANCE__V1__CLIENT_COMPAT_REQUEST__CANCEL__CANCEL_TIMING_BEFORE_CLOSE_SEND:
        test->cancel = CANCEL_BEFORE_CLOSE_SEND;
        break;
      case CONNECTRPC__CONFORMANCE__V1__CLIENT_COMPAT_REQUEST__CANCEL__CANCEL_TIMING_AFTER_CLOSE_SEND_MS:
        test->cancel = CANCEL_AFTER_CLOSE_SEND_MS;
        test->cancel_value = req->cancel->after_close_send_ms;
        break;
      case CONNECTRPC__CONFORMANCE__V1__CLIENT_COMPAT_REQUEST__CANCEL__CANCEL_TIMING_AFTER_NUM_RESPONSES:
        test->cancel = CANCEL_AFTER_NUM_RESPONSES;
        test->cancel_value = req->cancel->after_num_responses;
        break;
      default:
        break;
      }
  return TRUE;
}

static void test_run (Test *test);

static void
start_test (GBytes *frame)
{
  Test *test = g_new0 (Test, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;
  CompatRequest *req;

  test->compat = cp_message_new_from_bytes (CONNECTRPC_TYPE_CLIENT_COMPAT_REQUEST,
                                            CP_CODEC_PROTO, frame, &error);
  if (test->compat == NULL)
    {
      g_printerr ("conformance client: bad ClientCompatRequest: %s\n", error->message);
      g_free (test);
      return;
    }
  req = test->req = cp_message_get_c_message (test->compat);
  test->cancellable = g_cancellable_new ();
  test->requests = g_ptr_array_new_with_free_func (g_object_unref);
  test->responses = g_ptr_array_new_with_free_func (g_object_unref);
  client.pending++;

  if (!test_setup (test, &message))
    {
      write_error_result (req->test_name, message);
      test_free (test);
      client.pending--;
      maybe_quit ();
      return;
    }

  if (req->http_version != CONNECTRPC__CONFORMANCE__V1__HTTPVERSION__HTTP_VERSION_2)
    {
      test->slots = g_hash_table_lookup (client.slots, test->channel);
      if (test->slots == NULL)
        {
          test->slots = g_new0 (Slots, 1);
          g_queue_init (&test->slots->waiting);
          g_hash_table_insert (client.slots, test->channel, test->slots);
        }
      if (test->slots->in_flight >= HTTP1_MAX_IN_FLIGHT)
        {
          g_queue_push_tail (&test->slots->waiting, test);
          return;
        }
      test->slots->in_flight++;
      test->holds_slot = TRUE;
    }
  test_run (test);
}

static gboolean
on_slots_idle (gpointer user_data)
{
  Slots *slots = user_data;

  slots->idle = 0;
  while (slots->in_flight < HTTP1_MAX_IN_FLIGHT && !g_queue_is_empty (&slots->waiting))
    {
      Test *test = g_queue_pop_head (&slots->waiting);

      slots->in_flight++;
      test->holds_slot = TRUE;
      test_run (test);
    }
  return G_SOURCE_REMOVE;
}

/* A call of the channel ended: the next waiting case starts from the main
 * loop (never from within the end of another). */
static void
slots_release (Slots *slots)
{
  slots->in_flight--;
  if (!g_queue_is_empty (&slots->waiting) && slots->idle == 0)
    slots->idle = g_idle_add (on_slots_idle, slots);
}

/* Makes the test's call. */
static void
test_run (Test *test)
{
  CompatRequest *req = test->req;

  switch (req->stream_type)
    {
    case CONNECTRPC__CONFORMANCE__V1__STREAM_TYPE__STREAM_TYPE_UNARY:
      if (test->requests->len != 1)
        break;
      start_unary (test);
      return;

    case CONNECTRPC__CONFORMANCE__V1__STREAM_TYPE__STREAM_TYPE_SERVER_STREAM:
      if (test->requests->len != 1 || test->proxy == NULL)
        break;
      watch_response_stream (test, connectrpc_conformance_service_call_server_stream (
                               test->proxy,
                               CONNECTRPC_SERVER_STREAM_REQUEST (g_ptr_array_index (test->requests, 0)),
                               test->options));
      return;

    case CONNECTRPC__CONFORMANCE__V1__STREAM_TYPE__STREAM_TYPE_CLIENT_STREAM:
      if (test->proxy == NULL)
        break;
      test->request_stream = connectrpc_conformance_service_call_client_stream (test->proxy,
                                                                                test->options);
      send_next (test);
      return;

    case CONNECTRPC__CONFORMANCE__V1__STREAM_TYPE__STREAM_TYPE_FULL_DUPLEX_BIDI_STREAM:
      if (test->proxy == NULL)
        break;
      test->request_stream = connectrpc_conformance_service_call_bidi_stream (test->proxy,
                                                                              test->options);
      start_duplex (test);
      return;

    case CONNECTRPC__CONFORMANCE__V1__STREAM_TYPE__STREAM_TYPE_HALF_DUPLEX_BIDI_STREAM:
      if (test->proxy == NULL)
        break;
      test->request_stream = connectrpc_conformance_service_call_bidi_stream (test->proxy,
                                                                              test->options);
      send_next (test);
      return;

    default:
      break;
    }

  write_error_result (req->test_name, "unsupported stream type or request count");
  test_free (test);
  client.pending--;
  maybe_quit ();
}

/* ------------------------------------------------------------------ */
/* Reading stdin                                                        */

static gboolean
on_frame (gpointer user_data)
{
  GBytes *frame = user_data;

  if (frame == NULL)
    {
      client.eof = TRUE;
      maybe_quit ();
      return G_SOURCE_REMOVE;
    }
  start_test (frame);
  g_bytes_unref (frame);
  return G_SOURCE_REMOVE;
}

static gpointer
reader_thread (gpointer user_data)
{
  GMainContext *context = user_data;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      GBytes *frame = NULL;

      if (!cf_read_frame (&frame, &error))
        {
          if (error != NULL)
            g_printerr ("conformance client: %s\n", error->message);
          g_main_context_invoke (context, on_frame, NULL);
          return NULL;
        }
      g_main_context_invoke (context, on_frame, frame);
    }
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GThread) reader = NULL;

  cf_register_types ();
  client.loop = g_main_loop_new (NULL, FALSE);
  client.channels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  /* Keyed by the channels, which live until the end: freed before them. */
  client.slots = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  client.ca_files = g_ptr_array_new_with_free_func (g_free);

  reader = g_thread_new ("stdin", reader_thread, g_main_context_default ());
  g_main_loop_run (client.loop);
  g_thread_join (g_steal_pointer (&reader));

  g_hash_table_unref (client.slots);
  g_hash_table_unref (client.channels);
  for (guint i = 0; i < client.ca_files->len; i++)
    g_unlink (g_ptr_array_index (client.ca_files, i));
  g_ptr_array_unref (client.ca_files);
  g_main_loop_unref (client.loop);
  return 0;
}
