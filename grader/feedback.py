"""Render feedback HTML with nbgrader's own feedback template, from scores decided by the grader."""

from __future__ import annotations

import copy
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
        html, _ = exporter().from_notebook_node(without_widget_reprs(notebook), resources=resources)
    return html


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _pictures(model_id: str, states: dict, seen: set[str]) -> list[dict]:
    """The image outputs an Output widget `model_id`, or any widget inside it, last showed (from saved state)."""
    if model_id in seen or model_id not in states:
        return []
    seen.add(model_id)
    state = states[model_id].get("state", {})
    found = [out["data"] for out in state.get("outputs", []) if "image/png" in out.get("data", {})]
    for child in state.get("children", []):
        found += _pictures(str(child).removeprefix("IPY_MODEL_"), states, seen)
    return found


TREESCOPE_LINE = "[Flax's tree view (nnx.display, treescope): it is drawn only in a running notebook]"


def _is_treescope(output: dict) -> bool:
    """An output of treescope (nnx.display): HTML and scripts with a random id on every run."""
    html = output.get("data", {}).get("text/html", "")
    return "<treescope-" in ("".join(html) if isinstance(html, list) else str(html))


def without_widget_reprs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy whose widget outputs show the widget's last picture, or one line saying what it was: never its
    repr (`interactive(children=(IntSlider(...`), which is all a feedback page could print of a live widget.
    Flax's tree view (treescope) is one line too: its HTML differs on every run (random ids), and two gradings
    of one notebook must give the same page."""
    notebook = copy.deepcopy(notebook)
    states = notebook.metadata.get("widgets", {}).get(WIDGET_VIEW.replace("view", "state"), {}).get("state", {})
    for cell in notebook.cells:
        if any(_is_treescope(output) for output in cell.get("outputs", [])):
            kept = [output for output in cell.outputs if not _is_treescope(output)]
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=TREESCOPE_LINE + "\n"), *kept]
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            pictures = _pictures(data[WIDGET_VIEW].get("model_id", ""), states, set())
            kind = str(data.get("text/plain", "widget")).split("(")[0]
            line = f"[an interactive {kind} widget: it is drawn only in a running notebook]"
            output["data"] = {"image/png": pictures[-1]["image/png"]} if pictures else {"text/plain": line}
    return notebook
