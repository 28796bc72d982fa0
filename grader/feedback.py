"""Render feedback HTML with nbgrader's own feedback template, from scores decided by the grader."""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

# nbgrader's package folder, found without importing nbgrader (which takes seconds)
NBGRADER = Path(importlib.util.find_spec("nbgrader").origin).resolve().parent


_rendering = threading.Lock()


@functools.lru_cache(maxsize=1)
def exporter() -> HTMLExporter:
    """The exporter nbgrader's generate_feedback configures (template `feedback`, bootstrap CSS)."""
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [str(NBGRADER / "server_extensions" / "formgrader" / "templates")]
    config.HTMLExporter.extra_template_paths = [
        str(NBGRADER / "server_extensions" / "formgrader" / "static" / "node_modules" / "bootstrap" / "dist" / "css")
    ]
    return HTMLExporter(config=config)


def render(
    notebook: nbformat.NotebookNode, name: str, student: str, assignment: str, score: float, max_score: float
) -> str:
    """HTML for one graded notebook; its cells carry metadata.nbgrader.score/points (set by the grader).

    One exporter per process, its templates loaded once, used by one thread at a time (the grading process
    renders every student's pages: 0.5 s for the first, far less for the next)."""
    resources = {
        "nbgrader": {
            "notebook": Path(name).stem,
            "assignment": assignment,
            "student": student,
            "score": score,
            "max_score": max_score,
            "late_penalty": 0,
        }
    }
    with _rendering:
        html, _ = exporter().from_notebook_node(notebook, resources=resources)
    return html
