"""Where the code runs: the device, how many CPU threads, switches read from the environment.

Threads. torch's CPU kernels split each operation over a team of threads that wait for one
another at the end of every operation. On a laptop where another program keeps a core busy (a
browser, a video call, a second notebook), one thread of the team is often descheduled and the
rest wait for it. On a 2-core machine beside one busy process, training on both cores ran at 0.27×
its idle speed, on one core at 0.96× (benchmarks/busy_neighbour.py). `default_threads` therefore
leaves half the cores free: slower on an idle machine (there, 0.64× two threads' speed), no cliff on
a busy one. ``--threads`` chooses any count; a run keeps its count when resumed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import torch


def env_flag(name: str) -> bool:
    """True when the environment variable is set to something other than "", 0, false, no, off."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """Half the available cores (at least one): the count that survives a busy neighbour."""
    return max(1, available_cores() // 2)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run torch's CPU ops on `n` threads inside the block, then restore the caller's count
    (None: leave it as it is)."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


def choose_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: this machine has no CUDA GPU that torch can use; "
                          "use --device auto (or cpu).")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("--device mps: Apple's Metal backend is not available here; use --device "
                          "auto (or cpu).")
    return torch.device(name)


class StopFlag:
    """Turns Ctrl-C (SIGINT) into a request to stop after the current step; a second Ctrl-C stops
    at once (KeyboardInterrupt), except while `holding` (the final checkpoint is being written).
    Only the main thread receives signals: a run in another thread stops at its budget."""

    def __init__(self):
        self.requested, self.holding, self._previous = False, False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested and not self.holding:
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
