"""One of N data-parallel training processes (`python -m resumable.checkpoints.process_job`), started by
`resumable.checkpoints.processes`.

Every process calls `jax.distributed.initialize` on a loopback port, sees `--devices` host devices of its own
and all N * devices devices of the job: one global ("data",) mesh. Model and optimizer state are replicated
on that mesh; every process runs the course's pipeline (the same cursor and RNG on every process, so one copy
of its state is in the checkpoint) and feeds only its own rows of every batch
(`jax.make_array_from_process_local_data`). One Orbax CheckpointManager over all processes saves (model,
optimizer, pipeline) asynchronously every `--every` steps; each process writes its own shards
(`ocdbt.process_<i>`) and process 0 commits the step once all have written.

The process imports the student's `restore_onto_mesh` and `resume_step` from a file (see
`resumable.checkpoints.jobs.write_functions_module`), so this module holds no exercise answer. Events are JSON
lines on stdout, as in `training_job`. Preemption: SIGTERM to any process is seen by JAX's preemption service;
every process asks `manager.reached_preemption(step)` after each step, and all of them agree on one step, save
it and exit with status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from resumable.checkpoints.training_job import (
    EXIT_PAUSE_EXPIRED,
    PAUSE_LIMIT_SECONDS,
    _exit_when_parent_goes,
    emit,
    load_functions,
)

EXIT_COLLECTIVE_FAILED = 5
NAMES = ("pipeline", "model", "optimizer")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m resumable.checkpoints.process_job")
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--port", type=int, required=True, help="the coordinator's port on 127.0.0.1")
    parser.add_argument("--functions", type=Path, required=True, help="restore_onto_mesh, resume_step")
    parser.add_argument("--directory", type=Path, required=True, help="the CheckpointManager's folder")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--every", type=int, required=True)
    parser.add_argument("--keep", type=int, required=True)
    parser.add_argument("--config", default="{}", help="RunConfig fields as JSON")
    parser.add_argument("--pause-after", type=int, default=None, help="report `paused` at the end of this step")
    parser.add_argument("--pause-seconds", type=float, default=None, help="pause this long, then go on")
    parser.add_argument("--pause-in-save", type=int, default=None, help="pause before committing this step")
    parser.add_argument("--fresh", action="store_true", help="start at step 0 (a reference run)")
    parser.add_argument("--heartbeat", type=int, default=10, help="seconds after which a silent peer is dead")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes (parent gone)")
    return parser.parse_args(argv)


def peak_mb() -> float:
    """This process's peak resident memory so far (VmHWM, from /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _wait(seconds: float = PAUSE_LIMIT_SECONDS) -> None:
    """Wait to be signalled; give up after PAUSE_LIMIT_SECONDS (a paused process nobody ends exits itself)."""
    time.sleep(seconds)
    emit("pause_expired")
    os._exit(EXIT_PAUSE_EXPIRED)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if arguments.watch_stdin:
        threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    import jax

    began = time.monotonic()
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{arguments.port}",
        num_processes=arguments.num_processes,
        process_id=arguments.process_id,
        initialization_timeout=60,
        heartbeat_timeout_seconds=arguments.heartbeat,
        shutdown_timeout_seconds=5,
    )
    emit("initialized", seconds=round(time.monotonic() - began, 3), devices=jax.device_count())

    import numpy as np
    import orbax.checkpoint as ocp
    from flax import nnx
    from jax.sharding import AxisType, NamedSharding, PartitionSpec

    from resumable.checkpoints.manager import open_manager
    from resumable.checkpoints.processes import state_digest
    from resumable.training import RunConfig, make_triple, train_step

    functions = load_functions(arguments.functions, () if arguments.fresh else ("restore_onto_mesh", "resume_step"))
    rank, processes = jax.process_index(), jax.process_count()
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
    replicated = NamedSharding(mesh, PartitionSpec())
    rows = NamedSharding(mesh, PartitionSpec("data"))
    pipeline, model, optimizer = make_triple(RunConfig(**json.loads(arguments.config)))
    triple = dict(zip(NAMES, (pipeline, model, optimizer), strict=True))
    local = jax.local_devices()[0]

    def on_mesh(tree: Any) -> Any:
        # every process holds the same values: each builds its own shards of the replicated array
        def place(leaf: Any) -> Any:
            if isinstance(leaf, jax.Array) and leaf.sharding == replicated:
                return leaf  # restored onto this mesh already
            host = leaf if isinstance(leaf, jax.Array) else np.asarray(leaf)
            return jax.make_array_from_callback(host.shape, replicated, lambda index: host[index])

        return jax.tree.map(place, tree)

    def into_objects(trees: dict[str, Any]) -> None:
        for name, obj in triple.items():
            tree = trees[name]
            if name == "pipeline":  # the pipeline runs on this process's first device, as a local copy
                tree = jax.tree.map(lambda leaf: jax.device_put(leaf.addressable_shards[0].data, local), tree)
            state = nnx.state(obj)
            nnx.replace_by_pure_dict(state, tree)
            nnx.update(obj, state)

    pause_in_save = arguments.pause_in_save
    saving = {"step": None}

    def before_commit() -> None:
        if pause_in_save is not None and saving["step"] == pause_in_save:
            emit("save_paused", step=pause_in_save)
            _wait()

    manager = open_manager(
        arguments.directory, every=arguments.every, keep=arguments.keep, post_finalization_callback=before_commit
    )
    start = 0
    if not arguments.fresh:
        step = functions.resume_step(arguments.directory)
        if step:
            fresh = {name: nnx.to_pure_dict(nnx.state(obj)) for name, obj in triple.items()}
            restored = functions.restore_onto_mesh(manager, int(step), fresh, mesh)
            emit("restored", step=int(step), digest=state_digest(restored))
            into_objects(restored)
            start = int(step)
    for name in ("model", "optimizer"):
        obj = triple[name]
        nnx.update(obj, on_mesh(nnx.state(obj)))
    emit("start", step=start, pid=os.getpid(), process=rank, processes=processes, devices=jax.device_count())

    def snapshot() -> dict[str, Any]:
        return {name: nnx.to_pure_dict(nnx.state(obj)) for name, obj in triple.items()}

    def save(step: int, *, force: bool = False) -> bool:
        if step == pause_in_save:
            manager.wait_until_finished()
        saving["step"] = step
        trees = snapshot()
        trees["pipeline"] = on_mesh(trees["pipeline"])
        items = ocp.args.Composite(**{name: ocp.args.StandardSave(tree) for name, tree in trees.items()})
        started = bool(manager.save(step, args=items, force=force))
        if started:
            emit("save_started", step=step)
        return started

    share = pipeline.batch_size // processes
    for step in range(start + 1, arguments.steps + 1):
        batch = {key: np.asarray(value) for key, value in next(pipeline).items()}
        mine = {key: value[rank * share : (rank + 1) * share] for key, value in batch.items()}
        sharded = {
            key: jax.make_array_from_process_local_data(rows, value, batch[key].shape) for key, value in mine.items()
        }
        sent = time.monotonic()
        try:
            loss = float(train_step(model, optimizer, sharded))
        except Exception as error:  # a peer died: gloo or the coordination service says so
            emit(
                "collective_failed",
                step=step,
                seconds=round(time.monotonic() - sent, 3),
                error=f"{type(error).__name__}: {error}".splitlines()[0][:400],
            )
            sys.stdout.flush()
            os._exit(EXIT_COLLECTIVE_FAILED)
        emit("step", step=step, loss=loss)
        preempted = manager.reached_preemption(step)
        saved = save(step, force=preempted or step == arguments.steps)
        if step == pause_in_save:
            _wait()  # the background thread reports `save_paused`, then the notebook kills this process
        if step == arguments.pause_after:
            manager.wait_until_finished()
            emit("paused", step=step)
            if arguments.pause_seconds is None:
                _wait()  # to be killed
            time.sleep(arguments.pause_seconds)  # a SIGTERM now reaches JAX's preemption service before step + 1
        if preempted:
            manager.wait_until_finished()
            message = f"preemption agreed at step {step}: saved it ({saved}), exiting cleanly"
            emit("preempted", step=step, message=message, peak_mb=peak_mb())
            manager.close()
            jax.distributed.shutdown()
            return 0
    manager.wait_until_finished()
    emit("done", step=arguments.steps, checkpoints=[int(s) for s in manager.all_steps()], peak_mb=peak_mb())
    manager.close()
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except SystemExit:
        raise
    except BaseException:
        emit("failed", error=traceback.format_exc().strip().splitlines()[-1][:400])
        raise
