"""Training InfoGAN: one readable loop, resumable to the exact step.

    cfg = TrainConfig(dataset="mnist", out_dir="runs/mnist", max_minutes=10)
    result = train(cfg)                      # Ctrl-C saves a checkpoint and returns
    result = train(cfg, resume=True)         # continues exactly where it stopped

A run folder holds ``checkpoint.pt`` (the whole state, rewritten atomically at each epoch end,
every `checkpoint_minutes` and at the end), ``figures/`` (the three figure kinds each epoch),
``snapshots/`` (networks only, every `snapshot_minutes` or `snapshot_steps`, if set) and ``train.log``.

Reproducible: the seed fixes the weights' initialization, the order of the batches (a permutation
per epoch derived from seed and epoch) and the latents (a dedicated generator whose state is in the
checkpoint). The same seed, device and thread count give the same weights, and N steps in one go
equal N/2 steps, a stop, and N/2 more.

The default recipe (chosen on the validation split, benchmarks/sweep.py) differs from the paper's
in three measured ways: quarter-width networks (6× the CPU throughput), Adam learning rates 5e-4
(D) / 2e-3 (G) instead of 2e-4 / 1e-3, and Q reading the categorical code from a slightly moved
copy of each generated image (`augment.py`), which stops most seeds from sorting digits by style.
``--paper`` on the command line restores the paper's recipe.

The short-run switch: ``fast=True`` (or the environment variable ``INFOGAN_FAST=1``, read when a
config is created, never at import) caps a run at `FAST_STEPS` steps. Notebooks and grading use it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .augment import AffineJitter, random_affine
from .data import load_images, to_model_range
from .latent import LatentBatch, LatentSpec
from .losses import InfoTerms, discriminator_loss, generator_loss, info_loss
from .models import Discriminator, Generator, ModelConfig, QOutput

log = logging.getLogger(__name__)

FAST_STEPS = 30
FAST_ENV = "INFOGAN_FAST"
HISTORY_KEYS = ("time", "d_loss", "g_loss", "q_loss", "info_cat", "d_real", "d_fake")


class ConfigError(ValueError):
    """A training configuration that cannot work."""


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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


@dataclass
class TrainConfig:
    """Everything that defines a training run. The defaults are the course's CPU recipe."""

    dataset: str = "mnist"            # "mnist", "fashion-mnist" or "synthetic" (tests)
    data_dir: str | None = None       # None: $INFOGAN_DATA, else the per-user cache
    out_dir: str = "runs/mnist"
    spec: LatentSpec = field(default_factory=LatentSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 64
    lr_d: float = 5e-4                # D, its trunk and the Q head (paper: 2e-4)
    lr_g: float = 2e-3                # (paper: 1e-3)
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_cat: float = 1.0
    lambda_cont: float = 0.1
    cont_std: float | None = None     # None: Q learns σ of each continuous code; a number fixes it
    warmup_images: int = 0            # λ_cat rises linearly from 0 over this many training images
    # Q reads the categorical code from a randomly moved copy T(G(z, c)) (see augment.py);
    # None reads it from G(z, c) itself, as in the paper
    jitter: AffineJitter | None = field(default_factory=AffineJitter)
    jitter_continuous: bool = False   # Q reads the continuous codes from T(G(z, c)) too
    # warm starts only (train(..., anchor=D_old)): a frozen copy of the old model's Q must still
    # read the old codes from G's images, weighted by λ_anchor (0 = no anchor)
    lambda_anchor: float = 0.0
    # the continuous codes' effects on the image should not overlap: λ_ortho times the mean
    # squared cosine between G's finite-difference derivatives along two codes (0 = off)
    lambda_ortho: float = 0.0
    seed: int = 0
    # budgets: training stops at whichever comes first (None = no limit from that one)
    epochs: float | None = None
    max_minutes: float | None = 10.0
    max_steps: int | None = None
    fast: bool = field(default_factory=lambda: env_flag(FAST_ENV))
    # bookkeeping
    device: str = "auto"              # "auto" picks cuda, then mps, then cpu
    threads: int | None = None        # None: all cores this process may use
    checkpoint_minutes: float = 2.0
    snapshot_minutes: float | None = None
    snapshot_steps: int | None = None  # every K steps: reproducible points of training to revisit
    figures: bool = True              # save the three figure kinds at each epoch end
    tensorboard: bool = False
    log_every: int = 50
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.spec, dict):
            self.spec = LatentSpec.from_dict(self.spec)
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        if isinstance(self.jitter, dict):
            self.jitter = AffineJitter(**self.jitter)
        problems = []
        if self.warmup_images < 0:
            problems.append(f"warmup_images must be ≥ 0, got {self.warmup_images}")
        for name in ("batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("lr_d", "lr_g", "checkpoint_minutes"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if self.cont_std is not None and not self.cont_std > 0:
            problems.append(f"cont_std must be > 0 or None (learned), got {self.cont_std}")
        for name in ("lambda_cat", "lambda_cont", "lambda_anchor", "lambda_ortho"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("epochs", "max_minutes", "max_steps", "snapshot_minutes", "snapshot_steps"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                problems.append(f"{name} must be > 0 or None, got {v}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be ≥ 1 or None, got {self.threads}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            problems.append(f"device must be auto, cpu, cuda or mps, got {self.device!r}")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"], d["model"] = self.spec.to_dict(), self.model.to_dict()
        d["jitter"] = self.jitter.to_dict() if self.jitter else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def lambda_cat_at(self, step: int) -> float:
        """λ_cat after `step` steps: ramped up from 0 over the first `warmup_images` images."""
        if not self.warmup_images:
            return self.lambda_cat
        return self.lambda_cat * min(1.0, step * self.batch_size / self.warmup_images)

    def step_budget(self) -> int | None:
        caps = [self.max_steps] if self.max_steps else []
        if self.fast:
            caps.append(FAST_STEPS)
        return min(caps) if caps else None


BUDGET_FIELDS = ("epochs", "max_minutes", "max_steps", "fast", "progress", "figures",
                 "checkpoint_minutes", "snapshot_minutes", "snapshot_steps", "tensorboard",
                 "log_every",
                 "threads", "device", "data_dir", "out_dir")


def choose_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class TrainResult:
    generator: Generator
    discriminator: Discriminator
    history: dict
    step: int
    elapsed_s: float
    checkpoint: Path
    interrupted: bool = False
    config: TrainConfig | None = None


def train_step(G: Generator, D: Discriminator, opt_g, opt_d, real: torch.Tensor,
               latent: LatentBatch, lambda_cat: float = 1.0, lambda_cont: float = 0.1,
               jitter: AffineJitter | None = None, generator: torch.Generator | None = None,
               cont_std: float | None = None, jitter_continuous: bool = False,
               anchor: Discriminator | None = None, lambda_anchor: float = 0.0,
               lambda_ortho: float = 0.0) -> dict:
    """One InfoGAN update of D (with Q and the shared trunk), then of G.

    D step:  min_{D,Q}  −V(D, G) − λ L_I     on real x and on G(z, c) detached from G
    G step:  min_G      −E[log D(G(z,c))] − λ L_I   through the just-updated D, whose weights are
             frozen for this step (requires_grad off), so no gradient of D's weights is computed.
    The fake batch is generated once and used by both steps. With `jitter`, Q reads the
    categorical code from T(G(z, c)), a randomly moved copy (`augment.py`); the D head and the
    continuous codes still see G(z, c) itself.

    With `anchor` (a frozen D of the model this run was widened from, reading k_old < k codes),
    G also minimizes  λ_anchor · [λ_cat CE + λ_cont Σ_{j ≤ k_old} NLL_j]  of the anchor's Q on
    G(z, c): the old codes must stay readable *the old way*, so a new code cannot take over what
    the old ones control (InfoGAN's L_I alone is unchanged by mixing codes: see `anchor_loss`).
    With `lambda_ortho`, G also minimizes λ_ortho · `overlap_penalty` on the first ORTHO_BATCH
    latents: the image changes that two continuous codes make should point in different directions.
    """
    spec = G.spec
    fake = G(latent.input())                                   # (B, C, 28, 28)
    moved = random_affine(fake.detach(), jitter, generator) if jitter else None

    def q_for_info(q: QOutput, x_moved) -> QOutput:
        if x_moved is None:
            return q
        _, q_moved = D(x_moved)                                 # T(x): categorical codes
        if jitter_continuous:                                   # … and the continuous ones
            return q_moved
        return QOutput(q_moved.logits, q.mean, q.logvar)

    real_logit = D.d_head(D.features(real)).squeeze(1)         # (B,)
    fake_logit, q = D(fake.detach())
    info_d = info_loss(q_for_info(q, moved), latent, spec, lambda_cat, lambda_cont, cont_std)
    loss_d = discriminator_loss(real_logit, fake_logit) + info_d.loss
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    D.requires_grad_(False)
    fake_logit_g, q_g = D(fake)
    moved_g = random_affine(fake, jitter, generator) if jitter else None
    info_g = info_loss(q_for_info(q_g, moved_g), latent, spec, lambda_cat, lambda_cont, cont_std)
    loss_g = generator_loss(fake_logit_g) + info_g.loss
    anchored = None
    if anchor is not None and lambda_anchor > 0:
        anchored = anchor_loss(anchor, fake, latent, lambda_cat, lambda_cont, cont_std)
        loss_g = loss_g + lambda_anchor * anchored.loss
    overlap = None
    if lambda_ortho > 0 and spec.n_continuous >= 2:
        overlap = overlap_penalty(G, latent[:ORTHO_BATCH])
        loss_g = loss_g + lambda_ortho * overlap
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    D.requires_grad_(True)

    return {
        "d_loss": (loss_d - info_d.loss).item(),
        "g_loss": (loss_g - info_g.loss).item(),
        "q_loss": info_d.loss.item(),
        "info_cat": info_d.categorical_bound.item(),
        "d_real": torch.sigmoid(real_logit).mean().item(),
        "d_fake": torch.sigmoid(fake_logit).mean().item(),
        "info_cont": info_d.continuous_bounds.tolist(),
        "anchor_cont": anchored.continuous_bounds.tolist() if anchored is not None else [],
        "overlap": overlap.item() if overlap is not None else float("nan"),
    }


ORTHO_BATCH, ORTHO_EPS = 16, 0.25


def overlap_penalty(G: Generator, latent: LatentBatch, eps: float = ORTHO_EPS) -> torch.Tensor:
    """How much the continuous codes' effects on the image overlap, in [0, 1].

    For each latent and code j, the central difference  d_j = [G(c + ε e_j) − G(c − ε e_j)] / 2ε
    approximates the column ∂G/∂c_j of G's Jacobian: the image change that turning knob j makes.
    The penalty is the mean over latents and pairs j < l of cos²(d_j, d_l) (the orthogonal-Jacobian
    idea of Wei et al., 2021, "OroJaR"). A code that moves tilt *and* a little of the width another
    code controls has a d_j with a component along that code's d_l; InfoGAN's L_I does not mind
    (Q can un-mix it), this penalty does. Cosines, not dot products, so that a code cannot lower
    it by changing the image less. Costs 2k extra forward passes of the small batch. G is in
    training mode, so these passes use (and update the running averages of) batch statistics like
    any other training batch; the perturbed copies come from the same latent distribution.
    """
    x = latent.input()                                          # (b, input_dim)
    b, k = x.shape[0], G.spec.n_continuous
    bumps = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    bumps[:, -k:] = eps * torch.eye(k, dtype=x.dtype, device=x.device)   # ε e_j on code j's column
    moved = torch.cat([x.unsqueeze(0) + bumps.unsqueeze(1), x.unsqueeze(0) - bumps.unsqueeze(1)])
    images = G(moved.flatten(0, 1)).view(2, k, b, -1)           # (±, code, latent, pixels)
    d = F.normalize((images[0] - images[1]) / (2 * eps), dim=2)  # unit d_j, (k, b, pixels)
    cos = torch.einsum("jbp,lbp->bjl", d, d)                   # (b, k, k)
    pairs = torch.triu_indices(k, k, offset=1, device=x.device)
    return cos[:, pairs[0], pairs[1]].pow(2).mean()


def anchor_loss(anchor: Discriminator, fake: torch.Tensor, latent: LatentBatch,
                lambda_cat: float = 1.0, lambda_cont: float = 0.1,
                cont_std: float | None = None) -> InfoTerms:
    """The frozen old Q's information loss on the old codes of `latent`, read from `fake`.

    Why a new code needs it: L_I is a sum over codes of how well *some* Q reads each code back.
    Mix two codes (G reads c2' = (c2 + c3)/√2, c3' = (c2 − c3)/√2 instead) and a Q that un-mixes
    them reads both as well as before: the objective cannot tell "c3 took a new factor" from
    "c2 and c3 share tilt". Warm-started from a 2-code model, a third code then often drifts
    into the factors the old codes already show. The anchor — the old model's Q, weights frozen —
    breaks the tie: it reads c1, c2 the way they were read before widening, so any change c3
    makes to *their* factors costs G its NLL, and c3 has to find a factor of its own.
    The anchor's codes are the first ones of `latent` (widening appends codes at the end).
    """
    aspec = anchor.spec
    old = LatentBatch(aspec, latent.z[:, :aspec.noise_dim], latent.categorical[:, :len(aspec.categorical)],
                      latent.continuous[:, :aspec.n_continuous], latent._device)
    _, q = anchor(fake)
    return info_loss(q, old, aspec, lambda_cat, lambda_cont, cont_std)


class _StopFlag:
    """Turns Ctrl-C (SIGINT) into a request to stop after the current step."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested:  # a second Ctrl-C stops at once
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _batch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The permutation of the training images for one epoch: a function of (seed, epoch) only."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _rng_state(latent_rng: torch.Generator) -> dict:
    return {"latent": latent_rng.get_state(), "torch": torch.get_rng_state()}


def _tensor_history(history: dict) -> dict:
    out = {k: torch.tensor(v, dtype=torch.float32) for k, v in history.items() if k != "info_cont"}
    out["info_cont"] = torch.tensor(history["info_cont"], dtype=torch.float32).reshape(
        len(history["info_cont"]), -1)
    return out


def _list_history(history: dict) -> dict:
    return {k: v.tolist() for k, v in history.items()}


def _empty_history() -> dict:
    return {k: [] for k in HISTORY_KEYS + ("info_cont",)}


def build(cfg: TrainConfig, device: torch.device):
    """Networks and optimizers of a new run, initialized from cfg.seed."""
    torch.manual_seed(cfg.seed)
    G = Generator(cfg.spec, cfg.model).to(device)
    D = Discriminator(cfg.spec, cfg.model).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    return G, D, opt_g, opt_d


def _resume_config(saved: TrainConfig, new: TrainConfig) -> TrainConfig:
    """The saved run's recipe, with the new call's budgets and bookkeeping."""
    return replace(saved, **{k: getattr(new, k) for k in BUDGET_FIELDS})


def train(cfg: TrainConfig, resume: bool = False, images: torch.Tensor | None = None,
          init: tuple[Generator, Discriminator] | None = None,
          anchor: Discriminator | None = None) -> TrainResult:
    """Train (or resume) a run; returns when a budget is reached or Ctrl-C is pressed.

    `images` (uint8, (N, C, 28, 28)) replaces the data set, for tests and notebooks.
    `init` = (G, D) starts a new run from these networks' weights instead of a fresh
    initialization (a warm start, e.g. a trained model widened by one code); they must match
    cfg.spec and cfg.model. The optimizers start afresh. A resumed run ignores `init`: its
    checkpoint already holds the weights.
    `anchor` = D_old, the discriminator of the model `init` was widened from, is frozen and used
    with weight cfg.lambda_anchor (see `anchor_loss`); the checkpoint keeps a copy, so a resumed
    run needs it only if it was not saved.
    """
    out = Path(cfg.out_dir)
    ckpt_path = out / "checkpoint.pt"
    state = None
    if resume:
        if not ckpt_path.exists():
            raise ckpt.CheckpointError(
                f"--resume was given but there is no checkpoint at {ckpt_path}; check --out-dir, "
                "or start a new run without --resume.")
        state = ckpt.load_file(ckpt_path, kind="checkpoint")
        cfg = _resume_config(TrainConfig.from_dict(state["train_config"]), cfg)
    elif ckpt_path.exists():
        raise ConfigError(
            f"{ckpt_path} already exists: pass --resume (resume=True) to continue that run, or "
            "choose another --out-dir (or delete the folder) to start afresh.")
    out.mkdir(parents=True, exist_ok=True)

    threads = cfg.threads or available_cores()
    device = choose_device(cfg.device)
    log_handler = logging.FileHandler(out / "train.log")
    log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("infogan_lib").addHandler(log_handler)
    try:
        with torch_threads(threads):
            return _run(cfg, state, out, ckpt_path, device, images, threads, init, anchor)
    finally:
        logging.getLogger("infogan_lib").removeHandler(log_handler)
        log_handler.close()


def _frozen_anchor(cfg: TrainConfig, state, anchor, device) -> Discriminator | None:
    """The anchor of a run with λ_anchor > 0, frozen in eval mode: the checkpoint's copy when
    resuming, else the one given, with a clear error when it is missing or does not fit."""
    if not cfg.lambda_anchor:
        if anchor is not None:
            log.warning("an anchor was given but lambda_anchor is 0: training without it")
        return None
    if state is not None and state.get("anchor") is not None:
        saved = state["anchor"]
        anchor = Discriminator(LatentSpec.from_dict(saved["spec"]), ModelConfig.from_dict(saved["model_config"]))
        anchor.load_state_dict(saved["weights"])
    if anchor is None:
        raise ConfigError(
            f"lambda_anchor={cfg.lambda_anchor} needs the old model's discriminator: pass "
            "train(config, init=(G_new, D_new), anchor=D_old), or set lambda_anchor=0.")
    aspec, spec = anchor.spec, cfg.spec
    if (aspec.noise_dim, aspec.categorical) != (spec.noise_dim, spec.categorical) or \
            aspec.n_continuous >= spec.n_continuous or anchor.config != cfg.model:
        raise ConfigError(
            f"the anchor was built for {aspec} with widths {anchor.config}; it must be the "
            f"discriminator this run's model ({spec}, {cfg.model}) was widened from: the same "
            "noise, categorical codes and widths, and fewer continuous codes.")
    anchor = copy.deepcopy(anchor).to(device).float().eval()   # the caller's network is left as it is
    anchor.requires_grad_(False)
    return anchor


def _run(cfg, state, out, ckpt_path, device, images, threads, init=None, anchor=None) -> TrainResult:
    if images is None:
        images = load_images(cfg.dataset, "train", cfg.data_dir).images
    data = images.to(device)                                   # uint8 (N, C, 28, 28), in memory
    n = data.shape[0]
    if n < cfg.batch_size:
        raise ConfigError(f"batch_size={cfg.batch_size} is larger than the data set ({n} images).")
    steps_per_epoch = n // cfg.batch_size

    G, D, opt_g, opt_d = build(cfg, device)
    anchor = _frozen_anchor(cfg, state, anchor, device)
    latent_rng = torch.Generator().manual_seed(cfg.seed + 1)
    history, step, elapsed = _empty_history(), 0, 0.0
    if init is not None and state is None:
        _warm_start(G, D, init, cfg)
    if state is not None:
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        latent_rng.set_state(state["rng"]["latent"])
        torch.set_rng_state(state["rng"]["torch"])
        history = _list_history(state["history"])
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        log.info("resumed %s at step %d (%.1f min trained)", ckpt_path, step, elapsed / 60)

    step_budget = cfg.step_budget()
    if cfg.epochs is not None:
        epoch_steps = math.ceil(cfg.epochs * steps_per_epoch)
        step_budget = min(step_budget, epoch_steps) if step_budget else epoch_steps
    time_budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    if step_budget is None and time_budget is None:
        raise ConfigError("no budget: set epochs, max_minutes or max_steps (or fast=True).")

    writer = _tensorboard(cfg, out)

    def state_dict():
        return {
            "schema": ckpt.SCHEMA, "kind": "checkpoint",
            "spec": cfg.spec.to_dict(), "model_config": cfg.model.to_dict(),
            "train_config": cfg.to_dict(),
            "generator": G.state_dict(), "discriminator": D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "rng": _rng_state(latent_rng), "step": step, "elapsed_s": elapsed,
            "history": _tensor_history(history),
            "device": str(device), "threads": threads,
            "anchor": None if anchor is None else {
                "spec": anchor.spec.to_dict(), "model_config": anchor.config.to_dict(),
                "weights": anchor.state_dict()},
        }

    def save_checkpoint():
        ckpt.atomic_save(state_dict(), ckpt_path)

    def save_snapshot():
        ckpt.atomic_save(ckpt.weights_dict(G, D, extra={"step": step, "elapsed_s": elapsed}),
                         out / "snapshots" / f"step{step:07d}.pt")

    G.train()
    D.train()
    started = time.perf_counter() - elapsed
    last_ckpt = last_snap = time.perf_counter()
    snapshots = bool(cfg.snapshot_minutes or cfg.snapshot_steps)
    if snapshots and step == 0:
        save_snapshot()
    interrupted = False
    bar = _progress(cfg, step_budget, step)   # time-bounded runs show a rate, not an ETA
    order = (-1, None)
    try:
        with _StopFlag() as stop:
            while True:
                elapsed = time.perf_counter() - started
                if step_budget is not None and step >= step_budget:
                    break
                if time_budget is not None and elapsed >= time_budget:
                    break
                if stop.requested:
                    interrupted = True
                    break
                epoch, in_epoch = divmod(step, steps_per_epoch)
                if order[0] != epoch:
                    order = (epoch, _batch_order(cfg.seed, epoch, n))
                idx = order[1][
                    in_epoch * cfg.batch_size:(in_epoch + 1) * cfg.batch_size].to(device)
                real = to_model_range(data[idx])
                latent = cfg.spec.sample(cfg.batch_size, latent_rng, device)
                losses = train_step(G, D, opt_g, opt_d, real, latent, cfg.lambda_cat_at(step),
                                    cfg.lambda_cont, cfg.jitter, latent_rng, cfg.cont_std,
                                    cfg.jitter_continuous, anchor, cfg.lambda_anchor,
                                    cfg.lambda_ortho)
                step += 1
                elapsed = time.perf_counter() - started
                history["time"].append(elapsed)
                for k in HISTORY_KEYS[1:] + ("info_cont",):
                    history[k].append(losses[k])
                if bar is not None:
                    bar.update(1)
                    if step % 10 == 0:
                        bar.set_postfix(D=f"{losses['d_loss']:.2f}", G=f"{losses['g_loss']:.2f}",
                                        L_I=f"{losses['info_cat']:.2f}", refresh=False)
                if step % cfg.log_every == 0:
                    log.info("step %d epoch %.2f  D %.3f  G %.3f  Q %.3f  L_I %.3f/%.3f%s%s",
                             step, step / steps_per_epoch, losses["d_loss"], losses["g_loss"],
                             losses["q_loss"], losses["info_cat"], cfg.spec.entropy(),
                             f"  anchor L_I {[round(v, 3) for v in losses['anchor_cont']]}" if losses["anchor_cont"] else "",
                             f"  overlap {losses['overlap']:.3f}" if cfg.lambda_ortho else "")
                    if writer is not None:
                        for k in HISTORY_KEYS[1:]:
                            writer.add_scalar(f"train/{k}", losses[k], step)
                now = time.perf_counter()
                if step % steps_per_epoch == 0:
                    _end_of_epoch(cfg, G, D, out, step // steps_per_epoch, writer, step)
                    save_checkpoint()
                    last_ckpt = time.perf_counter()
                elif now - last_ckpt >= cfg.checkpoint_minutes * 60:
                    save_checkpoint()
                    last_ckpt = time.perf_counter()
                if ((cfg.snapshot_minutes and now - last_snap >= cfg.snapshot_minutes * 60)
                        or (cfg.snapshot_steps and step % cfg.snapshot_steps == 0)):
                    save_snapshot()
                    last_snap = time.perf_counter()
    except KeyboardInterrupt:  # second Ctrl-C, or a Ctrl-C outside the main thread
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    elapsed = time.perf_counter() - started
    save_checkpoint()
    if snapshots:
        save_snapshot()
    if cfg.figures and step % steps_per_epoch != 0:
        from .viz import save_figures
        save_figures(G, out / "figures", f"step{step:07d}")
    if interrupted:
        log.warning("interrupted at step %d; checkpoint saved to %s (resume with --resume)",
                    step, ckpt_path)
    G.eval()
    D.eval()
    return TrainResult(G, D, history, step, elapsed, ckpt_path, interrupted, cfg)


def _warm_start(G: Generator, D: Discriminator, init, cfg: TrainConfig) -> None:
    """Copy the weights of init = (G0, D0) into the new run's networks, with a clear error when
    they were built for another latent spec or other widths."""
    G0, D0 = init
    for name, new, old in (("generator", G, G0), ("discriminator", D, D0)):
        if getattr(old, "spec", None) != cfg.spec or getattr(old, "config", None) != cfg.model:
            raise ConfigError(
                f"init {name} was built for {getattr(old, 'spec', '?')} with widths "
                f"{getattr(old, 'config', '?')}, but this run's config asks for {cfg.spec} with "
                f"{cfg.model}; build the config from the init networks (spec=G.spec, "
                "model=G.config) or widen them to the new spec first.")
        new.load_state_dict({k: v.float() for k, v in old.state_dict().items()})


def _end_of_epoch(cfg, G, D, out, epoch, writer, step):
    if cfg.figures:
        from .viz import save_figures
        save_figures(G, out / "figures", f"epoch{epoch:03d}")
    if writer is not None:
        for name, module in (("G", G), ("D", D)):
            for pname, p in module.named_parameters():
                writer.add_histogram(f"{name}/{pname}", p.detach().cpu(), step)


def _progress(cfg, total, initial):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="step", desc=f"InfoGAN {cfg.dataset}",
                dynamic_ncols=True, mininterval=0.5)


def _tensorboard(cfg, out):
    if not cfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed (pip install tensorboard); logging skipped")
        return None
    return SummaryWriter(str(out / "tensorboard"))


def load_history(path: str | os.PathLike) -> dict:
    """The per-step history stored in a run's checkpoint, as lists."""
    return _list_history(ckpt.load_file(path, kind="checkpoint")["history"])

