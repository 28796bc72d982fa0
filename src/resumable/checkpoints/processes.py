"""Several JAX processes on this machine: start N `process_job`s on a free loopback port, follow them, kill one.

Built on `jobs.EventProcess`, the course's one launcher: every process is in a process group of its own, watches
its stdin for this kernel's death, and is killed and reaped when the block that started it ends (a cell that
fails, a re-run, an interrupted kernel, the kernel's exit). A survivor whose peer died is waited for at most
`notice_limit` seconds, then killed; what it reported (or its last line of stderr) is kept.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from resumable.checkpoints.jobs import DEFAULT_CONFIG, EventProcess, JobError, JobRecord, job_environment
from resumable.training import RunConfig

ProcessKill = Literal["none", "sigkill", "sigkill_during_save", "sigterm"]
PROCESS_KILLS: tuple[ProcessKill, ...] = ("none", "sigkill", "sigkill_during_save", "sigterm")
NOTICE_LIMIT_SECONDS = 20.0
HEARTBEAT_SECONDS = 5
PREEMPTION_PAUSE_SECONDS = 1.0  # the victim waits this long after SIGTERM, so the agreed step is the next


class PortInUseError(JobError):
    """The coordinator's port is taken by another program."""


class FolderHeldError(JobError):
    """Another running job holds the checkpoint folder."""


class TopologyError(ValueError):
    """The run cannot go on with this number of processes and devices."""


@dataclass
class ProcessRecord(JobRecord):
    """One process of a multi-process run: a JobRecord plus its index and, if a peer died, how it learnt."""

    process: int = 0
    noticed_after: float | None = None  # seconds from the peer's death to this process's exit
    said: str = ""  # what JAX said (the process's report, or its fatal line on stderr)
    restored_digest: str | None = None  # `state_digest` of what it restored, if it resumed
    peak_mb: float | None = None  # its peak resident memory, reported when it ended cleanly


