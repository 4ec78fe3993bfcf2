"""What a training run is: a `Recipe` (everything that changes the maths) and a `Run` (where the data
comes from, where results go, how long, on what).

    recipe = Recipe(lambda_cont=0.4, seed=3)             # the defaults are the course's CPU recipe
    run = Run(dataset="mnist", out_dir="runs/mine", steps=3000)
    train(recipe, run)

Two runs with the same recipe on the same device and thread count give the same weights, whatever
their budgets, folders or logging. Each field's help text is in its metadata: the command line is
generated from it (`add_options`), so a new field needs no hand mapping.

The default recipe (chosen on the validation split, benchmarks/sweep.py) differs from the paper's
in three measured ways: quarter-width networks (6× the CPU throughput), Adam learning rates 5e-4
(D) / 2e-3 (G) instead of 2e-4 / 1e-3, and Q reading the categorical code from a moved copy of each
generated image (`moved_copy.py`), which stops most seeds from sorting digits by style.
`Recipe.paper()` is the paper's.
"""

from __future__ import annotations

import argparse
import logging
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace

from .latent import LatentSpec
from .models import ModelConfig
from .moved_copy import CODES
from .runtime import env_flag

FAST_STEPS = 30            # the short-run cap of `Run.fast` (INFOGAN_FAST=1): notebooks under test
FAST_ENV = "INFOGAN_FAST"
DEFAULT_MINUTES = 10.0     # the budget of a run that names none
ADAM_BETA2 = 0.999
DATASETS = ("mnist", "fashion-mnist", "synthetic")
log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A training configuration that cannot work."""


def option(default, help: str, **cli):
    """A field with its help text, which becomes its command-line option's help (`add_options`);
    `cli` holds argparse extras: choices, metavar, or cli=False for a field with no option."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True)
