/* etcd-harness.c: a real etcd (Debian's etcd-server) per test program
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <libsoup/soup.h>

#include "etcd-harness.h"

const char *
etcd_harness_program (void)
{
  const char *program = g_getenv ("CP_ETCD");

  if (program == NULL || program[0] == '\0')
    program = "/usr/bin/etcd";
  return g_file_test (program, G_FILE_TEST_IS_EXECUTABLE) ? program : NULL;
}

static guint
free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_socket_bind (socket, any, FALSE, &error))
    g_error ("etcd harness: %s", error->message);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static SoupSession *
session (void)
{
  static SoupSession *session;

  if (session == NULL)
    session = soup_session_new_with_options ("proxy-resolver", NULL, "timeout", 10, NULL);
  return session;
}

/* The body of a POST to @path, or NULL (with @error) when etcd does not
 * answer 200. */
static GBytes *
post (EtcdHarness  *etcd,
      const char   *path,
      const char   *json,
      GError      **error)
{
  g_autofree char *uri = g_strconcat (etcd->url, path, NULL);
  g_autoptr(SoupMessage) message = soup_message_new (SOUP_METHOD_POST, uri);
  g_autoptr(GBytes) body = g_bytes_new (json, strlen (json));
  g_autoptr(GBytes) response = NULL;

  soup_message_set_request_body_from_bytes (message, "application/json", body);
  response = soup_session_send_and_read (session (), message, NULL, error);
  if (response != NULL && soup_message_get_status (message) != SOUP_STATUS_OK)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "HTTP %u: %.*s",
                   soup_message_get_status (message),
                   (int) g_bytes_get_size (response), (const char *) g_bytes_get_data (response, NULL));
      return NULL;
    }
  return g_steal_pointer (&response);
}

static void
spawn (EtcdHarness *etcd)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autofree char *data = g_build_filename (etcd->dir, "data", NULL);
  g_autofree char *log = g_build_filename (etcd->dir, "etcd.log", NULL);
  g_autofree char *peer = g_strdup_printf ("http://127.0.0.1:%u", etcd->peer_port);
  g_autofree char *cluster = g_strdup_printf ("t=%s", peer);
  g_autoptr(GError) error = NULL;
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  g_subprocess_launcher_set_stderr_file_path (launcher, log);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  /* A stray ETCD_* variable would override the flags. */
  g_subprocess_launcher_unsetenv (launcher, "ETCDCTL_API");
  etcd->process = g_subprocess_launcher_spawn (launcher, &error, etcd_harness_program (),
                                               "--name", "t", "--data-dir", data,
                                               "--listen-client-urls", etcd->url,
                                               "--advertise-client-urls", etcd->url,
                                               "--listen-peer-urls", peer,
                                               "--initial-advertise-peer-urls", peer,
                                               "--initial-cluster", cluster,
                                               "--log-level", "warn", NULL);
  if (etcd->process == NULL)
    g_error ("etcd harness: cannot start etcd: %s", error->message);

  /* Ready when the gateway answers a range. */
  for (;;)
    {
      g_autoptr(GBytes) body = post (etcd, "/v3/kv/range", "{\"key\":\"AA==\"}", NULL);

      if (body != NULL)
        break;
      if (g_get_monotonic_time () > end)
        g_error ("etcd harness: etcd did not start in 30 s (see %s)", log);
      g_usleep (50 * 1000);
    }
}

EtcdHarness *
etcd_harness_start (void)
{
  EtcdHarness *etcd;
  g_autoptr(GError) error = NULL;

  if (etcd_harness_program () == NULL)
    {
      g_print ("1..0 # SKIP no etcd: install Debian's etcd-server (/usr/bin/etcd) or set CP_ETCD\n");
      exit (77);
    }
  etcd = g_new0 (EtcdHarness, 1);
  etcd->dir = g_dir_make_tmp ("cp-etcd-XXXXXX", &error);
  g_assert_no_error (error);
  etcd->client_port = free_port ();
  do
    etcd->peer_port = free_port ();
  while (etcd->peer_port == etcd->client_port);
  etcd->url = g_strdup_printf ("http://127.0.0.1:%u", etcd->client_port);
  spawn (etcd);
  return etcd;
}

