"""The class file of the course hub (hub/course.toml): read as written, or refused with the fix named."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursehub.course import Course, CourseError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "course.toml"
    path.write_text(text)
    return path


def test_the_example_class_file_reads_as_written():
    course = Course.load(ROOT / "hub" / "course.example.toml")
    assert course.course_id == "infogan-course" and course.instructor == "teacher"
    assert course.students == ["alice", "bob", "carol"] and course.memory_bytes() == 3 * 2**30
    assert course.exchange == Path("/srv/infogan-course/exchange") and course.port == 8000
    assert (course.disk_bytes(), course.exchange_bytes(), course.tmp_bytes()) == (2 * 2**30, 5 * 2**30, 2**30)
    assert course.internal_port == 901


def test_a_limit_of_0_means_none_and_then_tmp_may_hold_the_prefix(tmp_path):
    course = Course.load(write(tmp_path, 'course_id = "c"\ninstructors = ["t"]\n[limits]\ndisk = "0"\n'
                                         'exchange = "0"\ntmp = "0"\n[paths]\nprefix = "/tmp/course"'))
    assert (course.disk_bytes(), course.exchange_bytes(), course.tmp_bytes()) == (0, 0, 0)


@pytest.mark.parametrize("text, named", [
    ('course_id = "c"\ninstructors = []\nstudents = ["a"]', "at least one instructor"),
    ('course_id = "c"\ninstructors = ["t"]\nstudents = ["Bad Name"]', "not Unix user names"),
    ('course_id = "c"\ninstructors = ["t"]\nstudents = ["t"]', "instructors and as students"),
    ('course_id = "c"\ninstructors = ["t"]\nstudents = ["a", "a"]', "listed twice"),
    ('course_id = "c d"\ninstructors = ["t"]', "course_id"),
    ('course_id = "c"\ninstructors = ["t"]\nauthenticator = "ldap"', "authenticator_class"),
    ('course_id = "c"\ninstructors = ["t"]\n[limits]\nmemory = "lots"', "not a size"),
    ('course_id = "c"\ninstructors = ["t"]\n[paths]\nprefix = "srv"', "absolute"),
    ('course_id = "c"\ninstructors = ["t"\n', "not valid TOML"),
    ('course_id = "c"\ninstructors = ["t"]\n[limits]\ndisk = "-2G"', "limits.disk = '-2G' is not a size.*for no limit"),
    ('course_id = "c"\ninstructors = ["t"]\n[limits]\nexchange = "5 GB"', "limits.exchange"),
    ('course_id = "c"\ninstructors = ["t"]\n[paths]\nprefix = "/tmp/course"', "private one"),
    ('course_id = "c"\ninstructors = ["t"]\n[paths]\ndata = "/dev/shm/mnist"', "private one"),
    ('course_id = "c"\ninstructors = ["t"]\n[hub]\ninternal_port = 9001', "privileged port"),
])
def test_a_class_file_that_cannot_be_used_is_refused_with_its_fix(tmp_path, text, named):
    with pytest.raises(CourseError, match=named):
        Course.load(write(tmp_path, text))


def test_a_missing_class_file_says_how_to_make_one(tmp_path):
    with pytest.raises(CourseError, match="course.example.toml"):
        Course.load(tmp_path / "course.toml")


def test_the_instructor_only_parts_of_the_kit_folder_are_made_private(tmp_path):
    from coursehub.setup import protect_kit

    (tmp_path / "solutions" / "infogan_homework").mkdir(parents=True)
    (tmp_path / "gradebook.db").write_text("")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / ".git" / "objects").mkdir(parents=True)     # every version of solutions/ is in there
    for path in (tmp_path / "solutions", tmp_path / "gradebook.db", tmp_path / "notebooks", tmp_path / ".git"):
        path.chmod(0o755)
    changed = protect_kit(tmp_path)
    assert {p.name for p in changed} == {"solutions", "gradebook.db", ".git"}
    assert (tmp_path / ".git").stat().st_mode & 0o077 == 0
    assert (tmp_path / "solutions").stat().st_mode & 0o077 == 0
    assert (tmp_path / "gradebook.db").stat().st_mode & 0o077 == 0
    assert (tmp_path / "notebooks").stat().st_mode & 0o777 == 0o755, "the lessons stay readable"
