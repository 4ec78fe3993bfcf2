"""Formgrader on a privileged port, with no privilege: root listens, the instructor serves.

    python -m coursehub.listen PORT USER -- jupyterhub-singleuser ... --ServerApp.jpserver_extensions=coursehub.listen=True

As root, this opens 127.0.0.1:PORT (below 1024: no student can listen there while formgrader is
down), becomes USER entirely (groups, gid, uid: no capability left in any thread, since it has one
thread), and runs the command with the listening socket's number in INFOGAN_LISTEN_FD. In the Jupyter
server, this module's extension hands that socket to the server in place of binding its own.
"""

from __future__ import annotations

import os
import pwd
import socket
import sys

FD_VARIABLE = "INFOGAN_LISTEN_FD"


def capabilities_left() -> int:
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return sum(int(status[k], 16) for k in ("CapEff", "CapPrm", "CapAmb", "CapInh"))


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4 or args[2] != "--":
        raise SystemExit("usage: python -m coursehub.listen PORT USER -- COMMAND ...")
    port, user, command = int(args[0]), pwd.getpwnam(args[1]), args[3:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    listener.set_inheritable(True)
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)                     # from root to the user: every capability goes
    if os.getuid() == 0 or capabilities_left():
        raise SystemExit("error: could not drop root's rights before starting formgrader")
    os.environ[FD_VARIABLE] = str(listener.fileno())
    os.execvp(command[0], command)


def _jupyter_server_extension_points():
    return [{"module": "coursehub.listen"}]


def _load_jupyter_server_extension(app) -> None:
    """Serve on the socket root opened (never inherited by the kernels formgrader starts)."""
    fd = int(os.environ.pop(FD_VARIABLE))
    listener = socket.socket(fileno=fd)
    listener.set_inheritable(False)
    listener.setblocking(False)

    def bind() -> bool:
        app.http_server.add_sockets([listener])
        return True

    app._find_http_port = lambda: None        # the port is open already, and not this user's to try
    app._bind_http_server_tcp = bind


if __name__ == "__main__":
    main()
