"""Checkpoints: written atomically, loaded safely, versioned.

A file is a plain dict of tensors, numbers, strings, lists and dicts, so
``torch.load(path, weights_only=True)`` always works and never runs pickled code. Two kinds:

- ``"checkpoint"``: the whole training state (networks, optimizers, RNG states, step, history,
  the recipe and the run, the extras' state); `infogan_lib.train(..., resume=True)`
  continues from it exactly. Schema 1 checkpoints kept one flat ``train_config`` instead of
  ``recipe`` and ``run`` (`from_train_config` reads it) and the anchor at the top level.
- ``"weights"``: networks only (the generator, and optionally the discriminator with its Q head),
  optionally in half precision: for snapshots during training, sharing and viewing.

Every file carries ``schema`` (`SCHEMA`); a file from a newer kit, a file of another kind, a
truncated or corrupt file all raise `CheckpointError` with what to do about it.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
from dataclasses import fields
from pathlib import Path

import torch

from .config import ADAM_BETA2, ConfigError, Recipe, Run
from .latent import LatentSpec
from .models import Discriminator, Generator, ModelConfig
from .moved_copy import MovedCopy

SCHEMA = 2
RESUME_KEYS = ("discriminator", "opt_g", "opt_d", "rng", "step", "elapsed_s", "history")
KINDS = ("checkpoint", "weights")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, incompatible or from a newer kit."""


def atomic_save(obj: dict, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then os.replace.

    A crash or Ctrl-C at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder: give a file name to write.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise CheckpointError(f"cannot write {path} ({err.strerror or err}): choose another place.") from None
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


def weights_sha256(*modules: torch.nn.Module) -> str:
    """One SHA-256 over the modules' weights (names and exact bytes): equal only when every
    tensor is equal bit for bit."""
    h = hashlib.sha256()
    for module in modules:
        for name, value in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_file(path: str | os.PathLike, kind: str | None = None,
              expected_sha256: str | None = None) -> dict:
    """Load and validate a checkpoint or weights file (on the CPU, weights_only=True); a run
    folder stands for its checkpoint.pt."""
    path = Path(path)
    if path.is_dir():
        if not (path / "checkpoint.pt").is_file():
            raise CheckpointError(f"{path} is a folder without a checkpoint.pt: pass a checkpoint or "
                                  "weights file, or a run folder that holds checkpoint.pt.")
        path = path / "checkpoint.pt"
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
    except pickle.UnpicklingError as err:
        if "unsupported global" not in str(err).lower():     # garbage rather than foreign objects
            raise CheckpointError(f"{path} is not a readable checkpoint: it is truncated or corrupt. "
                                  "Delete it and resume from an earlier checkpoint, or train again."
                                  ) from None
        raise CheckpointError(
            f"{path} holds Python objects other than tensors, numbers and strings, which the kit "
            "never writes and does not load (loading them could run code): it was not written by "
            "infogan_lib. Use a checkpoint.pt or a weights file from `python -m infogan_lib`."
        ) from None
    except OSError as err:
        raise CheckpointError(f"{path} cannot be read ({err.strerror or err}): check its permissions "
                              "and the disk.") from None
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}): it is truncated or "
            "corrupt. Delete it and resume from an earlier checkpoint, or train again."
        ) from None
    if not isinstance(obj, dict) or "schema" not in obj or obj.get("kind") not in KINDS:
        raise CheckpointError(f"{path} is not an infogan_lib checkpoint (no schema/kind fields); "
                              "was it written by another program?")
    if not isinstance(obj["schema"], int) or obj["schema"] < 1:
        raise CheckpointError(f"{path} has an invalid schema field ({obj['schema']!r}): it was not "
                              "written by infogan_lib, or it is damaged.")
    if obj["schema"] > SCHEMA:
        raise CheckpointError(
            f"{path} has checkpoint schema {obj['schema']}, newer than this kit's {SCHEMA}: "
            "update infogan_lib (git pull; pip install -e .) to read it."
        )
    if kind is not None and obj["kind"] != kind:
        hint = (" A weights file cannot resume training; start a new run, or pass the run's "
                "checkpoint.pt." if kind == "checkpoint" else "")
        raise CheckpointError(f"{path} holds {obj['kind']!r}, but {kind!r} is needed here.{hint}")
    needed = ("spec", "model_config", "generator") + (RESUME_KEYS if kind == "checkpoint" else ())
    for key in needed:
        if key not in obj:
            raise CheckpointError(f"{path} lacks {key!r}: it is incomplete or from an "
                                  "incompatible version; train again.")
    return obj


