"""Find each student's notebooks in a submissions folder, whatever the layout, and read them safely.

Accepted layouts (ASSIGNMENT's notebooks are e.g. `01_snapshot.ipynb`):
- one folder per student: `SUBMISSIONS/<student_id>/01_snapshot.ipynb`;
- nbgrader's submitted/ layout: `SUBMISSIONS/<student_id>/<assignment>/01_snapshot.ipynb`;
- a folder of zip files, as an LMS download gives: `SUBMISSIONS/<student_id>.zip` holding the notebook
  anywhere inside (the zip's name, cleaned, is the student id; files are read without extracting);
- single-notebook assignments also: `SUBMISSIONS/<student_id>.ipynb`.
A notebook with another name (an LMS renames `01_snapshot.ipynb` to `01_snapshot (1).ipynb`) is used when it
is the only candidate; other files are ignored (and reported).
"""

from __future__ import annotations

import json
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 32 * 1024**2
TOO_LARGE = b"\0too-large"
SAFE_ID = re.compile(r"[^A-Za-z0-9_.@+-]+")


@dataclass
class Submission:
    """One student's files for an assignment: notebook name -> raw bytes (None: missing)."""

    student: str
    files: dict[str, bytes | None]
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # a reason the whole submission cannot be graded


def clean_id(name: str) -> str:
    cleaned = SAFE_ID.sub("_", name).strip("._") or "unnamed"
    return cleaned[:100]


class _Folder:
    def __init__(self, path: Path):
        self.path = path

    def listing(self) -> dict[str, int]:
        """Relative path -> size, for regular files only (links are never followed)."""
        found = {}
        for item in sorted(self.path.rglob("*")):
            if item.is_symlink() or not item.is_file():
                continue
            relative = item.relative_to(self.path).as_posix()
            if "/." in "/" + relative or "__MACOSX" in relative:
                continue
            found[relative] = item.stat().st_size
        return found

    def read(self, relative: str) -> bytes:
        with open(self.path / relative, "rb") as handle:
            return handle.read(MAX_NOTEBOOK_BYTES + 1)


class _Zip:
    def __init__(self, path: Path):
        self.archive = zipfile.ZipFile(path)

    def listing(self) -> dict[str, int]:
        found = {}
        for info in self.archive.infolist():
            name = info.filename
            if info.is_dir() or "__MACOSX" in name or "/." in "/" + name:
                continue
            found[name] = info.file_size
        return found

    def read(self, relative: str) -> bytes:
        with self.archive.open(relative) as handle:
            return handle.read(MAX_NOTEBOOK_BYTES + 1)


def _pick(container, wanted: list[str], assignment: str) -> tuple[dict[str, bytes | None], list[str]]:
    listing = container.listing()
    notes: list[str] = []
    sources: dict[str, str] = {}
    for name in wanted:
        exact = [path for path in listing if path.rsplit("/", 1)[-1] == name]
        # prefer <assignment>/<name>, then the shallowest
        exact.sort(key=lambda path: (f"{assignment}/" not in f"/{path}", path.count("/"), path))
        if exact:
            sources[name] = exact[0]
            if len(exact) > 1:
                notes.append(f"several files named {name}; used {exact[0]}")
    if len(wanted) == 1 and wanted[0] not in sources:
        candidates = [path for path in listing if path.endswith(".ipynb") and ".ipynb_checkpoints" not in path]
        if len(candidates) == 1:
            sources[wanted[0]] = candidates[0]
            notes.append(f"graded {candidates[0]} as {wanted[0]} (the file name differs)")
    files: dict[str, bytes | None] = {}
    for name in wanted:
        source = sources.get(name)
        if source is None:
            files[name] = None
        elif listing[source] > MAX_NOTEBOOK_BYTES:
            files[name] = TOO_LARGE
        else:
            files[name] = container.read(source)
    extra = sorted(set(listing) - set(sources.values()))
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        notes.append(f"ignored other files: {shown}")
    return files, notes


def collect(submissions: Path, assignment: str, wanted: list[str]) -> list[Submission]:
    """Every student's submission found under `submissions`, sorted by student id."""
    found: dict[str, Submission] = {}
    for entry in sorted(submissions.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            student = clean_id(entry.name)
            folder = entry / assignment if (entry / assignment).is_dir() else entry
            files, notes = _pick(_Folder(folder), wanted, assignment)
            submission = Submission(student, files, notes)
        elif entry.suffix.lower() == ".zip":
            student = clean_id(entry.stem)
            try:
                files, notes = _pick(_Zip(entry), wanted, assignment)
                submission = Submission(student, files, notes)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as error:
                submission = Submission(student, dict.fromkeys(wanted), [], f"the zip file could not be read ({error})")
        elif entry.suffix.lower() == ".ipynb" and len(wanted) == 1:
            student = clean_id(entry.stem)
            if entry.stat().st_size > MAX_NOTEBOOK_BYTES:
                data = TOO_LARGE
            else:
                data = entry.read_bytes()
            submission = Submission(student, {wanted[0]: data})
        else:
            continue
        if student in found:
            suffix = 2
            while f"{student}-{suffix}" in found:
                suffix += 1
            submission.notes.append(f"a second submission named {student!r} was graded as {student}-{suffix}")
            submission.student = f"{student}-{suffix}"
        found[submission.student] = submission
    return [found[key] for key in sorted(found)]


def parse(data: bytes, name: str) -> tuple[nbformat.NotebookNode | None, str | None]:
    """Read a notebook from raw bytes; (notebook, None) or (None, a sentence saying what is wrong)."""
    if data == TOO_LARGE:
        return None, f"{name} is larger than {MAX_NOTEBOOK_BYTES // 1024**2} MB"
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, f"{name} is larger than {MAX_NOTEBOOK_BYTES // 1024**2} MB"
    if not data.strip():
        return None, f"{name} is empty"
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None, f"{name} is not a notebook (not valid JSON)"
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        return None, f"{name} is not a notebook (no cells)"
    major = raw.get("nbformat")
    if major not in (3, 4):
        return None, f"{name} has an unsupported notebook format version ({major!r}; expected 4)"
    try:
        with warnings.catch_warnings():  # duplicate cell ids (a student copied a cell) are fixed silently
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(json.dumps(raw), as_version=4)
            nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several kinds
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        return None, f"{name} is not a valid notebook ({first})"
    return notebook, None
