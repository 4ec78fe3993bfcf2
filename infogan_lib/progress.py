"""What a run shows and writes besides its checkpoints: the run folder, the progress bar, train.log,
the figures at each epoch end and (optionally) TensorBoard. Nothing here changes the training."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from .config import ConfigError

log = logging.getLogger("infogan_lib.loop")


class Progress:
    def __init__(self, run, recipe, out: Path, total: int | None, step: int, steps_per_epoch: int):
        self.run, self.entropy, self.out, self.steps_per_epoch = run, recipe.spec.entropy(), out, steps_per_epoch
        self.handler = logging.FileHandler(out / "train.log")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        thread = threading.get_ident()                           # this run's lines only
        self.handler.addFilter(lambda record: record.thread == thread)
        lib = logging.getLogger("infogan_lib")
        lib.addHandler(self.handler)
        self.level = lib.level                # INFO lines reach train.log however logging is set up
        if lib.getEffectiveLevel() > logging.INFO:
            lib.setLevel(logging.INFO)
        if step:
            log.info("resumed %s at step %d", out / "checkpoint.pt", step)
        self.bar = self.writer = None
        if run.progress:                     # time-bounded runs show a rate, not an ETA
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=step, unit="step", desc=f"InfoGAN {run.dataset}",
                            dynamic_ncols=True, mininterval=0.5)
        if run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                log.warning("tensorboard is not installed (pip install tensorboard); logging skipped")

    def step(self, step: int, line: dict, G, D) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0:
                self.bar.set_postfix(D=f"{line['d_loss']:.2f}", G=f"{line['g_loss']:.2f}",
                                     L_I=f"{line['info_cat']:.2f}", refresh=False)
        if step % self.run.log_every == 0:
            extras = "".join(f"  {k} {v:.3f}" for k, v in line.items() if k not in _GAN_KEYS)
            log.info("step %d epoch %.2f  D %.3f  G %.3f  Q %.3f  L_I %.3f/%.3f%s", step,
                     step / self.steps_per_epoch, line["d_loss"], line["g_loss"], line["q_loss"],
                     line["info_cat"], self.entropy, extras)
            if self.writer is not None:
                for k, v in line.items():
                    if k != "info_cont":
                        self.writer.add_scalar(f"train/{k}", v, step)
        if step % self.steps_per_epoch == 0:
            self.epoch_end(step, G, D)

    def epoch_end(self, step: int, G, D) -> None:
        if self.run.figures:
            from .viz import save_figures
            save_figures(G, self.out / "figures", f"epoch{step // self.steps_per_epoch:03d}")
        if self.writer is not None:
            for name, module in (("G", G), ("D", D)):
                for pname, p in module.named_parameters():
                    self.writer.add_histogram(f"{name}/{pname}", p.detach().cpu(), step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        logging.getLogger("infogan_lib").removeHandler(self.handler)
        logging.getLogger("infogan_lib").setLevel(self.level)
        self.handler.close()


def open_run_folder(out: Path, snapshots: bool, figures: bool) -> bool:
    """Create the run folder (True if it did not exist), with a clear error when it or the
    folders the run will write cannot be written."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train.log").touch()
        for sub, wanted in (("snapshots", snapshots), ("figures", figures)):
            if wanted and (out / sub).exists() and not (out / sub).is_dir():
                raise NotADirectoryError(f"{out / sub} is a file")
    except OSError as err:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise ConfigError(f"cannot write the run folder {out} ({err.strerror or err}); choose "
                          "another --out-dir.") from None
    return created


def announce(resuming: bool, step: int, elapsed: float, step_budget, time_budget) -> None:
    """Warn about a run that will not stop by itself, or that has nothing left to train."""
    if step_budget is None and time_budget is None:
        log.warning("no budget (minutes=0 and no steps or epochs): training until Ctrl-C")
    elif resuming and ((step_budget is not None and step >= step_budget)
                       or (time_budget is not None and elapsed >= time_budget)):
        log.warning("the run's budget is already reached (step %d, %.1f min): nothing to train; give "
                    "a larger steps, epochs or minutes budget to go on", step, elapsed / 60)


_GAN_KEYS = ("d_loss", "g_loss", "q_loss", "info_cat", "info_cont", "d_real", "d_fake")
