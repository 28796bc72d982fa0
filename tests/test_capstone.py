"""10_capstone: each planted resume bug, put back alone into the solution, loses points under nbgrader.

The solution notebook is the fixed script. For each bug, the fixed line(s) in its solution cells are replaced
by the buggy ones, the result is submitted as one student, and all students are autograded in one nbgrader run.
"""

import json

import pytest
from nbgrader.api import Gradebook

from grader.paths import SOLUTIONS
from tests.notebook_tools import generated_into, nbgrader

pytestmark = pytest.mark.slow

ASSIGNMENT = "10_capstone"
SOURCE = SOLUTIONS / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
END_TO_END = "capstone_resume_hidden"

# bug name -> [(fixed text, buggy text)], applied to the solution cells only; each fixed text occurs once.
BUGS = {
    "off_by_one": [
        (
            'return pipeline, model, optimizer, int(saved["step"])',
            'return pipeline, model, optimizer, int(saved["step"]) + 1',
        )
    ],
    "pipeline_rng_left_out": [
        (
            'snapshot["pipeline"] = nnx.to_pure_dict(nnx.state(pipeline))',
            'snapshot["pipeline"] = nnx.to_pure_dict(nnx.state(pipeline, nnx.Not(nnx.RngState)))',
        )
    ],
    "no_nnx_update": [("nnx.update(part, part_state)", "pass  # the restored copy never goes back")],
    "optimizer_left_out": [
        ('    snapshot["optimizer"] = nnx.to_pure_dict(nnx.state(optimizer))\n', ""),
        (
            '[("pipeline", pipeline), ("model", model), ("optimizer", optimizer)]',
            '[("pipeline", pipeline), ("model", model)]',
        ),
    ],
}


def with_bug(notebook: dict, replacements: list[tuple[str, str]]) -> dict:
    """A copy of `notebook` whose solution cells carry the buggy text instead of the fixed one."""
    buggy = json.loads(json.dumps(notebook))
    solution_cells = [cell for cell in buggy["cells"] if cell["metadata"].get("nbgrader", {}).get("solution")]
    for fixed, wrong in replacements:
        holders = [cell for cell in solution_cells if fixed in "".join(cell["source"])]
        assert len(holders) == 1 and "".join(holders[0]["source"]).count(fixed) == 1, f"{fixed!r} not found once"
        holders[0]["source"] = "".join(holders[0]["source"]).replace(fixed, wrong)
    return buggy


def test_each_planted_bug_alone_loses_points(tmp_path):
    notebook = json.loads(SOURCE.read_text())
    generated_into([ASSIGNMENT], tmp_path)
    for bug, replacements in BUGS.items():
        folder = tmp_path / "submitted" / bug / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / SOURCE.name).write_text(json.dumps(with_bug(notebook, replacements)))
    nbgrader("autograde", ASSIGNMENT, "--force", root=tmp_path)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        for bug in BUGS:
            submission = gradebook.find_submission(ASSIGNMENT, bug)
            assert submission.max_score > 0 and submission.score < submission.max_score, f"{bug} kept full marks"
            end_to_end = gradebook.find_grade(END_TO_END, SOURCE.stem, ASSIGNMENT, bug)
            assert end_to_end.score == 0, f"{bug} passed the hidden crash-and-resume test"
