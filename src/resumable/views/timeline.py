"""Timeline of a run made of several processes: steps trained, checkpoints saved, kills and resumes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from resumable.checkpoints.jobs import DEFAULT_CONFIG, JobRecord, Kill, run_job, step_folders, temporary_folders
from resumable.checkpoints.manager import open_manager
from resumable.diff import state_diff
from resumable.training import RunConfig, make_triple

ENDINGS = {
    "killed": ("X", "tab:red", "SIGKILL"),
    "killed during save": ("X", "tab:red", "SIGKILL during save"),
    "preempted": ("s", "tab:orange", "SIGTERM: saved, exit 0"),
    "done": ("*", "tab:green", "done"),
}


def plot_timeline(
    records: Sequence[JobRecord],
    *,
    steps: int,
    kept: Sequence[int] = (),
    reference: Sequence[float] | None = None,
    title: str = "One training run, several processes",
) -> Figure:
    """Top: one lane per process, from the step it started at to the last step it finished, its saves and
    how it ended; a dotted arrow from each kill to the step the next process resumed from. Bottom (if
    `reference` is given): every process's losses over the reference curve, and the largest difference.

    Inputs: the processes' JobRecords in order; the run length; `kept`: the steps on disk at the end
    (filled circles; hollow ones were deleted by the keep-last-N policy); the reference losses (index 0 is step 1).
    Output: the matplotlib Figure (not shown; a notebook displays it as the cell's value).
    """
    panels = 1 if reference is None else 2
    figure, axes = plt.subplots(
        panels,
        1,
        figsize=(8, 1.2 + 0.55 * len(records) + 2.4 * (panels - 1)),
        sharex=True,
        squeeze=False,
        layout="constrained",
        height_ratios=[max(len(records), 1) * 0.55 + 0.8] + [2.4] * (panels - 1),
    )
    lanes = axes[0, 0]
    kept_steps = set(int(step) for step in kept)
    for lane, record in enumerate(records):
        y = len(records) - lane
        lanes.plot([record.start_step, record.last_step], [y, y], color="0.3", linewidth=3, solid_capstyle="butt")
        for step in record.saves_started:
            interrupted = record.ending == "killed during save" and step == max(record.saves_started)
            face = "tab:blue" if step in kept_steps else "white"
            lanes.plot(
                step,
                y,
                "o",
                markersize=15 if interrupted else 8,
                markerfacecolor="white" if interrupted else face,
                markeredgecolor="tab:red" if interrupted else "tab:blue",
                markeredgewidth=1.8,
            )
        marker, colour, _ = ENDINGS[record.ending]
        lanes.plot(record.last_step, y, marker, color=colour, markersize=11, markeredgecolor="black")
        lanes.annotate(
            f"process {lane + 1}: start {record.start_step}, {record.ending} at {record.last_step}"
            f" (exit {record.exit_code})",
            (0, y),
            xytext=(2, 7),
            textcoords="offset points",
            fontsize=8,
        )
        if lane + 1 < len(records):
            following = records[lane + 1]
            lanes.annotate(
                "",
                xy=(following.start_step, y - 1),
                xytext=(record.last_step, y),
                arrowprops={"arrowstyle": "->", "linestyle": ":", "color": "tab:green"},
            )
    lanes.set_yticks(range(1, len(records) + 1), [f"{len(records) - y + 1}" for y in range(1, len(records) + 1)])
    lanes.set_ylabel("process")
    lanes.set_ylim(0.4, len(records) + 0.8)
    lanes.set_xlim(-0.5, steps + 0.8)
    lanes.set_title(title)
    legend = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="tab:blue",
            markeredgecolor="tab:blue",
            label="checkpoint (kept)",
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="white",
            markeredgecolor="tab:blue",
            label="checkpoint (deleted: keep last N)",
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markerfacecolor="white",
            markeredgecolor="tab:red",
            label="save interrupted (never committed)",
        ),
        *[
            Line2D([], [], marker=m, linestyle="", color=c, markeredgecolor="black", label=text)
            for m, c, text in dict.fromkeys(ENDINGS.values())
            if any(ENDINGS[r.ending][2] == text for r in records)
        ],
        Line2D([], [], linestyle=":", color="tab:green", label="resume from latest checkpoint"),
    ]
    lanes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if reference is not None:
        curves = axes[1, 0]
        reference_array = np.asarray(reference, dtype=np.float64)
        curves.plot(
            np.arange(1, len(reference_array) + 1),
            reference_array,
            color="0.75",
            linewidth=5,
            label="reference (one process, never killed)",
        )
        gap = 0.0
        for lane, record in enumerate(records):
            trained = sorted(record.losses)
            values = np.asarray([record.losses[step] for step in trained], dtype=np.float64)
            curves.plot(trained, values, ".", markersize=5, label=f"process {lane + 1}")
            if trained:
                gap = max(gap, float(np.abs(values - reference_array[np.asarray(trained) - 1]).max()))
        curves.set_xlabel("step")
        curves.set_ylabel("loss")
        curves.set_title(f"losses of every process vs the reference: max |difference| = {gap:.4e}", fontsize=10)
        curves.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    else:
        lanes.set_xlabel("step")
    plt.close(figure)
    return figure


def kill_and_resume(
    functions: Path | str,
    resume_or_start: Callable[..., int],
    *,
    kill_step: int,
    kill: Kill = "sigkill",
    steps: int,
    every: int,
    keep: int,
    config: RunConfig = DEFAULT_CONFIG,
    reference: Sequence[float],
    reference_state: Mapping[str, Any],
) -> Figure:
    """The kill-step picker's callback: train in a process, end it at `kill_step` the way `kill` says, resume
    in a new process, and draw the timeline with the verdict in its title.

    Inputs: the functions module the processes import (`write_functions_module`), the `resume_or_start`
    function this kernel uses to load the final checkpoint, the kill point and kind (`KILLS`; for
    "sigkill_during_save" the first save at or after `kill_step` is interrupted), the run's settings,
    the reference losses, and the reference state after `steps` steps as {"pipeline": ..., "model": ...,
    "optimizer": ...} (pure dicts, Modules or restored trees).
    Output: the timeline Figure. Runs in a fresh temporary folder, removed afterwards.
    """
    if kill == "sigkill_during_save":
        kill_step = min(-(-kill_step // every) * every, steps)
    folder = Path(tempfile.mkdtemp(prefix="resumable-kill-"))
    try:
        directory = folder / "checkpoints"
        settings = {"steps": steps, "every": every, "keep": keep, "config": config}
        first = run_job(functions, directory, kill=kill, at_step=kill_step, **settings)
        leftovers = temporary_folders(directory)
        second = run_job(functions, directory, **settings)
        kept = [int(name) for name in step_folders(directory)]
        resumed = make_triple(config)
        manager = open_manager(directory, every=every, keep=keep)
        resume_or_start(manager, *resumed)
        manager.close()
        names = ("pipeline", "model", "optimizer")
        verdict = state_diff(reference_state, dict(zip(names, resumed, strict=True)), names=("reference", "resumed"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    state = "every state leaf identical" if verdict.identical else f"{len(verdict.differences)} leaves differ"
    leftover = f"; left behind: {', '.join(leftovers)}" if leftovers else ""
    title = f"{kill} at step {kill_step}, resumed from step {second.start_step}\n{state}{leftover}"
    return plot_timeline([first, second], steps=steps, kept=kept, reference=reference, title=title)
