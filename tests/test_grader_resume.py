"""Resumable grading: a grading killed with SIGKILL part-way and run again equals an uninterrupted one and
runs only the rest; a second grading of the same --out is refused; OUT's bookkeeping (changed, removed
and new students, another assignment, another course version, --restart, a full disk)."""

from __future__ import annotations

import difflib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import fences, grade, results, sandbox, student
from grader.paths import REPO
from grader.release import venv_environment
from tests.grader_fixtures.simulated_class import (
    TINY,
    TINY_SOLUTIONS,
    SimulatedClass,
    dump,
    forged_answers,
    released,
    solutions,
)
from tests.proc_tools import command_lines
from tests.test_grader_class import sandbox_processes

ASSIGNMENT = "01_snapshot"
NAME = f"{ASSIGNMENT}.ipynb"
needs_sandbox = pytest.mark.skipif(not sandbox.availability()[0], reason="no sandbox: " + sandbox.availability()[1])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader", "grade", *args]


def tiny_cli(*args: str) -> list[str]:
    """`grade` for the tiny assignment (small_class's students)."""
    return cli(TINY, *args, "--solutions", str(TINY_SOLUTIONS))


def run_cli(*args: str, tiny: bool = False) -> subprocess.CompletedProcess:
    command = tiny_cli(*args) if tiny else cli(*args)
    return subprocess.run(command, cwd=REPO, env=venv_environment(), capture_output=True, text=True, timeout=600)


def graded_lines(log: str) -> list[str]:
    """The progress lines of the students a run graded itself."""
    return re.findall(r"^\[\d+/\d+\] .*$", log, flags=re.MULTILINE)


