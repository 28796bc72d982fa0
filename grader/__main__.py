"""Instructor commands: `python -m grader COMMAND ...` (run from the repository root)."""

from __future__ import annotations

import sys

from grader import grade, outputs, release, validate

COMMANDS = {
    "release": (release.main, "regenerate course/ from solutions/ atomically [ASSIGNMENT ...]"),
    "outputs": (outputs.main, "execute solution notebooks and keep only the outputs nbval checks"),
    "validate": (validate.main, "validate student notebooks; exit 1 when a test fails (nbgrader's exits 0)"),
    "grade": (grade.main, "grade a class in sandboxes: ASSIGNMENT SUBMISSIONS_DIR --out OUT_DIR [--jobs N]"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        lines = [f"  {name:10} {help_text}" for name, (_, help_text) in COMMANDS.items()]
        print("usage: python -m grader COMMAND [ARGS]\n" + "\n".join(lines), file=sys.stderr)
        return 2
    command, _ = COMMANDS[argv[0]]
    return command(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