class Recipe:
    """What changes the maths. The defaults are the course's CPU recipe."""

    spec: LatentSpec = option(LatentSpec(), "the noise z and the codes c")
    model: ModelConfig = option(ModelConfig(), "network widths")
    batch_size: int = option(64, "images (and latents) per step")
    lr_d: float = option(5e-4, "Adam learning rate of D, its trunk and the Q head (paper: 2e-4)")
    lr_g: float = option(2e-3, "Adam learning rate of G (paper: 1e-3)")
    beta1: float = option(0.5, "Adam momentum β1 of both optimizers (β2 is 0.999)")
    lambda_cat: float = option(1.0, "λ of the categorical codes' information term")
    lambda_cont: float = option(0.1, "λ of the continuous codes' information term")
    moved_codes: str = option("categorical", "which codes Q reads from a randomly moved copy of "
                              "each image (moved_copy.py): none (the paper), categorical, all",
                              choices=CODES)
    lambda_anchor: float = option(0.0, "weight of the anchor that keeps a widened model's old codes "
                                  "(anchor.py; needs the old model's D)", cli=False)
    lambda_ortho: float = option(0.0, "weight of the penalty on overlapping image changes of two "
                                 "continuous codes (overlap.py; 0 = off)")
    seed: int = option(0, "fixes initialization, batch order, latents and moves")

    @classmethod
    def paper(cls, **changes) -> "Recipe":
        """The paper's recipe: its widths, Adam 2e-4 / 1e-3, Q reads G(z, c) itself."""
        return cls(**{"model": ModelConfig.paper(), "lr_d": 2e-4, "lr_g": 1e-3,
                      "moved_codes": "none", **changes})

    def __post_init__(self):
        if isinstance(self.spec, dict):
            object.__setattr__(self, "spec", LatentSpec.from_dict(self.spec))
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        problems = _check(self, positive=("batch_size", "lr_d", "lr_g"),
                          non_negative=("lambda_cat", "lambda_cont", "lambda_anchor", "lambda_ortho"))
        if not 0 <= self.beta1 < 1:
            problems.append(f"beta1 must be in [0, 1), got {self.beta1}")
        if self.batch_size == 1:
            problems.append("batch_size must be ≥ 2 (batch norm needs two images to normalize)")
        if not 0 <= self.seed < 2**32:
            problems.append(f"seed must be in [0, 2^32), got {self.seed}")
        widths = self.model.to_dict()
        problems += [f"{k} must be ≥ 1, got {v}" for k, v in widths.items() if not v >= 1]
        if self.moved_codes not in CODES:
            problems.append(f"moved_codes must be one of {', '.join(CODES)}, got {self.moved_codes!r}")
        _raise(problems, "recipe")

    def to_dict(self) -> dict:
        return {**asdict(self), "spec": self.spec.to_dict(), "model": self.model.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return cls(**d)


@dataclass(frozen=True)
class Run:
    """Which data, where results go, how long, on what. Besides the data set, only the device and the
    thread count change the weights that a given number of steps produces (float rounding)."""

    dataset: str = option("mnist", "training data", choices=DATASETS)
    data_dir: str | None = option(None, "folder holding MNIST/ and FashionMNIST/ in torchvision's "
                                  "layout (default: $INFOGAN_DATA, else ~/.cache/infogan-course/data)",
                                  metavar="DIR")
    out_dir: str | None = option(None, "run folder for checkpoint.pt, figures/ and snapshots/ "
                                 "(default: runs/<dataset>)", metavar="DIR")
    steps: int | None = option(None, "stop after this many optimizer steps")
    epochs: float | None = option(None, "stop after this many passes over the data")
    minutes: float | None = option(None, "stop after this many minutes of training (0: no time "
                                   f"limit; with no budget at all: {DEFAULT_MINUTES:g})")
    fast: bool = field(default_factory=lambda: env_flag(FAST_ENV), metadata={
        "help": f"short run for demos and tests: at most {FAST_STEPS} steps (also: {FAST_ENV}=1)"})
    threads: int | None = option(None, "CPU threads (default: half the cores, see runtime.py)")
    device: str = option("auto", "auto (CUDA, then Apple MPS, then CPU), cpu, cuda or mps",
                         metavar="NAME")
    checkpoint_minutes: float = option(2.0, "also checkpoint this often, besides each epoch end")
    snapshot_steps: int | None = option(None, "keep a weights snapshot every this many steps in "
                                        "snapshots/ (reproducible points of training)")
    snapshot_minutes: float | None = option(None, "keep a weights snapshot this often in snapshots/")
    figures: bool = option(True, "save the three figure kinds at each epoch end")
    tensorboard: bool = option(False, "log scalars and histograms to <out-dir>/tensorboard")
    log_every: int = option(50, "write a line to train.log every this many steps")
    progress: bool = option(True, "show a progress bar")

    def __post_init__(self):
        if self.out_dir is None:
            object.__setattr__(self, "out_dir", f"runs/{self.dataset}")
        problems = _check(self, positive=("checkpoint_minutes", "log_every", "steps", "epochs",
                                          "threads", "snapshot_steps", "snapshot_minutes"),
                          non_negative=("minutes",) if self.minutes is not None else ())
        if not str(self.out_dir).strip():
            problems.append("out_dir must name a folder, got an empty string")
        if self.dataset not in DATASETS:
            problems.append(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            problems.append(f"device must be auto, cpu, cuda or mps, got {self.device!r}")
        _raise(problems, "run")

    def step_budget(self, steps_per_epoch: int) -> int | None:
        """The step at which to stop (None: only the clock stops it)."""
        caps = [c for c in (self.steps, FAST_STEPS if self.fast else None) if c]
        if self.epochs is not None:
            caps.append(math.ceil(self.epochs * steps_per_epoch))
        return min(caps) if caps else None

    def time_budget(self) -> float | None:
        """Seconds of training allowed: None for no limit (minutes=0), DEFAULT_MINUTES for a run
        that names no budget at all."""
        if self.minutes is None and not (self.steps or self.epochs or self.fast):
            return DEFAULT_MINUTES * 60
        return self.minutes * 60 if self.minutes else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Run":
        return cls(**d)


def _check(obj, positive=(), non_negative=()) -> list[str]:
    problems = []
    for name in positive:
        v = getattr(obj, name)
        if v is not None and not 0 < v < math.inf:
            problems.append(f"{name} must be > 0 and finite, got {v}")
    for name in non_negative:
        if not getattr(obj, name) >= 0:
            problems.append(f"{name} must be ≥ 0, got {getattr(obj, name)}")
    return problems


def _raise(problems: list[str], what: str) -> None:
    if problems:
        raise ConfigError(f"invalid {what}: " + "; ".join(problems) + ".")


# ---- the command line, generated from the fields ---------------------------------------------
NESTED = {"spec": LatentSpec, "model": ModelConfig}


def _kind(cls, name: str) -> tuple[type, bool]:
    """(the element type, whether the option takes several values) of a field's annotation."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return hint, False


def add_options(parser, cls, title: str, defaults=None) -> None:
    """One option per documented field of `cls` (nested specs flattened), help from the field.

    Options not given on the command line are absent from the parsed namespace, so that
    `given` tells what the user asked for from what they left to the defaults.
    """
    defaults, group = defaults or cls(), parser.add_argument_group(title)
    for f in fields(cls):
        if f.name in NESTED and cls is Recipe:
            add_options(parser, NESTED[f.name], f"{title}: {f.metadata['help']}",
                        getattr(defaults, f.name))
            continue
        if "help" not in f.metadata or f.metadata.get("cli") is False:
            continue
        kind, many = _kind(cls, f.name)
        default = getattr(defaults, f.name)
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        quiet = shown is None or isinstance(shown, bool) or "default:" in f.metadata["help"]
        help_text = f.metadata["help"] + ("" if quiet else f" (default: {shown})")
        kw = dict(dest=f"{cls.__name__}.{f.name}", default=argparse.SUPPRESS, help=help_text)
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw.update(type=kind, nargs="+" if many else None,
                      metavar=f.metadata.get("metavar", {int: "N", float: "X"}.get(kind, "TEXT")))
            if "choices" in f.metadata:
                kw.update(choices=f.metadata["choices"], metavar=None)
        group.add_argument("--" + f.name.replace("_", "-"), **kw)


def given(namespace, cls) -> dict:
    """The fields of `cls` that the command line set explicitly, as {name: value}. Each option
    stores its value under "Class.field" and only when given (default=SUPPRESS), so that
    defaults, --paper and a resumed run's saved values can be told from what the user asked."""
    prefix = cls.__name__ + "."
    return {k[len(prefix):]: tuple(v) if isinstance(v, list) else v
            for k, v in vars(namespace).items() if k.startswith(prefix)}


def recipe_from(namespace, base: Recipe) -> Recipe:
    """`base` with every recipe option the command line gave (nested fields included)."""
    changes = given(namespace, Recipe)
    for name, cls in NESTED.items():
        inner = given(namespace, cls)
        if cls is LatentSpec and "n_continuous" in inner and "priors" not in inner:
            inner["priors"] = None                           # all uniform, one per code
        if inner:
            changes[name] = replace(getattr(base, name), **inner)
    return replace(base, **changes)


def differences(a, b) -> str:
    """The fields in which two dataclasses differ, as "name: a → b"."""
    return ", ".join(f"{f.name}: {getattr(a, f.name)!r} → {getattr(b, f.name)!r}"
                     for f in fields(a) if getattr(a, f.name) != getattr(b, f.name))


def resumed(saved_recipe: Recipe, saved_run: Run, recipe: Recipe | None, run: Run, where,
            own_images: bool = False) -> tuple[Recipe, Run]:
    """The recipe and run of a resumed run: the saved recipe (another one is refused), the given
    run's budgets on the saved data, with the saved thread count unless another is asked for."""
    if recipe is not None and recipe != saved_recipe:
        raise ConfigError(f"{where} was trained with another recipe ({differences(saved_recipe, recipe)}); "
                          "a resumed run keeps its recipe: drop those settings, or start a new run "
                          "in another folder.")
    if not own_images and run.dataset != saved_run.dataset:
        raise ConfigError(f"{where} was trained on {saved_run.dataset}, not {run.dataset}: a resumed run "
                          "keeps its data (to train further on other data, start a new run with --init "
                          "from its exported weights).")
    if run.threads and run.threads != saved_run.threads:
        log.warning("resuming on %d threads, the run was started on %d: the weights will not match "
                    "an uninterrupted run bit for bit", run.threads, saved_run.threads)
    return saved_recipe, replace(run, threads=run.threads or saved_run.threads)
