/* consumer.c: a unary call in process, through the installed library
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <connectplugin.h>

#define PROCEDURE "/consumer.v1.Test/Fail"

static void
handle_fail (CpInvocation *invocation,
             CpMessage    *request,
             gpointer      user_data)
{
  (void) request;
  (void) user_data;
  cp_invocation_return_error_literal (invocation, CP_ERROR_INVALID_ARGUMENT, "no");
}

int
main (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  g_autoptr(CpMethodInfo) info = cp_method_info_new (PROCEDURE, CP_METHOD_UNARY,
                                                     CP_TYPE_EMPTY, CP_TYPE_EMPTY);
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpEmpty) request = cp_empty_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  cp_rpc_server_add_method (server, info, handle_fail, NULL, NULL);
  channel = cp_channel_new_in_process (server);
  response = cp_channel_call_sync (channel, PROCEDURE, CP_MESSAGE (request), CP_TYPE_EMPTY,
                                   NULL, NULL, &error);
  if (!g_error_matches (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT))
    {
      g_printerr ("expected invalid_argument, got %s\n", error ? error->message : "success");
      return 1;
    }
  g_print ("C: %s\n", error->message);
  cp_rpc_server_close (server);
  return 0;
}
