"""MNIST and Fashion-MNIST as in-memory tensors, found offline or downloaded by torchvision.

Where the data lives, first match wins:
  1. the `data_dir` argument (the command line's ``--data-dir``),
  2. the environment variable ``INFOGAN_DATA``,
  3. a per-user cache folder, ``$XDG_CACHE_HOME/infogan-course/data`` (``~/.cache/...``).

The folder uses torchvision's layout (``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``). The IDX files
are read directly, packed or unpacked, so a read-only folder of the four .gz files is enough (and no
process pays torchvision's 2-second import to read them). When they are missing, torchvision
downloads them, with internet; without, one `DataNotFoundError` says which files, where, and how to
fix it.

Splits: ``train`` is the first 55,000 training images, ``val`` the last 5,000 (for choosing
hyperparameters — never the test set), ``train-full`` all 60,000, ``test`` the 10,000 test images.
Training never looks at a label; labels are only used to score Q afterwards.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

ENV_VAR = "INFOGAN_DATA"
VAL_SIZE = 5000
SPLITS = ("train", "val", "train-full", "test")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))


class DataNotFoundError(RuntimeError):
    """The data set is not on disk and could not be downloaded."""


@dataclass
class ImageSet:
    """Images as uint8 (N, 1, 28, 28) in 0…255 and integer labels (N,)."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def float(self, device=None) -> torch.Tensor:
        """The images as float32 in [-1, 1], the range G's tanh produces."""
        return to_model_range(self.images.to(device) if device else self.images)

    def subset(self, index) -> "ImageSet":
        return ImageSet(self.name, self.images[index], self.labels[index], self.classes)


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float().div_(127.5).sub_(1.0)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1], for plotting and image descriptors."""
    return (images + 1.0).mul(0.5).clamp(0.0, 1.0)


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "infogan-course" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $INFOGAN_DATA, else the per-user cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_data_dir()


FOLDERS = {"mnist": ("MNIST", DIGIT_CLASSES), "fashion-mnist": ("FashionMNIST", FASHION_CLASSES)}
IDX_MAGIC = {3: 2051, 1: 2049}             # images (N, rows, cols), labels (N,): unsigned bytes


def _dataset_key(name: str) -> str:
    key = name.lower().replace("_", "-")
    if key == "fashion":
        key = "fashion-mnist"
    if key not in FOLDERS:
        raise ValueError(f"unknown data set {name!r}; choose 'mnist' or 'fashion-mnist' "
                         "(or 'synthetic' for tests).")
    return key


def read_idx(path: Path, dims: int) -> torch.Tensor:
    """An IDX file of unsigned bytes (LeCun's MNIST format: a big-endian magic number, the sizes,
    the data), packed (.gz) or not, as a uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataNotFoundError(f"{path} cannot be read ({err}): delete it and copy or download it "
                                "again.") from None
    header = 4 * (1 + dims)
    fields = [int.from_bytes(data[i:i + 4], "big") for i in range(0, header, 4)] if len(data) >= header else []
    sizes = fields[1:]
    if not fields or fields[0] != IDX_MAGIC[dims] or len(data) != header + math.prod(sizes):
        raise DataNotFoundError(f"{path} is not a whole IDX file of {dims}-dimensional uint8 data "
                                f"({len(data):,} bytes, header {fields}): it is damaged or cut short; "
                                "delete it and copy or download it again.")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*sizes)


