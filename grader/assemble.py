"""Build, from trusted files only, the notebook that is executed for a student, and what feedback may show.

nbgrader's autograde restores the instructor's cells (tests with their hidden part, locked cells) from its
gradebook and keeps the student's answers. Here the same is done from the source notebook in solutions/
(with nbgrader's own ClearSolutions applied, exactly what generate_assignment stores in the gradebook):

- a student cell whose grade_id names an instructor cell (locked, test) is replaced by that cell;
- a student cell whose grade_id names an answer cell keeps the student's source, with the instructor's
  metadata (a student cannot change points, or turn an answer into a test);
- every other student cell (their own cells, duplicates, cells with invented or edited metadata) is kept
  as a plain cell that can earn nothing;
- instructor cells the student deleted are put back where they were.
Scores only ever come from the instructor's graded cells, each counted once.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader import markers
from grader.paths import COURSE, SOLUTIONS

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str) else {}


def is_answer(cell: dict) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell: dict) -> bool:
    """An autograded test cell: graded, not an answer, code."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_manual(cell: dict) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade") or meta.get("task")) and not is_test(cell)


@dataclass
class Template:
    """The trusted version of one notebook of an assignment."""

    assignment: str
    name: str
    notebook: nbformat.NotebookNode  # source with solutions cleared, hidden tests kept
    stubs: dict[str, str]  # answer grade_id -> the released stub
    hidden_lines: list[str] = field(default_factory=list)

    @property
    def by_id(self) -> dict[str, nbformat.NotebookNode]:
        return {nbgrader_meta(cell)["grade_id"]: cell for cell in self.notebook.cells if nbgrader_meta(cell)}

    @property
    def answer_ids(self) -> list[str]:
        return [nbgrader_meta(cell)["grade_id"] for cell in self.notebook.cells if is_answer(cell)]

    def to_json(self) -> dict:
        return {
            "assignment": self.assignment,
            "name": self.name,
            "notebook": nbformat.writes(self.notebook),
            "stubs": self.stubs,
            "hidden_lines": self.hidden_lines,
        }

    @classmethod
    def from_json(cls, data: dict) -> Template:
        notebook = nbformat.reads(data["notebook"], as_version=4)
        return cls(data["assignment"], data["name"], notebook, data["stubs"], data["hidden_lines"])

    @property
    def max_score(self) -> float:
        return sum(
            float(nbgrader_meta(cell).get("points", 0) or 0)
            for cell in self.notebook.cells
            if is_test(cell) or is_manual(cell)
        )


def load_template(assignment: str, name: str, solutions: Path = SOLUTIONS, course: Path = COURSE) -> Template:
    from nbgrader.preprocessors import ClearSolutions  # importing nbgrader takes seconds: only here

    source = nbformat.read(solutions / assignment / name, as_version=4)
    hidden_lines = sorted(
        {
            line.strip()
            for cell in source.cells
            for block in markers.hidden_blocks(cell.source)
            for line in block.splitlines()
            if len(line.strip()) >= 8 and "HIDDEN TESTS" not in line
        },
        key=len,
        reverse=True,
    )
    cleared, _ = ClearSolutions(code_stub={"python": CODE_STUB}).preprocess(
        copy.deepcopy(source), {"language": "python"}
    )
    for cell in cleared.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    stubs = {nbgrader_meta(cell)["grade_id"]: cell.source for cell in cleared.cells if is_answer(cell)}
    released = course / assignment / name
    if released.exists():  # the stubs students actually received
        for cell in nbformat.read(released, as_version=4).cells:
            if is_answer(cell) and nbgrader_meta(cell)["grade_id"] in stubs:
                stubs[nbgrader_meta(cell)["grade_id"]] = cell.source
    return Template(assignment, name, cleared, stubs, hidden_lines)


@dataclass
class Assembled:
    notebook: nbformat.NotebookNode
    tests: dict[int, str]  # cell index -> grade_id of an autograded test cell
    answers_found: int
    notes: list[str]


def _plain(cell: dict, cell_id: str | None = None) -> nbformat.NotebookNode:
    """The student's cell as a plain cell (no metadata); `cell_id` instead of a random id: two gradings of one
    submission then give the same feedback page."""
    cell_type = cell.get("cell_type") if cell.get("cell_type") in ("code", "markdown", "raw") else "raw"
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    if cell_type == "code":
        plain = nbformat.v4.new_code_cell(source)
    elif cell_type == "markdown":
        plain = nbformat.v4.new_markdown_cell(source)
    else:
        plain = nbformat.v4.new_raw_cell(source)
    if cell_id is not None:
        plain.id = cell_id
    return plain


