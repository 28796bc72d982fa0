"""Grade one student (run by grader/grade.py as `python -m grader.worker SPEC.json`; trusted code).

Writes result.json beside SPEC.json (the student's row plus per-test details) and, per notebook, the scored
notebook that the feedback page shows (feedback/<stem>.json; grader/student.py renders the page).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import nbformat

from grader import intake, sandbox
from grader.assemble import Template, assemble, for_feedback, is_manual, nbgrader_meta, read_templates, scrub
from grader.execute import Execution, execute

PR_SET_PDEATHSIG = 1
PASSTHROUGH = ("JAX_PLATFORMS", "XLA_FLAGS", "RESUMABLE_QUIET", "JAX_ENABLE_X64", "TF_CPP_MIN_LOG_LEVEL")


def kernel_environment(home: Path) -> dict[str, str]:
    """The kernel's whole environment inside the sandbox (nothing else of the grader's leaks in)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "IPYTHONDIR": str(home / ".ipython"),
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "XDG_CACHE_HOME": "/tmp/cache",
        "JUPYTER_PREFER_ENV_PATH": "1",
        "NBGRADER_EXECUTION": "autograde",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "JAX_PLATFORMS": "cpu",
        "RESUMABLE_QUIET": "1",
    }
    env.update({key: os.environ[key] for key in PASSTHROUGH if key in os.environ})
    return env


def first_line(text: str) -> str:
    """The whole first non-blank line of an error message: its cause and its hint (grades.csv shows it)."""
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0].strip() if lines else ""


def score_tests(template: Template, assembled, execution: Execution) -> list[dict]:
    """Per autograded test cell: points earned, decided from the executor's record only."""
    results = []
    for index, grade_id in assembled.tests.items():
        cell = assembled.notebook.cells[index]
        points = float(nbgrader_meta(cell).get("points", 0) or 0)
        record = execution.cells.get(index)
        if execution.tampered_at is not None and index >= execution.tampered_at:
            outcome = "not trusted: " + (execution.tampered or "")
        elif execution.stopped_at is not None and index >= execution.stopped_at:
            outcome = "not run: " + (execution.stopped or "execution stopped")
        elif record is None or not record.completed:
            outcome = "not run"
        elif record.status != "ok" or record.errors:
            ename, evalue = record.errors[0] if record.errors else ("Error", "")
            message = first_line(scrub(evalue, template.hidden_lines))
            outcome = f"failed: {ename}" + (f": {message}" if message else "")
        elif record.stderr:
            outcome = "failed: wrote to stderr (nbgrader scores that as a failure)"
        else:
            outcome = "passed"
        score = points if outcome == "passed" else 0.0
        meta = cell.metadata.nbgrader
        meta["score"], meta["points"] = score, points
        results.append(
            {"notebook": template.name, "grade_id": grade_id, "score": score, "points": points, "outcome": outcome}
        )
    for cell in assembled.notebook.cells:
        if is_manual(cell):
            meta = cell.metadata.nbgrader
            meta["score"], meta["points"] = 0.0, float(meta.get("points", 0) or 0)
            meta.setdefault("comment", None)
            results.append(
                {
                    "notebook": template.name,
                    "grade_id": meta["grade_id"],
                    "score": 0.0,
                    "points": meta["points"],
                    "outcome": "needs manual grading",
                }
            )
    for cell in assembled.notebook.cells:
        if nbgrader_meta(cell).get("solution"):
            cell.metadata.nbgrader.setdefault("comment", None)
    return results


def grade(spec: dict) -> dict:
    student, assignment = spec["student"], spec["assignment"]
    folder = Path(spec["folder"])
    templates = read_templates(Path(spec["templates"]))
    row = {
        "student_id": student,
        "assignment": assignment,
        "score": 0.0,
        "max_score": sum(template.max_score for template in templates.values()),
        "status": "graded",
        "message": "",
        "tests": [],
    }
    problems: list[str] = []
    notes: list[str] = list(spec.get("notes") or [])
    if spec.get("problem"):
        row.update(status="error", message=spec["problem"])
        return row
    if all(path is None for path in spec["files"].values()):
        names = ", ".join(spec["files"])
        row.update(status="missing", message=f"no submitted notebook named {names} was found")
        return row
    feedback_dir = folder / "feedback"  # grader/student.py hands the pages back with the row
    workdir = folder / "scratch" / "work"
    for number, (name, path) in enumerate(spec["files"].items()):
        template = templates[name]
        if path is None:
            problems.append(f"{name} is missing")
            continue
        notebook, problem = intake.parse(Path(path).read_bytes(), name)
        if notebook is None:
            problems.append(problem)
            continue
        assembled = assemble(template, notebook)
        if template.answer_ids and assembled.answers_found == 0:
            problems.append(
                f"{name} has none of {assignment}'s answer cells (a notebook of another assignment, or cells "
                "whose metadata was removed?); it was not run"
            )
            continue
        notes += assembled.notes
        execution = _run(assembled, folder, workdir, number, spec)
        tests = score_tests(template, assembled, execution)
        row["tests"] += tests
        row["score"] += sum(test["score"] for test in tests)
        if execution.tampered:
            problems.append(f"{name}: {execution.tampered}; tests from there on were not trusted and scored 0")
        elif execution.stopped:
            problems.append(f"{name}: {execution.stopped}; tests not yet run scored 0")
        feedback = joined_streams(for_feedback(assembled.notebook, template))
        score = sum(test["score"] for test in tests)
        maximum = template.max_score
        feedback_dir.mkdir(parents=True, exist_ok=True)
        page = {"notebook": nbformat.writes(feedback), "name": name, "score": score, "max_score": maximum}
        (feedback_dir / (Path(name).stem + ".json")).write_text(json.dumps(page))
    failed = [test for test in row["tests"] if test["outcome"].startswith("failed")]
    summary = []
    if problems:
        row["status"] = "error"
        summary += problems
    if failed:
        summary.append(
            f"{len(failed)} of {len(row['tests'])} tests failed: "
            + "; ".join(f"{test['grade_id']} ({test['outcome'][len('failed: ') :]})" for test in failed[:4])
        )
    summary += notes
    row["message"] = " | ".join(summary).replace("\n", " ")[:1000]
    return row


