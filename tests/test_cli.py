"""The command line: every option documented, the whole train → evaluate → sample → export path,
and errors that speak to the user instead of a traceback."""

import json

import pytest
from PIL import Image

from infogan_lib.__main__ import _build_parser, main

TINY = ["--dataset", "synthetic", "--noise-dim", "8", "--g-channels", "8", "--d-channels", "8",
        "--fc", "64", "--q-hidden", "16", "--batch-size", "32", "--threads", "1", "--no-progress"]


def _subparsers():
    parser = _build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_option_of_every_command_has_help_text():
    for name, sub in _subparsers().items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and len(action.help) > 3, f"{name} {action.option_strings} lacks help"
        assert sub.format_help()


def test_train_evaluate_sample_export_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out-dir", str(run), "--steps", "40", "--minutes", "0",
                 "--sample", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "trained 40 steps" in out and "H(c) = 2.303" in out
    assert Image.open(tmp_path / "c.png").size[0] > 200

    assert main(["evaluate", str(run / "checkpoint.pt"), "--samples", "500", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "synthetic" and 0.0 <= report["accuracy"] <= 1.0
    assert report["entropy_cat"] == pytest.approx(2.302585, abs=1e-5) and len(report["info_cont"]) == 2

    for kind in ("a", "b", "c"):
        png = tmp_path / f"{kind}.png"
        assert main(["sample", str(run / "checkpoint.pt"), "--kind", kind, "--out", str(png)]) == 0
        assert Image.open(png).size == (10 * 30 + 2, 10 * 30 + 2)      # 10×10 tiles of 28 px + padding

    small = tmp_path / "small.pt"
    assert main(["export", str(run / "checkpoint.pt"), str(small), "--half"]) == 0
    assert "sha256" in capsys.readouterr().out
    assert main(["sample", str(small), "--kind", "c", "--code", "2", "--out", str(tmp_path / "s.png")]) == 0


def test_resume_from_the_command_line(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", *TINY, "--out-dir", run, "--steps", "5", "--minutes", "0", "--no-figures"]) == 0
    assert main(["train", *TINY, "--out-dir", run, "--steps", "9", "--minutes", "0", "--no-figures",
                 "--resume"]) == 0
    assert "trained 9 steps" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["evaluate", "missing.pt"], "no checkpoint at missing.pt"),
    (["train", "--dataset", "synthetic", "--categorical", "1", "--steps", "1"], "at least 2 categories"),
    (["train", "--dataset", "synthetic", "--lr-d", "-1", "--steps", "1"], "lr_d must be > 0"),
])
def test_errors_are_one_clear_line_not_a_traceback(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_corrupt_checkpoint_is_reported_with_what_to_do(tmp_path, capsys):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"\x00" * 64)
    assert main(["sample", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_a_missing_continuous_code_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", *TINY, "--out-dir", str(run), "--steps", "2", "--minutes", "0", "--no-figures"])
    assert main(["sample", str(run / "checkpoint.pt"), "--kind", "c", "--code", "3",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "2 continuous codes" in capsys.readouterr().err


def test_a_fine_tune_starts_from_a_weights_file_and_keeps_its_shape(tmp_path, capsys):
    """--init: the run begins from the file's G and D (with its spec and widths, whatever the
    latent and width options say) and --lambda-ortho reaches the recipe."""
    import torch

    from infogan_lib import checkpoint as ckpt

    first = tmp_path / "first"
    assert main(["train", *TINY, "--out-dir", str(first), "--steps", "4", "--minutes", "0", "--no-figures"]) == 0
    weights = tmp_path / "w.pt"
    assert main(["export", str(first / "checkpoint.pt"), str(weights), "--half"]) == 0
    tuned = tmp_path / "tuned"
    argv = ["train", "--dataset", "synthetic", "--batch-size", "32", "--threads", "1", "--no-progress",
            "--no-figures", "--minutes", "0", "--init", str(weights), "--lambda-ortho", "2",
            "--lr-d", "1e-12", "--lr-g", "1e-12", "--out-dir", str(tuned)]
    assert main([*argv, "--steps", "1", "--snapshot-steps", "1"]) == 0
    start = ckpt.load_file(tuned / "snapshots" / "step0000000.pt")
    source = ckpt.load_file(weights)
    for name, value in source["generator"].items():
        if value.is_floating_point():
            assert torch.equal(start["generator"][name].half(), value), name
    saved = ckpt.load_file(tuned / "checkpoint.pt", kind="checkpoint")
    assert saved["recipe"]["lambda_ortho"] == 2.0
    assert saved["spec"]["noise_dim"] == 8 and saved["model_config"]["fc"] == 64
    assert main([*argv, "--steps", "2", "--resume"]) == 2                        # the weights are in the checkpoint
    assert "drop --init" in capsys.readouterr().err
    assert main(["train", "--out-dir", str(tuned), "--steps", "2", "--resume"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out


def test_a_fine_tune_from_a_generator_only_file_is_refused(tmp_path, capsys):
    first = tmp_path / "first"
    assert main(["train", *TINY, "--out-dir", str(first), "--steps", "2", "--minutes", "0", "--no-figures"]) == 0
    g_only = tmp_path / "g.pt"
    assert main(["export", str(first / "checkpoint.pt"), str(g_only), "--generator-only"]) == 0
    assert main(["train", "--dataset", "synthetic", "--steps", "1", "--init", str(g_only),
                 "--out-dir", str(tmp_path / "t")]) == 2
    assert "holds no discriminator" in capsys.readouterr().err
    assert main(["train", "--dataset", "synthetic", "--steps", "1", "--init", str(g_only), "--paper",
                 "--out-dir", str(tmp_path / "p")]) == 2
    assert "--init and --paper do not go together" in capsys.readouterr().err


def test_paper_sets_defaults_that_explicit_options_override(tmp_path):
    from infogan_lib import checkpoint as ckpt

    run = tmp_path / "paper"
    assert main(["train", "--dataset", "synthetic", "--paper", "--lr-d", "1e-3", "--batch-size", "32",
                 "--noise-dim", "8", "--fc", "64", "--steps", "1", "--threads", "1", "--no-progress",
                 "--no-figures", "--out-dir", str(run)]) == 0
    recipe = ckpt.load_file(run / "checkpoint.pt")["recipe"]
    assert recipe["lr_d"] == 1e-3 and recipe["lr_g"] == 1e-3 and recipe["batch_size"] == 32
    assert recipe["moved_codes"] == "none" and recipe["model"]["g_channels"] == 64   # the paper's
    assert recipe["model"]["fc"] == 64 and recipe["spec"]["noise_dim"] == 8            # … unless given


def test_the_resume_hint_finishes_the_run_that_was_asked_for(tmp_path, capsys, monkeypatch):
    """A run stopped early (Ctrl-C) resumes with its own step budget and thread count; budget
    options given with --resume replace the saved ones; recipe options that differ are refused."""
    import infogan_lib.loop as loop

    class StopAfterFive:                               # Ctrl-C, pressed after the fifth step
        def __init__(self):
            self.reads = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        @property
        def requested(self):
            self.reads += 1
            return self.reads > 5

    run = str(tmp_path / "run")
    monkeypatch.setattr(loop, "StopFlag", StopAfterFive)
    assert main(["train", *TINY, "--out-dir", run, "--steps", "12", "--no-figures"]) == 130
    out = capsys.readouterr().out
    assert "trained 5 steps" in out and f"--out-dir {run} --resume" in out
    monkeypatch.undo()
    assert main(["train", "--out-dir", run, "--resume"]) == 0
    assert "trained 12 steps" in capsys.readouterr().out
    from infogan_lib import checkpoint as ckpt
    saved = ckpt.load_file(f"{run}/checkpoint.pt")
    assert saved["run"]["steps"] == 12 and saved["threads"] == 1 and saved["run"]["progress"] is False
    assert main(["train", "--out-dir", run, "--resume", "--steps", "14"]) == 0
    assert "trained 14 steps" in capsys.readouterr().out
    assert main(["train", "--out-dir", run, "--resume", "--steps", "16", "--noise-dim", "9"]) == 2
    assert "noise_dim" in capsys.readouterr().err


def test_an_unwritable_out_dir_or_a_missing_gpu_is_one_line_and_leaves_nothing(tmp_path, capsys):
    import torch

    blocker = tmp_path / "file"
    blocker.write_text("a file where the run folder should go")
    assert main(["train", *TINY, "--out-dir", str(blocker / "run"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the run folder") and err.count("\n") == 1
    if not torch.cuda.is_available():
        assert main(["train", *TINY, "--out-dir", str(tmp_path / "gpu"), "--steps", "1",
                     "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "no CUDA GPU" in err and err.count("\n") == 1 and not (tmp_path / "gpu").exists()
    missing = tmp_path / "no-data"
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--steps", "1",
                 "--out-dir", str(missing)]) == 2
    assert "Traceback" not in capsys.readouterr().err and not missing.exists()   # no folder of a failed run


def test_evaluate_and_sample_accept_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out-dir", str(run), "--steps", "2", "--no-figures"]) == 0
    assert main(["evaluate", str(run), "--samples", "200", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == 2
    assert main(["evaluate", str(tmp_path), "--json"]) == 2
    assert "without a checkpoint.pt" in capsys.readouterr().err


def test_every_recipe_and_run_field_is_an_option_that_reaches_the_config():
    """The train command is generated from the fields: each one (nested latent and width fields
    included) has an option, and a value given on the command line lands in that field."""
    from dataclasses import fields

    from infogan_lib import LatentSpec, ModelConfig, Recipe, Run
    from infogan_lib.config import given, recipe_from

    examples = {int: "3", float: "0.25", str: None}
    parser = _subparsers()["train"]
    options = {o for a in parser._actions for o in a.option_strings}
    argv, wanted = [], {}
    for cls in (Recipe, Run, LatentSpec, ModelConfig):
        for f in fields(cls):
            if f.name in ("spec", "model", "image_channels") or f.metadata.get("cli") is False:
                continue
            flag = "--" + f.name.replace("_", "-")
            assert flag in options, f"{cls.__name__}.{f.name} has no option {flag}"
            choices = f.metadata.get("choices")
            if f.type in ("bool",):
                argv.append(flag if not f.default else "--no-" + f.name.replace("_", "-"))
                wanted[(cls, f.name)] = not f.default
            elif f.name == "priors":                        # one prior for each of the 3 codes
                argv += [flag, "gaussian", "uniform", "gaussian"]
                wanted[(cls, f.name)] = ("gaussian", "uniform", "gaussian")
            elif choices:
                value = [c for c in choices if c != getattr(cls(), f.name)][-1]
                argv += [flag, value]
                wanted[(cls, f.name)] = value
            else:
                kind = int if f.type.startswith(("int", "tuple[int")) else float if "float" in f.type else str
                value = examples[kind] or "x"
                argv += [flag, value]
                wanted[(cls, f.name)] = (kind(value),) if f.type.startswith("tuple") else kind(value)
    args = parser.parse_args(argv)
    recipe, run = recipe_from(args, Recipe()), given(args, Run)
    for (cls, name), value in wanted.items():
        where = {Recipe: recipe, LatentSpec: recipe.spec, ModelConfig: recipe.model}.get(cls)
        got = run[name] if cls is Run else getattr(where, name)
        assert got == value, (cls.__name__, name, got, value)


def test_n_continuous_alone_gives_that_many_uniform_codes(tmp_path):
    from infogan_lib import checkpoint as ckpt

    for n in (3, 0):
        run = tmp_path / f"k{n}"
        assert main(["train", *TINY, "--n-continuous", str(n), "--steps", "1", "--no-figures",
                     "--out-dir", str(run)]) == 0
        spec = ckpt.load_file(run / "checkpoint.pt")["spec"]
        assert spec["n_continuous"] == n and tuple(spec["priors"]) == ("uniform",) * n


def test_a_budget_given_with_resume_replaces_the_saved_one(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", *TINY, "--out-dir", run, "--steps", "4", "--no-figures"]) == 0
    assert main(["train", "--out-dir", run, "--resume", "--epochs", "0.1"]) == 0     # 62 steps an epoch
    assert "trained 7 steps" in capsys.readouterr().out
    assert main(["train", "--out-dir", run, "--resume"]) == 0                        # nothing left to do
    assert "trained 7 steps" in capsys.readouterr().out


def test_export_never_overwrites_a_runs_checkpoint_and_failed_runs_leave_no_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out-dir", str(run), "--steps", "2", "--no-figures"]) == 0
    before = (run / "checkpoint.pt").read_bytes()
    assert main(["export", str(run), str(run / "checkpoint.pt")]) == 2
    assert "would overwrite" in capsys.readouterr().err and (run / "checkpoint.pt").read_bytes() == before
    assert main(["export", str(run), str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    for bad in (["--g-channels", "0"], ["--batch-size", "1"], ["--epochs", "inf"], ["--seed", str(2**70)]):
        folder = tmp_path / f"bad{bad[0]}"
        assert main(["train", *TINY, *bad, "--steps", "1", "--out-dir", str(folder)]) == 2, bad
        err = capsys.readouterr().err
        assert err.startswith("error:") and err.count("\n") == 1 and not folder.exists(), (bad, err)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "snapshots").write_text("a file where the snapshots go")
    assert main(["train", *TINY, "--steps", "1", "--snapshot-steps", "1", "--out-dir", str(blocked)]) == 2
    assert "choose another --out-dir" in capsys.readouterr().err
    assert sorted(p.name for p in blocked.iterdir()) == ["snapshots", "train.log"]
