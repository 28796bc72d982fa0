"""Start, follow, kill and resume training jobs that run in their own processes (`training_job`)."""

from __future__ import annotations

import ast
import atexit
import builtins
import dis
import inspect
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Self

import jax

from resumable.checkpoints.job_server import MAX_MESSAGE
from resumable.training import RunConfig

FUNCTIONS_HEADER = '''"""Written by resumable.checkpoints.jobs.write_functions_module for a training job to import."""

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx
'''

Kill = Literal["none", "sigkill", "sigkill_during_save", "sigterm"]
KILLS: tuple[Kill, ...] = ("none", "sigkill", "sigkill_during_save", "sigterm")

DEFAULT_CONFIG = RunConfig()
_live_jobs: set[EventProcess] = set()
_compilation_cache: Path | None = None


class JobError(RuntimeError):
    """A training job did not do what it was expected to (it failed, or it timed out)."""


class FunctionsModuleError(ValueError):
    """A function cannot run in a training process as it is written; the message says which and why."""


HEADER_NAMES = frozenset({"jax", "np", "ocp", "nnx"})  # what FUNCTIONS_HEADER imports


def write_functions_module(path: Path | str, *functions: Callable[..., Any]) -> Path:
    """Write the source of `functions` (e.g. `save_checkpoint`, `resume_or_start`) into a module file.

    Inputs: the file to write and the functions, which may use only `jax`, `np`, `ocp` and `nnx` besides
    their arguments and each other (the module's header imports those four). Output: the path, for
    `TrainingJob(functions=...)`. A function that could not run in a training process is refused here, before
    any process starts, with a `FunctionsModuleError` that names it: an exercise's placeholder (its body only
    `raise NotImplementedError()`), or a function that reads a global name the file will not have (a name of
    the notebook, or one defined nowhere).
    """
    written = {getattr(function, "__name__", "") for function in functions}
    sources = [_runnable_source(function, written) for function in functions]
    path = Path(path)
    path.write_text(FUNCTIONS_HEADER + "\n\n" + "\n\n".join(sources))
    return path


def _runnable_source(function: Callable[..., Any], written: set[str]) -> str:
    """The dedented source of `function`, after the checks `write_functions_module` promises."""
    if not isinstance(function, types.FunctionType):
        raise FunctionsModuleError(
            f"{function!r} is not a function defined with `def`: a training process imports only the source "
            "of functions"
        )
    name = function.__name__
    source = textwrap.dedent(inspect.getsource(function))
    if _is_placeholder(source):
        raise FunctionsModuleError(
            f"{name} is still the exercise's placeholder (raise NotImplementedError()): write your answer in "
            "its cell and run that cell, then run this one again"
        )
    missing = sorted(_global_names(function.__code__) - HEADER_NAMES - written - set(dir(builtins)))
    if missing:
        used = missing[0]
        what = "a name of this notebook" if used in function.__globals__ else "a name defined nowhere (a typo?)"
        raise FunctionsModuleError(
            f"{name} uses {used!r}, {what}: the training processes import it from a file that holds only "
            "jax, np, ocp and nnx (and the functions written with it); use its arguments"
        )
    return source


