"""A Jupyter server extension for formgrader on the course hub: once the server listens on its
privileged port, it gives up the capability that let it (CAP_NET_BIND_SERVICE, from setpriv), so that
no kernel or process it starts later can listen on a privileged port.

Capabilities belong to a thread: this drops them in the thread that starts kernels (the event loop's)
and clears the ambient set that new programs would inherit.
"""

from __future__ import annotations

import ctypes

PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """No capability left in this thread: effective, permitted, inheritable and ambient all empty."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "clearing the ambient capabilities")
    if libc.capset(ctypes.byref(_Header(CAPABILITY_VERSION_3, 0)), (_Data * 2)()) != 0:
        raise OSError(ctypes.get_errno(), "dropping the capabilities")


def _jupyter_server_extension_points():
    return [{"module": "coursehub.dropcaps"}]


def _load_jupyter_server_extension(app) -> None:
    from tornado.ioloop import IOLoop

    loop = IOLoop.current()

    def when_listening():
        if getattr(getattr(app, "http_server", None), "_sockets", None):
            drop_capabilities()
            app.log.info("formgrader listens; its capabilities are dropped")
        else:                                  # the server binds on this loop, just after extensions load
            loop.call_later(0.05, when_listening)

    loop.add_callback(when_listening)
