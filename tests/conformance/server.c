/* server.c: the conformance server under test
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Reads one ServerCompatRequest from stdin, serves
 * connectrpc.conformance.v1.ConformanceService through the generated
 * Skeleton on a CpRpcServer (over TLS with the given server credentials;
 * requiring client certificates that chain to client_tls_cert when given),
 * writes ServerCompatResponse{host, port, pem_cert} to stdout, and runs
 * until SIGTERM. Semantics: https://github.com/connectrpc/conformance.
 */
#include "cf-common.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#define REQUEST_INFO_NAME "connectrpc.conformance.v1.ConformancePayload.RequestInfo"

typedef Connectrpc__Conformance__V1__UnaryResponseDefinition UnaryDef;
typedef Connectrpc__Conformance__V1__StreamResponseDefinition StreamDef;
typedef Connectrpc__Conformance__V1__ConformancePayload Payload;
typedef Connectrpc__Conformance__V1__ConformancePayload__RequestInfo RequestInfo;
typedef Connectrpc__Conformance__V1__Error PbError;

/* The shape shared by every *Request message of the service: a response
 * definition (field 1) first. */
typedef struct {
  ProtobufCMessage base;
  gpointer response_definition;
} AnyRequest;

/* ------------------------------------------------------------------ */
/* RequestInfo                                                          */

/* The RequestInfo of a call that received @requests (CpMessages), packed. */
static GBytes *
request_info_bytes (CpInvocation *invocation,
                    GPtrArray    *requests)
{
  g_autoptr(CfArena) arena = cf_arena_new ();
  RequestInfo info = CONNECTRPC__CONFORMANCE__V1__CONFORMANCE_PAYLOAD__REQUEST_INFO__INIT;
  gint64 timeout_ms = cp_invocation_get_timeout_ms (invocation);

  cf_headers_to_pb (arena, cp_invocation_get_request_headers (invocation),
                    &info.request_headers, &info.n_request_headers);
  if (timeout_ms >= 0)
    {
      info._timeout_ms_case =
        CONNECTRPC__CONFORMANCE__V1__CONFORMANCE_PAYLOAD__REQUEST_INFO___TIMEOUT_MS_TIMEOUT_MS;
      info.timeout_ms = timeout_ms;
    }
  info.n_requests = requests->len;
  info.requests = cf_arena_alloc (arena, requests->len * sizeof (CfAny *));
  for (guint i = 0; i < requests->len; i++)
    {
      CpMessage *request = g_ptr_array_index (requests, i);
      g_autoptr(GBytes) value = cp_message_to_bytes (request);

      info.requests[i] = cf_any_new (arena, cp_message_get_full_name (request), value);
    }
  return cf_pack (&info.base);
}

static RequestInfo *
request_info_unpack (GBytes *bytes)
{
  return (RequestInfo *) protobuf_c_message_unpack (
    &connectrpc__conformance__v1__conformance_payload__request_info__descriptor, NULL,
    g_bytes_get_size (bytes), g_bytes_get_data (bytes, NULL));
}

/* A response message of @type carrying @data and, if not NULL, the
 * RequestInfo @info_bytes. */
static CpMessage *
response_message (GType                      type,
                  const ProtobufCBinaryData *data,
                  GBytes                    *info_bytes)
{
  Payload payload = CONNECTRPC__CONFORMANCE__V1__CONFORMANCE_PAYLOAD__INIT;
  RequestInfo *info = info_bytes != NULL ? request_info_unpack (info_bytes) : NULL;
  CpMessage *message;

  if (data != NULL)
    payload.data = *data;
  payload.request_info = info;
  message = cf_message_with_payload (type, &payload.base);
  if (info != NULL)
    protobuf_c_message_free_unpacked (&info->base, NULL);
  return message;
}

