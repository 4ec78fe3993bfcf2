"""The grader's wire (grading/wire.py): what a student's function returns reaches the tests only as
plain values of the grader's own types, whatever class the student's code gave it."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the grading package
from grading import wire  # noqa: E402
from infogan_lib.latent import LatentSpec  # noqa: E402
from infogan_lib.models import Generator, ModelConfig  # noqa: E402


def trip(value):
    return wire.decode(wire.loads(wire.dumps(wire.encode(value))))


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
             "b": np.float64(math.pi), "c": np.array([np.nan, np.inf])}
    raw = wire.dumps(wire.encode(value))
    assert raw.startswith(b"JSON")                       # no tensor: no torch needed to read it
    got = wire.decode(wire.loads(raw))
    assert got["a"][0].dtype == np.int32 and np.array_equal(got["a"][0], value["a"][0])
    assert got["a"][1] == (1, 2.5, None, "s") and got["b"] == np.float64(math.pi)
    assert np.isnan(got["c"][0]) and np.isinf(got["c"][1])


def test_a_network_is_rebuilt_as_the_graders_class_and_shared_weights_stay_shared():
    spec, config = LatentSpec(8, (3,), 2), ModelConfig(4, 4, 16, 8)
    g = Generator(spec, config).eval()
    alias = Generator(spec, config)
    alias.fc[0].weight = g.fc[0].weight                  # shares a tensor with g
    got_g, got_alias = trip([g, alias])
    assert type(got_g) is Generator and not got_g.training and got_g.spec == spec
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), got_g.state_dict().values()))
    with torch.no_grad():
        got_alias.fc[0].weight.add_(1.0)
    assert torch.equal(got_g.fc[0].weight, got_alias.fc[0].weight), "the sharing must survive the trip"


def test_a_module_of_another_class_fails_every_check():
    got = trip(torch.nn.Linear(2, 2))
    assert isinstance(got, wire.Opaque) and not isinstance(got, torch.nn.Module)


def test_an_oversized_reply_is_refused():
    with pytest.raises(ValueError, match="MB"):
        wire.loads(b"JSON\n" + b" " * (wire.MAX_BYTES + 1))


def test_replayed_gradients_are_those_of_a_sum_and_nothing_else():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = wire.replay(torch.tensor([1.0, 4.0]), [torch.tensor([2.0, 4.0])], [x])
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([2.0, 4.0]))
    z = wire.replay(torch.tensor([1.0, 4.0]), [torch.tensor([2.0, 4.0])], [x])
    with pytest.raises(RuntimeError, match="sum"):
        (z * torch.tensor([1.0, 3.0])).sum().backward()
