/* test-rpc-server.c: CpRpcServer over real sockets, checked byte by byte
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real CpRpcServer on 127.0.0.1:0 and a raw HTTP/1.1 client (rpc-test-util.h)
 * sending exact requests, so that statuses, headers and bodies can be
 * checked against https://connectrpc.com/docs/protocol and docs/engine.md "Server checks".
 */
#include <connectplugin.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "cp-error-private.h"
#include "cp-http-server-private.h"
#include "cp-memory-private.h"
#include "cp-rpc-server-private.h"
#include "kv-test.h"
#include "rpc-test-util.h"

#define UNICODE_MESSAGE "\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\n"
#define SUM_PROCEDURE  "/test.v1.TestService/Sum"
#define ECHO_PROCEDURE "/test.v1.TestService/Echo"

typedef struct {
  CpRpcServer *server;
  char *url;

  /* What handlers saw / do. */
  CpInvocation *held;          /* a call kept open by the test */
  gboolean held_cancelled;
  gboolean late_answer_done;
  gint64 seen_timeout_ms;
  gint64 seen_remaining_ms;
  guint n_calls;

  /* Flood (back-pressure) producer. */
  guint flood_total;
  guint flood_sent;
  gboolean flood_waiting;
  gboolean flood_done;
  GError *flood_error;
} Fixture;

/* ------------------------------------------------------------------ */
/* Handlers                                                             */

static GError *
make_rich_error (CpErrorCode code)
{
  static const guint8 retry_info[] = { 0x0a, 0x02, 0x08, 0x1e };
  GError *error = g_error_new_literal (CP_ERROR, code, UNICODE_MESSAGE);
  g_autoptr(GBytes) value = g_bytes_new_static (retry_info, sizeof retry_info);
  g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("google.rpc.RetryInfo", value);
  g_autoptr(SoupMessageHeaders) metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

  cp_error_add_detail (error, detail);
  soup_message_headers_append (metadata, "x-error-meta", "m1");
  cp_error_set_metadata (error, metadata);
  return error;
}

static void
add_metadata (CpInvocation *invocation)
{
  SoupMessageHeaders *headers = cp_invocation_get_response_headers (invocation);
  SoupMessageHeaders *trailers = cp_invocation_get_response_trailers (invocation);

  soup_message_headers_append (headers, "x-custom-header", "foo");
  soup_message_headers_append (headers, "x-custom-header", "bar");
  soup_message_headers_append (trailers, "x-custom-trailer", "bing");
  soup_message_headers_append (trailers, "x-custom-trailer", "quux");
}

static void
on_held_cancelled (GCancellable *cancellable, Fixture *f)
{
  f->held_cancelled = TRUE;
}

static void
hold_invocation (Fixture *f, CpInvocation *invocation)
{
  g_assert_null (f->held);
  f->held = g_object_ref (invocation);
  f->held_cancelled = FALSE;
  g_cancellable_connect (cp_invocation_get_cancellable (invocation),
                         G_CALLBACK (on_held_cancelled), f, NULL);
}

static void
get_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  Fixture *f = user_data;
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(GBytes) value = NULL;

  f->n_calls++;

  if (g_str_has_prefix (key, "error:"))
    {
      add_metadata (invocation);
      cp_invocation_take_error (invocation, make_rich_error (atoi (key + 6)));
      return;
    }
  if (strcmp (key, "plain-error") == 0)
    {
      cp_invocation_take_error (invocation, g_error_new_literal (G_FILE_ERROR, G_FILE_ERROR_NOENT,
                                                                 "no such thing"));
      return;
    }
  if (strcmp (key, "no-answer") == 0)
    return;
  if (strcmp (key, "twice") == 0)
    {
      g_autoptr(KvGetResponse) first = kv_test_get_response (NULL, TRUE);
      cp_invocation_return_message (invocation, CP_MESSAGE (first));
      cp_invocation_return_error (invocation, CP_ERROR_INTERNAL, "second answer");
      return;
    }
  if (strcmp (key, "slow") == 0)
    {
      hold_invocation (f, invocation);
      return;
    }
  if (strcmp (key, "timeout") == 0)
    {
      f->seen_timeout_ms = cp_invocation_get_timeout_ms (invocation);
      f->seen_remaining_ms = cp_invocation_get_deadline (invocation) == G_MAXINT64 ? -1 :
        (cp_invocation_get_deadline (invocation) - g_get_monotonic_time ()) / 1000;
    }
  if (strcmp (key, "headers") == 0)
    {
      g_auto(GStrv) values = cp_metadata_get_values (cp_invocation_get_request_headers (invocation),
                                                     "X-Conformance-Test");
      g_autofree char *joined = g_strjoinv ("|", values);
      value = g_bytes_new (joined, strlen (joined));
    }
  else if (g_str_has_prefix (key, "big:"))
    {
      gsize n = atoi (key + 4);
      char *data = g_malloc (n);
      memset (data, 'x', n);
      value = g_bytes_new_take (data, n);
    }
  else
    {
      g_autofree char *text = g_strdup_printf ("value of %s", key);
      value = g_bytes_new (text, strlen (text));
    }

  add_metadata (invocation);
  response = kv_test_get_response (value, TRUE);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
put_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  g_autoptr(KvPutResponse) response = kv_put_response_new ();

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void send_event (CpInvocation *invocation, const char *key, gsize value_size);

static void flood_next (Fixture *f);

static void
flood_sent_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;
  g_autoptr(GError) error = NULL;

  f->flood_waiting = FALSE;
  if (!cp_invocation_send_message_finish (CP_INVOCATION (source), result, &error))
    {
      f->flood_done = TRUE;
      return;
    }
  flood_next (f);
}

static void
flood_next (Fixture *f)
{
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvWatchEvent) event = NULL;
  char *data;

  if (f->flood_sent == f->flood_total)
    {
      cp_invocation_return_ok (f->held);
      g_clear_object (&f->held);
      f->flood_done = TRUE;
      return;
    }
  data = g_malloc (64 * 1024);
  memset (data, 'f', 64 * 1024);
  value = g_bytes_new_take (data, 64 * 1024);
  event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "flood", value);
  f->flood_sent++;
  f->flood_waiting = TRUE;
  cp_invocation_send_message_async (f->held, CP_MESSAGE (event), NULL, flood_sent_cb, f);
}

static void
send_event (CpInvocation *invocation, const char *key, gsize value_size)
{
  g_autofree char *data = g_malloc0 (value_size + 1);
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvWatchEvent) event = NULL;
  g_autoptr(GError) error = NULL;

  memset (data, 'v', value_size);
  value = g_bytes_new (data, value_size);
  event = kv_test_watch_event (KV_EVENT_TYPE_PUT, key, value);
  g_assert_true (cp_invocation_send_message (invocation, CP_MESSAGE (event), &error));
  g_assert_no_error (error);
}

static void
watch_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  Fixture *f = user_data;
  const char *prefix = kv_watch_request_get_prefix (KV_WATCH_REQUEST (request));

  f->n_calls++;
  add_metadata (invocation);

  if (g_str_has_prefix (prefix, "n:"))
    {
      int n = atoi (prefix + 2);
      for (int i = 0; i < n; i++)
        {
          g_autofree char *key = g_strdup_printf ("key%d", i);
          send_event (invocation, key, 100);
        }
      cp_invocation_return_ok (invocation);
    }
  else if (g_str_has_prefix (prefix, "error:"))
    {
      /* error:CODE:N — N messages, then the error */
      char *end = NULL;
      CpErrorCode code = g_ascii_strtoll (prefix + 6, &end, 10);
      int n = atoi (end + 1);
      for (int i = 0; i < n; i++)
        send_event (invocation, "before-error", 10);
      cp_invocation_take_error (invocation, make_rich_error (code));
    }
  else if (strcmp (prefix, "forever") == 0)
    {
      hold_invocation (f, invocation);
      send_event (invocation, "first", 10);
    }
  else if (strcmp (prefix, "flood") == 0)
    {
      hold_invocation (f, invocation);
      flood_next (f);
    }
  else if (strcmp (prefix, "syncflood") == 0)
    {
      /* 400 × 64 KiB without waiting, until a send fails. */
      g_autofree char *data = g_malloc0 (64 * 1024);
      g_autoptr(GBytes) value = g_bytes_new_take (g_steal_pointer (&data), 64 * 1024);
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "flood", value);

      g_clear_error (&f->flood_error);
      for (f->flood_sent = 0; f->flood_sent < 400; f->flood_sent++)
        if (!cp_invocation_send_message (invocation, CP_MESSAGE (event), &f->flood_error))
          break;
      if (f->flood_error == NULL)
        cp_invocation_return_ok (invocation);
      f->flood_done = TRUE;
    }
  else
    {
      /* Echo the prefix (possibly empty) as one event's key. */
      send_event (invocation, prefix, 0);
      cp_invocation_return_ok (invocation);
    }
}

/* Client stream: receives KvPutRequests, answers a KvGetResponse whose value
 * joins the keys with ','. A key "fail" ends with aborted. */
typedef struct {
  CpInvocation *invocation;
  GString *keys;
  Fixture *f;
} SumState;

static void sum_receive_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static void
sum_state_free (SumState *state)
{
  g_object_unref (state->invocation);
  g_string_free (state->keys, TRUE);
  g_free (state);
}

static void
sum_receive_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SumState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (CP_INVOCATION (source), result, &error);

  if (error != NULL)
    {
      cp_invocation_return_gerror (state->invocation, error);
      sum_state_free (state);
      return;
    }
  if (message == NULL)
    {
      g_autoptr(GBytes) value = g_bytes_new (state->keys->str, state->keys->len);
      g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

      add_metadata (state->invocation);
      cp_invocation_return_message (state->invocation, CP_MESSAGE (response));
      sum_state_free (state);
      return;
    }

  {
    const char *key = kv_put_request_get_key (KV_PUT_REQUEST (message));

    if (strcmp (key, "fail") == 0)
      {
        add_metadata (state->invocation);
        cp_invocation_return_error (state->invocation, CP_ERROR_ABORTED, "failed after %s",
                                    state->keys->str);
        sum_state_free (state);
        return;
      }
    if (state->keys->len)
      g_string_append_c (state->keys, ',');
    g_string_append (state->keys, key);
  }
  cp_invocation_receive_async (state->invocation, NULL, sum_receive_cb, state);
}

static void
sum_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  SumState *state = g_new0 (SumState, 1);

  g_assert_null (request);
  state->invocation = g_object_ref (invocation);
  state->keys = g_string_new (NULL);
  state->f = user_data;
  state->f->n_calls++;
  cp_invocation_receive_async (invocation, NULL, sum_receive_cb, state);
}

/* Bidi: one event per request (key = request prefix), then OK. */
static void
echo_receive_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CpInvocation *invocation = CP_INVOCATION (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (invocation, result, &error);

  if (error != NULL)
    {
      cp_invocation_return_gerror (invocation, error);
      g_object_unref (invocation);
      return;
    }
  if (message == NULL)
    {
      cp_invocation_return_ok (invocation);
      g_object_unref (invocation);
      return;
    }
  send_event (invocation, kv_watch_request_get_prefix (KV_WATCH_REQUEST (message)), 0);
  cp_invocation_receive_async (invocation, NULL, echo_receive_cb, NULL);
}

