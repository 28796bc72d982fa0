"""Plausible wrong answers to every exercise, each a small named change to the solution notebook's own answer.

One table per assignment (`TABLES`): a `WrongAnswer` names the answer cell it changes (its grade_id), the text
replacements that make the mistake (each `old` must occur exactly once in the solution's answer, so that a
changed solution fails loudly here instead of silently testing nothing), and the cause: text that the failing
visible self-check's message must show. tests/test_wrong_answers.py runs every table through the notebook's
visible self-checks and hidden tests; the simulated class (tests/grader_fixtures/simulated_class.py) grades
some of them, whole notebooks at a time, through the grader.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import nbformat

from grader import markers
from grader.assemble import nbgrader_meta
from grader.paths import SOLUTIONS, notebooks

MARKERS = (markers.BEGIN_SOLUTION, markers.END_SOLUTION)


@functools.cache
def solution_answer(assignment: str, grade_id: str) -> str:
    """The solution cell `grade_id` as a student would hand it in: its source without the solution markers."""
    for path in notebooks(assignment, SOLUTIONS):
        for cell in nbformat.read(path, as_version=4).cells:
            if nbgrader_meta(cell).get("grade_id") == grade_id:
                lines = cell.source.splitlines(keepends=True)
                return "".join(line for line in lines if not line.strip().startswith(MARKERS))
    raise KeyError(f"{assignment} has no cell {grade_id}")


@functools.cache
def answer_body(assignment: str, grade_id: str) -> str:
    """The solution cell `grade_id` as a short answer: its first line (the `def`) and the lines between the
    solution markers, without the docstring (for replacements whose text the docstring also holds)."""
    lines = solution_answer(assignment, grade_id).splitlines(keepends=True)
    for path in notebooks(assignment, SOLUTIONS):
        for cell in nbformat.read(path, as_version=4).cells:
            if nbgrader_meta(cell).get("grade_id") == grade_id:
                begin, end = markers.solution_region(cell.source.splitlines(keepends=True))
                return lines[0] + "".join(cell.source.splitlines(keepends=True)[begin + 1 : end])
    raise KeyError(f"{assignment} has no cell {grade_id}")


def variant(source: str, old: str, new: str) -> str:
    """`source` with the one occurrence of `old` replaced by `new`."""
    return mutate(source, ((old, new),))


def mutate(source: str, changes: tuple[tuple[str, str], ...]) -> str:
    """`source` with each (old, new) replacement made; every `old` must occur exactly once."""
    for old, new in changes:
        if source.count(old) != 1:
            raise ValueError(f"{old!r} occurs {source.count(old)} times in the solution, not once")
        source = source.replace(old, new)
    return source


@dataclass(frozen=True)
class WrongAnswer:
    """A plausible mistake in one answer cell; `cause` is text the visible self-check's message must show."""

    name: str
    answer_id: str
    changes: tuple[tuple[str, str], ...]
    cause: str

    def source(self, assignment: str) -> str:
        return mutate(solution_answer(assignment, self.answer_id), self.changes)


def wrong(name: str, answer_id: str, cause: str, *changes: tuple[str, str]) -> WrongAnswer:
    return WrongAnswer(name, answer_id, changes, cause)


