"""Helpers for the tests that release, execute and autograde notebooks with nbgrader."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from nbgrader.api import Gradebook

from grader import markers
from grader.paths import GRADER, REPO, SOLUTIONS, assignments, source_files
from grader.release import generate, run_nbgrader

SOLUTION_MARKERS = markers.ALL


# Every assignment of solutions/ as nbgrader generates it, with nbgrader's gradebook of the generation: made
# once and shared by the tests of both workers and of later runs (make clean removes it). Its folder is named
# by what a generation depends on, so a changed solution or nbgrader configuration makes a new one.
RELEASES = REPO / ".cache" / "releases-tests"


def release_key() -> str:
    digest = hashlib.sha256(importlib.metadata.version("nbgrader").encode() + b"\0")

    # nbval runs the solutions in their folders: their kernels' dot-folders and caches are no input
    inputs = source_files(SOLUTIONS)
    inputs += [GRADER / "nbgrader_config.py", GRADER / "release.py"]
    for path in inputs:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # a file a running notebook made and removed
            continue
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:16]


def shared_release() -> Path:
    """The folder that holds `<assignment>/` for every assignment and `gradebook.db`, generated if missing."""
    RELEASES.mkdir(parents=True, exist_ok=True)
    folder = RELEASES / release_key()
    with open(RELEASES / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits for the generation instead of repeating it
        if not folder.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=RELEASES))
            try:
                generate(assignments(), staging, keep_database=True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            staging.rename(folder)
            for older in RELEASES.iterdir():
                if older.is_dir() and older != folder and not older.name.startswith("."):
                    shutil.rmtree(older, ignore_errors=True)
    return folder


def generated_into(assignment_ids: list[str], root: Path) -> None:
    """`root` as `nbgrader generate_assignment` leaves it for each of `assignment_ids` (see `nbgrader`): the
    shared generation's releases of them and its gradebook (which holds every assignment), copied."""
    released = shared_release()
    for assignment in assignment_ids:
        shutil.copytree(released / assignment, root / "release" / assignment)
    shutil.copy(released / "gradebook.db", root / "gradebook.db")


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


def autograde(
    submissions: dict[str, dict[str, dict[str, Path]]], root: Path
) -> dict[tuple[str, str], tuple[float, float]]:
    """Autograde notebooks of several assignments and students (assignment -> student -> {name: file}) in one
    nbgrader run (`nbgrader autograde "*"`: one process, so nbgrader starts once); return each (assignment,
    student)'s (score, max_score). The generation is the shared one (see `generated_into`)."""
    generated_into(sorted(submissions), root)
    for assignment, students in submissions.items():
        for student, submission in students.items():
            folder = root / "submitted" / student / assignment
            folder.mkdir(parents=True)
            for name, path in submission.items():
                shutil.copy(path, folder / name)
    nbgrader("autograde", "*", "--force", root=root)  # every assignment submitted, in one process
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        scores = {}
        for assignment, students in submissions.items():
            for student in students:
                row = gradebook.find_submission(assignment, student)
                scores[assignment, student] = (float(row.score), float(row.max_score))
        return scores


def cell_sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]
