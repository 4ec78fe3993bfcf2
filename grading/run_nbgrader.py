"""`python -m grading.run_nbgrader ARGS` is `python -m nbgrader ARGS` without one import's cost: the
nbgrader processes of a grading run (grading/grade.py) start this way.

nbformat imports jsonschema, which builds 39 parsers for the "iri" string format at import time when
the package rfc3987-syntax is installed (jupyter-events asks for it): about 3 s of CPU in every
process that reads a notebook, for a format that neither nbformat nor nbgrader checks. Here the
package counts as not installed, so jsonschema leaves that format out.
"""

from __future__ import annotations

import sys


def skip_iri_parsers() -> None:
    """Before nbformat is first imported: jsonschema then finds no rfc3987-syntax."""
    sys.modules.setdefault("rfc3987_syntax", None)


if __name__ == "__main__":
    skip_iri_parsers()
    from nbgrader.apps.nbgraderapp import main
    sys.exit(main())
