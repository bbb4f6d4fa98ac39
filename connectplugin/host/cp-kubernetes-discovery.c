/* cp-kubernetes-discovery.c: plugin endpoints from a Kubernetes service's EndpointSlices
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The list/watch loop, in the context the discovery was made in:
 *
 *   IDLE ──first discover──▶ LISTING ──200──▶ WATCHING ──event──▶ WATCHING
 *                              ▲  │error          │ stream ended or broke
 *                              │  ▼               ▼
 *                              │ BACKOFF ◀──── (re)watch from the last
 *                              │               resourceVersion
 *                              └── 410 Gone (HTTP status or ERROR event)
 *
 * Every pending operation holds a weak reference and the generation it
 * was started in: dispose() bumps the generation and cancels, so that late
 * callbacks only clean up, and a watch never keeps the discovery alive.
 */
#include <string.h>
#include <libsoup/soup.h>

#include "cp-kubernetes-private.h"
#include "cp-line-reader-private.h"
#include "cp-error.h"
#include "cp-host-private.h"
#include "cp-tls-private.h"
#include "cp-tls-proxy-private.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCH_TIMEOUT_S 240
#define LIST_TIMEOUT_S 30

/**
 * CpKubernetesDiscovery:
 *
 * A [iface@Discovery] following the ready endpoints of a Kubernetes
 * service through its `discovery.k8s.io/v1` EndpointSlices (those labelled
 * `kubernetes.io/service-name=SERVICE`).
 *
 * It talks to the apiserver with the in-cluster configuration (the pod's
 * service-account token and CA under
 * `/var/run/secrets/kubernetes.io/serviceaccount` and
 * `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`,
 * [ctor@ConnectPlugin.KubernetesDiscovery.new_in_cluster]) or with a
 * kubeconfig file ([ctor@ConnectPlugin.KubernetesDiscovery.new_from_kubeconfig]:
 * the server, its CA, a bearer token or a client certificate). The pod's
 * service account needs `list` and `watch` on `endpointslices`.
 *
 * The first discovery lists the slices, then a watch follows them
 * (`allowWatchBookmarks`, resuming from the last `resourceVersion` when the
 * stream ends or the apiserver restarts; a `410 Gone` makes it list again).
 * Only ready endpoints are offered (a `ready` condition that is absent
 * counts as ready), on the port named [property@KubernetesDiscovery:port-name]
 * (or the slices' first port), one URL per endpoint, sorted:
 *
 * ```
 * k8s:///NAME.NAMESPACE:PORT
 * ```
 *
 * where NAME is the endpoint's `targetRef` name (its pod), else its
 * `hostname`, else its address (lower case, other characters than letters,
 * digits and `-` as `-`). [method@Discovery.create_channel] resolves such a
 * URL to the endpoint's current address: `http://ADDRESS:PORT`, or
 * `https://` when the port's `appProtocol` is `https` or its name is
 * `https` or starts with `https-`; a URL whose endpoint is no longer ready
 * fails with %CP_ERROR_UNAVAILABLE.
 *
 * [signal@Discovery::changed] is emitted when the set of ready endpoints
 * (or the address of one) changes, so a [class@Client] moves to a live
 * endpoint: calls already running on the old one finish, new ones go to
 * the new one.
 */
struct _CpKubernetesDiscovery
{
  GObject parent_instance;

  char *service;
  char *namespace;
  char *port_name;
  GStrv address_map;
  CpKubeConfig *config;

  GMainContext *context;
  SoupSession *session;
  char *base;                       /* the server's URL as libsoup is given it:
                                     * http:// over our own TLS connection */
  GTlsCertificate *client_certificate;
  GCancellable *cancellable;        /* everything; cancelled by dispose */
  GCancellable *watch_cancellable;  /* the watch stream under way */
  guint generation;

  gboolean started;
  gboolean listed;                  /* a list succeeded once */
  GError *list_error;               /* the last list failure, until one succeeds */
  GPtrArray *waiters;               /* discover tasks waiting for the first list */
  char *resource_version;
  GHashTable *slices;               /* name → CpKubeSlice */
  GHashTable *ready;                /* URL → CpKubeEndpoint (borrowed from slices) */
  GStrv ready_signature;            /* "URL=address" sorted, to see changes */
  GSource *retry;
  guint backoff_ms;
  guint n_lists;
  guint n_watches;
};

