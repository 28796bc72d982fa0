"""Give back to the system, after each notebook cell, the memory that the C allocator holds but no longer uses.

glibc's malloc keeps freed memory in its arenas (one per thread that allocated) instead of returning it: after
XLA compiles a program or Orbax writes a checkpoint, a course kernel holds 40 to 70 MB more than it uses
(benchmarks/RESULTS.md). `malloc_trim(0)` returns those free pages to the system; it changes nothing that a
program computes, and it takes a few milliseconds. Linux with glibc only: elsewhere every call is a no-op.
"""

from __future__ import annotations

import ctypes
import functools
import sys

HOOK_ATTRIBUTE = "_resumable_release_hook"  # on the IPython shell: the hook is registered once per kernel


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, for example)
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the system (glibc `malloc_trim(0)`); False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def release_after_each_cell() -> bool:
    """In a notebook kernel (IPython), call `release_freed_memory` after every cell; True when it will run.

    Registered once per kernel, however often `resumable` is imported or reloaded. Outside IPython (scripts,
    training jobs) it does nothing and returns False."""
    if _libc() is None or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    if shell is None:
        return False
    if getattr(shell, HOOK_ATTRIBUTE, None) is None:

        def after_cell(result=None) -> None:
            release_freed_memory()

        shell.events.register("post_run_cell", after_cell)
        setattr(shell, HOOK_ATTRIBUTE, after_cell)
    return True
