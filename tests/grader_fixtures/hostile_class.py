"""The hostile students of a simulated class: sandbox attacks, forged grading, edited cells, malformed files.

Two classes. `hostile` attacks what a course notebook gives a student to aim at (its hidden tests, its
compilation cache, the grader's checks of its cells) and sends malformed files; it grades the first
assignment. `sandbox_attacks` attacks the sandbox itself (escape, fork and memory bombs, a killed or exited
kernel, cleared outputs) and hands in odd layouts; nothing of a notebook's content is involved, so it grades
the tiny assignment (simulated_class.TINY), whose kernels cost a second each instead of a training run.
"""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import nbformat

from grader import markers
from grader.assemble import nbgrader_meta
from grader.paths import REPO, SOLUTIONS
from tests.grader_fixtures import attacks
from tests.grader_fixtures.simulated_class import (
    Expect,
    SimulatedClass,
    dump,
    first_code_index,
    forged_answers,
    released,
    solutions,
    with_cell,
)


def sandbox_attacks(simulated: SimulatedClass, tmp: Path, out: Path, root: Path) -> None:
    """Attacks on the sandbox and odd layouts, on the assignment `simulated.assignment` of `root`."""
    assignment = simulated.assignment
    stubs = released(assignment, tmp, root)
    escape = attacks.ESCAPE.replace("@REPO@", str(REPO)).replace("@OUT@", str(out))
    simulated.add(
        "attack-escape",
        dump(with_cell(stubs, escape)),
        Expect(
            "zero",
            feedback_has=("SAFE-READ", "SAFE-WRITE", "SAFE-NET", "SAFE-KILL"),
            feedback_lacks=("ESCAPED-",),
        ),
    )
    simulated.add(
        "attack-fork-bomb", dump(with_cell(stubs, attacks.FORK_BOMB)), Expect("zero", status=("graded", "error"))
    )
    simulated.add(
        "attack-memory-bomb", dump(with_cell(stubs, attacks.MEMORY_BOMB)), Expect("zero", status=("graded", "error"))
    )
    simulated.add(
        "attack-os-exit", dump(with_cell(stubs, attacks.EXIT)), Expect("zero", ("error",), message_has=("kernel died",))
    )
    simulated.add(
        "attack-kill-kernel",
        dump(with_cell(stubs, attacks.KILL_KERNEL)),
        Expect("zero", ("error",), message_has=("kernel died",)),
    )
    simulated.add(
        "attack-clear-outputs", dump(with_cell(stubs, attacks.CLEAR_OUTPUTS)), Expect("zero", ("graded", "error"))
    )
    # layouts
    (name,) = list(stubs) if len(stubs) == 1 else [next(iter(stubs))]
    stub_bytes = dump(stubs)
    zip_path = simulated.folder / "zipped-student.zip"
    simulated.folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as archive:
        for item, data in stub_bytes.items():
            archive.writestr(f"Zipped Student/{assignment}/{item}", data)
        archive.writestr("../../escape.txt", b"zip slip")
    simulated.expectations["zipped-student"] = Expect("zero")
    (simulated.folder / "nbgrader-layout" / assignment).mkdir(parents=True)
    for item, data in stub_bytes.items():
        (simulated.folder / "nbgrader-layout" / assignment / item).write_bytes(data)
    simulated.expectations["nbgrader-layout"] = Expect("zero")
    if len(stubs) == 1:
        simulated.add(
            "renamed-with-extras",
            {f"{Path(name).stem} (1).ipynb": stub_bytes[name], "notes.txt": b"hello", "numpy.py": b"raise SystemExit"},
            Expect("zero", message_has=("file name differs", "ignored other files")),
        )


