"""The grader on a simulated class: honest, wrong and hostile students graded together, in parallel.

Every assignment under solutions/ gets: the solution (full marks), forged answers (objects equal to anything;
patched comparison functions: zero), and the wrong answers registered for it (less than full marks; the
outputs shown in the feedback name the cause). The untouched student copy is graded here on the first
assignment only: that it scores zero on every assignment is a property of the release's hidden tests, which
test_autograde.py asserts for each one under plain nbgrader (the same release, the same hidden tests), and
this grader scores a notebook from its cells' errors the same way whatever the assignment. A copy whose answer
cells the grader took from the solution instead would also give the forged students full marks here. The sandbox
attacks and malformed inputs are in test_grader_attacks.py (a file of its own, so that xdist runs them
beside these).
After each run: no sandbox process is left, no course file changed.
"""

from __future__ import annotations

import csv
import hashlib
import html
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader import grade, sandbox
from grader.paths import REPO, SOLUTIONS, assignments
from tests.grader_fixtures.simulated_class import WRONG_ANSWERS, SimulatedClass, honest_and_forged

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.availability()[0], reason="no sandbox: " + sandbox.availability()[1]),
]
ASSIGNMENTS = assignments()
CELL_TIMEOUT, STUDENT_TIMEOUT = 300, 900


def fingerprint(out: Path) -> dict[str, str | None]:
    """The files the escape attack tries to write (see attacks.ESCAPE): none may appear or change."""
    targets = [REPO / "solutions" / "pwned.txt", REPO / "pwned.txt", REPO / "src" / "resumable" / "pwned.py",
               REPO / ".venv" / "pwned.txt", REPO / "grader" / "work" / "gradebook.db", out / "pwned.txt"]  # fmt: skip
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None for path in targets}


def sandbox_processes(uid_base: int) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if uid_base <= int(line.split()[0]) < uid_base + 64]


def feedback_text(out: Path, student: str) -> str:
    return "".join(html.unescape(path.read_text()) for path in sorted((out / "feedback" / student).glob("*.html")))


class _Outputs(HTMLParser):
    """The text of the cells' outputs in a feedback page (nbconvert's `output_wrapper` divs), without their
    sources: a check cell's source holds its own failure messages, which must not count as shown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # open divs inside the current output_wrapper (0: outside any)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "div":
            return
        if self.depth:
            self.depth += 1
        elif "output_wrapper" in (dict(attrs).get("class") or "").split():
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self.depth:
            self.depth -= 1
            if not self.depth:
                self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def feedback_outputs(out: Path, student: str) -> str:
    """What the feedback shows the student's notebook printed or raised (not the cells' sources)."""
    parts = []
    for path in sorted((out / "feedback" / student).glob("*.html")):
        parser = _Outputs()
        parser.feed(path.read_text())
        parser.close()
        parts.append("".join(parser.parts))
    return "\n".join(parts)


def check_rows(simulated: SimulatedClass, rows: list[dict], out: Path) -> None:
    by_student = {row["student_id"]: row for row in rows}
    assert sorted(by_student) == sorted(simulated.expectations), "one row per student"
    maximum = max(row["max_score"] for row in rows)
    assert maximum > 0
    failures = []
    for student, expect in simulated.expectations.items():
        row = by_student[student]
        problems = []
        if row["max_score"] != maximum:
            problems.append(f"max_score {row['max_score']} != {maximum}")
        if expect.score == "max" and row["score"] != maximum:
            problems.append(f"score {row['score']} != max")
        if expect.score == "zero" and row["score"] != 0:
            problems.append(f"UNEARNED score {row['score']}")
        if expect.score == "partial" and not 0 <= row["score"] < maximum:
            problems.append(f"score {row['score']} should be below {maximum}")
        if row["status"] not in expect.status:
            problems.append(f"status {row['status']} not in {expect.status}")
        problems += [f"message lacks {text!r}" for text in expect.message_has if text not in row["message"]]
        if expect.feedback_has:  # in the outputs: a check's source holds its messages whether it failed or not
            shown = feedback_outputs(out, student)
            problems += [f"feedback's outputs lack {item!r}" for item in expect.feedback_has if item not in shown]
        if expect.feedback_lacks:  # anywhere on the pages
            page = feedback_text(out, student)
            problems += [f"feedback shows {item[:60]!r}" for item in expect.feedback_lacks if item in page]
        if problems:
            failures.append(f"{student}: {'; '.join(problems)} (row: {row['status']}, {row['message'][:300]})")
    assert not failures, "\n".join(failures)


# The classes' compilation caches, kept between runs like the tests' own JAX cache (make test puts both in
# .cache/): a class cache is keyed by the solution, the helper package and the environment (grade.cache_key),
# so it is built again exactly when one of those changes. The hostile class builds one of its own every run
# (test_grader_attacks.py), so that the build from the solution in the sandbox is graded on every run too.
CLASS_CACHES = REPO / ".cache" / "class-caches-tests"


def run_class(simulated: SimulatedClass, out: Path, **settings) -> list[dict]:
    """Grade the class into `out` (compile caches under settings["compile_cache"], default CLASS_CACHES)."""
    before = fingerprint(out)
    uid_base = grade._uid_base()
    caches = settings.get("compile_cache", CLASS_CACHES)  # built from the solution first when missing
    rows = grade.grade_class(
        simulated.assignment,
        simulated.folder,
        out,
        jobs=2,
        cell_timeout=settings.get("cell_timeout", CELL_TIMEOUT),
        student_timeout=settings.get("student_timeout", STUDENT_TIMEOUT),
        compile_cache=caches,
        solutions=settings.get("solutions", SOLUTIONS),
    )
    if caches is not None and len(simulated.expectations) >= grade.BUILD_CACHE_FROM:
        built = [path.name for path in caches.iterdir() if path.name.startswith(f"{simulated.assignment}-")]
        assert built == [f"{simulated.assignment}-{grade.cache_key(simulated.assignment)}"], built
    assert sandbox_processes(uid_base) == [], "sandbox processes outlived grading"
    assert fingerprint(out) == before, "grading changed files of the course"
    with open(out / "grades.csv") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == grade.COLUMNS
    assert len(table) == len(simulated.expectations)
    for path in (out / "feedback").rglob("*.html"):  # no hidden test source in any feedback
        text = html.unescape(path.read_text())
        assert "BEGIN HIDDEN TESTS" not in text, path
    return rows


# The classes take 1-4 minutes each; this file grades these, test_grader_class_rest.py the others, so that
# xdist (--dist loadfile keeps a file on one worker) runs the two halves side by side.
THIS_FILE = ("07_production", "01_snapshot", "02_persist", "08_sharding", "06_loaders")


@pytest.mark.parametrize("assignment", [name for name in ASSIGNMENTS if name in THIS_FILE])
def test_simulated_class(assignment, tmp_path):
    grade_and_check(assignment, tmp_path)


def grade_and_check(assignment: str, tmp_path: Path) -> None:
    simulated = SimulatedClass(assignment, tmp_path / "submissions")
    honest_and_forged(simulated, tmp_path, untouched=assignment == ASSIGNMENTS[0])
    rows = run_class(simulated, tmp_path / "out")
    check_rows(simulated, rows, tmp_path / "out")
    # A cause must be shown only by a failing check: text in a cell's source (a check's own message, quoted
    # again by a traceback) would be found whatever the wrong student got.
    honest = feedback_text(tmp_path / "out", "solution")
    quoted = [cause for wrong in WRONG_ANSWERS.get(assignment, []) for cause in wrong.causes if cause in honest]
    assert not quoted, f"causes that the honest student's feedback shows too: {quoted}"
