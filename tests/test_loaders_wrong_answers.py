"""06_loaders: plausible wrong answers, each a small change of the solution's own function, fail the visible
self-check with a message naming the cause (and the hidden tests too); the solution passes everything.

The notebook's setup, solution and check cells run in this process (one JAX runtime, one compile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nbformat
import pytest

from grader import markers
from grader.assemble import nbgrader_meta
from grader.paths import SOLUTIONS
from tests.wrong_answers import answer_body as solution_answer
from tests.wrong_answers import variant

pytestmark = pytest.mark.slow

NOTEBOOK = SOLUTIONS / "06_loaders" / "06_loaders.ipynb"


@dataclass(frozen=True)
class WrongAnswer:
    name: str
    solution_id: str  # the solution cell whose function is changed
    check_id: str  # the graded cell that must fail
    old: str
    new: str
    message: str  # a fragment of the visible check's message: the cause


SAVE_D, RESTORE_D = "save_datarax_triple", "restore_datarax_triple"
SAVE_G, RESTORE_G = "save_grain_triple", "restore_grain_triple"

WRONG_ANSWERS = [
    WrongAnswer(
        "datarax saved unfiltered (the guide's way)", SAVE_D, SAVE_D,
        "nnx.state(pipeline, nnx.Variable)", "nnx.state(pipeline)",
        "holds the dataset",
    ),
    WrongAnswer(
        "datarax pipeline left out", SAVE_D, SAVE_D,
        '        "pipeline": nnx.to_pure_dict(nnx.state(pipeline, nnx.Variable)),\n', "",
        "is a part left out",
    ),
    WrongAnswer(
        "datarax pipeline filtered to its RNG streams only", SAVE_D, SAVE_D,
        "nnx.state(pipeline, nnx.Variable)", "nnx.state(pipeline, nnx.RngState)",
        "the cursor and every RNG stream must be saved",
    ),
    WrongAnswer(
        "datarax save without wait_until_finished", SAVE_D, SAVE_D,
        "    checkpointer.wait_until_finished()\n", "",
        "wait_until_finished",
    ),
    WrongAnswer(
        "datarax restore with an unfiltered template", RESTORE_D, RESTORE_D,
        '"pipeline": (pipeline, nnx.Variable)', '"pipeline": (pipeline, ...)',
        "filtered by nnx.Variable",
    ),
    WrongAnswer(
        "datarax restore without nnx.update", RESTORE_D, RESTORE_D,
        "        nnx.update(part, state)\n", "",
        "was nnx.update called",
    ),
    WrongAnswer(
        "datarax restore leaves the pipeline out", RESTORE_D, RESTORE_D,
        '        "pipeline": (pipeline, nnx.Variable),\n', "",
        "all three parts ('pipeline' too)",
    ),
    WrongAnswer(
        "grain iterator left out of the save", SAVE_G, SAVE_G,
        "            loader=grain.checkpoint.CheckpointSave(iterator),\n", "",
        "the Grain iterator is left out",
    ),
    WrongAnswer(
        "grain save without manager.wait_until_finished", SAVE_G, SAVE_G,
        "    manager.wait_until_finished()\n", "",
        "wait_until_finished() on the manager",
    ),
    WrongAnswer(
        "grain iterator left out of the restore", RESTORE_G, RESTORE_G,
        "loader=grain.checkpoint.CheckpointRestore(iterator), **templates", "**templates",
        "restore the iterator too",
    ),
    WrongAnswer(
        "grain restore without nnx.update", RESTORE_G, RESTORE_G,
        "        nnx.update(part, state)\n", "",
        "was nnx.update called",
    ),
]


def _cells() -> dict[str, str]:
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    return {nbgrader_meta(cell).get("grade_id"): cell.source for cell in cells if cell.cell_type == "code"}


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The notebook's namespace after its setup cell and the four solutions, in a fresh working folder."""
    cells = _cells()
    os.environ.setdefault("RESUMABLE_QUIET", "1")
    namespace: dict = {"__name__": "__main__"}
    exec(cells["cell-02"], namespace)  # the setup cell
    namespace["WORKDIR"] = str(tmp_path_factory.mktemp("loaders"))
    for name in (SAVE_D, RESTORE_D, SAVE_G, RESTORE_G):
        exec(cells[f"{name}_solution"], namespace)
    return cells, namespace


def _run_check(cells, namespace, check_id: str, hidden: bool) -> str | None:
    """Run a graded cell (its visible part, or all of it); the failure's message, or None if it passed."""
    source = cells[f"{check_id}_check"]
    if not hidden:
        source = markers.without_hidden(source)
    try:
        exec(source, namespace)
    except AssertionError as error:
        return str(error) or "AssertionError without a message"
    return None


def test_each_wrong_answer_fails_the_visible_check_naming_its_cause(notebook):
    cells, namespace = notebook
    outcomes = {}
    for wrong in WRONG_ANSWERS:
        right = solution_answer("06_loaders", f"{wrong.solution_id}_solution")
        exec(variant(right, wrong.old, wrong.new), namespace)
        try:
            visible = _run_check(cells, namespace, wrong.check_id, hidden=False)
            hidden = _run_check(cells, namespace, wrong.check_id, hidden=True)
        finally:
            exec(right, namespace)
        outcomes[wrong.name] = (visible, hidden)
    problems = [
        f"{name}: visible check gave {visible!r}, expected a message with {wrong.message!r}"
        for wrong in WRONG_ANSWERS
        for name, (visible, _) in [(wrong.name, outcomes[wrong.name])]
        if visible is None or wrong.message not in visible
    ]
    problems += [f"{name}: the hidden tests passed" for name, (_, hidden) in outcomes.items() if hidden is None]
    assert not problems, "\n".join(problems)


def test_the_solution_passes_every_check(notebook):
    cells, namespace = notebook
    for name in (SAVE_D, RESTORE_D, SAVE_G, RESTORE_G):
        exec(solution_answer("06_loaders", f"{name}_solution"), namespace)
        assert _run_check(cells, namespace, name, hidden=True) is None, name