void
etcd_harness_kill (EtcdHarness *etcd)
{
  if (etcd->process == NULL)
    return;
  g_subprocess_force_exit (etcd->process);
  g_subprocess_wait (etcd->process, NULL, NULL);
  g_clear_object (&etcd->process);
}

void
etcd_harness_restart (EtcdHarness *etcd)
{
  etcd_harness_kill (etcd);
  spawn (etcd);
}

static void
remove_tree (GFile *file)
{
  g_autoptr(GFileEnumerator) children =
    g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                               G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  GFile *child;

  while (children != NULL && g_file_enumerator_iterate (children, NULL, &child, NULL, NULL) &&
         child != NULL)
    remove_tree (child);
  g_file_delete (file, NULL, NULL);
}

void
etcd_harness_free (EtcdHarness *etcd)
{
  g_autoptr(GFile) dir = NULL;

  etcd_harness_kill (etcd);
  dir = g_file_new_for_path (etcd->dir);
  remove_tree (dir);
  g_free (etcd->dir);
  g_free (etcd->url);
  g_free (etcd);
}

JsonObject *
etcd_harness_call (EtcdHarness *etcd,
                   const char  *path,
                   const char  *json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = post (etcd, path, json, &error);
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (body == NULL)
    g_error ("etcd harness: %s: %s", path, error->message);
  if (!json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
                                   (gssize) g_bytes_get_size (body), &error))
    g_error ("etcd harness: %s: %s", path, error->message);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static gint64
revision_of (JsonObject *response)
{
  JsonObject *header = json_object_get_object_member (response, "header");

  return g_ascii_strtoll (json_object_get_string_member (header, "revision"), NULL, 10);
}

gint64
etcd_harness_put (EtcdHarness *etcd,
                  const char  *key,
                  const char  *value,
                  gint64       lease)
{
  g_autofree char *k = g_base64_encode ((const guchar *) key, strlen (key));
  g_autofree char *v = g_base64_encode ((const guchar *) value, strlen (value));
  g_autofree char *json = g_strdup_printf ("{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%"
                                           G_GINT64_FORMAT "\"}", k, v, lease);
  g_autoptr(JsonObject) response = etcd_harness_call (etcd, "/v3/kv/put", json);

  return revision_of (response);
}

void
etcd_harness_delete (EtcdHarness *etcd,
                     const char  *key)
{
  g_autofree char *k = g_base64_encode ((const guchar *) key, strlen (key));
  g_autofree char *json = g_strdup_printf ("{\"key\":\"%s\"}", k);
  g_autoptr(JsonObject) response = etcd_harness_call (etcd, "/v3/kv/deleterange", json);
}

gint64
etcd_harness_compact (EtcdHarness *etcd)
{
  g_autoptr(JsonObject) range = etcd_harness_call (etcd, "/v3/kv/range", "{\"key\":\"AA==\"}");
  gint64 revision = revision_of (range);
  g_autofree char *json = g_strdup_printf ("{\"revision\":\"%" G_GINT64_FORMAT "\",\"physical\":true}",
                                           revision);
  g_autoptr(JsonObject) response = etcd_harness_call (etcd, "/v3/kv/compaction", json);

  return revision;
}

gint64
etcd_harness_grant (EtcdHarness *etcd,
                    int          ttl)
{
  g_autofree char *json = g_strdup_printf ("{\"TTL\":%d}", ttl);
  g_autoptr(JsonObject) response = etcd_harness_call (etcd, "/v3/lease/grant", json);

  return g_ascii_strtoll (json_object_get_string_member (response, "ID"), NULL, 10);
}

static gboolean
timeout_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

void
etcd_harness_wait (gboolean *flag,
                   guint     seconds)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add_seconds (seconds, timeout_cb, &timed_out);

  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  if (!*flag)
    g_error ("timed out after %u s", seconds);
}
