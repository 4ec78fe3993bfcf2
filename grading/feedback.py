"""What students get back must not show the hidden tests.

nbgrader's autograde puts the hidden tests back into the test cells and runs them; its
`generate_feedback` then renders those cells as they ran, hidden lines and tracebacks included
(a traceback quotes the failing line). `HideHiddenTests` runs in `generate_feedback`
(nbgrader_config.py): it cuts the hidden region out of each test cell's source, and reduces each
error output of such a cell to its exception name and message, with any hidden line removed from
the message too. In every cell it also replaces the private grading seed, and the seeds the hidden
tests derive from it, wherever the number appears (scrubbed by value, not by source line). The score
is not touched: it was computed before, from the full cell.
"""

from __future__ import annotations

import os
import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
MIN_LINE = 8   # shorter lines ("else:", ")") say nothing about a test


def split_hidden(source: str) -> tuple[list[str], list[str]]:
    """(the lines outside the hidden-test markers, the lines inside them) of one cell's source."""
    kept, hidden, inside = [], [], False
    for line in source.splitlines():
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        else:
            (hidden if inside else kept).append(line)
    return kept, hidden


def hidden_lines(source: str) -> list[str]:
    """The stripped hidden-test lines of one cell that are long enough to say something."""
    return [ln.strip() for ln in split_hidden(source)[1] if len(ln.strip()) >= MIN_LINE]


def without_hidden(source: str) -> str:
    return "\n".join(split_hidden(source)[0]).rstrip()


def scrub(text: str, lines: list[str], seed: re.Pattern | None = None) -> str:
    for line in lines:
        text = text.replace(line, "[hidden test]")
    return seed.sub("[seed]", text) if seed is not None else text


SEED_OFFSETS = 1000     # hidden tests seed their generators with the seed plus a small offset


def seed_pattern(seed: int | None) -> re.Pattern | None:
    """Matches the seed and seed + k (k < SEED_OFFSETS) as whole numbers."""
    if seed is None:
        return None
    values = sorted({str(seed + k) for k in range(SEED_OFFSETS)}, key=len, reverse=True)
    return re.compile(r"(?<![0-9])(?:" + "|".join(values) + r")(?![0-9])")


def _seed() -> int | None:
    text = os.environ.get("INFOGAN_GRADING_SEED", "")
    return int(text) if text.strip().isdigit() else None


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback preprocessor: hidden tests out of sources, tracebacks of those cells cut to a message."""

    notice = Unicode(
        "(hidden tests ran here; their code is not shown)",
        help="Put in place of the hidden region of a test cell.").tag(config=True)

    def preprocess(self, nb, resources):
        self._seed = seed_pattern(_seed())
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        lines = hidden_lines(cell.source)
        if BEGIN in cell.source:
            cell.source = without_hidden(cell.source) + f"\n# {self.notice}"
        cell.source = scrub(cell.source, [], self._seed)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.evalue = scrub(str(output.evalue), lines, self._seed)
                output.traceback = [f"{output.ename}: {output.evalue}"]
            elif output.output_type == "stream":
                output.text = scrub(output.text, lines, self._seed)
            elif "data" in output:
                for kind, value in list(output.data.items()):
                    if isinstance(value, str):
                        output.data[kind] = scrub(value, lines, self._seed)
        return cell, resources


RELEASE_KEYS = ("timestamp.txt", "submission_secret.txt")


def keep_release_keys(course: Path, assignment: str) -> list[str]:
    """Copy each submission's timestamp and secret next to its feedback: nbgrader's release_feedback
    names a student's feedback file by a hash of that secret (only the student who submitted knows it),
    and the kit's grading does not carry the submission's other files into feedback/. Returns the
    students whose keys were copied. Only small regular files are copied (links are not followed)."""
    from pathlib import Path

    done = []
    for folder in sorted((Path(course) / "feedback").glob(f"*/{assignment}")):
        student = folder.parent.name
        for name in RELEASE_KEYS:
            src = Path(course) / "submitted" / student / assignment / name
            try:
                fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                data = f.read(4097)
            if len(data) <= 4096:
                (folder / name).write_bytes(data)
        done.append(student)
    return done
