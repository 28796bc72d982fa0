"""Training jobs in their own processes: killed (before any checkpoint, mid-save), preempted, resumed exactly."""

import os
import re
import signal

import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from matplotlib.figure import Figure

from resumable import RunConfig, make_triple, state_diff, train
from resumable.checkpoints.jobs import (
    MAX_JOB_SERVERS,
    ForkedProcess,
    FunctionsModuleError,
    JobError,
    JobRecord,
    TrainingJob,
    job_server_pids,
    run_job,
    start_process,
    step_folders,
    temporary_folders,
    write_functions_module,
)
from resumable.checkpoints.manager import open_manager
from resumable.views.timeline import kill_and_resume, plot_timeline

NAMES = ("pipeline", "model", "optimizer")
CONFIG = RunConfig(seed=3, num_hidden=16)
STEPS, EVERY, KEEP = 10, 3, 2
SETTINGS = {"steps": STEPS, "every": EVERY, "keep": KEEP, "config": CONFIG}


def save_checkpoint(manager, step, pipeline, model, optimizer, *, force=False):
    objects = {"pipeline": pipeline, "model": model, "optimizer": optimizer}
    items = {name: ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(obj))) for name, obj in objects.items()}
    return manager.save(step, args=ocp.args.Composite(**items), force=force)


def resume_or_start(manager, pipeline, model, optimizer):
    step = manager.latest_step()
    if step is None:
        return 0
    objects = {"pipeline": pipeline, "model": model, "optimizer": optimizer}
    templates = {name: ocp.args.StandardRestore(nnx.to_pure_dict(nnx.state(obj))) for name, obj in objects.items()}
    restored = manager.restore(step, args=ocp.args.Composite(**templates))
    for name, obj in objects.items():
        state = nnx.state(obj)
        nnx.replace_by_pure_dict(state, restored[name])
        nnx.update(obj, state)
    return int(step)


def broken_resume_or_start(manager, pipeline, model, optimizer):
    raise RuntimeError("this resume_or_start fails in the process")


@pytest.fixture(scope="module")
def functions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("functions")
    return write_functions_module(folder / "functions.py", save_checkpoint, resume_or_start)


@pytest.fixture(scope="module")
def reference():
    triple = make_triple(CONFIG)
    return triple, train(*triple, STEPS)


def assert_losses_match(record, reference_losses):
    assert record.losses, "the process trained no step"
    for step, loss in record.losses.items():
        assert loss == reference_losses[step - 1], f"step {step}: {loss!r} vs {reference_losses[step - 1]!r}"


def test_functions_module_holds_the_sources(functions):
    text = functions.read_text()
    assert "def save_checkpoint(" in text and "def resume_or_start(" in text
    assert "import orbax.checkpoint as ocp" in text and "from flax import nnx" in text


@pytest.mark.slow
def test_kills_at_every_kind_of_point_then_an_exact_finish(functions, reference, tmp_path):
    reference_triple, reference_losses = reference
    directory = tmp_path / "checkpoints"

    before_any = run_job(functions, directory, kill="sigkill", at_step=2, **SETTINGS)
    assert (before_any.start_step, before_any.last_step, before_any.exit_code) == (0, 2, -9)
    assert step_folders(directory) == [] and temporary_folders(directory) == []

    mid_save = run_job(functions, directory, kill="sigkill_during_save", at_step=6, **SETTINGS)
    assert (mid_save.start_step, mid_save.last_step, mid_save.exit_code) == (0, 6, -9)
    assert mid_save.ending == "killed during save"
    assert step_folders(directory) == ["3"] and temporary_folders(directory) == ["6.orbax-checkpoint-tmp"]
    with open_manager(directory, every=EVERY, keep=KEEP) as manager:
        assert manager.all_steps() == [3] and manager.latest_step() == 3

    preempted = run_job(functions, directory, kill="sigterm", at_step=7, **SETTINGS)
    assert (preempted.start_step, preempted.last_step, preempted.exit_code) == (3, 7, 0)
    assert preempted.saves_started == [6, 7] and "SIGTERM" in preempted.message
    assert step_folders(directory) == ["6", "7"] and temporary_folders(directory) == []

    finished = run_job(functions, directory, **SETTINGS)
    assert (finished.start_step, finished.last_step, finished.exit_code) == (7, STEPS, 0)
    assert finished.saves_started == [9, 10]  # the policy's step 9, and the last step, forced
    for record in (before_any, mid_save, preempted, finished):
        assert_losses_match(record, reference_losses)

    resumed = make_triple(CONFIG)
    with open_manager(directory, every=EVERY, keep=KEEP) as manager:
        assert resume_or_start(manager, *resumed) == STEPS
    assert state_diff(dict(zip(NAMES, reference_triple, strict=True)), dict(zip(NAMES, resumed, strict=True))).identical


