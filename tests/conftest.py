"""Shared fixtures. Tests use at most 2 threads (the course's reference machine has 2 cores)."""

import os
import threading

import pytest
import torch

from dataclasses import fields

from grading.run_nbgrader import skip_iri_parsers
from infogan_lib import LatentSpec, ModelConfig, Recipe, Run

skip_iri_parsers()          # 3 s of CPU when nbformat is imported (grading/run_nbgrader.py says why)

torch.set_num_threads(min(2, torch.get_num_threads()))

TINY_MODEL = ModelConfig(g_channels=8, d_channels=8, fc=64, q_hidden=16)
TINY_SPEC = LatentSpec(noise_dim=8)


@pytest.fixture
def tiny_config(tmp_path):
    """A few-second training run on the synthetic data set: (Recipe, Run), for train(*...)."""
    def make(**overrides):
        base = dict(dataset="synthetic", out_dir=str(tmp_path / "run"), spec=TINY_SPEC,
                    model=TINY_MODEL, batch_size=32, steps=20, fast=False,
                    threads=1, progress=False, figures=False, seed=0)
        base.update(overrides)
        recipe_fields = {f.name for f in fields(Recipe)}
        return (Recipe(**{k: v for k, v in base.items() if k in recipe_fields}),
                Run(**{k: v for k, v in base.items() if k not in recipe_fields}))
    return make


def mnist_available() -> bool:
    from infogan_lib.data import resolve_data_dir
    raw = resolve_data_dir() / "MNIST" / "raw"
    return (raw / "t10k-images-idx3-ubyte.gz").exists() or (raw / "t10k-images-idx3-ubyte").exists()


requires_mnist = pytest.mark.skipif(
    not mnist_available() and not os.environ.get("CI"),
    reason="MNIST is not in the data folder: set INFOGAN_DATA=/path/to/data (see README)")



# ---- one class graded once, for test_grading.py, test_sandbox.py and test_formgrader.py ----------
# It is graded in a thread of its own from the first test on, while the other tests run; the tests
# that need it run last. (shared_class.py needs the instructor version: imported only when used.)

class Background:
    """`fn(*args)` in a thread of its own, started now; `result()` waits for it."""

    def __init__(self, fn, *args):
        self._out, self._error = None, None
        self._thread = threading.Thread(target=self._run, args=(fn, *args), daemon=True)
        self._thread.start()

    def _run(self, fn, *args):
        try:
            self._out = fn(*args)
        except BaseException as err:  # noqa: BLE001 - raised again in the test that waits for it
            self._error = err

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._out


def _uses_the_class(item) -> bool:
    return "graded_class" in getattr(item, "fixturenames", ())


def _uses_a_browser(item) -> bool:
    return "browser" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    # stable: the others first, in their order; then the browser tests, which wait for the class's
    # grading to end (a front end starved of CPU by a class of sandboxed kernels, fork bombs among
    # them, tests the machine rather than the kit); then the tests that read the graded class
    items.sort(key=lambda item: 2 if _uses_the_class(item) else 1 if _uses_a_browser(item) else 0)


@pytest.fixture(scope="session")
def browser_listener():
    """Sockets on the host's loopback that the formgrader attack's scripts aim at."""
    from shared_class import Listener
    return Listener()


@pytest.fixture(scope="session")
def grading_in_background(tmp_path_factory, browser_listener):
    """tests/shared_class.py's grade_everything, started now in a thread of its own."""
    from shared_class import Listener, grade_everything, stop_grading
    job = Background(grade_everything, tmp_path_factory.mktemp("class"), Listener(), browser_listener.port,
                     Listener())
    yield job
    stop_grading()


@pytest.fixture(scope="session", autouse=True)
def _grading_starts_with_the_session(request):
    if any(_uses_the_class(item) for item in request.session.items):
        from shared_class import wanted
        if wanted():
            request.getfixturevalue("grading_in_background")


@pytest.fixture(scope="session")
def quiet_machine(request):
    """Waits until the class graded in the background (if any) is done; its errors are raised in
    the tests that read the class, not here."""
    if any(_uses_the_class(item) for item in request.session.items):
        from shared_class import wanted
        if wanted():
            try:
                request.getfixturevalue("grading_in_background").result()
            except BaseException:  # noqa: BLE001
                pass


@pytest.fixture(scope="session")
def graded_class(request):
    """The fake class, the attack corpus and the formgrader attack graded as one class, and the
    steps after it (tests/shared_class.py)."""
    from shared_class import needs_bubblewrap
    needs_bubblewrap()
    return request.getfixturevalue("grading_in_background").result()
