"""Training: it learns, it is reproducible, it resumes exactly, and it never loses a checkpoint."""

import os
import signal
import threading
from dataclasses import replace

import pytest
import torch

from infogan_lib import CheckpointError, ConfigError, Recipe, Run, load_models, train
from infogan_lib import checkpoint as ckpt
from infogan_lib.config import FAST_STEPS


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_short_training_on_synthetic_data_lowers_the_q_loss(tiny_config):
    result = train(*tiny_config(steps=150, lambda_cont=0.0, lr_d=1e-3))
    q = result.history["q_loss"]
    first, last = sum(q[:15]) / 15, sum(q[-15:]) / 15
    assert last < 0.6 * first, f"Q loss went from {first:.3f} to {last:.3f}"
    assert result.history["info_cat"][-1] > 1.0                             # of ln 10 ≈ 2.30


def test_the_same_seed_gives_the_same_weights(tiny_config, tmp_path):
    a = train(*tiny_config(out_dir=str(tmp_path / "a")))
    b = train(*tiny_config(out_dir=str(tmp_path / "b")))
    c = train(*tiny_config(out_dir=str(tmp_path / "c"), seed=1))
    assert _same_weights(a.generator, b.generator) and _same_weights(a.discriminator, b.discriminator)
    assert a.history["d_loss"] == b.history["d_loss"]
    assert not _same_weights(a.generator, c.generator)


def test_stop_and_resume_equals_one_uninterrupted_run(tiny_config, tmp_path):
    # 30 steps with batch 32 on 2,000 images crosses an epoch boundary (62 steps) only if longer;
    # use batch 64 so the run spans an epoch end (31 steps per epoch)
    whole = train(*tiny_config(out_dir=str(tmp_path / "whole"), steps=40, batch_size=64))
    half = train(*tiny_config(out_dir=str(tmp_path / "split"), steps=20, batch_size=64))
    assert half.step == 20
    rest = train(*tiny_config(out_dir=str(tmp_path / "split"), steps=40, batch_size=64), resume=True)
    assert rest.step == 40
    assert _same_weights(whole.generator, rest.generator)
    assert _same_weights(whole.discriminator, rest.discriminator)
    for key in ("d_loss", "g_loss", "q_loss", "info_cat", "info_cont"):
        assert whole.history[key] == rest.history[key], key
    saved = ckpt.load_file(tmp_path / "split" / "checkpoint.pt", kind="checkpoint")
    whole_saved = ckpt.load_file(tmp_path / "whole" / "checkpoint.pt", kind="checkpoint")
    for k in whole_saved["opt_g"]["state"]:
        assert torch.equal(saved["opt_g"]["state"][k]["exp_avg"], whole_saved["opt_g"]["state"][k]["exp_avg"])


def test_resume_keeps_the_runs_recipe_and_refuses_another(tiny_config, tmp_path):
    train(*tiny_config(steps=5, lr_g=5e-4))
    with pytest.raises(ConfigError, match=r"another recipe \(lr_g: 0.0005 → 1.0\)"):
        train(*tiny_config(steps=8, lr_g=1.0), resume=True)
    _, run = tiny_config(steps=8, threads=None)
    with pytest.raises(ConfigError, match="trained on synthetic, not mnist"):
        train(None, replace(run, dataset="mnist"), resume=True)
    resumed = train(None, run, resume=True)                          # recipe from the checkpoint
    assert resumed.recipe.lr_g == 5e-4 and resumed.step == 8
    assert resumed.run.threads == 1                                  # … and its thread count


