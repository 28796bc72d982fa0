"""Every hidden assert and every assert in a locked cell says why it failed and where to look (issue #17).

A student who fails a hidden test, or a locked check, reads only the assert's message. So each such
message must be a string (a literal, an f-string, or a `+` of those with calls such as
`diff.summary()`) whose own words (f-string placeholders left out) are at least MIN_WORDS_CHARS long,
that does not just restate the code ("look at f: expected <code>"), and that names a function to look
at: one of the exercise functions (defined in the notebook's solution cells) that the cell uses. In a
cell that uses none of them (a story cell, a check of the course's own claims) it names an exercise of
the notebook, a course helper (imported from `resumable` or defined in a locked cell) or a function the
cell calls, or says that the student's answers are not the cause ("not your code", "none of your
answers"). Parsed with ast, no kernel: a few seconds.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import markers
from grader.paths import SOLUTIONS

MIN_WORDS_CHARS = 25
# messages written from the code by a script: they restate the condition instead of giving a cause
GENERIC = re.compile(r"look at \w+: expected|this check of the course's claim failed:")
# a check of the course's own claims (a library's behaviour) may say instead that the answers are not the cause
NOT_YOURS = re.compile(r"not your code|(?:none|not) of your answers|(?:does|do) not use your answers")
BUILTINS = frozenset(dir(builtins))
NOTEBOOKS = sorted(SOLUTIONS.glob("*/*.ipynb"))


def _nbgrader(cell: dict) -> dict:
    """A cell's nbgrader metadata, also without a grade_id (the small test notebook's cells have none)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def _parsable(source: str) -> str:
    """The cell as Python: magics, shell lines and nbgrader's ### marker lines blanked (line numbers kept)."""
    lines = source.splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!", "###")) else line for line in lines)


def exercise_names(notebook: dict) -> set[str]:
    """The functions and classes the student writes: top-level definitions of the solution cells."""
    names = set()
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and _nbgrader(cell).get("solution"):
            tree = ast.parse(_parsable("".join(cell["source"])))
            names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    return names


