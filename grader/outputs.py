"""Refresh a solution notebook's stored outputs: execute it, keep only the outputs nbval compares.

Solution notebooks are committed without outputs, except in cells marked `# NBVAL_CHECK_OUTPUT`,
whose output nbval checks on every test run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat

from grader.execute import SlicedClient

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and CHECK_MARKER in cell.source


def strip(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop every output and execution count, except in checked cells (nbval skips a cell whose
    stored outputs have no execution count); drop run metadata, and the widget state (random model ids
    that would change the file on every refresh)."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if not is_checked(cell):
            cell.outputs = []
            cell.execution_count = None
    return notebook


def refresh(path: Path, timeout: int = 300) -> None:
    """Execute `path` in its own folder with this Python's kernel (sliced waits); store the stripped result."""
    notebook = nbformat.read(path, as_version=4)
    # Quiet, as under make test: no progress bars among the outputs nbval compares.
    quiet = {**os.environ, "RESUMABLE_QUIET": "1"}
    client = SlicedClient(notebook, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=quiet)
    nbformat.write(strip(notebook), path)


def main(argv: list[str]) -> int:
    usage = "usage: python -m grader outputs NOTEBOOK.ipynb [...]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    missing = [name for name in argv if not name.endswith(".ipynb") or not Path(name).is_file()]
    if missing:
        print(f"grader outputs: not a notebook file: {', '.join(missing)}\n{usage}", file=sys.stderr)
        return 2
    for name in argv:
        refresh(Path(name))
        print(f"refreshed {name}")
    return 0
