/* greeter-plugin.vala: the same plugin as greeter-plugin.c, in Vala, by
 * subclassing the generated skeleton (greeter-1.0.vapi)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
class MyGreeter : Greeter.GreeterServiceSkeleton, Greeter.GreeterService {
    static string greeting (Greeter.GreetRequest request) {
        if (request.has_title)
            return "Hello, %s %s!".printf (request.title, request.name);
        return "Hello, %s!".printf (request.name);
    }

    public override bool handle_greet (Cp.Invocation call, Greeter.GreetRequest request) {
        if (request.name == "") {
            call.return_error_literal (Cp.Error.INVALID_ARGUMENT, "no name");
            return true;
        }
        complete_greet (call, new Greeter.GreetResponse () { text = greeting (request) });
        return true;
    }

    public override bool handle_greet_many (Cp.Invocation call, Greeter.GreetRequest request) {
        foreach (unowned string hello in new string[] { "Hello", "Bonjour", "Hallo" }) {
            try {
                call.send_message (new Greeter.GreetResponse () { text = "%s, %s!".printf (hello, request.name) });
            } catch (Error e) {
                return true;
            }
        }
        call.return_ok ();
        return true;
    }

    public override bool handle_greet_all (Cp.Invocation call) {
        greet_all.begin (call);
        return true;
    }

    async void greet_all (Cp.Invocation call) {
        string[] names = {};
        try {
            Cp.Message? message;
            while ((message = yield call.receive_async (null)) != null)
                names += ((Greeter.GreetRequest) message).name;
        } catch (Error e) {
            return;
        }
        complete_greet_all (call, new Greeter.GreetResponse () { text = "Hello, %s!".printf (string.joinv (" and ", names)) });
    }
}

int main (string[] args) {
    var server = new Cp.Server ();
    var plugin = new Cp.Plugin ("greeter", "1.0.0");
    plugin.add_service (new MyGreeter ());
    server.add_plugin (plugin);
    return server.run (args);
}
