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

    from .disks import home_image, mount_image

    user = pwd.getpwnam(spawner.user.name)
    image = home_image(spawner.disks, user.pw_name) if spawner.disks else None
    if image is not None and image.is_file():
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


def check_ports(course: Course) -> list[str]:
    """Refuse to start where the hub's loopback ports are not privileged (a student could listen on
    one while the hub restarts); returns warnings (the public port)."""
    lowest = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if course.internal_port + 2 >= lowest:
        raise SystemExit(f"error: hub.internal_port {course.internal_port} (and the next two) are not "
                         f"privileged here (net.ipv4.ip_unprivileged_port_start = {lowest}; containers often "
                         "set 0): any student could listen on them. Set the sysctl back to 1024, or choose "
                         f"hub.internal_port below {lowest - 2}")
    if course.port >= lowest:
        return [f"hub.port {course.port} is not privileged: if the hub and its proxy ever stop, a student's "
                "process could listen there and receive log-ins. For a class, use 443 or 80"]
    return []


def configure(c, course: Course, admin_token: str | None = None) -> None:
    venv_bin = Path(sys.prefix) / "bin"
    run = course.run_dir
    # the public port, and three privileged ones on loopback (formgrader, the hub's API, the proxy's
    # API): whoever listened on one of those while the hub restarts would receive log-ins, tokens and
    # the instructor's requests, and below 1024 only root can listen (`check_ports`)
    c.JupyterHub.ip, c.JupyterHub.port = course.ip, course.port
    c.JupyterHub.hub_ip, c.JupyterHub.hub_port = "127.0.0.1", course.internal_port + 1
    c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % (course.internal_port + 2)
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
    c.JupyterHub.services = [{
        "name": service,
        # on a privileged port that root opens and hands over (coursehub.listen); it runs as the
        # instructor with no privilege at all; no terminals
        "url": "http://127.0.0.1:%d" % course.internal_port,
        "command": [sys.executable, "-m", "coursehub.listen", str(course.internal_port), course.instructor,
                    "--", str(venv_bin / "jupyterhub-singleuser"), "--ServerApp.default_url=/formgrader",
                    "--ServerApp.jpserver_extensions=coursehub.listen=True",
                    "--ServerApp.terminals_enabled=False"],
        "cwd": str(course.course_dir),
        "oauth_no_confirm": True,
        "environment": {"PATH": f"{venv_bin}:/usr/bin:/bin", "INFOGAN_DATA": str(course.data_dir),
                        "HOME": str(course.course_dir), "USER": course.instructor, "PYTHONPATH": str(KIT),
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
        # a person's own resources, as JupyterHub's `self` gives them, except making API tokens (each
        # one a row in the hub's database, with a note of any size: a student could fill its disk)
        {"name": "user", "scopes": ["read:users!user", "users:activity!user", "servers!user",
                                    "access:servers!user", "read:tokens!user"]},
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
