"""Command line: ``python -m infogan_lib {train,evaluate,sample,export,train-classifier} --help``."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from . import checkpoint as ckpt
from .config import FAST_ENV, ConfigError, Recipe, Run, add_options, differences, given, recipe_from
from .data import ENV_VAR, DataNotFoundError
from .latent import SpecError
from .runtime import DeviceError, env_flag
from .loop import train

log = logging.getLogger("infogan_lib")
BUDGETS = {"steps", "epochs", "minutes"}
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _count(text: str) -> int:
    """argparse type: a whole number ≥ 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def _seed(text: str) -> int:
    """argparse type: a seed torch accepts."""
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2^32), got {value}")
    return value


def _image_path(text: str) -> str:
    """argparse type: a file name with an image extension."""
    if Path(text).suffix.lower() not in IMAGE_TYPES:
        raise argparse.ArgumentTypeError(f"{text!r} is not an image file name: end it with .png")
    return text


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: …)" only where there is a default worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _data_dir_arg(p):
    p.add_argument("--data-dir", default=None,
                   help=f"folder holding MNIST/ and FashionMNIST/ in torchvision's layout "
                        f"(default: ${ENV_VAR}, else ~/.cache/infogan-course/data). Downloaded "
                        "there when missing and online.")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infogan_lib",
        description="Train, evaluate and sample InfoGAN on MNIST / Fashion-MNIST.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (Ctrl-C saves; --resume continues)",
                       formatter_class=_Help, description=(
                           "Options left out take the course's defaults (--paper: the paper's "
                           "recipe). With --resume, the run continues with the recipe, budgets and "
                           "threads it was started with; budget and machine options given here "
                           "replace the saved ones, recipe options must agree with them."))
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out-dir from its checkpoint, exactly where it stopped")
    t.add_argument("--paper", action="store_true",
                   help="start from the paper's recipe (its widths, Adam lr D 2e-4 / G 1e-3, Q reads "
                        "G(z, c) itself) instead of the course's; options given here still apply")
    t.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from this weights file's G and D (a fine-tune: fresh Adam, the file's "
                        "latent spec and widths)")
    t.add_argument("--sample", default=None, metavar="PNG", type=_image_path,
                   help="after training, save a figure of kind (c) here")
    add_options(t, Recipe, "the recipe (what changes the maths)")
    add_options(t, Run, "the run (data, folder, budget, machine, logging)", Run(fast=False))

    e = sub.add_parser("evaluate", help="Q's accuracy on real images and the bound L_I",
                       formatter_class=_Help)
    e.add_argument("checkpoint", help="a checkpoint.pt or a weights file")
    e.add_argument("--dataset", default=None, choices=["mnist", "fashion-mnist", "synthetic"],
                   help="data to score on (default: the one it was trained on, else mnist)")
    e.add_argument("--split", default="test", choices=["test", "val"],
                   help="test images, or the validation split held out of training")
    _data_dir_arg(e)
    e.add_argument("--samples", type=_count, default=10_000, help="samples for the L_I estimate")
    e.add_argument("--quality", action="store_true",
                   help="also class coverage and Fréchet distance (kit's classifier)")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    s = sub.add_parser("sample", help="save one of the course's figure kinds as PNG",
                       formatter_class=_Help)
    s.add_argument("checkpoint", help="a checkpoint.pt or a weights file")
    s.add_argument("--kind", choices=["a", "b", "c"], default="c",
                   help="a: random noise and category, fixed continuous codes; b: one row per "
                        "category; c: fixed noise, one row per category, one continuous code "
                        "swept")
    s.add_argument("--code", type=int, default=1, help="for kind c: which continuous code (1-based)")
    s.add_argument("--range", type=float, nargs=2, default=(-2.0, 2.0), metavar=("LO", "HI"),
                   help="for kind c: the sweep's range")
    s.add_argument("--steps", type=_count, default=10, help="images per row")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the noise")
    s.add_argument("--out", required=True, type=_image_path, help="PNG file to write")

    x = sub.add_parser("export", help="write a checkpoint's networks as a small weights file",
                       formatter_class=_Help)
    x.add_argument("checkpoint", help="a checkpoint.pt or a weights file")
    x.add_argument("out", help="weights file to write")
    x.add_argument("--half", action="store_true", help="store float16 (half the size)")
    x.add_argument("--generator-only", action="store_true", help="drop D and Q")

    c = sub.add_parser("train-classifier",
                       help="train the small classifier used for sample-quality metrics",
                       formatter_class=_Help)
    c.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"],
                   help="which data set's classifier")
    _data_dir_arg(c)
    c.add_argument("--epochs", type=int, default=3, help="passes over the 60,000 images")
    c.add_argument("--seed", type=int, default=0, help="fixes initialization and batch order")
    c.add_argument("--out", default=None, help="weights file (default: the shipped location)")
    return parser


