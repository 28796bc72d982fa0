"""course/ is exactly what nbgrader generates from solutions/, and leaks no answer or hidden test."""

import json

import pytest

from grader import markers
from grader.paths import COURSE, SOLUTIONS, assignments, notebooks
from tests.notebook_tools import SOLUTION_MARKERS, cell_sources, shared_release

ASSIGNMENTS = assignments()


def test_there_are_assignments_and_course_has_the_same_ones():
    assert ASSIGNMENTS, "no assignment under solutions/"
    assert sorted(p.name for p in COURSE.iterdir() if p.is_dir()) == ASSIGNMENTS


@pytest.fixture(scope="module")
def fresh_release():
    """nbgrader's generation of the current solutions/ (made here, or by another test of this run or an
    earlier one from the same sources and configuration: tests/notebook_tools.shared_release)."""
    return shared_release()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_course_equals_a_fresh_generation(assignment, fresh_release):
    committed = sorted(p.relative_to(COURSE / assignment) for p in (COURSE / assignment).rglob("*") if p.is_file())
    fresh = sorted(
        p.relative_to(fresh_release / assignment) for p in (fresh_release / assignment).rglob("*") if p.is_file()
    )
    assert committed == fresh, "course/ and a fresh generation hold different files: run `make course`"
    for relative in committed:
        assert (COURSE / assignment / relative).read_bytes() == (fresh_release / assignment / relative).read_bytes(), (
            f"course/{assignment}/{relative} differs from a fresh generation: run `make course`"
        )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_hidden_test_leaks(assignment):
    for source_path in notebooks(assignment):
        student_path = COURSE / assignment / source_path.name
        student_text = "\n".join(cell_sources(student_path))
        for marker in SOLUTION_MARKERS:
            assert marker not in student_text
        regions = [region for source in cell_sources(source_path) for region in markers.marked_regions(source)]
        assert regions, f"{source_path.name} has no solution or hidden test region"
        for region in regions:
            significant = [line.strip() for line in region.splitlines() if len(line.strip()) > 25]
            for line in significant:
                assert line not in student_text, f"{student_path.name} leaks: {line!r}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebooks_carry_no_outputs(assignment):
    for path in notebooks(assignment, COURSE):
        for cell in json.loads(path.read_text())["cells"]:
            assert not cell.get("outputs"), f"{path.name} has stored outputs"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_keep_only_checked_outputs(assignment):
    for path in notebooks(assignment, SOLUTIONS):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and "# NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
                assert not cell["outputs"], (
                    f"{path.name}: outputs stored in an unchecked cell (python -m grader outputs)"
                )


def test_outputs_refuses_what_is_not_a_notebook_without_touching_anything(tmp_path, capsys):
    from grader import outputs

    text = tmp_path / "notes.txt"
    text.write_text("mine")
    assert outputs.main(["--help"]) == 0
    assert outputs.main([str(tmp_path / "missing.ipynb"), str(text)]) == 2
    err = capsys.readouterr().err
    assert "not a notebook file" in err and "missing.ipynb" in err and "notes.txt" in err, err
    assert text.read_text() == "mine", "grader outputs changed a file it refused"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_notebook_is_titled_with_its_own_number(assignment):
    """A renumbering that misses a title leaves a student in 07_production reading "# 06 ..."."""
    (path,) = notebooks(assignment, SOLUTIONS)
    title = json.loads(path.read_text())["cells"][0]["source"][0]
    number = assignment.split("_")[0]
    assert title.startswith(f"# {number} "), f"{path.name} is titled {title.strip()!r}: its number is {number}"
