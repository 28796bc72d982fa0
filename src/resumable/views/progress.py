"""A progress bar for training loops: tqdm's (a widget in a notebook, text elsewhere), off in tests and grading."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from tqdm.auto import tqdm

QUIET_VARIABLES = ("RESUMABLE_QUIET", "NBGRADER_EXECUTION", "PYTEST_CURRENT_TEST")


def progress[Item](items: Iterable[Item], *, description: str = "", total: int | None = None) -> Iterator[Item]:
    """Yield `items` through `tqdm.auto.tqdm` (rate, time left), silent when a quiet variable is set.

    Quiet when any of RESUMABLE_QUIET, NBGRADER_EXECUTION (autograding) or PYTEST_CURRENT_TEST is set.
    """
    quiet = any(os.environ.get(name) for name in QUIET_VARIABLES)
    return iter(tqdm(items, desc=description or None, total=total, disable=quiet, mininterval=0.2))