def _is_placeholder(source: str) -> bool:
    """Whether a function's body (after its docstring) is only `raise NotImplementedError` (nbgrader's stub)."""
    definition = ast.parse(source).body[0]
    body = getattr(definition, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    raised = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"


def _global_names(code: types.CodeType) -> set[str]:
    """The global names a function's code reads, its nested functions' and lambdas' included."""
    names = {instruction.argval for instruction in dis.get_instructions(code) if instruction.opname == "LOAD_GLOBAL"}
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def compilation_cache() -> Path:
    """The JAX compilation cache folder of the jobs this process starts.

    A restarted job compiles its train step again; with a persistent compilation cache it loads the
    compiled step instead. The cached program is the same program, so results do not change. This kernel's
    own persistent cache when it has one (`RESUMABLE_JAX_CACHE`: `make lab`, `make test`), so that jobs
    started by other kernels share it too; otherwise one temporary folder for all the jobs this process
    starts, removed when it exits.
    """
    global _compilation_cache
    if _compilation_cache is None:
        if jax.config.jax_compilation_cache_dir:
            _compilation_cache = Path(jax.config.jax_compilation_cache_dir)
        else:
            _compilation_cache = Path(tempfile.mkdtemp(prefix="resumable-jax-cache-"))
            atexit.register(shutil.rmtree, _compilation_cache, ignore_errors=True)
    return _compilation_cache


def start_process(module: str, arguments: list[str], environment: dict[str, str], stderr: IO[bytes]) -> Any:
    """`python -m module arguments...` with a stdin and a stdout pipe (text), `stderr` and a session of its own.

    The first job of a module and environment runs as a plain `subprocess.Popen` while a job server for them
    starts beside it (`resumable.checkpoints.job_server`: the libraries imported once); the server forks the
    next ones, so that they skip the imports. Plain processes only where no server can run (not Linux,
    `RESUMABLE_JOB_SERVER=0`, or a server that failed to start). Output: an object with the `Popen` calls
    the launcher uses (`pid`, `stdin`, `stdout`, `poll`, `wait`, `send_signal`, `returncode`).
    """
    if _job_servers_allowed(environment):
        key = (module, tuple(sorted(environment.items())))
        slot = _job_servers.get(key)
        if slot is None:
            _close_idle_servers(len(_job_servers) + 1 - MAX_JOB_SERVERS)
            _job_servers[key] = _ServerSlot(module, environment)
        elif slot.ready.wait(_JobServer.START_TIMEOUT) and slot.server is not None:
            process = slot.server.fork(arguments, stderr)
            if process is not None:
                return process
            del _job_servers[key]  # it died: the next job starts another
    return subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=environment,
        text=True,
        start_new_session=True,
    )


class _ServerSlot:
    """A job server being started in the background; `server` is None once `ready` if it could not start."""

    def __init__(self, module: str, environment: dict[str, str]) -> None:
        self.ready = threading.Event()
        self.server: _JobServer | None = None
        threading.Thread(target=self._start, args=(module, environment), daemon=True).start()

    def _start(self, module: str, environment: dict[str, str]) -> None:
        try:
            self.server = _JobServer.start(module, environment)
        finally:
            self.ready.set()


def _close_idle_servers(count: int) -> None:
    """Close up to `count` of the oldest servers that have no job running (each holds the libraries in memory)."""
    for key, slot in list(_job_servers.items()):
        if count <= 0:
            return
        if slot.ready.is_set() and (slot.server is None or not slot.server.children):
            del _job_servers[key]
            if slot.server is not None:
                slot.server.close()
            count -= 1


def job_server_pids() -> list[int]:
    """The process ids of this kernel's job servers; a job one of them forked has it as its parent."""
    return sorted(server.process.pid for server in _live_servers)


def _job_servers_allowed(environment: dict[str, str]) -> bool:
    setting = environment.get("RESUMABLE_JOB_SERVER", "1").lower()
    return sys.platform == "linux" and hasattr(socket, "send_fds") and setting not in ("0", "off", "no", "false")


