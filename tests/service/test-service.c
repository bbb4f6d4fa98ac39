/* test-service.c: the service layer (CpProxy, CpSkeleton, CpServiceDescriptor)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Exporting, unexporting and calling a service through its Proxy and
 * Skeleton, on the KV example's generated classes (examples/kv/libkv):
 * unary calls, errors, cancellation, late answers, server streams and _sync
 * calls. Every call goes through a CpRpcServer listening on 127.0.0.1:0 (or
 * in process) and a CpChannel, using only the public API. What the generator
 * writes for services is tested in tests/codegen/test-codegen-services.c.
 */
#include <connectplugin.h>

#include "kv.cp.h"
#include "service-test-util.h"

/* ------------------------------------------------------------------ */
/* A KV store implemented with the skeleton's handle-* signals          */

typedef struct {
  CpInvocation *invocation;
  char         *prefix;
} Watcher;

static void
watcher_free (gpointer data)
{
  Watcher *w = data;

  g_object_unref (w->invocation);
  g_free (w->prefix);
  g_free (w);
}

typedef struct {
  GHashTable  *store;     /* key → GBytes */
  GPtrArray   *watchers;  /* of Watcher */
  guint        n_gets;
} KvImpl;

static void
kv_impl_init (KvImpl *impl)
{
  impl->store = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_bytes_unref);
  impl->watchers = g_ptr_array_new_with_free_func (watcher_free);
  impl->n_gets = 0;
}

static void
kv_impl_clear (KvImpl *impl)
{
  g_clear_pointer (&impl->store, g_hash_table_unref);
  g_clear_pointer (&impl->watchers, g_ptr_array_unref);
}

static void
kv_impl_notify (KvImpl      *impl,
                KvEventType  type,
                const char  *key,
                GBytes      *value)
{
  for (guint i = 0; i < impl->watchers->len; i++)
    {
      Watcher *w = g_ptr_array_index (impl->watchers, i);
      g_autoptr(KvWatchEvent) event = NULL;
      g_autoptr(GError) error = NULL;

      if (!g_str_has_prefix (key, w->prefix))
        continue;
      event = g_object_new (KV_TYPE_WATCH_EVENT, "type", type, "key", key, "value", value, NULL);
      /* A watcher whose client went away fails here; it is dropped later. */
      cp_invocation_send_message (w->invocation, CP_MESSAGE (event), &error);
    }
}

static gboolean
on_handle_get (KvKVService  *object,
               CpInvocation *invocation,
               KvGetRequest *request,
               gpointer      user_data)
{
  KvImpl *impl = user_data;
  const char *key = kv_get_request_get_key (request);
  g_autoptr(KvGetResponse) response = kv_get_response_new ();
  GBytes *value;

  impl->n_gets++;
  if (g_str_equal (key, "forbidden"))
    {
      cp_invocation_return_error (invocation, CP_ERROR_PERMISSION_DENIED, "no access to %s", key);
      return TRUE;
    }
  value = g_hash_table_lookup (impl->store, key);
  kv_get_response_set_found (response, value != NULL);
  kv_get_response_set_value (response, value);
  kv_kv_service_complete_get (object, invocation, response);
  return TRUE;
}

static gboolean
on_handle_put (KvKVService  *object,
               CpInvocation *invocation,
               KvPutRequest *request,
               gpointer      user_data)
{
  KvImpl *impl = user_data;
  g_autoptr(KvPutResponse) response = kv_put_response_new ();
  g_autoptr(GBytes) value = kv_put_request_get_value (request);
  const char *key = kv_put_request_get_key (request);

  g_hash_table_replace (impl->store, g_strdup (key), g_bytes_ref (value));
  kv_impl_notify (impl, KV_EVENT_TYPE_PUT, key, value);
  kv_kv_service_complete_put (object, invocation, response);
  return TRUE;
}

static gboolean
on_handle_delete (KvKVService     *object,
                  CpInvocation    *invocation,
                  KvDeleteRequest *request,
                  gpointer         user_data)
{
  KvImpl *impl = user_data;
  g_autoptr(KvDeleteResponse) response = kv_delete_response_new ();
  const char *key = kv_delete_request_get_key (request);
  gboolean found = g_hash_table_remove (impl->store, key);

  if (found)
    kv_impl_notify (impl, KV_EVENT_TYPE_DELETE, key, NULL);
  kv_delete_response_set_found (response, found);
  kv_kv_service_complete_delete (object, invocation, response);
  return TRUE;
}

