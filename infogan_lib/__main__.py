"""Command line: ``python -m infogan_lib {train,evaluate,sample,export,train-classifier} --help``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

from . import checkpoint as ckpt
from .augment import AffineJitter
from .data import ENV_VAR, DataNotFoundError
from .latent import LatentSpec, SpecError
from .models import ModelConfig
from .train import ConfigError, TrainConfig, train

log = logging.getLogger("infogan_lib")

DEFAULTS = TrainConfig(fast=False)


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
                       formatter_class=_Help)
    t.add_argument("--dataset", default=DEFAULTS.dataset,
                   choices=["mnist", "fashion-mnist", "synthetic"], help="training data")
    _data_dir_arg(t)
    t.add_argument("--out-dir", default=None,
                   help="run folder for checkpoint.pt, figures/ and snapshots/ "
                        "(default: runs/<dataset>)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out-dir from its checkpoint, exactly where it "
                        "stopped (its recipe is kept; budgets come from this command)")
    budget = t.add_argument_group("budget (training stops at the first one reached)")
    budget.add_argument("--minutes", type=float, default=DEFAULTS.max_minutes,
                        help="wall-clock minutes of training (0 = no time limit)")
    budget.add_argument("--epochs", type=float, default=None, help="passes over the data")
    budget.add_argument("--steps", type=int, default=None, help="optimizer steps")
    budget.add_argument("--fast", action="store_true",
                        help="short run for demos and tests (also: INFOGAN_FAST=1)")
    recipe = t.add_argument_group("recipe")
    recipe.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                        help="images (and latents) per step")
    recipe.add_argument("--lr-d", type=float, default=DEFAULTS.lr_d,
                        help="Adam learning rate of D, its trunk and the Q head")
    recipe.add_argument("--lr-g", type=float, default=DEFAULTS.lr_g, help="Adam learning rate of G")
    recipe.add_argument("--beta1", type=float, default=DEFAULTS.beta1, help="Adam momentum β1")
    recipe.add_argument("--lambda-cat", type=float, default=DEFAULTS.lambda_cat,
                        help="λ of the categorical codes' information term")
    recipe.add_argument("--lambda-cont", type=float, default=DEFAULTS.lambda_cont,
                        help="λ of the continuous codes' information term")
    recipe.add_argument("--lambda-ortho", type=float, default=DEFAULTS.lambda_ortho,
                        help="weight of the penalty on overlapping image changes of two "
                             "continuous codes (mean squared cosine; 0 = off)")
    recipe.add_argument("--init", default=None, metavar="WEIGHTS",
                        help="start from this weights file's G and D (a fine-tune: fresh Adam, "
                             "its latent spec and widths; the latent and width options are ignored; "
                             "with --resume the checkpoint's weights are used instead)")
    recipe.add_argument("--jitter-continuous", action="store_true",
                        help="Q reads the continuous codes from the moved copy too")
    recipe.add_argument("--cont-std", type=float, default=DEFAULTS.cont_std, metavar="SIGMA",
                        help="fix σ of Q's Gaussian for every continuous code (the paper's code: 1) "
                             "instead of learning it")
    recipe.add_argument("--warmup-images", type=int, default=DEFAULTS.warmup_images,
                        help="λ_cat rises linearly from 0 over this many training images")
    recipe.add_argument("--no-jitter", action="store_true",
                        help="Q reads the categorical code from G(z, c) itself, as in the paper, "
                             "instead of from a randomly shifted/rotated/scaled copy")
    recipe.add_argument("--jitter", type=float, nargs=3, metavar=("DEGREES", "SHIFT", "SCALE"),
                        default=None, help="range of that random copy: rotation ±DEGREES, shift "
                        "±SHIFT of half the image, scale ×(1 ± SCALE) (default: %s)" % (
                            " ".join(f"{v:g}" for v in DEFAULTS.jitter.to_dict().values())))
    recipe.add_argument("--seed", type=int, default=DEFAULTS.seed,
                        help="fixes initialization, batch order and latents")
    recipe.add_argument("--paper", action="store_true",
                        help="the paper's recipe: its network widths, batch 64, Adam lr D 2e-4 / "
                             "G 1e-3, λ = 1 for the categorical code and 0.1 for the "
                             "continuous ones, no warm-up, no jitter")
    latent = t.add_argument_group("latent spec")
    latent.add_argument("--noise-dim", type=int, default=DEFAULTS.spec.noise_dim, help="size of z")
    latent.add_argument("--categorical", type=int, nargs="+", default=list(DEFAULTS.spec.categorical),
                        help="categories of each categorical code")
    latent.add_argument("--n-continuous", type=int, default=DEFAULTS.spec.n_continuous,
                        help="number of continuous codes")
    latent.add_argument("--priors", nargs="+", choices=["uniform", "gaussian"], default=None,
                        help="prior of each continuous code (default: all uniform)")
    width = t.add_argument_group("network widths")
    width.add_argument("--g-channels", type=int, default=DEFAULTS.model.g_channels,
                       help="channels of G's 14×14 layer (its 7×7 layer has twice as many)")
    width.add_argument("--d-channels", type=int, default=DEFAULTS.model.d_channels,
                       help="channels of D's first conv (its second has twice as many)")
    width.add_argument("--fc", type=int, default=DEFAULTS.model.fc,
                       help="width of G's first FC layer and of D's FC layer")
    width.add_argument("--q-hidden", type=int, default=DEFAULTS.model.q_hidden,
                       help="width of the Q head's hidden layer")
    misc = t.add_argument_group("machine and logging")
    misc.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    misc.add_argument("--threads", type=int, default=None,
                      help="CPU threads (default: the cores this process may use)")
    misc.add_argument("--checkpoint-minutes", type=float, default=DEFAULTS.checkpoint_minutes,
                      help="also checkpoint this often, besides each epoch end")
    misc.add_argument("--snapshot-minutes", type=float, default=None,
                      help="keep a weights snapshot this often in snapshots/ (for curves)")
    misc.add_argument("--snapshot-steps", type=int, default=None,
                      help="keep a weights snapshot every this many steps in snapshots/ "
                           "(reproducible points of training)")
    misc.add_argument("--no-figures", action="store_true", help="skip the per-epoch figures")
    misc.add_argument("--tensorboard", action="store_true",
                      help="log scalars and histograms to <out-dir>/tensorboard")
    misc.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--sample", default=None, metavar="PNG",
                   help="after training, save a figure of kind (c) here")

    e = sub.add_parser("evaluate", help="Q's accuracy on real images and the bound L_I",
                       formatter_class=_Help)
    e.add_argument("checkpoint", help="a checkpoint.pt or a weights file")
    e.add_argument("--dataset", default=None,
                   help="data to score on (default: the one it was trained on, else mnist)")
    e.add_argument("--split", default="test", choices=["test", "val"],
                   help="test images, or the validation split held out of training")
    _data_dir_arg(e)
    e.add_argument("--samples", type=int, default=10_000, help="samples for the L_I estimate")
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
    s.add_argument("--steps", type=int, default=10, help="images per row")
    s.add_argument("--seed", type=int, default=0, help="seed of the noise")
    s.add_argument("--out", required=True, help="PNG file to write")

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


def _train_config(a) -> TrainConfig:
    spec = LatentSpec(a.noise_dim, tuple(a.categorical), a.n_continuous,
                      tuple(a.priors) if a.priors else None)
    model = ModelConfig(a.g_channels, a.d_channels, a.fc, a.q_hidden)
    recipe = dict(batch_size=a.batch_size, lr_d=a.lr_d, lr_g=a.lr_g, beta1=a.beta1,
                  lambda_cat=a.lambda_cat, lambda_cont=a.lambda_cont, cont_std=a.cont_std,
                  jitter_continuous=a.jitter_continuous, lambda_ortho=a.lambda_ortho,
                  warmup_images=a.warmup_images,
                  jitter=None if a.no_jitter else (AffineJitter(*a.jitter) if a.jitter
                                                   else DEFAULTS.jitter))
    if getattr(a, "init", None) and not a.resume and a.paper:
        raise ConfigError("--init and --paper do not go together: a fine-tune keeps the widths "
                          f"of {a.init}; drop --paper (its learning rates can be given one by one).")
    if a.paper:
        model = ModelConfig.paper()
        recipe.update(batch_size=64, lr_d=2e-4, lr_g=1e-3, beta1=0.5, lambda_cat=1.0,
                      lambda_cont=0.1, warmup_images=0, jitter=None)
    return TrainConfig(
        dataset=a.dataset, data_dir=a.data_dir,
        out_dir=a.out_dir or str(Path("runs") / a.dataset), spec=spec, model=model,
        seed=a.seed, epochs=a.epochs, max_minutes=a.minutes or None, max_steps=a.steps,
        fast=a.fast or DEFAULTS.__class__().fast, device=a.device, threads=a.threads,
        checkpoint_minutes=a.checkpoint_minutes, snapshot_minutes=a.snapshot_minutes,
        snapshot_steps=a.snapshot_steps,
        figures=not a.no_figures, tensorboard=a.tensorboard, progress=not a.no_progress,
        **recipe)


def _cmd_train(a) -> int:
    cfg = _train_config(a)
    init = None
    if a.init and not a.resume:
        _, _, G0, D0 = ckpt.load_models(a.init)
        if D0 is None:
            raise ckpt.CheckpointError(f"{a.init} holds no discriminator, so training cannot start "
                                       "from it: give a weights file exported with D (the default).")
        init = (G0.float(), D0.float())
        cfg = replace(cfg, spec=G0.spec, model=G0.config)    # a fine-tune keeps the model's shape
    result = train(cfg, resume=a.resume, init=init)
    info = result.history["info_cat"][-50:]
    print(f"trained {result.step} steps in {result.elapsed_s / 60:.1f} min; "
          f"categorical L_I (last {len(info)} steps) {sum(info) / max(len(info), 1):.3f} "
          f"of H(c) = {cfg.spec.entropy():.3f} nats")
    print(f"checkpoint: {result.checkpoint}")
    if a.sample:
        from torchvision.utils import save_image

        from .viz import figure_grid
        save_image(figure_grid(result.generator, "c", 0), a.sample)
        print(f"figure (c): {a.sample}")
    if result.interrupted:
        print(f"interrupted: resume with  python -m infogan_lib train --out-dir {cfg.out_dir} "
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
    dataset = a.dataset or (obj.get("train_config") or {}).get("dataset") or "mnist"
    if dataset == "synthetic":
        dataset = "synthetic"
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
    from torchvision.utils import save_image

    from .viz import figure_grid

    spec, _, G, _ = ckpt.load_models(a.checkpoint)
    if a.kind == "c" and not 1 <= a.code <= spec.n_continuous:
        raise SpecError(f"--code {a.code} does not exist: the model has {spec.n_continuous} "
                        f"continuous codes (1…{spec.n_continuous}).")
    grid = figure_grid(G, a.kind, a.code - 1, a.seed, a.steps, tuple(a.range))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, a.out)
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
    except (DataNotFoundError, ckpt.CheckpointError, ConfigError, SpecError,
            FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