NO_UPDATE_03 = ("    nnx.update(module, live_state)\n", "")
TABLES: dict[str, list[WrongAnswer]] = {
    "03_update": [
        wrong("no-nnx-update", "restore_into_solution", "was nnx.update called?", NO_UPDATE_03),
        wrong(
            "update-without-replace",
            "restore_into_solution",
            "a misspelt key ('kernal') was accepted",
            ("    live_state = nnx.state(module)\n    nnx.replace_by_pure_dict(live_state, pure)\n", ""),
            ("nnx.update(module, live_state)", "nnx.update(module, pure)"),
        ),
        wrong(
            "global-checkpoint",
            "restore_into_solution",
            "not a notebook global",
            ("replace_by_pure_dict(live_state, pure)", 'replace_by_pure_dict(live_state, saved["model"])'),
        ),
        wrong(
            "returns-state",
            "restore_into_solution",
            "returns None",
            ("live_state)\n", "live_state)\n    return live_state\n"),
        ),
        wrong(
            "stale-reversed",
            "stale_leaves_solution",
            "every trained leaf is stale",
            ("differs_from_saved - differs_from_fresh", "differs_from_fresh - differs_from_saved"),
        ),
        wrong(
            "stale-ignores-fresh",
            "stale_leaves_solution",
            "differs from both",
            ("sorted(differs_from_saved - differs_from_fresh)", "sorted(differs_from_saved)"),
        ),
        wrong(
            "stale-global-fresh",
            "stale_leaves_solution",
            "not a notebook global",
            ("state_diff(module, fresh)", "state_diff(module, stale_fresh)"),
        ),
    ],
    "05_triple": [
        wrong(
            "optimizer-left-out",
            "save_triple_solution",
            "the checkpoint's top-level keys are ['model', 'pipeline']",
            ("in parts.items()}", 'in parts.items() if name != "optimizer"}'),
        ),
        wrong(
            "rngs-left-out",
            "save_triple_solution",
            "an RNG stream",
            ("nnx.state(part)", "nnx.state(part, nnx.Not(nnx.RngState))"),
        ),
        wrong(
            "restore-no-update",
            "restore_triple_solution",
            "was nnx.update called for each part?",
            ("        nnx.update(part, state)\n", ""),
        ),
        wrong(
            "restore-pipeline-left-out",
            "restore_triple_solution",
            "pipeline/_position",
            (
                "    for name, part in parts.items():\n",
                "    for name, part in parts.items():\n"
                '        if name == "pipeline":\n            continue  # the pipeline only serves data\n',
            ),
        ),
        wrong(
            "latest-by-name",
            "latest_checkpoint_solution",
            "compare the numbers as ints",
            ("steps = [0]", 'steps = ["0"]'),
            ("steps.append(int(number))", "steps.append(number)"),
            (
                "return max(step for step in steps if at_or_before is None or step <= at_or_before)",
                "return int(max(step for step in steps if at_or_before is None or int(step) <= at_or_before))",
            ),
        ),
        wrong(
            "latest-counts-uncommitted",
            "latest_checkpoint_solution",
            "skip names that are not step_<digits>",
            ("number.isdigit()", 'number.split(".")[0].isdigit()'),
            ("int(number)", 'int(number.split(".")[0])'),
        ),
        wrong(
            "latest-before-not-at",
            "latest_checkpoint_solution",
            "at_or_before=20",
            ("step <= at_or_before", "step < at_or_before"),
        ),
        wrong(
            "latest-none-when-empty",
            "latest_checkpoint_solution",
            "return 0 when no checkpoint fits",
            ("steps = [0]", "steps = []"),
        ),
        wrong(
            "loop-counts-from-zero",
            "train_loop_solution",
            "counting steps from 1",
            ("range(start_step + 1, last_step + 1)", "range(start_step, last_step)"),
        ),
        wrong(
            "loop-stops-before-saving",
            "train_loop_solution",
            "saves that step's checkpoint before it stops",
            ("last_step = num_steps if stop_at is None else min(stop_at, num_steps)", "last_step = num_steps"),
            ("next(pipeline))))\n", "next(pipeline))))\n        if step == stop_at:\n            break  # the crash\n"),
        ),
        wrong(
            "loop-ignores-start-step",
            "train_loop_solution",
            "start_step + 1",
            ("range(start_step + 1, last_step + 1)", "range(1, last_step + 1)"),
        ),
        wrong(
            "loop-global-interval",
            "train_loop_solution",
            "s % checkpoint_every == 0",
            ("step % checkpoint_every == 0", "step % CHECKPOINT_EVERY == 0"),
        ),
    ],
    "08_sharding": [
        wrong(
            "template-unsharded",
            "sharded_template_solution",
            "use NamedSharding",
            (
                "jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)",
                "jax.ShapeDtypeStruct(leaf.shape, leaf.dtype)",
            ),
        ),
        wrong(
            "template-global-rule",
            "sharded_template_solution",
            "not the notebook's partition_spec",
            ("sharding = NamedSharding(mesh, spec_fn(", "sharding = NamedSharding(mesh, partition_spec("),
        ),
        wrong(
            "template-global-mesh",
            "sharded_template_solution",
            "the mesh you were given",
            ("sharding = NamedSharding(mesh, ", "sharding = NamedSharding(mesh_a, "),
        ),
        wrong(
            "restore-plain-template",
            "restore_onto_solution",
            "did you restore with the sharded template",
            ("restore(path, target)", "restore(path, template_state)"),
        ),
        wrong(
            "restore-global-rule",
            "restore_onto_solution",
            "not the notebook's partition_spec",
            (
                "sharded_template(template_state, mesh, spec_fn)",
                "sharded_template(template_state, mesh, partition_spec)",
            ),
        ),
        wrong(
            "restore-global-mesh",
            "restore_onto_solution",
            "the mesh you were given",
            ("sharded_template(template_state, mesh, spec_fn)", "sharded_template(template_state, mesh_b, spec_fn)"),
        ),
        wrong(
            "template-keeps-saved-sharding",
            "sharded_template_solution",
            "with the mesh you were given",
            (
                "jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)",
                "jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)",
            ),
        ),
        wrong(
            "restore-global-checkpoint",
            "restore_onto_solution",
            "not the notebook's CHECKPOINT",
            ("restore(path, target)", "restore(CHECKPOINT, target)"),
        ),
    ],
    "07_production": [
        wrong(
            "save-optimizer-left-out",
            "save_checkpoint_solution",
            "holds items ['model', 'pipeline']",
            (', "optimizer": optimizer}', "}"),
        ),
        wrong(
            "save-pipeline-left-out",
            "save_checkpoint_solution",
            "holds items ['model', 'optimizer']",
            ('{"pipeline": pipeline, ', "{"),
        ),
        wrong(
            "save-waits",
            "save_checkpoint_solution",
            "it must not wait for the save",
            (
                "    return manager.save(step, args=ocp.args.Composite(**items), force=force)\n",
                "    started = manager.save(step, args=ocp.args.Composite(**items), force=force)\n"
                "    manager.wait_until_finished()  # make sure it is on disk\n"
                "    return started\n",
            ),
        ),
        wrong(
            "save-ignores-force",
            "save_checkpoint_solution",
            "pass force=force to manager.save",
            ("Composite(**items), force=force)", "Composite(**items))"),
        ),
        wrong("save-always-forces", "save_checkpoint_solution", "no force=True", ("force=force)", "force=True)")),
        wrong(
            "save-own-interval",
            "save_checkpoint_solution",
            "no interval of your own",
            (
                "    objects = {",
                "    if step % 5 != 0 and not force:  # the run saves every 5 steps\n        return False\n"
                "    objects = {",
            ),
        ),
        wrong(
            "save-returns-none",
            "save_checkpoint_solution",
            "return what manager.save returns",
            ("    return manager.save(", "    manager.save("),
        ),
        wrong(
            "save-notebook-global",
            "save_checkpoint_solution",
            "uses 'triple_dict', a name of this notebook",
            (
                '    objects = {"pipeline": pipeline, "model": model, "optimizer": optimizer}\n',
                "    objects = triple_dict((pipeline, model, optimizer))\n",
            ),
        ),
        wrong(
            "resume-no-update",
            "resume_or_start_solution",
            "was nnx.update called on each object?",
            ("        nnx.update(obj, state)\n", ""),
        ),
        wrong(
            "resume-pipeline-left-out",
            "resume_or_start_solution",
            "left the pipeline as fresh as before",
            ('objects = {"pipeline": pipeline, ', "objects = {"),
        ),
        wrong(
            "resume-optimizer-left-out",
            "resume_or_start_solution",
            "left the optimizer as fresh as before",
            (', "optimizer": optimizer}', "}"),
        ),
        wrong(
            "resume-at-next-step",
            "resume_or_start_solution",
            "the loop itself continues with start + 1",
            ("    return int(step)\n", "    return int(step) + 1  # continue with the next step\n"),
        ),
        wrong(
            "resume-latest-by-name",
            "resume_or_start_solution",
            "by name, '5' sorts after '10'",
            (
                "    step = manager.latest_step()\n",
                "    names = sorted(path.name for path in manager.directory.iterdir() if path.name.isdigit())\n"
                "    step = int(names[-1]) if names else None\n",
            ),
        ),
        wrong(
            "resume-counts-leftover",
            "resume_or_start_solution",
            "it skips a killed save's leftover",
            (
                "    step = manager.latest_step()\n",
                '    steps = [int(path.name.split(".")[0]) for path in manager.directory.iterdir()]\n'
                "    step = max(steps, default=None)\n",
            ),
        ),
        wrong(
            "resume-notebook-global",
            "resume_or_start_solution",
            "uses 'triple_dict', a name of this notebook",
            (
                '    objects = {"pipeline": pipeline, "model": model, "optimizer": optimizer}\n',
                "    objects = triple_dict((pipeline, model, optimizer))\n",
            ),
        ),
        wrong(
            "resume-template-from-notebook-objects",
            "resume_or_start_solution",
            "a name of this notebook",
            (
                "        for name, obj in objects.items()\n    }",
                "        for name, obj in triple_dict(make_triple(CONFIG)).items()\n    }",
            ),
        ),
    ],
}
