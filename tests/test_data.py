"""Data: where it is looked for, and the one clear error when it is missing offline."""

import pytest
import torch
import torchvision

from infogan_lib import DataNotFoundError, load_images
from infogan_lib.data import ENV_VAR, resolve_data_dir, synthetic_shapes

from conftest import requires_mnist


def test_data_dir_comes_from_the_option_then_the_environment_then_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "opt") == tmp_path / "opt"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir() == tmp_path / "cache" / "infogan-course" / "data"


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_missing_data_offline_names_files_folder_and_both_fixes(monkeypatch, tmp_path, name, folder):
    cls = torchvision.datasets.MNIST if folder == "MNIST" else torchvision.datasets.FashionMNIST
    # no internet: every mirror refuses the connection at once (port 9 on loopback is closed)
    monkeypatch.setattr(cls, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataNotFoundError) as info:
        load_images(name, "test", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / folder / "raw") in message
    for f in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert f in message
    assert "--data-dir" in message and ENV_VAR in message and "internet" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no torchvision trace


def test_unknown_data_set_and_split_are_refused():
    with pytest.raises(ValueError, match="unknown data set"):
        load_images("cifar", "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_images("mnist", "dev")


def test_synthetic_data_is_seeded_and_labelled():
    a, b = synthetic_shapes(300, seed=4), synthetic_shapes(300, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.shape == (300, 1, 28, 28) and a.images.dtype == torch.uint8
    assert set(a.labels.tolist()) == set(range(10))
    # each class is a different shape: class means differ more than images within a class vary
    means = torch.stack([a.images[a.labels == k].float().mean(0) for k in range(10)])
    assert (means[0] - means[5]).abs().mean() > 20


@requires_mnist
def test_mnist_splits_hold_out_validation_images_from_training():
    train, val, test = (load_images("mnist", s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (55_000, 5_000, 10_000)
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (1, 28, 28)
    full = load_images("mnist", "train-full")
    assert torch.equal(full.images[55_000:], val.images)                    # val = last 5,000
    assert -1 <= val.float().min() and val.float().max() <= 1


@requires_mnist
def test_a_read_only_folder_of_the_gz_files_alone_is_read_without_importing_torchvision(tmp_path):
    import shutil
    import subprocess
    import sys
    raw = resolve_data_dir() / "MNIST" / "raw"
    packed = tmp_path / "MNIST" / "raw"
    packed.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        source = raw / f"{name}.gz"
        if not source.exists():
            pytest.skip("the data folder has no .gz files")
        shutil.copy(source, packed)
    for folder in (packed, packed.parent, tmp_path):
        folder.chmod(0o555)
    try:
        code = ("import sys; from infogan_lib import load_images; import torch\n"
                f"a = load_images('mnist', 'test', data_dir={str(tmp_path)!r})\n"
                f"b = load_images('mnist', 'test')\n"
                "assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)\n"
                "print(len(a), 'torchvision' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.split() == ["10000", "False"], out.stderr[-2000:]
        assert sorted(p.name for p in packed.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    finally:
        for folder in (tmp_path, packed.parent, packed):
            folder.chmod(0o755)


@requires_mnist
def test_a_damaged_or_mismatched_file_is_named_with_the_fix(tmp_path):
    raw = resolve_data_dir() / "MNIST" / "raw"
    copy = tmp_path / "MNIST" / "raw"
    copy.mkdir(parents=True)
    def unpacked(name):                            # the file's bytes, from it or its .gz
        import gzip
        plain = raw / name
        return plain.read_bytes() if plain.exists() else gzip.decompress((raw / f"{name}.gz").read_bytes())
    labels, data = unpacked("t10k-labels-idx1-ubyte"), unpacked("t10k-images-idx3-ubyte")
    (copy / "t10k-labels-idx1-ubyte").write_bytes(labels)
    (copy / "t10k-images-idx3-ubyte").write_bytes(data[:-100])              # cut short
    with pytest.raises(DataNotFoundError, match="t10k-images-idx3-ubyte is not a whole IDX file.*delete it"):
        load_images("mnist", "test", data_dir=tmp_path)
    (copy / "t10k-images-idx3-ubyte").write_bytes(data)
    (copy / "t10k-labels-idx1-ubyte").write_bytes(labels[:4] + (9000).to_bytes(4, "big") + labels[8:9008])
    with pytest.raises(DataNotFoundError, match="10,000 images but .* 9,000 labels"):
        load_images("mnist", "test", data_dir=tmp_path)
