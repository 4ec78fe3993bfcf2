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
- the lessons placed in each person's home before their first server starts (`place_lessons`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .course import Course

KIT = Path(__file__).resolve().parents[1]


LESSONS = ("notebooks", "docs", "README.md")       # what each person finds in ~/infogan-course


def place_lessons(spawner) -> None:
    """Before a person's first server starts: the lessons in ~/infogan-course, theirs to edit (the
    homework comes through nbgrader's Assignments tab). Never overwrites what is there."""
    import pwd
    import shutil

    from .owners import copy_from_kit, give

    user = pwd.getpwnam(spawner.user.name)
    target = Path(user.pw_dir) / "infogan-course"
    if target.exists():
        return
    staging = target.with_name(".infogan-course-placing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    copy_from_kit(LESSONS, staging)
    give(staging, user)
    staging.rename(target)


def formgrader_service(course: Course) -> str:
    return f"formgrader-{course.course_id}"


def configure(c, course: Course, admin_token: str | None = None) -> None:
    venv_bin = Path(sys.prefix) / "bin"
    run = course.run_dir
    # four ports in a row, so that two courses on one server never meet: the public one, formgrader,
    # the hub's own API and the proxy's API (the last three on loopback only)
    c.JupyterHub.ip, c.JupyterHub.port = course.ip, course.port
    c.JupyterHub.hub_ip, c.JupyterHub.hub_port = "127.0.0.1", course.port + 2
    c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % (course.port + 3)
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
        "url": "http://127.0.0.1:%d" % (course.port + 1),
        "command": [str(venv_bin / "jupyterhub-singleuser"), "--ServerApp.default_url=/formgrader"],
        "user": course.instructor,
        "cwd": str(course.course_dir),
        "oauth_no_confirm": True,
        "environment": {"PATH": f"{venv_bin}:/usr/bin:/bin", "INFOGAN_DATA": str(course.data_dir),
                        "HOME": str(course.course_dir)},
    }, {
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={course.idle_minutes * 60}"],
    }]
    roles = [
        {"name": graders, "groups": [graders],
         "scopes": [f"access:services!service={service}", "list:users", "read:users:groups",
                    "list:groups", f"groups!group={everyone}"]},
        {"name": f"{service}-service", "services": [service],
         "scopes": ["list:users", "read:users:groups", "list:groups", f"groups!group={everyone}"]},
        {"name": "idle-culler", "services": ["idle-culler"],
         "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]},
    ]
    if admin_token:                                   # for the tests and the capacity benchmark
        c.JupyterHub.services.append({"name": "course-admin", "api_token": admin_token})
        roles.append({"name": "course-admin", "services": ["course-admin"],
                      "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users",
                                 "access:servers", "admin:groups"]})
    c.JupyterHub.load_roles = roles