static gboolean
on_handle_watch (KvKVService    *object,
                 CpInvocation   *invocation,
                 KvWatchRequest *request,
                 gpointer        user_data)
{
  KvImpl *impl = user_data;
  Watcher *w = g_new0 (Watcher, 1);

  w->invocation = g_object_ref (invocation);
  w->prefix = g_strdup (kv_watch_request_get_prefix (request));
  g_ptr_array_add (impl->watchers, w);
  return TRUE;
}

static void
kv_impl_connect (KvImpl      *impl,
                 KvKVService *skeleton)
{
  g_signal_connect (skeleton, "handle-get", G_CALLBACK (on_handle_get), impl);
  g_signal_connect (skeleton, "handle-put", G_CALLBACK (on_handle_put), impl);
  g_signal_connect (skeleton, "handle-delete", G_CALLBACK (on_handle_delete), impl);
  g_signal_connect (skeleton, "handle-watch", G_CALLBACK (on_handle_watch), impl);
}

/* ------------------------------------------------------------------ */
/* Fixture: a server with the KV skeleton, a channel and a proxy        */

typedef struct {
  KvImpl       impl;
  CpRpcServer *server;
  KvKVService *skeleton;
  CpChannel   *channel;
  KvKVService *proxy;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  kv_impl_init (&f->impl);
  f->server = cp_rpc_server_new ();
  f->skeleton = kv_kv_service_skeleton_new ();
  kv_impl_connect (&f->impl, f->skeleton);
  g_assert_true (cp_skeleton_export (CP_SKELETON (f->skeleton), f->server, &error));
  g_assert_no_error (error);
  g_assert_true (cp_skeleton_is_exported (CP_SKELETON (f->skeleton)));

  url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  f->proxy = kv_kv_service_proxy_new (f->channel);
  g_assert_true (KV_IS_KV_SERVICE_PROXY (f->proxy));
  g_assert_true (KV_IS_KV_SERVICE (f->proxy));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_object (&f->proxy);
  g_clear_object (&f->channel);
  g_ptr_array_set_size (f->impl.watchers, 0);
  cp_skeleton_unexport (CP_SKELETON (f->skeleton));
  g_assert_false (cp_skeleton_is_exported (CP_SKELETON (f->skeleton)));
  g_assert_finalize_object (f->skeleton);
  cp_rpc_server_close (f->server);
  g_clear_object (&f->server);
  kv_impl_clear (&f->impl);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static KvGetResponse *
get (Fixture    *f,
     const char *key,
     GError    **error)
{
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", key, NULL);
  g_autoptr(GAsyncResult) result = NULL;

  kv_kv_service_call_get (f->proxy, request, NULL, NULL, store_result, &result);
  return kv_kv_service_call_get_finish (f->proxy, wait_result (&result), error);
}

static void
put (Fixture    *f,
     const char *key,
     const char *value)
{
  g_autoptr(GBytes) bytes = bytes_from_string (value);
  g_autoptr(KvPutRequest) request = g_object_new (KV_TYPE_PUT_REQUEST, "key", key,
                                                  "value", bytes, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvPutResponse) response = NULL;
  g_autoptr(GError) error = NULL;

  kv_kv_service_call_put (f->proxy, request, NULL, NULL, store_result, &result);
  response = kv_kv_service_call_put_finish (f->proxy, wait_result (&result), &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_PUT_RESPONSE (response));
}

static gboolean
delete (Fixture    *f,
        const char *key)
{
  g_autoptr(KvDeleteRequest) request = g_object_new (KV_TYPE_DELETE_REQUEST, "key", key, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvDeleteResponse) response = NULL;
  g_autoptr(GError) error = NULL;

  kv_kv_service_call_delete (f->proxy, request, NULL, NULL, store_result, &result);
  response = kv_kv_service_call_delete_finish (f->proxy, wait_result (&result), &error);
  g_assert_no_error (error);
  return kv_delete_response_get_found (response);
}

static void
test_descriptor_boxed (void)
{
  g_autoptr(CpServiceDescriptor) d = cp_service_descriptor_new ("a.b.C", G_TYPE_INVALID,
                                                                G_TYPE_INVALID);
  g_autoptr(CpMethodInfo) info = cp_method_info_new ("/a.b.C/M", CP_METHOD_UNARY,
                                                     CP_TYPE_EMPTY, CP_TYPE_EMPTY);
  CpServiceDescriptor *copy;

  g_assert_cmpstr (cp_service_descriptor_get_path (d), ==, "/a.b.C/");
  g_assert_true (cp_service_descriptor_get_proxy_type (d) == G_TYPE_INVALID);
  cp_service_descriptor_add_method (d, info);
  copy = g_boxed_copy (CP_TYPE_SERVICE_DESCRIPTOR, d);
  g_assert_true (copy == d);
  g_assert_true (cp_service_descriptor_lookup_method (copy, "M") == info);
  g_boxed_free (CP_TYPE_SERVICE_DESCRIPTOR, copy);
  g_assert_cmpuint (cp_service_descriptor_get_methods (d)->len, ==, 1);

  /* A method of another service is refused. */
  {
    g_autoptr(CpMethodInfo) other = cp_method_info_new ("/a.b.D/M", CP_METHOD_UNARY,
                                                        CP_TYPE_EMPTY, CP_TYPE_EMPTY);
    g_test_expect_message ("ConnectPlugin", G_LOG_LEVEL_CRITICAL, "*service_name*");
    cp_service_descriptor_add_method (d, other);
    g_test_assert_expected_messages ();
    g_assert_cmpuint (cp_service_descriptor_get_methods (d)->len, ==, 1);
  }
}

static void
test_proxy_properties (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(CpChannel) channel = NULL;

  g_object_get (f->proxy, "channel", &channel, NULL);
  g_assert_true (channel == f->channel);
  g_assert_true (cp_proxy_get_channel (CP_PROXY (f->proxy)) == f->channel);
  g_assert_true (cp_proxy_get_descriptor (CP_PROXY (f->proxy)) == kv_kv_service_get_descriptor ());
  g_assert_true (cp_skeleton_get_descriptor (CP_SKELETON (f->skeleton)) ==
                 kv_kv_service_get_descriptor ());
}

static void
test_unary (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) missing = NULL;
  g_autoptr(KvGetResponse) found = NULL;
  g_autoptr(GBytes) value = NULL;

  missing = get (f, "a", &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (missing));
  g_assert_false (kv_get_response_get_found (missing));

  put (f, "a", "alpha");
  found = get (f, "a", &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (found));
  value = kv_get_response_get_value (found);
  assert_bytes_equal (value, "alpha");
  g_assert_cmpuint (f->impl.n_gets, ==, 2);

  g_assert_true (delete (f, "a"));
  g_assert_false (delete (f, "a"));
  g_assert_false (g_hash_table_contains (f->impl.store, "a"));
}

