"""Loss-curve plots: reference vs resumed, with the crash and resume steps marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib costs ~30 MB per kernel: imported only when a plot is drawn
    from matplotlib.figure import Figure


def plot_losses(
    reference: Sequence[float],
    resumed: Sequence[float] | None = None,
    *,
    crash_step: int | None = None,
    resume_step: int | None = None,
    title: str = "Loss per step",
    labels: tuple[str, str] = ("reference (never interrupted)", "resumed"),
) -> Figure:
    """Two panels: the loss curves, and |resumed - reference| per step (exactly 0 for a correct resume).

    Inputs: per-step losses (index 0 is step 1); optional crash and resume steps to mark.
    Output: the matplotlib Figure (not shown; a notebook displays it as the cell's value).
    """
    import matplotlib.pyplot as plt

    reference_array = np.asarray(reference, dtype=np.float64)
    steps = np.arange(1, len(reference_array) + 1)
    panels = 1 if resumed is None else 2
    width, height = 7.0, 2.6 * panels + 0.6
    figure, axes = plt.subplots(panels, 1, figsize=(width, height), sharex=True, squeeze=False)
    # Fixed margins (in inches) instead of a layout engine: constrained layout measured every text on each
    # draw and took half of a redraw's 0.5 s in notebook 05's crash lab.
    figure.subplots_adjust(
        left=0.85 / width, right=1 - 0.15 / width, top=1 - 0.35 / height, bottom=0.5 / height, hspace=0.45 / 2.6
    )
    curves = axes[0, 0]
    curves.plot(steps, reference_array, color="0.35", linewidth=2.5, label=labels[0])
    if resumed is not None:
        resumed_array = np.asarray(resumed, dtype=np.float64)
        resumed_steps = np.arange(1, len(resumed_array) + 1)
        curves.plot(resumed_steps, resumed_array, color="tab:orange", linewidth=1.2, linestyle="--", label=labels[1])
        common = min(len(reference_array), len(resumed_array))
        gap = np.abs(resumed_array[:common] - reference_array[:common])
        difference = axes[1, 0]
        difference.plot(resumed_steps[:common], gap, color="tab:red", marker=".", linewidth=1)
        difference.set_ylabel("|resumed - reference|")
        difference.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))  # short ticks fit the fixed margin
        difference.set_title(f"max |difference| = {gap.max() if common else 0.0:.4e}", fontsize=10)
        difference.set_xlabel("step")
    else:
        curves.set_xlabel("step")
    markers = ((crash_step, "tab:red", "crash at", -12), (resume_step, "tab:green", "resume from", -24))
    for marker_step, colour, text, offset in markers:
        if marker_step is not None:
            for axis in axes[:, 0]:
                axis.axvline(marker_step, color=colour, linestyle=":", linewidth=1.5)
            curves.annotate(
                f"{text} {marker_step}",
                (marker_step, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, offset),
                textcoords="offset points",
                color=colour,
                fontsize=9,
            )
    curves.set_ylabel("loss")
    curves.set_title(title)
    curves.legend(loc="lower left", fontsize=9, framealpha=0.9)  # early losses are high: that corner is empty
    plt.close(figure)
    return figure


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes, at its own size and dpi, for a widget to display on every redraw.

    IPython's inline backend crops to `bbox_inches="tight"`, which draws the figure twice; these figures have
    fixed margins that already fit, so one draw is enough (about 0.1 s less per redraw).
    """
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()
