/* consumer.vala: the same call as consumer.c, in Vala, through the installed
 * connectplugin-1.0.vapi
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
const string PROCEDURE = "/consumer.v1.Test/Fail";

int main () {
    var server = new Cp.RpcServer ();
    var info = new Cp.MethodInfo (PROCEDURE, Cp.MethodKind.UNARY, typeof (Cp.Empty), typeof (Cp.Empty));
    server.add_method (info, (invocation, request) => {
        invocation.return_error_literal (Cp.Error.INVALID_ARGUMENT, "no");
    });
    var channel = new Cp.Channel.in_process (server);
    try {
        channel.call_sync (PROCEDURE, new Cp.Empty (), typeof (Cp.Empty), null, null);
        printerr ("expected invalid_argument, got success\n");
        return 1;
    } catch (Cp.Error.INVALID_ARGUMENT e) {
        print ("Vala: %s\n", e.message);
    } catch (GLib.Error e) {
        printerr ("expected invalid_argument, got %s\n", e.message);
        return 1;
    }
    server.close ();
    return 0;
}
