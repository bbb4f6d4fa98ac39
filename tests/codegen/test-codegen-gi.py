#!/usr/bin/python3
# test-codegen-gi.py: the KV proto's generated classes through GObject-Introspection
# SPDX-License-Identifier: LGPL-2.1-or-later

import unittest

import gi
gi.require_version('ConnectPlugin', '1.0')
gi.require_version('Kv', '1.0')
gi.require_version('Cgtest', '1.0')
from gi.repository import Cgtest, ConnectPlugin, GLib, Kv  # noqa: E402


class KvFromPython(unittest.TestCase):
    def test_construct_with_properties(self):
        req = Kv.GetRequest(key='a')
        self.assertIsInstance(req, ConnectPlugin.Message)
        self.assertEqual(req.props.key, 'a')
        self.assertEqual(req.get_key(), 'a')
        self.assertEqual(req.get_full_name(), 'kv.v1.GetRequest')
        # field 1, length-delimited, length 1, "a"
        self.assertEqual(req.to_bytes().get_data(), b'\x0a\x01a')

    def test_roundtrip(self):
        ev = Kv.WatchEvent(type=Kv.EventType.PUT, key='k', value=GLib.Bytes.new(b'\x00v'))
        data = ev.to_bytes()
        back = ConnectPlugin.Message.new_from_bytes(Kv.WatchEvent, ConnectPlugin.Codec.PROTO, data)
        self.assertIsInstance(back, Kv.WatchEvent)
        self.assertEqual(back.props.type, Kv.EventType.PUT)
        self.assertEqual(back.get_type_(), Kv.EventType.PUT)
        self.assertEqual(back.props.value.get_data(), b'\x00v')
        self.assertTrue(back.equal(ev))

    def test_setters_and_enum_nicks(self):
        resp = Kv.GetResponse.new()
        resp.set_found(True)
        resp.props.value = GLib.Bytes.new(b'xyz')
        self.assertTrue(resp.props.found)
        self.assertEqual(resp.get_value().get_data(), b'xyz')
        self.assertEqual(Kv.EventType.DELETE.value_nick, 'delete')


class EveryKindFromPython(unittest.TestCase):
    def test_repeated_scalars(self):
        r = Cgtest.Repeated.new()
        r.set_r_int32([1, -2, 3])
        self.assertEqual(r.get_r_int32(), [1, -2, 3])
        r.set_r_color([Cgtest.Color.RED, Cgtest.Color.BLUE])
        self.assertEqual(r.get_r_color(), [Cgtest.Color.RED, Cgtest.Color.BLUE])
        r.props.r_string = ['a', 'b']
        self.assertEqual(r.get_r_string(), ['a', 'b'])
        r.set_r_nested([Cgtest.Nested(id=1), Cgtest.Nested(id=2)])
        self.assertEqual([n.props.id for n in r.get_r_nested()], [1, 2])

    def test_map(self):
        m = Cgtest.Maps.new()
        m.set_labels({'k': 'v', 'a': 'b'})
        self.assertEqual(m.get_labels(), {'k': 'v', 'a': 'b'})

    def test_oneof(self):
        c = Cgtest.Choice(s='x')
        self.assertEqual(c.get_value_case(), Cgtest.ChoiceValueCase.S)
        c.props.i = 4
        self.assertEqual(c.get_value_case(), Cgtest.ChoiceValueCase.I)
        self.assertIsNone(c.props.s)
        c.clear_value()
        self.assertEqual(c.get_value_case(), Cgtest.ChoiceValueCase.NOT_SET)

    def test_keywords_and_nested(self):
        k = Cgtest.Keywords(**{'class': 'c', 'default': 3, 'type': Cgtest.Shape.SQUARE})
        self.assertEqual(k.get_class_(), 'c')
        self.assertEqual(k.get_default_(), 3)
        self.assertEqual(k.props.type, Cgtest.Shape.SQUARE)
        deep = Cgtest.OuterInnerDeep(where='here')
        inner = Cgtest.OuterInner(deep=deep, kind=Cgtest.OuterKind.SOME)
        self.assertEqual(inner.props.deep.props.where, 'here')


if __name__ == '__main__':
    unittest.main(verbosity=2)