def helper_names(notebook: dict) -> set[str]:
    """The course's own functions in a notebook: what it imports from the course's package `resumable`,
    and the functions and classes its locked cells define."""
    names = set()
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code" or _nbgrader(cell).get("solution"):
            continue
        for node in ast.walk(ast.parse(_parsable("".join(cell["source"])))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "resumable":
                names |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
    return names


def _called(tree: ast.AST) -> set[str]:
    """Names of the functions a cell calls: `f(...)` (builtins left out) and `x.f(...)`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id not in BUILTINS:
                names.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


def _string_assignments(tree: ast.AST) -> dict[str, ast.expr]:
    """name -> value for `name = <expression>` in the cell (a message kept in a variable, e.g. _CAUSE)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def message_words(node: ast.expr | None, assigned: dict[str, ast.expr], top: bool = True) -> str | None:
    """The literal text of a message, placeholders left out; None if it is no string message.

    A string message is a str literal, an f-string, "...".format(...), a name the cell assigned one of
    those to, or a `+` chain of them in which calls (diff.summary(), likely_cause(...)) may take part.
    A call, a tuple, a bare variable or a number alone is not one."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value for part in node.values if isinstance(part, ast.Constant))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        return re.sub(r"\{[^{}]*\}", "", node.func.value.value)
    if isinstance(node, ast.Name) and node.id in assigned:
        return message_words(assigned[node.id], assigned, top)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = message_words(node.left, assigned, top=False)
        right = message_words(node.right, assigned, top=False)
        if left is None and right is None:
            return None
        return (left or "") + (right or "")
    if isinstance(node, ast.Call) and not top:
        return ""  # a part computed at run time (a diff's summary): it counts, its words do not
    return None


@dataclass
class Weak:
    notebook: str
    cell: int
    line: int
    why: str
    code: str

    def __str__(self) -> str:
        return f"{self.notebook} cell {self.cell} line {self.line}: {self.why}\n    {self.code}"


def weak_asserts(path: Path) -> list[Weak]:
    return weak_asserts_in(json.loads(path.read_text()), path.parent.name)


def weak_asserts_in(notebook: dict, name: str) -> list[Weak]:
    """The asserts of hidden tests and locked cells whose message breaks the rule, in cell and line order."""
    exercises = exercise_names(notebook)
    helpers = helper_names(notebook) - exercises
    weak = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        meta = _nbgrader(cell)
        locked = bool(meta.get("locked")) and not meta.get("solution")
        hidden = markers.hidden_line_numbers(source)
        if not (locked or hidden):
            continue
        tree = ast.parse(_parsable(source))
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} & exercises
        # the function to look at: an exercise the cell uses; in a cell that uses none, any exercise of
        # the notebook (a story cell over the results of one), a course helper or a function it calls
        allowed = used or (exercises | helpers | _called(tree))
        assigned = _string_assignments(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assert) or not (locked or node.lineno in hidden):
                continue
            words = message_words(node.msg, assigned)
            if node.msg is None:
                why = "no message"
            elif words is None:
                why = f"the message is not a string ({type(node.msg).__name__})"
            elif len(words.strip()) < MIN_WORDS_CHARS:
                why = f"the message's own words are shorter than {MIN_WORDS_CHARS} characters: {words.strip()!r}"
            elif GENERIC.search(words):
                why = f"the message restates the code ({GENERIC.search(words).group()} ...) instead of a cause"
            elif not any(re.search(rf"\b{re.escape(name)}\b", words) for name in allowed) and not (
                not used and NOT_YOURS.search(words)
            ):
                why = f"the message names none of {sorted(used) if used else 'the exercises, helpers or calls'}"
            else:
                continue
            code = ast.unparse(node).replace("\n", " ")
            weak.append(Weak(name, index, node.lineno, why, code[:160]))
    return sorted(weak, key=lambda w: (w.cell, w.line))


def test_there_are_notebooks_with_exercises():
    assert NOTEBOOKS, f"no notebook under {SOLUTIONS}"
    for path in NOTEBOOKS:
        assert exercise_names(json.loads(path.read_text())), f"{path.name}: no function in a solution cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_every_graded_or_locked_assert_names_a_cause_and_a_function(path):
    weak = weak_asserts(path)
    assert not weak, (
        f"{len(weak)} assert(s) whose message does not tell a student the likely cause and the function "
        "to look at (issue #17):\n" + "\n".join(map(str, weak))
    )


def _cell(source: str, **nbgrader) -> dict:
    return {"cell_type": "code", "metadata": {"nbgrader": nbgrader}, "source": source.splitlines(keepends=True)}


def test_the_rule_on_a_small_notebook():
    solution = _cell(
        "def restore_into(module, pure):\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n",
        solution=True,
        locked=False,
    )
    graded = _cell(
        "%time x = 1\n"
        "x = restore_into(m, p)\n"
        "assert x is None\n"  # 3: no message
        "assert x is None, (x, None)\n"  # 4: a tuple
        "assert x is None, diff.summary()\n"  # 5: a call alone
        "assert x is None, 'should return None'\n"  # 6: too short
        "assert x is None, f'{x} is not {None} ({x!r}, {x})'\n"  # 7: too short without its placeholders
        "assert x is None, 'look at restore_into: expected x is None'\n"  # 8: restates the code
        "assert x is None, 'the object was replaced instead of updated in place'\n"  # 9: no function
        "assert x is None, 'restore_into works in place and returns None'\n"
        "assert x is None, 'restore_into did not restore every leaf:\\n' + diff.summary()\n"
        "CAUSE = 'restore_into filled a copy: call nnx.update(module, state)'\n"
        "assert x is None, CAUSE\n",
        grade=True,
        solution=False,
        locked=True,
    )
    story = _cell(
        "losses = train(3)\n"
        "assert losses, 'the course run gave no losses at all this time'\n"  # 2: names nothing
        'assert losses, "train gave no losses: the course\'s loop is broken"\n'
        "assert losses, 'this JAX works otherwise (not your code: see requirements.lock)'\n"
        "assert losses, 'the losses look odd: look at restore_into, is its check green?'\n",
        solution=False,
        locked=True,
    )
    unlocked = _cell(
        "assert 1, 'the student writes this unlocked cell'\n"
        "### BEGIN HIDDEN TESTS\n"
        "assert restore_into(1, 2) is None, 'returns None'\n"  # 3: a hidden assert, too short
        "### END HIDDEN TESTS\n",
        solution=False,
        locked=False,
    )
    notebook = {"cells": [solution, graded, story, unlocked, {"cell_type": "markdown", "source": []}]}
    flagged = [(w.cell, w.line) for w in weak_asserts_in(notebook, "small")]
    assert flagged == [(1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8), (1, 9), (2, 2), (3, 3)], "\n".join(
        map(str, weak_asserts_in(notebook, "small"))
    )
