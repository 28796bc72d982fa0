"""Time notebook 05's crash-lab redraw, with the solution notebook's own functions."""

from __future__ import annotations

import json
import statistics
import time

import matplotlib.pyplot as plt

from grader.paths import SOLUTIONS
from resumable.views.plots import png

NOTEBOOK = SOLUTIONS / "05_triple" / "05_triple.ipynb"
# Crash steps a student might pick after the first draw (checkpoint every 10, 60 steps): on, between and
# around checkpoints and epoch boundaries.
CRASH_STEPS = (31, 45, 12, 58, 25, 40, 7, 50, 16, 33, 59, 21, 48, 3, 36, 10)


def solution_functions() -> dict:
    """Run the setup cell and the solution cells of notebook 05 in a fresh namespace; return it."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace: dict = {}
    setup = next(cell for cell in cells if cell["cell_type"] == "code")
    for cell in [setup] + [cell for cell in cells if cell["metadata"].get("nbgrader", {}).get("solution")]:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    return namespace


def time_redraws(changes: int = 10, checkpoint_every: int = 10) -> list[tuple[float, bool]]:
    """(seconds, trained) per redraw after the first: `CrashLab.draw` (the slider's callback) plus the PNG
    that the widget displays. `trained` is True when the change needed a run
    not yet cached (a resume step not seen before); otherwise the lab reuses its cached runs."""
    namespace = solution_functions()
    lab = namespace["CrashLab"](
        namespace["restore_triple"],
        namespace["train_with_checkpoints"],
        namespace["latest_checkpoint"],
        namespace["CONFIG"],
        num_steps=60,
    )
    plt.close(lab.draw(30, checkpoint_every)[0])
    seconds = []
    for crash_step in (CRASH_STEPS * (changes // len(CRASH_STEPS) + 1))[:changes]:
        cached = len(lab._resumed)
        start = time.perf_counter()
        figure, _ = lab.draw(crash_step, checkpoint_every)
        png(figure)  # the widget displays the figure as this PNG
        seconds.append((time.perf_counter() - start, len(lab._resumed) > cached))
        plt.close(figure)
    return seconds


if __name__ == "__main__":
    timings = time_redraws(16)
    print(f"median redraw {statistics.median(t for t, _ in timings) * 1000:.0f} ms over {len(timings)} changes")
    print(f"median of those that trained: {statistics.median(t for t, trained in timings if trained) * 1000:.0f} ms")
