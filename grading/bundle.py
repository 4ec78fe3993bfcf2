"""The student bundle: the kit as students should get it in a graded class, without the solutions.

    python -m grading.bundle            # what `make student-bundle` runs → dist/infogan-course-student.tar.gz

The public kit keeps `solutions/` (self-study readers check themselves against it). An instructor
running a graded class hands out this bundle instead: every file git tracks, less the instructor
version (`solutions/`), the files that hold its answers or need them (LEFT_OUT), and nothing
untracked (no gradebook, no submissions, no `.grading/seed`). Before it is written, every text file
in it is searched for each line of the hidden tests; if one is found the bundle is not written and
the file is named.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grading.feedback import hidden_lines  # noqa: E402

# the instructor version, and every file that holds its answers, builds submissions from it, builds
# what part 2 asks for, or imports one that does (the fake class, the attack corpus with its correct
# answer, a trained model, a widened model)
LEFT_OUT = ("solutions/", "harness/fake_class.py", "harness/attack_corpus.py", "harness/third_code.pt",
            "harness/widened.py", "tests/shared_class.py", "tests/test_homework.py", "tests/test_grading.py",
            "tests/test_sandbox.py", "tests/test_formgrader.py", "tests/test_extras.py", "tests/test_no_answers.py",
            "benchmarks/grading.py", "benchmarks/hub_capacity.py", "tests/test_hub.py")
PREFIX = "infogan-course"


def tracked_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
    return [f for f in out.stdout.decode().split("\0") if f]


def hidden_test_lines(root: Path = ROOT) -> list[str]:
    import nbformat
    lines = []
    for nb_path in sorted((root / "solutions").rglob("*.ipynb")):
        for cell in nbformat.read(nb_path, as_version=4).cells:
            lines += hidden_lines(cell.source)
    return lines


def leaks(files: dict[str, bytes], lines: list[str]) -> dict[str, list[str]]:
    """{file: hidden lines found in it}, over the files that read as text."""
    found = {}
    for name, data in files.items():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        hits = [ln for ln in lines if ln in text]
        if hits:
            found[name] = hits
    return found


def bundle_files(root: Path = ROOT) -> list[str]:
    """The files the student bundle holds (paths relative to root)."""
    return [f for f in tracked_files(root) if not f.startswith(LEFT_OUT) and (root / f).is_file()]


def build(out: Path, root: Path = ROOT) -> Path:
    names = bundle_files(root)
    files = {f: (root / f).read_bytes() for f in names}
    found = leaks(files, hidden_test_lines(root))
    if found:
        where = "; ".join(f"{f} ({len(h)} lines, e.g. {h[0]!r})" for f, h in found.items())
        raise SystemExit(f"not written: hidden test lines found in {where}. Take them out, then "
                         "run `make release` (assignments/ must come from solutions/).")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    with tarfile.open(tmp, "w:gz") as tar:
        for name in names:
            info = tarfile.TarInfo(f"{PREFIX}/{name}")
            info.size, info.mode = len(files[name]), (root / name).stat().st_mode & 0o777
            tar.addfile(info, io.BytesIO(files[name]))
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "dist" / "infogan-course-student.tar.gz"))
    args = ap.parse_args(argv)
    out = build(Path(args.out))
    print(f"student bundle: {out} ({out.stat().st_size / 1e6:.1f} MB; solutions/ left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
