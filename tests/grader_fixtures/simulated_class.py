"""Build a simulated class for one assignment: a folder of submissions and what each one must get.

Data-driven: every assignment under solutions/ gets the honest student (the solution: full marks), the
untouched student copy (zero) where the test asks for it, and the forged answers (objects that claim to
equal anything; patched comparison functions). Assignment-specific wrong answers (one per course-map pitfall
the exercises can show) live in written_answers.WRONG_ANSWERS; the hostile students (hostile_class.py) run
on the first assignment and on the tiny one (TINY).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader.assemble import nbgrader_meta
from grader.paths import SOLUTIONS, notebooks
from grader.release import generate
from tests.grader_fixtures import attacks
from tests.grader_fixtures.written_answers import WRONG_ANSWERS
from tests.notebook_tools import shared_release


@dataclass
class Expect:
    """What a student's row must look like. score: "max", "zero", "partial" (0 <= score < max)."""

    score: str
    status: tuple[str, ...] = ("graded",)
    feedback_has: tuple[str, ...] = ()  # strings the outputs shown in the feedback must contain
    feedback_lacks: tuple[str, ...] = ()  # strings no feedback page may contain (sources included)
    message_has: tuple[str, ...] = ()


@dataclass
class SimulatedClass:
    assignment: str
    folder: Path
    expectations: dict[str, Expect] = field(default_factory=dict)

    def add(self, student: str, files: dict[str, bytes], expect: Expect) -> None:
        (self.folder / student).mkdir(parents=True)
        for name, data in files.items():
            (self.folder / student / name).write_bytes(data)
        self.expectations[student] = expect


# Not a course assignment: two small exercises without JAX, for the tests of the grader's machinery (resume,
# Dask, the endless loop, the attacks on the sandbox): gradings that take seconds of wall time but little CPU.
TINY_SOLUTIONS = Path(__file__).parent / "tiny"
TINY = "00_tiny"


def released(assignment: str, tmp: Path, root: Path = SOLUTIONS) -> dict[str, nbformat.NotebookNode]:
    """A fresh student copy (nbgrader generate_assignment), not the committed course/ (it may lag): the tests'
    shared generation of solutions/ (tests/notebook_tools.shared_release), or generated under `tmp`."""
    if root == SOLUTIONS:
        target = shared_release()
    else:
        target = tmp / "release"
        if not (target / assignment).is_dir():
            generate([assignment], target, root)
    return {path.name: nbformat.read(path, as_version=4) for path in notebooks(assignment, target)}


def solutions(assignment: str, root: Path = SOLUTIONS) -> dict[str, nbformat.NotebookNode]:
    return {path.name: nbformat.read(path, as_version=4) for path in notebooks(assignment, root)}


def dump(notebooks_by_name: dict[str, nbformat.NotebookNode]) -> dict[str, bytes]:
    return {name: nbformat.writes(notebook).encode() for name, notebook in notebooks_by_name.items()}


def first_code_index(notebook: nbformat.NotebookNode) -> int:
    return next(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code")


def with_cell(notebooks_by_name, source: str, where: str = "after_setup"):
    """A copy with a plain code cell (the student's own) added after the setup cell, or at the end."""
    result = copy.deepcopy(notebooks_by_name)
    for notebook in result.values():
        position = first_code_index(notebook) + 1 if where == "after_setup" else len(notebook.cells)
        notebook.cells.insert(position, nbformat.v4.new_code_cell(source))
    return result


def answer_ids(notebooks_by_name) -> list[str]:
    return [
        nbgrader_meta(cell)["grade_id"]
        for notebook in notebooks_by_name.values()
        for cell in notebook.cells
        if nbgrader_meta(cell).get("solution")
    ]


def with_answers(notebooks_by_name, answers: dict[str, str]):
    result = copy.deepcopy(notebooks_by_name)
    for notebook in result.values():
        for cell in notebook.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
    return result


def forged_answers(stubs, preamble: str):
    """Every answer cell defines its functions (names from the stub's `def`) to return `Anything()`."""
    answers = {}
    for notebook in stubs.values():
        for cell in notebook.cells:
            meta = nbgrader_meta(cell)
            if meta.get("solution") and cell.cell_type == "code":
                names = re.findall(r"^def (\w+)\(", cell.source, flags=re.MULTILINE)
                body = "".join(f"def {name}(*args, **kwargs):\n    return Anything()\n" for name in names)
                answers[meta["grade_id"]] = attacks.ANYTHING + preamble + body
    return with_answers(stubs, answers)


def honest_and_forged(simulated: SimulatedClass, tmp: Path, untouched: bool = True) -> None:
    """The students every assignment gets; the untouched student copy only with `untouched`."""
    assignment = simulated.assignment
    stubs, full = released(assignment, tmp), solutions(assignment)
    simulated.add("solution", dump(full), Expect("max"))
    if untouched:
        simulated.add("untouched", dump(stubs), Expect("zero"))
    simulated.add("forged-anything", dump(forged_answers(stubs, "")), Expect("zero"))
    simulated.add(
        "forged-patched-comparisons",
        dump(forged_answers(stubs, attacks.PATCH_COMPARISONS)),
        Expect("zero", status=("graded", "error")),
    )
    for wrong in WRONG_ANSWERS.get(assignment, []):
        simulated.add(
            f"wrong-{wrong.name}",
            dump(with_answers(full, wrong.answers)),
            Expect("partial", feedback_has=wrong.causes),
        )