enum {
  PROP_0,
  PROP_SERVICE,
  PROP_NAMESPACE,
  PROP_PORT_NAME,
  PROP_SERVER,
  PROP_ADDRESS_MAP,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void cp_kubernetes_discovery_iface_init (CpDiscoveryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpKubernetesDiscovery, cp_kubernetes_discovery, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (CP_TYPE_DISCOVERY,
                                                      cp_kubernetes_discovery_iface_init))

/* A pending operation: a weak reference, the generation it belongs to,
 * and what it reads. */
typedef struct {
  GWeakRef self;
  guint generation;
  SoupMessage *message;
  CpLineReader *lines;
} Op;

static Op *
op_new (CpKubernetesDiscovery *self)
{
  Op *op = g_new0 (Op, 1);

  g_weak_ref_init (&op->self, self);
  op->generation = self->generation;
  return op;
}

static void
op_free (Op *op)
{
  g_weak_ref_clear (&op->self);
  g_clear_object (&op->message);
  g_clear_object (&op->lines);
  g_free (op);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Op, op_free)

/* The discovery, if it is still there and @op still current. */
static CpKubernetesDiscovery *
op_get (Op *op)
{
  CpKubernetesDiscovery *self = g_weak_ref_get (&op->self);

  if (self != NULL && self->generation != op->generation)
    g_clear_object (&self);
  return self;
}

static void list_start (CpKubernetesDiscovery *self);
static void watch_start (CpKubernetesDiscovery *self);

/* ---- the ready set ---- */

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* Rebuilds the ready table from the slices; emits "changed" when it differs. */
static void
update_ready (CpKubernetesDiscovery *self)
{
  g_autoptr(GPtrArray) signature = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_remove_all (self->ready);
  g_hash_table_iter_init (&iter, self->slices);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      CpKubeSlice *slice = value;

      for (guint i = 0; i < slice->endpoints->len; i++)
        {
          CpKubeEndpoint *endpoint = g_ptr_array_index (slice->endpoints, i);
          char *url;

          if (!endpoint->ready)
            continue;
          url = cp_kube_endpoint_url (endpoint, self->namespace);
          if (g_hash_table_contains (self->ready, url))
            {
              g_free (url);   /* the same endpoint in two slices */
              continue;
            }
          g_ptr_array_add (signature, g_strdup_printf ("%s=%s%s", url, endpoint->address,
                                                       endpoint->tls ? "/tls" : ""));
          g_hash_table_insert (self->ready, url, endpoint);
        }
    }
  g_ptr_array_sort (signature, compare_strings);
  g_ptr_array_add (signature, NULL);
  if (!cp_host_strv_replace (&self->ready_signature, (const char * const *) signature->pdata))
    return;
  g_debug ("kubernetes discovery %s.%s: %u ready endpoints", self->service, self->namespace,
           g_hash_table_size (self->ready));
  if (self->listed)
    cp_discovery_emit_changed (CP_DISCOVERY (self));
}

static void
complete_waiters (CpKubernetesDiscovery *self)
{
  g_autoptr(GPtrArray) tasks = cp_host_waiters_take (&self->waiters);

  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);
      g_auto(GStrv) urls = self->listed ? cp_kubernetes_discovery_dup_ready_urls (self) : NULL;

      if (!self->listed)
        g_task_return_error (task, g_error_copy (self->list_error));
      else if (urls[0] == NULL)
        g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE,
                                 "Kubernetes service %s in namespace %s has no ready endpoint",
                                 self->service, self->namespace);
      else
        g_task_return_pointer (task, g_steal_pointer (&urls), (GDestroyNotify) g_strfreev);
    }
}

/* ---- HTTP ---- */

static gboolean
accept_any_certificate (SoupMessage          *message,
                        GTlsCertificate      *certificate,
                        GTlsCertificateFlags  errors,
                        gpointer              user_data)
{
  return TRUE;
}

