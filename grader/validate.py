"""`python -m grader validate NOTEBOOK.ipynb [...]`: nbgrader's validation with an exit code that tells.

`nbgrader validate` prints failures but always exits 0. This runs nbgrader's own Validator (the notebook is
executed as its owner: validate your own work, grade others' with `python -m grader grade`) and exits
0 when every test cell passes and no other cell raised, 1 when a test fails, any other cell raises (a locked
cell of the lesson included: each is named) or a read-only cell was changed, 2 when a file cannot be validated
at all (missing, not a notebook). Cells run through grader.nbgrader_execute.SlicedExecute: the kernel talks
over Unix sockets (no TCP warning in what it prints), and a missed reply costs a nudge, not the cell timeout.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from nbgrader.validator import Validator
from traitlets import List
from traitlets.config import Config

from grader.nbgrader_execute import sliced

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class EveryCellValidator(Validator):
    """nbgrader's Validator, failing also on any code cell that raised; it remembers which cells failed."""

    preprocessors = List(sliced(Validator.preprocessors.default(), "validate"))

    def _get_failed_cells(self, nb):
        graded = {id(cell) for cell in super()._get_failed_cells(nb)}
        self.failed_names = {}
        for index, cell in enumerate(nb.cells):
            raised = cell.cell_type == "code" and any(out.output_type == "error" for out in cell.outputs)
            if id(cell) in graded or raised:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                what = "a test failed in" if id(cell) in graded else "an error in"
                self.failed_names[id(cell)] = f"{what} cell {index}" + (f" ({grade_id})" if grade_id else "")
        failed = [cell for cell in nb.cells if id(cell) in self.failed_names]
        self.failed_order = [self.failed_names[id(cell)] for cell in failed]
        return failed


def validate(path: Path, timeout: int = 300) -> tuple[int, list[str]]:
    """(exit code, report lines) for one notebook."""
    config = Config()
    config.ExecutePreprocessor.timeout = timeout
    try:
        validator = EveryCellValidator(config=config)
        results = validator.validate(str(path))
    except Exception as error:  # unreadable, invalid, kernel failure
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        return 2, [f"{path}: cannot be validated: {type(error).__name__}: {first}"]
    lines = []
    for cell in results.get("type_changed", []):
        lines.append(f"a cell was changed from {cell['old_type']} to {cell['new_type']}:\n{cell['source'][:300]}")
    for cell in results.get("changed", []):
        lines.append(f"a read-only cell was changed:\n{cell['source'][:300]}")
    for name, cell in zip(getattr(validator, "failed_order", []), results.get("failed", []), strict=False):
        error = ANSI.sub("", cell["raw_error"])[-1500:]
        lines.append(f"{name}:\n{cell['source'][:300]}\n{error}")
    if lines:
        return 1, [f"{path}: {len(lines)} problem(s)", *lines]
    return 0, [f"{path}: success, every test cell passed and no cell raised"]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m grader validate NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    worst = 0
    for name in argv:
        path = Path(name)
        if not path.is_file():
            code, lines = 2, [f"{path}: no such file"]
        else:
            code, lines = validate(path)
        print("\n".join(lines), file=sys.stderr if code else sys.stdout)
        worst = max(worst, code)
    return worst
