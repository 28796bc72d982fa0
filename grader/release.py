"""Generate the student notebooks (course/) from the sources (solutions/) with nbgrader, atomically.

Plain `nbgrader generate_assignment --force` deletes the previous release before it generates, so a
failure leaves nothing. Here every assignment is generated into a temporary folder first; course/ is
only touched once all of them succeeded, one rename per assignment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from grader.paths import COURSE, GRADER, SOLUTIONS, assignments, notebooks


class ReleaseError(RuntimeError):
    """nbgrader could not generate an assignment; course/ was left as it was."""


def venv_environment() -> dict[str, str]:
    """The environment with this Python's bin/ first on PATH: nbgrader runs `alembic` by name."""
    bin_dir = os.path.dirname(sys.executable)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def run_nbgrader(*args: str) -> subprocess.CompletedProcess:
    """`python -m nbgrader ARGS` with the course configuration (run from grader/), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=GRADER,
        env=venv_environment(),
        capture_output=True,
        text=True,
        check=False,
    )


def generate(
    assignment_ids: list[str], release_dir: Path, solutions: Path = SOLUTIONS, keep_database: bool = False
) -> None:
    """Run `nbgrader generate_assignment` for each assignment of `solutions` into `release_dir/<assignment>/`;
    with `keep_database`, nbgrader's gradebook of them stays beside them (`release_dir/gradebook.db`)."""
    release_dir.mkdir(parents=True, exist_ok=True)
    database = release_dir / "gradebook.db"
    for assignment in assignment_ids:
        completed = run_nbgrader(
            "generate_assignment",
            assignment,
            "--force",
            f"--CourseDirectory.source_directory={solutions}",
            f"--CourseDirectory.release_directory={release_dir}",
            f"--CourseDirectory.db_url=sqlite:///{database}",
        )
        produced = notebooks(assignment, release_dir)
        if completed.returncode != 0 or not produced:
            raise ReleaseError(
                f"nbgrader could not generate {assignment} (exit {completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}"
            )
    if not keep_database:
        database.unlink(missing_ok=True)


def release(assignment_ids: list[str] | None = None, course_dir: Path = COURSE) -> list[str]:
    """Regenerate `course_dir/<assignment>` for the given (default: all) assignments; return their ids."""
    assignment_ids = assignment_ids or assignments()
    course_dir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="release-", dir=course_dir.parent) as staging_name:
        staging = Path(staging_name)
        generate(assignment_ids, staging / "new")
        for assignment in assignment_ids:
            target, previous = course_dir / assignment, staging / "old" / assignment
            previous.parent.mkdir(exist_ok=True)
            if target.exists():
                target.rename(previous)
            (staging / "new" / assignment).rename(target)
    return assignment_ids


def main(argv: list[str]) -> int:
    try:
        done = release(argv or None)
    except ReleaseError as error:
        print(f"release failed, course/ unchanged: {error}", file=sys.stderr)
        return 1
    print("regenerated " + ", ".join(f"course/{name}" for name in done))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
