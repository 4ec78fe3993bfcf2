"""The course hub's JupyterHub configuration, from the class file (`coursehub.course.Course`).

`hub/jupyterhub_config.py` calls `configure(c, course)`; everything a class needs is here:

- who logs in: the authenticator of the class file, only the listed people (`allowed_users`);
- each person's server runs as their Unix user (`coursehub.spawner.LimitedSpawner`), in the shared
  read-only environment (`sys.prefix`'s `jupyterhub-singleuser`), with a clean PATH (no root paths),
  the data folder read-only through INFOGAN_DATA, and the student's nbgrader settings (the
  exchange, the course) from `<prefix>/jupyter`;
- nbgrader's JupyterHub groups: `nbgrader-<course>` (everyone in the class) and
  `formgrade-<course>` (the instructors), and formgrader as a hub-managed service that runs as the
  instructor in the course folder, reachable by the instructors' group only;
- the idle culler: servers idle for `idle_minutes` are stopped (their files stay);
- the exchange's guard (`coursehub.guard`): no student fills the exchange for the others;
- the lessons placed in each person's home before their first server starts (`place_lessons`).
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from .course import Course

KIT = Path(__file__).resolve().parents[1]


LESSONS = ("notebooks", "docs", "README.md")       # what each person finds in ~/infogan-course


# Run as the person, never as root: their home is theirs, and root writing into a folder its owner
# can change (rename, swap for a link) would write and chown wherever the link points.
COPY_LESSONS = """
import os, shutil, sys, tempfile
kit, home = sys.argv[1], os.path.expanduser("~")
target = os.path.join(home, "infogan-course")
if os.path.lexists(target):
    sys.exit(0)
