"""How a check reports: one line, ✓ with what was checked, or ✗ with what to look at.

    with exercise("kl", "KL of 4 known cases and 500 random pairs") as ex:
        ex.close(kl([.5, .5], [.9, .1]), 0.5108, "KL([.5, .5] ‖ [.9, .1]) should be 0.5108: …")
        ex.expect(kl(p, p) == 0, "KL(p ‖ p) must be 0")

The reader's function may not be written yet (it raises NotImplementedError), may raise something
else, or may return a wrong value: each is reported with the function's name, never raised.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import contextmanager

import numpy as np
import torch

class Wrong(Exception):
    """A checked case came out wrong; the message says what to look at."""


class Exercise:
    def __init__(self, name: str):
        self.name = name

    def expect(self, ok, message: str) -> None:
        if not bool(ok):
            raise Wrong(message)

    def value(self, result, what: str = "it"):
        """The reader's result as a float array, or a clear complaint if there is none."""
        if result is None:
            raise Wrong(f"{self.name} returned None: did you forget the `return`?")
        if torch.is_tensor(result):
            return result.detach().double().cpu().numpy()
        try:
            return np.asarray(result, dtype=float)
        except (TypeError, ValueError):
            raise Wrong(f"{what} should be a number or an array of numbers, not {type(result).__name__}") from None

    def close(self, result, expected, message: str, tol: float = 1e-6) -> None:
        got, want = self.value(result), np.asarray(expected, dtype=float)
        if got.shape != want.shape and got.size != want.size:
            raise Wrong(f"{message} (your result has shape {got.shape}, expected {want.shape})")
        got = got.reshape(want.shape)
        if not np.all(np.isfinite(got)):
            raise Wrong(f"{message} (yours has {'nan' if np.isnan(got).any() else 'inf'} in it)")
        if not np.allclose(got, want, atol=tol, rtol=tol):
            shown = f"{float(got.flat[0]):.4f}" if got.size == 1 else "different values"
            raise Wrong(f"{message} (yours: {shown})")


_LIBRARY = tuple(os.path.abspath(d) + os.sep for d in
                 {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})


def _is_library(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_LIBRARY)


def _reader_frames(err: BaseException):
    """The frames of the traceback that are the reader's code (notebook cells), innermost last."""
    return [f for f in traceback.extract_tb(err.__traceback__) if not _is_library(f.filename)]


def _stub_name(err: BaseException, name: str):
    """The reader's function that raised NotImplementedError itself, or None if a library raised it."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames or _is_library(frames[-1].filename):
        return None
    return frames[-1].name if frames[-1].name not in ("<module>", "<lambda>") and not frames[-1].name.startswith("<") else name


@contextmanager
def exercise(name: str, passed: str):
    """Run the checks in the block; print ✓ `passed` if none failed, else ✗ and why."""
    ex = Exercise(name)
    try:
        yield ex
    except Wrong as w:
        print(f"✗ {name} is not right yet: {w}")
    except NotImplementedError as err:
        stub = _stub_name(err, name)
        if stub is None:
            _report_error(name, err)
        else:
            print(f"✗ {stub} is not written yet: replace `raise NotImplementedError` in its cell with your "
                  f"code, run that cell, then run this check again.")
    except Exception as err:  # the reader's code failed, or what it returned cannot be used: say which
        _report_error(name, err)
    else:
        print(f"✓ {name}: {passed}")


def _report_error(name: str, err: BaseException) -> None:
    frames = traceback.extract_tb(err.__traceback__)
    checks = [i for i, f in enumerate(frames) if os.path.dirname(os.path.abspath(f.filename))
              == os.path.dirname(os.path.abspath(__file__))]
    last_check = checks[-1] if checks else -1
    yours = [f for f in frames[last_check + 1:] if not _is_library(f.filename)]
    if yours:
        where = yours[-1]
        print(f"✗ {name} raised {type(err).__name__}: {err} (in {where.name}, line {where.lineno}: "
              f"{(where.line or '').strip()})")
    else:
        print(f"✗ {name} returned something this check cannot use ({type(err).__name__}: "
              f"{str(err).splitlines()[0] if str(err) else ''}): look at the type and shape of what it returns")