static void
echo_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  cp_invocation_receive_async (g_object_ref (invocation), NULL, echo_receive_cb, NULL);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpMethodInfo) put = cp_method_info_new (KV_PROCEDURE_PUT, CP_METHOD_UNARY,
                                                    KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE);
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(CpMethodInfo) sum = cp_method_info_new (SUM_PROCEDURE, CP_METHOD_CLIENT_STREAMING,
                                                    KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpMethodInfo) echo = cp_method_info_new (ECHO_PROCEDURE, CP_METHOD_BIDI_STREAMING,
                                                     KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(GError) error = NULL;

  cp_method_info_set_idempotency (get, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);

  f->server = cp_rpc_server_new ();
  /* The default (1024) leaves small responses uncompressed; these tests
   * check compression on small messages, so compress everything. */
  {
    guint min_bytes = 0;
    g_object_get (f->server, "compress-min-bytes", &min_bytes, NULL);
    g_assert_cmpuint (min_bytes, ==, 1024);
  }
  g_object_set (f->server, "compress-min-bytes", 0, NULL);
  cp_rpc_server_add_method (f->server, get, get_handler, f, NULL);
  cp_rpc_server_add_method (f->server, put, put_handler, f, NULL);
  cp_rpc_server_add_method (f->server, watch, watch_handler, f, NULL);
  cp_rpc_server_add_method (f->server, sum, sum_handler, f, NULL);
  cp_rpc_server_add_method (f->server, echo, echo_handler, f, NULL);
  f->url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (f->url, "http://127.0.0.1:"));
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->held);
  cp_rpc_server_close (f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_finalize_object (f->server);
  g_free (f->url);
}

/* ------------------------------------------------------------------ */
/* Request helpers                                                      */

static GBytes *
build_request (const char *method,
               const char *target,
               const char *headers,
               GBytes     *body)
{
  GString *s = g_string_new (NULL);
  gsize len = body ? g_bytes_get_size (body) : 0;

  g_string_append_printf (s, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, target);
  if (headers)
    g_string_append (s, headers);
  if (body != NULL)
    g_string_append_printf (s, "Content-Length: %" G_GSIZE_FORMAT "\r\n", len);
  g_string_append (s, "\r\n");
  if (len)
    g_string_append_len (s, g_bytes_get_data (body, NULL), len);
  return g_string_free_to_bytes (s);
}

/* One request on a fresh connection; asserts a complete response. */
static void
roundtrip (Fixture     *f,
           const char  *method,
           const char  *target,
           const char  *headers,
           GBytes      *body,
           RawResponse *resp)
{
  g_autoptr(GBytes) request = build_request (method, target, headers, body);
  RawConn *rc = raw_conn_new (f->url);

  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  g_assert_true (raw_read_response (rc, resp));
  raw_conn_free (rc);
}

static GBytes *
proto_of (gpointer message)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = cp_message_serialize (CP_MESSAGE (message), CP_CODEC_PROTO, &error);

  g_assert_no_error (error);
  return bytes;
}

static GBytes *
get_request_proto (const char *key)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);
  return proto_of (request);
}

static GBytes *
watch_request_envelope (const char *prefix)
{
  g_autoptr(KvWatchRequest) request = kv_test_watch_request (prefix);
  g_autoptr(GBytes) payload = proto_of (request);
  return raw_envelope (0, g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
}

static KvGetResponse *
decode_get_response (GBytes *body, CpCodec codec)
{
  g_autoptr(GError) error = NULL;
  CpMessage *message = cp_message_new_from_bytes (KV_TYPE_GET_RESPONSE, codec, body, &error);

  g_assert_no_error (error);
  return KV_GET_RESPONSE (message);
}

static void
assert_value (KvGetResponse *response, const char *expected)
{
  g_autoptr(GBytes) value = kv_get_response_get_value (response);
  g_autofree char *text = g_strndup (g_bytes_get_size (value) ? g_bytes_get_data (value, NULL) : "",
                                     g_bytes_get_size (value));

  g_assert_cmpstr (text, ==, expected);
}

static void
assert_header (SoupMessageHeaders *headers, const char *name, const char *expected)
{
  g_assert_cmpstr (soup_message_headers_get_list (headers, name), ==, expected);
}

/* Parses error JSON; checks code and the rich error's fields. */
static void
assert_error_json (GBytes *body, CpErrorCode code, const char *message)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *obj;

  json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), g_bytes_get_size (body), &error);
  g_assert_no_error (error);
  obj = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (obj, "code"), ==, cp_error_code_to_string (code));
  if (message != NULL)
    g_assert_cmpstr (json_object_get_string_member (obj, "message"), ==, message);
}

static void
assert_rich_error_json (GBytes *body, CpErrorCode code)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *obj, *detail;
  JsonArray *details;

  assert_error_json (body, code, UNICODE_MESSAGE);
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                             g_bytes_get_size (body), NULL));
  obj = json_node_get_object (json_parser_get_root (parser));
  details = json_object_get_array_member (obj, "details");
  g_assert_cmpuint (json_array_get_length (details), ==, 1);
  detail = json_array_get_object_element (details, 0);
  g_assert_cmpstr (json_object_get_string_member (detail, "type"), ==, "google.rpc.RetryInfo");
  g_assert_cmpstr (json_object_get_string_member (detail, "value"), ==, "CgIIHg");
}

/* Parses an EndStream payload: returns the error (or NULL) and fills trailers. */
static GError *
parse_end_stream (GBytes *payload, SoupMessageHeaders *trailers)
{
  GError *rpc_error = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_end_stream_parse (payload, trailers, &rpc_error, &error));
  g_assert_no_error (error);
  return rpc_error;
}

static void
assert_server_alive (Fixture *f)
{
  g_autoptr(GBytes) body = get_request_proto ("alive");
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "value of alive");
  raw_response_clear (&resp);
}

/* A streaming call: returns the envelopes; asserts status 200 and the
 * EndStream at the end. */
static GArray *
stream_call (Fixture *f, const char *procedure, const char *headers, GBytes *body,
             RawResponse *resp)
{
  g_autofree char *all = g_strconcat ("Content-Type: application/connect+proto\r\n",
                                      headers ? headers : "", NULL);
  GArray *envs;

  roundtrip (f, "POST", procedure, all, body, resp);
  g_assert_cmpuint (resp->status, ==, 200);
  envs = raw_parse_envelopes (resp->body);
  g_assert_cmpuint (envs->len, >=, 1);
  g_assert_cmpuint (g_array_index (envs, RawEnvelope, envs->len - 1).flags, ==, 0x02);
  return envs;
}

static GError *
stream_call_error (Fixture *f, const char *procedure, const char *headers, GBytes *body)
{
  RawResponse resp;
  GArray *envs = stream_call (f, procedure, headers, body, &resp);
  GError *error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);

  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  return error;
}

/* ------------------------------------------------------------------ */
/* Unary                                                                */

static void
test_unary_proto (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("headers");
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n"
             "X-Conformance-Test: Value1\r\nX-Conformance-Test: Value2\r\n",
             body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Type", "application/proto");
  assert_header (resp.headers, "Accept-Encoding", "gzip");
  assert_header (resp.headers, "x-custom-header", "foo, bar");
  assert_header (resp.headers, "Trailer-X-Custom-Trailer", "bing, quux");
  g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
  g_assert_null (soup_message_headers_get_one (resp.headers, "Vary"));
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "Value1|Value2");
  g_assert_true (kv_get_response_get_found (response));
  raw_response_clear (&resp);
}

static void
test_unary_json (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = g_bytes_new_static ("{\"key\":\"hello\"}", 15);
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/json; charset=utf-8\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  /* The request's exact Content-Type is echoed. */
  assert_header (resp.headers, "Content-Type", "application/json; charset=utf-8");
  response = decode_get_response (resp.body, CP_CODEC_JSON);
  assert_value (response, "value of hello");
  raw_response_clear (&resp);

  /* An empty body is not a JSON message. */
  {
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", empty, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    raw_response_clear (&resp);
  }
  /* Malformed JSON. */
  {
    g_autoptr(GBytes) bad = g_bytes_new_static ("{\"key\":", 7);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", bad, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_header (resp.headers, "Content-Type", "application/json");
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

static void
test_unary_empty_request (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", empty, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "value of ");
  raw_response_clear (&resp);

  /* A zero-length body with Content-Encoding: gzip is not decompressed. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", empty, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);

  /* Garbage proto → invalid_argument. */
  {
    static const guint8 garbage[] = { 0x0a, 0x20, 0x01 };
    g_autoptr(GBytes) bad = g_bytes_new_static (garbage, sizeof garbage);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", bad, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    raw_response_clear (&resp);
  }
}

static void
test_unary_errors (Fixture *f, gconstpointer data)
{
  static const guint statuses[] = { 0, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409,
                                    400, 501, 500, 503, 500, 401 };

  for (CpErrorCode code = CP_ERROR_CANCELED; code <= CP_ERROR_UNAUTHENTICATED; code++)
    {
      g_autofree char *key = g_strdup_printf ("error:%d", code);
      g_autoptr(GBytes) body = get_request_proto (key);
      RawResponse resp;

      roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
      g_assert_cmpuint (resp.status, ==, statuses[code]);
      assert_header (resp.headers, "Content-Type", "application/json");
      assert_header (resp.headers, "Accept-Encoding", "gzip");
      assert_header (resp.headers, "x-custom-header", "foo, bar");
      assert_header (resp.headers, "Trailer-X-Custom-Trailer", "bing, quux");
      assert_header (resp.headers, "x-error-meta", "m1");
      assert_rich_error_json (resp.body, code);
      raw_response_clear (&resp);
    }
  assert_server_alive (f);
}

static void
test_unary_non_connect_error (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("plain-error");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 500);
  assert_error_json (resp.body, CP_ERROR_UNKNOWN, "no such thing");
  raw_response_clear (&resp);
}

static void
test_unary_no_answer (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("no-answer");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 500);
  assert_error_json (resp.body, CP_ERROR_INTERNAL, "handler did not answer");
  raw_response_clear (&resp);
  assert_server_alive (f);
}

static void
test_unary_answered_twice (Fixture *f, gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GBytes) body = get_request_proto ("twice");
      RawResponse resp;

      roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
      raw_response_clear (&resp);
      return;
    }

  /* Answering twice is a programming error: a critical (fatal in tests). */
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*invocation of /kv.v1.KVService/Get was already answered*");
}

typedef struct {
  guint status;
  GByteArray *body;
  gboolean done;
} LocalResult;

static void
local_head (CpHttpExchange *exchange, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  LocalResult *r = user_data;
  r->status = status;
}

