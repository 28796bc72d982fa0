"""resumable.runtime.memory: free memory given back after each notebook cell (glibc's malloc_trim)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from resumable.runtime import memory

LINUX_GLIBC = memory._libc() is not None

FRAGMENTED = """
import ctypes
from pathlib import Path
from resumable.runtime.memory import release_freed_memory

def rss_mb():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS"))
    return int(line.split()[1]) / 1024

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(4096) for _ in range(30_000)]  # 120 MB in small blocks: the heap, not mmap
for block in blocks:
    ctypes.memset(block, 1, 4096)  # touched: resident
for block in blocks[:-1]:
    libc.free(block)  # free, but below the last block: malloc keeps it
before = rss_mb()
assert release_freed_memory()
print(before - rss_mb())
"""


@pytest.mark.skipif(not LINUX_GLIBC, reason="glibc's malloc_trim is Linux with glibc only")
def test_free_memory_held_by_malloc_goes_back_to_the_system():
    completed = subprocess.run([sys.executable, "-c", FRAGMENTED], capture_output=True, text=True, check=True)
    given_back = float(completed.stdout)
    assert given_back > 80, f"release_freed_memory gave back {given_back:.0f} MB of 120 MB freed"


@pytest.mark.skipif(not LINUX_GLIBC, reason="glibc's malloc_trim is Linux with glibc only")
def test_in_a_kernel_it_runs_after_each_cell_and_is_registered_once(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    calls = []
    monkeypatch.setattr(memory, "release_freed_memory", lambda: calls.append(1) or True)
    shell = InteractiveShell.instance()
    try:
        assert memory.release_after_each_cell() and memory.release_after_each_cell()
        shell.run_cell("x = 1")
        shell.run_cell("y = 2")
        assert len(calls) == 2, f"the hook ran {len(calls)} times after 2 cells (registered twice, or not at all)"
    finally:
        hook = getattr(shell, memory.HOOK_ATTRIBUTE, None)
        if hook is not None:
            shell.events.unregister("post_run_cell", hook)
        InteractiveShell.clear_instance()


def test_outside_a_kernel_nothing_is_registered():
    code = "import resumable, sys; print(resumable.RELEASES_MEMORY_AFTER_EACH_CELL, 'IPython' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.split()[0] == "False", completed.stdout
