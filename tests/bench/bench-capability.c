/* bench-capability.c: a capability call vs a direct call on the host
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   bench-capability [--connections 16] [--seconds 2] [--rounds 3]
 *
 * A host (CpServer + CpBroker, one thread) serves the KV service twice:
 * directly (/kv.v1.KVService/Get on its own server) and as the capability
 * "kv" (a second skeleton, reached at /capabilities/kv/{grant}/kv.v1.
 * KVService/Get with the grant's bearer token, dispatched in-process).
 * --connections client threads each keep one TCP connection and post
 * binary Connect unary Gets back to back for --seconds; the two paths
 * alternate for --rounds rounds. Prints the req/s and p50 latency of each
 * path (best round) and the ratio capability/direct, with the issue's
 * target (≥ 0.9×) beside: it reports, it does not judge.
 */
#include <connectplugin.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp-broker-private.h"
#include "connectplugin/protocol/broker.cp.h"
#include "kv.cp.h"

#define TARGET_RATIO 0.9

static int n_connections = 16;
static int seconds = 2;
static int rounds = 3;

typedef struct {
  GMainContext *context;
  CpServer *host;
  CpBroker *broker;
  KvKVService *direct;
  KvKVService *capability;
  char *url;
  guint16 port;
  gint ready;
  gint stop;
} Host;

static gboolean
on_get (KvKVService  *skeleton,
        CpInvocation *invocation,
        KvGetRequest *request,
        gpointer      user_data)
{
  g_autoptr(KvGetResponse) response = kv_get_response_new ();
  g_autoptr(GBytes) value = g_bytes_new_static ("v", 1);

  kv_get_response_set_found (response, TRUE);
  kv_get_response_set_value (response, value);
  kv_kv_service_complete_get (skeleton, invocation, response);
  return TRUE;
}

static gpointer
host_thread (gpointer data)
{
  Host *h = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;

  g_main_context_push_thread_default (h->context);
  h->host = cp_server_new ();
  h->broker = cp_broker_new (h->host);
  h->direct = kv_kv_service_skeleton_new ();
  h->capability = kv_kv_service_skeleton_new ();
  g_signal_connect (h->direct, "handle-get", G_CALLBACK (on_get), NULL);
  g_signal_connect (h->capability, "handle-get", G_CALLBACK (on_get), NULL);
  if (!cp_skeleton_export (CP_SKELETON (h->direct), cp_server_get_rpc_server (h->host), &error))
    g_error ("%s", error->message);
  cp_broker_add_capability (h->broker, "kv", "1.0.0", CP_SKELETON (h->capability));
  h->url = cp_server_listen (h->host, "127.0.0.1:0", &error);
  if (h->url == NULL)
    g_error ("%s", error->message);
  uri = g_uri_parse (h->url, G_URI_FLAGS_NONE, NULL);
  h->port = (guint16) g_uri_get_port (uri);
  g_atomic_int_set (&h->ready, 1);
  while (!g_atomic_int_get (&h->stop))
    g_main_context_iteration (h->context, TRUE);
  cp_server_close (h->host);
  while (g_main_context_iteration (h->context, FALSE))
    ;
  g_clear_object (&h->broker);
  g_clear_object (&h->host);
  g_clear_object (&h->direct);
  g_clear_object (&h->capability);
  g_main_context_pop_thread_default (h->context);
  return NULL;
}

typedef struct {
  char *runtime_id;
  char *token;
  Host *host;
  gint done;
} Identity;

static gboolean
issue_identity (gpointer data)
{
  Identity *id = data;

  cp_server_issue_runtime_identity (id->host->host, "bench-plugin", &id->runtime_id, &id->token);
  g_atomic_int_set (&id->done, 1);
  return G_SOURCE_REMOVE;
}