def _train_config(a) -> tuple[Recipe | None, Run, tuple | None]:
    """(recipe, run, init) from the command line: the defaults (or, with --resume, the saved
    run) changed by exactly the options that were given."""
    run_changes = given(a, Run)
    run_changes.setdefault("fast", env_flag(FAST_ENV))
    if a.resume:
        if a.init or a.paper:
            raise ConfigError(f"--resume continues the run with its own recipe and weights: drop "
                              f"{'--init' if a.init else '--paper'}.")
        out_dir = run_changes.get("out_dir") or Run(**{k: v for k, v in run_changes.items()
                                                        if k == "dataset"}).out_dir
        state = ckpt.load_file(Path(out_dir) / "checkpoint.pt", kind="checkpoint")
        saved_recipe, saved_run = ckpt.saved_config(state)
        recipe = recipe_from(a, saved_recipe)
        if recipe != saved_recipe:
            raise ConfigError(f"{out_dir} was trained with another recipe (saved → asked: "
                              f"{differences(saved_recipe, recipe)}); a resumed run keeps its recipe: "
                              "drop those options, or start a new run in another folder.")
        if BUDGETS & run_changes.keys():                  # a budget given here replaces the saved ones
            saved_run = replace(saved_run, **{k: None for k in BUDGETS})
        return None, replace(saved_run, **run_changes), None
    base = Recipe.paper() if a.paper else Recipe()
    init = None
    if a.init:
        if a.paper:
            raise ConfigError("--init and --paper do not go together: a fine-tune keeps the widths "
                              f"of {a.init}; drop --paper (its learning rates can be given one by one).")
        _, _, G0, D0 = ckpt.load_models(a.init)
        if D0 is None:
            raise ckpt.CheckpointError(f"{a.init} holds no discriminator, so training cannot start "
                                       "from it: give a weights file exported with D (the default).")
        init, base = (G0.float(), D0.float()), replace(base, spec=G0.spec, model=G0.config)
    recipe = recipe_from(a, base)
    if init is not None and (recipe.spec, recipe.model) != (base.spec, base.model):
        raise ConfigError(f"a fine-tune keeps the latent spec and widths of {a.init} ({base.spec}, "
                          f"{base.model}); drop the latent and width options.")
    return recipe, Run(**run_changes), init


def _cmd_train(a) -> int:
    recipe, run, init = _train_config(a)
    result = train(recipe, run, resume=a.resume, init=init)
    info = result.history["info_cat"][-50:]
    print(f"trained {result.step} steps in {result.elapsed_s / 60:.1f} min; "
          f"categorical L_I (last {len(info)} steps) {sum(info) / max(len(info), 1):.3f} "
          f"of H(c) = {result.recipe.spec.entropy():.3f} nats")
    print(f"checkpoint: {result.checkpoint}")
    if a.sample:
        from .viz import figure_grid, save_png
        save_png(figure_grid(result.generator, "c", 0), a.sample)
        print(f"figure (c): {a.sample}")
    if result.interrupted:
        print(f"interrupted: resume with  python -m infogan_lib train --out-dir {shlex.quote(result.run.out_dir)} "
              "--resume")
        return 130
    return 0


