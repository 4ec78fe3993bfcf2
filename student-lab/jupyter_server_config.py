"""The student's JupyterLab: what `make lab` serves (README, "Start here").

`make lab` puts this folder first on JUPYTER_CONFIG_PATH and serves the course folder. The student's
file browser then holds the lessons (`notebooks/`), the homework (`assignments/`), the library the
lessons point into (`infogan_lib/`), `docs/` and the README, and JupyterLab has none of nbgrader's
tools. `labconfig/page_config.json` beside this file turns off nbgrader's lab extension (its menu,
the Create Assignment panel, the Assignments and Courses tabs, the Validate button).

Instructors keep nbgrader: `.venv/bin/jupyter lab` in the course folder does not read this folder
(INSTRUCTORS.md, "Grade the written answers").
"""

from fnmatch import fnmatch

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

c = get_config()  # noqa: F821  (Jupyter provides it)

# nbgrader's server side. Formgrader and the course list are the instructor's; the assignment list
# fetches and submits through an nbgrader exchange, which a student's laptop has not got (the class
# hands out the student bundle and collects through its own channel, INSTRUCTORS.md); Validate runs
# the visible tests, which the homework's test cells already run as the student works (and
# "Restart Kernel and Run All Cells" runs them all).
c.ServerApp.jpserver_extensions.update({
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.assignment_list": False,
    "nbgrader.server_extensions.course_list": False,
    "nbgrader.server_extensions.validate_assignment": False,
})

# Left out of the file browser's top level: the instructor's (nbgrader's source folder with the
# solutions and hidden tests, its configuration, its working folders and outputs) and the kit's own
# machinery (tests, benchmarks, build files, this folder). Only the top level: a student's own
# folder named `tests` or `feedback` inside notebooks/ stays in view. This hides, it does not
# protect: a path typed in full still opens (the student bundle has no solutions/ at all).
HIDDEN_AT_TOP = (
    "solutions", "nbgrader_config.py", "INSTRUCTORS.md", "grading", "gradebook.db", "submitted",
    "autograded", "feedback", "exchange", "dist", "grades.csv", "grades-by-cell.csv",
    "grading-report.md", "nbgrader.log",
    "tests", "harness", "benchmarks", "tools", "student-lab", "Makefile", "pyproject.toml",
    "requirements.txt", "environment.yml", "voila.json", "*.egg-info",
)


class StudentContentsManager(AsyncLargeFileManager):
    """Jupyter Server's default contents manager, with HIDDEN_AT_TOP left out of the top folder."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if model["type"] == "directory" and path.strip("/") == "" and model.get("content"):
            model["content"] = [entry for entry in model["content"]
                                if not any(fnmatch(entry["name"], glob) for glob in HIDDEN_AT_TOP)]
        return model


c.ServerApp.contents_manager_class = StudentContentsManager