def untimed(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


def outcome(out: Path) -> tuple[str, list[dict], dict[str, str]]:
    """grades.csv, grades.json without the timings, and every feedback page: what must equal."""
    rows = [
        {key: value for key, value in row.items() if key != "seconds"}
        for row in json.loads((out / "grades.json").read_text())
    ]
    pages = {path.relative_to(out).as_posix(): path.read_text() for path in sorted((out / "feedback").rglob("*.html"))}
    return (out / "grades.csv").read_text(), rows, pages


def assert_same(out: Path, reference: Path) -> None:
    """`outcome` equal, with the first differing lines of a page shown when one differs."""
    (table, rows, pages), (table_ref, rows_ref, pages_ref) = outcome(out), outcome(reference)
    assert (table, rows) == (table_ref, rows_ref)
    assert sorted(pages) == sorted(pages_ref)
    for name in pages:
        changed = [line for line in difflib.unified_diff(pages_ref[name].splitlines(), pages[name].splitlines(), n=0)]
        assert not changed, f"{name} differs:\n" + "\n".join(line[:300] for line in changed[:12])


def left_running(grader_pid: int) -> list[str]:
    """Processes of a grader that is gone: its workers (their spec is in its run folder) and its sandboxes."""
    mine = [command for _, command in command_lines() if f"grade-{grader_pid}-" in command]
    return mine + sandbox_processes(student.uid_base(grader_pid))


def small_class(tmp_path: Path, size: int = 4) -> SimulatedClass:
    """Students of the tiny assignment (simulated_class.TINY): the machinery under test is the grader's."""
    stubs, full = released(TINY, tmp_path, TINY_SOLUTIONS), solutions(TINY, TINY_SOLUTIONS)
    simulated = SimulatedClass(TINY, tmp_path / "submissions")
    simulated.add("a-solution", dump(full), None)
    simulated.add("b-untouched", dump(stubs), None)
    simulated.add("c-forged", dump(forged_answers(stubs, "")), None)
    if size > 3:
        simulated.add("d-solution-again", dump(full), None)
    return simulated


@pytest.mark.slow
@needs_sandbox
def test_a_killed_grading_resumes_to_the_same_grades(tmp_path):
    simulated = small_class(tmp_path)
    common = ["--no-compile-cache", "--jobs", "2"]
    reference = run_cli(str(simulated.folder), "--out", str(tmp_path / "reference"), *common, tiny=True)
    assert reference.returncode == 0, reference.stderr
    assert len(graded_lines(reference.stderr)) == 4

    out = tmp_path / "out"
    first = subprocess.Popen(
        tiny_cli(str(simulated.folder), "--out", str(out), "--no-compile-cache", "--jobs", "1"),
        cwd=REPO, env=venv_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    records = out / ".grading" / "results"
    deadline = time.monotonic() + 300
    while not (records.is_dir() and list(records.glob("*.json"))):
        assert first.poll() is None and time.monotonic() < deadline, "the first grading ended before a result"
        time.sleep(0.2)
    second = run_cli(str(simulated.folder), "--out", str(out), "--no-compile-cache", tiny=True)
    assert second.returncode == 1 and f"pid {first.pid}" in second.stderr, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait()
    graded_before = len(list(records.glob("*.json")))
    assert 1 <= graded_before < 4
    deadline = time.monotonic() + 10  # the worker gets SIGKILL from the kernel (PR_SET_PDEATHSIG) at once
    while left_running(first.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left_running(first.pid) == [], "the killed grading left processes behind"

    resumed = run_cli(str(simulated.folder), "--out", str(out), *common, tiny=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{graded_before} of 4 students already graded" in resumed.stderr, resumed.stderr
    assert len(graded_lines(resumed.stderr)) == 4 - graded_before, resumed.stderr
    assert_same(out, tmp_path / "reference")
    print(f"killed after {graded_before} of 4; the resumed run graded {4 - graded_before}")
    if fences.availability()[0]:  # the next run cleaned what the killed one left: mounts, groups, run folder
        assert not [
            line for line in Path("/proc/self/mountinfo").read_text().splitlines() if f"grade-{first.pid}-" in line
        ]
        assert not list(Path("/tmp").glob(f"grade-{first.pid}-*"))
        for base in fences._bases().values():
            assert not list(base.glob(f"{first.pid}-*")) if base.is_dir() else True

    again = run_cli(str(simulated.folder), "--out", str(out), *common, tiny=True)
    assert again.returncode == 0 and graded_lines(again.stderr) == [], again.stderr
    assert_same(out, tmp_path / "reference")


def unreadable_class(folder: Path, students: dict[str, bytes]) -> None:
    """Submissions that fail to parse: graded (as errors) without a kernel, in about a second each."""
    for name, data in students.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / NAME).write_bytes(data)


def grade_quick(subs: Path, out: Path, lines: list[str] | None = None, **options) -> list[dict]:
    lines = [] if lines is None else lines
    return grade.grade_class(
        ASSIGNMENT, subs, out, jobs=2, compile_cache=None, use_sandbox=False, progress=lines.append, **options
    )


def test_resume_follows_the_submissions_and_refuses_another_out(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    unreadable_class(subs, {"alice": b"not json", "bob": b"", "carol": b"[1]"})
    lines: list[str] = []
    first = grade_quick(subs, out, lines)
    assert len(graded_lines("\n".join(lines))) == 3
    lines.clear()
    assert grade_quick(subs, out, lines) == first and graded_lines("\n".join(lines)) == []
    unreadable_class(subs, {"bob": b"still not json", "dave": b"{"})  # bob changed, dave is new
    (subs / "carol" / NAME).unlink()
    (subs / "carol").rmdir()
    lines.clear()
    rows = grade_quick(subs, out, lines)
    assert sorted(re.findall(r"\] (\w+):", "\n".join(lines))) == ["bob", "dave"]
    assert [row["student_id"] for row in rows] == ["alice", "bob", "dave"]
    assert sorted(path.stem for path in (out / ".grading" / "results").glob("*.json")) == ["alice", "bob", "dave"]
    assert "carol" not in (out / "grades.csv").read_text()

    with pytest.raises(results.OutError, match="holds grades of 01_snapshot, not 02_persist"):
        grade.grade_class("02_persist", subs, out, jobs=1, compile_cache=None, use_sandbox=False)
    run = json.loads((out / ".grading" / "run.json").read_text())
    (out / ".grading" / "run.json").write_text(json.dumps({**run, "course_version": "0000"}))
    with pytest.raises(results.OutError, match="another version of the course .*--restart"):
        grade_quick(subs, out)
    lines.clear()
    assert (
        untimed(grade_quick(subs, out, lines, restart=True)) == untimed(rows)
        and len(graded_lines("\n".join(lines))) == 3
    )

    with open(out / ".grading" / "lock", "a+") as handle:  # as a running grading holds it
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.truncate(0)
        handle.write("4242")
        handle.flush()
        completed = run_cli(ASSIGNMENT, str(subs), "--out", str(out), "--no-sandbox-i-trust-this-code")
    assert completed.returncode == 1
    assert completed.stderr.strip() == (
        f"grade: {out} is being graded by another grade (pid 4242); wait for it to finish or stop it"
    )


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_stops_with_one_line_and_keeps_what_was_graded(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(out)], check=True)
    try:
        unreadable_class(subs, {"alice": b"not json"})
        grade_quick(subs, out)
        unreadable_class(subs, {f"s{index}": b"not json" for index in range(6)})
        free = os.statvfs(out).f_bavail * os.statvfs(out).f_frsize
        (out / "filler").write_bytes(b"x" * (free - 2 * 4096))  # room for run.json and one or two records
        completed = run_cli(ASSIGNMENT, str(subs), "--out", str(out), "--no-sandbox-i-trust-this-code")
        assert completed.returncode == 1
        (message,) = [line for line in completed.stderr.splitlines() if line.startswith("grade:")]
        assert "No space left on device" in message and "run grade again to resume" in message, completed.stderr
        kept = {path.stem for path in (out / ".grading" / "results").glob("*.json")}
        assert "alice" in kept and len(kept) < 7
        (out / "filler").unlink()
        lines: list[str] = []
        rows = grade_quick(subs, out, lines)
        assert len(graded_lines("\n".join(lines))) == 7 - len(kept)
        assert [row["student_id"] for row in rows] == ["alice", *(f"s{index}" for index in range(6))]
    finally:
        subprocess.run(["umount", str(out)], check=False)