def _cmd_evaluate(a) -> int:
    from .data import load_images
    from .metrics import estimate_info, q_accuracy, sample_quality

    obj = ckpt.load_file(a.checkpoint)
    spec, _, G, D = ckpt.models_from(obj, a.checkpoint)
    if D is None:
        raise ckpt.CheckpointError(f"{a.checkpoint} holds no discriminator/Q head, so Q cannot "
                                   "be scored: export without --generator-only.")
    dataset = a.dataset or (obj.get("run") or obj.get("train_config") or {}).get("dataset") or "mnist"
    images = load_images(dataset, a.split, a.data_dir)
    score = q_accuracy(D, images.images, images.labels)
    info = estimate_info(G, D, n=a.samples)
    out = {"checkpoint": str(a.checkpoint), "dataset": images.name, "split": a.split,
           "step": obj.get("step"), "accuracy": score.accuracy, "purity": score.purity,
           "merged": score.merged(), **info}
    if a.quality:
        out.update({f"quality_{k}": v for k, v in
                    sample_quality(G, images.images, images.name).items()})
    if a.json:
        print(json.dumps(out))
        return 0
    print(f"{a.checkpoint}  ({images.name}, {a.split}, {len(images)} images)")
    print(f"  Q accuracy (Hungarian)  {score.accuracy:.4f}   purity {score.purity:.4f}")
    if score.merged():
        print(f"  merged labels (true → category of): {score.merged()}")
    print(f"  categorical L_I  {info['info_cat']:.4f} nats   H(c) = {info['entropy_cat']:.4f}"
          f"   gap {info['entropy_cat'] - info['info_cat']:.4f}")
    for j, (b, h) in enumerate(zip(info["info_cont"], info["entropy_cont"])):
        print(f"  continuous c{j + 1}: L_I {b:.4f} nats   h(c{j + 1}) = {h:.4f}")
    if a.quality:
        print(f"  class coverage {out['quality_coverage']:.2f}   entropy ratio "
              f"{out['quality_entropy_ratio']:.3f}   Fréchet distance {out['quality_frechet']:.2f}")
    return 0


def _cmd_sample(a) -> int:
    from .viz import figure_grid, save_png

    spec, _, G, _ = ckpt.load_models(a.checkpoint)
    if a.kind == "c" and not 1 <= a.code <= spec.n_continuous:
        raise SpecError(f"--code {a.code} does not exist: the model has {spec.n_continuous} "
                        f"continuous codes (1…{spec.n_continuous}).")
    grid = figure_grid(G, a.kind, a.code - 1, a.seed, a.steps, tuple(a.range))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    save_png(grid, a.out)
    print(f"wrote {a.out}")
    return 0


def _cmd_export(a) -> int:
    out = ckpt.export_weights(a.checkpoint, a.out, half=a.half,
                              with_discriminator=not a.generator_only)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, sha256 {ckpt.sha256(out)})")
    return 0


def _cmd_train_classifier(a) -> int:
    from .classifier import train_classifier

    _, accuracy = train_classifier(a.dataset, a.data_dir, a.epochs, a.seed, a.out)
    print(f"classifier test accuracy {accuracy:.4f}")
    return 0


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    commands = {"train": _cmd_train, "evaluate": _cmd_evaluate, "sample": _cmd_sample,
                "export": _cmd_export, "train-classifier": _cmd_train_classifier}
    try:
        return commands[args.command](args)
    except (DataNotFoundError, ckpt.CheckpointError, ConfigError, SpecError, DeviceError) as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:                      # a file or folder that cannot be read or written
        where = f" ({err.filename})" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
    except KeyboardInterrupt:
        print("stopped (Ctrl-C); a training run keeps its last saved checkpoint: continue it with "
              "--resume", file=sys.stderr)
        return 130
    except Exception as err:                    # a bug: one line, the traceback with -v
        if args.verbose:
            raise
        print(f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
              "(unexpected: run again with -v for the details, and please report it)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