def _raw_file(raw: Path, name: str) -> Path | None:
    """raw/name, or raw/name.gz: the first that exists."""
    for path in (raw / name, raw / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _read_split(key: str, train: bool, root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 28, 28), labels (N,)) of one of the two files pairs, read from root, or after
    torchvision has downloaded them."""
    raw = root / FOLDERS[key][0] / "raw"
    prefix = "train" if train else "t10k"
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    paths = [_raw_file(raw, n) for n in names]
    if None in paths:
        _download(key, root)
        paths = [_raw_file(raw, n) for n in names]
    images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1).long()
    if len(images) != len(labels):
        raise DataNotFoundError(f"{paths[0]} holds {len(images):,} images but {paths[1]} {len(labels):,} "
                                "labels: one of them is from another data set or cut short.")
    return images, labels


def _download(key: str, root: Path) -> None:
    """The four files of `key` into root (torchvision's download), or one DataNotFoundError."""
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}[key]
    raw = root / cls.__name__ / "raw"
    files = [Path(url).name for url, _md5 in cls.resources]
    missing = [f for f in files if not (raw / f).exists()]
    try:
        root.mkdir(parents=True, exist_ok=True)
        log.info("fetching %s into %s (%s missing)", key, root, ", ".join(missing))
        # torchvision prints its progress; keep the notebook output to our one log line
        with contextlib.redirect_stdout(io.StringIO()):
            cls(str(root), train=True, download=True)
    except PermissionError as err:
        raise DataNotFoundError(
            f"{key} is not complete in {raw} (missing: {', '.join(missing)}) and the folder is not "
            f"writable ({err.strerror}) to download it into: copy the four .gz files there, or pass "
            f"a writable folder with --data-dir DIR or {ENV_VAR}=DIR."
        ) from None
    except Exception as err:  # urllib/HTTP errors, failed MD5 checks: all mean "not usable"
        raise DataNotFoundError(
            f"{key} is not in {raw} and could not be downloaded ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no details'}).\n"
            f"Missing files: {', '.join(missing) or '(present but failing their MD5 check)'}.\n"
            "Fix it in one of two ways:\n"
            f"  * with internet, run again: torchvision downloads them into {root};\n"
            f"  * offline, copy the four original .gz files into {raw}, or point the kit at a "
            f"folder that has them in torchvision's layout ({cls.__name__}/raw/…) with "
            f"--data-dir DIR or the environment variable {ENV_VAR}=DIR."
        ) from None


def load_images(name: str = "mnist", split: str = "train",
                data_dir: str | os.PathLike | None = None) -> ImageSet:
    """One split of MNIST or Fashion-MNIST as an `ImageSet` held in memory.

    The whole split is one uint8 tensor (47 MB for MNIST's 60k images): indexing it beats a
    DataLoader by far on a CPU, where worker processes would compete with training for the cores.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}.")
    if name == "synthetic":
        return synthetic_shapes(2000 if split != "test" else 500, seed=0 if split != "test" else 1)
    key = _dataset_key(name)
    images, labels = _read_split(key, split != "test", resolve_data_dir(data_dir))
    out = ImageSet(key, images.unsqueeze(1).contiguous(), labels, FOLDERS[key][1])   # (N, 1, 28, 28) uint8
    n = len(out)
    if split == "train":
        return out.subset(slice(0, n - VAL_SIZE))
    if split == "val":
        return out.subset(slice(n - VAL_SIZE, n))
    return out


def synthetic_shapes(n: int = 2000, seed: int = 0, n_classes: int = 10) -> ImageSet:
    """A tiny generated data set for tests: class k is a bar at angle 18°·k through the centre,
    with random thickness, length and offset. Seeded, so every call gives the same images.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(n_classes, (n,), generator=g)
    angle = labels.float() * (torch.pi / n_classes)
    thick = 1.0 + 1.5 * torch.rand(n, generator=g)
    length = 7.0 + 4.0 * torch.rand(n, generator=g)
    offset = (torch.rand(n, 2, generator=g) - 0.5) * 4
    ys, xs = torch.meshgrid(torch.arange(28.0) - 13.5, torch.arange(28.0) - 13.5, indexing="ij")
    xs = xs[None] - offset[:, 0, None, None]
    ys = ys[None] - offset[:, 1, None, None]
    ux, uy = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    along = xs * ux + ys * uy
    across = -xs * uy + ys * ux
    ink = ((across.abs() < thick[:, None, None]) & (along.abs() < length[:, None, None])).float()
    images = (ink * 255).to(torch.uint8).unsqueeze(1)
    return ImageSet("synthetic", images, labels, tuple(str(k) for k in range(n_classes)))
