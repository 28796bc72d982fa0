"""Fences on a student's whole sandbox: a memory hog of many processes, a disk filler of many small files
and a fork bomb, each one student of a small class. Each gets an error row naming its limit, the honest
student is graded, and the grading's peak memory (its own process tree, measured by a memory cgroup this
test puts it in) stays under jobs x --memory-mb, though the hog alone asks for more than that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import fences, grade, sandbox, student
from grader.paths import REPO
from grader.release import venv_environment
from tests.grader_fixtures.simulated_class import SimulatedClass, dump, released, solutions, with_cell
from tests.test_grader_class import sandbox_processes

ASSIGNMENT = "01_snapshot"
JOBS, MEMORY_MB, DISK_MB = 2, 1024, 64
HOG_PROCESSES, HOG_MB = 6, 400  # 2400 MB in all: more than JOBS x MEMORY_MB, each under the address-space cap

MEMORY_HOG = f"""
import os, time
children = []
for _ in range({HOG_PROCESSES}):
    pid = os.fork()
    if pid == 0:
        held = b"x" * ({HOG_MB} * 1024**2)
        time.sleep(4)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("hog done")
"""
DISK_FILLER = """
import os
written = 0
try:
    while True:
        with open(f"filler-{written:05d}.bin", "wb") as handle:
            handle.write(os.urandom(1024**2))
        written += 1
except OSError as error:
    print("disk filler stopped after", written, "files:", error.strerror)
"""
FORK_BOMB = """
import os
children = 0
try:
    while True:
        if os.fork() == 0:  # each child becomes a small sleep: the process limit, not memory, is what it reaches
            os.execv("/usr/bin/sleep", ["sleep", "3"])
        children += 1
except OSError as error:
    print("fork bomb stopped after", children, "children:", error.strerror)
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.availability()[0], reason="no sandbox: " + sandbox.availability()[1]),
    pytest.mark.skipif(not fences.availability()[0], reason="no fences: " + fences.availability()[1]),
]


def measured_group(name: str) -> Path:
    """A memory cgroup of this test's own, under the test process's group (v1 or v2)."""
    bases = fences._bases()
    parent = bases["memory"].parent if "memory" in bases else bases["unified"].parent
    group = parent / name
    group.mkdir()
    return group


def peak_bytes(group: Path) -> int:
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        if (group / name).exists():
            return int((group / name).read_text())
    raise AssertionError(f"no peak memory file in {group}")


def test_hog_filler_and_fork_bomb_each_get_their_limit(tmp_path):
    stubs, full = released(ASSIGNMENT, tmp_path), solutions(ASSIGNMENT)
    simulated = SimulatedClass(ASSIGNMENT, tmp_path / "submissions")
    simulated.add("honest", dump(full), None)
    simulated.add("memory-hog", dump(with_cell(stubs, MEMORY_HOG)), None)
    simulated.add("disk-filler", dump(with_cell(stubs, DISK_FILLER)), None)
    simulated.add("fork-bomb", dump(with_cell(stubs, FORK_BOMB)), None)
    out = tmp_path / "out"
    group = measured_group(f"test-fences-{os.getpid()}")
    command = [sys.executable, "-m", "grader", "grade", ASSIGNMENT, str(simulated.folder), "--out", str(out),
               "--jobs", str(JOBS), "--memory-mb", str(MEMORY_MB), "--disk-mb", str(DISK_MB), "--no-compile-cache",
               "--cell-timeout", "60"]  # fmt: skip
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"), *command],
            cwd=REPO, env=venv_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        log, _ = process.communicate(timeout=600)
        peak = peak_bytes(group)
    finally:
        nested = sorted((path for path in group.rglob("*") if path.is_dir()), key=lambda path: -len(path.parts))
        fences._kill_groups([group, *nested])
        fences._remove_groups([*nested, group])  # the grader's resumable-grade folder inside it, then it
        assert not group.exists()
    assert process.returncode == 0, log
    assert sandbox_processes(student.uid_base(process.pid)) == [], "sandbox processes outlived grading"
    rows = {row["student_id"]: row for row in json.loads((out / "grades.json").read_text())}
    assert rows["honest"]["status"] == "graded" and rows["honest"]["score"] == rows["honest"]["max_score"] > 0
    expected = {
        "memory-hog": f"memory limit (--memory-mb {MEMORY_MB}",
        "disk-filler": f"disk limit (--disk-mb {DISK_MB})",
        "fork-bomb": "process limit",
    }
    for name, limit in expected.items():
        print(f"{name}: {rows[name]['message'][:200]}")
        assert rows[name]["status"] == "error" and rows[name]["score"] == 0, rows[name]
        assert limit in rows[name]["message"], rows[name]["message"]
    assert peak < JOBS * MEMORY_MB * 1024**2, f"grading peaked at {peak / 1024**2:.0f} MB"
    assert HOG_PROCESSES * HOG_MB > JOBS * MEMORY_MB  # the hog alone asked for more than the bound
    print(f"grading's peak memory: {peak / 1024**2:.0f} MB; bound {JOBS} x {MEMORY_MB} MB")
    # this grading's own mounts only: a grading in another test on the other xdist worker may be running now
    mine = f"/grade-{process.pid}-"
    leftovers = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if mine in line]
    assert leftovers == [], "scratch mounts left"


