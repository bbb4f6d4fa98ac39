#!/usr/bin/python3
# greeter_plugin.py: the tutorial's plugin in Python, on the generated skeleton
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   greeter_plugin.py [--listen ADDR]
#
# The same greeter.v1.GreeterService as greeter-plugin.c, served through
# ConnectPlugin.Server.run() (the address on the first line of standard
# output, then calls until a host says stop).
import sys

import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Greeter', '1.0')
from gi.repository import ConnectPlugin, Greeter  # noqa: E402


class MyGreeter(Greeter.GreeterServiceSkeleton):
    def do_handle_greet(self, invocation, request):
        if not request.props.name:
            invocation.return_error_literal(ConnectPlugin.Error.INVALID_ARGUMENT, 'no name')
            return True
        title = request.props.title + ' ' if request.has_title() else ''
        self.complete_greet(invocation, Greeter.GreetResponse(text=f'Hello, {title}{request.props.name}!'))
        return True

    def do_handle_greet_many(self, invocation, request):
        for hello in ('Hello', 'Bonjour', 'Hallo'):
            invocation.send_message(Greeter.GreetResponse(text=f'{hello}, {request.props.name}!'))
        invocation.return_ok()
        return True

    def do_handle_greet_all(self, invocation):
        names = []

        def received(inv, result):
            message = inv.receive_finish(result)
            if message is not None:
                names.append(message.props.name)
                inv.receive_async(None, received)
            else:
                self.complete_greet_all(inv, Greeter.GreetResponse(text='Hello, ' + ' and '.join(names) + '!'))

        invocation.receive_async(None, received)
        return True


server = ConnectPlugin.Server.new()
plugin = ConnectPlugin.Plugin.new('greeter', '1.0.0')
plugin.add_service(MyGreeter())
server.add_plugin(plugin)
sys.exit(server.run(sys.argv))
