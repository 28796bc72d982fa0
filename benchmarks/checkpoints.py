"""Time saving and restoring the (pipeline, model, optimizer) triple with Orbax."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import orbax.checkpoint as ocp
from flax import nnx

from resumable import make_triple, train


def snapshot(triple: tuple) -> dict:
    return {
        name: nnx.to_pure_dict(nnx.state(obj))
        for name, obj in zip(("pipeline", "model", "optimizer"), triple, strict=True)
    }


def time_checkpoints(repeats: int) -> dict[str, list[float]]:
    """Seconds per repeat: synchronous save (save + wait), the blocking part of an async save, a restore."""
    triple = make_triple()
    train(*triple, 5)
    tree = snapshot(triple)
    template = snapshot(make_triple())
    checkpointer = ocp.StandardCheckpointer()
    timings: dict[str, list[float]] = {"save (sync)": [], "save (async, blocking part)": [], "restore": []}
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as folder:
        for repeat in range(repeats + 1):  # the first round warms Orbax up and is not counted
            start = time.perf_counter()
            checkpointer.save(Path(folder) / f"sync_{repeat}", tree)
            checkpointer.wait_until_finished()
            sync = time.perf_counter() - start

            start = time.perf_counter()
            checkpointer.save(Path(folder) / f"async_{repeat}", tree)
            blocking = time.perf_counter() - start
            checkpointer.wait_until_finished()

            start = time.perf_counter()
            checkpointer.restore(Path(folder) / f"sync_{repeat}", template)
            restore = time.perf_counter() - start
            if repeat:
                timings["save (sync)"].append(sync)
                timings["save (async, blocking part)"].append(blocking)
                timings["restore"].append(restore)
    checkpointer.close()
    return timings
