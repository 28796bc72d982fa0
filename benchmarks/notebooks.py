"""Execute a notebook top to bottom in a fresh kernel; measure wall time and the kernel's peak RSS."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.execute import SlicedClient


@dataclass(frozen=True)
class NotebookRun:
    seconds: float
    peak_rss_mb: float
    errors: int


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the highest resident set size the process has had, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def execute(path: Path, timeout: int = 600) -> NotebookRun:
    """Run `path` in its own folder with a fresh kernel of this Python; errors are counted, not raised."""
    notebook = nbformat.read(path, as_version=4)
    measured: dict[str, float] = {}

    def after_cell(**_: object) -> None:
        # VmHWM only grows, so the reading after the last cell is the kernel's peak.
        measured["peak"] = peak_rss_mb(client.km.provisioner.process.pid)

    client = SlicedClient(
        notebook,
        timeout=timeout,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_executed=after_cell,
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    errors = sum(
        1 for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"
    )
    return NotebookRun(seconds, measured["peak"], errors)
