"""Several JAX processes (09): bad input refused before anything starts, a kill bounded, nothing left behind."""

import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from matplotlib.figure import Figure

from resumable import RunConfig
from resumable.checkpoints.jobs import (
    EventProcess,
    JobError,
    job_environment,
    job_server_pids,
    write_functions_module,
)
from resumable.checkpoints.processes import (
    NOTICE_LIMIT_SECONDS,
    FolderHeldError,
    PortInUseError,
    ProcessRecord,
    RunRecord,
    TopologyError,
    alive,
    free_port,
    hold_folder,
    run_processes,
)
from resumable.views.process_timeline import plot_process_timeline
from tests.proc_tools import command_lines, parent_pid

SETTINGS = {"steps": 4, "every": 2, "keep": 2, "config": RunConfig(seed=3)}


def test_a_port_in_use_is_refused_before_any_process_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use"):
            run_processes(tmp_path / "f.py", tmp_path / "run", num_processes=2, devices=1, port=port, **SETTINGS)


def test_a_held_checkpoint_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    with hold_folder(folder), pytest.raises(FolderHeldError, match="held by another running job"):
        run_processes(tmp_path / "f.py", folder, num_processes=2, devices=1, fresh=True, **SETTINGS)
    with hold_folder(folder):  # released when the holder's block ends
        pass


def test_a_topology_that_cannot_share_the_batch_is_refused(tmp_path):
    with pytest.raises(TopologyError, match="3 process\\(es\\) x 1 device\\(s\\) = 3 devices cannot share"):
        run_processes(tmp_path / "f.py", tmp_path / "run", num_processes=3, devices=1, **SETTINGS)


def test_free_ports_are_free():
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def _lone_process(tmp_path, port):
    """Process 1 of 2 whose coordinator never comes: it waits in jax.distributed.initialize (alive, idle)."""
    arguments = [
        "--process-id=1", "--num-processes=2", f"--port={port}", f"--functions={tmp_path / 'f.py'}",
        f"--directory={tmp_path / 'run'}", "--steps=2", "--every=1", "--keep=1", "--fresh",
    ]
    return EventProcess("resumable.checkpoints.process_job", arguments, stderr_path=tmp_path / "lone.log",
                        environment=job_environment())


def test_an_exception_in_the_block_kills_the_process(tmp_path):
    with pytest.raises(RuntimeError, match="the notebook failed"), _lone_process(tmp_path, free_port()) as job:
        pid = job.pid
        time.sleep(0.5)
        raise RuntimeError("the notebook failed")
    assert alive([pid]) == []


@pytest.mark.slow
def test_a_dead_kernel_takes_its_processes_with_it(tmp_path):
    """The parent (a kernel) is SIGKILLed: the process sees its stdin close and exits by itself."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(tmp_path)!r})
        from resumable.checkpoints.jobs import EventProcess, job_environment, job_server_pids
        arguments = ["--process-id=1", "--num-processes=2", "--port={free_port()}",
                     "--functions={tmp_path / 'f.py'}", "--directory={tmp_path / 'run'}", "--steps=2",
                     "--every=1", "--keep=1", "--fresh"]
        # the first runs as a plain process, the second is forked by the job server started beside it
        jobs = [EventProcess("resumable.checkpoints.process_job", arguments,
                             stderr_path=Path({str(tmp_path)!r}) / f"lone{{n}}.log", environment=job_environment())
                for n in range(2)]
        print(*[job.pid for job in jobs], *job_server_pids(), flush=True)
        time.sleep(600)
    """)
    kernel = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    children = [int(pid) for pid in kernel.stdout.readline().split()]
    assert len(children) == 3, f"expected two jobs and a job server: {children}"
    kernel.send_signal(signal.SIGKILL)
    kernel.wait()
    deadline = time.monotonic() + 30
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(children) == [], f"processes {alive(children)} of {children} outlived their killed parent"


@pytest.mark.slow
def test_a_process_that_fails_to_start_is_reported_and_nothing_is_left(tmp_path):
    functions = write_functions_module(tmp_path / "f.py")  # no resume_step, no restore_onto_mesh
    with pytest.raises(JobError, match="defines no function"):
        run_processes(functions, tmp_path / "run", num_processes=2, devices=1, **SETTINGS)
    assert _processes_mentioning(str(tmp_path)) == []


def _processes_mentioning(text):
    """Running processes whose command line contains `text` (read from /proc), and the jobs this process's
    job servers forked (their command line is their server's)."""
    mentioning = [pid for pid, command in command_lines() if text in command]
    return [pid for pid in mentioning + forked_jobs() if alive([pid])]


def forked_jobs():
    servers = set(job_server_pids())
    return [pid for pid, _ in command_lines() if parent_pid(pid) in servers]

@pytest.mark.slow
def test_a_killed_process_ends_its_peer_within_the_bound_and_nothing_is_left(tmp_path):
    functions = write_functions_module(tmp_path / "f.py")
    run = run_processes(functions, tmp_path / "run", num_processes=2, devices=1, fresh=True, kill="sigkill",
                        victim=1, at_step=2, **SETTINGS)
    victim, survivor = run.processes[1], run.processes[0]
    assert (victim.ending, victim.exit_code) == ("killed", -9)
    assert survivor.ending == "peer lost" and survivor.noticed_after <= NOTICE_LIMIT_SECONDS
    # gloo's error if the peer died mid-collective, else JAX's coordination service ending the survivor
    said = ("Gloo all-reduce failed", "Terminating process because the JAX distributed service detected fatal errors")
    assert any(text in survivor.said for text in said), survivor.said
    assert alive([victim.pid, survivor.pid]) == []


def _record(process, start, last, saves, ending, noticed=None):
    return ProcessRecord(start_step=start, losses={step: 1.0 for step in range(start + 1, last + 1)},
                         saves_started=saves, ending=ending, exit_code=0, pid=1, process=process,
                         noticed_after=noticed)


def test_the_timeline_draws_every_process_of_every_launch():
    launches = [
        ("killed", RunRecord([_record(0, 0, 8, [4, 8], "killed during save"),
                              _record(1, 0, 8, [4, 8], "peer lost", 0.5)], 2, 2)),
        ("restarted", RunRecord([_record(0, 4, 12, [8, 12], "done")], 1, 2)),
    ]
    figure = plot_process_timeline(launches, steps=12, uncommitted=[8])
    assert isinstance(figure, Figure)
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels == ["restarted: p0 of 1x2", "killed: p1 of 2x2", "killed: p0 of 2x2"]
