"""The wrong answers of the simulated classes (tests/grader_fixtures/simulated_class.py), by assignment.

Two kinds: answers written as real code here (linted, not strings), and the solution's own answer with
one part changed (`tests.wrong_answers.mutate`). A written answer is named `<the exercise's function or
class>__<what is wrong>`; `answer()` turns it into the source a student would write (the name without its
suffix). They run inside the notebook, among its globals (`train_step`, `save_triple`, `CHECKPOINTER`, ...),
so names the notebook defines are undefined here.
"""

# ruff: noqa: F821 (the notebook's globals)

import inspect
import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from tests.wrong_answers import mutate, solution_answer


def answer(wrong: Any) -> str:
    """The source of `wrong` as a student's answer cell: defined under the exercise's own name."""
    source = inspect.getsource(wrong)
    return source.replace(wrong.__name__, wrong.__name__.split("__")[0], 1)


def snapshot__snapshot_state_not_pure(module):
    return nnx.state(module)


def changed_paths__changed_paths_raw_keys(before, after):
    flat_before = nnx.traversals.flatten_mapping(before)
    flat_after = nnx.traversals.flatten_mapping(after)
    return sorted(
        "/".join(str(key) for key in path)
        for path, leaf in flat_before.items()
        if not np.array_equal(leaf, flat_after[path])
    )


def restore_into__restore_without_update(module, pure):
    state = nnx.state(module)
    nnx.replace_by_pure_dict(state, pure)


def stale_leaves__stale_leaves_reversed(module, saved, fresh):
    return sorted(set(state_diff(module, fresh).paths) - set(state_diff(module, saved).paths))


def sharded_template__template_without_sharding(state, mesh, spec_fn):
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), state)


def restore_onto__restore_with_plain_template(path, template_state, mesh, spec_fn):
    return ocp.StandardCheckpointer().restore(path, template_state)


def save_snapshot__save_without_waiting(path: str, snapshot: dict) -> None:
    path = os.path.abspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists")
    ocp.StandardCheckpointer().save(path, snapshot)


def load_snapshot__load_without_template(path: str, template: dict) -> dict:
    return ocp.StandardCheckpointer().restore(os.path.abspath(path))


def load_snapshot__load_with_own_template(path: str, template: dict) -> dict:
    course_template = triple_snapshot(*make_triple(config))  # the template argument is not used
    return ocp.StandardCheckpointer().restore(os.path.abspath(path), course_template)


class CheckpointableBatches__batches_plain_int_cursor(nnx.Module):
    def __init__(self, source, batch_size, *, seed):
        self.source = source
        self.batch_size = batch_size
        self.rngs = nnx.Rngs(shuffle=seed)
        self.epoch = 0
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        key = jax.random.fold_in(self.rngs.shuffle.key[...], self.epoch)
        order = jax.random.permutation(key, len(self.source))
        indices = order[self.position : self.position + self.batch_size]
        self.position += len(indices)
        if self.position == len(self.source):
            self.epoch, self.position = self.epoch + 1, 0
        return {**self.source.read(indices), "indices": indices}


class CheckpointableBatches__batches_dataset_in_state(nnx.Module):
    def __init__(self, source, batch_size, *, seed):
        self.source = source
        self.batch_size = batch_size
        self.rngs = nnx.Rngs(shuffle=seed)
        self.epoch = nnx.Variable(jnp.asarray(0, jnp.int32))
        self.position = nnx.Variable(jnp.asarray(0, jnp.int32))
        self.features = nnx.Variable(jnp.asarray(source.dataset.features))  # the records, kept at hand
        self.labels = nnx.Variable(jnp.asarray(source.dataset.labels))

    def __iter__(self):
        return self

    def __next__(self):
        epoch, position = int(self.epoch[...]), int(self.position[...])
        order = jax.random.permutation(jax.random.fold_in(self.rngs.shuffle.key[...], epoch), len(self.source))
        indices = order[position : position + self.batch_size]
        position += len(indices)
        if position == len(self.source):
            epoch, position = epoch + 1, 0
        self.epoch[...] = epoch
        self.position[...] = position
        return {"indices": indices, "features": self.features[...][indices], "labels": self.labels[...][indices]}


def fast_forward__fast_forward_counts_batches(pipeline, step):
    epoch, batch = divmod(step, pipeline.steps_per_epoch)
    pipeline._epoch[...] = epoch
    pipeline._position[...] = batch
    for stage in pipeline.stages:
        for _, stream in stage.rngs.items():
            stream.count[...] = step


