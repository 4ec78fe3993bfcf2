"""Training: it learns, it is reproducible, it resumes exactly, and it never loses a checkpoint."""

import os
import signal
import threading

import pytest
import torch

from infogan_lib import CheckpointError, ConfigError, TrainConfig, load_models, train
from infogan_lib import checkpoint as ckpt
from infogan_lib.train import FAST_STEPS


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_short_training_on_synthetic_data_lowers_the_q_loss(tiny_config):
    result = train(tiny_config(max_steps=150, lambda_cont=0.0, lr_d=1e-3))
    q = result.history["q_loss"]
    first, last = sum(q[:15]) / 15, sum(q[-15:]) / 15
    assert last < 0.6 * first, f"Q loss went from {first:.3f} to {last:.3f}"
    assert result.history["info_cat"][-1] > 1.0                             # of ln 10 ≈ 2.30


def test_the_same_seed_gives_the_same_weights(tiny_config, tmp_path):
    a = train(tiny_config(out_dir=str(tmp_path / "a")))
    b = train(tiny_config(out_dir=str(tmp_path / "b")))
    c = train(tiny_config(out_dir=str(tmp_path / "c"), seed=1))
    assert _same_weights(a.generator, b.generator) and _same_weights(a.discriminator, b.discriminator)
    assert a.history["d_loss"] == b.history["d_loss"]
    assert not _same_weights(a.generator, c.generator)


def test_stop_and_resume_equals_one_uninterrupted_run(tiny_config, tmp_path):
    # 30 steps with batch 32 on 2,000 images crosses an epoch boundary (62 steps) only if longer;
    # use batch 64 so the run spans an epoch end (31 steps per epoch)
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), max_steps=40, batch_size=64))
    half = train(tiny_config(out_dir=str(tmp_path / "split"), max_steps=20, batch_size=64))
    assert half.step == 20
    rest = train(tiny_config(out_dir=str(tmp_path / "split"), max_steps=40, batch_size=64), resume=True)
    assert rest.step == 40
    assert _same_weights(whole.generator, rest.generator)
    assert _same_weights(whole.discriminator, rest.discriminator)
    for key in ("d_loss", "g_loss", "q_loss", "info_cat", "info_cont"):
        assert whole.history[key] == rest.history[key], key
    saved = ckpt.load_file(tmp_path / "split" / "checkpoint.pt", kind="checkpoint")
    whole_saved = ckpt.load_file(tmp_path / "whole" / "checkpoint.pt", kind="checkpoint")
    for k in whole_saved["opt_g"]["state"]:
        assert torch.equal(saved["opt_g"]["state"][k]["exp_avg"], whole_saved["opt_g"]["state"][k]["exp_avg"])


def test_resume_keeps_the_runs_recipe(tiny_config, tmp_path):
    train(tiny_config(max_steps=5, lr_g=5e-4))
    resumed = train(tiny_config(max_steps=8, lr_g=1.0), resume=True)     # recipe from the checkpoint
    assert resumed.config.lr_g == 5e-4 and resumed.step == 8


def test_starting_over_an_existing_run_or_resuming_nothing_is_refused(tiny_config, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(tiny_config(), resume=True)
    train(tiny_config(max_steps=2))
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny_config(max_steps=2))


def test_every_file_a_run_writes_loads_with_weights_only(tiny_config, tmp_path):
    train(tiny_config(max_steps=70, batch_size=64, snapshot_minutes=1e-4, figures=True))
    run = tmp_path / "run"
    files = [run / "checkpoint.pt", *sorted((run / "snapshots").glob("*.pt"))]
    assert len(files) >= 3
    for f in files:
        obj = torch.load(f, weights_only=True)
        assert obj["schema"] == ckpt.SCHEMA
    assert sorted(p.name for p in (run / "figures").glob("epoch001_*.png")) == [
        "epoch001_a.png", "epoch001_b.png", "epoch001_c1.png", "epoch001_c2.png"]
    spec, _, G, D = load_models(files[-1])
    assert spec.n_continuous == 2 and D is not None and not G.training