def test_starting_over_an_existing_run_or_resuming_nothing_is_refused(tiny_config, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(*tiny_config(), resume=True)
    train(*tiny_config(steps=2))
    with pytest.raises(ConfigError, match="--resume"):
        train(*tiny_config(steps=2))


def test_every_file_a_run_writes_loads_with_weights_only(tiny_config, tmp_path):
    train(*tiny_config(steps=70, batch_size=64, snapshot_minutes=1e-4, figures=True))
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
    result = train(*tiny_config(steps=10, snapshot_steps=4))
    snaps = sorted((tmp_path / "run" / "snapshots").glob("*.pt"))
    assert [p.name for p in snaps] == ["step0000000.pt", "step0000004.pt", "step0000008.pt",
                                       "step0000010.pt"]
    _, _, G, _ = load_models(snaps[-1])
    for a, b in zip(G.state_dict().values(), result.generator.state_dict().values()):
        assert torch.equal(a, b.cpu())


def test_an_interrupted_checkpoint_write_leaves_the_previous_checkpoint(tiny_config, tmp_path, monkeypatch):
    train(*tiny_config(steps=3))
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
        result = train(*tiny_config(steps=100_000))
    finally:
        timer.cancel()
    assert result.interrupted and 0 < result.step < 100_000
    saved = ckpt.load_file(tmp_path / "run" / "checkpoint.pt", kind="checkpoint")
    assert saved["step"] == result.step
    again = train(*tiny_config(steps=result.step + 3), resume=True)
    assert again.step == result.step + 3 and not again.interrupted


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated or corrupt"),
    (lambda p: p.write_bytes(b"not a checkpoint at all"), "truncated or corrupt"),
    (lambda p: torch.save({"schema": 99, "kind": "checkpoint", "spec": {}, "model_config": {},
                           "generator": {}}, p), "newer than this kit"),
    (lambda p: torch.save({"hello": 1}, p), "not an infogan_lib checkpoint"),
    (lambda p: torch.save({"schema": 2, "kind": "checkpoint", "x": _Foreign()}, p),
     "Python objects other than tensors"),
    (lambda p: torch.save({"schema": "two", "kind": "checkpoint", "spec": {}, "model_config": {},
                           "generator": {}}, p), "invalid schema"),
])
def test_damaged_or_foreign_checkpoints_give_a_clear_error(tiny_config, tmp_path, damage, words):
    train(*tiny_config(steps=2))
    path = tmp_path / "run" / "checkpoint.pt"
    damage(path)
    with pytest.raises(CheckpointError, match=words):
        train(*tiny_config(steps=4), resume=True)
    with pytest.raises(CheckpointError, match=words) as caught:
        load_models(path)
    assert "weights_only" not in str(caught.value) and str(caught.value).endswith((".", "?"))


@pytest.mark.parametrize("damage, words", [
    (lambda state: state.pop("rng"), "lacks 'rng'"),
    (lambda state: state.update(recipe={"bogus": 1}), "no readable recipe"),
    (lambda state: state.update(generator={"fc.0.weight": torch.zeros(3)}), "does not fit the architecture"),
])
def test_a_checkpoint_that_cannot_resume_says_why_and_its_weights_still_load(tiny_config, tmp_path, damage, words):
    train(*tiny_config(steps=2))
    path = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(path)
    damage(state)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=words):
        train(*tiny_config(steps=4), resume=True)
    if words != "does not fit the architecture":
        assert load_models(path)[3] is not None


