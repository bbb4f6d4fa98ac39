/* host-test-util.c: shared helpers of the host-side tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "host-test-util.h"

/* ---- the echo plugin ---- */

static gboolean
handle_say (HosttestEchoService *object,
            CpInvocation        *invocation,
            HosttestSayRequest  *request,
            gpointer             user_data)
{
  g_autoptr(HosttestSayResponse) response = hosttest_say_response_new ();

  hosttest_say_response_set_text (response, hosttest_say_request_get_text (request));
  hosttest_echo_service_complete_say (object, invocation, response);
  return TRUE;
}

static gboolean
handle_count (HosttestEchoService  *object,
              CpInvocation         *invocation,
              HosttestCountRequest *request,
              gpointer              user_data)
{
  int up_to = hosttest_count_request_get_up_to (request);

  for (int i = 1; i <= MAX (up_to, 1); i++)
    {
      g_autoptr(HosttestCountResponse) response = hosttest_count_response_new ();

      hosttest_count_response_set_value (response, i);
      if (!cp_invocation_send_message (invocation, CP_MESSAGE (response), NULL))
        return TRUE;
    }
  if (up_to >= 0)
    cp_invocation_return_ok (invocation);
  else
    /* Stays open: keep the invocation until the process goes away. */
    g_object_set_data_full (G_OBJECT (object), "open-count",
                            g_object_ref (invocation), g_object_unref);
  return TRUE;
}

static gboolean
handle_ping (HosttestOtherService *object,
             CpInvocation         *invocation,
             HosttestSayRequest   *request,
             gpointer              user_data)
{
  g_autoptr(HosttestSayResponse) response = hosttest_say_response_new ();

  hosttest_say_response_set_text (response, "pong");
  hosttest_other_service_complete_ping (object, invocation, response);
  return TRUE;
}

CpServer *
host_test_echo_server_new (void)
{
  CpServer *server = cp_server_new ();
  g_autoptr(CpPlugin) echo = cp_plugin_new ("echo", "1.2.3");
  g_autoptr(CpPlugin) other = cp_plugin_new ("other", "0.1.0");
  g_autoptr(HosttestEchoService) echo_impl = hosttest_echo_service_skeleton_new ();
  g_autoptr(HosttestOtherService) other_impl = hosttest_other_service_skeleton_new ();

  g_signal_connect (echo_impl, "handle-say", G_CALLBACK (handle_say), NULL);
  g_signal_connect (echo_impl, "handle-count", G_CALLBACK (handle_count), NULL);
  g_signal_connect (other_impl, "handle-ping", G_CALLBACK (handle_ping), NULL);
  cp_plugin_add_service (echo, CP_SKELETON (echo_impl));
  cp_plugin_add_service (other, CP_SKELETON (other_impl));
  cp_server_add_plugin (server, echo);
  cp_server_add_plugin (server, other);
  return server;
}

/* ---- waiting ---- */

void
host_test_wait_flag (gboolean *flag)
{
  HOST_TEST_WAIT_UNTIL (*flag);
}

static gboolean
tick_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

guint
host_test_add_ticker (void)
{
  return g_timeout_add (50, tick_cb, NULL);
}

/* ---- log capture ---- */

static GPtrArray *plugin_logs;
static GMutex plugin_logs_lock;

static GLogWriterOutput
capture_writer (GLogLevelFlags   log_level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  const char *plugin = NULL, *stream = "", *message = "";

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_str_equal (fields[i].key, "CP_PLUGIN"))
        plugin = fields[i].value;
      else if (g_str_equal (fields[i].key, "CP_PLUGIN_STREAM"))
        stream = fields[i].value;
      else if (g_str_equal (fields[i].key, "MESSAGE"))
        message = fields[i].value;
    }
  if (plugin != NULL)
    {
      g_mutex_lock (&plugin_logs_lock);
      g_ptr_array_add (plugin_logs, g_strdup_printf ("%s|%s|%s", plugin, stream, message));
      g_mutex_unlock (&plugin_logs_lock);
      if (g_getenv ("HOST_TEST_SHOW_PLUGIN_LOGS") == NULL)
        return G_LOG_WRITER_HANDLED;
    }
  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

void
host_test_capture_plugin_logs (void)
{
  plugin_logs = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);
}

gboolean
host_test_plugin_log_has (const char *name,
                          const char *stream,
                          const char *substring)
{
  g_autofree char *prefix = g_strdup_printf ("%s|%s|", name, stream);
  gboolean found = FALSE;

  g_mutex_lock (&plugin_logs_lock);
  for (guint i = 0; i < plugin_logs->len && !found; i++)
    {
      const char *line = g_ptr_array_index (plugin_logs, i);

      found = g_str_has_prefix (line, prefix) && strstr (line, substring) != NULL;
    }
  g_mutex_unlock (&plugin_logs_lock);
  return found;
}

