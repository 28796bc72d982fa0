"""The grader's per-assignment compilation cache: when it is built, from what, and that students get copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader import grade, student, worker
from grader.paths import SOLUTIONS

ASSIGNMENT = "03_update"


def passing_row(tests=({"outcome": "passed"},)) -> dict:
    return {"status": "graded", "score": 8.0, "max_score": 8.0, "message": "", "tests": list(tests)}


def build(tmp_path: Path, class_size: int, fake_worker, monkeypatch) -> tuple[Path | None, list[str], list[dict]]:
    calls: list[dict] = []
    lines: list[str] = []

    def grade_one(index, submission, settings):
        calls.append({"index": index, "files": sorted(submission.files), **settings})
        return fake_worker(settings)

    monkeypatch.setattr(student, "grade_one", grade_one)
    folder = grade.class_compile_cache(
        class_size, tmp_path / "cache", lines.append, assignment=ASSIGNMENT, solutions=str(SOLUTIONS)
    )
    return folder, lines, calls


def writes_entries(settings) -> dict:
    Path(settings["compile_cache_out"], "jit_step-abc-cache").write_bytes(b"program")
    return passing_row()


def test_a_class_big_enough_builds_it_from_the_solution_once(tmp_path, monkeypatch):
    for name in (f"{ASSIGNMENT}-0000000000000000", "01_snapshot-0000000000000000"):
        (tmp_path / "cache" / name).mkdir(parents=True)  # an older cache of 03 (replaced), and 01's (kept)
    folder, lines, calls = build(tmp_path, grade.BUILD_CACHE_FROM, writes_entries, monkeypatch)
    assert folder is not None and (folder / "jit_step-abc-cache").read_bytes() == b"program"
    assert folder.name == f"{ASSIGNMENT}-{grade.cache_key(ASSIGNMENT)}"
    assert len(calls) == 1 and calls[0]["index"] == -1 and calls[0]["compile_cache"] is None
    assert calls[0]["files"] == [path.name for path in sorted((SOLUTIONS / ASSIGNMENT).glob("*.ipynb"))]
    assert "built from its solution" in lines[0]
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == sorted(
        [folder.name, "01_snapshot-0000000000000000"]
    )  # no build folder left, and no older cache of the assignment
    # A later grading reuses it, whatever the class size, without running anything.
    again, _, calls = build(tmp_path, 1, lambda settings: pytest.fail("rebuilt an existing cache"), monkeypatch)
    assert again == folder and calls == []


def test_a_small_class_builds_none(tmp_path, monkeypatch):
    folder, lines, calls = build(tmp_path, grade.BUILD_CACHE_FROM - 1, writes_entries, monkeypatch)
    assert folder is None and calls == [] and lines == [] and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("row", "entries", "why"),
    [
        (passing_row([{"outcome": "failed: AssertionError: no"}]), True, "did not pass its own tests"),
        ({**passing_row(), "status": "error", "message": "the kernel died"}, True, "the kernel died"),
        (passing_row(), False, "compiled nothing"),
    ],
)
def test_a_failed_build_grades_without_one_and_says_why(tmp_path, monkeypatch, row, entries, why):
    def fake(settings):
        if entries:
            Path(settings["compile_cache_out"], "jit_x-cache").write_bytes(b"x")
        return row

    folder, lines, _ = build(tmp_path, 20, fake, monkeypatch)
    assert folder is None
    assert len(lines) == 1 and lines[0].startswith(f"no compile cache for {ASSIGNMENT}") and why in lines[0]
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_key_follows_the_solution(tmp_path):
    solutions = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS / ASSIGNMENT, solutions / ASSIGNMENT)
    assert grade.cache_key(ASSIGNMENT, solutions) == grade.cache_key(ASSIGNMENT)
    notebook = next((solutions / ASSIGNMENT).glob("*.ipynb"))
    notebook.write_bytes(notebook.read_bytes().replace(b"crash_step", b"crash_at", 1))
    assert grade.cache_key(ASSIGNMENT, solutions) != grade.cache_key(ASSIGNMENT)


def test_a_student_kernel_gets_its_own_copy(tmp_path):
    seed = tmp_path / "class-cache"
    seed.mkdir()
    (seed / "jit_step-abc-cache").write_bytes(b"program")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cache = worker.compile_cache({"compile_cache": str(seed)}, scratch)
    assert cache is not None and cache.parent == scratch
    (cache / "jit_step-abc-cache").write_bytes(b"tampered")
    (cache / "jit_new-cache").write_bytes(b"student's own")
    assert [path.name for path in seed.iterdir()] == ["jit_step-abc-cache"]
    assert (seed / "jit_step-abc-cache").read_bytes() == b"program"
    # The build run starts empty; without either setting the kernel runs without a cache.
    assert list(worker.compile_cache({"compile_cache_out": str(tmp_path / "o")}, tmp_path).iterdir()) == []
    assert worker.compile_cache({}, tmp_path / "elsewhere") is None
