"""The simulated classes of the assignments that test_grader_class.py leaves out (see THIS_FILE there)."""

from __future__ import annotations

import pytest

from grader.paths import assignments
from tests.test_grader_class import THIS_FILE, grade_and_check, pytestmark  # noqa: F401 (the same marks)


@pytest.mark.parametrize("assignment", [name for name in assignments() if name not in THIS_FILE])
def test_simulated_class(assignment, tmp_path):
    grade_and_check(assignment, tmp_path)
