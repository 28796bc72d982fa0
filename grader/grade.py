"""`python -m grader grade ASSIGNMENT SUBMISSIONS_DIR --out OUT_DIR [--jobs N]`: grade a class, safely.

Per student, a worker process (trusted, outside the sandbox; grader/student.py) assembles the notebook to run
from trusted files (grader/assemble.py), runs it with its kernel in a bubblewrap sandbox (grader/sandbox.py)
inside a fence on the whole sandbox (grader/fences.py) while recording each cell's result itself
(grader/execute.py), scores from that record, and renders sanitized feedback. Students are graded in
parallel (`--jobs`, default: the number of cores), or on a Dask cluster (`--dask`, grader/cluster.py).
Writes OUT_DIR/grades.csv, OUT_DIR/grades.json (per-test details) and
OUT_DIR/feedback/<student_id>/<notebook>.html, each student's result durably as soon as it is graded: a
grading that was killed resumes where it stopped (grader/results.py).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from grader import fences, intake, results, sandbox, student
from grader.paths import COURSE, REPO, SOLUTIONS, WORK, assignments, notebooks

COLUMNS = results.COLUMNS
NO_SANDBOX_FLAG = "--no-sandbox-i-trust-this-code"
NO_FENCES_FLAG = "--no-fences"
COMPILE_CACHE = WORK / "compile-cache"
# Building a class's compilation cache costs one run of the solution and saves about a fifth of every
# student's run after it (03: 8.0 s cold, 6.2 s warm): worth it from this many submissions on.
BUILD_CACHE_FROM = 3


class GradingError(RuntimeError):
    """Grading as a whole cannot run (a bad argument, no sandbox); the message says why."""


_uid_base = student.uid_base


def grade_class(
    assignment: str,
    submissions: Path,
    out: Path,
    *,
    jobs: int | None = None,
    cell_timeout: float = 300,
    student_timeout: float = 1800,
    memory_mb: int = 4096,
    disk_mb: int = 1024,
    cpus: float | None = None,
    use_sandbox: bool = True,
    use_fences: bool = True,
    solutions: Path = SOLUTIONS,
    course: Path = COURSE,
    compile_cache: Path | None = COMPILE_CACHE,
    restart: bool = False,
    dask: str | None = None,
    progress=None,
) -> list[dict]:
    """Grade every submission not graded yet into `out`; write grades.csv, grades.json and feedback/; return
    the rows.

    `compile_cache`: the folder that keeps each assignment's JAX compilation cache (see
    `class_compile_cache`); None runs every kernel without one. `restart`: regrade every student.
    `dask`: a Dask scheduler's address or scheduler file (grader/cluster.py); None grades here, `jobs` at once.
    Fences (grader/fences.py) limit each student's sandbox as a whole: `memory_mb`, `disk_mb`, `cpus` (None:
    equal shares of the cores, no cap)."""
    if not (solutions / assignment).is_dir() or not notebooks(assignment, solutions):
        known = ", ".join(assignments()) or "none"
        raise GradingError(f"unknown assignment {assignment!r} (assignments in {solutions}: {known})")
    if not submissions.is_dir():
        raise GradingError(f"submissions folder {submissions} does not exist")
    fenced = use_sandbox and use_fences
    if dask is None:
        check_machine(use_sandbox, fenced)
    wanted = [path.name for path in notebooks(assignment, solutions)]
    jobs = max(1, jobs or os.cpu_count() or 1)
    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    found = intake.collect(submissions, assignment, wanted)
    settings = dict(
        assignment=assignment,
        cell_timeout=cell_timeout,
        student_timeout=student_timeout,
        memory_mb=memory_mb,
        disk_mb=disk_mb,
        cpus=cpus,
        use_sandbox=use_sandbox,
        fenced=fenced,
        solutions=str(solutions),
        course=str(course),
    )
    graded_by = {key: value for key, value in settings.items() if key not in ("solutions", "course")}
    fingerprint = results.assignment_fingerprint(assignment, solutions, course, graded_by)
    keys = {submission.student: results.student_key(fingerprint, submission) for submission in found}
    started = time.monotonic()
    with results.ClassOutput(out, assignment, results.course_version(), restart=restart) as output:
        rows = output.graded(keys)
        pending = [submission for submission in found if submission.student not in rows]
        if rows:
            progress(f"resuming {out}: {len(rows)} of {len(found)} students already graded, {len(pending)} to grade")

        def record(row: dict) -> None:
            try:
                row = output.record(keys[row["student_id"]], row)
            except OSError as error:
                raise results.OutError(
                    f"cannot write results into {out}: {error.strerror or error}; the {len(rows)} students graded "
                    "so far are kept there: run grade again to resume"
                ) from error
            rows[row["student_id"]] = row
            progress(
                f"[{len(rows)}/{len(found)}] {row['student_id']}: {row['score']:g}/{row['max_score']:g} "
                f"{row['status']} ({row['seconds']:.1f} s){' - ' + row['message'] if row['status'] != 'graded' else ''}"
            )

        if pending and dask is not None:
            from grader import cluster

            cluster.grade(dask, pending, found, settings, graded_by, fingerprint, compile_cache, record, progress)
        elif pending:
            _grade_here(pending, found, settings, jobs, compile_cache, record, progress)
        final = output.finish(list(rows.values()), set(keys))
    progress(f"graded {len(pending)} submissions of {assignment} in {time.monotonic() - started:.1f} s -> {out}")
    return final


def check_machine(use_sandbox: bool, fenced: bool) -> str | None:
    """None when this machine can grade as asked; else why not (raised as GradingError here)."""
    if use_sandbox:
        available, why = sandbox.availability()
        if not available:
            raise GradingError(
                f"cannot sandbox student code here: {why}. Student notebooks are untrusted code: without a "
                "sandbox they run as you, can read the solutions and hidden tests, and can change any file "
                f"you can. Install bubblewrap, or grade code you trust with {NO_SANDBOX_FLAG}."
            )
    if fenced:
        available, why = fences.availability()
        if not available:
            raise GradingError(
                f"cannot fence a student's sandbox here: {why}. Without fences one student's processes "
                "together can take all of the machine's memory, processes and disk. Grade as root on Linux "
                f"(cgroups), or accept that risk with {NO_FENCES_FLAG}."
            )
    return None


def _grade_here(pending, found, settings, jobs, compile_cache, record, progress) -> None:
    """The local pool: `jobs` threads, each running one student's worker at a time. A missing compile cache
    is built in one of them while the others grade; a student started before it is ready runs without it
    (the same grades, compiling for itself)."""
    cache: dict[str, Path | None] = {"folder": None}

    def build() -> None:
        cache["folder"] = class_compile_cache(len(pending), compile_cache, progress, **settings)

    def one(index: int, item: intake.Submission) -> dict:
        return student.grade_one(index, item, {**settings, "compile_cache": cache["folder"]})

    index_of = {submission.student: index for index, submission in enumerate(found)}
    pool = ThreadPoolExecutor(max_workers=jobs)
    building = [pool.submit(build)] if compile_cache is not None else []
    futures = [pool.submit(one, index_of[item.student], item) for item in pending]
    try:
        for future in as_completed(futures):
            record(future.result())
        for future in building:
            future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        student.stop_all()  # Ctrl-C, a full disk: the students in flight are given up, the rest kept
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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


def class_compile_cache(class_size: int, root: Path, progress, **settings) -> Path | None:
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
    assignment, solutions = settings["assignment"], Path(settings["solutions"])
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
    row = student.grade_one(-1, solution, {**settings, "compile_cache": None, "compile_cache_out": str(building)})
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader grade", description=__doc__.splitlines()[0])
    parser.add_argument("assignment", help="an assignment folder name under solutions/, e.g. 01_snapshot")
    parser.add_argument(
        "--solutions", type=Path, default=SOLUTIONS, metavar="DIR",
        help="the folder of nbgrader source notebooks that holds ASSIGNMENT (default: the course's solutions/)",
    )  # fmt: skip
    parser.add_argument("submissions", type=Path, help="one folder (or zip) per student, or nbgrader's submitted/")
    parser.add_argument("--out", type=Path, required=True, help="where grades.csv and feedback/ go")
    parser.add_argument("--jobs", type=int, default=None, help="students graded at once (default: cores)")
    parser.add_argument("--cell-timeout", type=float, default=300, help="seconds one cell may run (300)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one student's notebooks may run")
    parser.add_argument("--memory-mb", type=int, default=4096, help="memory of a student's whole sandbox (4096)")
    parser.add_argument("--disk-mb", type=int, default=1024, help="size of one student's scratch folder (1024)")
    parser.add_argument("--cpus", type=float, default=None, help="cap on a sandbox's cores (default: equal shares)")
    parser.add_argument(
        NO_FENCES_FLAG, dest="no_fences", action="store_true",
        help="no cgroup fences on a student's whole sandbox (--memory-mb then limits each process's address space)",
    )  # fmt: skip
    parser.add_argument("--restart", action="store_true", help="regrade every student, even those OUT holds")
    parser.add_argument(
        "--dask", default=None, metavar="ADDRESS", help="grade on a Dask cluster: tcp://HOST:PORT or a scheduler file"
    )
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
            disk_mb=args.disk_mb,
            cpus=args.cpus,
            use_sandbox=not args.no_sandbox,
            use_fences=not args.no_fences,
            compile_cache=None if args.no_compile_cache else args.compile_cache,
            restart=args.restart,
            dask=args.dask,
            solutions=args.solutions,
        )
    except (GradingError, results.OutError) as error:
        print(f"grade: {error}", file=sys.stderr)
        return 1
    return 0
