"""Execute a notebook with its kernel inside the sandbox, recording OUTSIDE it what each cell did.

The executor (nbclient, trusted, in the grader's process) talks to the kernel over Unix sockets in a
folder of the student's scratch copy (a new network namespace has no shared loopback, files it can share).
For every cell it records, from the kernel's messages as they arrive, whether the cell was executed, its
execute_reply status and every error it raised. A notebook cannot rewrite that record afterwards (clearing
outputs, editing the notebook file, writing into a gradebook): scores are computed from it alone.
Integrity probes (grader/probe.py) run before the first cell and around every graded cell (once between two
graded cells in a row: nothing runs between them).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from grader import probe as probes

MAX_OUTPUT_CHARS_PER_CELL = 200_000
MAX_OUTPUT_CHARS_TOTAL = 2_000_000


@dataclass
class CellRecord:
    """What the trusted executor saw one code cell do."""

    index: int
    completed: bool = False  # its execute_reply arrived
    status: str | None = None  # the reply's status: "ok" or "error"
    errors: list[tuple[str, str]] = field(default_factory=list)  # (ename, evalue) of every error message
    stderr: bool = False


@dataclass
class Execution:
    """The record of one notebook's execution."""

    cells: dict[int, CellRecord] = field(default_factory=dict)
    stopped: str | None = None  # why execution stopped before the end, in words
    stopped_at: int | None = None  # the index of the cell it stopped at (not scored)
    tampered: str | None = None  # what an integrity probe found
    tampered_at: int | None = None  # first cell index no longer trusted
    seconds: float = 0.0


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command is wrapped (in the sandbox), talking over Unix sockets."""

    def __init__(self, wrap: Callable[[list[str]], list[str]], owner: int | None, **kwargs):
        super().__init__(**kwargs)
        self._wrap = wrap
        self._owner = owner

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        if self._owner is not None:  # the sandbox user must read the connection file (written 0600)
            os.chown(self.connection_file, self._owner, self._owner)
        return self._wrap([sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file])


POLL_SECONDS = 0.5
NUDGE_SECONDS = 5.0


class SlicedWait:
    """The schedule of one wait for a kernel message: short polls, and a nudge after each long silence.

    Seen here (ipykernel 7.4, pyzmq 27, grading 03 and 06): the executor waited for an execute_reply that
    had arrived, with the kernel idle, until the cell timeout failed an honest student. A zmq socket's file
    descriptor is edge-triggered, and sending on the socket (the next request, a probe) can consume the edge
    of a reply that arrived meanwhile: a single long poll then never wakes. A fresh poll checks the socket's
    state first, so the wait polls at most `poll_seconds` at a time. (6 students of 03, --jobs 2: with 5 s
    polls, 2 of 6 lost 5 s each, in each of two runs; with 0.5 s polls, none of 24 did.)
    The kernel can miss a request the same way (ipython/ipykernel#1529, #1554): after `nudge_seconds` of
    silence, and again after each further `nudge_seconds`, a harmless kernel_info_request is sent, whose
    arrival wakes the kernel's socket (clients ignore its reply). nbclient (the grader, the benchmark) and
    nbval (make test, through the root conftest.py) both wait this way.
    """

    def __init__(self, timeout: float | None, poll_seconds: float = POLL_SECONDS, nudge_seconds: float = NUDGE_SECONDS):
        now = time.monotonic()
        self.deadline = None if timeout is None else now + timeout
        self.poll_seconds = poll_seconds
        self.nudge_seconds = nudge_seconds
        self.nudge_at = now + nudge_seconds

    def next_poll(self) -> float:
        """Seconds the next poll may wait."""
        if self.deadline is None:
            return self.poll_seconds
        return max(0.0, min(self.poll_seconds, self.deadline - time.monotonic()))

    def after_silence(self, nudge: Callable[[], object] | None) -> None:
        """After a poll that found nothing: raise Empty when the caller's timeout is spent, nudge when due."""
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            raise Empty
        if nudge is not None and now >= self.nudge_at:
            nudge()
            self.nudge_at = now + self.nudge_seconds


def wait_in_slices(
    client: NotebookClient, poll_seconds: float = POLL_SECONDS, nudge_seconds: float = NUDGE_SECONDS
) -> None:
    """Make `client`'s shell channel wait for a reply as a `SlicedWait` (short polls, nudges)."""
    channel = client.kc.shell_channel
    original = channel.get_msg

    async def get_msg(timeout: float | None = None):
        wait = SlicedWait(timeout, poll_seconds, nudge_seconds)
        while True:
            try:
                return await original(timeout=wait.next_poll())
            except Empty:
                wait.after_silence(client.kc.kernel_info)

    get_msg.sliced = True  # tests check that a client's waits are these
    channel.get_msg = get_msg


class SlicedWaits:
    """For an nbclient client class (nbclient's, or nbgrader's Execute): waits for kernel replies that cannot
    miss one (see `wait_in_slices`), and its own kernel over Unix sockets (no TCP port, no "running over TCP
    without encryption" warning)."""

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.transport = "ipc"
        km.ip = str(Path(tempfile.gettempdir()) / f"resumable-kernel-{os.getpid()}-{id(self):x}")
        return km

    async def async_start_new_kernel_client(self):
        kernel_client = await super().async_start_new_kernel_client()
        wait_in_slices(self)
        return kernel_client

    # nbclient defines the blocking twin as run_sync(NotebookClient.async_start_new_kernel_client), bound to its
    # own coroutine: without this line, setup_kernel() (and nbconvert's preprocess, which nbgrader's Execute
    # runs) would start a client with plain waits.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)


class SlicedClient(SlicedWaits, NotebookClient):
    """nbclient with `SlicedWaits`."""


class RecordingClient(SlicedClient):
    """nbclient, recording errors per cell as the messages arrive, and capping the size of outputs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records: dict[int, CellRecord] = {}
        self._chars: dict[int, int] = {}
        self._total_chars = 0

    def output(self, outs, msg, display_id, cell_index):
        record = self.records.get(cell_index)
        msg_type = msg["msg_type"]
        content = msg.get("content", {})
        if record is not None:
            if msg_type == "error":
                record.errors.append((str(content.get("ename", ""))[:200], str(content.get("evalue", ""))[:2000]))
            elif msg_type == "stream" and content.get("name") == "stderr":
                record.stderr = True
        size = len(json.dumps(content, default=str))
        used = self._chars.get(cell_index, 0)
        if msg_type != "error" and (
            used + size > MAX_OUTPUT_CHARS_PER_CELL or self._total_chars + size > MAX_OUTPUT_CHARS_TOTAL
        ):
            if used <= MAX_OUTPUT_CHARS_PER_CELL:  # say it once
                self._chars[cell_index] = MAX_OUTPUT_CHARS_PER_CELL + 1
                note = nbformat.v4.new_output("stream", name="stdout", text="\n[output truncated by the grader]\n")
                outs.append(note)
            return None
        self._chars[cell_index] = used + size
        self._total_chars += size
        return super().output(outs, msg, display_id, cell_index)

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        record = self.records.get(cell_index)
        if record is not None and exec_reply is not None:
            record.completed = True
            record.status = exec_reply["content"].get("status")
            if record.status == "error":
                content = exec_reply["content"]
                record.errors.append((str(content.get("ename", ""))[:200], str(content.get("evalue", ""))[:2000]))


async def _run_probe(client: RecordingClient, timeout: float, baseline: set[str] | None = None):
    """The probe's verdict (None: clean); for the first probe (no baseline): (problem, baseline)."""
    probe = probes.make_probe()
    msg_id = client.kc.execute(probe.source, store_history=False, stop_on_error=False)
    try:
        reply = await asyncio.wait_for(client.async_wait_for_reply(msg_id), timeout)
    except (TimeoutError, CellTimeoutError):
        return "the kernel did not answer an integrity check in time"
    except DeadKernelError:
        return "the kernel died during an integrity check"
    if baseline is None:
        return probe.findings(reply)
    return probe.verdict(reply, baseline)


async def _execute(
    notebook: nbformat.NotebookNode,
    workdir: Path,
    graded: set[int],
    km: AsyncKernelManager,
    cell_timeout: float,
    total_timeout: float,
    probe_timeout: float,
) -> Execution:
    execution = Execution()
    started = time.monotonic()
    client = RecordingClient(
        notebook,
        km=km,
        timeout=cell_timeout,
        startup_timeout=120,
        allow_errors=True,
        record_timing=False,
        iopub_timeout=10,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.records = execution.cells

    def left() -> float:
        return total_timeout - (time.monotonic() - started)

    try:
        async with client.async_setup_kernel():
            first = await _run_probe(client, probe_timeout)
            problem, baseline = first if isinstance(first, tuple) else (first, set())
            if problem is not None:
                execution.stopped = f"the kernel failed its first integrity check before any cell ran ({problem})"
                execution.stopped_at = 0
                return execution
            probed = True  # nothing ran in the kernel since its last probe
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                if index in graded and not probed:  # a test right after a probed test needs no probe before it
                    verdict = await _run_probe(client, probe_timeout, baseline)
                    if verdict is not None:
                        execution.tampered, execution.tampered_at = verdict, index
                        break
                probed = False
                execution.cells[index] = CellRecord(index)
                remaining = left()
                if remaining <= 0:
                    execution.stopped, execution.stopped_at = "the notebook ran past the time limit", index
                    break
                try:
                    await asyncio.wait_for(client.async_execute_cell(cell, index), remaining)
                except CellTimeoutError:
                    execution.stopped = f"a cell ran longer than {cell_timeout:.0f} s (an endless loop?)"
                    execution.stopped_at = index
                    break
                except TimeoutError:
                    execution.stopped = f"the notebook ran longer than {total_timeout:.0f} s in all"
                    execution.stopped_at = index
                    break
                except DeadKernelError:
                    execution.stopped = "the kernel died (the code exited the process, killed it, or ran out of memory)"
                    execution.stopped_at = index
                    break
                if not execution.cells[index].completed:
                    execution.stopped, execution.stopped_at = "the kernel stopped answering", index
                    break
                if index in graded:
                    verdict = await _run_probe(client, probe_timeout, baseline)
                    if verdict is not None:
                        execution.tampered, execution.tampered_at = verdict, index
                        break
                    probed = True
    except DeadKernelError:
        execution.stopped = execution.stopped or "the kernel died"
    except RuntimeError as error:  # kernel failed to start, and similar
        execution.stopped = execution.stopped or f"the kernel could not run: {str(error)[:300]}"
    finally:
        execution.seconds = time.monotonic() - started
    return execution


def execute(
    notebook: nbformat.NotebookNode,
    workdir: Path,
    graded: set[int],
    *,
    wrap: Callable[[list[str]], list[str]],
    socket_dir: Path,
    owner: int | None,
    cell_timeout: float = 300,
    total_timeout: float = 1800,
    probe_timeout: float = 60,
) -> Execution:
    """Execute `notebook` (in place: outputs are filled in) with its kernel started through `wrap`."""
    km = SandboxedKernelManager(
        wrap,
        owner,
        kernel_name="python3",
        transport="ipc",
        ip=str(socket_dir / "k"),
        connection_file=str(socket_dir / "kernel.json"),
    )
    return asyncio.run(_execute(notebook, workdir, graded, km, cell_timeout, total_timeout, probe_timeout))