static void
test_error (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = get (f, "forbidden", &error);

  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, "no access to forbidden"));
}

static void
test_source_object (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(KvGetRequest) request = kv_get_request_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(GObject) source = NULL;
  g_autoptr(GError) error = NULL;

  kv_kv_service_call_get (f->proxy, request, NULL, NULL, store_result, &result);
  source = g_async_result_get_source_object (wait_result (&result));
  g_assert_true (source == G_OBJECT (f->proxy));
  response = kv_kv_service_call_get_finish (f->proxy, result, &error);
  g_assert_no_error (error);
}

static void
test_cancelled (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(KvGetRequest) request = kv_get_request_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(GError) error = NULL;

  g_cancellable_cancel (cancellable);
  kv_kv_service_call_get (f->proxy, request, NULL, cancellable, store_result, &result);
  response = kv_kv_service_call_get_finish (f->proxy, wait_result (&result), &error);
  g_assert_null (response);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (f->impl.n_gets, ==, 0);
}

/* Answering after the handler returned, from an idle. */
static gboolean
answer_later_cb (gpointer data)
{
  CpInvocation *invocation = data;
  g_autoptr(KvGetResponse) response = g_object_new (KV_TYPE_GET_RESPONSE, "found", TRUE, NULL);

  kv_kv_service_complete_get (NULL, invocation, response);
  return G_SOURCE_REMOVE;
}

