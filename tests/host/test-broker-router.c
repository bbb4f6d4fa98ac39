/* test-broker-router.c: the broker's router (/services/) and rate limiter
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real host (CpServer + CpBroker on 127.0.0.1:0) routes to a real
 * provider (a listening CpRpcServer serving the KV example's generated
 * service, plus raw streaming endpoints), called over real sockets with
 * libsoup and with a generated proxy.
 *
 * The provider's runtime identity is issued by the host as a handshake
 * does, and the provider registers its two services with the host's
 * ServiceRegistry as a plugin does (base_url: where it listens).
 */
#include <connectplugin.h>
#include <stdlib.h>
#include <string.h>

#include "cp-broker-private.h"
#include "cp-router-private.h"
#include "cp-rate-limiter-private.h"
#include "cp-http-exchange-private.h"
#include "cp-plugin-constants.h"
#include "kv-test.h"
#include "test-body.h"

typedef struct {
  CpServer *host;
  CpBroker *broker;
  char *host_url;

  CpRpcServer *up;              /* the provider */
  char *up_url;
  KvKVService *kv;
  CpPluginInstance *provider;
  char *pid, *ptok;             /* provider identity */
  char *cid, *ctok;             /* caller identity */

  SoupSession *client;
  CpHttpExchange *held;         /* a streaming answer the provider holds */
  gsize up_bytes;               /* request bytes the provider received */
  gboolean up_aborted;
  gboolean up_body_done;
} Fixture;

/* Hands a new GBytes to a transfer-none call and drops it. */
static GBytes *
scratch (GBytes *bytes)
{
  static GBytes *last;

  g_clear_pointer (&last, g_bytes_unref);
  return last = bytes;
}

static void
wait_for (gboolean *flag)
{
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (!*flag)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);   /* hang guard */
      g_main_context_iteration (NULL, TRUE);
    }
}

/* ------------------------------------------------------------------ */
/* The provider                                                         */