/* The GError of @def (nullable) with @info_bytes appended to its details. */
static GError *
error_from_def (const PbError *def,
                GBytes        *info_bytes)
{
  int number = def->code;
  CpErrorCode code = number >= CP_ERROR_CANCELED && number <= CP_ERROR_UNAUTHENTICATED
                     ? (CpErrorCode) number : CP_ERROR_UNKNOWN;
  const char *text = def->_message_case ==
                     CONNECTRPC__CONFORMANCE__V1__ERROR___MESSAGE_MESSAGE ? def->message : "";
  GError *error = g_error_new_literal (CP_ERROR, code, text);

  for (size_t i = 0; i < def->n_details; i++)
    {
      const CfAny *any = def->details[i];
      g_autoptr(GBytes) value = g_bytes_new (any->value.data, any->value.len);
      g_autoptr(CpErrorDetail) detail = cp_error_detail_new (cf_any_type_name (any), value);

      cp_error_add_detail (error, detail);
    }
  if (info_bytes != NULL)
    {
      g_autoptr(CpErrorDetail) detail = cp_error_detail_new (REQUEST_INFO_NAME, info_bytes);

      cp_error_add_detail (error, detail);
    }
  return error;
}

static void
set_metadata (CpInvocation     *invocation,
              CfHeader * const *headers,
              size_t            n_headers,
              CfHeader * const *trailers,
              size_t            n_trailers)
{
  cf_headers_from_pb (cp_invocation_get_response_headers (invocation), headers, n_headers);
  cf_headers_from_pb (cp_invocation_get_response_trailers (invocation), trailers, n_trailers);
}

/* ------------------------------------------------------------------ */
/* Unary answers (Unary, IdempotentUnary, ClientStream)                 */

typedef struct {
  CpInvocation *invocation;
  CpMessage    *first;       /* holds the definition */
  GPtrArray    *requests;    /* of CpMessage */
  gpointer      duplex;      /* full-duplex BidiStream: its Stream, once started */
} Call;

static Call *
call_new (CpInvocation *invocation)
{
  Call *call = g_new0 (Call, 1);

  call->invocation = g_object_ref (invocation);
  call->requests = g_ptr_array_new_with_free_func (g_object_unref);
  return call;
}

static void
call_free (Call *call)
{
  g_object_unref (call->invocation);
  g_ptr_array_unref (call->requests);
  g_free (call);
}

static gpointer
call_definition (Call *call)
{
  if (call->requests->len == 0)
    return NULL;
  return ((AnyRequest *) cp_message_get_c_message (g_ptr_array_index (call->requests, 0)))
           ->response_definition;
}

static gboolean
answer_unary (gpointer user_data)
{
  Call *call = user_data;
  const UnaryDef *def = call_definition (call);
  GType type = cp_method_info_get_output_type (cp_invocation_get_method_info (call->invocation));
  g_autoptr(GBytes) info = request_info_bytes (call->invocation, call->requests);

  if (def != NULL &&
      def->response_case == CONNECTRPC__CONFORMANCE__V1__UNARY_RESPONSE_DEFINITION__RESPONSE_ERROR)
    cp_invocation_take_error (call->invocation, error_from_def (def->error, info));
  else
    {
      const ProtobufCBinaryData *data =
        def != NULL && def->response_case ==
        CONNECTRPC__CONFORMANCE__V1__UNARY_RESPONSE_DEFINITION__RESPONSE_RESPONSE_DATA
        ? &def->response_data : NULL;
      g_autoptr(CpMessage) response = response_message (type, data, info);

      cp_invocation_return_message (call->invocation, response);
    }
  call_free (call);
  return G_SOURCE_REMOVE;
}

static void
start_unary_answer (Call *call)
{
  const UnaryDef *def = call_definition (call);

  if (def != NULL)
    set_metadata (call->invocation, def->response_headers, def->n_response_headers,
                  def->response_trailers, def->n_response_trailers);
  if (def != NULL && def->response_delay_ms > 0)
    g_timeout_add (def->response_delay_ms, answer_unary, call);
  else
    answer_unary (call);
}

