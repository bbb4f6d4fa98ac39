# SPDX-License-Identifier: LGPL-2.1-or-later
# connectplugin: the Python helpers installed with ConnectPlugin (asyncio, errors).
"""Python helpers for ConnectPlugin.

The GObject API itself is ``gi.repository.ConnectPlugin``; its PyGObject
overrides (installed with this package) add bytes for GBytes, ConnectError
and awaitable async calls. This package holds what is not an override:
:mod:`connectplugin.aio`, the asyncio event loop that iterates GLib's main
context, and re-exports :class:`ConnectError`.
"""
import gi

gi.require_version('ConnectPlugin', '1.0')
from gi.repository import ConnectPlugin  # noqa: E402

ConnectError = ConnectPlugin.ConnectError

__all__ = ['ConnectError', 'aio']

from . import aio  # noqa: E402