static gboolean
on_kv_get (KvKVService  *kv,
           CpInvocation *invocation,
           KvGetRequest *request,
           Fixture      *f)
{
  SoupMessageHeaders *h = cp_invocation_get_request_headers (invocation);
  const char *auth = soup_message_headers_get_one (h, "Authorization");
  const char *rid = soup_message_headers_get_one (h, "X-Plugin-Runtime-ID");
  const char *custom = soup_message_headers_get_one (h, "X-Custom");
  g_autofree char *text = g_strdup_printf ("%s|auth=%s;rid=%s;custom=%s",
                                           kv_get_request_get_key (request),
                                           auth ? auth : "-", rid ? rid : "-",
                                           custom ? custom : "-");
  g_autoptr(GBytes) value = g_bytes_new (text, strlen (text));
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static void
up_chunk (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data)
{
  ((Fixture *) user_data)->up_bytes += g_bytes_get_size (chunk);
}

static void
up_end (CpHttpExchange *exchange, gpointer user_data)
{
  Fixture *f = user_data;
  g_autofree char *text = g_strdup_printf ("%" G_GSIZE_FORMAT, f->up_bytes);

  f->up_body_done = TRUE;
  if (g_str_has_suffix (cp_http_exchange_get_path (exchange), "/Count"))
    cp_http_exchange_respond (exchange, 200, NULL, scratch (g_bytes_new (text, strlen (text))));
}

static void
up_aborted (CpHttpExchange *exchange, const GError *error, gpointer user_data)
{
  ((Fixture *) user_data)->up_aborted = TRUE;
}

static const CpHttpExchangeCallbacks up_callbacks = { up_chunk, up_end, up_aborted, NULL };

static void
up_raw (CpRpcServer    *server,
        CpHttpExchange *exchange,
        gpointer        user_data)
{
  Fixture *f = user_data;
  const char *path = cp_http_exchange_get_path (exchange);
  SoupMessageHeaders *h = cp_http_exchange_get_request_headers (exchange);

  cp_http_exchange_set_callbacks (exchange, &up_callbacks, f, NULL);
  if (g_str_equal (path, "/raw.v1.Raw/Headers"))
    {
      const char *auth = soup_message_headers_get_one (h, "Authorization");
      const char *rid = soup_message_headers_get_one (h, "X-Plugin-Runtime-ID");
      const char *custom = soup_message_headers_get_one (h, "X-Custom");
      const char *timeout = soup_message_headers_get_one (h, "Connect-Timeout-Ms");
      const char *query = cp_http_exchange_get_query (exchange);
      const char *proxy_auth = soup_message_headers_get_one (h, "Proxy-Authorization");
      g_autofree char *text = g_strdup_printf ("auth=%s;rid=%s;custom=%s;timeout=%s;query=%s;proxy-auth=%s",
                                               auth ? auth : "-", rid ? rid : "-",
                                               custom ? custom : "-", timeout ? timeout : "-",
                                               query ? query : "-", proxy_auth ? proxy_auth : "-");
      g_autoptr(SoupMessageHeaders) out = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

      soup_message_headers_append (out, "X-Upstream", "yes");
      /* Hop-by-hop: the router must not pass it on. */
      soup_message_headers_append (out, "Proxy-Authenticate", "Basic realm=\"provider\"");
      cp_http_exchange_respond (exchange, 203, out, scratch (g_bytes_new (text, strlen (text))));
    }
  else if (g_str_equal (path, "/raw.v1.Raw/Count"))
    ;                                   /* answered at body end */
  else if (g_str_equal (path, "/raw.v1.Raw/Stream") || g_str_equal (path, "/raw.v1.Raw/Hang"))
    {
      cp_http_exchange_begin_response (exchange, 200, NULL);
      cp_http_exchange_write (exchange, scratch (g_bytes_new_static ("first\n", 6)));
      g_clear_pointer (&f->held, cp_http_exchange_unref);
      f->held = cp_http_exchange_ref (exchange);
    }
  else if (g_str_equal (path, "/raw.v1.Raw/Early"))
    cp_http_exchange_respond (exchange, 200, NULL, scratch (g_bytes_new_static ("early", 5)));
  else if (g_str_equal (path, "/raw.v1.Raw/Silent"))
    {
      g_clear_pointer (&f->held, cp_http_exchange_unref);
      f->held = cp_http_exchange_ref (exchange);
    }
  else
    cp_http_exchange_respond (exchange, 404, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

static CpPluginInstance *
authenticate (Fixture    *f,
              const char *id,
              const char *token)
{
  g_autoptr(SoupMessageHeaders) h = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autofree char *auth = g_strdup_printf ("Bearer %s", token);
  g_autoptr(GError) error = NULL;
  CpPluginInstance *instance;

  soup_message_headers_append (h, "X-Plugin-Runtime-ID", id);
  soup_message_headers_append (h, "Authorization", auth);
  instance = cp_broker_authenticate (f->broker, h, &error);
  g_assert_no_error (error);
  return instance;
}

static void
on_registered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpRegisterServiceResponse) response =
    cp_service_registry_call_register_service_finish (CP_SERVICE_REGISTRY (source), result, &error);

  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* The provider registers @type with the host's ServiceRegistry under its
 * own runtime identity, saying where it listens. */
static void
register_service (Fixture    *f,
                  const char *type,
                  const char *endpoint_path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->host_url, &error);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", f->ptok);
  g_autoptr(CpServiceRegistry) registry = NULL;
  g_autoptr(CpRegisterServiceRequest) request = cp_register_service_request_new ();
  g_autoptr(GHashTable) metadata = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean done = FALSE;

  g_assert_no_error (error);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", f->pid);
  cp_channel_set_header (channel, "Authorization", bearer);
  registry = cp_service_registry_proxy_new (channel);
  g_hash_table_insert (metadata, "base_url", f->up_url);
  cp_register_service_request_set_service_type (request, type);
  cp_register_service_request_set_version (request, "1.0.0");
  cp_register_service_request_set_endpoint_path (request, endpoint_path);
  cp_register_service_request_set_metadata (request, metadata);
  cp_service_registry_call_register_service (registry, request, NULL, NULL, on_registered, &done);
  wait_for (&done);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->host = cp_server_new ();
  f->broker = cp_broker_new (f->host);
  f->host_url = cp_server_listen (f->host, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  f->up = cp_rpc_server_new ();
  f->kv = kv_kv_service_skeleton_new ();
  g_signal_connect (f->kv, "handle-get", G_CALLBACK (on_kv_get), f);
  g_assert_true (cp_skeleton_export (CP_SKELETON (f->kv), f->up, &error));
  cp_rpc_server_add_prefix_handler (f->up, "/raw.v1.Raw/", up_raw, f, NULL);
  f->up_url = cp_rpc_server_listen (f->up, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  cp_server_issue_runtime_identity (f->host, "kv-plugin", &f->pid, &f->ptok);
  cp_server_issue_runtime_identity (f->host, "app-plugin", &f->cid, &f->ctok);
  register_service (f, "kv", "/kv.v1.KVService/");
  register_service (f, "raw", "/raw.v1.Raw/");
  f->provider = g_object_ref (authenticate (f, f->pid, f->ptok));
  g_assert_cmpstr (cp_plugin_instance_get_url (f->provider), ==, f->up_url);
  authenticate (f, f->cid, f->ctok);

  f->client = soup_session_new ();
  g_object_set (f->client, "timeout", 0, "idle-timeout", 0, NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->held != NULL && !cp_http_exchange_is_finished (f->held))
    cp_http_exchange_end_response (f->held);
  g_clear_pointer (&f->held, cp_http_exchange_unref);
  soup_session_abort (f->client);
  g_clear_object (&f->client);
  cp_server_close (f->host);
  cp_rpc_server_close (f->up);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->provider);
  g_assert_finalize_object (f->broker);
  g_clear_object (&f->host);
  g_clear_object (&f->kv);
  g_clear_object (&f->up);
  g_free (f->host_url);
  g_free (f->up_url);
  g_free (f->pid);
  g_free (f->ptok);
  g_free (f->cid);
  g_free (f->ctok);
}

/* ------------------------------------------------------------------ */
/* A client request, read as it streams                                 */

typedef struct {
  SoupMessage *msg;
  GInputStream *in;
  GCancellable *cancellable;
  GString *body;
  GError *error;
  guint status;
  gboolean headers;
  gboolean done;
} Req;

static void req_read (Req *req);

static void
on_req_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Req *req = user_data;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (req->in, result, &req->error);

  if (chunk == NULL || g_bytes_get_size (chunk) == 0)
    req->done = TRUE;
  else
    {
      g_string_append_len (req->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
      req_read (req);
    }
}

static void
req_read (Req *req)
{
  g_input_stream_read_bytes_async (req->in, 4096, G_PRIORITY_DEFAULT, req->cancellable,
                                   on_req_read, req);
}

static void
on_req_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Req *req = user_data;

  req->in = soup_session_send_finish (SOUP_SESSION (source), result, &req->error);
  req->headers = TRUE;
  if (req->in == NULL)
    {
      req->done = TRUE;
      return;
    }
  req->status = soup_message_get_status (req->msg);
  req_read (req);
}

/* @auth: "caller" (the caller's identity), NULL (none) or a raw
 * "id|token" pair. */
static Req *
req_start (Fixture      *f,
           const char   *method,
           const char   *path,
           const char   *auth,
           GInputStream *body)
{
  Req *req = g_new0 (Req, 1);
  g_autofree char *url = g_strconcat (f->host_url, path, NULL);
  SoupMessageHeaders *h;

  req->msg = soup_message_new (method, url);
  g_assert_nonnull (req->msg);
  req->body = g_string_new (NULL);
  req->cancellable = g_cancellable_new ();
  h = soup_message_get_request_headers (req->msg);
  if (auth != NULL)
    {
      g_auto(GStrv) parts = g_str_equal (auth, "caller") ? NULL : g_strsplit (auth, "|", 2);
      g_autofree char *bearer = g_strdup_printf ("Bearer %s", parts ? parts[1] : f->ctok);

      soup_message_headers_append (h, "X-Plugin-Runtime-ID", parts ? parts[0] : f->cid);
      soup_message_headers_append (h, "Authorization", bearer);
    }
  soup_message_headers_append (h, "X-Custom", "yes");
  if (body != NULL)
    soup_message_set_request_body (req->msg, "application/octet-stream", body, -1);
  soup_session_send_async (f->client, req->msg, G_PRIORITY_DEFAULT, req->cancellable,
                           on_req_sent, req);
  return req;
}

static void
req_free (Req *req)
{
  g_object_unref (req->msg);
  g_clear_object (&req->in);
  g_object_unref (req->cancellable);
  g_string_free (req->body, TRUE);
  g_clear_error (&req->error);
  g_free (req);
}

/* Runs a whole request; returns "STATUS body". */
static char *
call (Fixture    *f,
      const char *method,
      const char *path,
      const char *auth)
{
  Req *req = req_start (f, method, path, auth, NULL);
  char *result;

  wait_for (&req->done);
  g_assert_no_error (req->error);
  result = g_strdup_printf ("%u %s", req->status, req->body->str);
  req_free (req);
  return result;
}


/* A raw request on a socket of its own (libsoup would normalise the
 * path): returns "STATUS body" of the answer. */
typedef struct {
  char *address;
  char *request;
  GString *answer;
  const char *close_after;      /* hang up once the answer holds this */
  gboolean done;
} RawCall;

static gpointer
raw_thread (gpointer data)
{
  RawCall *raw = data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = g_socket_client_connect_to_host (client, raw->address, 0, NULL, NULL);
  char buffer[4096];
  gssize n;

  g_assert_nonnull (conn);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)),
                                            raw->request, strlen (raw->request), NULL, NULL, NULL));
  while ((n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (conn)),
                                   buffer, sizeof buffer, NULL, NULL)) > 0)
    {
      g_string_append_len (raw->answer, buffer, n);
      if (raw->close_after != NULL && strstr (raw->answer->str, raw->close_after) != NULL)
        break;
    }
  g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  g_atomic_int_set (&raw->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

static char *
raw_call_full (Fixture    *f,
               const char *path,
               const char *extra,
               const char *close_after)
{
  RawCall raw = { .close_after = close_after };
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", f->ctok);
  GThread *thread;
  const char *body;
  char *result;
  guint status;

  raw.address = g_strdup (f->host_url + strlen ("http://"));
  raw.request = g_strdup_printf ("POST %s HTTP/1.1\r\nHost: x\r\nX-Plugin-Runtime-ID: %s\r\n"
                                 "Authorization: %s\r\nContent-Length: 0\r\n%s"
                                 "Connection: close\r\n\r\n", path, f->cid, bearer, extra);
  raw.answer = g_string_new (NULL);
  thread = g_thread_new ("raw", raw_thread, &raw);
  while (!g_atomic_int_get (&raw.done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
  g_assert_true (g_str_has_prefix (raw.answer->str, "HTTP/1.1 "));
  status = atoi (raw.answer->str + strlen ("HTTP/1.1 "));
  body = strstr (raw.answer->str, "\r\n\r\n");
  g_assert_nonnull (body);
  result = g_strdup_printf ("%u %s", status, body + 4);
  g_free (raw.address);
  g_free (raw.request);
  g_string_free (raw.answer, TRUE);
  return result;
}

static char *
raw_call (Fixture    *f,
          const char *path,
          const char *extra)
{
  return raw_call_full (f, path, extra, NULL);
}

#define ASSERT_CALL(f, path, auth, expected) G_STMT_START {         \
    g_autofree char *got_ = call (f, "POST", path, auth);           \
    g_assert_cmpstr (got_, ==, expected);                           \
  } G_STMT_END

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void
on_get_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = kv_kv_service_call_get_finish (KV_KV_SERVICE (source), result, &error);
  g_autoptr(GBytes) value = NULL;
  char **out = user_data;

  g_assert_no_error (error);
  value = kv_get_response_get_value (response);

  *out = g_strndup (g_bytes_get_data (value, NULL), g_bytes_get_size (value));
}

/* A generated proxy on a channel through the router, as
 * cp_server_discover_service() makes it: the provider sees the caller's
 * custom header but neither its runtime id nor its token. */
static void
test_unary_proxy (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *base = g_strdup_printf ("%s/services/kv/%s", f->host_url, f->pid);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", f->ctok);
  g_autoptr(CpChannel) channel = cp_channel_new (base, &error);
  g_autoptr(KvKVService) proxy = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k1");
  g_autofree char *value = NULL;
  gboolean done = FALSE;

  g_assert_no_error (error);
  g_object_set (channel, "method-only-paths", TRUE, NULL);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", f->cid);
  cp_channel_set_header (channel, "Authorization", bearer);
  cp_channel_set_header (channel, "X-Custom", "yes");
  proxy = kv_kv_service_proxy_new (channel);
  for (int i = 0; i < 5; i++)
    {
      g_clear_pointer (&value, g_free);
      kv_kv_service_call_get (proxy, request, NULL, NULL, on_get_done, &value);
      while (value == NULL)
        g_main_context_iteration (NULL, TRUE);
      g_assert_cmpstr (value, ==, "k1|auth=-;rid=-;custom=yes");
    }
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
  /* Sequential calls share one upstream connection (keep-alive). */
  g_assert_cmpuint (cp_http_server_get_n_connections (cp_rpc_server_get_http_server (f->up)), ==, 1);
  (void) done;
}

static void
on_span (GObject *source, CpSpan *span, GPtrArray *into)
{
  g_ptr_array_add (into, cp_span_ref (span));
}

/* A call from one plugin through the router to another keeps one trace:
 * the router passes traceparent on, and when the host traces (a
 * span-finished handler on its server) it records a router span between
 * the caller's span and the provider's. */
static void
test_trace (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *base = g_strdup_printf ("%s/services/kv/%s", f->host_url, f->pid);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", f->ctok);
  g_autoptr(CpChannel) channel = cp_channel_new (base, &error);
  g_autoptr(KvKVService) proxy = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k1");
  g_autoptr(GPtrArray) client = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_span_unref);
  g_autoptr(GPtrArray) router = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_span_unref);
  g_autoptr(GPtrArray) provider = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_span_unref);
  CpSpanContext *c, *r, *p;

  g_assert_no_error (error);
  g_object_set (channel, "method-only-paths", TRUE, "tracing", TRUE, NULL);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", f->cid);
  cp_channel_set_header (channel, "Authorization", bearer);
  g_signal_connect (channel, "span-finished", G_CALLBACK (on_span), client);
  g_signal_connect (f->up, "span-finished", G_CALLBACK (on_span), provider);
  proxy = kv_kv_service_proxy_new (channel);

  for (guint round = 0; round < 2; round++)
    {
      g_autofree char *value = NULL;

      /* Second round: the host traces too. */
      if (round == 1)
        g_signal_connect (cp_server_get_rpc_server (f->host), "span-finished",
                          G_CALLBACK (on_span), router);
      kv_kv_service_call_get (proxy, request, NULL, NULL, on_get_done, &value);
      while (value == NULL || client->len <= round || provider->len <= round)
        g_main_context_iteration (NULL, TRUE);
      c = cp_span_get_context (client->pdata[round]);
      p = cp_span_get_context (provider->pdata[round]);
      g_assert_cmpstr (cp_span_context_get_trace_id (p), ==, cp_span_context_get_trace_id (c));
      /* The provider's client is the router's upstream connection. */
      g_assert_true (g_str_has_prefix (cp_span_get_peer (provider->pdata[round]), "127.0.0.1:"));
      if (round == 0)
        {
          g_assert_cmpuint (router->len, ==, 0);
          g_assert_cmpstr (cp_span_context_get_parent_span_id (p), ==, cp_span_context_get_span_id (c));
          continue;
        }
      while (router->len == 0)
        g_main_context_iteration (NULL, TRUE);
      r = cp_span_get_context (router->pdata[0]);
      g_assert_cmpint (cp_span_get_kind (router->pdata[0]), ==, CP_SPAN_KIND_ROUTER);
      g_assert_cmpuint (cp_span_get_status_code (router->pdata[0]), ==, 0);
      g_assert_cmpstr (cp_span_context_get_trace_id (r), ==, cp_span_context_get_trace_id (c));
      g_assert_cmpstr (cp_span_context_get_parent_span_id (r), ==, cp_span_context_get_span_id (c));
      g_assert_cmpstr (cp_span_context_get_parent_span_id (p), ==, cp_span_context_get_span_id (r));
    }
}