static void
local_chunk (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data)
{
  LocalResult *r = user_data;
  g_byte_array_append (r->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
}

static void
local_end (CpHttpExchange *exchange, gpointer user_data)
{
  LocalResult *r = user_data;
  r->done = TRUE;
}

/* The in-process transport runs the same engine. */
static void
test_local_exchange (Fixture *f, gconstpointer data)
{
  static const CpHttpLocalCallbacks callbacks = { local_head, local_chunk, local_end };
  g_autoptr(GBytes) body = get_request_proto ("local");
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(CpHttpExchange) exchange = NULL;
  g_autoptr(GBytes) response_body = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  LocalResult r = { 0, g_byte_array_new (), FALSE };

  soup_message_headers_replace (headers, "Content-Type", "application/proto");
  exchange = cp_http_exchange_new_local ("POST", KV_PROCEDURE_GET, headers, &callbacks, &r, NULL);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (f->server), exchange);
  /* Three pieces, delivered as three body chunks. */
  for (gsize pos = 0; pos < g_bytes_get_size (body); pos += 3)
    {
      g_autoptr(GBytes) piece = g_bytes_new_from_bytes (body, pos, MIN (3, g_bytes_get_size (body) - pos));
      cp_http_exchange_local_push_body (exchange, piece);
    }
  cp_http_exchange_local_end_body (exchange);
  while (!r.done)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpuint (r.status, ==, 200);
  response_body = g_byte_array_free_to_bytes (r.body);
  response = decode_get_response (response_body, CP_CODEC_PROTO);
  assert_value (response, "value of local");
}

/* A unary body in several chunks (chunked transfer encoding). */
static void
test_unary_chunked_body (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("in pieces");
  g_autoptr(KvGetResponse) response = NULL;
  GString *req = g_string_new ("POST " KV_PROCEDURE_GET " HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/proto\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n");
  gsize len;
  const char *bytes = g_bytes_get_data (body, &len);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;

  for (gsize pos = 0; pos < len; pos += 4)
    {
      gsize n = MIN (4, len - pos);
      g_string_append_printf (req, "%zx\r\n", n);
      g_string_append_len (req, bytes + pos, n);
      g_string_append (req, "\r\n");
    }
  g_string_append (req, "0\r\n\r\n");
  g_assert_true (raw_send (rc, req->str, req->len));
  g_string_free (req, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "value of in pieces");
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

static void
test_keep_alive (Fixture *f, gconstpointer data)
{
  RawConn *rc = raw_conn_new (f->url);

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%d", i);
      g_autofree char *expected = g_strdup_printf ("value of k%d", i);
      g_autoptr(GBytes) body = get_request_proto (key);
      g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                                 "Content-Type: application/proto\r\n", body);
      g_autoptr(KvGetResponse) response = NULL;
      RawResponse resp;

      g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
      g_assert_true (raw_read_response (rc, &resp));
      g_assert_cmpuint (resp.status, ==, 200);
      response = decode_get_response (resp.body, CP_CODEC_PROTO);
      assert_value (response, expected);
      raw_response_clear (&resp);
    }
  raw_conn_free (rc);
}

/* ------------------------------------------------------------------ */
/* GET                                                                  */

