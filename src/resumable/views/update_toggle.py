"""Notebook 03's toggle: resume from a snapshot with a given restore function, and show what it did."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flax import nnx
from matplotlib.figure import Figure

from resumable.diff import StateDiff, state_diff
from resumable.training import RunConfig, make_triple, train
from resumable.views.plots import plot_losses

# A restore function: writes a pure dict into a live module or optimizer (or, for the pitfall, fails to).
Restore = Callable[[nnx.Pytree, dict[str, Any]], object]

PARTS = ("pipeline", "model", "optimizer")


def resume_with(
    restore: Restore, saved: Mapping[str, dict[str, Any]], config: RunConfig, num_steps: int
) -> tuple[list[float], StateDiff]:
    """Build a fresh (pipeline, model, optimizer) for `config`, call `restore(part, saved[name])` on each,
    then train `num_steps` steps.

    Inputs: the restore function under test; `saved`, the snapshot {"pipeline", "model", "optimizer"} of pure
    dicts taken at the crash step; the run's config; how many steps to train after the resume.
    Output: the losses after the resume, and the diff between the live objects right after `restore` and
    `saved` (identical when the restore really wrote the snapshot into the objects).
    """
    pipeline, model, optimizer = make_triple(config)
    live = {"pipeline": pipeline, "model": model, "optimizer": optimizer}
    for name in PARTS:
        restore(live[name], saved[name])
    diff = state_diff(live, {name: saved[name] for name in PARTS}, names=("live objects", "checkpoint"))
    return train(pipeline, model, optimizer, num_steps, description="resumed"), diff


def update_toggle_view(
    restore: Restore,
    saved: Mapping[str, dict[str, Any]],
    reference: Sequence[float],
    config: RunConfig,
    resume_step: int,
    *,
    label: str = "resumed",
) -> tuple[Figure, str]:
    """The toggle's callback: resume with `restore` at `resume_step`, plot against the reference run.

    Inputs: the restore function, the snapshot taken after `resume_step` steps, the reference run's losses
    (every step, never interrupted), its config and the resume step.
    Output: the Figure (reference vs the resumed run, whose first `resume_step` losses are the reference's
    own: the run before the crash) and a text: the state diff right after the restore and the largest loss gap.
    """
    losses, diff = resume_with(restore, saved, config, len(reference) - resume_step)
    resumed = [*reference[:resume_step], *losses]
    gap = max(abs(after - before) for after, before in zip(losses, reference[resume_step:], strict=True))
    figure = plot_losses(
        reference,
        resumed,
        resume_step=resume_step,
        title=f"Resume at step {resume_step}: {label}",
        labels=("reference (never interrupted)", label),
    )
    text = f"state right after the restore: {diff.summary(limit=4)}\nlargest loss gap after the resume: {gap:.4e}"
    return figure, text