def test_a_mid_save_kill_needs_a_checkpoint_step(functions, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint is written at step 4"):
        run_job(functions, tmp_path / "checkpoints", kill="sigkill_during_save", at_step=4, **SETTINGS)
    with pytest.raises(ValueError, match="kill must be one of"):
        run_job(functions, tmp_path / "checkpoints", kill="sighup", at_step=4, **SETTINGS)


@pytest.mark.slow
def test_a_failing_job_raises_and_leaves_no_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # as some notebook front ends set it
    broken = write_functions_module(tmp_path / "broken.py", save_checkpoint, broken_resume_or_start)
    broken.write_text(broken.read_text().replace("broken_resume_or_start", "resume_or_start"))
    with pytest.raises(JobError, match="this resume_or_start fails in the process") as raised:
        run_job(broken, tmp_path / "checkpoints", kill="sigkill", at_step=2, **SETTINGS)
    assert "\x1b[" not in str(raised.value), "ANSI colour codes in the quoted traceback (PYTHON_COLORS)"


def placeholder_save(manager, step, pipeline, model, optimizer, *, force=False):
    """nbgrader's stub, as a student copy has it."""
    # YOUR CODE HERE
    raise NotImplementedError()


def save_with_a_notebook_name(manager, step, pipeline, model, optimizer, *, force=False):
    return manager.save(step, args=ocp.args.StandardSave(nnx.state(model)), force=force or step == STEPS)


def resume_with_a_typo(manager, pipeline, model, optimizer):
    return manager.latest_step() or jnp.int32(0)  # noqa: F821 (the typo under test)


def resume_with_a_helper(manager, pipeline, model, optimizer):
    return latest(manager)


def latest(manager):
    return manager.latest_step() or 0


@pytest.mark.parametrize(
    ("functions", "message"),
    [
        ((placeholder_save,), "placeholder_save is still the exercise's placeholder (raise NotImplementedError())"),
        ((save_with_a_notebook_name,), "save_with_a_notebook_name uses 'STEPS', a name of this notebook"),
        ((save_checkpoint, resume_with_a_typo), "resume_with_a_typo uses 'jnp', a name defined nowhere (a typo?)"),
        ((resume_with_a_helper,), "resume_with_a_helper uses 'latest', a name of this notebook"),
        ((np.sum,), "is not a function defined with `def`"),
    ],
)
def test_functions_a_process_could_not_run_are_refused_before_it_starts(functions, message, tmp_path):
    with pytest.raises(FunctionsModuleError, match=re.escape(message)):
        write_functions_module(tmp_path / "functions.py", *functions)
    assert not (tmp_path / "functions.py").exists(), "a refused module must not be written"


def test_functions_may_use_each_other_the_four_imports_and_builtins(tmp_path):
    path = write_functions_module(tmp_path / "functions.py", resume_with_a_helper, latest, save_checkpoint)
    text = path.read_text()
    assert "def resume_with_a_helper(" in text and "def latest(" in text and "def save_checkpoint(" in text


@pytest.mark.slow
def test_a_fresh_job_never_calls_resume_or_start(reference, tmp_path):
    _, reference_losses = reference
    only_save = write_functions_module(tmp_path / "only_save.py", save_checkpoint)
    record = run_job(only_save, tmp_path / "checkpoints", fresh=True, **{**SETTINGS, "every": 5})
    assert (record.start_step, record.exit_code, record.saves_started) == (0, 0, [5, 10])
    assert_losses_match(record, reference_losses)


def restored_checkpoint(directory, step):
    triple = make_triple(CONFIG)
    with open_manager(directory, every=EVERY, keep=KEEP) as manager:
        assert resume_or_start(manager, *triple) == step
    return dict(zip(NAMES, triple, strict=True))


@pytest.mark.slow
def test_a_forked_job_is_the_job_a_fresh_process_would_be(functions, monkeypatch, tmp_path):
    """The job server's children (the libraries imported once) train and save what `python -m` jobs do."""
    runs = {}
    for how in ("fresh process", "first", "forked"):  # the first job of a server's key runs as a fresh process
        with monkeypatch.context() as patch:
            if how == "fresh process":
                patch.setenv("RESUMABLE_JOB_SERVER", "0")
            with TrainingJob(functions, tmp_path / how.replace(" ", "-"), pause_after=5, **SETTINGS) as job:
                job.wait_for("paused")
                forked = isinstance(job.process, ForkedProcess)
                job.send(signal.SIGKILL)
                code = job.finish()
            runs[how] = job
        assert code == -signal.SIGKILL, f"{how}: exit status {code} after SIGKILL"
        assert forked == (how == "forked"), f"{how}: forked={forked}"
    assert job_server_pids(), "no job server is running after a forked job"
    fresh = [event for event in runs["fresh process"].events if event["event"] == "step"]
    for how in ("first", "forked"):
        assert [event for event in runs[how].events if event["event"] == "step"] == fresh, how
        diff = state_diff(restored_checkpoint(tmp_path / "fresh-process", 3), restored_checkpoint(tmp_path / how, 3))
        assert diff.identical, f"{how}: {diff}"


def run_module(module, environment, stderr_path):
    with open(stderr_path, "wb") as stderr:
        process = start_process(module, [], environment, stderr)
    output = process.stdout.read()
    process.stdout.close()
    process.stdin.close()
    return process, output, process.wait(30), stderr_path.read_text()


@pytest.mark.slow
def test_a_kernel_keeps_a_few_job_servers_and_their_children_run_modules_as_python_m(tmp_path):
    for key in range(MAX_JOB_SERVERS + 2):
        environment = {**os.environ, "RESUMABLE_TEST_KEY": str(key)}
        plain, expected, code, _ = run_module("platform", environment, tmp_path / f"{key}-plain.log")
        forked, output, forked_code, errors = run_module("platform", environment, tmp_path / f"{key}-forked.log")
        assert not isinstance(plain, ForkedProcess), "the first process of a key runs while its server starts"
        assert isinstance(forked, ForkedProcess), f"key {key}: the second process was not forked"
        assert (forked_code, output, errors) == (code, expected, ""), "a forked `python -m platform` differs"
        assert len(job_server_pids()) <= MAX_JOB_SERVERS, job_server_pids()


@pytest.mark.slow
def test_a_server_with_a_job_running_is_not_closed_for_another(functions, tmp_path):
    run_job(functions, tmp_path / "first", **SETTINGS)  # so that the next job of this key is forked
    with TrainingJob(functions, tmp_path / "paused", pause_after=1, **SETTINGS) as job:
        job.wait_for("paused")
        assert isinstance(job.process, ForkedProcess)
        for key in range(MAX_JOB_SERVERS + 1):  # more new servers than the limit while the job runs
            environment = {**os.environ, "RESUMABLE_TEST_KEY": f"busy-{key}"}
            for run in range(2):
                run_module("platform", environment, tmp_path / f"{key}-{run}.log")
        assert job.process.poll() is None, f"the paused job ended ({job.process.returncode}) when servers closed"
        job.send(signal.SIGKILL)
        assert job.finish() == -signal.SIGKILL


@pytest.mark.slow
def test_a_module_that_cannot_be_imported_fails_as_with_python_m(tmp_path):
    environment = {**os.environ, "RESUMABLE_TEST_KEY": "missing"}
    for attempt in range(2):  # the first while its server starts (and fails), the second after
        process, output, code, errors = run_module("resumable.no_such_module", environment, tmp_path / f"{attempt}")
        assert not isinstance(process, ForkedProcess) and code == 1 and output == "", (attempt, code, output)
        assert "No module named resumable.no_such_module" in errors, errors


@pytest.mark.slow
def test_leaving_the_block_kills_the_job(functions, tmp_path):
    with TrainingJob(functions, tmp_path / "checkpoints", pause_after=1, **SETTINGS) as job:
        job.wait_for("paused")
    assert job.process.returncode == -signal.SIGKILL


def fake_record(start, last, saves, ending, exit_code):
    losses = {step: 1.0 / step for step in range(start + 1, last + 1)}
    return JobRecord(start, losses, saves, ending, exit_code, pid=1)


def test_timeline_draws_lanes_and_losses():
    records = [fake_record(0, 8, [5], "killed", -9), fake_record(5, 12, [10], "done", 0)]
    reference = [1.0 / step for step in range(1, 13)]
    figure = plot_timeline(records, steps=12, kept=[10], reference=reference)
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert "max |difference| = 0.0000e+00" in figure.axes[1].get_title()
    assert len(plot_timeline(records, steps=12).axes) == 1


@pytest.mark.slow
def test_kill_step_picker_callback(functions, reference):
    reference_triple, reference_losses = reference
    figure = kill_and_resume(
        functions,
        resume_or_start,
        kill_step=4,
        kill="sigkill_during_save",
        reference=reference_losses,
        reference_state=dict(zip(NAMES, reference_triple, strict=True)),
        **SETTINGS,
    )
    title = figure.axes[0].get_title()
    assert title.splitlines() == [
        "sigkill_during_save at step 6, resumed from step 3",
        "every state leaf identical; left behind: 6.orbax-checkpoint-tmp",
    ], title
    assert "max |difference| = 0.0000e+00" in figure.axes[1].get_title()
    assert np.isfinite(reference_losses).all()