/* Status, headers, query string and deadline pass through. */
static void
test_headers (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Headers?a=1&b=two", f->pid);
  Req *req = req_start (f, "POST", path, "caller", NULL);

  soup_message_headers_append (soup_message_get_request_headers (req->msg),
                               "Connect-Timeout-Ms", "5000");
  soup_message_headers_append (soup_message_get_request_headers (req->msg),
                               "Proxy-Authorization", "Basic c2VjcmV0");
  wait_for (&req->done);
  g_assert_no_error (req->error);
  g_assert_cmpuint (req->status, ==, 203);
  g_assert_cmpstr (soup_message_headers_get_one (soup_message_get_response_headers (req->msg),
                                                 "X-Upstream"), ==, "yes");
  g_assert_null (soup_message_headers_get_one (soup_message_get_response_headers (req->msg),
                                               "Proxy-Authenticate"));
  g_assert_cmpstr (req->body->str, ==, "auth=-;rid=-;custom=yes;timeout=5000;query=a=1&b=two;proxy-auth=-");
  req_free (req);
}

/* The first message of a server stream reaches the caller while the
 * provider still holds the stream open. */
static void
test_server_stream (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Stream", f->pid);
  Req *req = req_start (f, "GET", path, "caller", NULL);
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (req->body->len < 6)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_cmpstr (req->body->str, ==, "first\n");
  g_assert_false (req->done);
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 1);
  cp_http_exchange_write (f->held, scratch (g_bytes_new_static ("last\n", 5)));
  cp_http_exchange_end_response (f->held);
  wait_for (&req->done);
  g_assert_no_error (req->error);
  g_assert_cmpuint (req->status, ==, 200);
  g_assert_cmpstr (req->body->str, ==, "first\nlast\n");
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
  req_free (req);
}

