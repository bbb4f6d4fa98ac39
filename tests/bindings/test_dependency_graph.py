#!/usr/bin/python3
"""CpDependencyGraph from Python through GObject-Introspection (issue 14):
start-up order, a cycle as a GLib.Error plus its members, a missing or too
old provider, impact analysis and service declarations as the generated
message classes.

Run with Debian's /usr/bin/python3 (PyGObject); meson sets GI_TYPELIB_PATH
and LD_LIBRARY_PATH to the build tree.
"""
import unittest

import gi

gi.require_version("ConnectPlugin", "1.0")
gi.require_version("GLib", "2.0")
from gi.repository import ConnectPlugin as Cp  # noqa: E402
from gi.repository import GLib  # noqa: E402


def plugin(graph, runtime_id, self_id, provides=(), requires=(), optional=()):
    graph.add_plugin(runtime_id, self_id)
    for service_type, version in provides:
        graph.add_provides(runtime_id, service_type, version)
    for service_type, min_version in requires:
        graph.add_requires(runtime_id, service_type, min_version, True)
    for service_type, min_version in optional:
        graph.add_requires(runtime_id, service_type, min_version, False)


class DependencyGraphTest(unittest.TestCase):
    def test_order(self):
        graph = Cp.DependencyGraph.new()
        plugin(graph, "app-1", "app", requires=[("cache", "1.0.0"), ("logger", None)])
        plugin(graph, "logger-1", "logger", provides=[("logger", "1.0.0")])
        plugin(graph, "cache-1", "cache", provides=[("cache", "1.2.0")],
               requires=[("logger", None)])
        self.assertEqual(graph.dup_startup_order(), ["logger-1", "cache-1", "app-1"])
        self.assertEqual(graph.dup_plugins(), ["app-1", "cache-1", "logger-1"])
        self.assertTrue(graph.has_service("cache", "1.2.0"))
        self.assertFalse(graph.has_service("cache", "1.2.1"))
        self.assertEqual(graph.dup_providers("logger", None), ["logger-1"])
        self.assertEqual(graph.check_plugin("app-1"), (True, []))
        self.assertLess(Cp.DependencyGraph.compare_versions("1.0.0-rc.1", "1.0.0"), 0)

    def test_cycle(self):
        graph = Cp.DependencyGraph.new()
        plugin(graph, "a-1", "a", provides=[("x", None)], requires=[("z", None)])
        plugin(graph, "b-1", "b", provides=[("y", None)], requires=[("x", None)])
        plugin(graph, "c-1", "c", provides=[("z", None)], requires=[("y", None)])
        with self.assertRaises(GLib.Error) as caught:
            graph.dup_startup_order()
        self.assertTrue(caught.exception.matches(Cp.error_quark(),
                                                 Cp.Error.FAILED_PRECONDITION))
        self.assertIn("a-1 → c-1 → b-1 → a-1", caught.exception.message)
        self.assertEqual(graph.dup_cycle(), ["a-1", "c-1", "b-1"])
        graph.remove_plugin("b-1")
        self.assertFalse(graph.dup_cycle())  # NULL strv: [] in PyGObject

    def test_missing_and_too_old(self):
        graph = Cp.DependencyGraph.new()
        plugin(graph, "app-1", "app", requires=[("cache", "2.0.0")])
        plugin(graph, "cache-1", "cache", provides=[("cache", "1.9.0")])
        with self.assertRaises(GLib.Error) as caught:
            graph.check_plugin("app-1")
        self.assertEqual(caught.exception.message,
                         "plugin app (runtime id app-1) requires service cache >= 2.0.0, "
                         "but the only providers are too old: cache-1 1.9.0")
        with self.assertRaises(GLib.Error) as caught:
            graph.add_provides("cache-1", "cache", "not-a-version")
        self.assertTrue(caught.exception.matches(Cp.error_quark(), Cp.Error.INVALID_ARGUMENT))

    def test_impact(self):
        graph = Cp.DependencyGraph.new()
        plugin(graph, "store-a", "sa", provides=[("store", "1.0.0")])
        plugin(graph, "store-b", "sb", provides=[("store", "1.0.0")])
        plugin(graph, "cache-1", "cache", provides=[("cache", "1.0.0")],
               requires=[("store", None)])
        plugin(graph, "app-1", "app", requires=[("cache", None)])
        plugin(graph, "log-1", "log", optional=[("cache", None)])

        impact = graph.analyze_impact("store-a")
        self.assertEqual(impact.get_affected_plugins(), [])
        self.assertEqual(impact.get_rebound_plugins(), ["cache-1"])
        self.assertTrue(impact.has_alternative("store"))
        self.assertEqual(impact.dup_alternatives("store"), ["store-b"])

        impact = graph.analyze_impact("cache-1")
        self.assertEqual(impact.get_target(), "cache-1")
        self.assertEqual(impact.get_affected_plugins(), ["app-1"])
        self.assertEqual(impact.get_directly_affected_plugins(), ["app-1"])
        self.assertEqual(impact.get_degraded_plugins(), ["log-1"])
        self.assertEqual(impact.get_services(), ["cache"])
        self.assertEqual(impact.get_unavailable_services(), ["cache"])
        self.assertFalse(impact.has_alternative("cache"))
        self.assertIsNone(graph.analyze_impact("nope"))

    def test_declared(self):
        graph = Cp.DependencyGraph.new()
        decl = Cp.ServiceDeclaration.new()
        decl.set_type_("cache")
        decl.set_version("2.0.0")
        dep = Cp.ServiceDependency.new()
        dep.set_type_("cache")
        dep.set_min_version("2.0.0-rc.1")
        dep.set_required_for_startup(True)
        graph.add_declared("app-1", "app", None, [dep])
        graph.add_declared("cache-1", "cache", [decl], None)
        self.assertEqual(graph.dup_startup_order(), ["cache-1", "app-1"])
        self.assertTrue(graph.remove_plugin("cache-1"))
        self.assertFalse(graph.has_plugin("cache-1"))


if __name__ == "__main__":
    unittest.main()