@dataclass
class RunRecord:
    """All processes of one run, in process order, and the topology they ran on."""

    processes: list[ProcessRecord]
    num_processes: int
    devices: int

    @property
    def start_step(self) -> int:
        return self.processes[0].start_step

    @property
    def losses(self) -> dict[int, float]:
        """Process 0's losses (every process reports the same loss: it is computed over the global batch)."""
        return self.processes[0].losses


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_port(port: int) -> None:
    """PortInUseError if `port` on 127.0.0.1 cannot be bound (another program holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                f"port {port} on 127.0.0.1 is in use: the coordinator of process 0 cannot listen there; "
                "pass port=None to let the system pick a free one"
            ) from None


@contextlib.contextmanager
def hold_folder(directory: Path) -> Iterator[None]:
    """Hold `directory` for one job (an flock on `<directory>.lock`); FolderHeldError if another job holds it."""
    lock_path = directory.parent / f"{directory.name}.lock"
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise FolderHeldError(
                f"{directory} is held by another running job ({lock.read().strip() or 'unknown'}): two jobs "
                "writing one checkpoint folder would overwrite each other's steps; wait for it, or use another folder"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"launcher pid {__import__('os').getpid()}")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_topology(num_processes: int, devices: int, config: RunConfig) -> None:
    """TopologyError unless every one of the num_processes * devices devices gets equal rows of every batch."""
    total = num_processes * devices
    if num_processes < 1 or devices < 1 or config.batch_size % total != 0:
        raise TopologyError(
            f"{num_processes} process(es) x {devices} device(s) = {total} devices cannot share batches of "
            f"{config.batch_size} rows equally: this run (and its checkpoint) cannot go on with that topology; "
            f"use a number of devices that divides {config.batch_size}"
        )


def run_processes(
    functions: Path | str,
    directory: Path | str,
    *,
    num_processes: int,
    devices: int,
    steps: int,
    every: int,
    keep: int,
    config: RunConfig = DEFAULT_CONFIG,
    kill: ProcessKill = "none",
    victim: int = 1,
    at_step: int | None = None,
    fresh: bool = False,
    port: int | None = None,
    timeout: float = 120.0,
    notice_limit: float = NOTICE_LIMIT_SECONDS,
) -> RunRecord:
    """Run `num_processes` data-parallel processes of `devices` host devices each to their end, or end process
    `victim` at `at_step` the way `kill` says.

    `kill`: "none"; "sigkill" (SIGKILL at the end of step `at_step`, its checkpoint committed if one was due);
    "sigkill_during_save" (SIGKILL while step `at_step`'s checkpoint is written); "sigterm" (SIGTERM at the end of
    step `at_step`: JAX's preemption service tells every process, all save one agreed step and exit 0).
    After a SIGKILL each survivor is waited for at most `notice_limit` seconds, then killed.
    `fresh=True`: start at step 0 (a reference run). `port`: the coordinator's port (None: a free one).
    Output: a RunRecord. Errors (nothing left running): PortInUseError, FolderHeldError, TopologyError, JobError.
    """
    if kill not in PROCESS_KILLS:
        raise ValueError(f"kill must be one of {PROCESS_KILLS}, got {kill!r}")
    if kill != "none" and (at_step is None or not 0 <= victim < num_processes):
        raise ValueError(f"kill={kill!r} needs at_step and a victim in 0..{num_processes - 1}")
    check_topology(num_processes, devices, config)
    if port is None:
        port = free_port()
    else:
        check_port(port)
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    with hold_folder(directory), contextlib.ExitStack() as stack:
        jobs = []
        for process in range(num_processes):
            arguments = [
                f"--process-id={process}",
                f"--num-processes={num_processes}",
                f"--port={port}",
                f"--functions={Path(functions).resolve()}",
                f"--directory={directory}",
                f"--steps={steps}",
                f"--every={every}",
                f"--keep={keep}",
                f"--config={json.dumps(asdict(config))}",
                f"--heartbeat={HEARTBEAT_SECONDS}",
            ]
            if process == victim and kill in ("sigkill", "sigterm"):
                arguments.append(f"--pause-after={at_step}")
            if process == victim and kill == "sigterm":
                arguments.append(f"--pause-seconds={PREEMPTION_PAUSE_SECONDS}")
            if process == victim and kill == "sigkill_during_save":
                arguments.append(f"--pause-in-save={at_step}")
            if fresh:
                arguments.append("--fresh")
            environment = {**job_environment(), "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
            log = directory.parent / f"{directory.name}-process{process}-{time.time_ns()}.log"
            jobs.append(stack.enter_context(EventProcess(
                "resumable.checkpoints.process_job", arguments, stderr_path=log, environment=environment
            )))
        killed_at = None
        if kill != "none":
            pause = "save_paused" if kill == "sigkill_during_save" else "paused"
            _wait_or_fail(jobs, victim, pause, timeout)
            jobs[victim].send(signal.SIGTERM if kill == "sigterm" else signal.SIGKILL)
            killed_at = time.monotonic()
        limit = notice_limit if killed_at is not None and kill != "sigterm" else timeout
        _wait_all(jobs, time.monotonic() + limit, stop_on_failure=kill == "none")
        stopped = [job for job in jobs if job.process.poll() is None]
        for job in stopped:  # hung on a dead peer (bounded here), or its peer failed
            job.send(signal.SIGKILL)
        for job in jobs:
            job.finish(10.0)  # collect what it reported
        for process, job in enumerate(jobs):
            failed_alone = job not in stopped and job.process.returncode not in (0, -signal.SIGKILL)
            if failed_alone and (kill == "none" or not any(event["event"] == "start" for event in job.events)):
                raise JobError(f"process {process} (pid {job.pid}) failed with status {job.process.returncode}"
                               f"{job._stderr_tail(4)}")
        records = [
            _process_record(job, process, job.process.returncode, kill, victim, killed_at)
            for process, job in enumerate(jobs)
        ]
        for record in records:
            if kill == "none" and record.ending != "done":
                raise JobError(f"process {record.process} (pid {record.pid}) exited with status "
                               f"{record.exit_code} before it was done: {record.said}")
        return RunRecord(records, num_processes, devices)


def _wait_all(jobs: list[EventProcess], deadline: float, *, stop_on_failure: bool) -> None:
    """Wait until every process has exited or the deadline passes; with `stop_on_failure`, stop waiting as soon
    as one process failed (its peers would wait for it until their own timeouts)."""
    while time.monotonic() < deadline:
        codes = [job.process.poll() for job in jobs]
        if all(code is not None for code in codes):
            return
        if stop_on_failure and any(code not in (None, 0) for code in codes):
            return
        time.sleep(0.05)


def _wait_or_fail(jobs: list[EventProcess], victim: int, event: str, timeout: float) -> None:
    """Wait for `event` from the victim; if any process fails first, say which and why (JobError)."""
    try:
        jobs[victim].wait_for(event, timeout)
    except JobError as error:
        failed = [job for job in jobs if job.process.poll() not in (None, 0)]
        raise JobError(f"{error}" + "".join(job._stderr_tail(3) for job in failed if job is not jobs[victim])) from None


def _process_record(
    job: EventProcess, process: int, exit_code: int, kill: ProcessKill, victim: int, killed_at: float | None
) -> ProcessRecord:
    events = job.events
    starts = [event["step"] for event in events if event["event"] == "start"]
    if not starts:
        raise JobError(f"process {process} (pid {job.pid}) exited with status {exit_code} before it started"
                       f"{job._stderr_tail()}")
    failure = next((event for event in events if event["event"] in ("collective_failed", "failed")), None)
    preempted = next((event for event in events if event["event"] == "preempted"), None)
    if process == victim and kill in ("sigkill", "sigkill_during_save"):
        ending = "killed" if kill == "sigkill" else "killed during save"
    elif preempted is not None:
        ending = "preempted"
    elif any(event["event"] == "done" for event in events):
        ending = "done"
    else:
        ending = "peer lost"
    said = failure["error"] if failure is not None else ""
    if ending == "peer lost" and not said:
        said = _jax_said(job.stderr_path) or f"exit status {exit_code}"
    noticed = None
    if ending == "peer lost" and killed_at is not None:
        noticed = round((job.ended_at or time.monotonic()) - killed_at, 2)
    return ProcessRecord(
        start_step=int(starts[0]),
        losses={int(event["step"]): float(event["loss"]) for event in events if event["event"] == "step"},
        saves_started=[int(event["step"]) for event in events if event["event"] == "save_started"],
        ending=ending,
        exit_code=exit_code,
        pid=job.pid,
        message=preempted.get("message", "") if preempted else "",
        events=events,
        process=process,
        noticed_after=noticed,
        said=said,
        restored_digest=next((event["digest"] for event in events if event["event"] == "restored"), None),
        peak_mb=next((event["peak_mb"] for event in events if "peak_mb" in event), None),
    )


def _jax_said(stderr_path: Path) -> str:
    """JAX's fatal line in a process's stderr (glog prefix removed) and the line after it, or ''."""
    try:
        lines = stderr_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for number, line in enumerate(lines):
        if "Terminating process because" in line:
            following = lines[number + 1].strip() if number + 1 < len(lines) else ""
            return f"{line.split('] ', 1)[-1].strip()} {following}".strip()
    return ""


def state_digest(trees: dict[str, Any]) -> str:
    """SHA-256 of every leaf's path, dtype, shape and bytes (typed keys as their key data): equal digests mean
    every leaf is bitwise equal. A leaf may span several processes: it is replicated, its first local shard is it.
    """
    import jax
    import numpy as np
    from flax import nnx

    digest = hashlib.sha256()
    for path, leaf in sorted(nnx.traversals.flatten_mapping(trees).items(), key=lambda item: str(item[0])):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            leaf = leaf.addressable_shards[0].data
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        host = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{'/'.join(map(str, path))} {host.dtype} {host.shape}".encode())
        digest.update(host.tobytes())
    return digest.hexdigest()


def written_by_process(step_folder: Path | str) -> dict[str, dict[int, int]]:
    """For each item of a checkpoint folder (committed or not): bytes each process wrote (`ocdbt.process_<i>`)."""
    written: dict[str, dict[int, int]] = {}
    for item in sorted(path for path in Path(step_folder).iterdir() if path.is_dir()):
        for part in sorted(item.glob("ocdbt.process_*")):
            size = sum(file.stat().st_size for file in part.rglob("*") if file.is_file())
            written.setdefault(item.name, {})[int(part.name.rsplit("_", 1)[1])] = size
    return written


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` that are still running (not zombies), read from /proc."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.append(pid)
    return running
