"""Every wrong answer of tests/wrong_answers.py fails a visible self-check whose message names its cause.

The tables run in nbval's own kernel, after the solution notebook's last cell (one item per notebook,
`solutions/NN/NN.ipynb::wrong answers`, added by the root conftest.py), so that the solution runs once for
both: nbval checks its cells, then this item uses the kernel they left. The notebook's cells must all have
passed. Then, for each wrong answer, its answer cell is run in the changed form, then the graded cells after
it that use its functions (visible part and hidden part apart), then the solution's answer again. Asserted: a
visible self-check fails with the cause in its message; every failing hidden test has a message beyond the
exception's name; the notebook's folder holds the same files afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from grader import markers
from grader.assemble import nbgrader_meta
from grader.paths import SOLUTIONS, source_files
from tests.wrong_answers import TABLES, dependents, notebook_names_used, solution_answer

HIDDEN = markers.BEGIN_HIDDEN
CELL_TIMEOUT = 300.0
NAME = "wrong answers"

_failed_cells: dict[str, list[str]] = {}  # notebook file -> its nbval items that failed, in this process


@dataclass
class Check:
    grade_id: str
    index: int
    visible: str  # the source before the hidden tests ("" when the cell is hidden only)
    hidden: str


def checks_after(notebook: nbformat.NotebookNode, answer_id: str) -> list[Check]:
    """The graded test cells after answer `answer_id` that call one of its functions or classes (read from
    the notebook's globals, see `notebook_names_used`), directly or through a function the notebook defines."""
    cells = notebook.cells
    start = next(i for i, cell in enumerate(cells) if nbgrader_meta(cell).get("grade_id") == answer_id)
    names = dependents(notebook, set(re.findall(r"^(?:def|class) (\w+)", cells[start].source, flags=re.MULTILINE)))
    found = []
    for index in range(start + 1, len(cells)):
        meta = nbgrader_meta(cells[index])
        source = cells[index].source
        if meta.get("grade") and not meta.get("solution") and names & notebook_names_used(source):
            visible, marker, hidden = source.partition(HIDDEN)
            visible = visible if visible.strip().replace('"""', "").strip() else ""
            found.append(Check(meta["grade_id"], index, visible if marker else source, marker + hidden))
    return found


def run_in(kernel, source: str) -> list[tuple[str, str]]:
    """Run `source` in nbval's kernel (`nbval.kernel.RunningKernel`); the (ename, evalue) of its errors."""
    msg_id = kernel.execute_cell_input(source, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=CELL_TIMEOUT)
    found = []
    while True:
        message = kernel.get_message(stream="iopub", timeout=CELL_TIMEOUT)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "error":
            found.append((message["content"]["ename"], message["content"]["evalue"]))
        elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return found


class WrongAnswerTable(pytest.Item):
    """The table of one assignment, run in the kernel of its nbval collector (the parent)."""

    def __init__(self, *, assignment: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.assignment = assignment

    def runtest(self) -> None:
        notebook_file = self.parent
        failed = _failed_cells.get(notebook_file.nodeid, [])
        assert not failed, f"the solution notebook's cells failed first: {failed}"
        kernel = notebook_file.kernel
        assert kernel is not None and kernel.is_alive(), "nbval's kernel is gone"
        path = Path(notebook_file.path)
        notebook = nbformat.read(path, as_version=4)
        files_before = source_files(path.parent)
        problems = []
        for wrong in TABLES[self.assignment]:
            answer_errors = run_in(kernel, wrong.source(self.assignment))
            assert not answer_errors, f"{wrong.name}: the answer cell itself raised {answer_errors}"
            visible_messages = []
            for check in checks_after(notebook, wrong.answer_id):
                for name, value in run_in(kernel, check.visible) if check.visible else []:
                    visible_messages.append(f"{check.grade_id}: {name}: {value}")
                for name, value in run_in(kernel, check.hidden) if check.hidden else []:
                    if not value.strip() or value.strip() == name:
                        problems.append(f"{wrong.name}: hidden test {check.grade_id} failed without a message ({name})")
            if not any(wrong.cause in message for message in visible_messages):
                problems.append(
                    f"{wrong.name}: no visible self-check failed naming {wrong.cause!r}; "
                    f"visible failures: {visible_messages or 'none'}"
                )
            restored = run_in(kernel, solution_answer(self.assignment, wrong.answer_id))
            assert not restored, f"{wrong.name}: the solution's answer raised after it: {restored}"
        assert not problems, "\n".join(problems)
        assert source_files(path.parent) == files_before, "the wrong answers left files in the notebook's folder"

    def reportinfo(self):
        return self.path, None, f"{self.assignment}: {NAME}"


def add_table_items(items: list[pytest.Item]) -> list[pytest.Item]:
    """`items` with a `WrongAnswerTable` after the last cell of each solution notebook that has a table."""
    last_of: dict[pytest.Collector, int] = {}
    for index, item in enumerate(items):
        parent = item.parent
        path = Path(getattr(parent, "path", "."))
        if path.suffix == ".ipynb" and path.parent.parent == SOLUTIONS and path.parent.name in TABLES:
            last_of[parent] = index
    after = {index: parent for parent, index in last_of.items()}
    result = []
    for index, item in enumerate(items):
        result.append(item)
        if index in after:
            parent = after[index]
            result.append(WrongAnswerTable.from_parent(parent, name=NAME, assignment=Path(parent.path).parent.name))
    return result


def record_failure(report: pytest.TestReport) -> None:
    """Remember a failed nbval cell (called from the root conftest's `pytest_runtest_logreport`)."""
    if report.failed and ".ipynb::" in report.nodeid:
        _failed_cells.setdefault(report.nodeid.split("::")[0], []).append(report.nodeid)
