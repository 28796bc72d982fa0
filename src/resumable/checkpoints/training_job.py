"""A training job in its own process (`python -m resumable.checkpoints.training_job`), killed and resumed for real.

The job imports the student's `save_checkpoint` and `resume_or_start` from a file (see
`resumable.checkpoints.jobs.write_functions_module`), so this module holds no exercise answer. It reports what it does
as JSON lines on stdout (`{"event": "step", "step": 3, "loss": 1.21}`), one line per event, flushed at once,
so that the notebook can follow it and kill it at a step it chose:

- `--pause-after K`: at the end of step K (its checkpoint, if one was due, committed) the job reports
  `paused` and waits; the notebook then sends SIGKILL (a crash) or SIGTERM (a preemption).
- `--fresh`: never resume (a reference run); only `save_checkpoint` is needed.
- `--pause-in-save K`: step K's checkpoint is written into its temporary folder, then the job reports
  `save_paused` and waits just before Orbax commits (renames) it; a SIGKILL then interrupts that save.

On SIGTERM the job finishes its current step, saves it (unless that step was just saved), waits for the
save to be committed, reports `preempted` and exits with status 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from resumable.checkpoints.manager import open_manager

PAUSE_LIMIT_SECONDS = 300.0  # a paused job nobody kills exits by itself
EXIT_PAUSE_EXPIRED = 3
EXIT_PARENT_GONE = 4


_EMIT_LOCK = threading.Lock()  # the training loop and Orbax's background thread both report


def emit(event: str, **fields: Any) -> None:
    """Write one event as a JSON line on stdout, flushed (floats keep every bit: json writes their repr)."""
    with _EMIT_LOCK:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()


def load_functions(path: Path, names: tuple[str, ...] = ("save_checkpoint", "resume_or_start")) -> ModuleType:
    """Import the module file that holds `save_checkpoint` and `resume_or_start` (or the given `names`)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in names:
        if not callable(getattr(module, name, None)):
            raise ImportError(f"{path} defines no function {name}")
    return module


class _Job:
    """State shared by the training loop, the signal handler and Orbax's background thread."""

    def __init__(self) -> None:
        self.preempted = threading.Event()
        self.saving_step: int | None = None

    def on_sigterm(self, signum: int, frame: object) -> None:
        # Only set a flag: the loop finishes the step it is in, then saves and exits.
        self.preempted.set()

    def wait(self, *, until_preempted: bool) -> None:
        """Wait to be killed (or, if `until_preempted`, to receive SIGTERM); give up after PAUSE_LIMIT_SECONDS."""
        deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
        while time.monotonic() < deadline:
            if until_preempted and self.preempted.is_set():
                return
            time.sleep(0.005)
        emit("pause_expired")
        os._exit(EXIT_PAUSE_EXPIRED)


def _exit_when_parent_goes() -> None:
    """The parent holds our stdin open; when it closes (the notebook's kernel died), stop at once."""
    sys.stdin.read()
    os._exit(EXIT_PARENT_GONE)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    prog = "python -m resumable.checkpoints.training_job"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=Path, required=True, help="file with save_checkpoint, resume_or_start")
    parser.add_argument("--directory", type=Path, required=True, help="the CheckpointManager's folder")
    parser.add_argument("--steps", type=int, required=True, help="train until this step")
    parser.add_argument("--every", type=int, required=True, help="checkpoint interval in steps")
    parser.add_argument("--keep", type=int, required=True, help="how many checkpoints to keep")
    parser.add_argument("--config", default="{}", help="RunConfig fields as JSON")
    parser.add_argument("--pause-after", type=int, default=None, help="pause at the end of this step")
    parser.add_argument("--pause-in-save", type=int, default=None, help="pause before committing this checkpoint")
    parser.add_argument("--fresh", action="store_true", help="always start at step 0 (a reference run)")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes (parent gone)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    job = _Job()
    signal.signal(signal.SIGTERM, job.on_sigterm)
    if arguments.watch_stdin:
        threading.Thread(target=_exit_when_parent_goes, daemon=True).start()

    from resumable.training import RunConfig, make_triple, train_step

    needed = ("save_checkpoint",) if arguments.fresh else ("save_checkpoint", "resume_or_start")
    functions = load_functions(arguments.functions, needed)
    pause_in_save = arguments.pause_in_save

    def before_commit() -> None:
        if pause_in_save is not None and job.saving_step == pause_in_save:
            emit("save_paused", step=pause_in_save)
            job.wait(until_preempted=False)

    manager = open_manager(
        arguments.directory, every=arguments.every, keep=arguments.keep, post_finalization_callback=before_commit
    )
    pipeline, model, optimizer = make_triple(RunConfig(**json.loads(arguments.config)))
    start = 0 if arguments.fresh else int(functions.resume_or_start(manager, pipeline, model, optimizer))
    emit("start", step=start, pid=os.getpid())

    def save(step: int, *, force: bool = False) -> bool:
        if step == pause_in_save:
            manager.wait_until_finished()  # so that the pause hook sees this step's save, not the previous one's
        job.saving_step = step
        started = bool(functions.save_checkpoint(manager, step, pipeline, model, optimizer, force=force))
        if started:
            emit("save_started", step=step)
        return started

    for step in range(start + 1, arguments.steps + 1):
        loss = float(train_step(model, optimizer, next(pipeline)))
        emit("step", step=step, loss=loss)
        saved = save(step) or (step == arguments.steps and save(step, force=True))
        if step == pause_in_save:
            if not saved:
                emit("no_save_to_pause", step=step)
                return 2
            job.wait(until_preempted=False)  # the background thread reports `save_paused`
        if step == arguments.pause_after:
            manager.wait_until_finished()
            emit("paused", step=step)
            job.wait(until_preempted=True)
        if job.preempted.is_set():
            if not saved:
                save(step, force=True)
            manager.wait_until_finished()
            emit("preempted", step=step, message=f"SIGTERM: finished step {step}, saved it, exiting cleanly")
            manager.close()
            return 0
    manager.wait_until_finished()
    emit("done", step=arguments.steps, checkpoints=[int(s) for s in manager.all_steps()])
    manager.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