/* A client stream reaches the provider while the caller is still
 * sending, and a body larger than the router's buffer goes through. */
static void
test_client_stream (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Count", f->pid);
  g_autoptr(TestBody) body = test_body_new (NULL, NULL);
  Req *req = req_start (f, "POST", path, "caller", G_INPUT_STREAM (body));
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  g_autofree guint8 *block = g_malloc0 (16 * 1024);
  gsize total = 1000;

  test_body_push (body, scratch (g_bytes_new_static (block, 1000)));
  while (f->up_bytes < 1000)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_false (f->up_body_done);
  for (int i = 0; i < 64; i++, total += 16 * 1024)   /* 1 MiB */
    test_body_push (body, scratch (g_bytes_new_static (block, 16 * 1024)));
  test_body_end (body);
  wait_for (&req->done);
  g_assert_no_error (req->error);
  g_assert_cmpuint (req->status, ==, 200);
  g_assert_cmpuint (g_ascii_strtoull (req->body->str, NULL, 10), ==, total);
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
  req_free (req);
}

static void
test_bad_request (Fixture *f, gconstpointer data)
{
  static const char *const paths[] = {
    "/services/", "/services/kv", "/services/kv/", "/services/kv/PID",
    "/services/kv/PID/", "/services//PID/Get", "/services/kv//Get",
    "/services/kv/PID/Get/More", "/services/kv/../Get", "/services/../PID/Get",
    "/services/kv/PID/..", "/services/kv/a%2Fb/Get", "/services/kv/a%2fb/Get",
    "/services/kv/%2e%2e/Get", "/services/kv/PID/%47et", "/services/k%20v/PID/Get",
    "/services/kv/PID/Get%00", "/services/.kv/PID/Get", "/services/kv/a..b/Get",
    "/services/kv/PID/kv.v1.KVService.Get",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *path = g_strdup (paths[i]);
      g_autofree char *p = NULL;
      GString *s = g_string_new (path);

      g_string_replace (s, "PID", f->pid, 0);
      p = g_string_free (s, FALSE);
      g_test_message ("%s", p);
      g_autofree char *got = raw_call (f, p, "");
      g_assert_cmpstr (got, ==,
                       "400 invalid service path, expected /services/{type}/{provider_runtime_id}/{Method}\n");
    }
}

