"""Grade one student on this machine: the code the local pool's threads and Dask's workers both run.

`grade_one` runs grader.worker in its own process (trusted, outside the sandbox), inside the student's
fence (grader/fences.py) when fences are on, with a sandbox user id of its own, and returns the student's
row with the feedback pages (`row["feedback"]`: file name -> HTML); it writes nothing into the class's
output folder (the grading process does, see grader/results.py), so a row can come back from another machine.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

from grader import fences, intake
from grader.assemble import load_template, save_templates
from grader.feedback import render
from grader.paths import REPO, notebooks

_lock = threading.Lock()
_run_folders: dict[tuple[str, str, str], Path] = {}
_free_slots: list[int] = []
_slots_made = 0
_live: set[subprocess.Popen] = set()


def uid_base(pid: int | None = None) -> int:
    """The first sandbox user id of the process `pid` (default: this one); it uses up to 64 from there."""
    return 100000 + ((os.getpid() if pid is None else pid) % 20000) * 64


def _take_slot() -> int:
    global _slots_made
    with _lock:
        if _free_slots:
            return _free_slots.pop()
        _slots_made += 1
        return _slots_made - 1


def _give_slot(slot: int) -> None:
    with _lock:
        _free_slots.append(slot)


def run_folder(assignment: str, solutions: Path, course: Path) -> Path:
    """This process's private folder for `assignment`, holding its templates (hidden tests included).

    Named grade-<pid>-...: fences.clean_stale removes it once this process is gone."""
    key = (assignment, str(solutions), str(course))
    with _lock:
        if key not in _run_folders:
            folder = Path(tempfile.mkdtemp(prefix=f"grade-{os.getpid()}-"))
            os.chmod(folder, 0o700)
            templates = {
                path.name: load_template(assignment, path.name, solutions, course)
                for path in notebooks(assignment, solutions)
            }
            save_templates(templates, folder / "templates.json")
            _run_folders[key] = folder
            atexit.register(shutil.rmtree, folder, True)
        return _run_folders[key]


def stop_all() -> None:
    """Kill every worker this process is running (grading was interrupted); their sandboxes die with them."""
    with _lock:
        live = list(_live)
    for process in live:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def grade_one(index: int, submission: intake.Submission, settings: dict) -> dict:
    """One student's row (with `feedback`), graded here. `settings`: see grader.grade.grade_class."""
    if settings.get("fenced"):
        fences.clean_stale()  # what a grader killed before us left on this machine
    run = run_folder(settings["assignment"], Path(settings["solutions"]), Path(settings["course"]))
    slot = _take_slot()
    try:
        return _run_worker(index, submission, run, uid=uid_base() + slot, **settings)
    finally:
        _give_slot(slot)


def _fence_limits(settings: dict) -> fences.FenceLimits:
    cpus = settings.get("cpus")
    return fences.FenceLimits(
        memory_mb=int(settings["memory_mb"]),
        disk_mb=int(settings["disk_mb"]),
        processes=int(settings.get("processes") or fences.FenceLimits.processes),
        cpus=None if cpus is None else float(cpus),
    )


def _run_worker(index: int, submission: intake.Submission, run_dir: Path, **settings) -> dict:
    """Run grader.worker for one student in its own process; a row even when the worker fails."""
    folder = Path(tempfile.mkdtemp(prefix=f"s{index:04d}-" if index >= 0 else "solution-", dir=run_dir))
    (folder / "input").mkdir()
    files = {}
    for name, data in submission.files.items():
        if data is not None:
            (folder / "input" / name).write_bytes(data)
            files[name] = str(folder / "input" / name)
        else:
            files[name] = None
    spec = {
        "student": submission.student,
        "files": files,
        "notes": submission.notes,
        "problem": submission.problem,
        "folder": str(folder),
        "templates": str(run_dir / "templates.json"),
        "parent_pid": os.getpid(),
        **{key: (str(value) if isinstance(value, Path) else value) for key, value in settings.items()},
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    started = time.monotonic()
    limit = float(settings["student_timeout"]) + 180
    command = [sys.executable, "-m", "grader.worker", str(folder / "spec.json")]
    fence = None
    verdict: list[str] = []
    try:
        if settings.get("fenced") and submission.problem is None:
            fence = fences.Fence.create(folder / "scratch", _fence_limits(settings))
            command = fence.join_command(command)
        process = subprocess.Popen(
            command, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        with _lock:
            _live.add(process)
        try:
            log, _ = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            log, _ = process.communicate()
        finally:
            with _lock:
                _live.discard(process)
            try:
                os.killpg(process.pid, signal.SIGKILL)  # anything the worker left behind
            except ProcessLookupError:
                pass
        if fence is not None:
            verdict = fence.verdict()
    finally:
        if fence is not None:
            fence.close()
    result_path = folder / "result.json"
    seconds = time.monotonic() - started
    if result_path.exists():
        row = json.loads(result_path.read_text())
    else:
        tail = log.decode(errors="replace").strip().splitlines()[-3:] if log else []
        row = {
            "student_id": submission.student,
            "assignment": settings["assignment"],
            "score": 0.0,
            "max_score": 0.0,
            "status": "error",
            "message": "the grader itself failed on this submission: " + " / ".join(tail)[-400:],
            "tests": [],
        }
    if verdict:  # a fence was reached: the student's code, not the grader, stopped the run
        row["status"] = "error"
        row["message"] = " | ".join([*verdict, *([row["message"]] if row["message"] else [])])[:1000]
    row["feedback"] = {}
    for path in sorted((folder / "feedback").glob("*.json")):
        page = json.loads(path.read_text())
        notebook = nbformat.reads(page["notebook"], as_version=4)
        row["feedback"][f"{path.stem}.html"] = render(
            notebook, page["name"], submission.student, settings["assignment"], page["score"], page["max_score"]
        )
    row["seconds"] = round(seconds, 2)
    shutil.rmtree(folder, ignore_errors=True)
    return row