def assemble(template: Template, student: nbformat.NotebookNode) -> Assembled:
    """The notebook to execute: the student's answers and own cells, every instructor cell from `template`."""
    by_id = template.by_id
    order = [nbgrader_meta(cell)["grade_id"] for cell in template.notebook.cells if nbgrader_meta(cell)]
    placed: list[tuple[str | None, nbformat.NotebookNode]] = []
    seen: set[str] = set()
    notes: list[str] = []
    answers_found = 0
    for position, cell in enumerate(student.cells):
        grade_id = nbgrader_meta(cell).get("grade_id")
        trusted = by_id.get(grade_id) if grade_id else None
        if trusted is None or grade_id in seen:
            if grade_id in seen:
                notes.append(f"a second copy of cell {grade_id} was run as an ordinary cell")
            placed.append((None, _plain(cell, f"student-cell-{position}")))  # unique: no template id has it
            continue
        seen.add(grade_id)
        new = copy.deepcopy(trusted)
        if is_answer(trusted):
            if cell.get("cell_type") == trusted.cell_type:
                new.source = _plain(cell).source
                answers_found += 1
            else:
                new.source = template.stubs.get(grade_id, new.source)
                notes.append(f"answer cell {grade_id} had its type changed; the original stub was used")
        placed.append((grade_id, new))
    for position, grade_id in enumerate(order):
        if grade_id in seen:
            continue
        trusted = copy.deepcopy(by_id[grade_id])
        if is_answer(trusted):
            trusted.source = template.stubs.get(grade_id, trusted.source)
            notes.append(f"answer cell {grade_id} was missing; the original stub was used")
        earlier = set(order[:position])
        insert_at = 0
        for index, (placed_id, _) in enumerate(placed):
            if placed_id in earlier:
                insert_at = index + 1
        placed.insert(insert_at, (grade_id, trusted))
        seen.add(grade_id)
    notebook = copy.deepcopy(template.notebook)
    notebook.cells = [cell for _, cell in placed]
    tests = {index: grade_id for index, (grade_id, cell) in enumerate(placed) if grade_id and is_test(cell)}
    return Assembled(notebook, tests, answers_found, notes)


def save_templates(templates: dict[str, Template], path: Path) -> None:
    path.write_text(json.dumps({name: template.to_json() for name, template in templates.items()}))


def read_templates(path: Path) -> dict[str, Template]:
    return {name: Template.from_json(data) for name, data in json.loads(path.read_text()).items()}


def scrub(text: str, hidden_lines: list[str]) -> str:
    """Remove every line of hidden test source (also as a Python repr would escape it), and nbgrader's
    hidden-test markers, from `text`."""
    for line in [*hidden_lines, markers.BEGIN_HIDDEN, markers.END_HIDDEN]:
        for variant in {line, line.replace("\\", "\\\\").replace("'", "\\'"), line.replace('"', '\\"')}:
            if variant in text:
                text = text.replace(variant, "[hidden test line removed]")
    return text


def _scrub_output(output: dict, hidden_lines: list[str]) -> None:
    if output.get("output_type") == "stream":
        output["text"] = scrub(output.get("text", ""), hidden_lines)
    elif output.get("output_type") == "error":
        output["evalue"] = scrub(str(output.get("evalue", "")), hidden_lines)
        output["traceback"] = [scrub(line, hidden_lines) for line in output.get("traceback", [])]
    for mime, value in list(output.get("data", {}).items()):
        if isinstance(value, str):
            output["data"][mime] = scrub(value, hidden_lines)
        elif isinstance(value, list):
            output["data"][mime] = [scrub(str(part), hidden_lines) for part in value]


def for_feedback(executed: nbformat.NotebookNode, template: Template) -> nbformat.NotebookNode:
    """The executed notebook as a student may see it: no hidden test source anywhere.

    Hidden test regions are replaced by a comment; an error raised in a cell that holds hidden tests is
    shown as its type and message only (a traceback would print the hidden lines); and every output is
    scrubbed of hidden test lines (a notebook could print `In` or IPython's history)."""
    notebook = copy.deepcopy(executed)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        has_hidden = bool(markers.hidden_blocks(cell.source))
        cell.source = markers.without_hidden(cell.source, "# (hidden tests: not shown)")
        for output in cell.outputs:
            if has_hidden and output.get("output_type") == "error":
                output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
            _scrub_output(output, template.hidden_lines)
    return notebook