static void
test_unauthorized (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Headers", f->pid);
  g_autofree char *bad = g_strdup_printf ("%s|%s", f->cid, "AAAA");
  g_autofree char *swapped = g_strdup_printf ("%s|%s", f->cid, f->ptok);
  g_autofree char *unknown = g_strdup_printf ("nobody-0000|%s", f->ctok);
  g_autofree char *empty = g_strdup_printf ("%s|", f->cid);

  ASSERT_CALL (f, path, NULL, "401 X-Plugin-Runtime-ID header required\n");
  ASSERT_CALL (f, path, bad, "401 invalid or expired runtime token\n");
  ASSERT_CALL (f, path, swapped, "401 invalid or expired runtime token\n");
  ASSERT_CALL (f, path, unknown, "401 invalid or expired runtime token\n");
  ASSERT_CALL (f, path, empty, "401 Authorization: Bearer <token> required\n");
  /* A revoked identity (the plugin went away). */
  cp_server_revoke_runtime_identity (f->host, f->cid);
  ASSERT_CALL (f, path, "caller", "401 invalid or expired runtime token\n");
}

static void
test_unauthorized_no_bearer (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Headers", f->pid);
  g_autofree char *url = g_strconcat (f->host_url, path, NULL);
  Req *req = req_start (f, "POST", path, NULL, NULL);

  (void) url;
  soup_message_headers_append (soup_message_get_request_headers (req->msg),
                               "X-Plugin-Runtime-ID", f->cid);
  soup_message_headers_append (soup_message_get_request_headers (req->msg),
                               "Authorization", f->ctok);  /* no "Bearer " */
  wait_for (&req->done);
  g_assert_cmpuint (req->status, ==, 401);
  g_assert_cmpstr (req->body->str, ==, "Authorization: Bearer <token> required\n");
  req_free (req);
}

