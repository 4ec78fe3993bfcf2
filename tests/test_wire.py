"""The grader's wire (grading/wire.py): what a student's function returns reaches the tests only as
plain values of the grader's own types, whatever class the student's code gave it, and a message
that breaks a cap or is malformed in any way is refused before it costs memory."""

from __future__ import annotations

import json
import math
import random
import struct
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the grading package
from grading import wire  # noqa: E402
from infogan_lib.latent import LatentSpec  # noqa: E402
from infogan_lib.models import Discriminator, Generator, ModelConfig  # noqa: E402

SPEC, CONFIG = LatentSpec(8, (3,), 2), ModelConfig(4, 4, 16, 8)


def trip(value, allowed=wire.Allowed()):
    return wire.loads(wire.dumps(value), allowed)


def message(header, buffers=(), meta=None) -> bytes:
    """A hand-made message, as a hostile kernel could send."""
    head = json.dumps(header).encode()
    sizes = json.dumps(meta if meta is not None else [len(b) for b in buffers]).encode()
    return b"".join([wire.MAGIC, struct.pack("<II", len(head), len(sizes)), head, sizes, *buffers])


class AlwaysEqual(float):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return AlwaysEqual(0.0)

    def __float__(self):
        return 0.0

    __hash__ = float.__hash__


class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.allclose:
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def test_a_float_subclass_arrives_as_the_plain_float_it_holds():
    got = trip(AlwaysEqual(123.0))
    assert type(got) is float and got == 123.0 and not got == 1.0


def test_a_tensor_subclass_arrives_as_a_plain_tensor_with_its_values():
    got = trip(torch.zeros(3).as_subclass(Agreeable))
    assert type(got) is torch.Tensor and not torch.allclose(got, torch.ones(3))


def test_an_object_that_equals_everything_arrives_as_something_that_equals_nothing():
    class Yes:
        def __eq__(self, other):
            return True
    got = trip(Yes())
    assert isinstance(got, wire.Opaque) and got != got and not (got == 0)
    with pytest.raises(TypeError):
        float(got)


def test_arrays_numbers_and_containers_keep_their_values_and_types():
    value = {"a": [np.arange(6, dtype=np.int32).reshape(2, 3), (1, 2.5, None, "s")],
             "b": np.float64(math.pi), "c": np.array([np.nan, np.inf]), "d": torch.tensor([1.5], dtype=torch.bfloat16)}
    got = trip(value)
    assert got["a"][0].dtype == np.int32 and np.array_equal(got["a"][0], value["a"][0])
    assert got["a"][1] == (1, 2.5, None, "s") and got["b"] == np.float64(math.pi)
    assert np.isnan(got["c"][0]) and np.isinf(got["c"][1])
    assert got["d"].dtype == torch.bfloat16 and float(got["d"]) == 1.5


def test_a_numpy_only_message_is_read_without_torch():
    import subprocess
    code = ("import sys, numpy as np; sys.path.insert(0, '.'); from grading import wire; "
            "v = wire.loads(wire.dumps({'x': np.ones(3), 'y': [1, 2.0]})); "
            "assert 'torch' not in sys.modules and float(v['x'].sum()) == 3.0; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_network_is_rebuilt_as_the_graders_class_and_shared_weights_stay_shared():
    g = Generator(SPEC, CONFIG).eval()
    alias = Generator(SPEC, CONFIG)
    alias.fc[0].weight = g.fc[0].weight                  # shares a tensor with g
    got_g, got_alias = trip([g, alias], wire.Allowed(((SPEC, CONFIG),)))
    assert type(got_g) is Generator and not got_g.training and got_g.spec == SPEC
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), got_g.state_dict().values()))
    with torch.no_grad():
        got_alias.fc[0].weight.add_(1.0)
    assert torch.equal(got_g.fc[0].weight, got_alias.fc[0].weight), "the sharing must survive the trip"


def test_a_network_is_allowed_only_at_the_spec_and_widths_of_the_calls_arguments():
    wider = SPEC.with_continuous("gaussian")
    allowed = wire.Allowed.from_arguments([[Generator(SPEC, CONFIG), wider], {}])
    assert trip(Generator(wider, CONFIG), allowed).spec == wider          # the widened network: fine
    for spec, config in [(SPEC.with_continuous().with_continuous(), CONFIG),       # a spec not asked for
                         (wider, ModelConfig(4, 4, 4096, 8))]:                    # wider layers
        with pytest.raises(wire.WireError, match="does not allow"):
            trip(Generator(spec, config), allowed)
    with pytest.raises(wire.WireError, match="does not allow"):
        trip(Discriminator(SPEC, CONFIG))                                  # a call with no network in


def test_a_network_whose_declared_weights_differ_from_its_architecture_is_refused_before_allocation():
    allowed = wire.Allowed(((SPEC, CONFIG),))
    raw = wire.dumps(Generator(SPEC, CONFIG))
    n_head, n_meta = struct.unpack("<II", raw[4:12])
    header = json.loads(raw[12:12 + n_head])
    sizes = json.loads(raw[12 + n_head:12 + n_head + n_meta])
    buffers, at = [], 12 + n_head + n_meta
    for size in sizes:
        buffers.append(raw[at:at + size])
        at += size
    key = next(k for k in header["state"] if k.endswith("weight"))
    huge = dict(header, state=dict(header["state"], **{key: dict(header["state"][key], shape=[4096, 4096])}))
    with pytest.raises(wire.WireError):
        wire.loads(message(huge, buffers), allowed)
    missing = dict(header, state={k: v for k, v in header["state"].items() if k != key})
    with pytest.raises(wire.WireError, match="not those of its architecture"):
        wire.loads(message(missing, buffers), allowed)


