"""The grader against hostile students: every sandbox attack, forged grading and malformed input.

Two classes (see hostile_class.py): the attacks on a course notebook's content on the first assignment, the
attacks on the sandbox on the tiny one. Each is graded as one class: every row must meet its own
expectation, whatever its neighbours did. Kept apart from test_grader_class.py so that pytest-xdist
(--dist loadfile) runs the two long files on different workers.
"""

from __future__ import annotations

import re

from tests.grader_fixtures import attacks
from tests.grader_fixtures.hostile_class import hostile, sandbox_attacks
from tests.grader_fixtures.simulated_class import (
    TINY,
    TINY_SOLUTIONS,
    Expect,
    SimulatedClass,
    dump,
    released,
    with_cell,
)
from tests.test_grader_class import ASSIGNMENTS, check_rows, pytestmark, run_class  # noqa: F401 (marks)


def test_hostile_class(tmp_path):
    simulated = SimulatedClass(ASSIGNMENTS[0], tmp_path / "submissions")
    hostile(simulated, tmp_path, tmp_path / "out")
    rows = run_class(simulated, tmp_path / "out", compile_cache=tmp_path / "compile-cache")  # built here
    check_rows(simulated, rows, tmp_path / "out")
    # attack-poison-cache overwrote its own copy of the class's compilation cache; the class's is intact
    (cache,) = (tmp_path / "compile-cache").iterdir()
    entries = list(cache.iterdir())
    assert entries and not any(path.read_bytes() == b"POISON" or "poison" in path.name for path in entries)


def test_sandbox_attacks_and_layouts(tmp_path):
    simulated = SimulatedClass(TINY, tmp_path / "submissions")
    sandbox_attacks(simulated, tmp_path, tmp_path / "out", TINY_SOLUTIONS)
    rows = run_class(simulated, tmp_path / "out", solutions=TINY_SOLUTIONS, compile_cache=None)  # it has no JAX
    check_rows(simulated, rows, tmp_path / "out")


def test_endless_loop_is_stopped(tmp_path):
    """On the tiny assignment (no JAX, its cells take a second): a 5 s cell limit stops the loop."""
    simulated = SimulatedClass(TINY, tmp_path / "submissions")
    stubs = released(TINY, tmp_path, TINY_SOLUTIONS)
    simulated.add("endless", dump(with_cell(stubs, attacks.INFINITE_LOOP)), Expect("zero", ("error",)))
    rows = run_class(simulated, tmp_path / "out", cell_timeout=5, student_timeout=60, solutions=TINY_SOLUTIONS)
    (row,) = rows
    assert row["score"] == 0 and row["status"] == "error"
    assert re.search(r"longer than \d+ s", row["message"]), row["message"]
