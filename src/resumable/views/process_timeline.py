"""Timeline of a run made of several multi-process launches: one row per process, its steps, saves and ending."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from resumable.checkpoints.processes import RunRecord

ENDINGS = {
    "killed": ("X", "tab:red", "SIGKILL"),
    "killed during save": ("X", "tab:red", "SIGKILL during a save"),
    "peer lost": ("v", "tab:purple", "a peer died: JAX ended it"),
    "preempted": ("s", "tab:orange", "preemption agreed: saved, exit 0"),
    "done": ("*", "tab:green", "done"),
}


def plot_process_timeline(
    launches: Sequence[tuple[str, RunRecord]],
    *,
    steps: int,
    uncommitted: Sequence[int] = (),
    title: str = "Several JAX processes, killed and restarted",
) -> Figure:
    """One row per process of every launch, top to bottom in launch order: a bar from the step it started
    at to the last step it finished, a circle per checkpoint save it started (hollow red: never committed),
    a marker for how it ended (with the seconds a survivor took to learn that a peer died).

    Inputs: (label, RunRecord) per launch, in order; the run length; the steps whose save was interrupted.
    Output: the matplotlib Figure (not shown; a notebook displays it as the cell's value).
    """
    rows = [(label, record, process) for label, record in launches for process in record.processes]
    figure, lanes = plt.subplots(figsize=(9, 1.0 + 0.42 * len(rows)), layout="constrained")
    interrupted = {int(step) for step in uncommitted}
    for row, (label, _record, process) in enumerate(rows):
        y = len(rows) - row
        colour = f"C{[name for name, _ in launches].index(label)}"
        lanes.plot([process.start_step, process.last_step], [y, y], color=colour, linewidth=4, solid_capstyle="butt")
        for step in process.saves_started:
            lost = step in interrupted and process.ending in ("killed during save", "peer lost")
            lanes.plot(step, y, "o", markersize=8, markerfacecolor="white",
                       markeredgecolor="tab:red" if lost else "tab:blue", markeredgewidth=1.8)
        marker, marker_colour, _ = ENDINGS[process.ending]
        lanes.plot(process.last_step + 0.2, y, marker, color=marker_colour, markersize=10, markeredgecolor="black")
        note = f" after {process.noticed_after:.1f} s" if process.noticed_after is not None else ""
        lanes.annotate(f"{process.ending}{note}", (process.last_step + 0.45, y), va="center", fontsize=7)
    lanes.set_yticks(
        range(1, len(rows) + 1),
        [f"{label}: p{process.process} of {record.num_processes}x{record.devices}"
         for label, record, process in reversed(rows)],
        fontsize=8,
    )
    lanes.set_xlim(-0.3, steps + 3.0)
    lanes.set_ylim(0.4, len(rows) + 0.6)
    lanes.set_xlabel("step")
    lanes.set_title(title, fontsize=10)
    legend = [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="tab:blue",
               label="save started (committed)"),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="tab:red",
               label="save never committed"),
        *[Line2D([], [], marker=m, linestyle="", color=c, markeredgecolor="black", label=text)
          for ending, (m, c, text) in ENDINGS.items() if any(p.ending == ending for _, _, p in rows)],
    ]
    lanes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    lanes.grid(axis="x", alpha=0.3)
    plt.close(figure)
    return figure