static gboolean
on_handle_get_later (KvKVService  *object,
                     CpInvocation *invocation,
                     KvGetRequest *request,
                     gpointer      user_data)
{
  guint *n_calls = user_data;

  (*n_calls)++;
  g_idle_add_full (G_PRIORITY_DEFAULT, answer_later_cb, g_object_ref (invocation), g_object_unref);
  return TRUE;
}

static gboolean
on_handle_get_decline (KvKVService  *object,
                       CpInvocation *invocation,
                       KvGetRequest *request,
                       gpointer      user_data)
{
  guint *n_calls = user_data;

  (*n_calls)++;
  return FALSE;
}

static void
test_answer_later (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  guint n_declined = 0, n_later = 0;

  /* Handlers run before the class handler (RUN_LAST); the first one
   * returning TRUE stops the emission. A handler connected before the
   * store's runs first: this one declines, the next answers later. */
  g_signal_handlers_disconnect_by_func (f->skeleton, on_handle_get, &f->impl);
  g_signal_connect (f->skeleton, "handle-get", G_CALLBACK (on_handle_get_decline), &n_declined);
  g_signal_connect (f->skeleton, "handle-get", G_CALLBACK (on_handle_get_later), &n_later);
  g_signal_connect (f->skeleton, "handle-get", G_CALLBACK (on_handle_get), &f->impl);

  response = get (f, "x", &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (response));
  g_assert_cmpuint (n_declined, ==, 1);
  g_assert_cmpuint (n_later, ==, 1);
  g_assert_cmpuint (f->impl.n_gets, ==, 0);
}

static void
test_unimplemented (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  guint n_declined = 0;

  /* Nobody handles Get: every handler declines, no vfunc. */
  g_signal_handlers_disconnect_by_func (f->skeleton, on_handle_get, &f->impl);
  g_signal_connect (f->skeleton, "handle-get", G_CALLBACK (on_handle_get_decline), &n_declined);
  response = get (f, "a", &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_assert_nonnull (strstr (error->message, "kv.v1.KVService.Get"));
  g_assert_cmpuint (n_declined, ==, 1);
  g_clear_error (&error);

  /* A skeleton without any handler, on another server. */
  {
    g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
    g_autoptr(KvKVService) bare = kv_kv_service_skeleton_new ();
    g_autoptr(CpChannel) channel = NULL;
    g_autoptr(KvKVService) proxy = NULL;
    g_autoptr(KvDeleteRequest) request = kv_delete_request_new ();
    g_autoptr(KvDeleteResponse) deleted = NULL;
    g_autoptr(GAsyncResult) result = NULL;
    g_autofree char *url = NULL;

    g_assert_true (cp_skeleton_export (CP_SKELETON (bare), server, &error));
    url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
    g_assert_no_error (error);
    channel = cp_channel_new (url, &error);
    proxy = kv_kv_service_proxy_new (channel);
    kv_kv_service_call_delete (proxy, request, NULL, NULL, store_result, &result);
    deleted = kv_kv_service_call_delete_finish (proxy, wait_result (&result), &error);
    g_assert_null (deleted);
    g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
    cp_skeleton_unexport (CP_SKELETON (bare));
    cp_rpc_server_close (server);
  }
}

static void
test_unexport (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) before = NULL;
  g_autoptr(KvGetResponse) after = NULL;
  g_autoptr(KvGetResponse) again = NULL;

  before = get (f, "a", &error);
  g_assert_no_error (error);

  cp_skeleton_unexport (CP_SKELETON (f->skeleton));
  g_assert_false (cp_skeleton_is_exported (CP_SKELETON (f->skeleton)));
  after = get (f, "a", &error);
  g_assert_null (after);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);
  g_assert_cmpuint (f->impl.n_gets, ==, 1);

  /* Exported again, it serves again. */
  g_assert_true (cp_skeleton_export (CP_SKELETON (f->skeleton), f->server, &error));
  g_assert_no_error (error);
  again = get (f, "a", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->impl.n_gets, ==, 2);
}