void
host_test_plugin_logs_clear (void)
{
  g_mutex_lock (&plugin_logs_lock);
  g_ptr_array_set_size (plugin_logs, 0);
  g_mutex_unlock (&plugin_logs_lock);
}

/* ---- the hand-made server ---- */

static void
fake_handshake (CpInvocation *invocation,
                CpMessage    *request,
                gpointer      user_data)
{
  FakeServer *fake = user_data;
  g_autoptr(CpHandshakeResponse) response = cp_handshake_response_new ();
  g_autoptr(GPtrArray) plugins = g_ptr_array_new_with_free_func (g_object_unref);

  cp_handshake_response_set_core_protocol_version (response, fake->core_version);
  cp_handshake_response_set_app_protocol_version (response, fake->app_version);
  if (fake->plugin_name != NULL)
    {
      CpPluginInfo *info = cp_plugin_info_new ();

      cp_plugin_info_set_name (info, fake->plugin_name);
      cp_plugin_info_set_version (info, "9.9.9");
      g_ptr_array_add (plugins, info);
    }
  cp_handshake_response_set_plugins (response, plugins);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
fake_check (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  FakeServer *fake = user_data;
  g_autoptr(CpHealthCheckResponse) response = cp_health_check_response_new ();

  fake->checks++;
  cp_health_check_response_set_status (response, fake->status);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
fake_watch (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  FakeServer *fake = user_data;
  g_autoptr(CpHealthCheckResponse) response = cp_health_check_response_new ();

  cp_health_check_response_set_status (response, fake->status);
  cp_invocation_send_message (invocation, CP_MESSAGE (response), NULL);
  g_ptr_array_add (fake->watchers, g_object_ref (invocation));
}

FakeServer *
fake_server_new (void)
{
  FakeServer *fake = g_new0 (FakeServer, 1);

  fake->rpc = cp_rpc_server_new ();
  fake->core_version = CP_CORE_PROTOCOL_VERSION;
  fake->app_version = CP_DEFAULT_APP_PROTOCOL_VERSION;
  fake->plugin_name = "echo";
  fake->with_watch = TRUE;
  fake->with_check = TRUE;
  fake->status = CP_SERVING_STATUS_SERVING;
  fake->watchers = g_ptr_array_new_with_free_func (g_object_unref);
  return fake;
}

static void
add (FakeServer      *fake,
     const char      *procedure,
     CpMethodKind     kind,
     GType            in,
     GType            out,
     CpMethodHandler  handler)
{
  g_autoptr(CpMethodInfo) info = cp_method_info_new (procedure, kind, in, out);

  cp_rpc_server_add_method (fake->rpc, info, handler, fake, NULL);
}

void
fake_server_start (FakeServer *fake)
{
  add (fake, CP_PROCEDURE_HANDSHAKE, CP_METHOD_UNARY,
       CP_TYPE_HANDSHAKE_REQUEST, CP_TYPE_HANDSHAKE_RESPONSE, fake_handshake);
  if (fake->with_check)
    add (fake, CP_PROCEDURE_HEALTH_CHECK, CP_METHOD_UNARY,
         CP_TYPE_HEALTH_CHECK_REQUEST, CP_TYPE_HEALTH_CHECK_RESPONSE, fake_check);
  if (fake->with_watch)
    add (fake, CP_PROCEDURE_HEALTH_WATCH, CP_METHOD_SERVER_STREAMING,
         CP_TYPE_HEALTH_CHECK_REQUEST, CP_TYPE_HEALTH_CHECK_RESPONSE, fake_watch);
}

void
fake_server_set_status (FakeServer      *fake,
                        CpServingStatus  status)
{
  fake->status = status;
  for (guint i = 0; i < fake->watchers->len; i++)
    {
      g_autoptr(CpHealthCheckResponse) response = cp_health_check_response_new ();

      cp_health_check_response_set_status (response, status);
      cp_invocation_send_message (g_ptr_array_index (fake->watchers, i),
                                  CP_MESSAGE (response), NULL);
    }
}

void
fake_server_free (FakeServer *fake)
{
  for (guint i = 0; i < fake->watchers->len; i++)
    cp_invocation_return_ok (g_ptr_array_index (fake->watchers, i));
  g_ptr_array_unref (fake->watchers);
  cp_rpc_server_close (fake->rpc);
  g_object_unref (fake->rpc);
  g_free (fake);
}
