"""Grading on a Dask cluster: one task per student, run by grader/student.py on a worker's own machine.

Any Dask cluster works (`dask scheduler` and `dask worker`s, dask-gateway, dask-jobqueue): each worker needs
the course checkout and its venv at the same paths as the instructor's, and a sandbox (bubblewrap; fences:
root and cgroups). Before the first student, every worker is checked, and one that cannot grade stops the
grading with a message naming it. Results come back to the instructor's machine, where grader/grade.py
records each as it arrives. Scheduling, and running again the tasks of a worker that was lost, are Dask's.
The scheduler needs nothing of the course: it unpickles every task it is sent, so tasks name only the
standard library's `operator.call` and `pkgutil.resolve_name` (which finds this module's functions on a
worker) and plain data.
"""

from __future__ import annotations

import dataclasses
import operator
import pkgutil
import site
import sys
import uuid
from pathlib import Path

from distributed import Client, as_completed

from grader import intake, results, student
from grader.grade import GradingError, check_machine, class_compile_cache
from grader.paths import REPO

# The grading code this process loaded: a worker started before the checkout changed runs the old one.
LOADED_VERSION = results.course_version()
CONNECT_SECONDS = 10
WAIT_FOR_WORKERS_SECONDS = 60


def connect(address: str) -> Client:
    """A client of the scheduler at `address` (tcp://HOST:PORT, or a scheduler file's path)."""
    try:
        if Path(address).is_file():
            return Client(scheduler_file=address, timeout=CONNECT_SECONDS)
        return Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GradingError(f"no Dask scheduler answers at {address} ({detail})") from None


def check_worker(expected: dict, settings: dict, options: dict) -> str | None:
    """On a worker: None when it can grade this class as the instructor's machine would; else why not."""
    if str(REPO) != expected["repo"]:
        return f"its course checkout is {REPO}, not {expected['repo']}"
    if sys.prefix != expected["prefix"]:
        return f"it runs the Python of {sys.prefix}, not the course's venv {expected['prefix']}"
    version = results.course_version()
    if LOADED_VERSION != version:
        return "it runs the course's code as it was when the worker started, and its checkout changed since: restart it"
    if version != expected["version"]:
        wanted = expected["version"]
        return f"it has another version of the course (grader, helper package or stack): {version}, not {wanted}"
    solutions, course = Path(settings["solutions"]), Path(settings["course"])
    if results.assignment_fingerprint(settings["assignment"], solutions, course, options) != expected["fingerprint"]:
        return f"its {settings['assignment']} (solution or data files) differs from the instructor's"
    try:
        check_machine(settings["use_sandbox"], settings["fenced"])
    except GradingError as error:
        return str(error).split(". ")[0]
    return None


def prepare(client: Client, settings: dict, options: dict, fingerprint: str) -> None:
    """Wait for a worker, make the course importable on each, and check each; GradingError names the first
    worker that cannot grade."""
    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_SECONDS)
    except TimeoutError:
        raise GradingError(f"the Dask cluster has no worker (waited {WAIT_FOR_WORKERS_SECONDS} s)") from None
    client.run(site.addsitedir, str(REPO))  # the task functions are this checkout's grader package
    expected = {
        "repo": str(REPO),
        "prefix": sys.prefix,
        "version": results.course_version(),
        "fingerprint": fingerprint,
    }
    checks = {
        address: on_worker(client, "check_worker", expected, settings, options, workers=[address])
        for address in client.scheduler_info()["workers"]
    }
    for address, future in sorted(checks.items()):
        try:
            answer = future.result()
        except Exception as error:  # noqa: BLE001 (any failure of a worker to run the check names it)
            answer = f"it cannot run the course's grader ({type(error).__name__}: {str(error)[:200]})"
        if answer:
            raise GradingError(f"Dask worker {address} cannot grade: {answer}")


def on_worker(client: Client, name: str, *args, workers: list[str] | None = None, **options):
    """A task calling this module's function `name` on a worker (`workers`: on those only)."""
    pinned = {"workers": workers, "allow_other_workers": False} if workers else {}
    function = client.submit(pkgutil.resolve_name, f"{__name__}:{name}", pure=False, **pinned)
    return client.submit(operator.call, function, *args, pure=False, **pinned, **options)


def grade_remote(index: int, submission: dict, settings: dict) -> dict:
    """The task: one student on this worker, with this machine's compilation cache of the assignment when
    one was built."""
    submission = intake.Submission(**submission)
    settings = dict(settings)
    root = settings.pop("compile_cache_root", None)
    if root is not None:  # the cache's key covers the machine: this worker's own folder under root
        settings["compile_cache"] = class_compile_cache(0, Path(root), print, **settings)
    return student.grade_one(index, submission, settings)


def build_caches(root: str, class_size: int, settings: dict) -> str | None:
    """On a worker: its machine's compilation cache of the assignment (built from the solution if missing)."""
    folder = class_compile_cache(class_size, Path(root), print, **settings)
    return None if folder is None else str(folder)


def grade(address, pending, found, settings, options, fingerprint, compile_cache, record, progress) -> None:
    """Grade `pending` on the cluster at `address`, calling `record(row)` here as each row arrives."""
    index_of = {submission.student: index for index, submission in enumerate(found)}
    with connect(address) as client:
        prepare(client, settings, options, fingerprint)
        workers = client.scheduler_info()["workers"]
        progress(f"grading {len(pending)} students on the Dask cluster at {address} ({len(workers)} workers)")
        settings = dict(settings)
        if compile_cache is not None:  # one build per machine (the workers of a machine share its cache folder)
            one_per_host = {info["host"]: worker for worker, info in sorted(workers.items())}
            builds = [
                on_worker(client, "build_caches", str(compile_cache), len(pending), settings, workers=[worker])
                for worker in one_per_host.values()
            ]
            client.gather(builds)
            settings["compile_cache_root"] = str(compile_cache)
        run = uuid.uuid4().hex[:8]
        futures = [
            on_worker(
                client,
                "grade_remote",
                index_of[item.student],
                dataclasses.asdict(item),
                settings,
                key=f"grade-{run}-{item.student}",
                retries=1,
            )  # fmt: skip
            for item in pending
        ]
        failed = []
        for future in as_completed(futures):
            if future.status != "finished":
                error = future.exception()
                failed.append(f"{future.key.split('-', 2)[2]}: {type(error).__name__}: {str(error)[:300]}")
                continue
            record(future.result())
        if failed:
            raise GradingError(
                f"{len(failed)} students could not be graded on the cluster ({'; '.join(failed[:3])}); "
                "the others are recorded: run grade again to retry them"
            )