def test_no_usable_cgroup_is_refused_unless_told(tmp_path, monkeypatch):
    monkeypatch.setattr(fences, "availability", lambda: (False, "no cgroup here"))
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    (tmp_path / "subs" / "alice" / "01_snapshot.ipynb").write_bytes(b"not json")
    with pytest.raises(grade.GradingError, match="no cgroup here.*--no-fences"):
        grade.grade_class(ASSIGNMENT, tmp_path / "subs", tmp_path / "out", jobs=1, compile_cache=None)
    rows = grade.grade_class(
        ASSIGNMENT, tmp_path / "subs", tmp_path / "out", jobs=1, compile_cache=None, use_fences=False
    )  # fmt: skip
    assert [(row["student_id"], row["status"]) for row in rows] == [("alice", "error")]


def test_cgroup_v2_files_written_and_read(tmp_path, monkeypatch):
    """The unified (v2) hierarchy, on a folder laid out like one (these machines have v1 only): controllers
    enabled from the grader's group down, the limits written to memory.max/swap/pids.max/cpu.max, and the
    kernel's event counters turned into the verdict's words."""
    root = tmp_path / "cgroup"
    own = root / "grading.slice"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / fences.GROUP).mkdir()  # the kernel fills a new group's cgroup.controllers; a plain folder does not
    (own / fences.GROUP / "cgroup.controllers").write_text("memory pids\n")
    monkeypatch.setattr(fences, "CGROUP_ROOT", root)
    monkeypatch.setattr(fences, "_own_group", lambda controller: "grading.slice")
    bases = fences._make_bases()
    assert list(bases) == ["unified"] and bases["unified"] == own / fences.GROUP
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (own / fences.GROUP / "cgroup.subtree_control").read_text() == "+memory +pids"
    group = bases["unified"] / "student-1"
    group.mkdir()
    (group / "memory.swap.max").write_text("max")
    (group / "cpu.max").write_text("max 100000")
    limits = fences.FenceLimits(memory_mb=300, processes=64, cpus=1.5)
    fence = fences.Fence({"unified": group}, tmp_path / "scratch", limits)
    fence._set_limits()
    assert (group / "memory.max").read_text() == str(300 * 1024**2)
    assert (group / "memory.swap.max").read_text() == "0"
    assert (group / "pids.max").read_text() == "64"
    assert (group / "cpu.max").read_text() == f"{int(1.5 * fences.PERIOD_US)} {fences.PERIOD_US}"
    assert fence.procs_files() == [str(group / "cgroup.procs")]
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 2\n")
    (group / "pids.events").write_text("max 3\n")
    (tmp_path / "scratch").mkdir()
    said = " | ".join(fence.verdict())
    assert "memory limit (--memory-mb 300" in said and "killed 2 of its processes" in said, said
    assert "process limit (64 processes" in said, said
