"""The class's output folder, written so that a killed grading resumes where it stopped.

OUT/.grading/ holds `run.json` (the assignment and the course version that wrote OUT), `lock` (held with
fcntl.flock by the grading that runs, and naming its pid) and `results/<student_id>.json`: each student's
row and its key, a content hash of the submission and of everything its grade depends on (the
assignment's solution and data files, the grading options). A student's feedback pages are written first,
then that record: each file by write-to-temporary, fsync, os.replace, so a crash loses at most the students
in flight. A later `grade` on OUT grades only the students without a record of the same key;
grades.csv and grades.json are written from the records at the end.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import sys
from pathlib import Path

from grader import intake
from grader.paths import REPO, notebooks

COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "message"]
VERSIONED = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "nbgrader", "nbclient", "ipykernel")


class OutError(RuntimeError):
    """OUT cannot be written or resumed; the message says why (in one line)."""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` by `data` so that a crash leaves the old file or the new one, never a part."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _digest(parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def course_version() -> str:
    """A hash of the grading code, the helper package and the versions of the stack that runs them."""
    files = sorted((REPO / "grader").glob("*.py")) + sorted((REPO / "src" / "resumable").glob("*.py"))
    parts: list = [sys.version.split()[0]]
    for path in files:
        parts += [path.relative_to(REPO).as_posix(), path.read_bytes()]
    for distribution in VERSIONED:
        try:
            parts.append(f"{distribution}={importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{distribution}=none")
    return _digest(parts)[:16]


def assignment_fingerprint(assignment: str, solutions: Path, course: Path, options: dict) -> str:
    """What every student's grade of `assignment` depends on, besides the submission and the course version."""
    parts: list = [assignment, json.dumps(options, sort_keys=True, default=str)]
    for path in notebooks(assignment, solutions):
        parts += [path.name, path.read_bytes()]
    release = course / assignment
    if release.is_dir():  # the data files that come with it (the worker copies them)
        for path in sorted(release.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb" and "__pycache__" not in path.parts:
                parts += [path.relative_to(release).as_posix(), path.read_bytes()]
    return _digest(parts)[:16]


def student_key(fingerprint: str, submission: intake.Submission) -> str:
    parts: list = [fingerprint, submission.student, submission.problem or "", *submission.notes]
    for name in sorted(submission.files):
        data = submission.files[name]
        parts += [name, b"missing" if data is None else hashlib.sha256(data).digest()]
    return _digest(parts)[:24]


class ClassOutput:
    """OUT, locked for one grading. Use as a context manager."""

    def __init__(self, out: Path, assignment: str, version: str, *, restart: bool = False):
        self.out, self.assignment, self.version, self.restart = out, assignment, version, restart
        self.state = out / ".grading"
        self.records = self.state / "results"
        self._lock_handle = None

    def __enter__(self) -> ClassOutput:
        try:
            self.records.mkdir(parents=True, exist_ok=True)
            (self.out / "feedback").mkdir(exist_ok=True)
            handle = open(self.state / "lock", "a+")
        except OSError as error:
            raise OutError(f"cannot write into {self.out}: {error.strerror or error}") from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutError(
                f"{self.out} is being graded by another grade (pid {holder}); wait for it to finish or stop it"
            ) from None
        self._lock_handle = handle
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._check_run()
        return self

    def __exit__(self, *exc) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()  # releases the flock

    def _check_run(self) -> None:
        run_file = self.state / "run.json"
        run = json.loads(run_file.read_text()) if run_file.exists() else None
        if run is not None and run.get("assignment") != self.assignment:
            raise OutError(
                f"{self.out} holds grades of {run.get('assignment')}, not {self.assignment}: use another --out"
            )
        if run is not None and run.get("course_version") != self.version and not self.restart:
            raise OutError(
                f"{self.out} was graded by another version of the course ({run.get('course_version')}, this is "
                f"{self.version}): use another --out, or --restart to regrade everything into it"
            )
        if self.restart:
            for path in self.records.glob("*.json"):
                path.unlink()
        write_atomic(run_file, json.dumps({"assignment": self.assignment, "course_version": self.version}).encode())

    def graded(self, keys: dict[str, str]) -> dict[str, dict]:
        """The rows already recorded for these students (student id -> key) with the same key."""
        rows = {}
        for student, key in keys.items():
            path = self.records / f"{student}.json"
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("key") == key:
                rows[student] = record["row"]
        return rows

    def record(self, key: str, row: dict) -> dict:
        """Write one student's feedback, then its record (durably); returns the row without the pages."""
        row = dict(row)
        pages = row.pop("feedback", {}) or {}
        student = row["student_id"]
        folder = self.out / "feedback" / student
        (self.records / f"{student}.json").unlink(missing_ok=True)  # its old grade is void from here on
        if folder.exists():
            shutil.rmtree(folder)
        if pages:
            folder.mkdir(parents=True)
            for name, text in pages.items():
                write_atomic(folder / name, text.encode())
        write_atomic(self.records / f"{student}.json", json.dumps({"key": key, "row": row}).encode())
        return row

    def finish(self, rows: list[dict], students: set[str]) -> list[dict]:
        """grades.csv and grades.json from `rows` (sorted); records and feedback of students no longer in
        the class are removed, so that OUT equals an uninterrupted grading of this class."""
        for path in self.records.glob("*.json"):
            if path.stem not in students:
                path.unlink()
        for folder in (self.out / "feedback").iterdir():
            if folder.name not in students and folder.is_dir():
                shutil.rmtree(folder)
        rows = sorted(rows, key=lambda row: row["student_id"])
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "score": f"{row['score']:g}", "max_score": f"{row['max_score']:g}"})
        write_atomic(self.out / "grades.csv", table.getvalue().encode())
        write_atomic(self.out / "grades.json", json.dumps(rows, indent=1).encode())
        return rows