class _JobServer:
    """This kernel's end of one `resumable.checkpoints.job_server` process (the protocol is described there)."""

    def __init__(self, process: subprocess.Popen[bytes], connection: socket.socket) -> None:
        self.process = process
        self.connection = connection
        self.children: dict[int, ForkedProcess] = {}
        self.early_exits: dict[int, int] = {}  # statuses that arrived before their job was registered
        self.children_lock = threading.Lock()
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.lock = threading.Lock()  # one request at a time, so that each reply is the answer to it

    START_TIMEOUT = 120.0

    @classmethod
    def start(cls, module: str, environment: dict[str, str]) -> _JobServer | None:
        """A server that has imported `module`'s libraries, or None if it could not be started."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "resumable.checkpoints.job_server", module, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # if it fails, the jobs run as plain processes and show why
                env=environment,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
            )
        server = cls(process, ours)
        threading.Thread(target=server._read, daemon=True).start()
        try:
            ready = server.replies.get(timeout=cls.START_TIMEOUT)
        except queue.Empty:
            ready = None
        if not ready or not ready.get("ready"):
            server.close()
            return None
        _live_servers.add(server)
        return server

    def _read(self) -> None:
        while True:
            try:
                data = self.connection.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            if "exited" in message:
                with self.children_lock:
                    child = self.children.pop(message["exited"], None)
                    if child is None:
                        self.early_exits[message["exited"]] = message["status"]
                if child is not None:
                    child._exited(message["status"])
            else:
                self.replies.put(message)
        self.replies.put(None)
        with self.children_lock:
            lost, self.children = list(self.children.values()), {}
        for child in lost:  # the server is gone: so is the way to learn how they end
            child._lost()

    def fork(self, arguments: list[str], stderr: IO[bytes], timeout: float = 60.0) -> ForkedProcess | None:
        """A job forked by the server (None if the server is gone)."""
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        request = json.dumps({"argv": arguments, "cwd": os.getcwd()}).encode()
        try:
            with self.lock:
                socket.send_fds(self.connection, [request], [stdin_read, stdout_write, stderr.fileno()])
                reply = self.replies.get(timeout=timeout)
                if reply is not None and "pid" in reply:
                    child = ForkedProcess(reply["pid"], stdin_write, stdout_read)
                    with self.children_lock:
                        status = self.early_exits.pop(child.pid, None)
                        if status is None:
                            self.children[child.pid] = child
                    if status is not None:
                        child._exited(status)
                    stdin_write = stdout_read = -1  # the child owns them now
        except (OSError, queue.Empty):
            reply = None
        finally:
            for fd in (stdin_read, stdout_write, stdin_write, stdout_read):
                if fd >= 0:
                    os.close(fd)
        if reply is None or "pid" not in reply:
            self.close()
            return None
        return child

    def close(self) -> None:
        """Close this end: the server exits. A job of it still running is killed (its end could no longer be
        reported), so close a server only when its jobs have ended."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)  # a close alone would not wake the reading thread's recv
        except OSError:
            pass
        self.connection.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _live_servers.discard(self)