static void
test_not_found (Fixture *f, gconstpointer data)
{
  g_autofree char *unknown = g_strdup ("/services/kv/nobody-0000/Get");
  g_autofree char *wrong_type = g_strdup_printf ("/services/logger/%s/Log", f->pid);
  g_autofree char *not_provider = g_strdup_printf ("/services/kv/%s/Get", f->cid);
  g_autofree char *e1 = g_strdup ("404 provider not found: nobody-0000 for kv\n");
  g_autofree char *e2 = g_strdup_printf ("404 provider not found: %s for logger\n", f->pid);
  g_autofree char *e3 = g_strdup_printf ("404 provider not found: %s for kv\n", f->cid);

  ASSERT_CALL (f, unknown, "caller", e1);
  ASSERT_CALL (f, wrong_type, "caller", e2);
  ASSERT_CALL (f, not_provider, "caller", e3);
}

static void
test_unavailable (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Headers", f->pid);
  const char *unavailable = "503 service unavailable (provider unhealthy)\n";
  const char *ok = "203 auth=-;rid=-;custom=yes;timeout=-;query=-;proxy-auth=-";

  cp_plugin_instance_set_health (f->provider, CP_HEALTH_STATE_UNHEALTHY, "db down", NULL);
  ASSERT_CALL (f, path, "caller", unavailable);
  cp_plugin_instance_set_health (f->provider, CP_HEALTH_STATE_DEGRADED, "slow", NULL);
  ASSERT_CALL (f, path, "caller", ok);
  cp_plugin_instance_set_routable (f->provider, FALSE);
  ASSERT_CALL (f, path, "caller", unavailable);
  cp_plugin_instance_set_routable (f->provider, TRUE);
  cp_plugin_instance_set_health (f->provider, CP_HEALTH_STATE_HEALTHY, NULL, NULL);
  ASSERT_CALL (f, path, "caller", ok);
}

