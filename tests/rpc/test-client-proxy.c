/* test-client-proxy.c: a system HTTP proxy is never used for loopback
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * http_proxy points at a raw server that answers 502 to whatever reaches
 * it. A channel to a loopback plugin (127.0.0.1, localhost, a unix socket)
 * goes straight to it; a channel to another host goes through the proxy
 * (the control that shows the proxy setting is in effect here).
 */
#include <string.h>
#include <glib/gstdio.h>
#include "client-test-util.h"
#include "raw-server.h"

static RawServer *proxy;

static GBytes *
get_response_ok (void)
{
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);

  return raw_response (200, "Content-Type: application/proto\r\n",
                       g_bytes_get_data (body, NULL), (gssize) g_bytes_get_size (body));
}

static void
call_ok (const char *url)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (url, &error);
  g_autoptr(CpMessage) response = NULL;

  g_assert_no_error (error);
  response = test_kv_get (channel, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "v");
}

static void
test_loopback_direct (void)
{
  RawServer *plugin = raw_server_new ();
  g_autoptr(GBytes) ok = get_response_ok ();
  const char *url = raw_server_get_url (plugin);
  const char *port = strrchr (url, ':') + 1;
  g_autofree char *by_name = g_strdup_printf ("http://localhost:%s", port);
  guint proxied = raw_server_get_n_requests (proxy);

  raw_server_set_response (plugin, ok, RAW_AFTER_CLOSE);
  call_ok (url);
  call_ok (by_name);
  g_assert_cmpuint (raw_server_get_n_requests (plugin), ==, 2);
  g_assert_cmpuint (raw_server_get_n_requests (proxy), ==, proxied);
  raw_server_free (plugin);
}

static void
test_other_host_proxied (void)
{
  g_autoptr(GError) error = NULL;
  /* TEST-NET-1: never routed; only the proxy can answer. */
  g_autoptr(CpChannel) channel = cp_channel_new ("http://192.0.2.1:8080", &error);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GBytes) request = NULL;
  guint before = raw_server_get_n_requests (proxy);

  g_assert_no_error (error);
  response = test_kv_get (channel, "k", NULL, &error);
  g_assert_nonnull (error);
  g_assert_null (response);
  g_assert_cmpuint (raw_server_get_n_requests (proxy), ==, before + 1);
  request = raw_server_get_request (proxy, before);
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (request, NULL), (gssize) g_bytes_get_size (request),
                                  "http://192.0.2.1:8080/kv.v1.KVService/Get"));
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GBytes) bad_gateway = raw_response (502, "", "no", 2);
  g_autofree char *proxy_url = NULL;
  int status;

  proxy = raw_server_new ();
  raw_server_set_response (proxy, bad_gateway, RAW_AFTER_CLOSE);
  proxy_url = g_strdup (raw_server_get_url (proxy));
  /* Before anything asks GIO's proxy resolver. */
  g_setenv ("http_proxy", proxy_url, TRUE);
  g_setenv ("HTTP_PROXY", proxy_url, TRUE);
  g_unsetenv ("no_proxy");
  g_unsetenv ("NO_PROXY");

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/client/proxy/other-host-proxied", test_other_host_proxied);
  g_test_add_func ("/client/proxy/loopback-direct", test_loopback_direct);
  status = g_test_run ();
  raw_server_free (proxy);
  return status;
}
