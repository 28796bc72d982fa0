"""Where the course's folders are."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
COURSE = REPO / "course"
GRADER = REPO / "grader"
WORK = GRADER / "work"


def assignments() -> list[str]:
    """The assignment folders under solutions/, in teaching order."""
    return sorted(path.name for path in SOLUTIONS.iterdir() if path.is_dir() and any(path.glob("*.ipynb")))


def notebooks(assignment: str, root: Path = SOLUTIONS) -> list[Path]:
    return sorted((root / assignment).glob("*.ipynb"))


def source_files(folder: Path) -> list[Path]:
    """The files under `folder` that are the course's own, sorted: no dot-folders (kernels' and checkpoints'
    leftovers), no `__pycache__`."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in path.relative_to(folder).parts)
    )