def load_state(module: torch.nn.Module, state: dict, what: str, path) -> None:
    """Load float16 or float32 weights into `module`, with a clear error when they do not fit."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"the {what} in {path} is not a set of named tensors: the file is damaged.")
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        detail = detail if len(detail) <= 160 else detail[:detail.rfind(",", 0, 160)] + ", …"
        raise CheckpointError(
            f"the {what} in {path} does not fit the architecture its spec describes ({detail}): "
            "the file is inconsistent; train again."
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
    load_state(G, obj["generator"], "generator", path)
    D = None
    if obj.get("discriminator") is not None:
        D = Discriminator(spec, config)
        load_state(D, obj["discriminator"], "discriminator", path)
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
    src = Path(source) / "checkpoint.pt" if Path(source).is_dir() else Path(source)
    if Path(out).name == "checkpoint.pt" or (Path(out).exists() and Path(out).resolve() == src.resolve()):
        raise CheckpointError(f"export would overwrite {out}: write the weights to another file "
                              "(a run's checkpoint.pt is its whole training state).")
    obj = load_file(source)
    spec, config, G, D = models_from(obj, source)
    extra = {k: obj.get(k) for k in ("step", "elapsed_s", "recipe", "run", "train_config") if k in obj}
    return atomic_save(weights_dict(G, D if with_discriminator else None, half, extra), out)


def to_bytes(obj: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def saved_config(state: dict) -> tuple[Recipe, Run]:
    """The recipe and run stored in a checkpoint (older checkpoints: their flat train_config)."""
    if "recipe" in state:
        return Recipe.from_dict(state["recipe"]), Run.from_dict(state["run"])
    return from_train_config(state["train_config"], state.get("threads"))


def from_train_config(d: dict, threads: int | None = None) -> tuple[Recipe, Run]:
    """(Recipe, Run) of a schema-1 checkpoint's flat ``train_config``; refuses what no longer exists."""
    gone = {"warmup_images": 0, "cont_std": None, "beta2": ADAM_BETA2}
    jitter = d.get("jitter")
    problems = [f"{k}={d[k]!r}" for k, v in gone.items() if d.get(k, v) != v]
    if jitter is not None and jitter != MovedCopy().to_dict():
        problems.append(f"jitter={jitter!r}")
    if problems:
        raise ConfigError(f"this checkpoint was trained with {', '.join(problems)}, which this version "
                          "of the kit no longer offers: its weights still load (load_models, sample, "
                          "evaluate, export), but the run cannot be resumed.")
    moved = "none" if jitter is None else ("all" if d.get("jitter_continuous") else "categorical")
    ortho = d.get("lambda_ortho", 0.0) if d["spec"]["n_continuous"] >= 2 else 0.0   # it had no effect
    recipe = Recipe(spec=d["spec"], model=d["model"], batch_size=d["batch_size"], lr_d=d["lr_d"],
                    lr_g=d["lr_g"], beta1=d["beta1"], lambda_cat=d["lambda_cat"],
                    lambda_cont=d["lambda_cont"], moved_codes=moved,
                    lambda_anchor=d.get("lambda_anchor", 0.0), lambda_ortho=ortho,
                    seed=d["seed"])
    same = {f.name: d[f.name] for f in fields(Run) if f.name in d and f.name != "threads"}
    run = Run(**same, steps=d.get("max_steps"), minutes=d.get("max_minutes"),
              threads=threads or d.get("threads"))
    return recipe, run


def warm_start(G: Generator, D: Discriminator, init, recipe: Recipe) -> None:
    """Copy the weights of init = (G0, D0) into the new run's networks, with a clear error when
    they were built for another latent spec or other widths."""
    for name, new, old in (("generator", G, init[0]), ("discriminator", D, init[1])):
        if getattr(old, "spec", None) != recipe.spec or getattr(old, "config", None) != recipe.model:
            raise ConfigError(
                f"init {name} was built for {getattr(old, 'spec', '?')} with widths "
                f"{getattr(old, 'config', '?')}, but this run's recipe asks for {recipe.spec} with "
                f"{recipe.model}; build the recipe from the init networks (spec=G.spec, "
                "model=G.config) or widen them to the new spec first.")
        new.load_state_dict({k: v.float() for k, v in old.state_dict().items()})