def test_step_snapshots_land_on_exact_steps_and_match_the_run(tiny_config, tmp_path):
    result = train(tiny_config(max_steps=10, snapshot_steps=4))
    snaps = sorted((tmp_path / "run" / "snapshots").glob("*.pt"))
    assert [p.name for p in snaps] == ["step0000000.pt", "step0000004.pt", "step0000008.pt",
                                       "step0000010.pt"]
    _, _, G, _ = load_models(snaps[-1])
    for a, b in zip(G.state_dict().values(), result.generator.state_dict().values()):
        assert torch.equal(a, b.cpu())


def test_an_interrupted_checkpoint_write_leaves_the_previous_checkpoint(tiny_config, tmp_path, monkeypatch):
    train(tiny_config(max_steps=3))
    path = tmp_path / "run" / "checkpoint.pt"
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        f.truncate(100)                                  # half-written, then the "power cut"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.atomic_save({"schema": 1, "kind": "checkpoint"}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert ckpt.load_file(path, kind="checkpoint")["step"] == 3
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(tiny_config, tmp_path):
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        result = train(tiny_config(max_steps=100_000))
    finally:
        timer.cancel()
    assert result.interrupted and 0 < result.step < 100_000
    saved = ckpt.load_file(tmp_path / "run" / "checkpoint.pt", kind="checkpoint")
    assert saved["step"] == result.step
    again = train(tiny_config(max_steps=result.step + 3), resume=True)
    assert again.step == result.step + 3 and not again.interrupted


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated or corrupt"),
    (lambda p: p.write_bytes(b"not a checkpoint at all"), "truncated or corrupt"),
    (lambda p: torch.save({"schema": 99, "kind": "checkpoint", "spec": {}, "model_config": {},
                           "generator": {}}, p), "newer than this kit"),
    (lambda p: torch.save({"hello": 1}, p), "not an infogan_lib checkpoint"),
])
def test_damaged_or_foreign_checkpoints_give_a_clear_error(tiny_config, tmp_path, damage, words):
    train(tiny_config(max_steps=2))
    path = tmp_path / "run" / "checkpoint.pt"
    damage(path)
    with pytest.raises(CheckpointError, match=words):
        train(tiny_config(max_steps=4), resume=True)
    with pytest.raises(CheckpointError, match=words):
        load_models(path)