static char *
base64url (GBytes *bytes, gboolean padded)
{
  char *b64 = g_base64_encode (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

  g_strdelimit (b64, "+", '-');
  g_strdelimit (b64, "/", '_');
  if (!padded)
    {
      char *eq = strchr (b64, '=');
      if (eq)
        *eq = '\0';
    }
  else
    {
      /* '=' must be percent-encoded in a query */
      GString *s = g_string_new (NULL);
      for (char *p = b64; *p; p++)
        if (*p == '=')
          g_string_append (s, "%3D");
        else
          g_string_append_c (s, *p);
      g_free (b64);
      b64 = g_string_free (s, FALSE);
    }
  return b64;
}

static void
assert_get_ok (Fixture *f, const char *target, CpCodec codec, const char *headers,
               const char *expected_value, gboolean expect_gzip)
{
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(GBytes) body = NULL;
  RawResponse resp;

  roundtrip (f, "GET", target, headers, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Vary", "Accept-Encoding");
  assert_header (resp.headers, "Content-Type",
                 codec == CP_CODEC_JSON ? "application/json" : "application/proto");
  if (expect_gzip)
    {
      g_autoptr(GError) error = NULL;
      assert_header (resp.headers, "Content-Encoding", "gzip");
      body = cp_decompress (CP_COMPRESSION_GZIP, resp.body, 0, &error);
      g_assert_no_error (error);
    }
  else
    {
      g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
      body = g_bytes_ref (resp.body);
    }
  response = decode_get_response (body, codec);
  assert_value (response, expected_value);
  raw_response_clear (&resp);
}

static void
test_get (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) proto = get_request_proto ("a?b");
  g_autofree char *unpadded = base64url (proto, FALSE);
  g_autofree char *padded = base64url (proto, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, proto, &error);
  g_autofree char *gz64 = base64url (gz, FALSE);
  g_autofree char *target = NULL;

  g_assert_no_error (error);

  /* JSON, percent-encoded, '+' as space. */
  assert_get_ok (f, KV_PROCEDURE_GET "?connect=v1&encoding=json&message=%7B%22key%22%3A%22a+b%22%7D",
                 CP_CODEC_JSON, NULL, "value of a b", FALSE);
  /* Shuffled, with an unknown parameter. */
  assert_get_ok (f, KV_PROCEDURE_GET "?message=%7B%22key%22%3A%22x%22%7D&cachebust=12&encoding=json",
                 CP_CODEC_JSON, NULL, "value of x", FALSE);

  target = g_strdup_printf ("%s?connect=v1&base64=1&encoding=proto&message=%s", KV_PROCEDURE_GET, unpadded);
  assert_get_ok (f, target, CP_CODEC_PROTO, NULL, "value of a?b", FALSE);
  g_free (target);
  target = g_strdup_printf ("%s?message=%s&encoding=proto&base64=1", KV_PROCEDURE_GET, padded);
  assert_get_ok (f, target, CP_CODEC_PROTO, NULL, "value of a?b", FALSE);
  g_free (target);
  /* Compressed request; the response follows the request's compression. */
  target = g_strdup_printf ("%s?connect=v1&base64=1&compression=gzip&encoding=proto&message=%s",
                            KV_PROCEDURE_GET, gz64);
  assert_get_ok (f, target, CP_CODEC_PROTO, NULL, "value of a?b", TRUE);
  g_free (target);
  /* Identity request, Accept-Encoding: gzip → gzip response. */
  target = g_strdup_printf ("%s?encoding=proto&base64=1&message=%s", KV_PROCEDURE_GET, unpadded);
  assert_get_ok (f, target, CP_CODEC_PROTO, "Accept-Encoding: br, gzip\r\n", "value of a?b", TRUE);
}

static void
test_get_errors (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = g_bytes_new_static ("x", 1);
  RawResponse resp;

  /* GET on a method with side effects. */
  roundtrip (f, "GET", KV_PROCEDURE_PUT "?encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  assert_header (resp.headers, "Allow", "POST");
  raw_response_clear (&resp);

  /* Missing or unknown encoding. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=xml&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);

  /* GET with a body. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=json&message=%7B%7D", NULL, body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);

  /* Missing message. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=json", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  assert_header (resp.headers, "Vary", "Accept-Encoding");
  raw_response_clear (&resp);

  /* connect=v2. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?connect=v2&encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  /* Unsupported compression. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?compression=br&base64=1&encoding=proto&message=", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 501);
  assert_error_json (resp.body, CP_ERROR_UNIMPLEMENTED,
                     "unknown compression \"br\": supported encodings are gzip");
  raw_response_clear (&resp);

  /* Bad base64. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?base64=1&encoding=proto&message=%21%21%21", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  raw_response_clear (&resp);

  assert_server_alive (f);
}

/* ------------------------------------------------------------------ */
/* Unexpected requests                                                  */

static void
test_unexpected (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("x");
  g_autoptr(GBytes) env = watch_request_envelope ("n:1");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: image/jpeg\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/foo\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, NULL, body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/connect+proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_WATCH, "Content-Type: application/proto\r\n", env, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);

  roundtrip (f, "DELETE", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  assert_header (resp.headers, "Allow", "GET, POST");
  raw_response_clear (&resp);
  roundtrip (f, "PUT", KV_PROCEDURE_WATCH, "Content-Type: application/connect+proto\r\n", env, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  assert_header (resp.headers, "Allow", "POST");
  raw_response_clear (&resp);
  roundtrip (f, "GET", KV_PROCEDURE_WATCH "?encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  raw_response_clear (&resp);

  roundtrip (f, "POST", "/kv.v1.KVService/Nope", "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);
  roundtrip (f, "POST", "/", "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);

  /* Protocol version 2: unary 400, stream 200 + EndStream. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Protocol-Version: 2\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);
  {
    g_autoptr(GError) error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                 "Connect-Protocol-Version: 2\r\n", env);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  }

  g_assert_cmpuint (f->n_calls, ==, 0);
  assert_server_alive (f);
}

static void
test_require_protocol_header (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("x");
  RawResponse resp;

  g_object_set (f->server, "require-connect-protocol-header", TRUE, NULL);

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);

  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  raw_response_clear (&resp);
  roundtrip (f, "GET", KV_PROCEDURE_GET "?connect=v1&encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);
}

/* ------------------------------------------------------------------ */
/* Compression                                                          */

static void
test_compression_unary (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) proto = get_request_proto ("zip");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, proto, &error);
  RawResponse resp;

  g_assert_no_error (error);

  /* gzip request body → gzip response. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", gz, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Encoding", "gzip");
  assert_header (resp.headers, "Accept-Encoding", "gzip");
  {
    g_autoptr(GBytes) plain = cp_decompress (CP_COMPRESSION_GZIP, resp.body, 0, &error);
    g_autoptr(KvGetResponse) response = NULL;
    g_assert_no_error (error);
    response = decode_get_response (plain, CP_CODEC_PROTO);
    assert_value (response, "value of zip");
  }
  raw_response_clear (&resp);

  /* identity request + Accept-Encoding: gzip → gzip response. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nAccept-Encoding: gzip\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Encoding", "gzip");
  raw_response_clear (&resp);

  /* Accept-Encoding without anything we support → identity. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nAccept-Encoding: br, zstd\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
  raw_response_clear (&resp);

  /* Small responses below compress-min-bytes stay uncompressed. */
  g_object_set (f->server, "compress-min-bytes", 1000, NULL);
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nAccept-Encoding: gzip\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
  raw_response_clear (&resp);
  g_object_set (f->server, "compress-min-bytes", 0, NULL);

  /* Unsupported encoding → unimplemented listing ours. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: foo\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 501);
  assert_header (resp.headers, "Accept-Encoding", "gzip");
  assert_error_json (resp.body, CP_ERROR_UNIMPLEMENTED,
                     "unknown compression \"foo\": supported encodings are gzip");
  raw_response_clear (&resp);

  /* Corrupt gzip → invalid_argument. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  /* A server configured without gzip. */
  {
    const char *identity_only[] = { "identity", NULL };
    g_object_set (f->server, "compressions", identity_only, NULL);
    roundtrip (f, "POST", KV_PROCEDURE_GET,
               "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", gz, &resp);
    g_assert_cmpuint (resp.status, ==, 501);
    assert_header (resp.headers, "Accept-Encoding", "identity");
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

static void
test_compression_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(KvWatchRequest) request = kv_test_watch_request ("n:2");
  g_autoptr(GBytes) payload = proto_of (request);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, payload, &error);
  g_autoptr(GBytes) env = raw_envelope (0x01, g_bytes_get_data (gz, NULL), g_bytes_get_size (gz));
  RawResponse resp;
  GArray *envs;

  envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Content-Encoding: gzip\r\n", env, &resp);
  assert_header (resp.headers, "Connect-Content-Encoding", "gzip");
  assert_header (resp.headers, "Connect-Accept-Encoding", "gzip");
  g_assert_cmpuint (envs->len, ==, 3);
  for (guint i = 0; i < 2; i++)
    {
      RawEnvelope *e = &g_array_index (envs, RawEnvelope, i);
      g_autoptr(GBytes) plain = NULL;
      g_autoptr(CpMessage) event = NULL;

      g_assert_cmpuint (e->flags, ==, 0x01);
      plain = cp_decompress (CP_COMPRESSION_GZIP, e->payload, 0, &error);
      g_assert_no_error (error);
      event = cp_message_new_from_bytes (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO, plain, &error);
      g_assert_no_error (error);
    }
  raw_envelopes_free (envs);
  raw_response_clear (&resp);

  /* Uncompressed request envelope, Connect-Accept-Encoding: gzip. */
  {
    g_autoptr(GBytes) plain_env = watch_request_envelope ("n:1");
    envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Accept-Encoding: gzip\r\n", plain_env, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    g_assert_cmpuint (g_array_index (envs, RawEnvelope, 0).flags, ==, 0x01);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);

    /* No negotiation → identity: no Connect-Content-Encoding, flag clear. */
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, plain_env, &resp);
    g_assert_null (soup_message_headers_get_one (resp.headers, "Connect-Content-Encoding"));
    assert_header (resp.headers, "Connect-Accept-Encoding", "gzip");
    g_assert_cmpuint (g_array_index (envs, RawEnvelope, 0).flags, ==, 0x00);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* Compressed flag without an encoding → internal. */
  {
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_INTERNAL);
  }
  {
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                     "Connect-Content-Encoding: identity\r\n", env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_INTERNAL);
  }
  /* Unsupported stream encoding → unimplemented in an EndStream. */
  {
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                     "Connect-Content-Encoding: foo\r\n", env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
    g_assert_nonnull (strstr (rpc_error->message, "gzip"));
  }
  g_assert_cmpuint (f->n_calls, ==, 3);
  assert_server_alive (f);
}

/* ------------------------------------------------------------------ */
/* Timeouts                                                             */

static void
test_timeout_visible (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("timeout");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 2000\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_cmpint (f->seen_timeout_ms, ==, 2000);
  g_assert_cmpint (f->seen_remaining_ms, >, 1500);
  g_assert_cmpint (f->seen_remaining_ms, <=, 2000);
  raw_response_clear (&resp);

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_cmpint (f->seen_timeout_ms, ==, -1);
  g_assert_cmpint (f->seen_remaining_ms, ==, -1);
  raw_response_clear (&resp);
}

static void
test_timeout_malformed (Fixture *f, gconstpointer data)
{
  const char *values[] = { "abc", "12345678901", "-5", "1.5" };
  g_autoptr(GBytes) body = get_request_proto ("x");
  g_autoptr(GBytes) env = watch_request_envelope ("n:1");

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *headers = g_strdup_printf ("Content-Type: application/proto\r\n"
                                                  "Connect-Timeout-Ms: %s\r\n", values[i]);
      g_autofree char *stream_headers = g_strdup_printf ("Connect-Timeout-Ms: %s\r\n", values[i]);
      g_autoptr(GError) error = NULL;
      RawResponse resp;

      roundtrip (f, "POST", KV_PROCEDURE_GET, headers, body, &resp);
      g_assert_cmpuint (resp.status, ==, 400);
      assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
      raw_response_clear (&resp);

      error = stream_call_error (f, KV_PROCEDURE_WATCH, stream_headers, env);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    }
  g_assert_cmpuint (f->n_calls, ==, 0);
}

static void
test_timeout_exceeded (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("slow");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 50\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 504);
  assert_error_json (resp.body, CP_ERROR_DEADLINE_EXCEEDED, NULL);
  raw_response_clear (&resp);
  g_assert_nonnull (f->held);
  g_assert_true (f->held_cancelled);
  /* The late answer is dropped silently (no critical). */
  {
    g_autoptr(KvGetResponse) late = kv_test_get_response (NULL, FALSE);
    cp_invocation_return_message (f->held, CP_MESSAGE (late));
  }
  g_clear_object (&f->held);

  /* 0 = already expired. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 0\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 504);
  raw_response_clear (&resp);
  g_clear_object (&f->held);

  /* Server stream: EndStream deadline_exceeded after the first message. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("forever");
    GArray *envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Timeout-Ms: 50\r\n", env, &resp);
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint (envs->len, ==, 2);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 1).payload, NULL);
    g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
    g_assert_true (f->held_cancelled);
    {
      g_autoptr(GError) send_error = NULL;
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (0, "late", NULL);
      g_assert_false (cp_invocation_send_message (f->held, CP_MESSAGE (event), &send_error));
      g_assert_error (send_error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
    }
    g_clear_object (&f->held);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

/* ------------------------------------------------------------------ */
/* Streams                                                              */

static void
test_server_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("n:2");
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GError) error = NULL;
  RawResponse resp;
  GArray *envs;

  envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Protocol-Version: 1\r\n", env, &resp);
  assert_header (resp.headers, "Content-Type", "application/connect+proto");
  assert_header (resp.headers, "x-custom-header", "foo, bar");
  g_assert_null (soup_message_headers_get_one (resp.headers, "Trailer"));
  g_assert_cmpuint (envs->len, ==, 3);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(CpMessage) event = NULL;
      g_autofree char *key = g_strdup_printf ("key%u", i);

      g_assert_cmpuint (g_array_index (envs, RawEnvelope, i).flags, ==, 0);
      event = cp_message_new_from_bytes (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO,
                                         g_array_index (envs, RawEnvelope, i).payload, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (kv_watch_event_get_key (KV_WATCH_EVENT (event)), ==, key);
    }
  error = parse_end_stream (g_array_index (envs, RawEnvelope, 2).payload, trailers);
  g_assert_no_error (error);
  assert_header (trailers, "x-custom-trailer", "bing, quux");
  raw_envelopes_free (envs);
  raw_response_clear (&resp);

  /* Zero responses: EndStream only. */
  {
    g_autoptr(GBytes) zero = watch_request_envelope ("n:0");
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, zero, &resp);
    g_assert_cmpuint (envs->len, ==, 1);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* Empty request envelope → default message (prefix ""), echoed. */
  {
    g_autoptr(GBytes) empty = raw_envelope (0, NULL, 0);
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, empty, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* JSON codec. */
  {
    const char *json = "{\"prefix\":\"n:1\"}";
    g_autoptr(GBytes) json_env = raw_envelope (0, json, strlen (json));
    roundtrip (f, "POST", KV_PROCEDURE_WATCH, "Content-Type: application/connect+json\r\n",
               json_env, &resp);
    g_assert_cmpuint (resp.status, ==, 200);
    assert_header (resp.headers, "Content-Type", "application/connect+json");
    envs = raw_parse_envelopes (resp.body);
    g_assert_cmpuint (envs->len, ==, 2);
    g_assert_cmpuint (g_bytes_get_size (g_array_index (envs, RawEnvelope, 0).payload), >, 0);
    g_assert_cmpint (((const char *) g_bytes_get_data (g_array_index (envs, RawEnvelope, 0).payload, NULL))[0], ==, '{');
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
}

static void
test_server_stream_errors (Fixture *f, gconstpointer data)
{
  for (CpErrorCode code = CP_ERROR_CANCELED; code <= CP_ERROR_UNAUTHENTICATED; code++)
    for (int n = 0; n <= 2; n += 2)
      {
        g_autofree char *prefix = g_strdup_printf ("error:%d:%d", code, n);
        g_autoptr(GBytes) env = watch_request_envelope (prefix);
        g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
        g_autoptr(GError) error = NULL;
        RawResponse resp;
        GArray *envs;

        envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, env, &resp);
        assert_header (resp.headers, "x-custom-header", "foo, bar");
        g_assert_cmpuint (envs->len, ==, n + 1);
        error = parse_end_stream (g_array_index (envs, RawEnvelope, n).payload, trailers);
        g_assert_error (error, CP_ERROR, (gint) code);
        g_assert_cmpstr (error->message, ==, UNICODE_MESSAGE);
        g_assert_cmpuint (cp_error_get_details (error)->len, ==, 1);
        assert_header (trailers, "x-custom-trailer", "bing, quux");
        assert_header (trailers, "x-error-meta", "m1");
        raw_envelopes_free (envs);
        raw_response_clear (&resp);
      }
}

static void
test_server_stream_cardinality (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(GBytes) one = watch_request_envelope ("n:1");
  GByteArray *two = g_byte_array_new ();
  g_autoptr(GBytes) two_bytes = NULL;
  GError *error;

  g_byte_array_append (two, g_bytes_get_data (one, NULL), g_bytes_get_size (one));
  g_byte_array_append (two, g_bytes_get_data (one, NULL), g_bytes_get_size (one));
  two_bytes = g_byte_array_free_to_bytes (two);

  error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, empty);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);
  error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, two_bytes);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);

  /* Truncated envelope → invalid_argument. */
  {
    g_autoptr(GBytes) truncated = g_bytes_new_from_bytes (one, 0, g_bytes_get_size (one) - 1);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, truncated);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    g_autoptr(GBytes) short_prefix = g_bytes_new_static ("\0\0", 2);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, short_prefix);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  /* An EndStream flag on a request frame ends the input (tolerated). */
  {
    GByteArray *with_end = g_byte_array_new ();
    g_autoptr(GBytes) end = raw_envelope (0x02, "{}", 2);
    g_autoptr(GBytes) with_end_bytes = NULL;
    RawResponse resp;
    GArray *envs;

    g_byte_array_append (with_end, g_bytes_get_data (one, NULL), g_bytes_get_size (one));
    g_byte_array_append (with_end, g_bytes_get_data (end, NULL), g_bytes_get_size (end));
    with_end_bytes = g_byte_array_free_to_bytes (with_end);
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, with_end_bytes, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 1).payload, NULL);
    g_assert_no_error (error);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
    f->n_calls = 0;
  }
  /* Reserved flag bits → internal. */
  {
    g_autoptr(GBytes) bad_flags = raw_envelope (0x40, NULL, 0);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, bad_flags);
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
    g_clear_error (&error);
  }
  /* Undecodable message → invalid_argument. */
  {
    static const guint8 garbage[] = { 0x0a, 0x20, 0x01 };
    g_autoptr(GBytes) bad = raw_envelope (0, garbage, sizeof garbage);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, bad);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  g_assert_cmpuint (f->n_calls, ==, 0);
  assert_server_alive (f);
}

