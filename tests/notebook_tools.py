"""Helpers for the tests that release, execute and autograde notebooks with nbgrader."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from nbgrader.api import Gradebook

from grader import markers
from grader.paths import SOLUTIONS
from grader.release import run_nbgrader

SOLUTION_MARKERS = markers.ALL


def nbgrader(*args: str, root: Path) -> subprocess.CompletedProcess:
    """Run an nbgrader command with the course config, its working area moved under `root`."""
    completed = run_nbgrader(
        *args,
        f"--CourseDirectory.source_directory={SOLUTIONS}",
        f"--CourseDirectory.release_directory={root / 'release'}",
        f"--CourseDirectory.submitted_directory={root / 'submitted'}",
        f"--CourseDirectory.autograded_directory={root / 'autograded'}",
        f"--CourseDirectory.feedback_directory={root / 'feedback'}",
        f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}",
    )
    assert completed.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{completed.stdout}{completed.stderr}"
    return completed


def autograde(assignment: str, submissions: dict[str, dict[str, Path]], root: Path) -> dict[str, tuple[float, float]]:
    """Autograde several students' notebooks (student -> {name: file}) for `assignment` in one nbgrader run;
    return each student's (score, max_score)."""
    nbgrader("generate_assignment", assignment, "--force", root=root)
    for student, submission in submissions.items():
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        for name, path in submission.items():
            shutil.copy(path, folder / name)
    nbgrader("autograde", assignment, "--force", root=root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        graded = {student: gradebook.find_submission(assignment, student) for student in submissions}
        return {student: (float(row.score), float(row.max_score)) for student, row in graded.items()}


def cell_sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]
