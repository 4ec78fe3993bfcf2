"""Autograde time per submission: the grading tests' fake class (full, empty, partial, edited tests,
inflated points, an endless loop, broken JSON, a missing notebook), graded by `make grade`'s script in
a temporary course folder; prints each submission's seconds and the mean (bar: ≤ 30 s each).

    python benchmarks/grading.py                      # about 3 minutes on 2 cores
    INFOGAN_CELL_TIMEOUT=20 python benchmarks/grading.py   # the endless loop's cell stops after 20 s
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from homework_support import make_course, make_fake_class  # noqa: E402  (the tests' own class)
from throughput import cpu_name  # noqa: E402


def main() -> None:
    os.environ.setdefault("INFOGAN_CELL_TIMEOUT", "20")
    with tempfile.TemporaryDirectory() as tmp:
        course = make_fake_class(make_course(Path(tmp)))
        subprocess.run([sys.executable, "-m", "grading.grade", "--course", str(course)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        seconds = {}
        for marker in sorted(course.glob("autograded/*/infogan_homework/.graded")):
            seconds[marker.parts[-3]] = json.loads(marker.read_text())["seconds"]
    print(f"CPU: {cpu_name()}; cell timeout {os.environ['INFOGAN_CELL_TIMEOUT']} s")
    for student, s in seconds.items():
        print(f"  {student:16s} {s:5.1f} s")
    print(f"mean {statistics.mean(seconds.values()):.1f} s per submission over {len(seconds)} "
          f"(max {max(seconds.values()):.1f} s; bar ≤ 30 s)")


if __name__ == "__main__":
    main()
