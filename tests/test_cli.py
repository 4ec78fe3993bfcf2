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
    assert saved["train_config"]["lambda_ortho"] == 2.0
    assert saved["spec"]["noise_dim"] == 8 and saved["model_config"]["fc"] == 64
    assert main([*argv, "--steps", "2", "--resume"]) == 0                        # --init is not needed again
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
