"""Crash lab: crash a run at step k, resume it from its checkpoints with a pitfall, compare with the reference."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flax import nnx
from matplotlib.figure import Figure

from resumable.diff import StateDiff, max_param_difference, state_diff
from resumable.pipeline import Pipeline
from resumable.training import RunConfig, Triple, fresh_triple, named
from resumable.views.plots import plot_losses, png

RestoreTriple = Callable[[str, Pipeline, nnx.Module, nnx.Optimizer], None]
TrainLoop = Callable[..., list[float]]
LatestCheckpoint = Callable[..., int]

PITFALLS = ("none", "no nnx.update", "no pipeline", "no optimizer", "no RNG streams", "off-by-one resume step")


def with_pitfall(restore_triple: RestoreTriple, pitfall: str, config: RunConfig) -> RestoreTriple:
    """`restore_triple` made wrong in the way `pitfall` names (restores into the live objects only in part).

    "no nnx.update": the checkpoint lands in throwaway objects, as when a restored `nnx.state` copy is
    never written back; "no pipeline" / "no optimizer": that part stays fresh; "no RNG streams": every
    RNG stream (shuffle, noise, dropout) is put back to its fresh state after the restore.
    "none" and "off-by-one resume step" (a bug in the step count, not in the restore: see `CrashLab.run`)
    restore correctly.
    """
    if pitfall not in PITFALLS:
        raise ValueError(f"unknown pitfall {pitfall!r}; choose one of {PITFALLS}")

    def restore(path: str, pipeline: Pipeline, model: nnx.Module, optimizer: nnx.Optimizer) -> None:
        if pitfall in ("none", "off-by-one resume step"):
            restore_triple(path, pipeline, model, optimizer)
            return
        scratch_pipeline, scratch_model, scratch_optimizer = fresh_triple(config)
        if pitfall == "no nnx.update":
            restore_triple(path, scratch_pipeline, scratch_model, scratch_optimizer)
        elif pitfall == "no pipeline":
            restore_triple(path, scratch_pipeline, model, optimizer)
        elif pitfall == "no optimizer":
            restore_triple(path, pipeline, model, scratch_optimizer)
        else:
            restore_triple(path, pipeline, model, optimizer)
            if pitfall == "no RNG streams":
                for live, fresh in ((pipeline, scratch_pipeline), (model, scratch_model)):
                    nnx.update(live, nnx.state(fresh, nnx.RngState))

    return restore


@dataclass
class Outcome:
    """One crash-and-resume: the curves, where it resumed from, and how the final state compares."""

    crash_step: int
    checkpoint_every: int
    pitfall: str
    resume_step: int
    reference: list[float]
    resumed: list[float]
    diff: StateDiff
    max_param_difference: float

    @property
    def max_loss_difference(self) -> float:
        """max |resumed - reference| over the steps both curves have."""
        common = min(len(self.resumed), len(self.reference))
        gaps = np.abs(np.asarray(self.resumed[:common], np.float64) - np.asarray(self.reference[:common], np.float64))
        return float(gaps.max()) if common else 0.0

    def report(self, limit: int = 3) -> str:
        redone = self.crash_step - self.resume_step
        where = f"step_{self.resume_step}" if self.resume_step else "scratch (no checkpoint yet)"
        return "\n".join(
            [
                f"crash at step {self.crash_step}, checkpoint every {self.checkpoint_every} -> resumed from "
                f"{where} ({redone} step{'' if redone == 1 else 's'} redone), pitfall: {self.pitfall}",
                f"max |resumed - reference| = {self.max_loss_difference:.4e} "
                f"(resumed curve: {len(self.resumed)} losses, reference: {len(self.reference)})",
                f"final state: {self.diff.summary(limit)}",
            ]
        )


@dataclass
class CrashLab:
    """The three phases with the student's functions, cached so that moving a slider redraws fast.

    Inputs: the student's `restore_triple(path, pipeline, model, optimizer)`, `train_with_checkpoints(...)`
    (which saves with the student's `save_triple`) and `latest_checkpoint(checkpoint_dir, at_or_before)`,
    a `RunConfig` and the run length.
    Cached: the reference run (once); per checkpoint interval c, one crash run in its own folder, continued
    when a later crash step needs more checkpoints (the checkpoints at or before k are exactly those a run
    stopped at k leaves); per (c, resume step, pitfall), the resumed run. A resumed run writes no
    checkpoints of its own: they would not change its losses.
    """

    restore_triple: RestoreTriple
    train_with_checkpoints: TrainLoop
    latest_checkpoint: LatestCheckpoint
    config: RunConfig = field(default_factory=RunConfig)
    num_steps: int = 60
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="crashlab-"))
    _reference: tuple[list[float], Triple] | None = field(default=None, init=False, repr=False)
    _crash_runs: dict[int, tuple[Triple, list[float]]] = field(default_factory=dict, init=False, repr=False)
    _resumed: dict[tuple[int, int, str], tuple[list[float], StateDiff, float]] = field(
        default_factory=dict, init=False, repr=False
    )

    def reference(self) -> tuple[list[float], Triple]:
        """The uninterrupted run's losses and its (pipeline, model, optimizer) after the last step (run once)."""
        if self._reference is None:
            triple = fresh_triple(self.config)
            losses = self.train_with_checkpoints(*triple, self.num_steps, None, None)
            self._reference = [float(loss) for loss in losses], triple
        return self._reference

    def checkpoint_dir(self, checkpoint_every: int) -> str:
        return os.path.join(self.workdir, f"every_{checkpoint_every}")

    def crash(self, crash_step: int, checkpoint_every: int) -> list[float]:
        """Run (or continue) the crash run for this interval to at least `crash_step`; return its first k losses."""
        if checkpoint_every not in self._crash_runs:
            os.makedirs(self.checkpoint_dir(checkpoint_every), exist_ok=True)
            self._crash_runs[checkpoint_every] = fresh_triple(self.config), []
        triple, losses = self._crash_runs[checkpoint_every]
        if crash_step > len(losses):
            losses += self.train_with_checkpoints(
                *triple,
                self.num_steps,
                self.checkpoint_dir(checkpoint_every),
                checkpoint_every,
                stop_at=crash_step,
                start_step=len(losses),
            )
        return losses[:crash_step]

    def run(self, crash_step: int, checkpoint_every: int, pitfall: str = "none") -> Outcome:
        """Crash at `crash_step`, resume from the latest checkpoint at or before it with `pitfall`, compare."""
        if not 1 <= crash_step <= self.num_steps or checkpoint_every < 1:
            raise ValueError(f"need 1 <= crash_step <= {self.num_steps} and checkpoint_every >= 1")
        reference_losses, reference_triple = self.reference()
        crash_losses = self.crash(crash_step, checkpoint_every)
        checkpoint_dir = self.checkpoint_dir(checkpoint_every)
        resume_step = int(self.latest_checkpoint(checkpoint_dir, at_or_before=crash_step))
        key = (checkpoint_every, resume_step, pitfall)
        if key not in self._resumed:
            restore = with_pitfall(self.restore_triple, pitfall, self.config)
            triple = fresh_triple(self.config)
            if resume_step:
                restore(os.path.join(checkpoint_dir, f"step_{resume_step}"), *triple)
            start_step = resume_step
            if pitfall == "off-by-one resume step" and resume_step:
                # The loop is told one step fewer is done than the checkpoint holds: it trains one batch too
                # many, and every loss after the resume lands one step early.
                start_step = resume_step - 1
            tail = self.train_with_checkpoints(*triple, self.num_steps, None, None, start_step=start_step)
            resumed = crash_losses[:start_step] + [float(loss) for loss in tail]
            diff = state_diff(named(triple), named(reference_triple), names=("resumed", "reference"))
            self._resumed[key] = resumed, diff, max_param_difference(triple[1], reference_triple[1])
        return Outcome(crash_step, checkpoint_every, pitfall, resume_step, reference_losses, *self._resumed[key])

    def draw(self, crash_step: int, checkpoint_every: int, pitfall: str = "none") -> tuple[Figure, str]:
        """The widget's callback: reference vs resumed curves, and the report (determinism line, state diff)."""
        outcome = self.run(crash_step, checkpoint_every, pitfall)
        figure = plot_losses(
            outcome.reference,
            outcome.resumed,
            crash_step=crash_step,
            resume_step=outcome.resume_step,
            title=f"crash at {crash_step}, checkpoint every {checkpoint_every}, pitfall: {pitfall}",
        )
        return figure, outcome.report()


def widget(lab: CrashLab, crash_step: int = 30, checkpoint_every: int = 10) -> Any:
    """Sliders for the crash step and the checkpoint interval, a pitfall menu, wired to `lab.draw`."""
    import ipywidgets
    from IPython.display import Image, display

    def show(crash_step: int, checkpoint_every: int, pitfall: str) -> None:
        figure, text = lab.draw(crash_step, checkpoint_every, pitfall)
        print(text)
        display(Image(png(figure)))

    style = {"description_width": "initial"}
    return ipywidgets.interactive(
        show,
        crash_step=ipywidgets.IntSlider(
            crash_step, min=1, max=lab.num_steps - 1, description="crash step", continuous_update=False, style=style
        ),
        checkpoint_every=ipywidgets.IntSlider(
            checkpoint_every,
            min=1,
            max=max(1, lab.num_steps - 1),
            description="checkpoint every",
            continuous_update=False,
            style=style,
        ),
        pitfall=ipywidgets.Dropdown(options=PITFALLS, value="none", description="pitfall", style=style),
    )