static gboolean
on_unary (ConnectrpcConformanceService *object,
          CpInvocation                 *invocation,
          CpMessage                    *request,
          gpointer                      user_data)
{
  Call *call = call_new (invocation);

  g_ptr_array_add (call->requests, g_object_ref (request));
  start_unary_answer (call);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Stream answers (ServerStream, half-duplex BidiStream)                */

typedef struct {
  Call     *call;
  GBytes   *info;
  size_t    next;
  gboolean  sent;
  guint     described;  /* full duplex: requests already in a RequestInfo */
} Stream;

static void stream_step (Stream *stream);

static void
stream_free (Stream *stream)
{
  call_free (stream->call);
  g_clear_pointer (&stream->info, g_bytes_unref);
  g_free (stream);
}

static gboolean
stream_send_next (gpointer user_data)
{
  Stream *stream = user_data;
  const StreamDef *def = call_definition (stream->call);
  CpInvocation *invocation = stream->call->invocation;
  GType type = cp_method_info_get_output_type (cp_invocation_get_method_info (invocation));
  g_autoptr(CpMessage) message = NULL;
  g_autoptr(GError) error = NULL;

  message = response_message (type, &def->response_data[stream->next],
                              stream->sent ? NULL : stream->info);
  stream->next++;
  if (!cp_invocation_send_message (invocation, message, &error))
    {
      /* The client went away or the deadline passed: the call is over. */
      cp_invocation_take_error (invocation, g_steal_pointer (&error));
      stream_free (stream);
      return G_SOURCE_REMOVE;
    }
  stream->sent = TRUE;
  stream_step (stream);
  return G_SOURCE_REMOVE;
}

static void
stream_step (Stream *stream)
{
  const StreamDef *def = call_definition (stream->call);
  CpInvocation *invocation = stream->call->invocation;

  if (def != NULL && stream->next < def->n_response_data)
    {
      if (def->response_delay_ms > 0)
        g_timeout_add (def->response_delay_ms, stream_send_next, stream);
      else
        stream_send_next (stream);
      return;
    }
  if (def != NULL && def->error != NULL)
    cp_invocation_take_error (invocation, error_from_def (def->error,
                                                          stream->sent ? NULL : stream->info));
  else
    cp_invocation_return_ok (invocation);
  stream_free (stream);
}

static void
start_stream_answer (Call *call)
{
  Stream *stream = g_new0 (Stream, 1);
  const StreamDef *def = call_definition (call);

  stream->call = call;
  stream->info = request_info_bytes (call->invocation, call->requests);
  if (def != NULL)
    set_metadata (call->invocation, def->response_headers, def->n_response_headers,
                  def->response_trailers, def->n_response_trailers);
  cp_invocation_send_headers (call->invocation);
  stream_step (stream);
}

static gboolean
on_server_stream (ConnectrpcConformanceService  *object,
                  CpInvocation                  *invocation,
                  ConnectrpcServerStreamRequest *request,
                  gpointer                       user_data)
{
  Call *call = call_new (invocation);

  g_ptr_array_add (call->requests, g_object_ref (request));
  start_stream_answer (call);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Reading request streams (ClientStream, BidiStream)                   */

static gboolean is_full_duplex  (Call *call);
static void     duplex_received (Call *call);
static void     duplex_end      (Call *call);

static void
on_received (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Call *call = user_data;
  g_autoptr(GError) error = NULL;
  CpMessage *message = cp_invocation_receive_finish (call->invocation, result, &error);

  if (message != NULL)
    {
      g_ptr_array_add (call->requests, message);
      if (is_full_duplex (call))
        duplex_received (call);
      else
        cp_invocation_receive_async (call->invocation, NULL, on_received, call);
      return;
    }
  if (error != NULL)
    {
      /* The engine has answered the call already (bad input, cancel). */
      if (call->duplex != NULL)
        {
          Stream *stream = call->duplex;

          g_clear_pointer (&stream->info, g_bytes_unref);
          g_free (stream);
        }
      call_free (call);
      return;
    }
  if (call->duplex != NULL)
    {
      duplex_end (call);
      return;
    }
  if (cp_method_info_get_kind (cp_invocation_get_method_info (call->invocation)) ==
      CP_METHOD_BIDI_STREAMING)
    start_stream_answer (call);
  else
    start_unary_answer (call);
}

/* Full-duplex BidiStream (over HTTP/2), as the reference server does it:
 * one response per request while the definition has some, each with a
 * RequestInfo of the requests received since the previous response; once
 * they run out, the outcome without reading further; the rest, and the
 * outcome, when the client closes first. */
static void duplex_answer_sent (Stream *stream);

static gboolean
duplex_send (gpointer user_data)
{
  Stream *stream = user_data;
  const StreamDef *def = call_definition (stream->call);
  CpInvocation *invocation = stream->call->invocation;
  GType type = cp_method_info_get_output_type (cp_invocation_get_method_info (invocation));
  g_autoptr(CpMessage) message = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) pending = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = stream->described; i < stream->call->requests->len; i++)
    g_ptr_array_add (pending, g_object_ref (g_ptr_array_index (stream->call->requests, i)));
  stream->described = stream->call->requests->len;
  g_clear_pointer (&stream->info, g_bytes_unref);
  stream->info = request_info_bytes (invocation, pending);
  message = response_message (type, &def->response_data[stream->next], stream->info);
  stream->next++;
  if (!cp_invocation_send_message (invocation, message, &error))
    {
      cp_invocation_take_error (invocation, g_steal_pointer (&error));
      stream_free (stream);
      return G_SOURCE_REMOVE;
    }
  stream->sent = TRUE;
  duplex_answer_sent (stream);
  return G_SOURCE_REMOVE;
}