static void
test_bad_gateway (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Headers", f->pid);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autofree char *dead = NULL;

  /* A port nobody listens on: bound, then closed. */
  g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  dead = g_strdup_printf ("http://127.0.0.1:%u",
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  g_socket_close (socket, NULL);
  cp_plugin_instance_set_url (f->provider, dead);
  ASSERT_CALL (f, path, "caller", "502 upstream failed\n");
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
  /* A URL the router cannot reach over HTTP. */
  cp_plugin_instance_set_url (f->provider, "unix:/tmp/nowhere.sock");
  ASSERT_CALL (f, path, "caller", "502 invalid provider URL\n");
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
}

/* The provider answers before reading a large client stream: the call
 * ends at once, nothing stays in flight, the host serves the next call. */
static void
test_early_answer (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Early", f->pid);
  g_autofree char *headers = g_strdup_printf ("/services/raw/%s/Headers", f->pid);
  g_autoptr(TestBody) body = test_body_new (NULL, NULL);
  g_autofree guint8 *block = g_malloc0 (16 * 1024);
  Req *req;

  for (int i = 0; i < 64; i++)
    test_body_push (body, scratch (g_bytes_new_static (block, 16 * 1024)));
  test_body_end (body);
  req = req_start (f, "POST", path, "caller", G_INPUT_STREAM (body));
  wait_for (&req->done);
  /* The router relays the early answer and ends the call (that upstream
   * connection is not reused: its request was not sent whole). libsoup
   * writes its whole body before it reads an answer, so the caller reads
   * the early 200, or its own body write breaks when the host stops
   * reading after the response. Either way nothing hangs. */
  if (req->error == NULL)
    g_assert_cmpuint (req->status, ==, 200);
  else
    g_test_message ("caller saw: %s", req->error->message);
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
  req_free (req);
  /* The host still serves the next call. */
  ASSERT_CALL (f, headers, "caller", "203 auth=-;rid=-;custom=yes;timeout=-;query=-;proxy-auth=-");
}

/* A provider that never answers: 502 at the caller's deadline, or at the
 * broker's route-timeout-ms without one. */
static void
test_timeout_before_headers (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Silent", f->pid);
  Req *req = req_start (f, "POST", path, "caller", NULL);

  soup_message_headers_append (soup_message_get_request_headers (req->msg),
                               "Connect-Timeout-Ms", "200");
  wait_for (&req->done);
  g_assert_cmpuint (req->status, ==, 502);
  g_assert_cmpstr (req->body->str, ==, "upstream timed out\n");
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
  wait_for (&f->up_aborted);        /* the provider's call was cancelled too */
  req_free (req);

  f->up_aborted = FALSE;
  g_object_set (f->broker, "route-timeout-ms", 200, NULL);
  ASSERT_CALL (f, path, "caller", "502 upstream timed out\n");
  wait_for (&f->up_aborted);
}

/* A provider that hangs mid-stream: at the caller's deadline its stream is
 * cut (the connection closes without the last chunk, so the caller sees a
 * truncated body, not a clean end), the provider's call is cancelled and
 * nothing stays in flight. Read raw: libsoup takes the cut for an end. */
static void
test_hang_mid_stream (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Hang", f->pid);
  g_autofree char *got = raw_call (f, path, "Connect-Timeout-Ms: 300\r\n");

  g_assert_cmpstr (got, ==, "200 6\r\nfirst\n\r\n");
  wait_for (&f->up_aborted);
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
}

/* The caller goes away mid-stream: the provider's call is cancelled. */
static void
test_caller_abort (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Hang", f->pid);
  g_autofree char *got = raw_call_full (f, path, "", "first\n");

  g_assert_cmpstr (got, ==, "200 6\r\nfirst\n\r\n");
  wait_for (&f->up_aborted);
  g_assert_cmpuint (cp_plugin_instance_get_n_inflight (f->provider), ==, 0);
}

static void
test_rate_limit_router (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_strdup_printf ("/services/raw/%s/Headers", f->pid);
  g_autofree char *provider_auth = g_strdup_printf ("%s|%s", f->pid, f->ptok);
  const char *ok = "203 auth=-;rid=-;custom=yes;timeout=-;query=-;proxy-auth=-";

  g_object_set (f->broker, "rate-limit-rps", 0.001, "rate-limit-burst", 2, NULL);
  ASSERT_CALL (f, path, "caller", ok);
  ASSERT_CALL (f, path, "caller", ok);
  ASSERT_CALL (f, path, "caller", "429 rate limit exceeded\n");
  /* Another identity has its own bucket. */
  ASSERT_CALL (f, path, provider_auth, ok);
  /* Anonymous callers are keyed by address. */
  ASSERT_CALL (f, path, NULL, "401 X-Plugin-Runtime-ID header required\n");
  ASSERT_CALL (f, path, NULL, "401 X-Plugin-Runtime-ID header required\n");
  ASSERT_CALL (f, path, NULL, "429 rate limit exceeded\n");
  /* 0 rps: no limit, read at call time. */
  g_object_set (f->broker, "rate-limit-rps", 0.0, NULL);
  ASSERT_CALL (f, path, "caller", ok);
}

static void
test_rate_limit_rpc (Fixture *f, gconstpointer data)
{
  g_autofree char *url = g_strconcat (f->host_url, CP_PROCEDURE_HANDSHAKE, NULL);

  g_object_set (f->broker, "rate-limit-rps", 0.001, "rate-limit-burst", 1, NULL);
  for (int i = 0; i < 2; i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
      g_autoptr(GBytes) body = g_bytes_new_static ("{}", 2);
      Req *req = g_new0 (Req, 1);

      soup_message_set_request_body_from_bytes (msg, "application/json", body);
      req->msg = g_object_ref (msg);
      req->body = g_string_new (NULL);
      req->cancellable = g_cancellable_new ();
      soup_session_send_async (f->client, msg, G_PRIORITY_DEFAULT, NULL, on_req_sent, req);
      wait_for (&req->done);
      g_test_message ("%u %s", req->status, req->body->str);
      if (i == 0)
        g_assert_false (strstr (req->body->str, "resource_exhausted"));
      else
        {
          g_assert_cmpuint (req->status, ==, 429);
          g_assert_nonnull (strstr (req->body->str, "\"code\":\"resource_exhausted\""));
          g_assert_nonnull (strstr (req->body->str, "rate limit exceeded"));
        }
      req_free (req);
    }
}

/* Idle buckets go once they would be full again; the table is bounded. */
static void
test_bucket_expiry (Fixture *f, gconstpointer data)
{
  CpRateLimiter *limiter = f->broker->limiter;

  g_assert_true (cp_rate_limiter_allow (limiter, "a"));
  g_assert_cmpuint (cp_rate_limiter_get_n_buckets (limiter), ==, 0);   /* unlimited */

  g_object_set (f->broker, "rate-limit-rps", 1000.0, "rate-limit-burst", 1, NULL);
  g_assert_true (cp_rate_limiter_allow (limiter, "a"));
  g_assert_cmpuint (cp_rate_limiter_get_n_buckets (limiter), ==, 1);
  g_usleep (5000);                      /* > 1 ms: "a" is full again */
  g_assert_true (cp_rate_limiter_allow (limiter, "b"));
  g_assert_cmpuint (cp_rate_limiter_get_n_buckets (limiter), ==, 1);

  g_object_set (f->broker, "rate-limit-rps", 0.001, NULL);
  for (guint i = 0; i < CP_RATE_LIMITER_MAX_BUCKETS + 100; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);
      g_assert_true (cp_rate_limiter_allow (limiter, key));
    }
  g_assert_cmpuint (cp_rate_limiter_get_n_buckets (limiter), <=, CP_RATE_LIMITER_MAX_BUCKETS);
  /* The newest bucket survived the eviction and is empty. */
  g_assert_false (cp_rate_limiter_allow (limiter, "k4195"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, fn) g_test_add (name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/broker/router/unary-proxy", test_unary_proxy);
  ADD ("/broker/router/headers", test_headers);
  ADD ("/broker/router/trace", test_trace);
  ADD ("/broker/router/server-stream", test_server_stream);
  ADD ("/broker/router/client-stream", test_client_stream);
  ADD ("/broker/router/400", test_bad_request);
  ADD ("/broker/router/401", test_unauthorized);
  ADD ("/broker/router/401-no-bearer", test_unauthorized_no_bearer);
  ADD ("/broker/router/404", test_not_found);
  ADD ("/broker/router/503", test_unavailable);
  ADD ("/broker/router/502", test_bad_gateway);
  ADD ("/broker/router/502-timeout", test_timeout_before_headers);
  ADD ("/broker/router/early-answer", test_early_answer);
  ADD ("/broker/router/hang-mid-stream", test_hang_mid_stream);
  ADD ("/broker/router/caller-abort", test_caller_abort);
  ADD ("/broker/rate/router-429", test_rate_limit_router);
  ADD ("/broker/rate/rpc-resource-exhausted", test_rate_limit_rpc);
  ADD ("/broker/rate/bucket-expiry", test_bucket_expiry);
  return g_test_run ();
}
