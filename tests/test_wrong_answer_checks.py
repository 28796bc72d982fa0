"""Which graded cells a wrong answer is run through (tests/nbval_tables.py): read from the cells' code,
not from their text. Fast: no kernel."""

from __future__ import annotations

import nbformat

from grader.paths import SOLUTIONS
from tests.nbval_tables import checks_after
from tests.wrong_answers import dependents, notebook_names_used

TRUSTED_HELPER = '''
"""Hidden tests for resume_or_start (a trusted save_checkpoint of its own)."""
def _trusted_save():
    def save_checkpoint(manager, step, *triple):
        return manager.save(step)
    return save_checkpoint

def _checks():
    module = write_functions_module("f.py", _trusted_save(), resume_or_start)
    assert module, "resume_or_start: save_checkpoint is the trusted one here"

_checks()
'''


def test_a_helper_under_an_exercises_name_and_text_in_strings_are_not_uses():
    used = notebook_names_used(TRUSTED_HELPER)
    assert {"resume_or_start", "write_functions_module"} <= used, used
    assert "save_checkpoint" not in used, "the cell's own save_checkpoint was read as the exercise's"
    assert "_trusted_save" not in used and "_checks" not in used, "the cell's own functions are not globals"


def test_scopes_arguments_imports_and_redefinitions():
    source = (
        "import numpy as np\n"
        "def f(snapshot, *rest, key=default_key, **extra):\n"
        "    return snapshot + len(rest) + np.sum(extra) + changed_paths(key)\n"
        "restore = lambda state: restore_into(state)\n"
        "class Checks:\n"
        "    limit = 3\n"
        "    def run(self):\n"
        "        return limit\n"  # a class body's names are not visible in its methods
        "def train_step(x):\n"
        "    return x\n"
        "train_step(1)\n"
        "def outer():\n"
        "    factor = 2\n"
        "    class Inner:\n"
        "        scale = factor\n"  # a class body sees the enclosing function's names
        "    return Inner\n"
    )
    used = notebook_names_used(source)
    assert used >= {"default_key", "changed_paths", "restore_into", "limit", "len"}, used
    assert not used & {"np", "snapshot", "rest", "extra", "key", "state", "train_step", "f", "Checks", "factor"}, used


def test_definitions_that_call_an_answer_count_as_the_answer():
    cells = [
        "def snapshot(model):\n    return model",  # the answer
        "def run_training(model):\n    return snapshot(model)",  # the script calls it
        "def report(model):\n    return run_training(model)",  # and this calls the script
        "def unrelated():\n    return 1",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    assert dependents(notebook, {"snapshot"}) == {"snapshot", "run_training", "report"}


def test_the_course_notebooks_checks_follow_the_code():
    """07's hidden process test saves with a trusted save_checkpoint: it tests resume_or_start only. 10's
    end-to-end test calls the answers through the script's run_training: it tests both answers."""
    production = nbformat.read(SOLUTIONS / "07_production" / "07_production.ipynb", as_version=4)
    assert "resume_processes_hidden" not in [
        check.grade_id for check in checks_after(production, "save_checkpoint_solution")
    ]
    assert "resume_processes_hidden" in [
        check.grade_id for check in checks_after(production, "resume_or_start_solution")
    ]
    capstone = nbformat.read(SOLUTIONS / "10_capstone" / "10_capstone.ipynb", as_version=4)
    for answer in ("capstone_snapshot_solution", "capstone_restore_solution"):
        assert "capstone_resume_hidden" in [check.grade_id for check in checks_after(capstone, answer)], answer
