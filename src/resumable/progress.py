"""A progress bar for training loops: a widget in a notebook, silent in tests and in plain Python."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")

QUIET_VARIABLES = ("RESUMABLE_QUIET", "NBGRADER_EXECUTION", "PYTEST_CURRENT_TEST")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def progress(items: Iterable[Item], *, description: str = "", total: int | None = None) -> Iterator[Item]:
    """Yield `items`, showing a progress bar in a Jupyter kernel unless a quiet variable is set.

    Quiet when any of RESUMABLE_QUIET, NBGRADER_EXECUTION (autograding) or PYTEST_CURRENT_TEST is set.
    """
    if any(os.environ.get(name) for name in QUIET_VARIABLES) or not _in_notebook():
        yield from items
        return
    import ipywidgets
    from IPython.display import display

    if total is None:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    bar = ipywidgets.IntProgress(value=0, min=0, max=total or 1, description=description)
    display(bar)
    update_every = max(1, (total or 100) // 50)
    for count, item in enumerate(items, start=1):
        yield item
        if count % update_every == 0:
            bar.value = count
    bar.value = bar.max
    bar.bar_style = "success"
