"""Time grading: our sandboxed `python -m grader grade` (jobs 1 and 2, and on Dask with two local workers)
against plain sequential nbgrader."""

from __future__ import annotations

import csv
import json
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


def time_ours(assignment: str, submissions: Path, jobs: int, out: Path, *options: str) -> float:
    """`python -m grader grade`, from an empty compile-cache folder: a class of 3 or more first builds the
    assignment's cache from the solution, and that build is part of the time."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "grader", "grade", assignment, str(submissions), "--out", str(out)]
    subprocess.run(
        [*command, "--jobs", str(jobs), "--compile-cache", str(out.parent / f"{out.name}-compile-cache"), *options],
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


class LocalDaskCluster:
    """`dask scheduler` and `dask worker`s (one thread each, no nanny) on 127.0.0.1, in `folder`; `stop` ends
    them (the bench's Dask row and tests/test_grader_dask.py)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        self.processes: list[subprocess.Popen] = []
        self._start(["scheduler", "--port", "0", "--scheduler-file", str(self.file)], venv_environment())
        deadline = time.monotonic() + 60
        while not self.file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start in 60 s")
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        command = [str(Path(sys.executable).parent / "dask"), *args, "--host", "127.0.0.1", "--no-dashboard"]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def add_workers(self, count: int, env: dict[str, str] | None = None) -> list[subprocess.Popen]:
        """`count` more workers (`env`: their environment), returned once the scheduler has them all."""
        args = ["worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--no-nanny"]
        workers = [self._start(args, env or venv_environment()) for _ in range(count)]
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(len(self.processes) - 1, timeout=120)
        return workers

    def stop(self) -> None:
        """The workers first, then the scheduler: a worker that closes says goodbye to its scheduler, and one
        whose scheduler is already gone waits out Dask's 30 s connect timeout first (seen under load)."""
        workers, scheduler = self.processes[1:], self.processes[:1]
        for group in (workers, scheduler):
            for process in group:
                if process.poll() is None:
                    process.terminate()
            for process in group:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def time_ours_on_dask(assignment: str, submissions: Path, out: Path, workers: int = 2) -> float:
    """`grade --dask` on a scheduler and `workers` workers of one thread each started here (their start is not
    timed; each builds the compile cache of its machine, as a cluster's workers would)."""
    cluster = LocalDaskCluster(out.parent / f"{out.name}-cluster")
    try:
        cluster.add_workers(workers)
        return time_ours(assignment, submissions, 1, out, "--dask", str(cluster.file))
    finally:
        cluster.stop()


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


def time_grading(assignment: str, class_size: int, runs: int = 2) -> dict[str, list[float]]:
    """Seconds of each of `runs` gradings of the same class, for each configuration: ours (--jobs 1, --jobs 2,
    --dask) and plain nbgrader autograde (from grader/, the course's config: its Execute waits in slices, so a
    missed kernel reply no longer costs it a cell timeout). Every configuration runs as often, in turns."""
    configurations = {
        "ours, --jobs 1": lambda out: time_ours(assignment, submissions, 1, out),
        "ours, --jobs 2": lambda out: time_ours(assignment, submissions, 2, out),
        "ours, --dask with 2 local workers of 1 thread": lambda out: time_ours_on_dask(assignment, submissions, out),
        "plain nbgrader autograde": lambda out: time_plain_nbgrader(assignment, submissions, out),
    }
    times: dict[str, list[float]] = {name: [] for name in configurations}
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as name:
        folder = Path(name)
        submissions = make_class(assignment, folder, class_size)
        for run in range(runs):
            for number, (what, time_one) in enumerate(configurations.items()):
                times[what].append(time_one(folder / f"run{run}-{number}"))
    return times


def time_whole_course_student(jobs: int = 2) -> float:
    """One student handing in every assignment (the solutions): the total grading time over the course
    (a class of one builds no compile cache: each kernel compiles everything itself)."""
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-course-") as name:
        for assignment in assignments():
            submissions = make_class(assignment, Path(name) / assignment, 1)
            total += time_ours(assignment, submissions, jobs, Path(name) / assignment / "out")
    return total
