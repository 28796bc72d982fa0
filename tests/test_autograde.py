"""nbgrader grades each solution notebook with full marks and each untouched student copy with zero."""

import pytest

from grader.paths import COURSE, assignments, notebooks
from tests.notebook_tools import autograde

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("assignment", assignments())
def test_solution_gets_full_marks(assignment, tmp_path):
    submission = {path.name: path for path in notebooks(assignment)}
    score, max_score = autograde(assignment, submission, tmp_path)
    assert max_score > 0 and score == max_score


@pytest.mark.parametrize("assignment", assignments())
def test_untouched_student_copy_gets_zero(assignment, tmp_path):
    submission = {path.name: path for path in notebooks(assignment, COURSE)}
    score, max_score = autograde(assignment, submission, tmp_path)
    assert max_score > 0 and score == 0
