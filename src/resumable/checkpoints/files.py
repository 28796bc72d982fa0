"""What a checkpoint folder holds on disk: its files and sizes, a listing, and its leaves' shapes vs a template."""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


@dataclass(frozen=True)
class CheckpointFile:
    """One file under a checkpoint folder: its path relative to the folder (with "/") and its size."""

    path: str
    nbytes: int


def checkpoint_files(folder: str | Path) -> list[CheckpointFile]:
    """Every file under `folder` (recursively), sorted by path. A missing folder has no files."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(
        (
            CheckpointFile(path.relative_to(root).as_posix(), path.stat().st_size)
            for path in root.rglob("*")
            if path.is_file()
        ),
        key=lambda file: file.path,
    )


def render_listing(folder: str | Path, title: str | None = None) -> str:
    """A listing of `folder`: a header with the file count and total bytes, then one line per file.

    Output: text; a missing folder gives a one-line message saying so (Orbax may still be writing it
    under a temporary name).
    """
    root = Path(folder)
    title = title or root.name
    files = checkpoint_files(root)
    if not root.is_dir():
        return f"{title}: no such folder ({root.name} does not exist yet, or was never written)"
    total = sum(file.nbytes for file in files)
    lines = [f"{title}/: {len(files)} files, {total:,} bytes"]
    width = max((len(file.path) for file in files), default=0)
    size_width = max((len(f"{file.nbytes:,}") for file in files), default=0)
    lines += [f"  {file.path:<{width}}  {file.nbytes:>{size_width},} B" for file in files]
    return "\n".join(lines)


def render_choice(choice: str, folders: dict[str, str | Path]) -> str:
    """The listing of `folders[choice]` (the callback of the notebooks' checkpoint dropdown)."""
    if choice not in folders:
        return f"unknown choice {choice!r}; pick one of {', '.join(folders)}"
    return render_listing(folders[choice], title=choice)


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        flat: dict[str, Any] = {}
        for key, child in tree.items():
            flat.update(_flat(child, f"{prefix}/{key}" if prefix else str(key)))
        return flat
    return {prefix: tree}


def stored_leaves(folder: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each leaf's path ("a/b/c") -> (shape, dtype) as the checkpoint's metadata records it; no array is read.

    A typed PRNG key is stored as its key data (e.g. shape (2,) uint32 for a `key<fry>`).
    """
    metadata = ocp.StandardCheckpointer().metadata(Path(folder).absolute()).item_metadata.tree
    return {path: (tuple(leaf.shape), str(leaf.dtype)) for path, leaf in _flat(metadata).items()}


def _storage_shape(leaf: Any) -> tuple[tuple[int, ...], str]:
    """The shape and dtype a leaf (an array or a `jax.ShapeDtypeStruct`) has on disk."""
    if hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.eval_shape(jax.random.key_data, leaf)
    return tuple(int(size) for size in np.shape(leaf)), str(leaf.dtype)


def shape_mismatches(folder: str | Path, template: Mapping[str, Any]) -> list[str]:
    """Where a pure-dict `template` and the checkpoint in `folder` disagree, one sentence per leaf, in path order:
    a different shape or dtype, or a leaf on one side only. Empty when the template fits."""
    stored = stored_leaves(folder)
    wanted = {path: _storage_shape(leaf) for path, leaf in _flat(template).items()}
    sentences = []
    for path in sorted(set(stored) | set(wanted)):
        if path not in wanted:
            sentences.append(f"{path}: in the checkpoint, missing from the template")
        elif path not in stored:
            sentences.append(f"{path}: in the template, missing from the checkpoint")
        elif stored[path] != wanted[path]:
            (stored_shape, stored_dtype), (wanted_shape, wanted_dtype) = stored[path], wanted[path]
            sentences.append(f"{path}: stored {stored_shape} {stored_dtype}, template {wanted_shape} {wanted_dtype}")
    return sentences


class _AbandonedOrbaxReads(logging.Filter):
    """Drops asyncio's "... exception was never retrieved" reports for Orbax's own tasks and their gathers.

    After a restore fails, Orbax abandons the sibling reads; each one's error is reported by asyncio's logger
    when its task (or the `_GatheringFuture` that gathered them) is garbage collected, which can be seconds
    later on a busy machine. The restore's own error has reached the caller already. The report goes through
    logging, to a handler that may hold the stderr of an earlier cell, so redirecting stderr cannot catch it.
    A task's report names Orbax's module; a gather's names only the error, Orbax's own text (ORBAX_ERRORS).
    """

    ORBAX_ERRORS = ("orbax", "ArrayRestoreArgs")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("exception was never retrieved" in message and any(t in message for t in self.ORBAX_ERRORS))


_ABANDONED_ORBAX_READS = _AbandonedOrbaxReads()


@contextlib.contextmanager
def orbax_noise_captured(settle_seconds: float = 0.5) -> Iterator[io.StringIO]:
    """Capture what Orbax's background threads print to stderr around a restore that fails on purpose.

    After a failed read, reads still in flight may finish on an event loop Orbax has already closed and print
    "RuntimeError: Event loop is closed" tracebacks, possibly a moment later. This redirects stderr, waits
    `settle_seconds` and collects garbage before leaving, so that noise lands in the yielded buffer instead of
    in whatever cell runs next. asyncio's reports of Orbax's abandoned reads are dropped from then on (see
    `_AbandonedOrbaxReads`): seen in the grader, where one arrived after the wait and failed an honest
    student's test ("wrote to stderr"). The error raised by the restore itself propagates unchanged.
    """
    asyncio_logger = logging.getLogger("asyncio")
    if _ABANDONED_ORBAX_READS not in asyncio_logger.filters:
        asyncio_logger.addFilter(_ABANDONED_ORBAX_READS)
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        try:
            yield captured
        finally:
            time.sleep(settle_seconds)
            gc.collect()