def test_a_weights_file_cannot_resume_training(tiny_config, tmp_path):
    train(tiny_config(max_steps=2))
    run = tmp_path / "run"
    ckpt.export_weights(run / "checkpoint.pt", run / "w.pt")
    (run / "w.pt").replace(run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(tiny_config(max_steps=4), resume=True)


def test_half_precision_export_is_smaller_and_generates_nearly_the_same_images(tiny_config, tmp_path):
    result = train(tiny_config(max_steps=5))
    run = tmp_path / "run"
    full = ckpt.export_weights(run / "checkpoint.pt", run / "full.pt")
    half = ckpt.export_weights(run / "checkpoint.pt", run / "half.pt", half=True,
                               with_discriminator=False)
    assert half.stat().st_size < 0.35 * full.stat().st_size
    _, _, G, D = load_models(half, expected_sha256=ckpt.sha256(half))
    assert D is None
    latent = G.spec.sample(16, torch.Generator().manual_seed(0)).input()
    result.generator.eval()
    assert torch.allclose(G(latent), result.generator(latent), atol=5e-3)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_models(half, expected_sha256="0" * 64)


@pytest.mark.parametrize("overrides, words", [
    (dict(batch_size=0), "batch_size"), (dict(lr_g=-1.0), "lr_g"), (dict(lambda_cat=-1.0), "lambda_cat"),
    (dict(beta1=1.5), "beta1"), (dict(max_minutes=0.0), "max_minutes"), (dict(device="tpu"), "device"),
    (dict(cont_std=0.0), "cont_std"),
])
def test_invalid_configs_are_refused_with_a_reason(overrides, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**overrides)


def test_the_fast_switch_caps_the_run_and_comes_from_the_environment(tiny_config, monkeypatch):
    monkeypatch.setenv("INFOGAN_FAST", "1")
    assert TrainConfig().fast and TrainConfig().step_budget() == FAST_STEPS
    monkeypatch.setenv("INFOGAN_FAST", "0")
    assert not TrainConfig().fast
    result = train(tiny_config(max_steps=None, fast=True))
    assert result.step == FAST_STEPS


def test_training_restores_the_callers_thread_count(tiny_config):
    before = torch.get_num_threads()
    train(tiny_config(max_steps=2, threads=1))
    assert torch.get_num_threads() == before


def test_lambda_cat_warms_up_linearly_then_stays():
    cfg = TrainConfig(lambda_cat=2.0, batch_size=50, warmup_images=1000)
    assert cfg.lambda_cat_at(0) == 0.0
    assert cfg.lambda_cat_at(10) == pytest.approx(1.0)       # 500 of 1000 images
    assert cfg.lambda_cat_at(20) == cfg.lambda_cat_at(999) == 2.0
    assert TrainConfig(lambda_cat=2.0, warmup_images=0).lambda_cat_at(0) == 2.0


def test_tensorboard_gets_scalars_and_histograms(tiny_config, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(tiny_config(max_steps=32, batch_size=64, tensorboard=True, log_every=5))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert "train/info_cat" in events.Tags()["scalars"]
    assert len(events.Scalars("train/d_loss")) == 6                   # steps 5, 10, …, 30
    assert any(tag.startswith("G/") for tag in events.Tags()["histograms"])


def test_checkpoint_files_get_the_users_normal_permissions(tmp_path):
    path = ckpt.atomic_save({"schema": 1, "kind": "weights"}, tmp_path / "w.pt")
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask   # not mkstemp's private 0600


def test_q_reads_the_continuous_codes_from_the_moved_copy_only_when_asked():
    import copy

    from conftest import TINY_MODEL, TINY_SPEC
    from infogan_lib.augment import AffineJitter
    from infogan_lib.models import Discriminator, Generator
    from infogan_lib.train import train_step

    torch.manual_seed(0)
    G0, D0 = Generator(TINY_SPEC, TINY_MODEL), Discriminator(TINY_SPEC, TINY_MODEL)
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    latent = TINY_SPEC.sample(16, torch.Generator().manual_seed(1))

    def step(**kw):
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
        return train_step(G, D, opt_g, opt_d, real, latent, generator=torch.Generator().manual_seed(2),
                          **kw)["info_cont"]

    plain = step(jitter=None)
    moved_cat_only = step(jitter=AffineJitter(30, 0.3, 0.3))
    moved_all = step(jitter=AffineJitter(30, 0.3, 0.3), jitter_continuous=True)
    assert moved_cat_only == pytest.approx(plain)          # continuous codes still read from G(z, c)
    assert moved_all != pytest.approx(plain)


def test_torch_threads_sets_the_count_inside_and_restores_it_even_after_an_error():
    from infogan_lib.train import torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_a_warm_start_begins_from_the_given_networks_and_a_resume_ignores_them(tiny_config, tmp_path):
    first = train(tiny_config(out_dir=str(tmp_path / "first"), max_steps=5))
    cfg = tiny_config(out_dir=str(tmp_path / "warm"), max_steps=1, lr_d=1e-12, lr_g=1e-12, seed=3)
    warm = train(cfg, init=(first.generator, first.discriminator))
    fresh = train(tiny_config(out_dir=str(tmp_path / "fresh"), max_steps=1, lr_d=1e-12, lr_g=1e-12, seed=3))
    w0, w1 = first.generator.fc[0].weight, warm.generator.fc[0].weight
    assert torch.allclose(w0, w1, atol=1e-6), "one step at a tiny learning rate keeps the warm start's weights"
    assert not torch.allclose(fresh.generator.fc[0].weight, w0, atol=1e-3)
    resumed = train(tiny_config(out_dir=str(tmp_path / "warm"), max_steps=2), resume=True,
                    init=(fresh.generator, fresh.discriminator))
    assert resumed.step == 2 and torch.allclose(resumed.generator.fc[0].weight, w1, atol=1e-4)


def test_a_warm_start_for_another_spec_is_refused_with_the_fix(tiny_config, tmp_path):
    first = train(tiny_config(out_dir=str(tmp_path / "first"), max_steps=2))
    wider = tiny_config(out_dir=str(tmp_path / "wider"), spec=first.generator.spec.with_continuous())
    with pytest.raises(ConfigError, match="widen them to the new spec"):
        train(wider, init=(first.generator, first.discriminator))


class _PixelCodes(torch.nn.Module):
    """A stand-in generator: code j paints the pixel pattern patterns[j], scaled by its value."""

    def __init__(self, spec, patterns):
        super().__init__()
        self.spec, self.patterns = spec, patterns                 # (k, 28 * 28)

    def forward(self, x):
        codes = x[:, -self.spec.n_continuous:]
        return (codes @ self.patterns + x[:, :1]).view(-1, 1, 28, 28)


@pytest.mark.parametrize("overlap, expected", [(0.0, 0.0), (0.5, 0.25), (1.0, 1.0)])
def test_the_overlap_penalty_is_the_squared_cosine_between_the_codes_image_changes(overlap, expected):
    """Two codes whose image changes share a fraction `overlap` of their direction score overlap²."""
    from conftest import TINY_SPEC
    from infogan_lib.train import overlap_penalty

    a, b = torch.zeros(28 * 28), torch.zeros(28 * 28)
    a[:100], b[100:200] = 1.0, 1.0                                # two orthogonal unit-norm patterns
    a, b = a / a.norm(), b / b.norm()
    second = overlap * a + (1 - overlap ** 2) ** 0.5 * b          # cos(first, second) = overlap
    G = _PixelCodes(TINY_SPEC, torch.stack([a, 3 * second]))      # scale does not matter
    latent = TINY_SPEC.sample(8, torch.Generator().manual_seed(0))
    assert overlap_penalty(G, latent).item() == pytest.approx(expected, abs=1e-5)


def test_the_overlap_penalty_pushes_a_generator_to_separate_two_copies_of_one_code():
    from conftest import TINY_MODEL, TINY_SPEC
    from infogan_lib.models import Generator
    from infogan_lib.train import overlap_penalty

    torch.manual_seed(0)
    G = Generator(TINY_SPEC, TINY_MODEL)
    with torch.no_grad():
        column = G.fc[0].weight[:, -2]
        G.fc[0].weight[:, -1] = column + 0.1 * column.std() * torch.randn(column.shape[0])
    latent = TINY_SPEC.sample(16, torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(G.parameters(), lr=1e-2)
    before = overlap_penalty(G, latent).item()
    for _ in range(30):
        opt.zero_grad()
        overlap_penalty(G, latent).backward()
        opt.step()
    after = overlap_penalty(G, latent).item()
    assert before > 0.8 and after < 0.3 * before, (before, after)


def _widened(G2, D2):
    """The shipped 2-code model with a third code whose G column copies c2's (a code that takes over
    c2's factor), and Q's head widened by a zero row."""
    from infogan_lib.models import Discriminator, Generator

    spec3 = G2.spec.with_continuous("gaussian")
    g = {k: v.float().clone() for k, v in G2.state_dict().items()}
    g["fc.0.weight"] = torch.cat([g["fc.0.weight"], g["fc.0.weight"][:, -1:]], dim=1)
    d = {k: v.float().clone() for k, v in D2.state_dict().items()}
    for head in ("q_mean", "q_logvar"):
        d[f"{head}.weight"] = torch.cat([d[f"{head}.weight"], torch.zeros(1, d[f"{head}.weight"].shape[1])])
        d[f"{head}.bias"] = torch.cat([d[f"{head}.bias"], torch.zeros(1)])
    G3, D3 = Generator(spec3, G2.config), Discriminator(spec3, D2.config)
    G3.load_state_dict(g)
    D3.load_state_dict(d)
    return G3.eval(), D3


def test_the_anchor_charges_a_new_code_that_moves_an_old_codes_factor():
    """The frozen old Q reads c2 from the images; a third code that repeats c2's effect spoils that
    reading, a third code at 0 does not."""
    from infogan_lib import weights
    from infogan_lib.latent import LatentBatch
    from infogan_lib.train import anchor_loss

    _, _, G2, D2 = weights.load_pretrained("mnist")
    D2 = D2.float().eval()
    G3, _ = _widened(G2.float(), D2)
    latent = G3.spec.sample(256, torch.Generator().manual_seed(0))
    with torch.no_grad():
        silent = latent.continuous.clone()
        silent[:, 2] = 0.0
        quiet = LatentBatch(latent.spec, latent.z, latent.categorical, silent)
        still = anchor_loss(D2, G3(quiet.input()), quiet, 1.0, 1.0)
        moving = anchor_loss(D2, G3(latent.input()), latent, 1.0, 1.0)
        old = D2(G2.float().eval()(torch.cat([quiet.z, quiet.one_hots(), quiet.continuous[:, :2]], 1)))[1]
    from infogan_lib.losses import info_loss
    two = LatentBatch(G2.spec, quiet.z, quiet.categorical, quiet.continuous[:, :2])
    reference = info_loss(old, two, G2.spec, 1.0, 1.0)     # = the old model on its own codes
    assert still.loss.item() == pytest.approx(reference.loss.item(), rel=1e-4)
    # c2's bound under the anchor drops by more than a nat when c3 copies c2's effect
    assert moving.continuous_bounds[1] < still.continuous_bounds[1] - 1.0, (moving, still)
    drop = still.continuous_bounds - moving.continuous_bounds
    assert drop[1] > 2 * drop[0], drop                    # mostly c2's reading, the copied one


def test_an_anchored_run_resumes_with_the_anchor_it_saved(tiny_config, tmp_path):
    from infogan_lib.models import Discriminator

    first = train(tiny_config(out_dir=str(tmp_path / "first"), max_steps=3))
    G2, D2 = first.generator, first.discriminator
    G3, D3 = _widened(G2, D2)
    cfg = dict(spec=G3.spec, lambda_anchor=2.0, batch_size=64, lambda_ortho=1.0)
    with pytest.raises(ConfigError, match="anchor=D_old"):
        train(tiny_config(out_dir=str(tmp_path / "none"), **cfg), init=(G3, D3))
    with pytest.raises(ConfigError, match="widened from"):
        train(tiny_config(out_dir=str(tmp_path / "wrong"), **cfg), init=(G3, D3),
              anchor=Discriminator(G3.spec, D2.config))
    before = {k: v.clone() for k, v in D2.state_dict().items()}
    whole = train(tiny_config(out_dir=str(tmp_path / "whole"), max_steps=12, **cfg), init=(G3, D3), anchor=D2)
    after = D2.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the caller's D2 is left as it is"
    assert all(p.requires_grad for p in D2.parameters())
    half = train(tiny_config(out_dir=str(tmp_path / "split"), max_steps=6, **cfg), init=(G3, D3), anchor=D2)
    rest = train(tiny_config(out_dir=str(tmp_path / "split"), max_steps=12, **cfg), resume=True)
    assert half.step == 6 and rest.step == 12
    assert _same_weights(whole.generator, rest.generator)
    # the anchor changed the run: the same run without it ends elsewhere
    free = train(tiny_config(out_dir=str(tmp_path / "free"), max_steps=12, **{**cfg, "lambda_anchor": 0.0}),
                 init=(G3, D3))
    assert not _same_weights(whole.generator, free.generator)