def fast_forward__fast_forward_without_stage_rngs(pipeline, step):
    epoch, batch = divmod(step, pipeline.steps_per_epoch)
    pipeline._epoch[...] = epoch
    pipeline._position[...] = batch * pipeline.batch_size


def restore_triple__restore_triple_without_update(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    template = {name: nnx.to_pure_dict(nnx.state(part)) for name, part in parts.items()}
    saved = ocp.StandardCheckpointer().restore(os.path.abspath(path), template)
    for name, part in parts.items():
        nnx.replace_by_pure_dict(nnx.state(part), saved[name])


def restore_triple__restore_triple_without_pipeline(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    template = {name: nnx.to_pure_dict(nnx.state(part)) for name, part in parts.items()}
    saved = ocp.StandardCheckpointer().restore(os.path.abspath(path), template)
    for name, part in [("model", model), ("optimizer", optimizer)]:  # the pipeline only serves data
        state = nnx.state(part)
        nnx.replace_by_pure_dict(state, saved[name])
        nnx.update(part, state)


def save_triple__save_triple_without_rngs(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    snapshot = {name: nnx.to_pure_dict(nnx.state(part, nnx.Not(nnx.RngState))) for name, part in parts.items()}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(path), snapshot)
    checkpointer.wait_until_finished()


def restore_triple__restore_triple_without_rngs(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    states = {name: nnx.state(part, nnx.Not(nnx.RngState)) for name, part in parts.items()}  # RNGs: from the seed
    template = {name: nnx.to_pure_dict(state) for name, state in states.items()}
    saved = ocp.StandardCheckpointer().restore(os.path.abspath(path), template)
    for name, part in parts.items():
        nnx.replace_by_pure_dict(states[name], saved[name])
        nnx.update(part, states[name])


def save_triple__save_triple_without_optimizer(path, pipeline, model, optimizer):
    snapshot = {"pipeline": nnx.to_pure_dict(nnx.state(pipeline)), "model": nnx.to_pure_dict(nnx.state(model))}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(path), snapshot)
    checkpointer.wait_until_finished()


def latest_checkpoint__latest_checkpoint_by_name(checkpoint_dir, at_or_before=None):
    names = [name for name in os.listdir(checkpoint_dir) if name.startswith("step_") and "tmp" not in name]
    if at_or_before is not None:
        names = [name for name in names if name <= f"step_{at_or_before}"]
    return int(max(names).removeprefix("step_")) if names else 0


def train_with_checkpoints__train_loop_counts_from_zero(
    pipeline, model, optimizer, num_steps, checkpoint_dir=None, checkpoint_every=None, stop_at=None, start_step=0
):
    last_step = num_steps if stop_at is None else min(stop_at, num_steps)
    losses = []
    for step in range(start_step, last_step):
        losses.append(float(train_step(model, optimizer, next(pipeline))))
        if checkpoint_dir is not None and step % checkpoint_every == 0:
            save_triple(os.path.join(checkpoint_dir, f"step_{step}"), pipeline, model, optimizer)
    return losses


def resume_or_start__resume_model_only(manager, pipeline, model, optimizer):
    step = manager.latest_step()
    if step is None:
        return 0
    template = nnx.to_pure_dict(nnx.state(model))
    restored = manager.restore(step, args=ocp.args.Composite(model=ocp.args.StandardRestore(template)))
    state = nnx.state(model)
    nnx.replace_by_pure_dict(state, restored["model"])
    nnx.update(model, state)
    return int(step)


def snapshot_for_checkpoint__snapshot_pipeline_without_rngs(step, pipeline, model, optimizer):
    return {
        "step": step,
        "model": nnx.to_pure_dict(nnx.state(model)),
        "optimizer": nnx.to_pure_dict(nnx.state(optimizer)),
        "pipeline": nnx.to_pure_dict(nnx.state(pipeline, nnx.Not(nnx.RngState))),
    }


def snapshot_for_checkpoint__snapshot_without_optimizer(step, pipeline, model, optimizer):
    return {
        "step": step,
        "model": nnx.to_pure_dict(nnx.state(model)),
        "pipeline": nnx.to_pure_dict(nnx.state(pipeline)),
    }


def restore_checkpoint__restore_checkpoint_step_plus_one(path, config):
    pipeline, model, optimizer = make_triple(config)
    saved = CHECKPOINTER.restore(path, snapshot_for_checkpoint(0, pipeline, model, optimizer))
    for name, part in [("pipeline", pipeline), ("model", model), ("optimizer", optimizer)]:
        part_state = nnx.state(part)
        nnx.replace_by_pure_dict(part_state, saved[name])
        nnx.update(part, part_state)
    return pipeline, model, optimizer, int(saved["step"]) + 1  # resume at the next step


def restore_checkpoint__restore_checkpoint_model_not_updated(path, config):
    pipeline, model, optimizer = make_triple(config)
    saved = CHECKPOINTER.restore(path, snapshot_for_checkpoint(0, pipeline, model, optimizer))
    model_state = nnx.state(model)
    nnx.replace_by_pure_dict(model_state, saved["model"])
    for name, part in [("pipeline", pipeline), ("optimizer", optimizer)]:
        part_state = nnx.state(part)
        nnx.replace_by_pure_dict(part_state, saved[name])
        nnx.update(part, part_state)
    return pipeline, model, optimizer, int(saved["step"])


@dataclass
class GradedWrongAnswer:
    """A realistic mistake (or several, in exercises that do not use each other's answers, so that each is seen
    by its own checks): answer cells replaced; the feedback's outputs must name every cause.

    A cause is text of the failure message as it is shown, with the values it was formatted with (or its
    `AssertionError: ` prefix): text that no cell's source holds, so that it cannot match a check's source,
    or the source lines a traceback quotes. test_grader_class.py checks that on the honest student's page.
    """

    name: str
    answers: dict[str, str]
    cause: str | tuple[str, ...]  # text the outputs in the feedback (failing checks' messages) must show

    @property
    def causes(self) -> tuple[str, ...]:
        return (self.cause,) if isinstance(self.cause, str) else self.cause


# 07_production: each mistake is the correct answer (the solution's own) with one part changed
_RESUME = solution_answer("07_production", "resume_or_start_solution")


RESUME_WITHOUT_UPDATE = mutate(
    _RESUME,
    (
        (
            """        state = nnx.state(obj)
        nnx.replace_by_pure_dict(state, restored[name])
        nnx.update(obj, state)
""",
            """        nnx.replace_by_pure_dict(nnx.state(obj), restored[name])
""",
        ),
    ),
)
RESUME_AT_NEXT_STEP = mutate(
    _RESUME, (("    return int(step)\n", "    return int(step) + 1  # continue with the next step\n"),)
)
RESUME_FROM_NEWEST_FOLDER = mutate(
    _RESUME,
    (
        (
            """    step = manager.latest_step()
    if step is None:
        return 0
""",
            """    import os

    names = os.listdir(manager.directory)
    steps = [int(name.split(".")[0]) for name in names if name.split(".")[0].isdigit()]
    if not steps:
        return 0
    step = max(steps)
""",
        ),
        ("    return int(step)\n", "    return step\n"),
    ),
)

# 10_capstone: planted bugs of the script left unfixed

WRONG_ANSWERS: dict[str, list[GradedWrongAnswer]] = {
    "01_snapshot": [
        GradedWrongAnswer(
            "state-not-pure-dict-and-keys-compared-raw",
            {
                "snapshot_solution": answer(snapshot__snapshot_state_not_pure),
                "changed_paths_solution": answer(changed_paths__changed_paths_raw_keys),
            },
            (
                "the top level is a State, not a plain dict. Was nnx.to_pure_dict called?",
                "'pipeline/stages/0/rngs/noise/key']. Keys?",
            ),
        ),
    ],
    "03_update": [
        GradedWrongAnswer(
            "no-nnx-update-and-stale-reversed",
            {
                "restore_into_solution": answer(restore_into__restore_without_update),
                "stale_leaves_solution": answer(stale_leaves__stale_leaves_reversed),
            },
            (
                "AssertionError: the restored model still equals the fresh one: was nnx.update called?",
                "every trained leaf is stale: expected ['dropout/rngs/count', 'hidden/bias', 'hidden/kernel', "
                "'output/bias', 'output/kernel'], stale_leaves gave []",
            ),
        ),
    ],
    "08_sharding": [
        GradedWrongAnswer(
            "template-unsharded-and-restored-with-plain-template",
            {
                "sharded_template_solution": answer(sharded_template__template_without_sharding),
                "restore_onto_solution": answer(restore_onto__restore_with_plain_template),
            },
            (
                "memory_kind=device): use NamedSharding",
                "memory_kind=device): did you restore with the sharded template",
            ),
        ),
    ],
    "02_persist": [
        GradedWrongAnswer(
            "no-wait-and-no-template",
            {
                "save_snapshot_solution": answer(save_snapshot__save_without_waiting),
                "load_snapshot_solution": answer(load_snapshot__load_without_template),
            },
            ("]: was wait_until_finished called?", "came back as ['0']: was the template passed to restore?"),
        ),
        GradedWrongAnswer(
            "own-template",
            {"load_snapshot_solution": answer(load_snapshot__load_with_own_template)},
            "restore item and on-disk value metadata tree structures do not match",
        ),
    ],
    "04_pipeline": [
        GradedWrongAnswer(
            "plain-int-cursor-and-batch-position",
            {
                "batches_solution": answer(CheckpointableBatches__batches_plain_int_cursor),
                "fast_forward_solution": answer(fast_forward__fast_forward_counts_batches),
            },
            (
                "serves other records at step 0: is every cursor, counter and key in nnx Variables",
                "_position: 4 vs 128 (values differ)",
            ),
        ),
        GradedWrongAnswer(
            "dataset-in-state-and-stage-rngs-left-out",
            {
                "batches_solution": answer(CheckpointableBatches__batches_dataset_in_state),
                "fast_forward_solution": answer(fast_forward__fast_forward_without_stage_rngs),
            },
            (
                "the snapshot holds 18452 bytes: is the data or the epoch's order stored as an attribute?",
                "stages/0/rngs/noise/count: 0 vs 20 (values differ)",
            ),
        ),
    ],
    "05_triple": [
        GradedWrongAnswer(
            "no-update-and-steps-from-zero",
            {
                "restore_triple_solution": answer(restore_triple__restore_triple_without_update),
                "train_loop_solution": answer(train_with_checkpoints__train_loop_counts_from_zero),
            },
            (
                "AssertionError: the restored objects still equal fresh ones: was nnx.update called for each part?",
                "save after step s when s % checkpoint_every == 0, counting steps from 1",
            ),
        ),
        GradedWrongAnswer(
            "pipeline-left-out-and-latest-by-name",
            {
                "restore_triple_solution": answer(restore_triple__restore_triple_without_pipeline),
                "latest_checkpoint_solution": answer(latest_checkpoint__latest_checkpoint_by_name),
            },
            ("pipeline/_position: 0 vs 160 (values differ)", "gave 5, expected 100: compare the numbers as ints"),
        ),
        GradedWrongAnswer(
            "optimizer-left-out",
            {"save_triple_solution": answer(save_triple__save_triple_without_optimizer)},
            "the checkpoint's top-level keys are ['model', 'pipeline']",
        ),
        GradedWrongAnswer(
            "rngs-left-out",
            {
                "save_triple_solution": answer(save_triple__save_triple_without_rngs),
                "restore_triple_solution": answer(restore_triple__restore_triple_without_rngs),
            },
            "model/dropout/rngs/count: 0 vs 5 (values differ)",
        ),
    ],
    "07_production": [
        GradedWrongAnswer(
            "no-nnx-update",
            {"resume_or_start_solution": RESUME_WITHOUT_UPDATE},
            "AssertionError: resume_or_start: the resumed model still equals a fresh one: was nnx.update called on "
            "each object?",
        ),
        GradedWrongAnswer(
            "model-only",
            {"resume_or_start_solution": answer(resume_or_start__resume_model_only)},
            "resume_or_start left the pipeline and the optimizer as fresh as before",
        ),
        GradedWrongAnswer(
            "resumes-at-next-step",
            {"resume_or_start_solution": RESUME_AT_NEXT_STEP},
            "resume_or_start returned 31; the latest checkpoint is 30",
        ),
        GradedWrongAnswer(
            "newest-folder-even-uncommitted",
            {"resume_or_start_solution": RESUME_FROM_NEWEST_FOLDER},
            "in-kernel/16 not found. -- a killed save's temporary folder",
        ),
    ],
    "10_capstone": [
        GradedWrongAnswer(
            "rng-filter-and-plus-one-left",
            {
                "capstone_snapshot_solution": answer(snapshot_for_checkpoint__snapshot_pipeline_without_rngs),
                "capstone_restore_solution": answer(restore_checkpoint__restore_checkpoint_step_plus_one),
            },
            (
                "snapshot['pipeline'] is not the pipeline's full state (a filter in snapshot_for_checkpoint left "
                "leaves out?)",
                "rngs/shuffle/count: present vs missing (only in the pipeline)",
                "resumes at step 6: run_training adds 1 itself (off by one?)",
            ),
        ),
        GradedWrongAnswer(
            "optimizer-left-out",
            {"capstone_snapshot_solution": answer(snapshot_for_checkpoint__snapshot_without_optimizer)},
            "the snapshot has no ['optimizer']: a resumed run starts those from scratch",
        ),
        GradedWrongAnswer(
            "model-not-updated",
            {"capstone_restore_solution": answer(restore_checkpoint__restore_checkpoint_model_not_updated)},
            "AssertionError: the restored model still equals a fresh one: was nnx.update called?",
        ),
    ],
}