static void
test_export_twice (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (cp_skeleton_export (CP_SKELETON (f->skeleton), f->server, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
}

static gpointer
export_from_thread (gpointer data)
{
  Fixture *f = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(KvKVService) other = kv_kv_service_skeleton_new ();
  GError *error = NULL;

  g_main_context_push_thread_default (context);
  g_assert_false (cp_skeleton_export (CP_SKELETON (other), f->server, &error));
  g_main_context_pop_thread_default (context);
  return error;
}

static void
test_export_wrong_context (Fixture       *f,
                           gconstpointer  data)
{
  GThread *thread = g_thread_new ("export", export_from_thread, f);
  g_autoptr(GError) error = g_thread_join (thread);

  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
}

/* The server keeps an exported skeleton alive, until unexported. */
static void
test_server_holds_skeleton (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  KvKVService *skeleton = kv_kv_service_skeleton_new ();
  GWeakRef weak;
  g_autoptr(GError) error = NULL;

  g_weak_ref_init (&weak, skeleton);
  g_assert_true (cp_skeleton_export (CP_SKELETON (skeleton), server, &error));
  g_object_unref (skeleton);
  skeleton = g_weak_ref_get (&weak);
  g_assert_nonnull (skeleton);
  cp_skeleton_unexport (CP_SKELETON (skeleton));
  g_assert_finalize_object (skeleton);

  /* ... or until the server goes away. */
  skeleton = kv_kv_service_skeleton_new ();
  g_weak_ref_set (&weak, skeleton);
  g_assert_true (cp_skeleton_export (CP_SKELETON (skeleton), server, &error));
  g_object_unref (skeleton);
  g_clear_object (&server);
  skeleton = g_weak_ref_get (&weak);
  g_assert_null (skeleton);
  g_weak_ref_clear (&weak);
}

/* ---- Watch: a server stream through signals ---- */

typedef struct {
  GPtrArray *events;
  gboolean   closed;
  GError    *error;
} StreamLog;

static void
on_stream_message (CpResponseStream *stream,
                   CpMessage        *message,
                   gpointer          user_data)
{
  StreamLog *log = user_data;

  g_assert_true (KV_IS_WATCH_EVENT (message));
  g_ptr_array_add (log->events, g_object_ref (message));
}

static void
on_stream_closed (CpResponseStream *stream,
                  const GError     *error,
                  gpointer          user_data)
{
  StreamLog *log = user_data;

  g_assert_false (log->closed);
  log->closed = TRUE;
  log->error = error ? g_error_copy (error) : NULL;
}

static void
assert_event (GPtrArray   *events,
              guint        i,
              KvEventType  type,
              const char  *key,
              const char  *value)
{
  KvWatchEvent *event = g_ptr_array_index (events, i);
  g_autoptr(GBytes) bytes = kv_watch_event_get_value (event);

  g_assert_cmpint (kv_watch_event_get_type_ (event), ==, type);
  g_assert_cmpstr (kv_watch_event_get_key (event), ==, key);
  assert_bytes_equal (bytes, value);
}

static void
test_watch (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(KvWatchRequest) request = g_object_new (KV_TYPE_WATCH_REQUEST, "prefix", "k/", NULL);
  g_autoptr(CpResponseStream) stream = NULL;
  StreamLog log = { g_ptr_array_new_with_free_func (g_object_unref), FALSE, NULL };
  Watcher *w;

  stream = kv_kv_service_call_watch (f->proxy, request, NULL);
  g_assert_true (CP_IS_RESPONSE_STREAM (stream));
  g_signal_connect (stream, "message", G_CALLBACK (on_stream_message), &log);
  g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), &log);

  while (f->impl.watchers->len == 0)
    g_main_context_iteration (NULL, TRUE);
  w = g_ptr_array_index (f->impl.watchers, 0);
  g_assert_cmpstr (w->prefix, ==, "k/");

  put (f, "k/a", "1");
  put (f, "x/b", "2");
  put (f, "k/c", "3");
  g_assert_true (delete (f, "k/a"));
  while (log.events->len < 3)
    g_main_context_iteration (NULL, TRUE);
  assert_event (log.events, 0, KV_EVENT_TYPE_PUT, "k/a", "1");
  assert_event (log.events, 1, KV_EVENT_TYPE_PUT, "k/c", "3");
  assert_event (log.events, 2, KV_EVENT_TYPE_DELETE, "k/a", "");
  g_assert_false (log.closed);

  cp_invocation_return_ok (w->invocation);
  while (!log.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (log.error);
  g_assert_cmpuint (log.events->len, ==, 3);
  g_ptr_array_unref (log.events);
}

static void
test_watch_error (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(KvWatchRequest) request = g_object_new (KV_TYPE_WATCH_REQUEST, "prefix", "", NULL);
  g_autoptr(CpResponseStream) stream = NULL;
  StreamLog log = { g_ptr_array_new_with_free_func (g_object_unref), FALSE, NULL };
  Watcher *w;

  stream = kv_kv_service_call_watch (f->proxy, request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_stream_message), &log);
  g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), &log);
  while (f->impl.watchers->len == 0)
    g_main_context_iteration (NULL, TRUE);
  put (f, "k", "v");
  while (log.events->len < 1)
    g_main_context_iteration (NULL, TRUE);

  w = g_ptr_array_index (f->impl.watchers, 0);
  cp_invocation_return_error (w->invocation, CP_ERROR_RESOURCE_EXHAUSTED, "too many watchers");
  while (!log.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (log.error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_nonnull (strstr (log.error->message, "too many watchers"));
  g_assert_cmpuint (log.events->len, ==, 1);
  g_clear_error (&log.error);
  g_ptr_array_unref (log.events);
}

static void
test_watch_client_cancel (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(KvWatchRequest) request = g_object_new (KV_TYPE_WATCH_REQUEST, "prefix", "", NULL);
  g_autoptr(CpResponseStream) stream = NULL;
  StreamLog log = { g_ptr_array_new_with_free_func (g_object_unref), FALSE, NULL };
  GCancellable *cancellable;
  Watcher *w;

  stream = kv_kv_service_call_watch (f->proxy, request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_stream_message), &log);
  g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), &log);
  while (f->impl.watchers->len == 0)
    g_main_context_iteration (NULL, TRUE);
  put (f, "k", "v");
  while (log.events->len < 1)
    g_main_context_iteration (NULL, TRUE);

  w = g_ptr_array_index (f->impl.watchers, 0);
  cancellable = cp_invocation_get_cancellable (w->invocation);
  g_assert_false (g_cancellable_is_cancelled (cancellable));

  /* The client goes away: the handler learns it from the cancellable. */
  cp_response_stream_cancel (stream);
  while (!g_cancellable_is_cancelled (cancellable) || !log.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (log.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&log.error);
  g_ptr_array_unref (log.events);
}

