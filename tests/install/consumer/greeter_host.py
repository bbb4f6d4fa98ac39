#!/usr/bin/python3
# greeter_host.py: the tutorial's host in Python with asyncio
# SPDX-License-Identifier: LGPL-2.1-or-later
#
#   greeter_host.py PLUGIN-EXECUTABLE
#
# Launches the greeter plugin (C or Vala), calls each method kind with
# await, and exits 0 only when every answer is the expected one.
import sys

import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Greeter', '1.0')
from gi.repository import ConnectPlugin, Greeter  # noqa: E402
from connectplugin import ConnectError, aio  # noqa: E402


async def main(plugin):
    discovery = ConnectPlugin.ProcessDiscovery(argv=[plugin], name='greeter')
    client = ConnectPlugin.Client.new_for_discovery(discovery)
    await client.connect_async()               # no plugin named: all it serves
    greeter = client.dispense('greeter', Greeter.GreeterServiceProxy.__gtype__)

    got = []
    reply = await greeter.call_greet(Greeter.GreetRequest(name='World', title='dear'))
    got.append(reply.props.text)
    async for greeting in greeter.call_greet_many(Greeter.GreetRequest(name='Linus'), None):
        got.append(greeting.props.text)
    upload = greeter.call_greet_all(None)
    for name in ('Ada', 'Grace'):
        upload.send(Greeter.GreetRequest(name=name))
    reply = await upload.close_async()
    got.append(reply.props.text)
    try:
        await greeter.call_greet(Greeter.GreetRequest(name=''))
        got.append('no error')
    except ConnectError as e:
        got.append(e.code_name)
    await client.close_async()

    for line in got:
        print(line)
    return got == ['Hello, dear World!', 'Hello, Linus!', 'Bonjour, Linus!', 'Hallo, Linus!',
                   'Hello, Ada and Grace!', 'invalid_argument']


sys.exit(0 if aio.run(main(sys.argv[1])) else 1)
