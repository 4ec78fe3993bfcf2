"""How the grader and a student's kernel pass values: plain data, never objects.

A test cell runs in the grader's own process (grading/executor.py). When it calls a function the
student wrote, the call goes to the student's kernel: the arguments are written with `encode` to a
file, the kernel's agent (`serve`, below) rebuilds them, calls the student's function, and writes
the result back; the grader rebuilds the result with `decode`, as fresh objects of its own classes.
So whatever the student's code returns — a float subclass, a tensor or array subclass, an object
whose ``__eq__`` is always True, a module of another class — the grader only ever compares plain
numbers, tensors and arrays it made itself. What the kernel reports can be false only in the ways
a wrong answer is: its values.

This file is also the kernel side: the grader copies it into the sandbox and the kernel execs it.
It needs only numpy, and torch and infogan_lib once a value is a tensor or a network.

The format is JSON (numpy arrays as base64) when no tensor is involved, so a numpy-only notebook's
kernel never imports torch; otherwise a ``torch.save`` of nested dicts, lists, numbers, strings and
tensors, read with ``torch.load(weights_only=True)``, which refuses to run pickled code. Tensors that share
memory still share it after the trip (so a widened network that shares weights with the original
is seen to). Modules travel as their class name, spec, config, mode and state dict; only the
classes `_classes()` names (infogan_lib's networks and their specs) are rebuilt, anything else arrives as an `Opaque` that fails every check.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import sys

import numpy as np

MAX_BYTES = 64 * 2**20          # a reply larger than this is refused (a memory bomb by return value)


def _torch():
    """torch if this process has imported it (a value cannot be a tensor otherwise): the kernel of
    a numpy-only notebook never pays for importing torch."""
    return sys.modules.get("torch")


def _classes():
    from infogan_lib.latent import LatentSpec
    from infogan_lib.models import Discriminator, Generator, ModelConfig
    return {"LatentSpec": LatentSpec, "ModelConfig": ModelConfig}, \
        {"Generator": Generator, "Discriminator": Discriminator}


class Opaque:
    """What arrives in place of a value the wire cannot carry: it equals nothing, has no number."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self):
        return f"<{self.what}, which the grader cannot check>"

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__


