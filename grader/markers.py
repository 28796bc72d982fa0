"""nbgrader's markers in a source notebook's cells, read in this one place (grader, tests, fixtures)."""

from __future__ import annotations

import re

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
ALL = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
HIDDEN = re.compile(re.escape(BEGIN_HIDDEN) + r".*?" + re.escape(END_HIDDEN), re.DOTALL)
_HIDDEN_LINES = re.compile(r"[ \t]*" + HIDDEN.pattern + r"[^\n]*\n?", re.DOTALL)


def hidden_blocks(source: str) -> list[str]:
    """The hidden-test blocks of a cell's source, each without its markers."""
    return [block[len(BEGIN_HIDDEN) : -len(END_HIDDEN)] for block in HIDDEN.findall(source)]


def hidden_line_numbers(source: str) -> set[int]:
    """1-based numbers of the lines between BEGIN and END HIDDEN TESTS (the marker lines left out)."""
    inside, numbers = False, set()
    for number, line in enumerate(source.splitlines(), start=1):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif inside:
            numbers.add(number)
    return numbers


def marked_regions(source: str) -> list[str]:
    """The bodies of every solution and hidden-test region of a cell's source, stripped."""
    pattern = r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1"
    return [body.strip() for _, body in re.findall(pattern, source, flags=re.S)]


def without_hidden(source: str, replacement: str = "") -> str:
    """`source` with each hidden-test block (markers included) replaced by `replacement`."""
    return HIDDEN.sub(replacement, source)


def as_typed(source: str) -> str:
    """A solution cell's code as a student would type it: no solution markers, no hidden tests."""
    source = _HIDDEN_LINES.sub("", source)
    return "\n".join(line for line in source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION))


def solution_region(lines: list[str]) -> tuple[int, int]:
    """Indexes of the BEGIN SOLUTION and END SOLUTION lines in a cell's lines."""
    begin = next(n for n, line in enumerate(lines) if BEGIN_SOLUTION in line)
    end = next(n for n, line in enumerate(lines) if END_SOLUTION in line)
    return begin, end
