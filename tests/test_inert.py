"""A graded notebook made inert (grading/inert.py): whatever a student wrote, rendering it as HTML the
way formgrader does (Markdown rendered again, outputs inserted as they are) yields no script, no
event handler, no javascript: link and nothing outside the allow-list."""

from __future__ import annotations

import random
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from grading.inert import TAGS, InertContent, markdown  # noqa: E402

JS = "fetch('/formgrader/api/grade/1',{method:'PUT'})"
NASTY = [
    f"<script>{JS}</script>", f"<img src=x onerror=\"{JS}\">", f"<svg onload=\"{JS}\"></svg>",
    f"[click](javascript:{JS})", f"<a href=\"javascript:{JS}\">a</a>", f"<a href=\"JaVaScRiPt:{JS}\">b</a>",
    f"<iframe srcdoc=\"<script>{JS}</script>\"></iframe>", "<form action=/x><button>go</button></form>",
    f"<div style=\"position:fixed\" onmouseover=\"{JS}\">hover</div>", "<object data=x></object>",
    f"- Answer\n\n  ```\n  .\n\n  [![Full credit](data:image/png;base64,iVBOR)](javascript:{JS})\n  ```",
    f"    code\n\n    [y](javascript:{JS})", f"<div>\n\n[x](javascript:{JS})\n\n</div>",
    f"<details open ontoggle=\"{JS}\">x</details>", "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
    f"<a href=\"data:text/html,<script>{JS}</script>\">d</a>", "$a < b$ and $$\\sum_i x_i$$",
    "<style>body{display:none}</style>", f"<math><mtext><table><mglyph><style><img src=x onerror=\"{JS}\">",
    f"<!--><img src=x onerror=\"{JS}\">-->", f"<noscript><p title=\"</noscript><img src=x onerror={JS}>\">",
]


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in TAGS and tag not in ("div",):
            self.bad.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") or name in ("style", "srcdoc", "formaction", "action"):
                self.bad.append(f"{tag}[{name}]")
            if name in ("href", "src") and not value.startswith(("http://", "https://", "mailto:", "#", "attachment:",
                                                                 "data:image/png;", "data:image/jpeg;", "data:image/gif;")):
                self.bad.append(f"{tag}[{name}={value[:30]}]")


def bad_html(html: str) -> list[str]:
    parser = Tags()
    parser.feed(html)
    return parser.bad


@pytest.mark.parametrize("source", NASTY)
def test_markdown_rendered_again_as_formgrader_does_holds_nothing_active(source):
    stored = markdown(source)
    assert bad_html(markdown2html_mistune(stored)) == [], markdown2html_mistune(stored)
    assert markdown2html_mistune(stored).strip() == stored.strip(), "a second Markdown pass must change nothing"


def test_random_mixtures_of_markdown_and_html_stay_inert():
    rng = random.Random(1)
    pieces = NASTY + ["\n\n", "\n", "  ", "- ", "1. ", "> ", "```\n", "    ", "**b**", "`c`", "[a](http://x)", "#"]
    for _ in range(300):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        stored = markdown(source)
        assert bad_html(markdown2html_mistune(stored)) == [], source


def test_math_text_and_formatting_survive():
    stored = markdown("**Bold**, *em*, `code`, $a < b$,\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[link](https://example.org)")
    for piece in ("<strong>Bold</strong>", "<em>em</em>", "<code>code</code>", "$a &lt; b$", "<td>1</td>",
                  'href="https://example.org"'):
        assert piece in stored, stored


def test_a_notebook_keeps_only_inert_outputs_and_metadata():
    png = "iVBORw0KGgo="
    nb = new_notebook(cells=[
        new_markdown_cell(f"<script>{JS}</script>ok"),
        new_raw_cell(f"<script>{JS}</script>", metadata={"format": "text/html"}),
        new_code_cell("x", metadata={"nbgrader": {"grade_id": '"><script>', "grade": True}, "tags": ["t"]}, outputs=[
            new_output("display_data", data={"text/html": f"<b>b</b><script>{JS}</script>",
                                             "application/javascript": JS, "image/svg+xml": f"<svg onload=\"{JS}\"/>",
                                             "text/markdown": f"[m](javascript:{JS})", "image/png": png},
                       metadata={"image/png": {"width": '1" onerror="x'}}),
            new_output("display_data", data={"image/png": f'{png}" onerror="{JS}', "text/plain": "p"}),
            new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"}})])],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}, "widgets": {"x": "</script><script>"}, "title": "<script>"})
    InertContent().preprocess(nb, {})
    assert set(nb.metadata) == {"kernelspec"}
    assert nb.cells[2].metadata == {}, "nbgrader metadata with an id that is not a plain name is dropped"
    first, second, third = nb.cells[2].outputs
    assert set(first.data) == {"text/html", "image/png", "text/plain"} and first.metadata == {}
    assert bad_html(first.data["text/html"]) == [] and "<b>b</b>" in first.data["text/html"]
    assert set(second.data) == {"text/plain"}, "image data that is not plain base64 is dropped"
    assert "not shown" in third.data["text/plain"]
    assert "<script" not in nb.cells[1].source and "&lt;script" in nb.cells[1].source
    nbformat.validate(nb)
