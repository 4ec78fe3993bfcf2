"""Checkpoints: written atomically, loaded safely, versioned.

A file is a plain dict of tensors, numbers, strings, lists and dicts, so
``torch.load(path, weights_only=True)`` always works and never runs pickled code. Two kinds:

- ``"checkpoint"``: the whole training state (networks, optimizers, RNG states, step, history,
  spec and configs); `infogan_lib.train.train(..., resume=True)` continues from it exactly.
- ``"weights"``: networks only (the generator, and optionally the discriminator with its Q head),
  optionally in half precision: for snapshots during training, sharing and viewing.

Every file carries ``schema`` (`SCHEMA`); a file from a newer kit, a file of another kind, a
truncated or corrupt file all raise `CheckpointError` with what to do about it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import torch

from .latent import LatentSpec
from .models import Discriminator, Generator, ModelConfig

SCHEMA = 1
KINDS = ("checkpoint", "weights")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, incompatible or from a newer kit."""


def atomic_save(obj: dict, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then os.replace.

    A crash or Ctrl-C at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress_oserror():
            os.unlink(tmp)
        raise
    with _suppress_oserror():  # make the rename itself durable (not possible on Windows)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _suppress_oserror:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, OSError)


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_file(path: str | os.PathLike, kind: str | None = None,
              expected_sha256: str | None = None) -> dict:
    """Load and validate a checkpoint or weights file (on the CPU, weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: check the path (train one with "
                              "`python -m infogan_lib train`).")
    if expected_sha256 is not None:
        actual = sha256(path)
        if actual != expected_sha256:
            raise CheckpointError(
                f"{path} does not match its recorded SHA-256 (expected {expected_sha256[:12]}…, "
                f"got {actual[:12]}…): the file is damaged or was replaced. Restore it with "
                f"`git checkout -- {path}` or retrain it with the command recorded beside it."
            )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else 'no details'}). It is truncated or "
            "corrupt; delete it and resume from an earlier checkpoint or train again."
        ) from None
    if not isinstance(obj, dict) or "schema" not in obj or obj.get("kind") not in KINDS:
        raise CheckpointError(f"{path} is not an infogan_lib checkpoint (no schema/kind fields); "
                              "was it written by another program?")
    if int(obj["schema"]) > SCHEMA:
        raise CheckpointError(
            f"{path} has checkpoint schema {obj['schema']}, newer than this kit's {SCHEMA}: "
            "update infogan_lib (git pull; pip install -e .) to read it."
        )
    if kind is not None and obj["kind"] != kind:
        hint = (" A weights file cannot resume training; start a new run, or pass the run's "
                "checkpoint.pt." if kind == "checkpoint" else "")
        raise CheckpointError(f"{path} holds {obj['kind']!r}, but {kind!r} is needed here.{hint}")
    for key in ("spec", "model_config", "generator"):
        if key not in obj:
            raise CheckpointError(f"{path} lacks {key!r}: it is incomplete or from an "
                                  "incompatible version; train again.")
    return obj


def _load_state(module: torch.nn.Module, state: dict, what: str, path) -> None:
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"the {what} in {path} does not fit the architecture its spec describes "
            f"({str(err).splitlines()[0]}): the file is inconsistent; train again."
        ) from None


def models_from(obj: dict, path="<checkpoint>", device="cpu"
                ) -> tuple[LatentSpec, ModelConfig, Generator, Discriminator | None]:
    """Rebuild the networks stored in a loaded file, in eval mode, on `device`."""
    try:
        spec = LatentSpec.from_dict(obj["spec"])
        config = ModelConfig.from_dict(obj["model_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has an invalid spec or model config ({err}).") from None
    G = Generator(spec, config)
    _load_state(G, obj["generator"], "generator", path)
    D = None
    if obj.get("discriminator") is not None:
        D = Discriminator(spec, config)
        _load_state(D, obj["discriminator"], "discriminator", path)
        D = D.to(device).eval()
    return spec, config, G.to(device).eval(), D


def load_models(path: str | os.PathLike, device="cpu", expected_sha256: str | None = None):
    """(spec, model_config, G, D or None) from a checkpoint or a weights file, in eval mode."""
    obj = load_file(path, expected_sha256=expected_sha256)
    return models_from(obj, path, device)


def weights_dict(G: Generator, D: Discriminator | None = None, half: bool = False,
                 extra: dict | None = None) -> dict:
    def state(m):
        sd = {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
        return {k: (v.half() if half and v.is_floating_point() else v) for k, v in sd.items()}

    return {
        "schema": SCHEMA,
        "kind": "weights",
        "spec": G.spec.to_dict(),
        "model_config": G.config.to_dict(),
        "generator": state(G),
        "discriminator": state(D) if D is not None else None,
        "half": half,
        **(extra or {}),
    }


def export_weights(source: str | os.PathLike, out: str | os.PathLike, half: bool = False,
                   with_discriminator: bool = True) -> Path:
    """Write the networks of a checkpoint as a small weights file (optionally float16)."""
    obj = load_file(source)
    spec, config, G, D = models_from(obj, source)
    extra = {"step": obj.get("step"), "elapsed_s": obj.get("elapsed_s"),
             "train_config": obj.get("train_config")}
    return atomic_save(weights_dict(G, D if with_discriminator else None, half, extra), out)


def to_bytes(obj: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