static gboolean
is_full_duplex (Call *call)
{
  Connectrpc__Conformance__V1__BidiStreamRequest *first;

  if (cp_method_info_get_kind (cp_invocation_get_method_info (call->invocation)) !=
      CP_METHOD_BIDI_STREAMING || call->requests->len == 0)
    return FALSE;
  first = cp_message_get_c_message (g_ptr_array_index (call->requests, 0));
  return first->full_duplex;
}

static void
duplex_answer_sent (Stream *stream)
{
  cp_invocation_receive_async (stream->call->invocation, NULL, on_received, stream->call);
}

/* A request of a full-duplex stream arrived (@call->requests has it). */
static void
duplex_received (Call *call)
{
  Stream *stream = call->duplex;
  const StreamDef *def = call_definition (call);

  if (stream == NULL)
    {
      stream = g_new0 (Stream, 1);
      stream->call = call;
      call->duplex = stream;
      if (def != NULL)
        set_metadata (call->invocation, def->response_headers, def->n_response_headers,
                      def->response_trailers, def->n_response_trailers);
      cp_invocation_send_headers (call->invocation);
    }
  if (def == NULL || stream->next >= def->n_response_data)
    {
      duplex_end (call);
      return;
    }
  if (def->response_delay_ms > 0)
    g_timeout_add (def->response_delay_ms, duplex_send, stream);
  else
    duplex_send (stream);
}

/* The client closed a full-duplex stream: the remaining answers. */
static void
duplex_end (Call *call)
{
  Stream *stream = call->duplex;

  if (!stream->sent)
    {
      g_clear_pointer (&stream->info, g_bytes_unref);
      stream->info = request_info_bytes (call->invocation, call->requests);
    }
  else
    g_clear_pointer (&stream->info, g_bytes_unref);
  stream_step (stream);
}

static gboolean
on_request_stream (ConnectrpcConformanceService *object,
                   CpInvocation                 *invocation,
                   gpointer                      user_data)
{
  Call *call = call_new (invocation);

  cp_invocation_receive_async (invocation, NULL, on_received, call);
  return TRUE;
}

/* ------------------------------------------------------------------ */