staging = tempfile.mkdtemp(prefix=".infogan-course-", dir=home)
for name in sys.argv[2:]:
    source = os.path.join(kit, name)
    if os.path.isdir(source):
        shutil.copytree(source, os.path.join(staging, name),
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    else:                                           # a file, or an error that says why not
        shutil.copy(source, os.path.join(staging, name))
os.rename(staging, target)
"""


async def place_lessons(spawner) -> None:
    """Before a person's server starts: their home's own file system mounted (after a reboot:
    `coursehub.disks`), and on the first start the lessons in ~/infogan-course, theirs to edit (the
    homework comes through nbgrader's Assignments tab), copied by the person themselves. Never
    overwrites what is there."""
    import asyncio
    import pwd

    from .disks import mount_image

    user = pwd.getpwnam(spawner.user.name)
    image = Path(spawner.disks or "/nonexistent") / f"home-{user.pw_name}.img"
    if image.is_file():
        mount_image(image, Path(user.pw_dir))
    copy = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", COPY_LESSONS, str(KIT), *LESSONS, cwd=user.pw_dir,
        user=user.pw_uid, group=user.pw_gid, extra_groups=[],
        env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(copy.communicate(), 120)
    if copy.returncode:
        spawner.log.warning("the lessons were not placed in %s's home: %s", user.pw_name,
                            out.decode(errors="replace")[-500:])


def formgrader_service(course: Course) -> str:
    return f"formgrader-{course.course_id}"


def free_ports(course: Course) -> None:
    """Refuse to start when one of the hub's loopback ports is taken: whoever holds it would
    receive what the proxy or the hub sends there (log-ins, the proxy's token)."""
    import socket

    lowest = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if course.formgrader_port >= lowest:
        raise SystemExit(f"error: formgrader's port {course.formgrader_port} is not privileged here "
                         f"(net.ipv4.ip_unprivileged_port_start = {lowest}; containers often set 0): any "
                         "student could listen on it. Set the sysctl back to 1024, or choose "
                         f"hub.formgrader_port below {lowest}")
    for port in (course.port + 1, course.port + 2, course.formgrader_port):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"error: port {port} on 127.0.0.1 is taken (the hub needs {course.port}–"
                                 f"{course.port + 2}): find who holds it (ss -ltnp 'sport = :{port}'), "
                                 "stop it, or choose another hub.port in the course file")


def configure(c, course: Course, admin_token: str | None = None) -> None:
    venv_bin = Path(sys.prefix) / "bin"
    run = course.run_dir
    # three ports in a row, so that two courses on one server never meet: the public one, the hub's own
    # API and the proxy's API (the last two on loopback only; `free_ports` checks them at start)
    c.JupyterHub.ip, c.JupyterHub.port = course.ip, course.port
    c.JupyterHub.hub_ip, c.JupyterHub.hub_port = "127.0.0.1", course.port + 1
    c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % (course.port + 2)
    c.JupyterHub.db_url = f"sqlite:///{run / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(run / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(run / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(run / "proxy.pid")
    proxy = os.environ.get("INFOGAN_HUB_PROXY")
    if proxy:
        c.ConfigurableHTTPProxy.command = [proxy]

    c.JupyterHub.authenticator_class = course.authenticator
    c.Authenticator.allowed_users = set(course.people)
    c.Authenticator.admin_users = set()               # nobody administers the hub through the web

    c.JupyterHub.spawner_class = "coursehub.spawner.LimitedSpawner"
    c.Spawner.cmd = [str(venv_bin / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.notebook_dir = "~"
    c.Spawner.mem_limit = course.memory_bytes()
    c.Spawner.cpu_limit = course.cpus or None
    c.LimitedSpawner.processes = course.processes
    c.LimitedSpawner.private_tmp_bytes = course.tmp_bytes()
    c.LimitedSpawner.disks = str(course.prefix / "disks")
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    c.Spawner.env_keep = ["LANG", "LC_ALL", "TZ"]
    c.Spawner.pre_spawn_hook = place_lessons
    c.Spawner.environment = {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "INFOGAN_DATA": str(course.data_dir),
        "JUPYTER_CONFIG_PATH": str(course.prefix / "jupyter"),
    }

    everyone, graders = f"nbgrader-{course.course_id}", f"formgrade-{course.course_id}"
    c.JupyterHub.load_groups = {everyone: {"users": course.people}, graders: {"users": course.instructors}}
    service = formgrader_service(course)
    teacher = pwd.getpwnam(course.instructor)
    c.JupyterHub.services = [{
        "name": service,
        # a privileged port (below 1024), which no student can listen on while formgrader is down:
        # whoever held formgrader's port would receive the instructor's requests and tokens. It runs
        # as the instructor, with the one right to bind such a port (setpriv, from util-linux).
        "url": "http://127.0.0.1:%d" % course.formgrader_port,
        "command": ["setpriv", f"--reuid={teacher.pw_uid}", f"--regid={teacher.pw_gid}", "--init-groups",
                    "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "--",
                    str(venv_bin / "jupyterhub-singleuser"), "--ServerApp.default_url=/formgrader"],
        "cwd": str(course.course_dir),
        "oauth_no_confirm": True,
        "environment": {"PATH": f"{venv_bin}:/usr/bin:/bin", "INFOGAN_DATA": str(course.data_dir),
                        "HOME": str(course.course_dir), "USER": course.instructor,
                        "JUPYTERHUB_USER": course.instructor},   # nbgrader asks who releases
    }, {
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={course.idle_minutes * 60}"],
    }]
    if course.source is not None:                 # as root, like the hub: coursehub/guard.py
        c.JupyterHub.services.append({"name": "exchange-guard",
                                      "command": [sys.executable, "-m", "coursehub.guard",
                                                  str(Path(course.source).resolve())],
                                      "environment": {"PYTHONPATH": str(KIT)}})
    roles = [
        {"name": graders, "groups": [graders],
         "scopes": [f"access:services!service={service}", "list:users", "read:users:groups",
                    "list:groups", f"groups!group={everyone}"]},
        {"name": f"{service}-service", "services": [service],
         "scopes": ["list:users", "read:users:groups", "list:groups", f"groups!group={everyone}"]},
        {"name": "exchange-guard", "services": ["exchange-guard"],
         "scopes": [f"delete:servers!group={everyone}"]},
        {"name": "idle-culler", "services": ["idle-culler"],
         "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
    ]
    if admin_token:                                   # for the tests and the capacity benchmark
        c.JupyterHub.services.append({"name": "course-admin", "api_token": admin_token})
        roles.append({"name": "course-admin", "services": ["course-admin"],
                      "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users",
                                 "access:servers", "admin:groups"]})
    c.JupyterHub.load_roles = roles
