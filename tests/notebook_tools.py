"""Helpers for the tests that release, execute and autograde notebooks with nbgrader."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from grader import markers
from grader.paths import GRADER, SOLUTIONS
from grader.release import venv_environment

SOLUTION_MARKERS = markers.ALL


def nbgrader(*args: str, root: Path) -> subprocess.CompletedProcess:
    """Run an nbgrader command with the course config, its working area moved under `root`."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            *args,
            f"--CourseDirectory.source_directory={SOLUTIONS}",
            f"--CourseDirectory.release_directory={root / 'release'}",
            f"--CourseDirectory.submitted_directory={root / 'submitted'}",
            f"--CourseDirectory.autograded_directory={root / 'autograded'}",
            f"--CourseDirectory.feedback_directory={root / 'feedback'}",
            f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}",
        ],
        cwd=GRADER,
        env=venv_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{completed.stdout}{completed.stderr}"
    return completed


def autograde(
    assignment: str, submission: dict[str, Path], root: Path, student: str = "student"
) -> tuple[float, float]:
    """Autograde one student's notebooks (name -> file) for `assignment`; return (score, max_score)."""
    nbgrader("generate_assignment", assignment, "--force", root=root)
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for name, path in submission.items():
        shutil.copy(path, folder / name)
    nbgrader("autograde", assignment, "--force", f"--student={student}", root=root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        graded = gradebook.find_submission(assignment, student)
        return float(graded.score), float(graded.max_score)


def cell_sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]
