"""nbgrader grades each solution notebook with full marks and each untouched student copy with zero."""

import pytest

from grader.paths import COURSE, assignments, notebooks
from tests.notebook_tools import autograde

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("assignment", assignments())
def test_solution_gets_full_marks_and_the_untouched_copy_zero(assignment, tmp_path):
    scores = autograde(
        assignment,
        {
            "solution": {path.name: path for path in notebooks(assignment)},
            "untouched": {path.name: path for path in notebooks(assignment, COURSE)},
        },
        tmp_path,
    )
    score, max_score = scores["solution"]
    assert max_score > 0 and score == max_score, f"{assignment}: the solution got {score} of {max_score}"
    score, max_score = scores["untouched"]
    assert max_score > 0 and score == 0, f"{assignment}: the untouched student copy got {score} of {max_score}"
