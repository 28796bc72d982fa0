"""nbgrader's Execute preprocessor with the grader's sliced waits (grader.execute.SlicedWaits).

Plain nbgrader waits for each cell's reply with one long poll, which can miss a reply that has arrived: the
kernel sits idle while nbgrader waits out its whole cell timeout (300 s in this course). The course's
nbgrader_config.py puts `SlicedExecute` in `nbgrader autograde`'s place of `Execute`; `python -m grader
validate` uses it too.
"""

from __future__ import annotations

from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute

from grader.execute import SlicedWaits


class SlicedExecute(SlicedWaits, Execute):
    """nbgrader's Execute, its waits sliced and its kernel on Unix sockets."""


def sliced(preprocessors: list[type], owner: str) -> list[type]:
    """`preprocessors` (nbgrader's own list for `owner`), `SlicedExecute` in the place of `Execute`."""
    if Execute not in preprocessors:
        raise RuntimeError(f"this nbgrader's {owner} no longer runs its Execute: see grader/nbgrader_execute.py")
    return [SlicedExecute if preprocessor is Execute else preprocessor for preprocessor in preprocessors]


def autograde_preprocessors() -> list[type]:
    """nbgrader autograde's own preprocessors, `SlicedExecute` in the place of `Execute`."""
    return sliced(Autograde.class_traits()["autograde_preprocessors"].default(), "autograde")
