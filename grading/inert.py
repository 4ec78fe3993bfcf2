"""A graded notebook made inert before anyone renders it: no student script can run in your browser.

Formgrader shows the autograded notebook to the instructor as HTML, in the instructor's own session,
with nbconvert's templates, which put a cell's HTML output, SVG, JavaScript and the HTML inside
Markdown into the page as they are. A script there could use the session to change grades (formgrader's
API accepts the page's own XSRF token). Configuring the renderer is not enough: formgrader does not
read `nbgrader_config.py` for its exporter, and an instructor may open the notebook with any tool. So
`InertContent`, the last step of autograde (after the scores are saved), rewrites what the student
wrote into content that is safe wherever it is rendered:

- Markdown cells are rendered to HTML (mistune, as nbconvert does) and cleaned with bleach to an
  allow-list of formatting tags and attributes: no script, style, event handler, iframe, form, SVG or
  object; links only to http, https, mailto and anchors; images only from data:image/ and attachments.
  Math stays as text for MathJax. The cleaned HTML becomes the cell's source as one HTML block with
  no blank line, which a second Markdown pass (formgrader's) leaves as it is: checked for every cell,
  else the cell is shown as escaped text.
- Raw cells become escaped text.
- Outputs keep text/plain, text/latex, cleaned text/html, and PNG/JPEG/GIF whose data is plain base64;
  text/markdown becomes cleaned HTML; SVG, JavaScript, widget views and any other type are replaced
  by a one-line note. Output metadata (image sizes put into attributes) is dropped.
- Attachments keep only images with plain base64 data; notebook metadata keeps only the kernel and
  language; cell metadata keeps only nbgrader's, and only for the cells the release defines.
"""

from __future__ import annotations

import html
import re

import bleach
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbgrader.preprocessors import NbGraderPreprocessor

TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3",
        "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup",
        "table", "tbody", "td", "th", "thead", "tr", "u", "ul"}
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
BLANK = re.compile(r"^[ \t]*$", re.M)
IMAGES = ("image/png", "image/jpeg", "image/gif")
KEEP_METADATA = ("kernelspec", "language_info")
GRADE_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _attribute(tag: str, name: str, value: str) -> bool:
    if name in ("title", "alt"):
        return True
    if tag == "a" and name == "href":
        return value.startswith(("http://", "https://", "mailto:", "#"))
    if tag == "img" and name == "src":
        return value.startswith(("attachment:", "data:image/png;base64,", "data:image/jpeg;base64,",
                                 "data:image/gif;base64,")) and BASE64.fullmatch(value.split(",", 1)[-1]) is not None
    if tag in ("img", "td", "th") and name in ("width", "height", "align", "colspan", "rowspan"):
        return value.isdigit() or value in ("left", "right", "center")
    return False


def clean(fragment: str) -> str:
    """HTML reduced to formatting: tags outside TAGS escaped, attributes outside the allow-list dropped."""
    return bleach.clean(fragment, tags=TAGS, attributes=_attribute, protocols={"http", "https", "mailto", "data"},
                        strip=False, strip_comments=True)


def _one_block(fragment: str) -> str:
    """HTML that a Markdown renderer passes on untouched: one <div> block with no blank line in it
    (a blank line would end the HTML block, and what follows would be read as Markdown again)."""
    return "<div>\n" + BLANK.sub("&#8203;", fragment.strip("\n")) + "\n</div>"


def markdown(source: str) -> str:
    """A Markdown cell's source → cleaned HTML that renders to itself when rendered as Markdown again
    (checked; else the source shown as escaped text)."""
    for stored in (_one_block(clean(markdown2html_mistune(source))),
                   _one_block("<pre>" + html.escape(source) + "</pre>")):
        if markdown2html_mistune(stored).strip() == stored.strip():
            return stored
    return _one_block("".join(f"&#{ord(ch)};" if not ch.isalnum() and ch != "\n" else ch for ch in source))


def _note(kind: str) -> str:
    return f"[{kind} output not shown: graded notebooks keep only text, formatted HTML and plain images]"


def inert_output(output) -> None:
    if "metadata" in output:
        output.metadata = {}
    data = output.get("data")
    if not isinstance(data, dict):
        return
    kept = {}
    for kind, value in data.items():
        text = "".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else value
        if not isinstance(text, str):
            kept.setdefault("text/plain", _note(str(kind).split(";")[0][:60]))
        elif kind in ("text/plain", "text/latex"):
            kept[kind] = text
        elif kind == "text/html":
            kept[kind] = clean(text)
        elif kind == "text/markdown":
            if "text/html" not in data:
                kept["text/html"] = markdown(text)
        elif kind in IMAGES and BASE64.fullmatch(text):
            kept[kind] = text
        else:
            kept.setdefault("text/plain", _note(kind.split(";")[0][:60]))
    output.data = kept


class InertContent(NbGraderPreprocessor):
    """Autograde's last step: the notebook as written to autograded/ is inert (module docstring)."""

    def preprocess(self, nb, resources):
        nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_METADATA}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader")
        keep = isinstance(meta, dict) and GRADE_ID.fullmatch(str(meta.get("grade_id", "")))
        cell.metadata = {"nbgrader": meta} if keep else {}
        if "attachments" in cell:
            cell.attachments = {name: {k: v for k, v in files.items() if k in IMAGES and isinstance(v, str)
                                       and BASE64.fullmatch(v)}
                                for name, files in dict(cell.attachments).items()
                                if isinstance(files, dict) and GRADE_ID.fullmatch(str(name))}
        if cell.cell_type == "markdown":
            cell.source = markdown(cell.source)
        elif cell.cell_type == "raw":
            cell.source = html.escape(cell.source)
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                inert_output(output)
        return cell, resources