def joined_streams(notebook):
    """`notebook` with each run of stdout (or stderr) outputs of a cell joined into one: how the kernel's
    flushes split a cell's printing varies from run to run (seen under load), the feedback page must not."""
    for cell in notebook.cells:
        joined = []
        for output in cell.get("outputs", []):
            previous = joined[-1] if joined else None
            if (
                output.get("output_type") == "stream"
                and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")
            ):
                previous["text"] = "".join(previous["text"]) + "".join(output["text"])
            else:
                joined.append(output)
        if "outputs" in cell:
            cell["outputs"] = joined
    return notebook


def _run(assembled, folder: Path, workdir: Path, number: int, spec: dict) -> Execution:
    """Execute in the sandbox (or not, when the instructor said the code is trusted)."""
    scratch = folder / "scratch"
    if not workdir.exists():
        workdir.mkdir(parents=True)
        release = Path(spec["course"]) / spec["assignment"]
        if release.is_dir():  # data files that come with the assignment (never notebooks)
            shutil.copytree(
                release,
                workdir,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"),
            )
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    sockets = scratch / f".k{number}"
    sockets.mkdir()
    uid = int(spec["uid"])
    memory = int(spec["memory_mb"]) * 1024**2
    if spec.get("fenced"):  # the fence limits the sandbox as a whole; these are only per process
        processes = int(spec.get("processes") or sandbox.Limits.processes)
        limits = sandbox.Limits(memory_bytes=max(memory, sandbox.Limits.memory_bytes), processes=2 * processes)
    else:
        limits = sandbox.Limits(memory_bytes=memory)
    env = kernel_environment(home)
    cache = compile_cache(spec, scratch)
    if cache is not None:
        env["RESUMABLE_JAX_CACHE"] = str(cache)
    if spec["use_sandbox"]:
        os.chmod(scratch, 0o755)
        sandbox.prepare_writable(scratch, uid)
        accounts = sandbox.write_accounts(folder / "etc", uid, home)

        def wrap(command: list[str]) -> list[str]:
            sandboxed = sandbox.command(
                command, scratch, env=env, uid=uid, limits=limits, chdir=workdir, accounts=accounts
            )
            # the fence's OOM killer then picks the sandbox's processes first, never this worker while one is left
            return ["/bin/sh", "-c", 'echo 1000 > /proc/self/oom_score_adj && exec "$@"', "sh", *sandboxed]

        owner = uid if sandbox.drops_privileges() else None
    else:

        def wrap(command: list[str]) -> list[str]:
            return command

        owner = None
    execution = execute(
        assembled.notebook,
        workdir,
        set(assembled.tests),
        wrap=wrap,
        socket_dir=sockets,
        owner=owner,
        cell_timeout=float(spec["cell_timeout"]),
        total_timeout=float(spec["student_timeout"]),
    )
    if cache is not None and spec.get("compile_cache_out"):  # building the class's cache (trusted notebook)
        shutil.copytree(cache, spec["compile_cache_out"], dirs_exist_ok=True)
    return execution


def compile_cache(spec: dict, scratch: Path) -> Path | None:
    """The kernel's JAX compilation cache folder in the scratch copy, or None (no cache).

    A student's kernel gets its own copy of the class's cache (`compile_cache`: built from the assignment's
    solution by the grader, see grader/grade.py), so what it compiles differently goes into that copy only:
    nothing a student's kernel writes reaches another student. The run that builds the class's cache starts
    from an empty folder (`compile_cache_out`: where it is copied when the notebook ends).
    """
    seed, out = spec.get("compile_cache"), spec.get("compile_cache_out")
    if not seed and not out:
        return None
    cache = scratch / "jax-cache"
    if not cache.exists():
        if seed:
            shutil.copytree(seed, cache, symlinks=True)
        else:
            cache.mkdir()
    return cache


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this worker when the process that started it dies (a grader killed with SIGKILL); the
    sandbox (bubblewrap --die-with-parent) then dies with it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # it died before the line above
        os._exit(1)


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    if spec.get("parent_pid"):
        die_with_parent(int(spec["parent_pid"]))
    row = grade(spec)
    (spec_path.parent / "result.json").write_text(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
