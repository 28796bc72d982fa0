"""09_processes: plausible wrong answers (the solution's own code with one part changed) fail the visible
self-check with a message naming the cause, and lose the hidden points; the solution passes both.

The notebook's own cells run in one fresh Python (its setup cell sets the device count before JAX starts):
setup, the reference run, the killed run and its listing, then, per answer, the answer's `def`, the visible
check and the hidden tests. Run as a script, this file is that Python.
"""

import json
import subprocess
import sys
import traceback
from pathlib import Path

import nbformat
import pytest

from grader.assemble import nbgrader_meta
from tests.wrong_answers import answer_body as solution_answer
from tests.wrong_answers import variant as _variant

NOTEBOOK = Path(__file__).parents[1] / "solutions" / "09_processes" / "09_processes.ipynb"
SETUP_CELLS = ("cell-02", "cell-04", "cell-08", "cell-10")

_RESUME = solution_answer("09_processes", "resume_step_solution")
_RESTORE = solution_answer("09_processes", "restore_onto_mesh_solution")
_MARKER = 'path.is_dir() and path.name.isdigit() and (path / "commit_success.txt").is_file()'

# (name, function, source, what the visible self-check's message must say)
WRONG_ANSWERS = [
    ("steps ordered by folder name", "resume_step",
     _variant(_variant(_RESUME, "        int(path.name)\n", "        path.name\n"),
              "    return max(steps, default=0)\n", "    return int(max(steps, default=0))\n"),
     "compared folder names as strings"),
    ("a temporary folder counted", "resume_step",
     _variant(_variant(_RESUME, _MARKER, 'path.is_dir() and path.name.split(".")[0].isdigit()'),
              "int(path.name)", 'int(path.name.split(".")[0])'),
     "you counted 8.orbax-checkpoint-tmp, a save never committed"),
    ("a step only process 0 wrote", "resume_step",
     _variant(_RESUME, '(path / "commit_success.txt").is_file()', '(path / "model" / "ocdbt.process_0").is_dir()'),
     "step 20 has no commit_success.txt (only process 0 finished writing)"),
    ("the next step, not the checkpoint's", "resume_step",
     _variant(_RESUME, "    return max(steps, default=0)\n", "    return max(steps, default=0) + 1\n"),
     "off by one"),
    ("the checkpoint's own shardings (the old topology)", "restore_onto_mesh",
     _variant(_RESTORE, "ocp.args.StandardRestore(jax.tree.map(describe, tree))", "ocp.args.StandardRestore()"),
     "the checkpoint's own (the old topology)"),
    ("the fresh objects as template (one device)", "restore_onto_mesh",
     _variant(_RESTORE, "ocp.args.StandardRestore(jax.tree.map(describe, tree))", "ocp.args.StandardRestore(tree)"),
     "landed as SingleDeviceSharding"),
    ("a mesh of all devices, not the one given", "restore_onto_mesh",
     _variant(_RESTORE, "NamedSharding(mesh, ", 'NamedSharding(jax.make_mesh((jax.device_count(),), ("data",)), '),
     "the template must carry the new mesh's sharding"),
]


def _cells() -> dict[str, str]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return {nbgrader_meta(cell)["grade_id"]: cell.source for cell in notebook.cells if cell.cell_type == "code"}


def _outcome(source: str, namespace: dict) -> str:
    try:
        exec(compile(source, "<cell>", "exec"), namespace)
    except AssertionError as error:
        return f"failed: {error}"
    except Exception as error:  # noqa: BLE001 (a wrong answer may raise anything; that is a failure too)
        return f"error: {type(error).__name__}: {str(error)[:300]}"
    return "passed"


def main(output: Path) -> None:
    """The script's side: run the notebook's cells, then every answer through its checks; write JSON."""
    cells = _cells()
    namespace: dict = {"__name__": "__notebook__"}
    for grade_id in SETUP_CELLS:
        exec(compile(cells[grade_id], grade_id, "exec"), namespace)
    answers = [("solution", "resume_step", _RESUME, ""), ("solution", "restore_onto_mesh", _RESTORE, "")]
    results = []
    for function in ("resume_step", "restore_onto_mesh"):  # the right answers first: later checks use them
        exec(compile(cells[f"{function}_solution"], function, "exec"), namespace)
    for name, function, source, _ in answers + WRONG_ANSWERS:
        right = cells[f"{function}_solution"]
        try:
            exec(compile(source, name, "exec"), namespace)
            visible = _outcome(cells[f"{function}_check"], namespace)
            hidden = _outcome(cells[f"{function}_hidden"], namespace)
        except Exception:  # noqa: BLE001
            visible = hidden = "error: " + traceback.format_exc()[-300:]
        exec(compile(right, function, "exec"), namespace)  # the next answer's checks start from the solution
        results.append({"name": name, "function": function, "visible": visible, "hidden": hidden})
    output.write_text(json.dumps(results, indent=1))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    output = tmp_path_factory.mktemp("wrong") / "outcomes.json"
    root = Path(__file__).parents[1]
    subprocess.run([sys.executable, "-m", "tests.test_processes_wrong_answers", str(output)], cwd=root,
                   check=True, timeout=900)
    return {(entry["function"], entry["name"]): entry for entry in json.loads(output.read_text())}


@pytest.mark.slow
@pytest.mark.parametrize("function", ["resume_step", "restore_onto_mesh"])
def test_the_solution_passes_both_checks(outcomes, function):
    entry = outcomes[(function, "solution")]
    assert (entry["visible"], entry["hidden"]) == ("passed", "passed"), entry


@pytest.mark.slow
@pytest.mark.parametrize(("name", "function", "source", "cause"), WRONG_ANSWERS, ids=[w[0] for w in WRONG_ANSWERS])
def test_a_wrong_answer_fails_visibly_naming_its_cause_and_loses_the_hidden_points(outcomes, name, function,
                                                                                    source, cause):
    entry = outcomes[(function, name)]
    assert entry["visible"].startswith("failed: "), entry
    assert cause in entry["visible"], entry["visible"]
    assert entry["hidden"] != "passed", entry


if __name__ == "__main__":
    main(Path(sys.argv[1]))