static GBytes *
put_envelopes (const char * const *keys)
{
  GByteArray *all = g_byte_array_new ();

  for (guint i = 0; keys[i] != NULL; i++)
    {
      g_autoptr(KvPutRequest) request = kv_test_put_request (keys[i], NULL);
      g_autoptr(GBytes) payload = proto_of (request);
      g_autoptr(GBytes) env = raw_envelope (0, g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
      g_byte_array_append (all, g_bytes_get_data (env, NULL), g_bytes_get_size (env));
    }
  return g_byte_array_free_to_bytes (all);
}

static void
test_client_stream (Fixture *f, gconstpointer data)
{
  const char *keys[] = { "a", "b", NULL };
  g_autoptr(GBytes) body = put_envelopes (keys);
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;
  GArray *envs;

  envs = stream_call (f, SUM_PROCEDURE, NULL, body, &resp);
  g_assert_cmpuint (envs->len, ==, 2);
  response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
  assert_value (response, "a,b");
  error = parse_end_stream (g_array_index (envs, RawEnvelope, 1).payload, trailers);
  g_assert_no_error (error);
  assert_header (trailers, "x-custom-trailer", "bing, quux");
  raw_envelopes_free (envs);
  raw_response_clear (&resp);

  /* No requests at all. */
  {
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    g_clear_object (&response);
    envs = stream_call (f, SUM_PROCEDURE, NULL, empty, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
    assert_value (response, "");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* Error after several requests. */
  {
    const char *fail_keys[] = { "a", "b", "fail", NULL };
    g_autoptr(GBytes) fail = put_envelopes (fail_keys);
    GError *rpc_error = stream_call_error (f, SUM_PROCEDURE, NULL, fail);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_ABORTED);
    g_assert_cmpstr (rpc_error->message, ==, "failed after a,b");
    g_clear_error (&rpc_error);
  }

  /* Many requests (more than the receive queue holds). */
  {
    const char *many[] = { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", NULL };
    g_autoptr(GBytes) many_body = put_envelopes (many);
    g_clear_object (&response);
    envs = stream_call (f, SUM_PROCEDURE, NULL, many_body, &resp);
    response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
    assert_value (response, "1,2,3,4,5,6,7,8,9,10");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

static void
test_bidi_half_duplex (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) a = watch_request_envelope ("one");
  g_autoptr(GBytes) b = watch_request_envelope ("two");
  GByteArray *all = g_byte_array_new ();
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  RawResponse resp;
  GArray *envs;

  g_byte_array_append (all, g_bytes_get_data (a, NULL), g_bytes_get_size (a));
  g_byte_array_append (all, g_bytes_get_data (b, NULL), g_bytes_get_size (b));
  body = g_byte_array_free_to_bytes (all);

  envs = stream_call (f, ECHO_PROCEDURE, NULL, body, &resp);
  g_assert_cmpuint (envs->len, ==, 3);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(CpMessage) event = cp_message_new_from_bytes (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO,
                                                              g_array_index (envs, RawEnvelope, i).payload,
                                                              &error);
      g_assert_no_error (error);
      g_assert_cmpstr (kv_watch_event_get_key (KV_WATCH_EVENT (event)), ==, i == 0 ? "one" : "two");
    }
  error = parse_end_stream (g_array_index (envs, RawEnvelope, 2).payload, NULL);
  g_assert_no_error (error);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
}

/* Chunked request body, envelopes split across chunks. */
static void
test_client_stream_chunked (Fixture *f, gconstpointer data)
{
  const char *keys[] = { "x", "y", "z", NULL };
  g_autoptr(GBytes) body = put_envelopes (keys);
  GString *req = g_string_new ("POST " SUM_PROCEDURE " HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/connect+proto\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n");
  gsize len;
  const char *bytes = g_bytes_get_data (body, &len);
  g_autoptr(KvGetResponse) response = NULL;
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;
  GArray *envs;

  for (gsize pos = 0; pos < len; pos += 3)
    {
      gsize n = MIN (3, len - pos);
      g_string_append_printf (req, "%zx\r\n", n);
      g_string_append_len (req, bytes + pos, n);
      g_string_append (req, "\r\n");
    }
  g_string_append (req, "0\r\n\r\n");
  g_assert_true (raw_send (rc, req->str, req->len));
  g_string_free (req, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
  assert_value (response, "x,y,z");
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

/* ------------------------------------------------------------------ */
/* Message size limit                                                   */

static void
test_max_receive_size (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) small = get_request_proto ("k");
  const guint limit = 200;
  RawResponse resp;

  g_object_set (f->server, "max-receive-size", limit, NULL);

  /* Exactly at the limit: the key fills the message to `limit` bytes
   * (tag + 2-byte length + key). */
  {
    g_autofree char *key = g_strnfill (limit - 3, 'k');
    g_autoptr(GBytes) exact = get_request_proto (key);
    g_autoptr(GBytes) over = NULL;
    g_autofree char *over_key = g_strnfill (limit + 7, 'k');

    g_assert_cmpuint (g_bytes_get_size (exact), ==, limit);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", exact, &resp);
    g_assert_cmpuint (resp.status, ==, 200);
    raw_response_clear (&resp);

    over = get_request_proto (over_key);
    g_assert_cmpuint (g_bytes_get_size (over), ==, limit + 10);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", over, &resp);
    g_assert_cmpuint (resp.status, ==, 429);
    assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, NULL);
    raw_response_clear (&resp);

    /* gzip bomb: small on the wire, large once inflated. */
    {
      g_autofree char *huge_key = g_strnfill (100000, 'b');
      g_autoptr(GBytes) huge = get_request_proto (huge_key);
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) bomb = cp_compress (CP_COMPRESSION_GZIP, huge, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (g_bytes_get_size (bomb), <, limit);
      roundtrip (f, "POST", KV_PROCEDURE_GET,
                 "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", bomb, &resp);
      g_assert_cmpuint (resp.status, ==, 429);
      raw_response_clear (&resp);

      /* Same bomb in a stream envelope. */
      {
        g_autoptr(GBytes) env = raw_envelope (0x01, g_bytes_get_data (bomb, NULL), g_bytes_get_size (bomb));
        g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                         "Connect-Content-Encoding: gzip\r\n", env);
        g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
      }
    }

    /* Server stream request over the limit. */
    {
      g_autofree char *big_prefix = g_strnfill (limit + 10, 'p');
      g_autoptr(GBytes) env = watch_request_envelope (big_prefix);
      g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, env);
      g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    }

    /* Client stream: messages at the limit pass; a later one over it fails. */
    {
      g_autofree char *at_key = g_strnfill (limit - 3, 'a');
      const char *ok_keys[] = { at_key, at_key, NULL };
      const char *bad_keys[] = { "a", over_key, "c", NULL };
      g_autoptr(GBytes) ok_body = put_envelopes (ok_keys);
      g_autoptr(GBytes) bad_body = put_envelopes (bad_keys);
      GArray *envs = stream_call (f, SUM_PROCEDURE, NULL, ok_body, &resp);
      g_autoptr(GError) rpc_error = NULL;

      g_assert_cmpuint (envs->len, ==, 2);
      raw_envelopes_free (envs);
      raw_response_clear (&resp);

      rpc_error = stream_call_error (f, SUM_PROCEDURE, NULL, bad_body);
      g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    }
  }

  /* First client-stream message over the limit: answered at once, before
   * the client has finished sending (the body is never completed here). */
  {
    g_autofree char *over_key = g_strnfill (limit + 7, 'k');
    const char *keys[] = { over_key, NULL };
    g_autoptr(GBytes) env = put_envelopes (keys);
    GString *req = g_string_new ("POST " SUM_PROCEDURE " HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Type: application/connect+proto\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n");
    RawConn *rc = raw_conn_new (f->url);
    GArray *envs;
    g_autoptr(GError) rpc_error = NULL;

    g_string_append_printf (req, "%zx\r\n", g_bytes_get_size (env));
    g_string_append_len (req, g_bytes_get_data (env, NULL), g_bytes_get_size (env));
    g_string_append (req, "\r\n");
    g_assert_true (raw_send (rc, req->str, req->len));
    g_string_free (req, TRUE);
    g_assert_true (raw_read_response (rc, &resp));
    g_assert_cmpuint (resp.status, ==, 200);
    envs = raw_parse_envelopes (resp.body);
    rpc_error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
    raw_conn_free (rc);
  }

  /* The limit does not apply to responses. */
  {
    g_autoptr(GBytes) big = get_request_proto ("big:5000");
    g_autoptr(KvGetResponse) response = NULL;
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", big, &resp);
    g_assert_cmpuint (resp.status, ==, 200);
    raw_response_clear (&resp);
  }

  (void) small;
  assert_server_alive (f);
}

/* Reads until the server closes the connection; FALSE if it stalled. */
static gboolean
read_until_eof (RawConn *rc)
{
  while (raw_read_more (rc))
    ;
  return rc->eof;
}

/* The default limit is finite (4 MiB), and a unary body declared larger is
 * refused from its Content-Length alone, before any of it is read: the
 * answer comes although only a few bytes of the 5 GiB were sent, then the
 * connection closes instead of draining the rest. */
static void
test_receive_limit_declared (Fixture *f, gconstpointer data)
{
  guint limit = 0;
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;
  const char *request = "POST " KV_PROCEDURE_GET " HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/proto\r\n"
                        "Content-Length: 5368709120\r\n\r\n\x0a\x01k";

  g_object_get (f->server, "max-receive-size", &limit, NULL);
  g_assert_cmpuint (limit, ==, 4 * 1024 * 1024);

  g_assert_true (raw_send (rc, request, strlen (request)));
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 429);
  assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, NULL);
  g_assert_true (read_until_eof (rc));
  raw_response_clear (&resp);
  raw_conn_free (rc);

  /* Just over the limit, declared: the same. */
  {
    g_autofree char *head = g_strdup_printf ("POST " KV_PROCEDURE_GET " HTTP/1.1\r\nHost: x\r\n"
                                             "Content-Type: application/proto\r\n"
                                             "Content-Length: %u\r\n\r\n", limit + 1);
    rc = raw_conn_new (f->url);
    g_assert_true (raw_send (rc, head, strlen (head)));
    g_assert_true (raw_read_response (rc, &resp));
    g_assert_cmpuint (resp.status, ==, 429);
    g_assert_true (read_until_eof (rc));
    raw_response_clear (&resp);
    raw_conn_free (rc);
  }
  assert_server_alive (f);
}

/* A stream envelope announcing 2^32 - 1 bytes is refused from its prefix
 * under the default limit (nothing of it buffered). */
static void
test_receive_limit_envelope (Fixture *f, gconstpointer data)
{
  static const guint8 prefix[] = { 0x00, 0xff, 0xff, 0xff, 0xff, 'x' };
  GString *req = g_string_new ("POST " KV_PROCEDURE_WATCH " HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/connect+proto\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n");
  RawConn *rc = raw_conn_new (f->url);
  g_autoptr(GError) rpc_error = NULL;
  RawResponse resp;
  GArray *envs;

  g_string_append_printf (req, "%zx\r\n", sizeof prefix);
  g_string_append_len (req, (const char *) prefix, sizeof prefix);
  g_string_append (req, "\r\n");
  g_assert_true (raw_send (rc, req->str, req->len));
  g_string_free (req, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  rpc_error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);
  g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
  assert_server_alive (f);
}