/* ---- _sync calls ---- */

static void
test_sync_in_process (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  g_autoptr(KvKVService) skeleton = kv_kv_service_skeleton_new ();
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvKVService) proxy = NULL;
  g_autoptr(GBytes) value = bytes_from_string ("v");
  g_autoptr(KvPutRequest) put_req = g_object_new (KV_TYPE_PUT_REQUEST, "key", "k",
                                                  "value", value, NULL);
  g_autoptr(KvGetRequest) get_req = g_object_new (KV_TYPE_GET_REQUEST, "key", "k", NULL);
  g_autoptr(KvPutResponse) put_resp = NULL;
  g_autoptr(KvGetResponse) get_resp = NULL;
  g_autoptr(KvGetResponse) denied = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;
  KvImpl impl;

  kv_impl_init (&impl);
  kv_impl_connect (&impl, skeleton);
  g_assert_true (cp_skeleton_export (CP_SKELETON (skeleton), server, &error));
  channel = cp_channel_new_in_process (server);
  proxy = kv_kv_service_proxy_new (channel);

  put_resp = kv_kv_service_call_put_sync (proxy, put_req, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_PUT_RESPONSE (put_resp));
  get_resp = kv_kv_service_call_get_sync (proxy, get_req, NULL, NULL, &error);
  g_assert_no_error (error);
  got = kv_get_response_get_value (get_resp);
  assert_bytes_equal (got, "v");

  kv_get_request_set_key (get_req, "forbidden");
  denied = kv_kv_service_call_get_sync (proxy, get_req, NULL, NULL, &error);
  g_assert_null (denied);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);

  cp_skeleton_unexport (CP_SKELETON (skeleton));
  kv_impl_clear (&impl);
}

