"""Every wrong answer of tests/wrong_answers.py fails a visible self-check whose message names its cause.

One kernel per notebook: the solution notebook runs top to bottom (every cell must pass), then, for each wrong
answer, its answer cell is run in the changed form, then the graded cells after it that use its functions
(visible part and hidden part apart), then the solution's answer again. Asserted: a visible self-check fails
with the cause in its message; every failing hidden test has a message beyond the exception's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nbformat
import pytest

from grader import markers
from grader.assemble import nbgrader_meta
from grader.execute import SlicedClient
from grader.paths import SOLUTIONS, notebooks
from tests.wrong_answers import TABLES, dependents, notebook_names_used, solution_answer

pytestmark = pytest.mark.slow
HIDDEN = markers.BEGIN_HIDDEN


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


def errors(cell: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(out.ename, out.evalue) for out in cell.outputs if out.output_type == "error"]


@pytest.mark.parametrize("assignment", sorted(TABLES))
def test_wrong_answers_fail_visibly(assignment: str, tmp_path) -> None:
    (path,) = notebooks(assignment, SOLUTIONS)
    notebook = nbformat.read(path, as_version=4)
    client = SlicedClient(notebook, timeout=300, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}})
    problems = []
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
                problems += [f"solution, cell {index}: {name}: {value}" for name, value in errors(cell)]
        assert not problems, "\n".join(problems)

        notebook.cells.append(nbformat.v4.new_code_cell())  # the slot where the changed cells run

        def run(source: str) -> list[tuple[str, str]]:
            cell = nbformat.v4.new_code_cell(source)
            client.execute_cell(cell, len(notebook.cells) - 1)
            return errors(cell)

        for wrong in TABLES[assignment]:
            answer_errors = run(wrong.source(assignment))
            assert not answer_errors, f"{wrong.name}: the answer cell itself raised {answer_errors}"
            visible_messages = []
            for check in checks_after(notebook, wrong.answer_id):
                for name, value in run(check.visible) if check.visible else []:
                    visible_messages.append(f"{check.grade_id}: {name}: {value}")
                for name, value in run(check.hidden) if check.hidden else []:
                    if not value.strip() or value.strip() == name:
                        problems.append(f"{wrong.name}: hidden test {check.grade_id} failed without a message ({name})")
            if not any(wrong.cause in message for message in visible_messages):
                problems.append(
                    f"{wrong.name}: no visible self-check failed naming {wrong.cause!r}; "
                    f"visible failures: {visible_messages or 'none'}"
                )
            assert not run(solution_answer(assignment, wrong.answer_id))
    assert not problems, "\n".join(problems)