/* Under the limit on the wire but ~30 times larger once decoded: 3-byte
 * unknown fields are refused by the pre-scan, before protobuf-c allocates
 * anything; a gzip bomb under the default limit is refused while it
 * inflates. */
static void
test_receive_limit_decoded (Fixture *f, gconstpointer data)
{
  const guint limit = 64 * 1024;
  GByteArray *wire = g_byte_array_new ();
  g_autoptr(GBytes) body = NULL;
  RawResponse resp;

  g_object_set (f->server, "max-receive-size", limit, NULL);
  while (wire->len + 3 <= limit)
    {
      static const guint8 field[] = { 0xc0, 0x3e, 0x01 }; /* field 1000 = 1 */
      g_byte_array_append (wire, field, sizeof field);
    }
  body = g_byte_array_free_to_bytes (wire);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 429);
  assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, NULL);
  raw_response_clear (&resp);

  /* The same fields in a stream message. */
  {
    g_autoptr(GBytes) env = raw_envelope (0, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  }

  /* Default limit: a 64 MiB gzip bomb (64 KiB on the wire). */
  g_object_set (f->server, "max-receive-size", 4 * 1024 * 1024, NULL);
  {
    g_autofree char *huge_key = g_strnfill (64 * 1024 * 1024, 'b');
    g_autoptr(GBytes) huge = get_request_proto (huge_key);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bomb = cp_compress (CP_COMPRESSION_GZIP, huge, &error);

    g_assert_no_error (error);
    g_clear_pointer (&huge_key, g_free);
    roundtrip (f, "POST", KV_PROCEDURE_GET,
               "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", bomb, &resp);
    g_assert_cmpuint (resp.status, ==, 429);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

/* An empty JSON body is invalid_argument (and no NULL + 0 under UBSan). */
static void
test_unary_json_empty_body (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", empty, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  /* Duplicate JSON fields are refused, naming the field. */
  {
    g_autoptr(GBytes) dup = g_bytes_new_static ("{\"key\":\"a\",\"key\":\"b\"}", 21);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", dup, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    g_assert_nonnull (g_strstr_len (g_bytes_get_data (resp.body, NULL), g_bytes_get_size (resp.body),
                                    "duplicate field key"));
    raw_response_clear (&resp);
  }
}

/* ------------------------------------------------------------------ */
/* Disconnects and back-pressure                                         */

static void
test_disconnect_cancels (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("forever");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };

  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  g_assert_true (raw_read_head (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);
  g_assert_nonnull (f->held);
  g_assert_false (f->held_cancelled);

  raw_conn_free (rc);
  while (!f->held_cancelled)
    g_main_context_iteration (NULL, TRUE);

  /* Sending into a dead call fails; answering is silently dropped. */
  {
    g_autoptr(KvWatchEvent) event = kv_test_watch_event (0, "late", NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false (cp_invocation_send_message (f->held, CP_MESSAGE (event), &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_CANCELED);
    cp_invocation_return_ok (f->held);
  }
  g_clear_object (&f->held);
  assert_server_alive (f);
}

static void
test_slow_reader_backpressure (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("flood");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };
  GArray *envs;

  f->flood_total = 400; /* 400 × 64 KiB = 25 MiB */
  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));

  /* Do not read: run the server until nothing more can happen. */
  while (f->held == NULL || g_main_context_iteration (NULL, FALSE))
    g_main_context_iteration (NULL, FALSE);
  for (int i = 0; i < 100; i++)
    g_main_context_iteration (NULL, FALSE);

  /* The producer waits for the exchange: it did not queue the whole stream
   * (socket buffers hold a few MiB at most). */
  g_assert_true (f->flood_waiting);
  g_assert_false (f->flood_done);
  g_assert_cmpuint (f->flood_sent, <, 200);

  /* Now read everything: the stream completes. */
  if (!raw_read_response (rc, &resp))
    {
      /* Stalled (see RAW_STALL_SECONDS): the server stopped writing although
       * the client reads. Fail without aborting the other tests; rc may
       * still have a read pending, so it is not freed. */
      g_test_fail_printf ("the stream stalled after %u of %u messages", f->flood_sent, f->flood_total);
      return;
    }
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  g_assert_cmpuint (envs->len, ==, 401);
  g_assert_true (f->flood_done);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

/* A handler sending without waiting to a client that does not read: the
 * stream ends with resource_exhausted once max-send-queue-size bytes wait
 * (beyond the congestion mark), instead of queueing all 25 MiB. */
static void
test_slow_reader_send_queue_bound (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("syncflood");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };
  g_autoptr(GError) end_error = NULL;
  guint max = 0;
  GArray *envs;

  g_object_get (f->server, "max-send-queue-size", &max, NULL);
  g_assert_cmpuint (max, ==, 4 * 1024 * 1024);
  g_object_set (f->server, "max-send-queue-size", 1024 * 1024, NULL);

  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  while (!f->flood_done)
    g_main_context_iteration (NULL, TRUE);

  /* 1 MiB + the 256 KiB mark + socket buffers (a few MiB), not 25 MiB. */
  g_assert_error (f->flood_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpuint (f->flood_sent, <, 300);

  /* What was queued arrives, then the error. */
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  g_assert_cmpuint (envs->len, ==, f->flood_sent + 2);
  end_error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);
  g_assert_error (end_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
  g_clear_error (&f->flood_error);
  assert_server_alive (f);
}

static gboolean
wake_up (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates until cp_memory_get_n_trims() differs from @before, at most
 * @seconds (a hang guard: the trim runs about 1 s after it is scheduled). */
static gboolean
wait_for_trim (guint before,
               guint seconds)
{
  gint64 give_up = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  guint id = g_timeout_add (100, wake_up, NULL);

  while (cp_memory_get_n_trims () == before && g_get_monotonic_time () < give_up)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
  return cp_memory_get_n_trims () != before;
}

/* After a large request body, and after connections close, freed memory
 * goes back to the system (malloc_trim) once, on a low-priority timeout. */
static void
test_memory_trim (Fixture *f, gconstpointer data)
{
  g_autofree char *key = g_strnfill (2 * 1024 * 1024, 'k');
  g_autoptr(GBytes) big = get_request_proto (key);
  guint before;
  RawResponse resp;
  RawConn *rc;

  /* Let any trim pending from earlier tests run first. */
  wait_for_trim (cp_memory_get_n_trims (), 3);

  rc = raw_conn_new (f->url);
  before = cp_memory_get_n_trims ();

  /* A 2 MiB body schedules one, the connection still open. */
  {
    g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                               "Content-Type: application/proto\r\n", big);
    g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
    g_assert_true (raw_read_response (rc, &resp));
    g_assert_cmpuint (resp.status, ==, 200);
    raw_response_clear (&resp);
    g_assert_true (wait_for_trim (before, 20));
  }

  /* Closing a connection does too. */
  before = cp_memory_get_n_trims ();
  raw_conn_free (rc);
  g_assert_true (wait_for_trim (before, 20));
}

/* ------------------------------------------------------------------ */
/* Misc                                                                 */

static void
shutdown_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_rpc_server_shutdown_finish (CP_RPC_SERVER (source), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

static void
test_shutdown (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("forever");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };
  gboolean done = FALSE;

  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  g_assert_true (raw_read_head (rc, &resp));
  raw_response_clear (&resp);
  g_assert_nonnull (f->held);

  cp_rpc_server_shutdown_async (f->server, NULL, shutdown_cb, &done);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (done); /* the stream is still running */

  cp_invocation_return_ok (f->held);
  g_clear_object (&f->held);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  raw_conn_free (rc);
}

/* ------------------------------------------------------------------ */
/* Interceptors                                                         */

/* A synchronous interceptor that records what it saw; refuses calls with
 * reject_code when set; adds a response header and trailer. */
#define TEST_TYPE_INTERCEPTOR (test_interceptor_get_type ())
G_DECLARE_DERIVABLE_TYPE (TestInterceptor, test_interceptor, TEST, INTERCEPTOR, CpServerInterceptor)

struct _TestInterceptorClass
{
  CpServerInterceptorClass parent_class;
};

typedef struct {
  char *name;
  GString *log;              /* shared by a chain: "A,B,B:ok,A:ok," */
  Fixture *f;
  CpError reject_code;       /* 0: proceed */
  gboolean answer;           /* answer "cached" itself, then proceed */

  guint n_intercepts;
  guint n_completed;
  char *procedure;
  CpMethodKind kind;
  char *request_key;         /* NULL when the request was NULL */
  gboolean saw_request;
  char *token;               /* X-Token request header */
  char *peer;
  gint64 deadline;
  guint calls_at_intercept;  /* f->n_calls when intercepted */
  guint calls_at_completed;
  int last_code;             /* 0 = ok, -1 = not completed */

  /* Asynchronous subclass. */
  gboolean hold;             /* keep the decision in pending */
  GTask *pending;
} TestInterceptorPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (TestInterceptor, test_interceptor, CP_TYPE_SERVER_INTERCEPTOR)

static TestInterceptorPrivate *
icept (gpointer self)
{
  return test_interceptor_get_instance_private (TEST_INTERCEPTOR (self));
}

static void
test_interceptor_record (TestInterceptor *self,
                         CpInvocation    *invocation,
                         CpMessage       *request)
{
  TestInterceptorPrivate *p = icept (self);
  GSocketAddress *peer = cp_invocation_get_remote_address (invocation);

  p->n_intercepts++;
  g_string_append_printf (p->log, "%s,", p->name);
  g_free (p->procedure);
  p->procedure = g_strdup (cp_invocation_get_procedure (invocation));
  p->kind = cp_method_info_get_kind (cp_invocation_get_method_info (invocation));
  g_clear_pointer (&p->request_key, g_free);
  p->saw_request = request != NULL;
  if (KV_IS_GET_REQUEST (request))
    p->request_key = g_strdup (kv_get_request_get_key (KV_GET_REQUEST (request)));
  else if (KV_IS_WATCH_REQUEST (request))
    p->request_key = g_strdup (kv_watch_request_get_prefix (KV_WATCH_REQUEST (request)));
  g_free (p->token);
  p->token = g_strdup (soup_message_headers_get_one (cp_invocation_get_request_headers (invocation),
                                                     "X-Token"));
  g_clear_pointer (&p->peer, g_free);
  if (G_IS_INET_SOCKET_ADDRESS (peer))
    p->peer = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (peer)));
  p->deadline = cp_invocation_get_deadline (invocation);
  p->calls_at_intercept = p->f->n_calls;
  p->last_code = -1;

  soup_message_headers_append (cp_invocation_get_response_headers (invocation),
                               "x-intercepted-by", p->name);
  soup_message_headers_append (cp_invocation_get_response_trailers (invocation),
                               "x-seen-by", p->name);
}

static gboolean
test_interceptor_intercept (CpServerInterceptor  *interceptor,
                            CpInvocation         *invocation,
                            CpMessage            *request,
                            GError              **error)
{
  TestInterceptorPrivate *p = icept (interceptor);

  test_interceptor_record (TEST_INTERCEPTOR (interceptor), invocation, request);
  if (p->answer)
    {
      g_autoptr(GBytes) value = g_bytes_new_static ("cached", 6);
      g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

      cp_invocation_return_message (invocation, CP_MESSAGE (response));
      return TRUE;
    }
  if (p->reject_code != 0)
    {
      g_set_error (error, CP_ERROR, p->reject_code, "refused by %s", p->name);
      return FALSE;
    }
  return TRUE;
}

