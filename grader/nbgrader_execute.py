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


def autograde_preprocessors() -> list[type]:
    """nbgrader autograde's own preprocessors, `SlicedExecute` in the place of `Execute`."""
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    if Execute not in default:
        raise RuntimeError("this nbgrader's autograde no longer runs its Execute: see grader/nbgrader_execute.py")
    return [SlicedExecute if preprocessor is Execute else preprocessor for preprocessor in default]