/* A grant for "kv", asked as a plugin would. */
static CpCapabilityGrant *
get_grant (Host *h)
{
  Identity id = { NULL, NULL, h, 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (h->url, &error);
  g_autoptr(CpCapabilityBroker) proxy = NULL;
  g_autoptr(CpRequestCapabilityRequest) request = cp_request_capability_request_new ();
  g_autoptr(CpRequestCapabilityResponse) response = NULL;
  g_autofree char *bearer = NULL;

  g_main_context_invoke (h->context, issue_identity, &id);
  while (!g_atomic_int_get (&id.done))
    g_usleep (1000);
  bearer = g_strconcat ("Bearer ", id.token, NULL);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", id.runtime_id);
  cp_channel_set_header (channel, "Authorization", bearer);
  proxy = cp_capability_broker_proxy_new (channel);
  cp_request_capability_request_set_capability_type (request, "kv");
  response = cp_capability_broker_call_request_capability_sync (proxy, request, NULL, NULL, &error);
  if (response == NULL)
    g_error ("RequestCapability: %s", error->message);
  g_free (id.runtime_id);
  g_free (id.token);
  return cp_request_capability_response_get_grant (response);
}

/* ------------------------------------------------------------------ */
/* The load: raw keep-alive HTTP/1.1 over blocking sockets              */

typedef struct {
  guint16 port;
  const char *request;             /* the whole request, reused */
  gsize request_len;
  gint64 end;
  guint n;
  GArray *latencies;               /* gint64 µs, sampled */
} Worker;

static gboolean
read_response (GSocket *socket,
               char    *buf,
               gsize    size)
{
  gsize have = 0;
  char *end = NULL;
  gsize need;
  const char *cl;

  while ((end = g_strstr_len (buf, have, "\r\n\r\n")) == NULL)
    {
      gssize n = g_socket_receive (socket, buf + have, size - have - 1, NULL, NULL);
      if (n <= 0)
        return FALSE;
      have += n;
      buf[have] = '\0';
    }
  if (!g_str_has_prefix (buf, "HTTP/1.1 200"))
    {
      g_printerr ("unexpected answer: %.200s\n", buf);
      return FALSE;
    }
  cl = g_strstr_len (buf, end - buf, "\r\nContent-Length: ");
  if (cl == NULL)
    cl = g_strstr_len (buf, end - buf, "\r\ncontent-length: ");
  if (cl == NULL)
    return FALSE;
  need = (end + 4 - buf) + g_ascii_strtoull (cl + 18, NULL, 10);
  while (have < need)
    {
      gssize n = g_socket_receive (socket, buf + have, size - have - 1, NULL, NULL);
      if (n <= 0)
        return FALSE;
      have += n;
    }
  return have == need;
}

static gpointer
worker_run (gpointer data)
{
  Worker *w = data;
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, w->port);
  char buf[4096];

  if (!g_socket_connect (socket, address, NULL, NULL))
    g_error ("connect failed");
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  while (g_get_monotonic_time () < w->end)
    {
      gint64 start = g_get_monotonic_time ();

      if (g_socket_send (socket, w->request, w->request_len, NULL, NULL) != (gssize) w->request_len ||
          !read_response (socket, buf, sizeof buf))
        g_error ("a call failed");
      if (w->n % 8 == 0)
        {
          gint64 latency = g_get_monotonic_time () - start;
          g_array_append_val (w->latencies, latency);
        }
      w->n++;
    }
  return NULL;
}

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

