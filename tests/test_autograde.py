"""nbgrader grades each solution notebook with full marks and each untouched student copy with zero.

Every assignment's two students are graded in one `nbgrader autograde` run (nbgrader and its gradebook start
once, not once per assignment); each assignment's scores are checked, and every failing one is named."""

import pytest

from grader.paths import COURSE, assignments, notebooks
from tests.notebook_tools import autograde

pytestmark = pytest.mark.slow


def test_every_solution_gets_full_marks_and_every_untouched_copy_zero(tmp_path):
    names = assignments()
    scores = autograde(
        {
            assignment: {
                "solution": {path.name: path for path in notebooks(assignment)},
                "untouched": {path.name: path for path in notebooks(assignment, COURSE)},
            }
            for assignment in names
        },
        tmp_path,
    )
    problems = []
    for assignment in names:
        score, max_score = scores[assignment, "solution"]
        if not (max_score > 0 and score == max_score):
            problems.append(f"{assignment}: the solution got {score} of {max_score}")
        score, max_score = scores[assignment, "untouched"]
        if not (max_score > 0 and score == 0):
            problems.append(f"{assignment}: the untouched student copy got {score} of {max_score}")
    assert not problems, "\n".join(problems)
