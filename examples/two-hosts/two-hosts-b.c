/* two-hosts-b.c: host B finds the KV plugin through etcd and calls it over mutual TLS
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   two-hosts-b --etcd URL [--prefix P] --tls-cert FILE --tls-key FILE
 *               --tls-ca FILE [--follow]
 *
 * Discovers the "kv" plugin registered under the prefix (CpEtcdDiscovery),
 * connects to it with CpClient presenting its own client certificate and
 * trusting only --tls-ca, then puts and gets a key. With --follow it keeps
 * running and prints the URLs etcd offers whenever they change (a plugin
 * killed on host A disappears, its restart reappears) and does a Get on
 * each reconnection.
 */
#include <stdio.h>
#include <string.h>

#include <connectplugin.h>
#include "kv.cp.h"

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *result;
}

static gboolean
put_and_get (CpClient   *client,
             const char *key,
             const char *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvKVService) kv = KV_KV_SERVICE (cp_client_dispense (client, "kv",
                                                                 KV_TYPE_KV_SERVICE_PROXY, &error));
  g_autoptr(GBytes) bytes = g_bytes_new (value, strlen (value));
  g_autoptr(KvPutRequest) put = g_object_new (KV_TYPE_PUT_REQUEST, "key", key, "value", bytes, NULL);
  g_autoptr(KvGetRequest) get = g_object_new (KV_TYPE_GET_REQUEST, "key", key, NULL);
  g_autoptr(GAsyncResult) put_result = NULL;
  g_autoptr(GAsyncResult) get_result = NULL;
  g_autoptr(KvPutResponse) put_response = NULL;
  g_autoptr(KvGetResponse) get_response = NULL;
  g_autoptr(GBytes) got = NULL;

  if (kv == NULL)
    {
      g_printerr ("two-hosts-b: %s\n", error->message);
      return FALSE;
    }
  kv_kv_service_call_put (kv, put, NULL, NULL, store_result, &put_result);
  put_response = kv_kv_service_call_put_finish (kv, wait_for (&put_result), &error);
  if (put_response != NULL)
    {
      kv_kv_service_call_get (kv, get, NULL, NULL, store_result, &get_result);
      get_response = kv_kv_service_call_get_finish (kv, wait_for (&get_result), &error);
    }
  if (get_response == NULL)
    {
      g_printerr ("two-hosts-b: %s\n", error->message);
      return FALSE;
    }
  got = kv_get_response_get_value (get_response);
  g_print ("get %s = %.*s from %s\n", key, (int) g_bytes_get_size (got),
           (const char *) g_bytes_get_data (got, NULL), cp_client_get_url (client));
  return TRUE;
}

static void
on_changed (CpDiscovery *discovery,
            gpointer     user_data)
{
  g_auto(GStrv) urls = cp_etcd_discovery_get_urls (CP_ETCD_DISCOVERY (discovery));
  g_autofree char *list = g_strjoinv (" ", urls);

  g_print ("view: [%s]\n", list);
}

static void
on_state (CpClient   *client,
          GParamSpec *pspec,
          gpointer    user_data)
{
  if (cp_client_get_state (client) == CP_CLIENT_STATE_READY)
    put_and_get (client, "greeting", "hello from host B");
}

int
main (int argc, char **argv)
{
  g_auto(GStrv) etcd = NULL;
  g_autofree char *prefix = NULL, *cert = NULL, *key = NULL, *ca = NULL;
  gboolean follow = FALSE;
  GOptionEntry entries[] = {
    { "etcd", 0, 0, G_OPTION_ARG_STRING_ARRAY, &etcd, "etcd client URL (repeatable)", "URL" },
    { "prefix", 0, 0, G_OPTION_ARG_STRING, &prefix, "Key prefix", "PREFIX" },
    { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "This host's client certificate (PEM)", "FILE" },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &key, "Its private key (PEM)", "FILE" },
    { "tls-ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "CA that signs the plugins' certificates", "FILE" },
    { "follow", 0, 0, G_OPTION_ARG_NONE, &follow, "Keep running and follow changes", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— find the KV plugin in etcd and call it");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpEtcdDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  const char *plugins[] = { "kv", NULL };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("two-hosts-b: %s\n", error->message);
      return 2;
    }
  setvbuf (stdout, NULL, _IOLBF, 0);

  discovery = cp_etcd_discovery_new ((const char * const *) etcd, prefix);
  cp_etcd_discovery_set_plugin_name (discovery, "kv");
  g_signal_connect (discovery, "changed", G_CALLBACK (on_changed), NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);
  if ((cert != NULL || ca != NULL) && !cp_client_set_tls_files (client, cert, key, ca, &error))
    {
      g_printerr ("two-hosts-b: %s\n", error->message);
      return 2;
    }

  cp_client_connect_async (client, NULL, store_result, &result);
  if (!cp_client_connect_finish (client, wait_for (&result), &error))
    {
      g_printerr ("two-hosts-b: %s\n", error->message);
      return 1;
    }
  if (!put_and_get (client, "greeting", "hello from host B"))
    return 1;
  if (!follow)
    return 0;
  g_signal_connect (client, "notify::state", G_CALLBACK (on_state), NULL);
  for (;;)
    g_main_context_iteration (NULL, TRUE);
}