typedef struct {
  GMainContext *context;
  GMainLoop    *loop;
  GAsyncQueue  *urls;
} ServerThread;

static gpointer
server_thread (gpointer data)
{
  ServerThread *st = data;
  g_autoptr(CpRpcServer) server = NULL;
  g_autoptr(KvKVService) skeleton = NULL;
  g_autoptr(GError) error = NULL;
  KvImpl impl;

  g_main_context_push_thread_default (st->context);
  kv_impl_init (&impl);
  server = cp_rpc_server_new ();
  skeleton = kv_kv_service_skeleton_new ();
  kv_impl_connect (&impl, skeleton);
  g_assert_true (cp_skeleton_export (CP_SKELETON (skeleton), server, &error));
  g_async_queue_push (st->urls, cp_rpc_server_listen (server, "127.0.0.1:0", &error));
  g_assert_no_error (error);
  g_main_loop_run (st->loop);
  cp_skeleton_unexport (CP_SKELETON (skeleton));
  cp_rpc_server_close (server);
  g_clear_object (&server);
  while (g_main_context_iteration (st->context, FALSE))
    ;
  kv_impl_clear (&impl);
  g_main_context_pop_thread_default (st->context);
  return NULL;
}

static void
test_sync_thread (void)
{
  ServerThread st;
  GThread *thread;
  g_autofree char *url = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvKVService) proxy = NULL;
  g_autoptr(GBytes) value = bytes_from_string ("threaded");
  g_autoptr(KvPutRequest) put_req = g_object_new (KV_TYPE_PUT_REQUEST, "key", "t",
                                                  "value", value, NULL);
  g_autoptr(KvGetRequest) get_req = g_object_new (KV_TYPE_GET_REQUEST, "key", "t", NULL);
  g_autoptr(KvPutResponse) put_resp = NULL;
  g_autoptr(KvGetResponse) get_resp = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;

  st.context = g_main_context_new ();
  st.loop = g_main_loop_new (st.context, FALSE);
  st.urls = g_async_queue_new ();
  thread = g_thread_new ("kv-server", server_thread, &st);
  url = g_async_queue_pop (st.urls);

  channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  proxy = kv_kv_service_proxy_new (channel);
  put_resp = kv_kv_service_call_put_sync (proxy, put_req, NULL, NULL, &error);
  g_assert_no_error (error);
  get_resp = kv_kv_service_call_get_sync (proxy, get_req, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (get_resp));
  got = kv_get_response_get_value (get_resp);
  assert_bytes_equal (got, "threaded");

  g_clear_object (&proxy);
  g_clear_object (&channel);
  g_main_loop_quit (st.loop);
  g_thread_join (thread);
  g_main_loop_unref (st.loop);
  g_main_context_unref (st.context);
  g_async_queue_unref (st.urls);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/service/descriptor-boxed", test_descriptor_boxed);
#define ADD(path, fn) \
  g_test_add ("/service/" path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("proxy-properties", test_proxy_properties);
  ADD ("unary", test_unary);
  ADD ("error", test_error);
  ADD ("source-object", test_source_object);
  ADD ("cancelled", test_cancelled);
  ADD ("answer-later", test_answer_later);
  ADD ("unimplemented", test_unimplemented);
  ADD ("unexport", test_unexport);
  ADD ("export-twice", test_export_twice);
  ADD ("export-wrong-context", test_export_wrong_context);
  ADD ("watch", test_watch);
  ADD ("watch-error", test_watch_error);
  ADD ("watch-client-cancel", test_watch_client_cancel);
#undef ADD
  g_test_add_func ("/service/server-holds-skeleton", test_server_holds_skeleton);
  g_test_add_func ("/service/sync-in-process", test_sync_in_process);
  g_test_add_func ("/service/sync-thread", test_sync_thread);

  return g_test_run ();
}