/* A GET of the slices, with @query after the label selector. */
static SoupMessage *
new_request (CpKubernetesDiscovery *self,
             const char            *query)
{
  g_autofree char *selector = g_uri_escape_string (self->service, NULL, FALSE);
  g_autofree char *url = g_strdup_printf ("%s/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices"
                                          "?labelSelector=kubernetes.io%%2Fservice-name%%3D%s%s",
                                          self->base, self->namespace, selector,
                                          query != NULL ? query : "");
  SoupMessage *message = soup_message_new (SOUP_METHOD_GET, url);
  SoupMessageHeaders *headers = soup_message_get_request_headers (message);

  soup_message_headers_replace (headers, "Accept", "application/json");
  if (self->config->token != NULL)
    {
      g_autofree char *auth = g_strdup_printf ("Bearer %s", self->config->token);
      soup_message_headers_replace (headers, "Authorization", auth);
    }
  if (self->client_certificate != NULL)
    soup_message_set_tls_client_certificate (message, self->client_certificate);
  if (self->config->insecure)
    g_signal_connect (message, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  return message;
}

/* Runs @func (@self) again after the back-off delay (doubling, capped). */
static void
retry_later (CpKubernetesDiscovery *self,
             void                 (*func) (CpKubernetesDiscovery *self));

typedef struct {
  GWeakRef self;
  guint generation;
  void (*func) (CpKubernetesDiscovery *self);
} Retry;

static void
retry_free (gpointer data)
{
  Retry *retry = data;

  g_weak_ref_clear (&retry->self);
  g_free (retry);
}

static gboolean
retry_cb (gpointer data)
{
  Retry *retry = data;
  g_autoptr(CpKubernetesDiscovery) self = g_weak_ref_get (&retry->self);

  if (self != NULL && self->generation == retry->generation)
    {
      g_clear_pointer (&self->retry, g_source_unref);
      retry->func (self);
    }
  return G_SOURCE_REMOVE;
}

static void
clear_retry (CpKubernetesDiscovery *self)
{
  if (self->retry != NULL)
    {
      g_source_destroy (self->retry);
      g_clear_pointer (&self->retry, g_source_unref);
    }
}

static void
retry_later (CpKubernetesDiscovery *self,
             void                 (*func) (CpKubernetesDiscovery *self))
{
  Retry *retry = g_new0 (Retry, 1);

  g_weak_ref_init (&retry->self, self);
  retry->generation = self->generation;
  retry->func = func;
  clear_retry (self);
  self->backoff_ms = CLAMP (self->backoff_ms * 2, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
  self->retry = g_timeout_source_new (self->backoff_ms);
  g_source_set_callback (self->retry, retry_cb, retry, retry_free);
  g_source_attach (self->retry, self->context);
}

/* ---- list ---- */

/* Takes a list answer: the slices and resourceVersion, or an error. */
static gboolean
list_take (CpKubernetesDiscovery  *self,
           SoupMessage            *message,
           GBytes                 *body,
           GError                **error)
{
  g_autoptr(GPtrArray) slices = NULL;
  g_autofree char *rv = NULL;
  guint status = soup_message_get_status (message);
  gsize len = 0;
  const char *data = body != NULL ? g_bytes_get_data (body, &len) : NULL;

  if (status != SOUP_STATUS_OK)
    {
      g_set_error (error, CP_ERROR,
                   status == 401 ? CP_ERROR_UNAUTHENTICATED :
                   status == 403 ? CP_ERROR_PERMISSION_DENIED : CP_ERROR_UNAVAILABLE,
                   "listing the EndpointSlices of %s.%s: HTTP %u %s", self->service,
                   self->namespace, status, soup_message_get_reason_phrase (message));
      return FALSE;
    }
  if (!cp_kube_slice_list_parse (data != NULL ? data : "", len, self->port_name,
                                 &slices, &rv, error))
    return FALSE;

  g_hash_table_remove_all (self->ready);
  g_hash_table_remove_all (self->slices);
  g_ptr_array_set_free_func (slices, NULL);
  for (guint i = 0; i < slices->len; i++)
    {
      CpKubeSlice *slice = g_ptr_array_index (slices, i);

      g_hash_table_replace (self->slices, slice->name, slice);
    }
  g_free (self->resource_version);
  self->resource_version = g_steal_pointer (&rv);
  return TRUE;
}

static void
list_done (CpKubernetesDiscovery *self,
           GError                *error)
{
  self->n_lists++;
  if (error != NULL)
    {
      g_debug ("kubernetes discovery: %s", error->message);
      g_clear_error (&self->list_error);
      self->list_error = error;
      if (!self->listed)
        complete_waiters (self);
      retry_later (self, list_start);
      return;
    }
  g_clear_error (&self->list_error);
  update_ready (self);   /* "changed" only after the first list */
  self->listed = TRUE;
  complete_waiters (self);
  watch_start (self);
}

static void
list_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(Op) op = user_data;
  g_autoptr(GError) io = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &io);
  g_autoptr(CpKubernetesDiscovery) self = op_get (op);
  GError *error = NULL;

  if (self == NULL)
    return;
  if (body == NULL)
    error = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                         "cannot reach the Kubernetes apiserver %s: %s",
                         self->config->server, io->message);
  else
    list_take (self, op->message, body, &error);
  list_done (self, error);
}

static void
list_start (CpKubernetesDiscovery *self)
{
  Op *op = op_new (self);

  if (self->watch_cancellable != NULL)
    {
      g_cancellable_cancel (self->watch_cancellable);
      g_clear_object (&self->watch_cancellable);
    }
  clear_retry (self);
  op->message = new_request (self, NULL);
  g_main_context_push_thread_default (self->context);
  soup_session_send_and_read_async (self->session, op->message, G_PRIORITY_DEFAULT,
                                    self->cancellable, list_cb, op);
  g_main_context_pop_thread_default (self->context);
}

/* The first list, blocking: for a discover_async () called from another
 * context than the discovery's (cp_client_connect_sync () iterates a
 * private one), where the asynchronous list would not run. */