static void
test_interceptor_completed (CpServerInterceptor *interceptor,
                            CpInvocation        *invocation,
                            const GError        *error)
{
  TestInterceptorPrivate *p = icept (interceptor);

  g_assert_true (CP_IS_INVOCATION (invocation));
  g_assert_true (error == NULL || error->domain == CP_ERROR);
  p->n_completed++;
  p->last_code = error ? error->code : 0;
  p->calls_at_completed = p->f->n_calls;
  g_string_append_printf (p->log, "%s:%s,", p->name,
                          error ? cp_error_code_to_string (error->code) : "ok");
}

static void
test_interceptor_finalize (GObject *object)
{
  TestInterceptorPrivate *p = icept (object);

  g_assert_null (p->pending);
  g_free (p->name);
  g_free (p->procedure);
  g_free (p->request_key);
  g_free (p->token);
  g_free (p->peer);
  G_OBJECT_CLASS (test_interceptor_parent_class)->finalize (object);
}

static void
test_interceptor_class_init (TestInterceptorClass *klass)
{
  CpServerInterceptorClass *icept_class = CP_SERVER_INTERCEPTOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_interceptor_finalize;
  icept_class->intercept = test_interceptor_intercept;
  icept_class->completed = test_interceptor_completed;
}

static void
test_interceptor_init (TestInterceptor *self)
{
  icept (self)->last_code = -1;
}

/* The same, deciding asynchronously: in a later main-loop iteration, or
 * when the test resolves `pending` (hold). */
#define TEST_TYPE_ASYNC_INTERCEPTOR (test_async_interceptor_get_type ())
G_DECLARE_FINAL_TYPE (TestAsyncInterceptor, test_async_interceptor, TEST, ASYNC_INTERCEPTOR, TestInterceptor)

struct _TestAsyncInterceptor
{
  TestInterceptor parent_instance;
};

G_DEFINE_FINAL_TYPE (TestAsyncInterceptor, test_async_interceptor, TEST_TYPE_INTERCEPTOR)

static gboolean
async_decide_cb (gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  TestInterceptorPrivate *p = icept (g_task_get_source_object (task));

  if (p->reject_code != 0)
    g_task_return_new_error (task, CP_ERROR, p->reject_code, "refused later by %s", p->name);
  else
    g_task_return_boolean (task, TRUE);
  return G_SOURCE_REMOVE;
}

static void
test_async_interceptor_intercept_async (CpServerInterceptor *interceptor,
                                        CpInvocation        *invocation,
                                        CpMessage           *request,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  TestInterceptorPrivate *p = icept (interceptor);
  GTask *task = g_task_new (interceptor, cancellable, callback, user_data);

  test_interceptor_record (TEST_INTERCEPTOR (interceptor), invocation, request);
  g_assert_true (cancellable == cp_invocation_get_cancellable (invocation));
  if (p->hold)
    {
      g_assert_null (p->pending);
      p->pending = task;
    }
  else
    g_idle_add (async_decide_cb, task);
}

static gboolean
test_async_interceptor_intercept_finish (CpServerInterceptor  *interceptor,
                                         GAsyncResult         *result,
                                         GError              **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
test_async_interceptor_class_init (TestAsyncInterceptorClass *klass)
{
  CpServerInterceptorClass *icept_class = CP_SERVER_INTERCEPTOR_CLASS (klass);

  icept_class->intercept_async = test_async_interceptor_intercept_async;
  icept_class->intercept_finish = test_async_interceptor_intercept_finish;
}

static void
test_async_interceptor_init (TestAsyncInterceptor *self)
{
}

static TestInterceptor *
add_interceptor (Fixture    *f,
                 GType       type,
                 const char *name,
                 GString    *log)
{
  TestInterceptor *interceptor = g_object_new (type, NULL);
  TestInterceptorPrivate *p = icept (interceptor);

  p->name = g_strdup (name);
  p->log = log;
  p->f = f;
  cp_rpc_server_add_interceptor (f->server, CP_SERVER_INTERCEPTOR (interceptor));
  return interceptor;
}

/* Resolves a held asynchronous decision. */
static void
resolve_pending (TestInterceptor *interceptor, gboolean proceed)
{
  TestInterceptorPrivate *p = icept (interceptor);
  GTask *task = g_steal_pointer (&p->pending);

  g_assert_nonnull (task);
  if (proceed)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE, "decided late");
  g_object_unref (task);
}

static void
test_interceptor_order (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "B", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nX-Token: t1\r\nConnect-Timeout-Ms: 60000\r\n",
             body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "value of hello");
  /* Registration order in, reverse order out, the handler in between. */
  g_assert_cmpstr (log->str, ==, "A,B,B:ok,A:ok,");
  g_assert_cmpuint (f->n_calls, ==, 1);
  for (TestInterceptor *i = a; i != NULL; i = (i == a ? b : NULL))
    {
      TestInterceptorPrivate *p = icept (i);

      g_assert_cmpuint (p->calls_at_intercept, ==, 0);
      g_assert_cmpuint (p->calls_at_completed, ==, 1);
      g_assert_cmpstr (p->procedure, ==, KV_PROCEDURE_GET);
      g_assert_cmpint (p->kind, ==, CP_METHOD_UNARY);
      g_assert_cmpstr (p->request_key, ==, "hello");
      g_assert_cmpstr (p->token, ==, "t1");
      g_assert_cmpstr (p->peer, ==, "127.0.0.1");
      g_assert_cmpint (p->deadline, !=, G_MAXINT64);
      g_assert_cmpint (p->deadline, >, g_get_monotonic_time ());
      g_assert_cmpint (p->last_code, ==, 0);
    }
  /* Both interceptors' headers, in chain order. */
  assert_header (resp.headers, "x-intercepted-by", "A, B");
  raw_response_clear (&resp);

  /* Every call is intercepted, each once. */
  assert_server_alive (f);
  g_assert_cmpuint (icept (a)->n_intercepts, ==, 2);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 2);
  g_assert_cmpuint (icept (a)->n_completed, ==, 2);
  g_assert_cmpuint (icept (b)->n_completed, ==, 2);
  g_assert_cmpint (icept (a)->deadline, ==, G_MAXINT64);
}

static void
test_interceptor_reject_unary (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "B", log);
  g_autoptr(TestInterceptor) c = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "C", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  RawResponse resp;

  icept (b)->reject_code = CP_ERROR_UNAUTHENTICATED;
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 401);
  assert_error_json (resp.body, CP_ERROR_UNAUTHENTICATED, "refused by B");
  /* Metadata added by the interceptors that ran goes with the error. */
  assert_header (resp.headers, "x-intercepted-by", "A, B");
  assert_header (resp.headers, "Trailer-X-Seen-By", "A, B");
  raw_response_clear (&resp);

  /* Neither the handler nor C ran; A and B saw the outcome. */
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (c)->n_intercepts, ==, 0);
  g_assert_cmpuint (icept (c)->n_completed, ==, 0);
  g_assert_cmpstr (log->str, ==, "A,B,B:unauthenticated,A:unauthenticated,");

  /* The same over GET. */
  icept (b)->reject_code = CP_ERROR_RESOURCE_EXHAUSTED;
  {
    g_autofree char *target = g_strdup_printf ("%s?encoding=json&message=%%7B%%22key%%22%%3A%%22g%%22%%7D",
                                               KV_PROCEDURE_GET);
    roundtrip (f, "GET", target, NULL, NULL, &resp);
    g_assert_cmpuint (resp.status, ==, 429);
    assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, "refused by B");
    raw_response_clear (&resp);
    g_assert_cmpstr (icept (a)->request_key, ==, "g");
  }
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_RESOURCE_EXHAUSTED);
}

static void
test_interceptor_reject_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "B", log);
  RawResponse resp;
  GArray *envs;

  icept (b)->reject_code = CP_ERROR_RESOURCE_EXHAUSTED;

  /* Server stream: the request was decoded; a lone EndStream answers. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("n:3");
    g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(GError) error = NULL;

    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, env, &resp);
    g_assert_cmpuint (envs->len, ==, 1);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 0).payload, trailers);
    g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    g_assert_cmpstr (error->message, ==, "refused later by B");
    assert_header (trailers, "x-seen-by", "A, B");
    assert_header (resp.headers, "x-intercepted-by", "A, B");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
    g_assert_cmpstr (icept (a)->request_key, ==, "n:3");
    g_assert_cmpint (icept (a)->kind, ==, CP_METHOD_SERVER_STREAMING);
  }

  /* Client stream: intercepted before any request is read (request NULL). */
  {
    const char *keys[] = { "a", "b", NULL };
    g_autoptr(GBytes) body = put_envelopes (keys);
    g_autoptr(GError) error = stream_call_error (f, SUM_PROCEDURE, NULL, body);

    g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    g_assert_false (icept (a)->saw_request);
    g_assert_false (icept (b)->saw_request);
    g_assert_cmpint (icept (a)->kind, ==, CP_METHOD_CLIENT_STREAMING);
  }

  /* Bidi, refused by the synchronous one. */
  icept (b)->reject_code = 0;
  icept (a)->reject_code = CP_ERROR_PERMISSION_DENIED;
  {
    g_autoptr(GBytes) body = watch_request_envelope ("x");
    g_autoptr(GError) error = stream_call_error (f, ECHO_PROCEDURE, NULL, body);

    g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
    g_assert_false (icept (a)->saw_request);
  }

  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 2);
  g_assert_cmpstr (log->str, ==,
                   "A,B,B:resource_exhausted,A:resource_exhausted,"
                   "A,B,B:resource_exhausted,A:resource_exhausted,"
                   "A,A:permission_denied,");
  icept (a)->reject_code = 0;
  assert_server_alive (f);
}

static void
test_interceptor_async (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "B", log);
  g_autoptr(GBytes) body = get_request_proto ("later");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                             "Content-Type: application/proto\r\n", body);
  RawConn *rc;
  RawResponse resp;

  /* The call waits for the decision: nothing runs after A until then. */
  icept (a)->hold = TRUE;
  rc = raw_conn_new (f->url);
  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  while (icept (a)->pending == NULL)
    g_main_context_iteration (NULL, TRUE);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 0);

  resolve_pending (a, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);
  raw_conn_free (rc);
  g_assert_cmpuint (f->n_calls, ==, 1);
  g_assert_cmpstr (log->str, ==, "A,B,B:ok,A:ok,");

  /* A late refusal. */
  g_string_truncate (log, 0);
  rc = raw_conn_new (f->url);
  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  while (icept (a)->pending == NULL)
    g_main_context_iteration (NULL, TRUE);
  resolve_pending (a, FALSE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 503);
  assert_error_json (resp.body, CP_ERROR_UNAVAILABLE, "decided late");
  raw_response_clear (&resp);
  raw_conn_free (rc);
  g_assert_cmpuint (f->n_calls, ==, 1);
  g_assert_cmpstr (log->str, ==, "A,A:unavailable,");

  /* Decided in a later iteration, without the test's help. */
  icept (a)->hold = FALSE;
  icept (a)->reject_code = CP_ERROR_UNAUTHENTICATED;
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 401);
  raw_response_clear (&resp);
  g_assert_cmpuint (f->n_calls, ==, 1);
}

