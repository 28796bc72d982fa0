"""`python -m grader grade ASSIGNMENT SUBMISSIONS_DIR --out OUT_DIR [--jobs N]`: grade a class, safely.

Per student, a worker process (trusted, outside the sandbox) assembles the notebook to run from trusted files
(grader/assemble.py), runs it with its kernel in a bubblewrap sandbox (grader/sandbox.py) while recording
each cell's result itself (grader/execute.py), scores from that record, and writes sanitized feedback.
Students are graded in parallel (`--jobs`, default: the number of cores). Writes OUT_DIR/grades.csv,
OUT_DIR/grades.json (per-test details) and OUT_DIR/feedback/<student_id>/<notebook>.html.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader import intake, sandbox
from grader.assemble import load_template, save_templates
from grader.paths import COURSE, REPO, SOLUTIONS, WORK, assignments, notebooks

COLUMNS = ["student_id", "assignment", "score", "max_score", "status", "message"]
NO_SANDBOX_FLAG = "--no-sandbox-i-trust-this-code"
COMPILE_CACHE = WORK / "compile-cache"
# Building a class's compilation cache costs one run of the solution and saves about a fifth of every
# student's run after it (03: 8.0 s cold, 6.2 s warm): worth it from this many submissions on.
BUILD_CACHE_FROM = 3


class GradingError(RuntimeError):
    """Grading as a whole cannot run (a bad argument, no sandbox); the message says why."""


def _uid_base() -> int:
    return 100000 + (os.getpid() % 20000) * 64


def grade_class(
    assignment: str,
    submissions: Path,
    out: Path,
    *,
    jobs: int | None = None,
    cell_timeout: float = 300,
    student_timeout: float = 1800,
    memory_mb: int = 4096,
    use_sandbox: bool = True,
    solutions: Path = SOLUTIONS,
    course: Path = COURSE,
    compile_cache: Path | None = COMPILE_CACHE,
    progress=None,
) -> list[dict]:
    """Grade every submission; write grades.csv, grades.json and feedback/; return the rows.

    `compile_cache`: the folder that keeps each assignment's JAX compilation cache (see
    `class_compile_cache`); None runs every kernel without one."""
    if not (solutions / assignment).is_dir() or not notebooks(assignment, solutions):
        known = ", ".join(assignments()) or "none"
        raise GradingError(f"unknown assignment {assignment!r} (assignments in {solutions}: {known})")
    if not submissions.is_dir():
        raise GradingError(f"submissions folder {submissions} does not exist")
    if use_sandbox:
        available, why = sandbox.availability()
        if not available:
            raise GradingError(
                f"cannot sandbox student code here: {why}. Student notebooks are untrusted code: without a "
                "sandbox they run as you, can read the solutions and hidden tests, and can change any file "
                f"you can. Install bubblewrap, or grade code you trust with {NO_SANDBOX_FLAG}."
            )
    wanted = [path.name for path in notebooks(assignment, solutions)]
    jobs = max(1, jobs or os.cpu_count() or 1)
    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    found = intake.collect(submissions, assignment, wanted)
    out.mkdir(parents=True, exist_ok=True)
    (out / "feedback").mkdir(exist_ok=True)
    rows: list[dict] = []
    started = time.monotonic()
    uids: queue.Queue[int] = queue.Queue()
    base = _uid_base()
    for slot in range(jobs):
        uids.put(base + slot)
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="grade-") as run_name:
        run_dir = Path(run_name)
        os.chmod(run_dir, 0o700)
        templates = {name: load_template(assignment, name, solutions, course) for name in wanted}
        save_templates(templates, run_dir / "templates.json")
        settings = dict(
            assignment=assignment,
            out=out,
            cell_timeout=cell_timeout,
            student_timeout=student_timeout,
            memory_mb=memory_mb,
            use_sandbox=use_sandbox,
            course=course,
            templates=run_dir / "templates.json",
        )
        cache = None
        if compile_cache is not None:
            cache = class_compile_cache(len(found), compile_cache, run_dir, solutions, progress, uid=base, **settings)

        def one(index: int, submission: intake.Submission) -> dict:
            uid = uids.get()
            try:
                row = _run_worker(index, submission, run_dir, uid=uid, compile_cache=cache, **settings)
            finally:
                uids.put(uid)
            with lock:
                rows.append(row)
                done = len(rows)
            progress(
                f"[{done}/{len(found)}] {row['student_id']}: {row['score']:g}/{row['max_score']:g} "
                f"{row['status']} ({row['seconds']:.1f} s){' - ' + row['message'] if row['status'] != 'graded' else ''}"
            )
            return row

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, range(len(found)), found))
    rows.sort(key=lambda row: row["student_id"])
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "score": f"{row['score']:g}", "max_score": f"{row['max_score']:g}"})
    (out / "grades.json").write_text(json.dumps(rows, indent=1))
    progress(f"graded {len(rows)} submissions of {assignment} in {time.monotonic() - started:.1f} s -> {out}")
    return rows


def cache_key(assignment: str, solutions: Path = SOLUTIONS) -> str:
    """What a class's compilation cache depends on: the solution, the helper package, the JAX build, the machine.

    JAX checks each entry itself (its key covers the program, the compiler options, XLA_FLAGS and the
    versions); this key only keeps a cache per solution and machine, so that a changed solution or a copied
    folder starts a new one instead of missing in an old one."""
    digest = hashlib.sha256()
    for path in [*notebooks(assignment, solutions), *sorted((REPO / "src" / "resumable").rglob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for distribution in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"):
        try:
            digest.update(f"{distribution}={importlib.metadata.version(distribution)}\0".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{distribution}=none\0".encode())
    cpu = ""
    if os.path.exists("/proc/cpuinfo"):
        cpu = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    for part in (
        sys.version,
        platform.machine(),
        cpu,
        os.environ.get("XLA_FLAGS", ""),
        os.environ.get("JAX_ENABLE_X64", ""),
    ):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def class_compile_cache(
    class_size: int, root: Path, run_dir: Path, solutions: Path, progress, *, uid: int, **settings
) -> Path | None:
    """The assignment's JAX compilation cache, built first when missing and the class is big enough.

    Every student's notebook compiles mostly the same programs as the solution (the same train step, the
    same pipeline). The grader runs the solution once, like a student, in the sandbox, with an empty cache
    folder; then each student's kernel starts with its own copy of what it compiled (grader/worker.py) and
    loads those programs instead of compiling them: the same programs, so the same bits. The cache is built
    only from the instructor's solution, never from a student's run (a compiled program is native code), and
    kept under `root` for later gradings (a new build deletes the assignment's older caches there). Returns
    None (no cache) when it is missing and the class is smaller than BUILD_CACHE_FROM, or when the build
    failed (the reason goes to `progress`).
    """
    assignment = settings["assignment"]
    folder = root / f"{assignment}-{cache_key(assignment, solutions)}"
    if folder.is_dir():
        return folder
    if class_size < BUILD_CACHE_FROM:
        return None
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".building-{assignment}-", dir=root))
    started = time.monotonic()
    files = {path.name: path.read_bytes() for path in notebooks(assignment, solutions)}
    solution = intake.Submission(student="solution (compile cache)", files=files)
    settings = {**settings, "out": run_dir / "solution-out"}  # its feedback is not the class's
    row = _run_worker(-1, solution, run_dir, uid=uid, compile_cache=None, compile_cache_out=str(building), **settings)
    outcomes = {test["outcome"] for test in row["tests"]}
    complete = row["status"] == "graded" and outcomes <= {"passed", "needs manual grading"}
    if not complete or not any(building.iterdir()):
        shutil.rmtree(building, ignore_errors=True)
        if complete:
            why = "its solution compiled nothing into it (a notebook that never imports resumable)"
        else:
            why = (
                f"its solution did not pass its own tests in the grader ({row['status']}, "
                f"{row['score']:g}/{row['max_score']:g}: {row['message'][:300]})"
            )
        progress(f"no compile cache for {assignment}: {why}; grading without one")
        return None
    try:
        building.rename(folder)
    except OSError:  # another grading built it meanwhile: use that one
        shutil.rmtree(building, ignore_errors=True)
    for older in root.glob(f"{assignment}-*"):  # caches of an older solution or environment
        if older != folder and older.is_dir():
            shutil.rmtree(older, ignore_errors=True)
    progress(f"compile cache for {assignment} built from its solution in {time.monotonic() - started:.1f} s: {folder}")
    return folder


def _run_worker(index: int, submission: intake.Submission, run_dir: Path, **settings) -> dict:
    """Run grader.worker for one student in its own process; a row even when the worker fails."""
    folder = run_dir / (f"s{index:04d}" if index >= 0 else "solution")
    (folder / "input").mkdir(parents=True)
    files = {}
    for name, data in submission.files.items():
        if data is not None:
            (folder / "input" / name).write_bytes(data)
            files[name] = str(folder / "input" / name)
        else:
            files[name] = None
    spec = {
        "student": submission.student,
        "files": files,
        "notes": submission.notes,
        "problem": submission.problem,
        "folder": str(folder),
        **{key: (str(value) if isinstance(value, Path) else value) for key, value in settings.items()},
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    started = time.monotonic()
    limit = settings["student_timeout"] + 180
    process = subprocess.Popen(
        [sys.executable, "-m", "grader.worker", str(folder / "spec.json")],
        cwd=str(Path(__file__).resolve().parent.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        log, _ = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything the worker left behind
        except ProcessLookupError:
            pass
    result_path = folder / "result.json"
    seconds = time.monotonic() - started
    if result_path.exists():
        row = json.loads(result_path.read_text())
    else:
        tail = log.decode(errors="replace").strip().splitlines()[-3:] if log else []
        row = {
            "student_id": submission.student,
            "assignment": settings["assignment"],
            "score": 0.0,
            "max_score": 0.0,
            "status": "error",
            "message": "the grader itself failed on this submission: " + " / ".join(tail)[-400:],
            "tests": [],
        }
    row["seconds"] = round(seconds, 2)
    shutil.rmtree(folder, ignore_errors=True)
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader grade", description=__doc__.splitlines()[0])
    parser.add_argument("assignment", help="an assignment folder name under solutions/, e.g. 01_snapshot")
    parser.add_argument("submissions", type=Path, help="one folder (or zip) per student, or nbgrader's submitted/")
    parser.add_argument("--out", type=Path, required=True, help="where grades.csv and feedback/ go")
    parser.add_argument("--jobs", type=int, default=None, help="students graded at once (default: cores)")
    parser.add_argument("--cell-timeout", type=float, default=300, help="seconds one cell may run (300)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one student's notebooks may run")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address space per process in the sandbox")
    parser.add_argument(
        NO_SANDBOX_FLAG, dest="no_sandbox", action="store_true", help="run student code unsandboxed (trusted only)"
    )
    parser.add_argument(
        "--compile-cache",
        type=Path,
        default=COMPILE_CACHE,
        help="where each assignment's JAX compilation cache, built from its solution, is kept "
        f"(default: {COMPILE_CACHE.relative_to(REPO)})",
    )
    parser.add_argument(
        "--no-compile-cache", action="store_true", help="every kernel compiles everything itself (slower, same results)"
    )
    args = parser.parse_args(argv)
    try:
        grade_class(
            args.assignment,
            args.submissions,
            args.out,
            jobs=args.jobs,
            cell_timeout=args.cell_timeout,
            student_timeout=args.timeout,
            memory_mb=args.memory_mb,
            use_sandbox=not args.no_sandbox,
            compile_cache=None if args.no_compile_cache else args.compile_cache,
        )
    except GradingError as error:
        print(f"grade: {error}", file=sys.stderr)
        return 1
    return 0