static void
list_sync (CpKubernetesDiscovery *self)
{
  g_autoptr(SoupMessage) message = new_request (self, NULL);
  g_autoptr(GError) io = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read (self->session, message,
                                                       self->cancellable, &io);
  GError *error = NULL;

  if (body == NULL)
    error = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                         "cannot reach the Kubernetes apiserver %s: %s",
                         self->config->server, io->message);
  else
    list_take (self, message, body, &error);
  /* The watch (or the retry) runs in the discovery's context. */
  g_main_context_push_thread_default (self->context);
  list_done (self, error);
  g_main_context_pop_thread_default (self->context);
}

/* ---- watch ---- */

static void read_next_line (Op *op, CpKubernetesDiscovery *self);

/* Applies one watch event; FALSE when the watch must stop (and what
 * follows is already arranged). */
static gboolean
apply_event (CpKubernetesDiscovery *self,
             CpKubeEvent           *event)
{
  switch (event->type)
    {
    case CP_KUBE_EVENT_ERROR:
      g_debug ("kubernetes discovery: watch error %d: %s", event->code, event->message);
      if (event->code == 410)
        list_start (self);
      else
        retry_later (self, watch_start);
      return FALSE;
    case CP_KUBE_EVENT_DELETED:
      g_hash_table_remove (self->slices, event->slice->name);
      break;
    case CP_KUBE_EVENT_ADDED:
    case CP_KUBE_EVENT_MODIFIED:
      {
        CpKubeSlice *slice = g_steal_pointer (&event->slice);

        g_hash_table_replace (self->slices, slice->name, slice);
        break;
      }
    case CP_KUBE_EVENT_BOOKMARK:
    default:
      break;
    }
  g_free (self->resource_version);
  self->resource_version = g_steal_pointer (&event->resource_version);
  if (event->type != CP_KUBE_EVENT_BOOKMARK)
    update_ready (self);
  return TRUE;
}

static void
line_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(Op) op = user_data;
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  g_autofree char *line = cp_line_reader_read_line_finish (CP_LINE_READER (source), result, &len,
                                                           &error);
  g_autoptr(CpKubernetesDiscovery) self = op_get (op);
  g_autoptr(CpKubeEvent) event = NULL;

  if (self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (line != NULL && !g_utf8_validate (line, len, NULL))
    {
      g_clear_pointer (&line, g_free);
      g_set_error_literal (&error, CP_ERROR, CP_ERROR_INTERNAL, "a watch line is not UTF-8");
    }
  if (line == NULL)
    {
      /* The stream ended (its timeout, or the apiserver went away) or
       * broke: watch again from the last resourceVersion. */
      g_debug ("kubernetes discovery: watch ended%s%s", error != NULL ? ": " : "",
               error != NULL ? error->message : "");
      retry_later (self, watch_start);
      return;
    }
  if (len == 0)
    {
      read_next_line (g_steal_pointer (&op), self);
      return;
    }
  event = cp_kube_event_parse (line, len, self->port_name, &error);
  if (event == NULL)
    {
      g_warning ("Kubernetes discovery of %s.%s: %s", self->service, self->namespace,
                 error->message);
      retry_later (self, watch_start);
      return;
    }
  if (apply_event (self, event))
    read_next_line (g_steal_pointer (&op), self);
}

static void
read_next_line (Op                    *op,
                CpKubernetesDiscovery *self)
{
  cp_line_reader_read_line_async (op->lines, self->watch_cancellable, line_cb, op);
}

static void
watch_sent_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(Op) op = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  g_autoptr(CpKubernetesDiscovery) self = op_get (op);
  guint status;

  if (self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (body == NULL)
    {
      g_debug ("kubernetes discovery: watch: %s", error->message);
      retry_later (self, watch_start);
      return;
    }
  status = soup_message_get_status (op->message);
  if (status == SOUP_STATUS_GONE)
    {
      g_debug ("kubernetes discovery: resourceVersion %s is gone, listing again",
               self->resource_version);
      list_start (self);
      return;
    }
  if (status != SOUP_STATUS_OK)
    {
      g_debug ("kubernetes discovery: watch: HTTP %u", status);
      retry_later (self, watch_start);
      return;
    }
  self->backoff_ms = 0;
  op->lines = cp_line_reader_new (body, CP_WATCH_MAX_LINE);
  read_next_line (g_steal_pointer (&op), self);
}

static void
watch_start (CpKubernetesDiscovery *self)
{
  Op *op = op_new (self);
  g_autofree char *query = g_strdup_printf ("&watch=1&allowWatchBookmarks=true"
                                            "&timeoutSeconds=%d&resourceVersion=%s",
                                            WATCH_TIMEOUT_S, self->resource_version);

  if (self->watch_cancellable != NULL)
    g_cancellable_cancel (self->watch_cancellable);
  g_clear_object (&self->watch_cancellable);
  self->watch_cancellable = g_cancellable_new ();
  clear_retry (self);
  self->n_watches++;
  op->message = new_request (self, query);
  g_main_context_push_thread_default (self->context);
  soup_session_send_async (self->session, op->message, G_PRIORITY_DEFAULT,
                           self->watch_cancellable, watch_sent_cb, op);
  g_main_context_pop_thread_default (self->context);
}

