"""The course's Orbax CheckpointManager: a checkpoint every k steps, the latest N kept, saved asynchronously."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def open_manager(
    directory: Path | str, *, every: int, keep: int, post_finalization_callback: Callable[[], None] | None = None
) -> Any:
    """The job's CheckpointManager: a checkpoint every `every` steps, the latest `keep` kept, saved asynchronously.

    `post_finalization_callback` runs in Orbax's background thread after a checkpoint's files are written
    and before the checkpoint is committed (its temporary folder renamed).
    """
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        save_decision_policy=ocp.checkpoint_managers.FixedIntervalPolicy(every),
        preservation_policy=ocp.checkpoint_managers.LatestN(keep),
        enable_async_checkpointing=True,
        async_options=ocp.AsyncOptions(post_finalization_callback=post_finalization_callback),
    )
    return ocp.CheckpointManager(Path(directory).resolve(), options=options)
