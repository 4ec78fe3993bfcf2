"""The training loop: budgets, resume, checkpoints, snapshots, Ctrl-C, progress. The maths is in
`step.infogan_step`; what a run is, in `config.py`.

    result = train(Recipe(), Run(dataset="mnist", out_dir="runs/mnist", minutes=10))
    result = train(None, Run(out_dir="runs/mnist", minutes=20), resume=True)   # continues exactly

A run folder holds ``checkpoint.pt`` (the whole state, rewritten atomically at each epoch end,
every `checkpoint_minutes` and at the end), ``figures/`` (the three figure kinds each epoch),
``snapshots/`` (networks only, every `snapshot_steps` or `snapshot_minutes`, if set) and ``train.log``.

Reproducible: the seed fixes the weights' initialization, the order of the batches (a permutation
per epoch derived from seed and epoch) and the latents and moves (a dedicated generator whose state
is in the checkpoint). The same recipe, device and thread count give the same weights, and N steps
in one go equal N/2 steps, a stop, and N/2 more.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import history as hist
from .anchor import Anchor
from .config import ADAM_BETA2, ConfigError, Recipe, Run, resumed
from .data import load_images, to_model_range
from .losses import LIBRARY_LOSS, Information, loss_name
from .models import Discriminator, Generator
from .moved_copy import ReadsMoved
from .overlap import Overlap
from .progress import Progress, announce, open_run_folder
from .runtime import StopFlag, choose_device, default_threads, torch_threads
from .step import infogan_step

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    generator: Generator
    discriminator: Discriminator
    history: dict
    step: int
    elapsed_s: float
    checkpoint: Path
    interrupted: bool
    recipe: Recipe
    run: Run


def build(recipe: Recipe, device: torch.device):
    """Networks and optimizers of a new run, initialized from recipe.seed."""
    torch.manual_seed(recipe.seed)
    G = Generator(recipe.spec, recipe.model).to(device)
    D = Discriminator(recipe.spec, recipe.model).to(device)
    betas = (recipe.beta1, ADAM_BETA2)
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr_d, betas=betas)
    return G, D, opt_g, opt_d


def plug_ins(recipe: Recipe, rng: torch.Generator, anchor: Discriminator | None, device="cpu",
             written=None):
    """The recipe's information term (what Q reads from, a loss written by hand) and its extra
    penalties on G."""
    reads = None if recipe.moved_codes == "none" else ReadsMoved(recipe.moved_codes, rng)
    penalties = []
    if recipe.lambda_anchor:
        if anchor is None:
            raise ConfigError(
                f"lambda_anchor={recipe.lambda_anchor} needs the old model's discriminator: pass "
                "train(recipe, run, init=(G_new, D_new), anchor=D_old), or set lambda_anchor=0.")
        penalties.append(Anchor(anchor, recipe.lambda_anchor, recipe.spec, recipe.model,
                                recipe.lambda_cat, recipe.lambda_cont).to(device))
    elif anchor is not None:
        log.warning("an anchor was given but lambda_anchor is 0: training without it")
    if recipe.lambda_ortho:
        penalties.append(Overlap(recipe.lambda_ortho, recipe.spec.n_continuous))
    if written is not None and len(recipe.spec.categorical) != 1:
        raise ConfigError("an information loss written by hand takes one categorical code; this "
                          f"recipe's spec has {len(recipe.spec.categorical)}.")
    return Information(recipe.lambda_cat, recipe.lambda_cont, reads, written), penalties


def train(recipe: Recipe | None, run: Run, resume: bool = False, images: torch.Tensor | None = None,
          init: tuple[Generator, Discriminator] | None = None,
          anchor: Discriminator | None = None, information_loss=None) -> TrainResult:
    """Train (or resume) a run; returns when a budget is reached or Ctrl-C is pressed.

    `resume`: continue the run in `run.out_dir` from its checkpoint. Its recipe is kept (`recipe`
    may be None; a different one is refused); `run` sets the budgets, and `run.threads=None` keeps
    the saved thread count, so that the continuation is exact.
    `images` (uint8, (N, C, 28, 28)) replaces the data set, for tests and notebooks.
    `init` = (G, D) starts a new run from these networks' weights (a warm start, e.g. a trained
    model widened by one code); fresh optimizers. `anchor` = the D that `init` was widened from,
    used with weight recipe.lambda_anchor (`anchor.py`); the checkpoint keeps a copy.
    `information_loss`: the information term optimized instead of `losses.info_loss`, written with
    the homework's signature (`losses.Information.written`); a run resumes only with the same one.
    """
    out = Path(run.out_dir)
    ckpt_path, state = out / "checkpoint.pt", None
    if resume:
        if not ckpt_path.exists():
            raise ckpt.CheckpointError(f"--resume was given but there is no checkpoint at {ckpt_path}; "
                                       "check --out-dir, or start a new run without --resume.")
        state = ckpt.load_file(ckpt_path, kind="checkpoint")
        try:
            saved = ckpt.saved_config(state)
        except (KeyError, TypeError, AttributeError) as err:
            raise ckpt.CheckpointError(f"{ckpt_path} holds no readable recipe and run ({type(err).__name__}: "
                                       f"{err}): it is damaged or from an incompatible version.") from None
        recipe, run = resumed(*saved, recipe, run, ckpt_path, images is not None)
        if state.get("information", LIBRARY_LOSS) != loss_name(information_loss):
            raise ConfigError(f"{ckpt_path} was trained with the information loss "
                              f"{state.get('information', LIBRARY_LOSS)}, not {loss_name(information_loss)}: "
                              "resume it with the same one (information_loss=...).")
        saved = (state.get("extras") or {}).get("anchor") or state.get("anchor")
        anchor = Anchor.network_from(saved) if saved else anchor
    elif ckpt_path.exists():
        raise ConfigError(f"{ckpt_path} already exists: pass --resume (resume=True) to continue that run, "
                          "or choose another --out-dir (or delete the folder) to start afresh.")
    elif recipe is None:
        raise ConfigError("a new run needs a recipe: train(Recipe(), run).")
    run = replace(run, threads=run.threads or default_threads())
    device = choose_device(run.device)
    if images is None:
        images = load_images(run.dataset, "train", run.data_dir).images
    if images.shape[0] < recipe.batch_size:
        raise ConfigError(f"batch_size={recipe.batch_size} is larger than the data set "
                          f"({images.shape[0]} images).")
    with torch_threads(run.threads):
        return _run(recipe, run, state, images.to(device), device, init, anchor, information_loss)


def _run(recipe: Recipe, run: Run, state: dict | None, data: torch.Tensor, device: torch.device,
         init, anchor, written) -> TrainResult:
    out, n = Path(run.out_dir), data.shape[0]
    steps_per_epoch = n // recipe.batch_size
    G, D, opt_g, opt_d = build(recipe, device)
    rng = torch.Generator().manual_seed(recipe.seed + 1)          # latents and moves
    info, penalties = plug_ins(recipe, rng, anchor, device, written)
    history, step, elapsed = hist.empty(penalties), 0, 0.0
    if state is not None:
        ckpt.load_state(G, state["generator"], "generator", "the checkpoint")
        ckpt.load_state(D, state["discriminator"], "discriminator", "the checkpoint")
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        rng.set_state(state["rng"]["latent"])
        torch.set_rng_state(state["rng"]["torch"])
        history = hist.resumed(hist.to_lists(state["history"]), history)
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
    elif init is not None:
        ckpt.warm_start(G, D, init, recipe)
    step_budget, time_budget = run.step_budget(steps_per_epoch), run.time_budget()

    def save_checkpoint():
        ckpt.atomic_save({
            "schema": ckpt.SCHEMA, "kind": "checkpoint",
            "spec": recipe.spec.to_dict(), "model_config": recipe.model.to_dict(),
            "recipe": recipe.to_dict(), "run": run.to_dict(),
            "generator": G.state_dict(), "discriminator": D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "rng": {"latent": rng.get_state(), "torch": torch.get_rng_state()},
            "step": step, "elapsed_s": elapsed, "history": hist.to_tensors(history),
            "device": str(device), "threads": run.threads, "information": loss_name(written),
            "extras": {p.name: p.state_dict() for p in penalties if hasattr(p, "state_dict")},
        }, out / "checkpoint.pt")

    def save_snapshot():
        ckpt.atomic_save(ckpt.weights_dict(G, D, extra={"step": step, "elapsed_s": elapsed}),
                         out / "snapshots" / f"step{step:07d}.pt")

    created = open_run_folder(out, snapshots=bool(run.snapshot_minutes or run.snapshot_steps), figures=run.figures)
    report = Progress(run, recipe, out, step_budget, step, steps_per_epoch)
    announce(state is not None, step, elapsed, step_budget, time_budget)
    G.train()
    D.train()
    started = time.perf_counter() - elapsed
    last_ckpt = last_snap = time.perf_counter()
    snapshots = bool(run.snapshot_minutes or run.snapshot_steps)

    def done() -> bool:
        return ((step_budget is not None and step >= step_budget)
                or (time_budget is not None and time.perf_counter() - started >= time_budget))

    interrupted, order = False, (-1, None)
    with StopFlag() as stop:
        try:
            if snapshots and step == 0:
                save_snapshot()
            while not done() and not stop.requested:
                epoch, in_epoch = divmod(step, steps_per_epoch)
                if order[0] != epoch:                           # a permutation per (seed, epoch)
                    order = (epoch, torch.randperm(n, generator=torch.Generator().manual_seed(
                        recipe.seed * 1_000_003 + epoch)))
                idx = order[1][in_epoch * recipe.batch_size:(in_epoch + 1) * recipe.batch_size]
                real = to_model_range(data[idx.to(device)])
                latent = recipe.spec.sample(recipe.batch_size, rng, device)
                line = infogan_step(G, D, opt_g, opt_d, real, latent, info, penalties)
                step += 1
                elapsed = time.perf_counter() - started
                hist.append(history, elapsed, line)
                report.step(step, line, G, D)
                now = time.perf_counter()
                if step % steps_per_epoch == 0 or now - last_ckpt >= run.checkpoint_minutes * 60:
                    save_checkpoint()
                    last_ckpt = time.perf_counter()
                if ((run.snapshot_minutes and now - last_snap >= run.snapshot_minutes * 60)
                        or (run.snapshot_steps and step % run.snapshot_steps == 0)):
                    save_snapshot()
                    last_snap = time.perf_counter()
            interrupted = stop.requested
        except BaseException as err:            # a second Ctrl-C (mid-step: nothing of it is kept), or a failure
            D.requires_grad_(True)
            if created and not (out / "checkpoint.pt").exists():
                shutil.rmtree(out, ignore_errors=True)      # no folder of a run that saved nothing
            elif isinstance(err, KeyboardInterrupt):
                log.warning("stopped at once at step %d: the last checkpoint saved is kept", step)
            raise
        finally:
            report.close()
        stop.holding = True                     # a Ctrl-C now cannot cut the final checkpoint short
        elapsed = time.perf_counter() - started
        save_checkpoint()
        if snapshots:
            save_snapshot()
        if run.figures and step % steps_per_epoch != 0:
            from .viz import save_figures
            save_figures(G, out / "figures", f"step{step:07d}")
    if interrupted:
        log.warning("interrupted at step %d; checkpoint saved to %s (resume with --resume)",
                    step, out / "checkpoint.pt")
    G.eval()
    D.eval()
    return TrainResult(G, D, history, step, elapsed, out / "checkpoint.pt", interrupted, recipe, run)


def load_history(path: str | os.PathLike) -> dict:
    """The per-step history stored in a run's checkpoint, as lists."""
    return hist.to_lists(ckpt.load_file(path, kind="checkpoint")["history"])