/* ---- CpDiscovery ---- */

static void
cp_kubernetes_discovery_discover_async (CpDiscovery         *discovery,
                                        const char * const  *plugins,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  CpKubernetesDiscovery *self = CP_KUBERNETES_DISCOVERY (discovery);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_kubernetes_discovery_discover_async);
  cp_host_waiters_add (&self->waiters, task, NULL);
  if (self->listed)
    {
      complete_waiters (self);
      return;
    }
  if (!self->started)
    {
      g_autoptr(GMainContext) here = g_main_context_ref_thread_default ();

      self->started = TRUE;
      if (here != self->context)
        list_sync (self);
      else
        list_start (self);
    }
  else if (self->list_error != NULL)
    /* Listing fails and is retried: answer at once with the last error. */
    complete_waiters (self);
}

static char **
cp_kubernetes_discovery_discover_finish (CpDiscovery   *discovery,
                                         GAsyncResult  *result,
                                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, discovery), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* @address through the test hook address-map: ADDRESS=HOST[:PORT]. */
static void
map_address (CpKubernetesDiscovery  *self,
             const char             *address,
             guint16                 port,
             char                  **out_host,
             guint                  *out_port)
{
  gsize len = strlen (address);

  *out_host = g_strdup (address);
  *out_port = port;
  for (guint i = 0; self->address_map != NULL && self->address_map[i] != NULL; i++)
    {
      const char *entry = self->address_map[i];
      const char *to;
      const char *colon;

      if (strncmp (entry, address, len) != 0 || entry[len] != '=')
        continue;
      to = entry + len + 1;
      colon = strrchr (to, ':');
      g_free (*out_host);
      if (colon != NULL && strchr (to, ']') == NULL && strchr (to, ':') == colon)
        {
          *out_host = g_strndup (to, colon - to);
          *out_port = (guint) g_ascii_strtoull (colon + 1, NULL, 10);
        }
      else
        *out_host = g_strdup (to);
      return;
    }
}

static CpChannel *
cp_kubernetes_discovery_create_channel (CpDiscovery  *discovery,
                                        const char   *url,
                                        GError      **error)
{
  CpKubernetesDiscovery *self = CP_KUBERNETES_DISCOVERY (discovery);
  CpKubeEndpoint *endpoint = g_hash_table_lookup (self->ready, url);
  g_autofree char *host = NULL;
  g_autofree char *target = NULL;
  guint port = 0;

  if (!g_str_has_prefix (url, "k8s:"))
    return cp_channel_new (url, error);
  if (endpoint == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE,
                   "Kubernetes endpoint %s is not ready", url);
      return NULL;
    }
  map_address (self, endpoint->address, endpoint->port, &host, &port);
  target = g_strdup_printf ("%s://%s%s%s:%u", endpoint->tls ? "https" : "http",
                            strchr (host, ':') != NULL ? "[" : "", host,
                            strchr (host, ':') != NULL ? "]" : "", port);
  g_debug ("kubernetes discovery: %s → %s", url, target);
  return cp_channel_new (target, error);
}

static void
cp_kubernetes_discovery_iface_init (CpDiscoveryInterface *iface)
{
  iface->discover_async = cp_kubernetes_discovery_discover_async;
  iface->discover_finish = cp_kubernetes_discovery_discover_finish;
  iface->create_channel = cp_kubernetes_discovery_create_channel;
}

/* ---- GObject ---- */

static void
cp_kubernetes_discovery_dispose (GObject *object)
{
  CpKubernetesDiscovery *self = CP_KUBERNETES_DISCOVERY (object);

  self->generation++;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  if (self->watch_cancellable != NULL)
    g_cancellable_cancel (self->watch_cancellable);
  g_clear_object (&self->watch_cancellable);
  clear_retry (self);
  g_clear_object (&self->session);

  G_OBJECT_CLASS (cp_kubernetes_discovery_parent_class)->dispose (object);
}

static void
cp_kubernetes_discovery_finalize (GObject *object)
{
  CpKubernetesDiscovery *self = CP_KUBERNETES_DISCOVERY (object);

  g_free (self->service);
  g_free (self->base);
  g_free (self->namespace);
  g_free (self->port_name);
  g_strfreev (self->address_map);
  cp_kube_config_free (self->config);
  g_clear_object (&self->client_certificate);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->waiters, g_ptr_array_unref);
  g_clear_error (&self->list_error);
  g_free (self->resource_version);
  g_clear_pointer (&self->ready, g_hash_table_unref);
  g_clear_pointer (&self->slices, g_hash_table_unref);
  g_strfreev (self->ready_signature);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (cp_kubernetes_discovery_parent_class)->finalize (object);
}