static void
test_interceptor_headers (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  RawResponse resp;

  /* Unary: next to the handler's own metadata. */
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "x-intercepted-by", "A");
  assert_header (resp.headers, "Trailer-X-Seen-By", "A");
  assert_header (resp.headers, "x-custom-header", "foo, bar");
  assert_header (resp.headers, "Trailer-X-Custom-Trailer", "bing, quux");
  raw_response_clear (&resp);

  /* Server stream: the header leads, the trailer is in the EndStream. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("n:2");
    g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(GError) error = NULL;
    GArray *envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, env, &resp);

    g_assert_cmpuint (envs->len, ==, 3);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 2).payload, trailers);
    g_assert_no_error (error);
    assert_header (resp.headers, "x-intercepted-by", "A");
    assert_header (resp.headers, "x-custom-header", "foo, bar");
    assert_header (trailers, "x-seen-by", "A");
    assert_header (trailers, "x-custom-trailer", "bing, quux");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
  g_assert_cmpuint (f->n_calls, ==, 2);
}

static void
test_interceptor_outcome (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  RawResponse resp;

  /* The handler's error. */
  {
    g_autofree char *key = g_strdup_printf ("error:%d", CP_ERROR_NOT_FOUND);
    g_autoptr(GBytes) body = get_request_proto (key);

    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
    g_assert_cmpuint (resp.status, ==, 404);
    raw_response_clear (&resp);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_NOT_FOUND);
  }

  /* A handler that answers nothing: internal. */
  {
    g_autoptr(GBytes) body = get_request_proto ("no-answer");

    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
    g_assert_cmpuint (resp.status, ==, 500);
    raw_response_clear (&resp);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_INTERNAL);
  }

  /* The deadline passes while the handler works. */
  {
    g_autoptr(GBytes) body = get_request_proto ("slow");

    roundtrip (f, "POST", KV_PROCEDURE_GET,
               "Content-Type: application/proto\r\nConnect-Timeout-Ms: 50\r\n", body, &resp);
    g_assert_cmpuint (resp.status, ==, 504);
    raw_response_clear (&resp);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_DEADLINE_EXCEEDED);
    g_assert_nonnull (f->held);
    g_clear_object (&f->held);
  }

  /* The client goes away in the middle of a stream. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("forever");
    g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                               "Content-Type: application/connect+proto\r\n", env);
    RawConn *rc = raw_conn_new (f->url);
    guint n_completed;

    g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
    g_assert_true (raw_read_head (rc, &resp));
    raw_response_clear (&resp);
    g_assert_nonnull (f->held);
    n_completed = icept (a)->n_completed;
    g_assert_cmpint (icept (a)->last_code, ==, -1);

    raw_conn_free (rc);
    while (icept (a)->n_completed == n_completed)
      g_main_context_iteration (NULL, TRUE);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_CANCELED);
    g_assert_true (f->held_cancelled);
    cp_invocation_return_ok (f->held);
    g_clear_object (&f->held);
  }

  g_assert_cmpuint (icept (a)->n_completed, ==, 4);
  g_assert_cmpstr (log->str, ==, "A,A:not_found,A,A:internal,A,A:deadline_exceeded,A,A:canceled,");
}

/* The deadline passes, or the client leaves, while a decision is pending:
 * the call ends then and there; the handler never runs. */
static void
test_interceptor_outcome_pending (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "A", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  RawResponse resp;

  icept (a)->hold = TRUE;
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 50\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 504);
  assert_error_json (resp.body, CP_ERROR_DEADLINE_EXCEEDED, NULL);
  raw_response_clear (&resp);
  g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_DEADLINE_EXCEEDED);
  /* The decision comes too late: ignored. */
  resolve_pending (a, TRUE);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (f->n_calls, ==, 0);

  /* Client gone. */
  {
    g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                               "Content-Type: application/proto\r\n", body);
    RawConn *rc = raw_conn_new (f->url);

    g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
    while (icept (a)->pending == NULL)
      g_main_context_iteration (NULL, TRUE);
    raw_conn_free (rc);
    while (icept (a)->n_completed < 2)
      g_main_context_iteration (NULL, TRUE);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_CANCELED);
    resolve_pending (a, TRUE);
    for (int i = 0; i < 10; i++)
      g_main_context_iteration (NULL, FALSE);
  }
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpstr (log->str, ==, "A,A:deadline_exceeded,A,A:canceled,");
  icept (a)->hold = FALSE;
  assert_server_alive (f);
  g_assert_cmpuint (f->n_calls, ==, 1);
}

static void
on_observed (CpServerInterceptor *observer,
             CpInvocation        *invocation,
             const GError        *error,
             gpointer             user_data)
{
  GString *seen = user_data;

  g_string_append_printf (seen, "%s:%s,", cp_invocation_get_procedure (invocation),
                          error ? cp_error_code_to_string (error->code) : "ok");
}

/* An interceptor may answer the call itself: the chain stops there. The
 * plain base class lets calls through and emits ::completed. */
static void
test_interceptor_answers (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(GString) seen = g_string_new (NULL);
  g_autoptr(CpServerInterceptor) observer = cp_server_interceptor_new ();
  g_autoptr(TestInterceptor) a = NULL;
  g_autoptr(TestInterceptor) b = NULL;
  g_autoptr(GBytes) body = get_request_proto ("hello");
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  g_signal_connect (observer, "completed", G_CALLBACK (on_observed), seen);
  cp_rpc_server_add_interceptor (f->server, observer);
  a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  b = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "B", log);
  icept (a)->answer = TRUE;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "cached");
  assert_header (resp.headers, "x-intercepted-by", "A");
  raw_response_clear (&resp);
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 0);
  g_assert_cmpstr (log->str, ==, "A,A:ok,");
  g_assert_cmpstr (seen->str, ==, KV_PROCEDURE_GET ":ok,");
}

static void
test_method_info (void)
{
  g_autoptr(CpMethodInfo) info = cp_method_info_new ("/a.b.Svc/Do", CP_METHOD_SERVER_STREAMING,
                                                     KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);

  g_assert_cmpstr (cp_method_info_get_procedure (info), ==, "/a.b.Svc/Do");
  g_assert_cmpstr (cp_method_info_get_service_name (info), ==, "a.b.Svc");
  g_assert_cmpstr (cp_method_info_get_method_name (info), ==, "Do");
  g_assert_cmpint (cp_method_info_get_kind (info), ==, CP_METHOD_SERVER_STREAMING);
  g_assert_true (cp_method_info_get_input_type (info) == KV_TYPE_GET_REQUEST);
  g_assert_true (cp_method_info_get_output_type (info) == KV_TYPE_GET_RESPONSE);
  g_assert_cmpint (cp_method_info_get_idempotency (info), ==, CP_IDEMPOTENCY_UNKNOWN);
  cp_method_info_set_idempotency (info, CP_IDEMPOTENCY_IDEMPOTENT);
  g_assert_cmpint (cp_method_info_get_idempotency (info), ==, CP_IDEMPOTENCY_IDEMPOTENT);
  g_assert_true (G_TYPE_IS_BOXED (CP_TYPE_METHOD_INFO));
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  g_test_add_func ("/rpc/method-info/basic", test_method_info);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/rpc/server/unary/proto", test_unary_proto);
  ADD ("/rpc/server/unary/json", test_unary_json);
  ADD ("/rpc/server/unary/empty-request", test_unary_empty_request);
  ADD ("/rpc/server/unary/errors", test_unary_errors);
  ADD ("/rpc/server/unary/non-connect-error", test_unary_non_connect_error);
  ADD ("/rpc/server/unary/no-answer", test_unary_no_answer);
  ADD ("/rpc/server/unary/keep-alive", test_keep_alive);
  ADD ("/rpc/server/unary/answered-twice", test_unary_answered_twice);
  ADD ("/rpc/server/unary/chunked-body", test_unary_chunked_body);
  ADD ("/rpc/server/local-exchange", test_local_exchange);
  ADD ("/rpc/server/get/ok", test_get);
  ADD ("/rpc/server/get/errors", test_get_errors);
  ADD ("/rpc/server/unexpected", test_unexpected);
  ADD ("/rpc/server/require-protocol-header", test_require_protocol_header);
  ADD ("/rpc/server/compression/unary", test_compression_unary);
  ADD ("/rpc/server/compression/stream", test_compression_stream);
  ADD ("/rpc/server/timeout/visible", test_timeout_visible);
  ADD ("/rpc/server/timeout/malformed", test_timeout_malformed);
  ADD ("/rpc/server/timeout/exceeded", test_timeout_exceeded);
  ADD ("/rpc/server/stream/server", test_server_stream);
  ADD ("/rpc/server/stream/server-errors", test_server_stream_errors);
  ADD ("/rpc/server/stream/server-cardinality", test_server_stream_cardinality);
  ADD ("/rpc/server/stream/client", test_client_stream);
  ADD ("/rpc/server/stream/client-chunked", test_client_stream_chunked);
  ADD ("/rpc/server/stream/bidi-half-duplex", test_bidi_half_duplex);
  ADD ("/rpc/server/max-receive-size", test_max_receive_size);
  ADD ("/rpc/server/receive-limit/declared", test_receive_limit_declared);
  ADD ("/rpc/server/slow-reader/send-queue-bound", test_slow_reader_send_queue_bound);
  ADD ("/rpc/server/memory-trim", test_memory_trim);
  ADD ("/rpc/server/receive-limit/envelope", test_receive_limit_envelope);
  ADD ("/rpc/server/receive-limit/decoded", test_receive_limit_decoded);
  ADD ("/rpc/server/unary/json-empty-and-duplicate", test_unary_json_empty_body);
  /* Last: on failure it stalls for RAW_STALL_SECONDS. */
  g_test_add ("/rpc/zz-backpressure/slow-reader", Fixture, NULL, fixture_setup,
              test_slow_reader_backpressure, fixture_teardown);
  ADD ("/rpc/server/disconnect-cancels", test_disconnect_cancels);
  ADD ("/rpc/server/shutdown", test_shutdown);
  ADD ("/rpc/server/interceptor/order", test_interceptor_order);
  ADD ("/rpc/server/interceptor/reject-unary", test_interceptor_reject_unary);
  ADD ("/rpc/server/interceptor/reject-stream", test_interceptor_reject_stream);
  ADD ("/rpc/server/interceptor/async", test_interceptor_async);
  ADD ("/rpc/server/interceptor/headers", test_interceptor_headers);
  ADD ("/rpc/server/interceptor/outcome", test_interceptor_outcome);
  ADD ("/rpc/server/interceptor/outcome-pending", test_interceptor_outcome_pending);
  ADD ("/rpc/server/interceptor/answers", test_interceptor_answers);
#undef ADD

  return g_test_run ();
}
