"""Training throughput, and how close it comes to what the CPU's matrix multiply can do.

For each model and batch size: samples/s of real training steps (`infogan_lib.step.infogan_step`
on MNIST-shaped batches, Q reading G(z, c) itself), the FLOPs of one step counted with `torch.utils.flop_counter`, and the
samples/s that a square fp32 GEMM of the same FLOPs reaches in the same run. Their ratio says how
much of the step is spent outside big matrix products (batch norm, activations, Adam, Python).

    python benchmarks/throughput.py                    # default model, batch sizes 32…256
    python benchmarks/throughput.py --paper --batch 64 128 256
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from infogan_lib import Information, LatentSpec, ModelConfig, Recipe, infogan_step
from infogan_lib.loop import build
from infogan_lib.runtime import available_cores


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_it(fn, min_seconds: float = 3.0, warmup: int = 3) -> float:
    """Seconds per call, median of repeated timing blocks."""
    for _ in range(warmup):
        fn()
    times, total = [], 0.0
    while total < min_seconds or len(times) < 5:
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        times.append(dt)
        total += dt
    times.sort()
    return times[len(times) // 2]


def gemm_gflops(n: int, seconds: float = 2.0) -> tuple[float, float]:
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = time_it(lambda: a @ b, seconds)
    return 2 * n ** 3 / t / 1e9, t


def step_flops(recipe: Recipe) -> int:
    G, D, opt_g, opt_d = build(recipe, torch.device("cpu"))
    real = torch.rand(recipe.batch_size, 1, 28, 28) * 2 - 1
    latent = recipe.spec.sample(recipe.batch_size, torch.Generator().manual_seed(0))
    counter = FlopCounterMode(display=False)
    with counter:
        infogan_step(G, D, opt_g, opt_d, real, latent, Information(recipe.lambda_cat, recipe.lambda_cont))
    return counter.get_total_flops()


def train_rate(recipe: Recipe, seconds: float) -> float:
    G, D, opt_g, opt_d = build(recipe, torch.device("cpu"))
    real = torch.rand(recipe.batch_size, 1, 28, 28) * 2 - 1
    g = torch.Generator().manual_seed(0)
    info = Information(recipe.lambda_cat, recipe.lambda_cont)
    t = time_it(lambda: infogan_step(G, D, opt_g, opt_d, real, recipe.spec.sample(recipe.batch_size, g),
                                     info), seconds)
    return recipe.batch_size / t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[32, 64, 128, 256])
    p.add_argument("--paper", action="store_true", help="also the paper's widths")
    p.add_argument("--seconds", type=float, default=4.0, help="timing per measurement")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    threads = a.threads or available_cores()
    torch.set_num_threads(threads)
    big, _ = gemm_gflops(1024)
    print(f"CPU: {cpu_name()}  threads: {threads}  torch {torch.__version__}")
    print(f"fp32 GEMM 1024³: {big:.1f} GFLOP/s")
    models = [("default", Recipe().model)]
    if a.paper:
        models.append(("paper", ModelConfig.paper()))
    default_batch = Recipe().batch_size
    print(f"{'model':8} {'batch':>5} {'MFLOP/sample':>12} {'samples/s':>10} {'GEMM-equiv/s':>12} "
          f"{'ratio':>6}  (GEMM n, GFLOP/s)")
    for name, model in models:
        for batch in a.batch:
            cfg = Recipe(model=model, spec=LatentSpec(), batch_size=batch)
            flops = step_flops(cfg)
            n = round((flops / 2) ** (1 / 3))
            gflops, t_gemm = gemm_gflops(n, a.seconds / 2)
            ref_rate = batch / (flops / (gflops * 1e9))
            rate = train_rate(cfg, a.seconds)
            mark = "  <- default" if name == "default" and batch == default_batch else ""
            print(f"{name:8} {batch:5d} {flops / batch / 1e6:12.1f} {rate:10.0f} {ref_rate:12.0f} "
                  f"{rate / ref_rate:6.2f}  ({n}, {gflops:.0f}){mark}", flush=True)


if __name__ == "__main__":
    main()