def encode(value, depth: int = 0):
    """value → plain data (see the module docstring). Strict about types: subclasses of numbers,
    arrays and tensors are reduced to the base type's data, by the base type's own methods."""
    if depth > 20:
        return {"__opaque__": "a value nested too deeply"}
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, int) and not isinstance(value, np.generic):
        return int.__index__(value) if type(value) is int else {"__int__": int.__index__(value)}
    if isinstance(value, float):
        return float.__float__(value) if type(value) is float else {"__float__": float.__float__(value)}
    if isinstance(value, np.generic):
        return {"__npscalar__": np.asarray(value).astype(value.dtype).tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.ndarray):
        base = np.ndarray.view(value, np.ndarray)
        if base.dtype == object:
            return {"__opaque__": "an array of Python objects"}
        return {"__ndarray__": np.array(base, copy=True), "dtype": str(base.dtype)}
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        plain = torch.Tensor._make_subclass(torch.Tensor, value.detach(), False) \
            if type(value) not in (torch.Tensor, torch.nn.Parameter) else value.detach()
        return {"__tensor__": plain, "requires_grad": bool(value.requires_grad),
                "parameter": isinstance(value, torch.nn.Parameter)}
    if torch is not None and isinstance(value, torch.nn.Module):
        name = type(value).__name__
        if type(value) not in _classes()[1].values():
            return {"__opaque__": f"a {name} (not a network class of infogan_lib)"}
        return {"__module__": name, "spec": encode(value.spec, depth + 1),
                "config": encode(value.config, depth + 1), "training": bool(value.training),
                "state": {k: v.detach() for k, v in value.state_dict(keep_vars=True).items()}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if type(value) not in _classes()[0].values():
            return {"__opaque__": f"a {name}"}
        return {"__dataclass__": name,
                "fields": {f.name: encode(getattr(value, f.name), depth + 1)
                           for f in dataclasses.fields(value)}}
    if isinstance(value, (list, tuple)):
        items = [encode(v, depth + 1) for v in list.__iter__(value)] if isinstance(value, list) \
            else [encode(v, depth + 1) for v in tuple.__iter__(value)]
        return {"__list__" if isinstance(value, list) else "__tuple__": items}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    return {"__opaque__": f"a {type(value).__name__}"}


def decode(data):
    """plain data → fresh objects of this process's own classes."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if not isinstance(data, dict):
        return Opaque(f"a {type(data).__name__}")
    if "__int__" in data:
        return int(data["__int__"])
    if "__float__" in data:
        return float(data["__float__"])
    if "__npscalar__" in data:
        return np.asarray(data["__npscalar__"], dtype=np.dtype(data["dtype"]))[()]
    if "__ndarray__" in data:
        arr = data["__ndarray__"]
        arr = arr if isinstance(arr, np.ndarray) else arr.numpy()
        return arr.astype(np.dtype(data["dtype"]), copy=False)
    if "__tensor__" in data:
        import torch
        t = data["__tensor__"]
        if data.get("parameter"):
            return torch.nn.Parameter(t, requires_grad=bool(data.get("requires_grad")))
        return t.requires_grad_(True) if data.get("requires_grad") and t.is_floating_point() else t
    if "__list__" in data:
        return [decode(v) for v in data["__list__"]]
    if "__tuple__" in data:
        return tuple(decode(v) for v in data["__tuple__"])
    if "__dict__" in data:
        return {decode(k): decode(v) for k, v in data["__dict__"]}
    if "__dataclass__" in data:
        cls = _classes()[0].get(data["__dataclass__"])
        if cls is None:
            return Opaque(f"a {data['__dataclass__']}")
        return cls(**{k: decode(v) for k, v in data["fields"].items()})
    if "__module__" in data:
        cls = _classes()[1].get(data["__module__"])
        if cls is None:
            return Opaque(f"a {data['__module__']}")
        module = cls(decode(data["spec"]), decode(data["config"]))
        state = data["state"]
        module.load_state_dict(state, strict=True)          # wrong keys or shapes: an error
        for name, tensor in module.state_dict(keep_vars=True).items():
            tensor.data = state[name]                       # keep the memory shared as it was
        return module.train(bool(data["training"]))
    if "__opaque__" in data:
        return Opaque(str(data["__opaque__"]))
    return Opaque("an unknown value")


def _has_tensor(tree) -> bool:
    torch = _torch()
    if torch is None:
        return False
    if isinstance(tree, torch.Tensor):
        return True
    if isinstance(tree, dict):
        return any(_has_tensor(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return any(_has_tensor(v) for v in tree)
    return False


def _arrays(tree, to_tensor: bool):
    """numpy arrays in an encoded tree → tensors (for torch.save) or base64 text (for JSON)."""
    if isinstance(tree, np.ndarray):
        if to_tensor:
            return _torch().from_numpy(tree)
        return {"b64": base64.b64encode(tree.tobytes()).decode(), "dtype": str(tree.dtype), "shape": list(tree.shape)}
    if isinstance(tree, dict):
        return {k: _arrays(v, to_tensor) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_arrays(v, to_tensor) for v in tree]
    return tree


def _revive(tree):
    if isinstance(tree, dict):
        if set(tree) == {"b64", "dtype", "shape"}:
            dtype = np.dtype(tree["dtype"])
            if dtype.hasobject:
                raise ValueError("an array of objects")
            return np.frombuffer(base64.b64decode(tree["b64"]), dtype=dtype).reshape(tree["shape"]).copy()
        return {k: _revive(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_revive(v) for v in tree]
    return tree


def dumps(obj) -> bytes:
    """Plain JSON when there is no tensor (numpy arrays as base64), else torch.save."""
    if not _has_tensor(obj):
        return b"JSON\n" + json.dumps(_arrays(obj, False)).encode()
    buf = io.BytesIO()
    _torch().save(_arrays(obj, True), buf)
    return buf.getvalue()


def loads(raw: bytes):
    if len(raw) > MAX_BYTES:
        raise ValueError(f"a reply of {len(raw) / 2**20:.0f} MB (more than {MAX_BYTES // 2**20} MB)")
    if raw.startswith(b"JSON\n"):
        return _revive(json.loads(raw[5:].decode()))
    import torch
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)


def _leaves(value, out):
    """Tensors inside an argument that ask for gradients (the test calls .backward() later)."""
    torch = _torch()
    if torch is not None and isinstance(value, torch.Tensor):
        if value.requires_grad and value.is_leaf:
            out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _leaves(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _leaves(v, out)
    return out


def serve(name: str, request: str, reply: str, namespace: dict) -> None:
    """Kernel side of one call: read the arguments, call namespace[name], write the reply."""
    args, kwargs = decode(loads(open(request, "rb").read()))
    leaves = _leaves([args, kwargs], [])
    out = {"args": None, "result": None, "grads": None, "error": None}
    try:
        result = namespace[name](*args, **kwargs)
        grads = None
        torch = _torch()
        if leaves and isinstance(result, torch.Tensor) and result.requires_grad:
            # d(sum of the result)/d(each argument tensor): what .sum().backward() would give
            grads = torch.autograd.grad(result.sum(), leaves, allow_unused=True)
            grads = [None if g is None else g.detach() for g in grads]
        out.update(args=encode([args, kwargs]), result=encode(result),
                   grads=None if grads is None else [encode(g) for g in grads])
    except BaseException as err:  # noqa: BLE001 - the student's error goes to the grader
        if isinstance(err, KeyboardInterrupt):
            raise
        message = ""
        try:
            message = str(err)[:2000]
        except Exception:  # noqa: BLE001
            pass
        out["error"] = [type(err).__name__ if isinstance(type(err).__name__, str) else "Error", message]
    raw = dumps(out)
    tmp = reply + ".part"
    with open(tmp, "wb") as f:
        f.write(raw)
    os.replace(tmp, reply)


def replay(value, grads, leaves):
    """The student's result inside the grader's autograd graph: its backward gives the gradients
    the kernel computed, for the one kind of backward the tests use (of a sum, or of a scalar)."""
    import torch

    class Replay(torch.autograd.Function):
        @staticmethod
        def forward(ctx, value, *leaves):
            return value.clone()

        @staticmethod
        def backward(ctx, grad_output):
            flat = grad_output.reshape(-1)
            if flat.numel() and not bool(torch.all(flat == flat[0])):
                raise RuntimeError("the grader replays only the gradient of a sum of this result")
            scale = flat[0] if flat.numel() else 0.0
            return (None, *[None if g is None else g * scale for g in grads])

    return Replay.apply(value, *leaves)
