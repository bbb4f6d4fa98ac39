#!/usr/bin/python3
# kv_host.py URL: a Python host calling the KV service through the generated Proxy.
import sys, gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Kv', '1.0')
from gi.repository import ConnectPlugin, GLib, Kv

kv = Kv.KVServiceProxy.new(ConnectPlugin.Channel.new(sys.argv[1]))
kv.call_put_sync(Kv.PutRequest(key='greeting', value=GLib.Bytes(b'hello from Python')), None, None)
reply = kv.call_get_sync(Kv.GetRequest(key='greeting'), None, None)
print('greeting =', reply.props.value.get_data().decode() if reply.props.found else None)
