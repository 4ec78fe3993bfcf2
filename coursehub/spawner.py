"""Each student's Jupyter server as that Unix user, inside a control group of its own.

JupyterHub's LocalProcessSpawner starts a user's server as that user but does not enforce
`mem_limit` or `cpu_limit` (it only passes them on as environment variables). Here the server
joins a cgroup before it drops to the user (in the pre-exec step, still as root), so the server
and every kernel and process it starts are counted together, and the kernel enforces:

- memory: `mem_limit` in all (RAM, tmpfs pages, page cache of what it writes; no swap); past it,
  the OOM killer ends a process of this student, never another student's;
- processes: `processes` (a fork bomb stops there);
- CPU: `cpu_limit` cores' worth of time when set (a hard cap slows every spawn: 0.5 core took a
  server 9.7 s to start instead of 3.5 on a 2-core machine), else a fair share among the students;
- output: what the server and its kernels print goes to ~/.jupyter-server.log, on the person's own
  disk, not into the hub's log (a kernel writing there without end would fill the machine's disk);
- temporary files: the server's own /tmp, /var/tmp, /dev/shm and /run/lock (`private_tmp_bytes`, tmpfs in a mount
  namespace of its own: counted in its memory, seen by nobody else; `coursehub.disks`).

Both cgroup layouts (v1, v2) are handled by the kit's `grading/cgroups.py`. Where cgroups cannot be
made (not root, no controllers), servers start without these limits and the hub's log says why.
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Integer, Unicode

from grading.cgroups import Cgroup, existing

from .disks import private_tmp

KIT = Path(__file__).resolve().parents[1]
PARENT = "infogan-hub"
SERVER_LOG = ".jupyter-server.log"       # in the person's home: what their server and kernels print


class LimitedSpawner(LocalProcessSpawner):
    processes = Integer(512, help="Processes and threads a student's server may run at once").tag(config=True)
    private_tmp_bytes = Integer(0, help="Each server's own /tmp, /var/tmp and /dev/shm, in bytes "
                                        "(0: the machine's shared ones)").tag(config=True)
    disks = Unicode("", help="The folder of the homes' disk images (coursehub.disks)").tag(config=True)

    def _cgroup(self) -> Cgroup:
        return Cgroup(f"user-{self.user.name}", int(self.mem_limit or 2 * 2**30), self.processes,
                      float(self.cpu_limit) if self.cpu_limit else None, parent=PARENT)

    async def start(self):
        why = Cgroup.available()
        self._group = None
        if why is None:
            self._group = self._cgroup().create()
        else:
            self.log.warning("%s's server starts without memory and process limits: %s", self.user.name, why)
        return await super().start()

    def make_preexec_fn(self, name):
        drop_to_user = super().make_preexec_fn(name)
        files = self._group.procs_files() if getattr(self, "_group", None) else []

        tmp = self.private_tmp_bytes if os.geteuid() == 0 else 0
        keep = (os.path.realpath(sys.prefix), str(KIT))    # the kit and its environment stay in view
        log = os.path.join(pwd.getpwnam(name).pw_dir, SERVER_LOG) if os.geteuid() == 0 else None

        def preexec():
            for path in files:                   # still root: join, then become the student
                with open(path, "w") as f:
                    f.write(str(os.getpid()))
            if tmp:
                private_tmp(tmp, keep)
            drop_to_user()
            if log:                              # as the student: their own disk, not the hub's log
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
        return preexec

    async def stop(self, now=False):
        await super().stop(now=now)
        group = getattr(self, "_group", None)
        if group is None:                        # the hub restarted since: find the cgroup by name
            group = existing(f"user-{self.user.name}", PARENT)
        if group is not None:
            group.destroy()                      # whatever the student left running ends here
