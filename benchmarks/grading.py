"""Autograde time: per submission, the cost of the sandbox, and a whole class in parallel.

1. The grading tests' fake class (full, empty, partial, edited tests, inflated points, an endless loop,
   broken JSON, a missing notebook), graded by `make grade`'s script one at a time (--jobs 1):
   each submission's seconds and the mean (bar: ≤ 30 s each).
2. The full solution autograded alone, `--repeats` times each: with the sandbox, without it (--unsafe:
   tests still run in the grader), and by stock nbgrader (tests in the student's kernel, no sandbox).
   Sandbox overhead = sandboxed − unsandboxed (bar: ≤ 2 s).
3. A class of `--class-size` copies of the full solution graded with one job per core: wall time
   against class-size × single / (cores × 0.8) (the bar), single = the full solution's time alone.
4. The attack corpus (tests/sandbox_corpus.py) graded as one class, one job per core, with the test
   suite's limits: each student's seconds, score and grading job's peak private memory (bar ≤ 1 GB).
5. The full solution graded alone, then beside an attacker that starts a hundred busy processes (one
   job per core): the honest student's seconds in both.

    python benchmarks/grading.py                    # about 15 minutes on 2 cores
    python benchmarks/grading.py --class-size 10    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from harness.attack_corpus import CELLS, HONEST, build_class, honest_editor  # noqa: E402
from harness.fake_class import FIXTURE_MODEL, make_course, make_fake_class, submit  # noqa: E402
from throughput import cpu_name  # noqa: E402

FULL = {"1_mi_bound": "all", "2_third_code": "all"}


def grade(course: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grading.grade", "--course", str(course), *args], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def per_student(course: Path) -> dict[str, float]:
    return {m.stem: json.loads(m.read_text())["seconds"]
            for m in sorted(course.glob(".grading/graded/infogan_homework/*.json"))}


def report_rows(course: Path) -> dict[str, dict]:
    """The report's table: each student's score, max, seconds and grading job's peak memory (MB)."""
    rows = [line.split("|") for line in (course / "grading-report.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| student")]
    return {r[1].strip().replace("\\_", "_"): {"score": float(r[2]), "max": float(r[3]), "seconds": float(r[5]),
                                                 "mb": float(r[6])} for r in rows}


def grader_memory(course: Path) -> dict[str, float]:
    return {name: row["mb"] for name, row in report_rows(course).items()}


