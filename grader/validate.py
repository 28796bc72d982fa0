"""`python -m grader validate NOTEBOOK.ipynb [...]`: nbgrader's validation with an exit code that tells.

`nbgrader validate` prints failures but always exits 0. This runs nbgrader's own Validator (the notebook is
executed as its owner: validate your own work, grade others' with `python -m grader grade`) and exits
0 when every test cell passes, 1 when a test fails or a read-only cell was changed, 2 when a file cannot be
validated at all (missing, not a notebook).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from nbgrader.validator import Validator
from traitlets.config import Config

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def validate(path: Path, timeout: int = 300) -> tuple[int, list[str]]:
    """(exit code, report lines) for one notebook."""
    config = Config()
    config.ExecutePreprocessor.timeout = timeout
    try:
        results = Validator(config=config).validate(str(path))
    except Exception as error:  # unreadable, invalid, kernel failure
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        return 2, [f"{path}: cannot be validated: {type(error).__name__}: {first}"]
    lines = []
    for cell in results.get("type_changed", []):
        lines.append(f"a cell was changed from {cell['old_type']} to {cell['new_type']}:\n{cell['source'][:300]}")
    for cell in results.get("changed", []):
        lines.append(f"a read-only cell was changed:\n{cell['source'][:300]}")
    for cell in results.get("failed", []):
        lines.append(f"a test failed:\n{cell['source'][:300]}\n{ANSI.sub('', cell['raw_error'])[-1500:]}")
    if lines:
        return 1, [f"{path}: {len(lines)} problem(s)", *lines]
    return 0, [f"{path}: success, every test cell passed"]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m grader validate NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    worst = 0
    for name in argv:
        path = Path(name)
        if not path.is_file():
            code, lines = 2, [f"{path}: no such file"]
        else:
            code, lines = validate(path)
        print("\n".join(lines), file=sys.stderr if code else sys.stdout)
        worst = max(worst, code)
    return worst