def test_a_module_of_another_class_fails_every_check():
    got = trip(torch.nn.Linear(2, 2))
    assert isinstance(got, wire.Opaque) and not isinstance(got, torch.nn.Module)


@pytest.mark.parametrize("header, buffers, why", [
    ({"array": 0, "dtype": "float64", "shape": [10**6, 10**6]}, [b""], "malformed shape|numbers"),
    ({"array": 0, "dtype": "float64", "shape": [4]}, [b"\0" * 8], "does not match"),
    ({"array": 0, "dtype": "object", "shape": [1]}, [b"\0" * 8], "dtype"),
    ({"tensor": 0, "dtype": "complex128", "shape": [1]}, [b"\0" * 16], "dtype"),
    ({"tensor": 5, "dtype": "float32", "shape": [1]}, [b"\0" * 4], "does not exist"),
    ({"array": 0, "dtype": "float32", "shape": [1] * 20}, [b"\0" * 4], "malformed shape"),
    ({"int": "9" * 30}, [], "integer"),
    ({"int": str(2**70)}, [], "out of range"),
    ({"list": [{"list": []}] * 10}, [], None),
    ({"dict": [[{"list": []}, 1]]}, [], "plain value"),
    ({"dataclass": "LatentSpec", "fields": {"noise_dim": {"int": "-5"}}}, [], "does not validate"),
    ({"module": "Generator", "spec": None, "config": None, "state": {}}, [], "does not allow"),
    ({"what": 1}, [], "unknown kind"),
])
def test_hostile_messages_are_refused_with_a_reason(header, buffers, why):
    if why is None:
        assert wire.loads(message(header, buffers)) == [[]] * 10
        return
    with pytest.raises(wire.WireError, match=why):
        wire.loads(message(header, buffers))


def test_deep_nesting_and_too_many_values_are_refused():
    deep = {"list": []}
    for _ in range(200):
        deep = {"list": [deep]}
    with pytest.raises(wire.WireError, match="deep"):
        wire.loads(message(deep))
    wide = {"list": [None] * (wire.CAPS.max_nodes + 1)}
    with pytest.raises(wire.WireError, match="values"):
        wire.loads(message(wide))


def test_sizes_that_do_not_add_up_and_oversized_messages_are_refused():
    with pytest.raises(wire.WireError, match="add up"):
        wire.loads(message(None, [b"abc"], meta=[10**9]))
    with pytest.raises(wire.WireError, match="MB"):
        wire.loads(b"IGW1" + b" " * wire.CAPS.max_bytes)
    with pytest.raises(wire.WireError, match="format"):
        wire.loads(b"\x80\x04pickle")
    too_many = np.zeros(wire.CAPS.max_elements + 1, dtype=np.uint8)
    with pytest.raises(wire.WireError, match="numbers"):
        wire.loads(wire.dumps(too_many))


def test_random_and_mutated_messages_never_crash_the_decoder_or_allocate_much():
    """A fuzzer: random bytes, and real messages with bytes flipped, cut or repeated (1,200 of them). Every one is
    either decoded or refused with WireError; none allocates more than a few MB."""
    rng = random.Random(0)
    good = [wire.dumps(v) for v in (np.arange(12.0).reshape(3, 4), [1, "a", None, {"k": 2.5}],
                                    torch.ones(2, 3), Generator(SPEC, CONFIG))]
    allowed = wire.Allowed(((SPEC, CONFIG),))
    tracemalloc.start()
    try:
        for trial in range(1200):
            base = bytearray(rng.choice(good))
            kind = trial % 4
            if kind == 0:
                data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
                if rng.random() < 0.5:
                    data = wire.MAGIC + data
            elif kind == 1:
                for _ in range(rng.randint(1, 8)):
                    base[rng.randrange(len(base))] = rng.getrandbits(8)
                data = bytes(base)
            elif kind == 2:
                data = bytes(base[: rng.randrange(len(base))])
            else:
                cut = rng.randrange(12, min(len(base), 400))
                data = bytes(base[:cut] + base[cut:cut + 50] * rng.randint(1, 40) + base[cut:])
            try:
                wire.loads(data, allowed)
            except wire.WireError:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"the decoder allocated {peak / 2**20:.0f} MB on a fuzzed message"


def test_replayed_gradients_are_those_of_a_sum_and_nothing_else():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = wire.replay(torch.tensor([1.0, 4.0]), [torch.tensor([2.0, 4.0])], [x])
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([2.0, 4.0]))
    z = wire.replay(torch.tensor([1.0, 4.0]), [torch.tensor([2.0, 4.0])], [x])
    with pytest.raises(RuntimeError, match="sum"):
        (z * torch.tensor([1.0, 3.0])).sum().backward()