def autograde_once(course: Path, env: dict, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "infogan_homework", "--student", "full",
                    "--force", *extra], cwd=course, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def stock_config(course: Path) -> None:
    """The course's nbgrader_config.py without the sandboxed, trusted executor: nbgrader as shipped."""
    path = course / "nbgrader_config.py"
    text = path.read_text()
    path.write_text(text[: text.index("# autograde: student cells run in a bubblewrap")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--class-size", type=int, default=40)
    ap.add_argument("--parts", default="12345", help="which measurements to run (default: all five)")
    args = ap.parse_args()
    os.environ.setdefault("INFOGAN_CELL_TIMEOUT", "20")
    cores = os.cpu_count() or 1
    from grading.grade import grading_seed, nbgrader_env
    print(f"CPU: {cpu_name()}, {cores} cores; cell timeout {os.environ['INFOGAN_CELL_TIMEOUT']} s")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)

        if "1" in args.parts:
            course = make_fake_class(make_course(tmp / "fake"))
            grade(course, "--jobs", "1")
            seconds, memory = per_student(course), grader_memory(course)
            print("1. the fake class, one at a time, sandboxed (seconds; the grading job's peak private memory):")
            for student, s in seconds.items():
                print(f"  {student:16s} {s:5.1f} s  {memory.get(student, 0):5.0f} MB")
            print(f"  mean {statistics.mean(seconds.values()):.1f} s per submission over {len(seconds)} "
                  f"(max {max(seconds.values()):.1f} s; bar ≤ 30 s)", flush=True)

        single = make_course(tmp / "single")
        submit(single, "full", FULL, model=FIXTURE_MODEL)
        grade(single, "--jobs", "1")                                  # gradebook, seed, release in place
        one = per_student(single)["full"]
        env = nbgrader_env(grading_seed(single))
        runs = {"sandboxed": [], "unsandboxed (--unsafe)": [], "stock nbgrader": []}
        for _ in range(args.repeats if "2" in args.parts else 0):
            runs["sandboxed"].append(autograde_once(single, env))
            runs["unsandboxed (--unsafe)"].append(autograde_once(single, env, "--GraderExecute.sandbox=False"))
        stock = make_course(tmp / "stock")
        shutil.copytree(single / "submitted", stock / "submitted")
        shutil.copy(single / "gradebook.db", stock / "gradebook.db")
        stock_config(stock)
        for _ in range(args.repeats if "2" in args.parts else 0):
            runs["stock nbgrader"].append(autograde_once(stock, env))
        if "2" in args.parts:
            print(f"2. the full solution alone (`nbgrader autograde`, median of {args.repeats}):")
            med = {k: statistics.median(v) for k, v in runs.items()}
            for k, v in runs.items():
                print(f"  {k:24s} {med[k]:5.1f} s   ({', '.join(f'{x:.1f}' for x in v)})")
            print(f"  sandbox overhead {med['sandboxed'] - med['unsandboxed (--unsafe)']:+.1f} s (bar ≤ 2 s); tests "
                  f"in the grader instead of the kernel {med['unsandboxed (--unsafe)'] - med['stock nbgrader']:+.1f} s",
                  flush=True)
        if "4" in args.parts:
            corpus = make_course(tmp / "corpus")
            build_class(corpus, port=9)
            limits = {"INFOGAN_CELL_TIMEOUT": "20", "INFOGAN_LIMIT_MEMORY_BYTES": str(3 * 2**30),
                      "INFOGAN_LIMIT_OUTPUT_BYTES": str(2**20), "INFOGAN_LIMIT_STUDENT_SECONDS": "45"}
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "grading.grade", "--course", str(corpus), "--jobs", str(cores)],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, **limits))
            wall = time.perf_counter() - start
            rows = report_rows(corpus)
            print(f"4. the attack corpus, {len(rows)} students, {cores} at a time: {wall:.0f} s wall")
            for name, r in sorted(rows.items()):
                print(f"  {name:22s} {r['score']:4g}/{r['max']:<4g} {r['seconds']:6.1f} s  {r['mb']:6.0f} MB")
            print(f"  grading job's peak private memory: max {max(r['mb'] for r in rows.values()):.0f} MB "
                  "(bar ≤ 1024 MB; jobs stopped by the 1 GB cap are listed under Problems in the report)")
            problems = (corpus / "grading-report.md").read_text().split("## Problems")[1]
            print("  stopped by the grader's memory cap:",
                  [line.split("**")[1] for line in problems.splitlines() if "needed more than the grader" in line])
        if "5" in args.parts:
            def honest_seconds(with_attacker: bool) -> float:
                course = make_course(tmp / f"beside{int(with_attacker)}")
                submit(course, "full", FULL, model=FIXTURE_MODEL)
                if with_attacker:
                    submit(course, "busy", HONEST, edit=honest_editor(CELLS["busy_processes"]),
                           drop=("2_third_code",))
                shutil.copytree(single / ".grading", course / ".grading",
                                ignore=shutil.ignore_patterns("graded", "staged", "gradebook*"))
                grade(course, "--jobs", str(cores))
                return per_student(course)["full"]
            alone, beside = honest_seconds(False), honest_seconds(True)
            print(f"5. the full solution alone {alone:.1f} s; beside a hundred busy processes {beside:.1f} s "
                  f"({beside / alone:.2f}×)")
        if "3" not in args.parts:
            return

        klass = make_course(tmp / "class")
        for i in range(args.class_size):
            submit(klass, f"student{i:02d}", FULL, model=FIXTURE_MODEL)
        shutil.copytree(single / ".grading", klass / ".grading")
        wall = grade(klass, "--jobs", str(cores))
        bar = args.class_size * one / (cores * 0.8)
        print(f"3. a class of {args.class_size} full solutions, {cores} at a time: {wall:.0f} s wall "
              f"(single submission {one:.1f} s; bar {args.class_size} × {one:.1f} / ({cores} × 0.8) = {bar:.0f} s)")


if __name__ == "__main__":
    main()