static void
cp_kubernetes_discovery_get_property (GObject    *object,
                                      guint       prop_id,
                                      GValue     *value,
                                      GParamSpec *pspec)
{
  CpKubernetesDiscovery *self = CP_KUBERNETES_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_SERVICE:
      g_value_set_string (value, self->service);
      break;
    case PROP_NAMESPACE:
      g_value_set_string (value, self->namespace);
      break;
    case PROP_PORT_NAME:
      g_value_set_string (value, self->port_name);
      break;
    case PROP_SERVER:
      g_value_set_string (value, cp_kubernetes_discovery_get_server (self));
      break;
    case PROP_ADDRESS_MAP:
      g_value_set_boxed (value, self->address_map);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_kubernetes_discovery_set_property (GObject      *object,
                                      guint         prop_id,
                                      const GValue *value,
                                      GParamSpec   *pspec)
{
  CpKubernetesDiscovery *self = CP_KUBERNETES_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_SERVICE:
      self->service = g_value_dup_string (value);
      break;
    case PROP_NAMESPACE:
      self->namespace = g_value_dup_string (value);
      break;
    case PROP_PORT_NAME:
      self->port_name = g_value_dup_string (value);
      break;
    case PROP_ADDRESS_MAP:
      if (cp_host_strv_replace (&self->address_map, g_value_get_boxed (value)))
        g_object_notify_by_pspec (object, pspec);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_kubernetes_discovery_class_init (CpKubernetesDiscoveryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = cp_kubernetes_discovery_dispose;
  object_class->finalize = cp_kubernetes_discovery_finalize;
  object_class->get_property = cp_kubernetes_discovery_get_property;
  object_class->set_property = cp_kubernetes_discovery_set_property;

  /**
   * CpKubernetesDiscovery:service:
   *
   * The name of the Kubernetes service followed.
   */
  properties[PROP_SERVICE] = g_param_spec_string ("service", NULL, NULL, NULL, construct);

  /**
   * CpKubernetesDiscovery:namespace:
   *
   * The namespace of the service.
   */
  properties[PROP_NAMESPACE] = g_param_spec_string ("namespace", NULL, NULL, NULL, construct);

  /**
   * CpKubernetesDiscovery:port-name:
   *
   * The name of the service port the plugins serve on, or %NULL for the
   * EndpointSlices' first port.
   */
  properties[PROP_PORT_NAME] = g_param_spec_string ("port-name", NULL, NULL, NULL, construct);

  /**
   * CpKubernetesDiscovery:server:
   *
   * The apiserver's URL.
   */
  properties[PROP_SERVER] =
    g_param_spec_string ("server", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * CpKubernetesDiscovery:address-map:
   *
   * For tests: entries `ADDRESS=HOST` or `ADDRESS=HOST:PORT` that
   * [method@Discovery.create_channel] dials instead of an endpoint's
   * address (and port). EndpointSlices refuse loopback addresses, so a
   * test publishes documentation addresses (`192.0.2.x`) and maps them to
   * plugins listening on 127.0.0.1. Leave it unset in production.
   */
  properties[PROP_ADDRESS_MAP] =
    g_param_spec_boxed ("address-map", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_kubernetes_discovery_init (CpKubernetesDiscovery *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->cancellable = g_cancellable_new ();
  self->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  self->slices = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) cp_kube_slice_free);
  self->ready = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/* A DNS label (RFC 1123) as Kubernetes names services and namespaces. */
static gboolean
check_label (const char  *what,
             const char  *value,
             GError     **error)
{
  gsize len = value != NULL ? strlen (value) : 0;
  gboolean ok = len > 0 && len <= 63 && value[0] != '-' && value[len - 1] != '-';

  for (gsize i = 0; ok && i < len; i++)
    ok = g_ascii_islower (value[i]) || g_ascii_isdigit (value[i]) || value[i] == '-';
  if (!ok)
    g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                 "“%s” is not a valid Kubernetes %s name", value != NULL ? value : "", what);
  return ok;
}

/* The session to the apiserver. With a CA of its own and an IP address
 * (in a cluster, KUBERNETES_SERVICE_HOST is one), the TLS connection is
 * ours (cp-tls-proxy-private.h), pinned to that CA and offering only
 * HTTP/1.1: libsoup 3.2's HTTP/2, which the apiserver offers, loses the
 * answers of some failed requests ("HTTP/2 Error: NO_ERROR" for a 401).
 * Otherwise libsoup's own TLS with @database (nullable: the system's). */
static SoupSession *
new_session (CpKubernetesDiscovery *self,
             GTlsDatabase          *database)
{
  g_autoptr(GUri) uri = g_uri_parse (self->config->server, G_URI_FLAGS_NONE, NULL);
  g_autoptr(GSocketConnectable) pinned = NULL;
  SoupSession *session;

  if (uri != NULL && database != NULL && g_strcmp0 (g_uri_get_scheme (uri), "https") == 0)
    pinned = cp_tls_connectable_new_for_url (uri, database, self->client_certificate);
  if (pinned != NULL)
    {
      /* Its addresses are proxy addresses, followed only with a resolver
       * set (as CpChannel does). */
      g_autoptr(GProxyResolver) resolver = g_simple_proxy_resolver_new (NULL, NULL);

      session = g_object_new (SOUP_TYPE_SESSION, "remote-connectable", pinned,
                              "tls-database", database, NULL);
      soup_session_set_proxy_resolver (session, resolver);
      /* Our proxy made the TLS connection: libsoup speaks plain HTTP on it. */
      self->base = g_strconcat ("http://", self->config->server + strlen ("https://"), NULL);
    }
  else
    {
      session = database != NULL ? soup_session_new_with_options ("tls-database", database, NULL)
                                 : soup_session_new ();
      self->base = g_strdup (self->config->server);
    }
  soup_session_set_user_agent (session, "connectplugin-kubernetes-discovery");
  soup_session_remove_feature_by_type (session, SOUP_TYPE_AUTH_MANAGER);
  return session;
}

/* Makes the discovery for @config (taken). */
static CpKubernetesDiscovery *
new_for_config (CpKubeConfig  *config,
                const char    *service,
                const char    *namespace,
                const char    *port_name,
                GError       **error)
{
  g_autoptr(CpKubeConfig) owned = config;
  g_autoptr(CpKubernetesDiscovery) self = NULL;
  g_autoptr(GTlsDatabase) database = NULL;

  if (namespace == NULL)
    namespace = config->namespace != NULL ? config->namespace : "default";
  if (!check_label ("service", service, error) || !check_label ("namespace", namespace, error))
    return NULL;
  if (config->ca_pem != NULL && !config->insecure)
    {
      database = cp_tls_database_new_from_pem (config->ca_pem, error);
      if (database == NULL)
        return NULL;
    }
  self = g_object_new (CP_TYPE_KUBERNETES_DISCOVERY, "service", service,
                       "namespace", namespace, "port-name", port_name, NULL);
  if (config->client_cert_pem != NULL)
    {
      g_autofree char *pem = g_strconcat (config->client_cert_pem, "\n",
                                          config->client_key_pem, NULL);

      self->client_certificate = g_tls_certificate_new_from_pem (pem, -1, error);
      explicit_bzero (pem, strlen (pem));
      if (self->client_certificate == NULL)
        return NULL;
    }
  self->config = g_steal_pointer (&owned);
  self->session = new_session (self, database);
  return g_steal_pointer (&self);
}

CpKubernetesDiscovery *
cp_kubernetes_discovery_new_in_cluster_at (const char  *sa_dir,
                                           const char  *service,
                                           const char  *namespace,
                                           const char  *port_name,
                                           GError     **error)
{
  CpKubeConfig *config = cp_kube_config_in_cluster (sa_dir, error);

  if (config == NULL)
    return NULL;
  return new_for_config (config, service, namespace, port_name, error);
}

/**
 * cp_kubernetes_discovery_new_in_cluster:
 * @service: the name of the Kubernetes service whose endpoints serve the plugins
 * @namespace: (nullable): its namespace; %NULL for the pod's own
 * @port_name: (nullable): the name of the service port; %NULL for the first
 * @error: return location for a [struct@GLib.Error]
 *
 * Creates a discovery for a process running in a pod: it reaches the
 * apiserver at `KUBERNETES_SERVICE_HOST`:`KUBERNETES_SERVICE_PORT` over
 * HTTPS, trusting the service account's `ca.crt` and sending its `token`
 * (both under `/var/run/secrets/kubernetes.io/serviceaccount`).
 *
 * Nothing is asked of the apiserver before the first discovery.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.KubernetesDiscovery],
 *   or %NULL with @error set (%CP_ERROR_FAILED_PRECONDITION outside a
 *   cluster, %CP_ERROR_INVALID_ARGUMENT for a bad name)
 */
CpKubernetesDiscovery *
cp_kubernetes_discovery_new_in_cluster (const char  *service,
                                        const char  *namespace,
                                        const char  *port_name,
                                        GError     **error)
{
  g_return_val_if_fail (service != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return cp_kubernetes_discovery_new_in_cluster_at (NULL, service, namespace, port_name, error);
}

/**
 * cp_kubernetes_discovery_new_from_kubeconfig:
 * @path: (type filename): a kubeconfig file
 * @context: (nullable): the context to use; %NULL for its `current-context`
 * @service: the name of the Kubernetes service whose endpoints serve the plugins
 * @namespace: (nullable): its namespace; %NULL for the context's (else `default`)
 * @port_name: (nullable): the name of the service port; %NULL for the first
 * @error: return location for a [struct@GLib.Error]
 *
 * Creates a discovery that reaches the apiserver as a kubeconfig file
 * says: the context's cluster (`server`, `certificate-authority` or
 * `certificate-authority-data`, `insecure-skip-tls-verify`) and user
 * (`token`, `tokenFile`, `client-certificate(-data)` with
 * `client-key(-data)`). Files it names are read relative to its directory.
 * Exec and auth-provider plugins are not supported.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.KubernetesDiscovery],
 *   or %NULL with @error set (%CP_ERROR_INVALID_ARGUMENT for a file that
 *   cannot be read or used)
 */
CpKubernetesDiscovery *
cp_kubernetes_discovery_new_from_kubeconfig (const char  *path,
                                             const char  *context,
                                             const char  *service,
                                             const char  *namespace,
                                             const char  *port_name,
                                             GError     **error)
{
  g_autofree char *text = NULL;
  g_autofree char *dir = NULL;
  g_autoptr(GError) io = NULL;
  gsize len = 0;
  CpKubeConfig *config;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (service != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &text, &len, &io))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "kubeconfig: %s", io->message);
      return NULL;
    }
  dir = g_path_get_dirname (path);
  config = cp_kube_config_parse (text, len, dir, context, error);
  if (config == NULL)
    return NULL;
  return new_for_config (config, service, namespace, port_name, error);
}

/**
 * cp_kubernetes_discovery_get_service:
 * @self: a [class@ConnectPlugin.KubernetesDiscovery]
 *
 * Gets the name of the service followed.
 *
 * Returns: (transfer none): the service name
 */
const char *
cp_kubernetes_discovery_get_service (CpKubernetesDiscovery *self)
{
  g_return_val_if_fail (CP_IS_KUBERNETES_DISCOVERY (self), NULL);

  return self->service;
}

/**
 * cp_kubernetes_discovery_get_namespace:
 * @self: a [class@ConnectPlugin.KubernetesDiscovery]
 *
 * Gets the namespace of the service followed.
 *
 * Returns: (transfer none): the namespace
 */
const char *
cp_kubernetes_discovery_get_namespace (CpKubernetesDiscovery *self)
{
  g_return_val_if_fail (CP_IS_KUBERNETES_DISCOVERY (self), NULL);

  return self->namespace;
}

/**
 * cp_kubernetes_discovery_get_port_name:
 * @self: a [class@ConnectPlugin.KubernetesDiscovery]
 *
 * Gets the name of the service port followed.
 *
 * Returns: (transfer none) (nullable): the port name, or %NULL for the first port
 */
const char *
cp_kubernetes_discovery_get_port_name (CpKubernetesDiscovery *self)
{
  g_return_val_if_fail (CP_IS_KUBERNETES_DISCOVERY (self), NULL);

  return self->port_name;
}

/**
 * cp_kubernetes_discovery_get_server:
 * @self: a [class@ConnectPlugin.KubernetesDiscovery]
 *
 * Gets the URL of the apiserver the discovery talks to.
 *
 * Returns: (transfer none) (nullable): the apiserver's URL
 */
const char *
cp_kubernetes_discovery_get_server (CpKubernetesDiscovery *self)
{
  g_return_val_if_fail (CP_IS_KUBERNETES_DISCOVERY (self), NULL);

  return self->config != NULL ? self->config->server : NULL;
}

/**
 * cp_kubernetes_discovery_dup_ready_urls:
 * @self: a [class@ConnectPlugin.KubernetesDiscovery]
 *
 * Gets the URLs of the ready endpoints as last seen (empty before the
 * first discovery), sorted.
 *
 * Returns: (transfer full) (array zero-terminated=1): the URLs
 */
char **
cp_kubernetes_discovery_dup_ready_urls (CpKubernetesDiscovery *self)
{
  g_autoptr(GPtrArray) urls = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (CP_IS_KUBERNETES_DISCOVERY (self), NULL);

  g_hash_table_iter_init (&iter, self->ready);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (urls, g_strdup (key));
  g_ptr_array_sort (urls, compare_strings);
  g_ptr_array_add (urls, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&urls), FALSE);
}

/* For tests: how many lists and watches were started. */
void
cp_kubernetes_discovery_get_counts (CpKubernetesDiscovery *self,
                                    guint                 *n_lists,
                                    guint                 *n_watches)
{
  *n_lists = self->n_lists;
  *n_watches = self->n_watches;
}