class ForkedProcess:
    """A job forked by a `_JobServer`: the `subprocess.Popen` calls that `EventProcess` makes."""

    def __init__(self, pid: int, stdin: int, stdout: int) -> None:
        self.pid = pid
        self.stdin: IO[str] | None = os.fdopen(stdin, "w")
        self.stdout: IO[str] | None = os.fdopen(stdout, "r")
        self.returncode: int | None = None
        self._done = threading.Event()

    def _exited(self, status: int) -> None:
        self.returncode = status
        self._done.set()

    def _lost(self) -> None:
        """Its server died, and with it the report of this job's exit: kill it, so that it ends now."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._exited(-signal.SIGKILL)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"job {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signal_number: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal_number)


MAX_JOB_SERVERS = 3  # per kernel, each with the libraries in memory: one per job module and environment
_job_servers: dict[tuple[str, tuple[tuple[str, str], ...]], _ServerSlot] = {}
_live_servers: set[_JobServer] = set()


class EventProcess:
    """A Python module run as a process of its own that reports JSON-line events on stdout.

    The one launcher of the course: `TrainingJob` (06) and `resumable.checkpoints.processes` (several JAX
    processes) build on it. The process runs with this kernel's Python (`sys.executable`) in a process group of
    its own (`stop` kills the group, so nothing it started outlives it), its stdin a pipe that the process
    watches (`--watch-stdin`: when this kernel dies, the pipe closes and the process exits). Use it as a
    context manager: on leaving the block (also when a cell fails) a process still alive is killed and reaped.
    Events arrive as dicts in `events`; stderr goes to `stderr_path`.
    """

    def __init__(self, module: str, arguments: list[str], *, stderr_path: Path, environment: dict[str, str]) -> None:
        self.stderr_path = stderr_path
        self.events: list[dict[str, Any]] = []
        self.ended_at: float | None = None
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with open(self.stderr_path, "wb") as stderr:
            self.process = start_process(module, [*arguments, "--watch-stdin"], {**os.environ, **environment}, stderr)
        _live_jobs.add(self)
        threading.Thread(target=self._read_events, daemon=True).start()

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                item = None
            if not isinstance(item, dict) or "event" not in item:  # a library's print, not an event
                item = {"event": "output", "text": line.rstrip()}
            self._queue.put(item)
        self.ended_at = time.monotonic()  # when its stdout closed: it exited (or closed stdout to exit)
        self._queue.put(None)  # end of stream: the process exited

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for(self, event: str, timeout: float = 240.0) -> dict[str, Any]:
        """Collect events until one named `event` arrives; return it. JobError if the job ends or times out."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                raise JobError(
                    f"no '{event}' from job {self.pid} within {timeout:.0f} s{self._stderr_tail()}"
                ) from None
            if item is None:
                self._queue.put(None)
                code = self.process.wait()
                raise JobError(f"job {self.pid} exited with status {code} before '{event}'{self._stderr_tail()}")
            self.events.append(item)
            if item["event"] == event:
                return item

    def finish(self, timeout: float = 240.0) -> int:
        """Collect the remaining events and wait for the process to exit; return its exit status."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise JobError(f"job {self.pid} did not exit within {timeout:.0f} s{self._stderr_tail()}") from None
            if item is None:
                self._queue.put(None)
                break
            self.events.append(item)
        return self.process.wait(timeout=max(deadline - time.monotonic(), 1.0))

    def send(self, signal_number: int) -> None:
        """Send a signal (SIGKILL: a crash, SIGTERM: a preemption notice) to the job."""
        self.process.send_signal(signal_number)

    def stop(self) -> None:
        """Kill the process (and its process group) if it is still alive, reap it and close its pipes."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        _live_jobs.discard(self)

    def _stderr_tail(self, lines: int = 15) -> str:
        try:
            tail = self.stderr_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\nlast lines of its stderr:\n" + "\n".join(tail) if tail else ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class TrainingJob(EventProcess):
    """One `python -m resumable.checkpoints.training_job` process (06): train, checkpoint, pause, resume."""

    def __init__(
        self,
        functions: Path | str,
        directory: Path | str,
        *,
        steps: int,
        every: int,
        keep: int,
        config: RunConfig = DEFAULT_CONFIG,
        pause_after: int | None = None,
        pause_in_save: int | None = None,
        fresh: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        arguments = [
            f"--functions={Path(functions).resolve()}",
            f"--directory={self.directory.resolve()}",
            f"--steps={steps}",
            f"--every={every}",
            f"--keep={keep}",
            f"--config={json.dumps(asdict(config))}",
        ]
        if pause_after is not None:
            arguments.append(f"--pause-after={pause_after}")
        if pause_in_save is not None:
            arguments.append(f"--pause-in-save={pause_in_save}")
        if fresh:
            arguments.append("--fresh")
        super().__init__(
            "resumable.checkpoints.training_job",
            arguments,
            stderr_path=self.directory.parent / f"{self.directory.name}-worker-{time.time_ns()}.log",
            environment=job_environment(),
        )


def job_environment() -> dict[str, str]:
    """The environment of a training process: CPU JAX, quiet, the shared compilation cache, no colours.

    The cache is named through RESUMABLE_JAX_CACHE, so that the process's `import resumable` turns it on
    with all of `resumable.runtime.compile_cache`'s settings, the file locks among them: several processes
    (two jobs, or the jobs of two kernels) may read and write it at the same time.
    """
    return {
        "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
        "RESUMABLE_QUIET": "1",
        "RESUMABLE_JAX_CACHE": str(compilation_cache()),
        "PYTHON_COLORS": "0",  # a failed job's traceback is quoted in a JobError: no ANSI colour codes
    }


@atexit.register
def _stop_live_jobs() -> None:
    for job in list(_live_jobs):
        job.stop()
    for server in list(_live_servers):
        server.close()


@dataclass
class JobRecord:
    """What one training process did: where it started, its losses, the saves it started, how it ended."""

    start_step: int
    losses: dict[int, float]
    saves_started: list[int]
    ending: str
    exit_code: int
    pid: int
    message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def last_step(self) -> int:
        """The last step this process finished (its start step if it trained none)."""
        return max(self.losses, default=self.start_step)


def run_job(
    functions: Path | str,
    directory: Path | str,
    *,
    steps: int,
    every: int,
    keep: int,
    config: RunConfig = DEFAULT_CONFIG,
    kill: Kill = "none",
    at_step: int | None = None,
    fresh: bool = False,
    timeout: float = 240.0,
) -> JobRecord:
    """Run one training process to its end, or to `at_step` and end it there the way `kill` says.

    `kill`: "none" (train to `steps`), "sigkill" (SIGKILL at the end of step `at_step`), "sigkill_during_save"
    (SIGKILL while step `at_step`'s checkpoint is written: files there, not yet committed), "sigterm" (SIGTERM
    at the end of step `at_step`: the job saves and exits cleanly).
    `fresh=True` starts at step 0 without calling `resume_or_start` (a reference run).
    Output: a JobRecord; `exit_code` is -9 after a SIGKILL, 0 after a clean exit.
    """
    if kill not in KILLS:
        raise ValueError(f"kill must be one of {KILLS}, got {kill!r}")
    if kill != "none" and at_step is None:
        raise ValueError(f"kill={kill!r} needs at_step")
    if kill == "sigkill_during_save" and at_step is not None and at_step % every != 0 and at_step != steps:
        raise ValueError(f"no checkpoint is written at step {at_step} (every {every} steps): nothing to interrupt")
    pause_after = at_step if kill in ("sigkill", "sigterm") else None
    pause_in_save = at_step if kill == "sigkill_during_save" else None
    job = TrainingJob(
        functions,
        directory,
        steps=steps,
        every=every,
        keep=keep,
        config=config,
        pause_after=pause_after,
        pause_in_save=pause_in_save,
        fresh=fresh,
    )
    with job:
        if kill == "sigkill":
            job.wait_for("paused", timeout)
            job.send(signal.SIGKILL)
        elif kill == "sigkill_during_save":
            job.wait_for("save_paused", timeout)
            job.send(signal.SIGKILL)
        elif kill == "sigterm":
            job.wait_for("paused", timeout)
            job.send(signal.SIGTERM)
        exit_code = job.finish(timeout)
    return _record(job, exit_code, kill)


def _record(job: TrainingJob, exit_code: int, kill: Kill) -> JobRecord:
    events = job.events
    starts = [event["step"] for event in events if event["event"] == "start"]
    if not starts:
        raise JobError(f"job {job.pid} exited with status {exit_code} before it started{job._stderr_tail()}")
    endings = {"sigkill": "killed", "sigkill_during_save": "killed during save", "sigterm": "preempted"}
    message = next((event.get("message", "") for event in events if event["event"] == "preempted"), "")
    if kill == "none" and not any(event["event"] == "done" for event in events):
        raise JobError(f"job {job.pid} exited with status {exit_code} before it was done{job._stderr_tail()}")
    return JobRecord(
        start_step=int(starts[0]),
        losses={int(event["step"]): float(event["loss"]) for event in events if event["event"] == "step"},
        saves_started=[int(event["step"]) for event in events if event["event"] == "save_started"],
        ending=endings.get(kill, "done"),
        exit_code=exit_code,
        pid=job.pid,
        message=message,
        events=events,
    )


def temporary_folders(directory: Path | str) -> list[str]:
    """Names of the temporary folders of uncommitted saves in a CheckpointManager's folder."""
    return sorted(path.name for path in Path(directory).iterdir() if ".orbax-checkpoint-tmp" in path.name)


def step_folders(directory: Path | str) -> list[str]:
    """Names of the committed step folders in a CheckpointManager's folder, in step order."""
    names = [path.name for path in Path(directory).iterdir() if path.is_dir() and path.name.isdigit()]
    return sorted(names, key=int)
