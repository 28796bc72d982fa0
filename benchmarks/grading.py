"""Time grading: our sandboxed `python -m grader grade` (jobs 1 and 2) against plain sequential nbgrader."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.paths import COURSE, GRADER, REPO, SOLUTIONS, assignments, notebooks
from grader.release import venv_environment


def make_class(assignment: str, folder: Path, size: int) -> Path:
    """`size` students: every other one hands in the solution, the rest the untouched student copy."""
    submissions = folder / "submissions"
    for index in range(size):
        source = SOLUTIONS if index % 2 == 0 else COURSE
        student = submissions / f"student{index:02d}"
        student.mkdir(parents=True)
        for path in notebooks(assignment, source):
            shutil.copy(path, student / path.name)
    return submissions


def time_ours(assignment: str, submissions: Path, jobs: int, out: Path) -> float:
    """`python -m grader grade`, from an empty compile-cache folder: a class of 3 or more first builds the
    assignment's cache from the solution, and that build is part of the time."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "grader", "grade", assignment, str(submissions), "--out", str(out)]
    subprocess.run(
        [*command, "--jobs", str(jobs), "--compile-cache", str(out.parent / f"{out.name}-compile-cache")],
        cwd=REPO,
        env=venv_environment(),
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    with (out / "grades.csv").open() as handle:
        statuses = {row["status"] for row in csv.DictReader(handle)}
    if statuses != {"graded"}:
        raise RuntimeError(f"grading {assignment} gave statuses {statuses}; see {out}")
    return seconds


def time_plain_nbgrader(assignment: str, submissions: Path, root: Path) -> float:
    """Plain `nbgrader autograde` of the same students, one after another, no sandbox (its default)."""
    overrides = [
        f"--CourseDirectory.release_directory={root / 'release'}",
        f"--CourseDirectory.submitted_directory={root / 'submitted'}",
        f"--CourseDirectory.autograded_directory={root / 'autograded'}",
        f"--CourseDirectory.feedback_directory={root / 'feedback'}",
        f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}",
    ]
    root.mkdir(parents=True, exist_ok=True)  # sqlite creates the gradebook file, not its folder
    nbgrader = [sys.executable, "-m", "nbgrader"]
    run = dict(cwd=GRADER, env=venv_environment(), check=True, capture_output=True)
    subprocess.run([*nbgrader, "generate_assignment", assignment, "--force", *overrides], **run)
    for student in sorted(submissions.iterdir()):
        shutil.copytree(student, root / "submitted" / student.name / assignment)
    start = time.perf_counter()
    subprocess.run([*nbgrader, "autograde", assignment, *overrides], **run)
    return time.perf_counter() - start


def time_grading(assignment: str, class_size: int, plain_runs: int = 2) -> dict[str, float | list[float]]:
    """Seconds for ours (--jobs 1, --jobs 2) and for plain nbgrader, which runs `plain_runs` times: a missed
    kernel reply makes nbclient wait out a whole cell timeout (300 s), and one such run would flatter us."""
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as name:
        folder = Path(name)
        submissions = make_class(assignment, folder, class_size)
        return {
            "ours, --jobs 1": time_ours(assignment, submissions, 1, folder / "out1"),
            "ours, --jobs 2": time_ours(assignment, submissions, 2, folder / "out2"),
            "plain nbgrader autograde": [
                time_plain_nbgrader(assignment, submissions, folder / f"plain{run}") for run in range(plain_runs)
            ],
        }


def time_whole_course_student(jobs: int = 2) -> float:
    """One student handing in every assignment (the solutions): the total grading time over the course
    (a class of one builds no compile cache: each kernel compiles everything itself)."""
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-course-") as name:
        for assignment in assignments():
            submissions = make_class(assignment, Path(name) / assignment, 1)
            total += time_ours(assignment, submissions, jobs, Path(name) / assignment / "out")
    return total