/* One round on @path: req/s, and the p50 in *@p50_us. */
static double
run_load (Host       *h,
          const char *path,
          const char *authorization,
          double     *p50_us)
{
  static const char body[] = "\x0a\x01k";  /* GetRequest{key: "k"} */
  g_autofree char *request = NULL;
  g_autoptr(GPtrArray) threads = g_ptr_array_new ();
  g_autofree Worker *workers = g_new0 (Worker, n_connections);
  g_autoptr(GArray) all = g_array_new (FALSE, FALSE, sizeof (gint64));
  gint64 start = g_get_monotonic_time ();
  guint total = 0;

  request = g_strdup_printf ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s"
                             "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n"
                             "Content-Length: %zu\r\n\r\n%s",
                             path, authorization ? "Authorization: " : "",
                             authorization ? authorization : "", authorization ? "\r\n" : "",
                             sizeof body - 1, body);
  for (int i = 0; i < n_connections; i++)
    {
      workers[i].port = h->port;
      workers[i].request = request;
      workers[i].request_len = strlen (request);
      workers[i].end = start + (gint64) seconds * G_USEC_PER_SEC;
      workers[i].latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
      g_ptr_array_add (threads, g_thread_new ("load", worker_run, &workers[i]));
    }
  for (int i = 0; i < n_connections; i++)
    {
      g_thread_join (threads->pdata[i]);
      total += workers[i].n;
      g_array_append_vals (all, workers[i].latencies->data, workers[i].latencies->len);
      g_array_unref (workers[i].latencies);
    }
  g_array_sort (all, compare_gint64);
  *p50_us = all->len > 0 ? (double) g_array_index (all, gint64, all->len / 2) : 0;
  return total / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
}

static gboolean
wake (gpointer data)
{
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    { "connections", 0, 0, G_OPTION_ARG_INT, &n_connections, "Client connections (16)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "Seconds per round and path (2)", "S" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Rounds (3)", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- capability vs direct call");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpCapabilityGrant) grant = NULL;
  g_autofree char *cap_path = NULL;
  g_autofree char *bearer = NULL;
  double best_direct = 0, best_cap = 0, p50_direct = 0, p50_cap = 0;
  Host h = { 0 };
  GThread *thread;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  h.context = g_main_context_new ();
  thread = g_thread_new ("host", host_thread, &h);
  while (!g_atomic_int_get (&h.ready))
    g_usleep (1000);
  grant = get_grant (&h);
  cap_path = g_strdup_printf ("/capabilities/kv/%s/kv.v1.KVService/Get",
                              cp_capability_grant_get_grant_id (grant));
  bearer = g_strconcat ("Bearer ", cp_capability_grant_get_bearer_token (grant), NULL);

  for (int r = 0; r < rounds; r++)
    {
      double p50, rps;

      rps = run_load (&h, "/kv.v1.KVService/Get", NULL, &p50);
      g_print ("round %d direct      %9.0f req/s  p50 %6.0f us\n", r + 1, rps, p50);
      if (rps > best_direct)
        best_direct = rps, p50_direct = p50;
      rps = run_load (&h, cap_path, bearer, &p50);
      g_print ("round %d capability  %9.0f req/s  p50 %6.0f us\n", r + 1, rps, p50);
      if (rps > best_cap)
        best_cap = rps, p50_cap = p50;
    }

  g_print ("\ncapability call vs direct call on the host, %d connections, best of %d x %d s\n",
           n_connections, rounds, seconds);
  g_print ("  %-34s %10s %10s\n", "", "req/s", "p50 us");
  g_print ("  %-34s %10.0f %10.0f\n", "direct /kv.v1.KVService/Get", best_direct, p50_direct);
  g_print ("  %-34s %10.0f %10.0f\n", "capability /capabilities/kv/...", best_cap, p50_cap);
  g_print ("  ratio capability/direct: %.2fx (target >= %.1fx)\n",
           best_direct > 0 ? best_cap / best_direct : 0, TARGET_RATIO);
  g_print ("RESULT direct_rps=%.0f capability_rps=%.0f ratio=%.3f direct_p50_us=%.0f capability_p50_us=%.0f\n",
           best_direct, best_cap, best_direct > 0 ? best_cap / best_direct : 0, p50_direct, p50_cap);

  g_atomic_int_set (&h.stop, 1);
  g_main_context_invoke (h.context, wake, NULL);
  g_thread_join (thread);
  g_main_context_unref (h.context);
  g_free (h.url);
  return 0;
}
