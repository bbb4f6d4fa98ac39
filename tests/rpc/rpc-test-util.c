/* rpc-test-util.c: the server fixture and request helpers shared by test-rpc-server*
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fixture runs a CpRpcServer on 127.0.0.1:0 with the KV handlers
 * (Get, Put, Watch on kv.v1 and the client-streaming Sum and bidi Echo on
 * test.v1), whose behaviour the request key or prefix picks; the helpers
 * build requests, do one round trip over the raw client of rpc-test-util.h
 * and check Connect error bodies.
 */
#include <connectplugin.h>
#include <json-glib/json-glib.h>

#include "cp-error-private.h"
#include "kv-test.h"
#include "rpc-test-util.h"

/* ------------------------------------------------------------------ */
/* Handlers (registered by fixture_setup)                              */

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

void
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

void
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

GBytes *
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
void
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

GBytes *
proto_of (gpointer message)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = cp_message_serialize (CP_MESSAGE (message), CP_CODEC_PROTO, &error);

  g_assert_no_error (error);
  return bytes;
}

GBytes *
get_request_proto (const char *key)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);
  return proto_of (request);
}

GBytes *
watch_request_envelope (const char *prefix)
{
  g_autoptr(KvWatchRequest) request = kv_test_watch_request (prefix);
  g_autoptr(GBytes) payload = proto_of (request);
  return raw_envelope (0, g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
}

/* Client-stream body: one envelope per PutRequest of keys (NULL-terminated). */
GBytes *
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

KvGetResponse *
decode_get_response (GBytes *body, CpCodec codec)
{
  g_autoptr(GError) error = NULL;
  CpMessage *message = cp_message_new_from_bytes (KV_TYPE_GET_RESPONSE, codec, body, &error);

  g_assert_no_error (error);
  return KV_GET_RESPONSE (message);
}

void
assert_value (KvGetResponse *response, const char *expected)
{
  g_autoptr(GBytes) value = kv_get_response_get_value (response);
  g_autofree char *text = g_strndup (g_bytes_get_size (value) ? g_bytes_get_data (value, NULL) : "",
                                     g_bytes_get_size (value));

  g_assert_cmpstr (text, ==, expected);
}

void
assert_header (SoupMessageHeaders *headers, const char *name, const char *expected)
{
  g_assert_cmpstr (soup_message_headers_get_list (headers, name), ==, expected);
}

/* Parses error JSON; checks code and the rich error's fields. */
void
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

void
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
GError *
parse_end_stream (GBytes *payload, SoupMessageHeaders *trailers)
{
  GError *rpc_error = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_end_stream_parse (payload, trailers, &rpc_error, &error));
  g_assert_no_error (error);
  return rpc_error;
}

void
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
GArray *
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

GError *
stream_call_error (Fixture *f, const char *procedure, const char *headers, GBytes *body)
{
  RawResponse resp;
  GArray *envs = stream_call (f, procedure, headers, body, &resp);
  GError *error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);

  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  return error;
}

