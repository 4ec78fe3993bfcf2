"""Files written by earlier versions of the kit still work: the shipped weights load, and a
checkpoint from before `Recipe` and `Run` existed (schema 1, one flat `train_config`, the anchor at
the top level) resumes to exactly the weights the old code reached without stopping.

The fixtures in tests/fixtures/schema1/ were written by commit 1ccbd38 (a tiny network on the
synthetic data, one thread): `*_half.pt` is the checkpoint halfway through a run, `*_whole_weights.pt`
the weights at the end of the same run made in one go, `expected.json` their hashes and the CPU
capability and torch version they were made with. Bit-for-bit equality is asserted where those
match this machine; elsewhere floating-point rounding differs between instruction sets, and the
weights must agree to 1e-4.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from infogan_lib import Run, load_models, train, weights
from infogan_lib import checkpoint as ckpt
from infogan_lib.checkpoint import saved_config

FIXTURES = Path(__file__).parent / "fixtures" / "schema1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
SAME_MACHINE = (torch.backends.cpu.get_cpu_capability(), torch.__version__) == (
    EXPECTED["cpu_capability"], EXPECTED["torch"])


@pytest.mark.parametrize("name", ["plain", "anchored"])
def test_a_schema_1_checkpoint_resumes_to_the_old_codes_weights(name, tmp_path):
    shutil.copy(FIXTURES / f"{name}_half.pt", tmp_path / "checkpoint.pt")
    state = ckpt.load_file(tmp_path / "checkpoint.pt", kind="checkpoint")
    assert state["schema"] == 1 and "train_config" in state and "recipe" not in state
    recipe, run = saved_config(state)
    assert run.threads == 1 and run.steps == EXPECTED[name]["half_steps"] and run.dataset == "synthetic"
    if name == "anchored":                     # jitter + jitter_continuous → moved_codes="all"
        assert (recipe.moved_codes, recipe.lambda_anchor, recipe.lambda_ortho) == ("all", 2.0, 1.0)
        assert state["anchor"] is not None and recipe.spec.n_continuous == 3
    else:
        assert recipe.moved_codes == "categorical" and recipe.lambda_anchor == 0.0

    result = train(None, Run(dataset="synthetic", out_dir=str(tmp_path), steps=EXPECTED[name]["steps"],
                             progress=False, figures=False, fast=False), resume=True)
    assert result.step == EXPECTED[name]["steps"] and result.run.threads == 1
    if SAME_MACHINE:
        assert ckpt.weights_sha256(result.generator, result.discriminator) == EXPECTED[name]["sha256"]
    _, _, G_old, D_old = load_models(FIXTURES / f"{name}_whole_weights.pt")
    for new, old in ((result.generator, G_old), (result.discriminator, D_old)):
        for (key, a), b in zip(new.state_dict().items(), old.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), atol=1e-4), key
    again = ckpt.load_file(tmp_path / "checkpoint.pt", kind="checkpoint")
    assert again["schema"] == ckpt.SCHEMA and again["recipe"] == recipe.to_dict()


def test_a_schema_1_checkpoint_with_a_setting_that_no_longer_exists_is_refused_clearly(tmp_path):
    from infogan_lib import ConfigError

    state = ckpt.load_file(FIXTURES / "plain_half.pt")
    state["train_config"]["warmup_images"] = 5000
    ckpt.atomic_save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError, match="warmup_images=5000.*cannot be resumed"):
        train(None, Run(dataset="synthetic", out_dir=str(tmp_path), steps=20), resume=True)
    spec, _, G, D = load_models(tmp_path / "checkpoint.pt")         # its weights still load
    assert spec.noise_dim == 4 and D is not None


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_every_shipped_weights_file_loads(dataset):
    for stage in ("early", "middle", "final"):
        spec, config, G, D = weights.load_pretrained(dataset, stage)
        assert spec.n_continuous == 2 and spec.categorical == (10,) and (D is not None) == (stage == "final")
        with torch.no_grad():
            images = G(spec.sample(4, torch.Generator().manual_seed(0)).input())
        assert images.shape == (4, 1, 28, 28) and images.abs().max() <= 1.0