def test_a_weights_file_cannot_resume_training(tiny_config, tmp_path):
    train(*tiny_config(steps=2))
    run = tmp_path / "run"
    ckpt.export_weights(run / "checkpoint.pt", run / "w.pt")
    (run / "w.pt").replace(run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(*tiny_config(steps=4), resume=True)


def test_half_precision_export_is_smaller_and_generates_nearly_the_same_images(tiny_config, tmp_path):
    result = train(*tiny_config(steps=5))
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


@pytest.mark.parametrize("make, words", [
    (lambda: Recipe(batch_size=0), "batch_size"), (lambda: Recipe(lr_g=-1.0), "lr_g"),
    (lambda: Recipe(lambda_cat=-1.0), "lambda_cat"), (lambda: Recipe(beta1=1.5), "beta1"),
    (lambda: Recipe(moved_codes="some"), "moved_codes"), (lambda: Run(minutes=-1.0), "minutes"),
    (lambda: Run(device="tpu"), "device"), (lambda: Run(threads=0), "threads"),
    (lambda: Run(dataset="cifar"), "dataset"),
])
def test_invalid_configs_are_refused_with_a_reason(make, words):
    with pytest.raises(ConfigError, match=words):
        make()


def test_budgets_the_fast_switch_and_the_default_ten_minutes(tiny_config, monkeypatch):
    monkeypatch.setenv("INFOGAN_FAST", "1")
    assert Run().fast and Run().step_budget(100) == FAST_STEPS and Run().time_budget() is None
    monkeypatch.setenv("INFOGAN_FAST", "0")
    assert not Run().fast and Run().step_budget(100) is None and Run().time_budget() == 600.0
    assert Run(steps=3000).time_budget() is None                     # a step budget alone: no clock
    assert Run(epochs=1.5).step_budget(100) == 150 and Run(minutes=0).time_budget() is None
    assert Run(steps=120, epochs=1).step_budget(100) == 100          # the first budget reached
    result = train(*tiny_config(steps=None, fast=True))
    assert result.step == FAST_STEPS


def test_training_restores_the_callers_thread_count(tiny_config):
    before = torch.get_num_threads()
    train(*tiny_config(steps=2, threads=1))
    assert torch.get_num_threads() == before


def test_tensorboard_gets_scalars_and_histograms(tiny_config, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(*tiny_config(steps=32, batch_size=64, tensorboard=True, log_every=5))
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


def test_torch_threads_sets_the_count_inside_and_restores_it_even_after_an_error():
    from infogan_lib.runtime import torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_a_warm_start_begins_from_the_given_networks_and_a_resume_ignores_them(tiny_config, tmp_path):
    first = train(*tiny_config(out_dir=str(tmp_path / "first"), steps=5))
    cfg = tiny_config(out_dir=str(tmp_path / "warm"), steps=1, lr_d=1e-12, lr_g=1e-12, seed=3)
    warm = train(*cfg, init=(first.generator, first.discriminator))
    fresh = train(*tiny_config(out_dir=str(tmp_path / "fresh"), steps=1, lr_d=1e-12, lr_g=1e-12, seed=3))
    w0, w1 = first.generator.fc[0].weight, warm.generator.fc[0].weight
    assert torch.allclose(w0, w1, atol=1e-6), "one step at a tiny learning rate keeps the warm start's weights"
    assert not torch.allclose(fresh.generator.fc[0].weight, w0, atol=1e-3)
    resumed = train(None, tiny_config(out_dir=str(tmp_path / "warm"), steps=2)[1], resume=True,
                    init=(fresh.generator, fresh.discriminator))
    assert resumed.step == 2 and torch.allclose(resumed.generator.fc[0].weight, w1, atol=1e-4)


def test_a_warm_start_for_another_spec_is_refused_with_the_fix(tiny_config, tmp_path):
    first = train(*tiny_config(out_dir=str(tmp_path / "first"), steps=2))
    wider = tiny_config(out_dir=str(tmp_path / "wider"), spec=first.generator.spec.with_continuous())
    with pytest.raises(ConfigError, match="widen them to the new spec"):
        train(*wider, init=(first.generator, first.discriminator))


class _Foreign:
    """An object a safe load refuses."""


def test_a_second_ctrl_c_mid_step_keeps_the_last_whole_checkpoint_and_resume_stays_exact(tiny_config, tmp_path,
                                                                                           monkeypatch):
    """Stopping at once must not save a step that was half done (D updated, G not yet)."""
    import infogan_lib.loop as loop

    whole = train(*tiny_config(out_dir=str(tmp_path / "whole"), steps=12))
    real_step, calls = loop.infogan_step, []

    def second_ctrl_c_in_step_7(G, D, opt_g, opt_d, *rest):
        calls.append(1)
        if len(calls) == 7:
            opt_d.zero_grad()
            D(rest[0])[0].mean().backward()
            opt_d.step()                                   # D has moved …
            raise KeyboardInterrupt                        # … and G never will, in this step
        return real_step(G, D, opt_g, opt_d, *rest)

    monkeypatch.setattr(loop, "infogan_step", second_ctrl_c_in_step_7)
    recipe, run = tiny_config(out_dir=str(tmp_path / "split"), steps=12, checkpoint_minutes=1e-9)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, run)
    assert ckpt.load_file(tmp_path / "split" / "checkpoint.pt")["step"] == 6
    monkeypatch.undo()
    rest = train(recipe, run, resume=True)
    assert rest.step == 12 and _same_weights(whole.generator, rest.generator)
    assert _same_weights(whole.discriminator, rest.discriminator)


def test_a_ctrl_c_while_the_final_checkpoint_is_written_is_held():
    import time

    from infogan_lib.runtime import StopFlag

    with StopFlag() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.requested                              # the first: stop after this step
        stop.holding = True
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)                                   # held: no KeyboardInterrupt
        stop.holding = False
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)


def test_train_log_holds_the_progress_lines_however_logging_is_set_up(tiny_config, tmp_path):
    """In a notebook nobody configures logging (the root logger stays at WARNING): the run's
    train.log still gets its step lines, and the library's logger is left as it was."""
    import logging

    lib, root = logging.getLogger("infogan_lib"), logging.getLogger()
    before, root_before = lib.level, root.level
    root.setLevel(logging.WARNING)
    try:
        train(*tiny_config(out_dir=str(tmp_path / "run"), steps=20, log_every=10))
    finally:
        root.setLevel(root_before)
    text = (tmp_path / "run" / "train.log").read_text()
    assert "step 10 " in text and "step 20 " in text, text
    assert lib.level == before