def hostile(simulated: SimulatedClass, tmp: Path, out: Path) -> None:
    """Forged grading, a poisoned cache, edited cells, hidden tests sought and malformed files (one assignment)."""
    assignment = simulated.assignment
    stubs, full = released(assignment, tmp), solutions(assignment)
    simulated.add(
        "attack-poison-cache",
        dump(with_cell(stubs, attacks.POISON_CACHE)),
        Expect("zero", status=("graded", "error"), feedback_has=("POISONED-OWN-COPY",)),
    )
    simulated.add(
        "attack-patched-builtins",
        dump(forged_answers(stubs, attacks.PATCH_BUILTINS)),
        Expect("zero", ("error",), message_has=("tampered",)),
    )
    simulated.add(
        "attack-swallow-errors",
        dump(with_cell(stubs, attacks.SWALLOW_ERRORS)),
        Expect("zero", ("error",), message_has=("tampered",)),
    )
    simulated.add(
        "attack-strip-asserts",
        dump(with_cell(forged_answers(stubs, ""), attacks.STRIP_ASSERTS)),
        Expect("zero", ("error",), message_has=("tampered",)),
    )
    simulated.add("attack-edited-cells", dump(edited_cells(stubs)), Expect("zero"))
    hidden_lines = sorted(
        {
            line.strip()
            for notebook in full.values()
            for cell in notebook.cells
            for block in markers.hidden_blocks(cell.source)
            for line in block.splitlines()
            if len(line.strip()) >= 8
        }
    )
    simulated.add(
        "attack-exfiltrate-hidden",
        dump(with_cell(full, attacks.EXFILTRATE, where="end")),
        Expect("max", feedback_lacks=tuple(hidden_lines)),
    )
    # malformed files (rejected before any kernel starts)
    (name,) = list(full) if len(full) == 1 else [next(iter(full))]
    sol_bytes = dump(full)
    simulated.folder.mkdir(parents=True, exist_ok=True)
    simulated.add(
        "not-json", {name: b"this is not json {"}, Expect("zero", ("error",), message_has=("not valid JSON",))
    )
    simulated.add("empty-file", {name: b""}, Expect("zero", ("error",), message_has=("empty",)))
    simulated.add("json-list", {name: b"[1, 2, 3]"}, Expect("zero", ("error",), message_has=("not a notebook",)))
    raw = json.loads(sol_bytes[name])
    simulated.add(
        "nbformat-5",
        {name: json.dumps({**raw, "nbformat": 5}).encode()},
        Expect("zero", ("error",), message_has=("format",)),
    )
    broken = copy.deepcopy(raw)
    broken["cells"][0]["cell_type"] = "spreadsheet"
    simulated.add(
        "invalid-notebook", {name: json.dumps(broken).encode()}, Expect("zero", ("error",), message_has=("valid",))
    )
    other = copy.deepcopy(raw)
    for cell in other["cells"]:
        if "nbgrader" in cell["metadata"]:
            cell["metadata"]["nbgrader"]["grade_id"] = "other_" + cell["metadata"]["nbgrader"]["grade_id"]
    simulated.add(
        "other-assignment",
        {name: json.dumps(other).encode()},
        Expect("zero", ("error",), message_has=("another assignment",)),
    )
    huge = copy.deepcopy(raw)
    huge["cells"][first_code_index(full[name])]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "x" * (40 * 1024**2)}
    ]
    simulated.add(
        "huge-output", {name: json.dumps(huge).encode()}, Expect("zero", ("error",), message_has=("larger than",))
    )
    (simulated.folder / "missing-notebook").mkdir()
    (simulated.folder / "missing-notebook" / "README.txt").write_text("forgot it")
    (simulated.folder / "missing-notebook" / "a.ipynb").symlink_to(SOLUTIONS / assignment / name)
    simulated.expectations["missing-notebook"] = Expect("zero", ("missing",))


def edited_cells(stubs):
    """Deleted and edited test cells, a duplicated answer, invented grade cells, changed points."""
    result = copy.deepcopy(stubs)
    for notebook in result.values():
        kept = []
        tests_seen = 0
        for cell in notebook.cells:
            meta = nbgrader_meta(cell)
            if meta.get("grade") and not meta.get("solution"):
                tests_seen += 1
                if tests_seen % 2:  # delete every other test cell, edit the rest to pass
                    continue
                cell.source = "pass"
                meta["points"] = 100
                meta["solution"] = True
            if meta.get("solution") and not meta.get("grade"):
                kept.append(copy.deepcopy(cell))  # duplicate
            kept.append(cell)
        bonus = nbformat.v4.new_code_cell("print('free points')")
        bonus.metadata["nbgrader"] = {
            "grade": True,
            "solution": False,
            "locked": False,
            "points": 1000,
            "grade_id": "bonus",
            "schema_version": 3,
        }
        kept.append(bonus)
        notebook.cells = kept
    return result
