"""Execute a notebook top to bottom in a fresh kernel; measure wall time and the kernel's peak memory."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.execute import SlicedClient

SAMPLE_SECONDS = 0.005


@dataclass(frozen=True)
class NotebookRun:
    seconds: float
    peak_rss_mb: float  # VmHWM: the highest resident set size, shared library pages included
    errors: int
    peak_private_mb: float  # the highest RssAnon sampled (NaN: none): memory no other process shares


def status_mb(pid: int, field: str) -> float:
    """A field of /proc/PID/status in MB (VmHWM, RssAnon, ...); RuntimeError when the process has none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the highest resident set size the process has had, from /proc (Linux)."""
    return status_mb(pid, "VmHWM")


class PrivatePeak:
    """Samples a process's anonymous resident memory (RssAnon) every SAMPLE_SECONDS and keeps the highest.

    VmHWM counts the pages of jaxlib's shared library that a kernel has touched (about 180 MB after its first
    compile), which every kernel on the machine shares; RssAnon is what this kernel alone holds. Linux keeps no
    peak of it, so it is sampled: a transient shorter than the interval can be missed."""

    def __init__(self) -> None:
        self.peak_mb = float("nan")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, pid: int) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._sample, args=(pid,), daemon=True)
            self._thread.start()

    def _sample(self, pid: int) -> None:
        peak = 0.0
        while not self._stop.is_set():
            try:
                peak = max(peak, status_mb(pid, "RssAnon"))
            except (OSError, RuntimeError):  # the kernel has exited
                break
            self.peak_mb = peak
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak_mb


def execute(path: Path, timeout: int = 600) -> NotebookRun:
    """Run `path` in its own folder with a fresh kernel of this Python; errors are counted, not raised."""
    notebook = nbformat.read(path, as_version=4)
    measured: dict[str, float] = {}
    private = PrivatePeak()

    def before_cell(**_: object) -> None:
        private.follow(client.km.provisioner.process.pid)

    def after_cell(**_: object) -> None:
        # VmHWM only grows, so the reading after the last cell is the kernel's peak.
        measured["peak"] = peak_rss_mb(client.km.provisioner.process.pid)

    client = SlicedClient(
        notebook,
        timeout=timeout,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_execute=before_cell,
        on_cell_executed=after_cell,
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        private_peak = private.stop()
    seconds = time.perf_counter() - start
    errors = sum(
        1 for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"
    )
    return NotebookRun(seconds, measured["peak"], errors, private_peak)