static gboolean
on_sigterm (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) request = NULL;
  g_autoptr(CpRpcServer) server = NULL;
  g_autoptr(ConnectrpcConformanceService) skeleton = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autofree char *url = NULL;
  g_autofree char *client_ca_path = NULL;
  Connectrpc__Conformance__V1__ServerCompatRequest *req;
  Connectrpc__Conformance__V1__ServerCompatResponse resp =
    CONNECTRPC__CONFORMANCE__V1__SERVER_COMPAT_RESPONSE__INIT;

  cf_register_types ();
  if (!cf_read_frame (&frame, &error))
    {
      g_printerr ("conformance server: no ServerCompatRequest: %s\n",
                  error ? error->message : "end of input");
      return 1;
    }
  request = cp_message_new_from_bytes (CONNECTRPC_TYPE_SERVER_COMPAT_REQUEST, CP_CODEC_PROTO,
                                       frame, &error);
  if (request == NULL)
    {
      g_printerr ("conformance server: bad ServerCompatRequest: %s\n", error->message);
      return 1;
    }
  req = cp_message_get_c_message (request);

  loop = g_main_loop_new (NULL, FALSE);
  server = cp_rpc_server_new ();
  if (req->use_tls)
    {
      g_autoptr(GTlsCertificate) certificate = NULL;
      g_autofree char *pem = NULL;

      if (req->server_creds == NULL)
        {
          g_printerr ("conformance server: TLS without server credentials\n");
          return 1;
        }
      pem = g_strdup_printf ("%.*s\n%.*s",
                             (int) req->server_creds->cert.len,
                             (const char *) req->server_creds->cert.data,
                             (int) req->server_creds->key.len,
                             (const char *) req->server_creds->key.data);
      certificate = g_tls_certificate_new_from_pem (pem, -1, &error);
      if (certificate == NULL)
        {
          g_printerr ("conformance server: bad server credentials: %s\n", error->message);
          return 1;
        }
      g_object_set (server, "tls-certificate", certificate, NULL);
      resp.pem_cert = req->server_creds->cert;
    }
  if (req->client_tls_cert.len > 0)
    {
      /* Mutual TLS: require a client certificate that chains to the one
       * given (GTlsFileDatabase wants a file; it is removed at exit). */
      g_autoptr(GTlsDatabase) database = NULL;
      int fd = g_file_open_tmp ("cf-client-ca-XXXXXX.pem", &client_ca_path, &error);

      if (fd >= 0)
        {
          close (fd);
          if (g_file_set_contents (client_ca_path, (const char *) req->client_tls_cert.data,
                                   (gssize) req->client_tls_cert.len, &error))
            database = g_tls_file_database_new (client_ca_path, &error);
        }
      if (database == NULL)
        {
          g_printerr ("conformance server: bad client certificate: %s\n", error->message);
          if (client_ca_path != NULL)
            g_unlink (client_ca_path);
          return 1;
        }
      g_object_set (server, "tls-database", database,
                    "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUIRED, NULL);
    }
  if (req->message_receive_limit > 0)
    g_object_set (server, "max-receive-size", (guint) req->message_receive_limit, NULL);

  skeleton = connectrpc_conformance_service_skeleton_new ();
  g_signal_connect (skeleton, "handle-unary", G_CALLBACK (on_unary), NULL);
  g_signal_connect (skeleton, "handle-idempotent-unary", G_CALLBACK (on_unary), NULL);
  g_signal_connect (skeleton, "handle-server-stream", G_CALLBACK (on_server_stream), NULL);
  g_signal_connect (skeleton, "handle-client-stream", G_CALLBACK (on_request_stream), NULL);
  g_signal_connect (skeleton, "handle-bidi-stream", G_CALLBACK (on_request_stream), NULL);
  /* Unimplemented has no handler: the skeleton answers `unimplemented`. */
  if (!cp_skeleton_export (CP_SKELETON (skeleton), server, &error))
    {
      g_printerr ("conformance server: %s\n", error->message);
      return 1;
    }
  url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
  if (url == NULL)
    {
      g_printerr ("conformance server: %s\n", error->message);
      return 1;
    }
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &error);
  if (uri == NULL)
    {
      g_printerr ("conformance server: %s: %s\n", url, error->message);
      return 1;
    }
  resp.host = (char *) g_uri_get_host (uri);
  resp.port = g_uri_get_port (uri);
  cf_write_frame (&resp.base);
  g_printerr ("conformance server: listening on %s\n", url);

  g_unix_signal_add (SIGTERM, on_sigterm, loop);
  g_unix_signal_add (SIGINT, on_sigterm, loop);
  g_main_loop_run (loop);

  cp_skeleton_unexport (CP_SKELETON (skeleton));
  cp_rpc_server_close (server);
  if (client_ca_path != NULL)
    g_unlink (client_ca_path);
  return 0;
}
