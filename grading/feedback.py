"""What students get back must not show the hidden tests.

nbgrader's autograde puts the hidden tests back into the test cells and runs them; its
`generate_feedback` then renders those cells as they ran, hidden lines and tracebacks included
(a traceback quotes the failing line). `HideHiddenTests` runs in `generate_feedback`
(nbgrader_config.py): it cuts the hidden region out of each test cell's source, and reduces each
error output of such a cell to its exception name and message, with any hidden line removed from
the message too. The score is not touched: it was computed before, from the full cell.
"""

from __future__ import annotations

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


def scrub(text: str, lines: list[str]) -> str:
    for line in lines:
        text = text.replace(line, "[hidden test]")
    return text


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback preprocessor: hidden tests out of sources, tracebacks of those cells cut to a message."""

    notice = Unicode(
        "(hidden tests ran here; their code is not shown)",
        help="Put in place of the hidden region of a test cell.").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            return cell, resources
        lines = hidden_lines(cell.source)
        cell.source = without_hidden(cell.source) + f"\n# {self.notice}"
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.evalue = scrub(str(output.evalue), lines)
                output.traceback = [f"{output.ename}: {output.evalue}"]
            elif output.output_type == "stream":
                output.text = scrub(output.text, lines)
            elif "data" in output:
                for kind, value in list(output.data.items()):
                    if isinstance(value, str):
                        output.data[kind] = scrub(value, lines)
        return cell, resources
