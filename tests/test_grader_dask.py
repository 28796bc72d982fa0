"""Grading on Dask: a scheduler and two workers started here on 127.0.0.1 grade a small class with the same
grades as the local pool, again with one worker killed part-way (its student runs again on the other,
counted once); nothing is left running. Bad input: a scheduler that does not answer, a worker without
bubblewrap, each one line and exit 1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.grading import LocalDaskCluster
from grader import fences, sandbox
from grader.paths import REPO
from grader.release import venv_environment
from tests.test_grader_resume import ASSIGNMENT, assert_same, graded_lines, left_running, run_cli, small_class, tiny_cli

pytestmark = pytest.mark.slow
FENCE_FLAGS = [] if fences.availability()[0] else ["--no-fences"]


@pytest.fixture
def cluster(tmp_path):
    started = LocalDaskCluster(tmp_path / "cluster")
    try:
        yield started
    finally:
        started.stop()
        assert [process.pid for process in started.processes if process.poll() is None] == []
        for process in started.processes[1:]:
            assert left_running(process.pid) == [], "a worker's grading outlived it"


@pytest.mark.skipif(not sandbox.availability()[0], reason="no sandbox: " + sandbox.availability()[1])
def test_dask_grades_like_the_local_pool_even_when_a_worker_is_lost(tmp_path, cluster):
    from distributed import Client

    simulated = small_class(tmp_path, size=3)
    subs = str(simulated.folder)
    local = run_cli(
        subs, "--out", str(tmp_path / "local"), "--jobs", "2", "--no-compile-cache", *FENCE_FLAGS, tiny=True
    )
    assert local.returncode == 0, local.stderr
    workers = cluster.add_workers(2)

    started = time.monotonic()
    on_dask = run_cli(subs, "--out", str(tmp_path / "dask"), "--dask", str(cluster.file),
                      "--no-compile-cache", *FENCE_FLAGS, tiny=True)  # fmt: skip
    seconds = time.monotonic() - started
    assert on_dask.returncode == 0, on_dask.stderr
    assert len(graded_lines(on_dask.stderr)) == 3
    assert_same(tmp_path / "dask", tmp_path / "local")

    out = tmp_path / "dask-lost-worker"
    grading = subprocess.Popen(
        tiny_cli(subs, "--out", str(out), "--dask", cluster.address, "--no-compile-cache", *FENCE_FLAGS),
        cwd=REPO, env=venv_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    records = out / ".grading" / "results"
    killed = None
    with Client(cluster.address, timeout=30) as client:
        deadline = time.monotonic() + 300
        while killed is None:
            assert grading.poll() is None and time.monotonic() < deadline, "grading ended before a worker was lost"
            busy = [
                address for address, keys in client.processing().items() if any("grade-" in str(key) for key in keys)
            ]
            if records.is_dir() and list(records.glob("*.json")) and busy:
                killed = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(killed, signal.SIGKILL)  # a student in flight on it
            time.sleep(0.2)
    _, log = grading.communicate(timeout=600)
    assert grading.returncode == 0, log
    assert killed in [worker.pid for worker in workers]
    assert len(graded_lines(log)) == 3, log  # the lost student once, from the other worker
    assert_same(out, tmp_path / "local")
    deadline = time.monotonic() + 10
    while left_running(killed) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left_running(killed) == [], "the lost worker's grading outlived it"
    print(f"3 students on 2 Dask workers: {seconds:.1f} s")


def test_bad_clusters_are_one_line_and_exit_1(tmp_path, cluster):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    (tmp_path / "subs" / "alice" / f"{ASSIGNMENT}.ipynb").write_bytes(b"not json")
    args = [ASSIGNMENT, str(tmp_path / "subs"), "--out", str(tmp_path / "out")]
    nobody = run_cli(*args, "--dask", f"tcp://127.0.0.1:{port}")
    assert nobody.returncode == 1
    assert nobody.stderr.startswith(f"grade: no Dask scheduler answers at tcp://127.0.0.1:{port} (")
    assert len(nobody.stderr.strip().splitlines()) == 1, nobody.stderr

    no_bwrap = {**venv_environment(), "PATH": str(Path(sys.executable).parent)}
    cluster.add_workers(1, env=no_bwrap)
    completed = run_cli(*args, "--dask", str(cluster.file))
    assert completed.returncode == 1
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith("grade: Dask worker tcp://127.0.0.1:") and "cannot grade" in line and "bubblewrap" in line
    assert not (tmp_path / "out" / "grades.csv").exists()
