"""What the shipped weights' codes mean, measured: the semantics tables and Q from one label per class.

For MNIST and Fashion-MNIST (the shipped final weights, infogan_lib/pretrained/):
- the semantics table of each continuous code (infogan_lib.semantics: Spearman ρ between code value and
  each descriptor within ≥ 1,000 sweeps of the prior's range, effect in SDs of real test images), the
  strongest descriptor of each code, and the course's bar: the codes are *separate* when each
  controls its own descriptor (|ρ| ≥ 0.8, ≥ 1 SD) and neither moves the other's with |ρ| ≥ 0.3;
- Q's accuracy on the test set when its categories are named from one labelled image per class,
  median (and range) over 10 random draws of those images, next to the all-labels accuracy.

    python benchmarks/semantics.py                 # about 1 minute
    python benchmarks/semantics.py --n-noise 300   # more sweeps
"""

from __future__ import annotations

import argparse
import statistics

import torch

from infogan_lib import load_images, weights
from infogan_lib.metrics import one_label_per_class, q_accuracy, q_predict
from infogan_lib.semantics import measure
from infogan_lib.runtime import available_cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-noise", type=int, default=100, help="noise vectors per category per sweep")
    ap.add_argument("--draws", type=int, default=10, help="draws of the one labelled image per class")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(available_cores())
    for dataset in ("mnist", "fashion-mnist"):
        info = weights.info(dataset)
        test = load_images(dataset, "test", args.data_dir)
        _, _, G, D = weights.load_pretrained(dataset)
        print(f"\n## {dataset}: shipped weights, {info['command']}")
        if info.get("finetune"):
            print(f"then {info['finetune']['command']}, kept at step {info['finetune']['picked_step']}")
        table = measure(G, test.images, n_noise=args.n_noise)
        print(f"{table.n_sweeps} sweeps per code\n")
        print(table.to_markdown())
        for line in table.summary():
            print(" ", line)
        print(f"  separate (the course's bar): {table.separate()}")
        _, probs, _ = q_predict(D, test.images)
        draws = one_label_per_class(probs, test.labels.numpy(), draws=args.draws, seed=0)
        full = q_accuracy(D, test.images, test.labels).accuracy
        print(f"  Q named from one label per class: median {statistics.median(draws):.4f} over "
              f"{len(draws)} draws (min {min(draws):.4f}, max {max(draws):.4f}); all labels: {full:.4f}")


if __name__ == "__main__":
    main()
