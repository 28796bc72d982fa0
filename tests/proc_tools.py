"""Running processes as the tests see them: read from /proc, so no process listing tool is needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def command_lines() -> Iterator[tuple[int, str]]:
    """(pid, command line) of every process readable now; those that end while being read are skipped."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            yield int(entry.name), command


def parent_pid(pid: int) -> int | None:
    """The parent's pid (from /proc/PID/stat), or None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # after "(name)": the state, then the parent
