"""Build a simulated class for one assignment: a folder of submissions and what each one must get.

Data-driven: every assignment under solutions/ gets the honest students (the solution: full marks; the
untouched student copy: zero) and the forged answers (objects that claim to equal anything; patched
comparison functions). Assignment-specific wrong answers (one per course-map pitfall the exercises can show)
live in WRONG_ANSWERS; the sandbox attacks and malformed inputs run on the first assignment only.
"""

from __future__ import annotations

import copy
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader.assemble import nbgrader_meta
from grader.paths import REPO, SOLUTIONS, notebooks
from grader.release import generate
from tests.grader_fixtures import attacks


@dataclass
class Expect:
    """What a student's row must look like. score: "max", "zero", "partial" (0 <= score < max)."""

    score: str
    status: tuple[str, ...] = ("graded",)
    feedback_has: tuple[str, ...] = ()  # strings the outputs shown in the feedback must contain
    feedback_lacks: tuple[str, ...] = ()  # strings no feedback page may contain (sources included)
    message_has: tuple[str, ...] = ()


@dataclass
class WrongAnswer:
    """A realistic mistake (or two, in exercises that do not use each other's answers, so that each is seen
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


SNAPSHOT_STATE_NOT_PURE = """def snapshot(module):
    return nnx.state(module)
"""
CHANGED_PATHS_RAW_KEYS = """def changed_paths(before, after):
    flat_before = nnx.traversals.flatten_mapping(before)
    flat_after = nnx.traversals.flatten_mapping(after)
    return sorted("/".join(str(key) for key in path) for path, leaf in flat_before.items()
                  if not np.array_equal(leaf, flat_after[path]))
"""

RESTORE_WITHOUT_UPDATE = """def restore_into(module, pure):
    state = nnx.state(module)
    nnx.replace_by_pure_dict(state, pure)
"""
STALE_LEAVES_REVERSED = """def stale_leaves(module, saved, fresh):
    return sorted(set(state_diff(module, fresh).paths) - set(state_diff(module, saved).paths))
"""
TEMPLATE_WITHOUT_SHARDING = """def sharded_template(state, mesh, spec_fn):
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), state)
"""
RESTORE_WITH_PLAIN_TEMPLATE = """def restore_onto(path, template_state, mesh, spec_fn):
    return ocp.StandardCheckpointer().restore(path, template_state)
"""

# 02_persist
SAVE_WITHOUT_WAITING = """def save_snapshot(path: str, snapshot: dict) -> None:
    path = os.path.abspath(path)
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists")
    ocp.StandardCheckpointer().save(path, snapshot)
"""
LOAD_WITHOUT_TEMPLATE = """def load_snapshot(path: str, template: dict) -> dict:
    return ocp.StandardCheckpointer().restore(os.path.abspath(path))
"""
LOAD_WITH_OWN_TEMPLATE = """def load_snapshot(path: str, template: dict) -> dict:
    course_template = triple_snapshot(*make_triple(config))  # the template argument is not used
    return ocp.StandardCheckpointer().restore(os.path.abspath(path), course_template)
"""

# 04_pipeline
BATCHES_PLAIN_INT_CURSOR = """class CheckpointableBatches(nnx.Module):
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
"""
BATCHES_DATASET_IN_STATE = """class CheckpointableBatches(nnx.Module):
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
"""
FAST_FORWARD_COUNTS_BATCHES = """def fast_forward(pipeline, step):
    epoch, batch = divmod(step, pipeline.steps_per_epoch)
    pipeline._epoch[...] = epoch
    pipeline._position[...] = batch
    for stage in pipeline.stages:
        for _, stream in stage.rngs.items():
            stream.count[...] = step
"""
FAST_FORWARD_WITHOUT_STAGE_RNGS = """def fast_forward(pipeline, step):
    epoch, batch = divmod(step, pipeline.steps_per_epoch)
    pipeline._epoch[...] = epoch
    pipeline._position[...] = batch * pipeline.batch_size
"""

# 05_triple
RESTORE_TRIPLE_WITHOUT_UPDATE = """def restore_triple(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    template = {name: nnx.to_pure_dict(nnx.state(part)) for name, part in parts.items()}
    saved = ocp.StandardCheckpointer().restore(os.path.abspath(path), template)
    for name, part in parts.items():
        nnx.replace_by_pure_dict(nnx.state(part), saved[name])
"""
RESTORE_TRIPLE_WITHOUT_PIPELINE = """def restore_triple(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    template = {name: nnx.to_pure_dict(nnx.state(part)) for name, part in parts.items()}
    saved = ocp.StandardCheckpointer().restore(os.path.abspath(path), template)
    for name, part in [("model", model), ("optimizer", optimizer)]:  # the pipeline only serves data
        state = nnx.state(part)
        nnx.replace_by_pure_dict(state, saved[name])
        nnx.update(part, state)
"""
# RNG streams left out of the checkpoint, consistently: saved without them, restored without them
SAVE_TRIPLE_WITHOUT_RNGS = """def save_triple(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    snapshot = {name: nnx.to_pure_dict(nnx.state(part, nnx.Not(nnx.RngState))) for name, part in parts.items()}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(path), snapshot)
    checkpointer.wait_until_finished()
"""
RESTORE_TRIPLE_WITHOUT_RNGS = """def restore_triple(path, pipeline, model, optimizer):
    parts = named((pipeline, model, optimizer))
    states = {name: nnx.state(part, nnx.Not(nnx.RngState)) for name, part in parts.items()}  # RNGs: from the seed
    template = {name: nnx.to_pure_dict(state) for name, state in states.items()}
    saved = ocp.StandardCheckpointer().restore(os.path.abspath(path), template)
    for name, part in parts.items():
        nnx.replace_by_pure_dict(states[name], saved[name])
        nnx.update(part, states[name])
"""
SAVE_TRIPLE_WITHOUT_OPTIMIZER = """def save_triple(path, pipeline, model, optimizer):
    snapshot = {"pipeline": nnx.to_pure_dict(nnx.state(pipeline)), "model": nnx.to_pure_dict(nnx.state(model))}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(path), snapshot)
    checkpointer.wait_until_finished()
"""
LATEST_CHECKPOINT_BY_NAME = """def latest_checkpoint(checkpoint_dir, at_or_before=None):
    names = [name for name in os.listdir(checkpoint_dir) if name.startswith("step_") and "tmp" not in name]
    if at_or_before is not None:
        names = [name for name in names if name <= f"step_{at_or_before}"]
    return int(max(names).removeprefix("step_")) if names else 0
"""
TRAIN_LOOP_COUNTS_FROM_ZERO = """def train_with_checkpoints(
    pipeline, model, optimizer, num_steps, checkpoint_dir=None, checkpoint_every=None, stop_at=None, start_step=0
):
    last_step = num_steps if stop_at is None else min(stop_at, num_steps)
    losses = []
    for step in range(start_step, last_step):
        losses.append(float(train_step(model, optimizer, next(pipeline))))
        if checkpoint_dir is not None and step % checkpoint_every == 0:
            save_triple(os.path.join(checkpoint_dir, f"step_{step}"), pipeline, model, optimizer)
    return losses
"""


def solution_answer(assignment: str, grade_id: str) -> str:
    """The answer in a solution cell, as a student would hand it in: its first line (the `def`) and the lines
    between the solution markers, without the docstring."""
    for path in notebooks(assignment, SOLUTIONS):
        for cell in nbformat.read(path, as_version=4).cells:
            if nbgrader_meta(cell).get("grade_id") == grade_id:
                lines = cell.source.splitlines(keepends=True)
                begin = next(n for n, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
                end = next(n for n, line in enumerate(lines) if "### END SOLUTION" in line)
                return lines[0] + "".join(lines[begin + 1 : end])
    raise KeyError(f"{assignment} has no cell {grade_id}")


# 07_production: each mistake is the correct answer (the solution's own) with one part changed
_RESUME = solution_answer("07_production", "resume_or_start_solution")


def _variant(source: str, old: str, new: str) -> str:
    assert source.count(old) == 1, old
    return source.replace(old, new)


RESUME_WITHOUT_UPDATE = _variant(
    _RESUME,
    """        state = nnx.state(obj)
        nnx.replace_by_pure_dict(state, restored[name])
        nnx.update(obj, state)
""",
    """        nnx.replace_by_pure_dict(nnx.state(obj), restored[name])
""",
)
RESUME_MODEL_ONLY = """def resume_or_start(manager, pipeline, model, optimizer):
    step = manager.latest_step()
    if step is None:
        return 0
    template = nnx.to_pure_dict(nnx.state(model))
    restored = manager.restore(step, args=ocp.args.Composite(model=ocp.args.StandardRestore(template)))
    state = nnx.state(model)
    nnx.replace_by_pure_dict(state, restored["model"])
    nnx.update(model, state)
    return int(step)
"""
RESUME_AT_NEXT_STEP = _variant(
    _RESUME, "    return int(step)\n", "    return int(step) + 1  # continue with the next step\n"
)
RESUME_FROM_NEWEST_FOLDER = _variant(
    _variant(
        _RESUME,
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
    "    return int(step)\n",
    "    return step\n",
)

# 10_capstone: planted bugs of the script left unfixed
SNAPSHOT_PIPELINE_WITHOUT_RNGS = """def snapshot_for_checkpoint(step, pipeline, model, optimizer):  # noqa: F811
    return {
        "step": step,
        "model": nnx.to_pure_dict(nnx.state(model)),
        "optimizer": nnx.to_pure_dict(nnx.state(optimizer)),
        "pipeline": nnx.to_pure_dict(nnx.state(pipeline, nnx.Not(nnx.RngState))),
    }
"""
SNAPSHOT_WITHOUT_OPTIMIZER = """def snapshot_for_checkpoint(step, pipeline, model, optimizer):  # noqa: F811
    return {
        "step": step,
        "model": nnx.to_pure_dict(nnx.state(model)),
        "pipeline": nnx.to_pure_dict(nnx.state(pipeline)),
    }
"""
RESTORE_CHECKPOINT_STEP_PLUS_ONE = """def restore_checkpoint(path, config):  # noqa: F811
    pipeline, model, optimizer = make_triple(config)
    saved = CHECKPOINTER.restore(path, snapshot_for_checkpoint(0, pipeline, model, optimizer))
    for name, part in [("pipeline", pipeline), ("model", model), ("optimizer", optimizer)]:
        part_state = nnx.state(part)
        nnx.replace_by_pure_dict(part_state, saved[name])
        nnx.update(part, part_state)
    return pipeline, model, optimizer, int(saved["step"]) + 1  # resume at the next step
"""
RESTORE_CHECKPOINT_MODEL_NOT_UPDATED = """def restore_checkpoint(path, config):  # noqa: F811
    pipeline, model, optimizer = make_triple(config)
    saved = CHECKPOINTER.restore(path, snapshot_for_checkpoint(0, pipeline, model, optimizer))
    model_state = nnx.state(model)
    nnx.replace_by_pure_dict(model_state, saved["model"])
    for name, part in [("pipeline", pipeline), ("optimizer", optimizer)]:
        part_state = nnx.state(part)
        nnx.replace_by_pure_dict(part_state, saved[name])
        nnx.update(part, part_state)
    return pipeline, model, optimizer, int(saved["step"])
"""

WRONG_ANSWERS: dict[str, list[WrongAnswer]] = {
    "01_snapshot": [
        WrongAnswer(
            "state-not-pure-dict",
            {"snapshot_solution": SNAPSHOT_STATE_NOT_PURE},
            "the top level is a State, not a plain dict. Was nnx.to_pure_dict called?",
        ),
        WrongAnswer(
            "keys-compared-raw",
            {"changed_paths_solution": CHANGED_PATHS_RAW_KEYS},
            "'pipeline/stages/0/rngs/noise/key']. Keys?",
        ),
    ],
    "03_update": [
        WrongAnswer(
            "no-nnx-update",
            {"restore_into_solution": RESTORE_WITHOUT_UPDATE},
            "AssertionError: the restored model still equals the fresh one: was nnx.update called?",
        ),
        WrongAnswer(
            "stale-reversed",
            {"stale_leaves_solution": STALE_LEAVES_REVERSED},
            "every trained leaf is stale: expected ['dropout/rngs/count', 'hidden/bias', 'hidden/kernel', "
            "'output/bias', 'output/kernel'], got []",
        ),
    ],
    "08_sharding": [
        WrongAnswer(
            "template-unsharded",
            {"sharded_template_solution": TEMPLATE_WITHOUT_SHARDING},
            "memory_kind=device): use NamedSharding",
        ),
        WrongAnswer(
            "restored-with-plain-template",
            {"restore_onto_solution": RESTORE_WITH_PLAIN_TEMPLATE},
            "memory_kind=device): did you restore with the sharded template",
        ),
    ],
    "02_persist": [
        WrongAnswer(
            "no-wait-and-no-template",
            {"save_snapshot_solution": SAVE_WITHOUT_WAITING, "load_snapshot_solution": LOAD_WITHOUT_TEMPLATE},
            ("]: was wait_until_finished called?", "came back as ['0']: was the template passed to restore?"),
        ),
        WrongAnswer(
            "own-template",
            {"load_snapshot_solution": LOAD_WITH_OWN_TEMPLATE},
            "restore item and on-disk value metadata tree structures do not match",
        ),
    ],
    "04_pipeline": [
        WrongAnswer(
            "plain-int-cursor-and-batch-position",
            {"batches_solution": BATCHES_PLAIN_INT_CURSOR, "fast_forward_solution": FAST_FORWARD_COUNTS_BATCHES},
            (
                "serves other records at step 0: is every cursor, counter and key in nnx Variables",
                "_position: 4 vs 128 (values differ)",
            ),
        ),
        WrongAnswer(
            "dataset-in-state-and-stage-rngs-left-out",
            {"batches_solution": BATCHES_DATASET_IN_STATE, "fast_forward_solution": FAST_FORWARD_WITHOUT_STAGE_RNGS},
            (
                "the snapshot holds 18452 bytes: is the data or the epoch's order stored as an attribute?",
                "stages/0/rngs/noise/count: 0 vs 20 (values differ)",
            ),
        ),
    ],
    "05_triple": [
        WrongAnswer(
            "no-update-and-steps-from-zero",
            {
                "restore_triple_solution": RESTORE_TRIPLE_WITHOUT_UPDATE,
                "train_loop_solution": TRAIN_LOOP_COUNTS_FROM_ZERO,
            },
            (
                "AssertionError: the restored objects still equal fresh ones: was nnx.update called for each part?",
                "save after step s when s % checkpoint_every == 0, counting steps from 1",
            ),
        ),
        WrongAnswer(
            "pipeline-left-out-and-latest-by-name",
            {
                "restore_triple_solution": RESTORE_TRIPLE_WITHOUT_PIPELINE,
                "latest_checkpoint_solution": LATEST_CHECKPOINT_BY_NAME,
            },
            ("pipeline/_position: 0 vs 160 (values differ)", "gave 5, expected 100: compare the numbers as ints"),
        ),
        WrongAnswer(
            "optimizer-left-out",
            {"save_triple_solution": SAVE_TRIPLE_WITHOUT_OPTIMIZER},
            "the checkpoint's top-level keys are ['model', 'pipeline']",
        ),
        WrongAnswer(
            "rngs-left-out",
            {"save_triple_solution": SAVE_TRIPLE_WITHOUT_RNGS, "restore_triple_solution": RESTORE_TRIPLE_WITHOUT_RNGS},
            "model/dropout/rngs/count: 0 vs 5 (values differ)",
        ),
    ],
    "07_production": [
        WrongAnswer(
            "no-nnx-update",
            {"resume_or_start_solution": RESUME_WITHOUT_UPDATE},
            "AssertionError: the resumed model still equals a fresh one: was nnx.update called on each object?",
        ),
        WrongAnswer(
            "model-only",
            {"resume_or_start_solution": RESUME_MODEL_ONLY},
            "differ from checkpoint 30 (was every object, pipeline and optimizer included, restored, from the "
            "latest step?)",
        ),
        WrongAnswer(
            "resumes-at-next-step",
            {"resume_or_start_solution": RESUME_AT_NEXT_STEP},
            "resume_or_start returned 31; the latest checkpoint is 30",
        ),
        WrongAnswer(
            "newest-folder-even-uncommitted",
            {"resume_or_start_solution": RESUME_FROM_NEWEST_FOLDER},
            "checkpoints/8 not found.",
        ),
    ],
    "10_capstone": [
        WrongAnswer(
            "rng-filter-and-plus-one-left",
            {
                "capstone_snapshot_solution": SNAPSHOT_PIPELINE_WITHOUT_RNGS,
                "capstone_restore_solution": RESTORE_CHECKPOINT_STEP_PLUS_ONE,
            },
            (
                "snapshot['pipeline'] is not the pipeline's full state (a filter left leaves out?)",
                "rngs/shuffle/count: present vs missing (only in the pipeline)",
                "resumes at step 6: run_training adds 1 itself (off by one?)",
            ),
        ),
        WrongAnswer(
            "optimizer-left-out",
            {"capstone_snapshot_solution": SNAPSHOT_WITHOUT_OPTIMIZER},
            "the snapshot has no ['optimizer']: a resumed run starts those from scratch",
        ),
        WrongAnswer(
            "model-not-updated",
            {"capstone_restore_solution": RESTORE_CHECKPOINT_MODEL_NOT_UPDATED},
            "AssertionError: the restored model still equals a fresh one: was nnx.update called?",
        ),
    ],
}


@dataclass
class SimulatedClass:
    assignment: str
    folder: Path
    expectations: dict[str, Expect] = field(default_factory=dict)

    def add(self, student: str, files: dict[str, bytes], expect: Expect) -> None:
        (self.folder / student).mkdir(parents=True)
        for name, data in files.items():
            (self.folder / student / name).write_bytes(data)
        self.expectations[student] = expect


def released(assignment: str, tmp: Path) -> dict[str, nbformat.NotebookNode]:
    """A fresh student copy (nbgrader generate_assignment), not the committed course/ (it may lag)."""
    target = tmp / "release"
    if not (target / assignment).is_dir():
        generate([assignment], target)
    return {path.name: nbformat.read(path, as_version=4) for path in notebooks(assignment, target)}


def solutions(assignment: str) -> dict[str, nbformat.NotebookNode]:
    return {path.name: nbformat.read(path, as_version=4) for path in notebooks(assignment, SOLUTIONS)}


def dump(notebooks_by_name: dict[str, nbformat.NotebookNode]) -> dict[str, bytes]:
    return {name: nbformat.writes(notebook).encode() for name, notebook in notebooks_by_name.items()}


def first_code_index(notebook: nbformat.NotebookNode) -> int:
    return next(index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code")


def with_cell(notebooks_by_name, source: str, where: str = "after_setup"):
    """A copy with a plain code cell (the student's own) added after the setup cell, or at the end."""
    result = copy.deepcopy(notebooks_by_name)
    for notebook in result.values():
        position = first_code_index(notebook) + 1 if where == "after_setup" else len(notebook.cells)
        notebook.cells.insert(position, nbformat.v4.new_code_cell(source))
    return result


def answer_ids(notebooks_by_name) -> list[str]:
    return [
        nbgrader_meta(cell)["grade_id"]
        for notebook in notebooks_by_name.values()
        for cell in notebook.cells
        if nbgrader_meta(cell).get("solution")
    ]


def with_answers(notebooks_by_name, answers: dict[str, str]):
    result = copy.deepcopy(notebooks_by_name)
    for notebook in result.values():
        for cell in notebook.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
    return result


def forged_answers(stubs, preamble: str):
    """Every answer cell defines its functions (names from the stub's `def`) to return `Anything()`."""
    answers = {}
    for notebook in stubs.values():
        for cell in notebook.cells:
            meta = nbgrader_meta(cell)
            if meta.get("solution") and cell.cell_type == "code":
                names = re.findall(r"^def (\w+)\(", cell.source, flags=re.MULTILINE)
                body = "".join(f"def {name}(*args, **kwargs):\n    return Anything()\n" for name in names)
                answers[meta["grade_id"]] = attacks.ANYTHING + preamble + body
    return with_answers(stubs, answers)


def honest_and_forged(simulated: SimulatedClass, tmp: Path) -> None:
    """The students every assignment gets."""
    assignment = simulated.assignment
    stubs, full = released(assignment, tmp), solutions(assignment)
    simulated.add("solution", dump(full), Expect("max"))
    simulated.add("untouched", dump(stubs), Expect("zero"))
    simulated.add("forged-anything", dump(forged_answers(stubs, "")), Expect("zero"))
    simulated.add(
        "forged-patched-comparisons",
        dump(forged_answers(stubs, attacks.PATCH_COMPARISONS)),
        Expect("zero", status=("graded", "error")),
    )
    for wrong in WRONG_ANSWERS.get(assignment, []):
        simulated.add(
            f"wrong-{wrong.name}",
            dump(with_answers(full, wrong.answers)),
            Expect("partial", feedback_has=wrong.causes),
        )


def hostile(simulated: SimulatedClass, tmp: Path, out: Path) -> None:
    """Sandbox attacks, forged grading, edited cells and malformed files (on one assignment)."""
    assignment = simulated.assignment
    stubs, full = released(assignment, tmp), solutions(assignment)
    escape = attacks.ESCAPE.replace("@REPO@", str(REPO)).replace("@OUT@", str(out))
    simulated.add(
        "attack-escape",
        dump(with_cell(stubs, escape)),
        Expect(
            "zero",
            feedback_has=("SAFE-READ", "SAFE-WRITE", "SAFE-NET", "SAFE-KILL"),
            feedback_lacks=("ESCAPED-",),
        ),
    )
    simulated.add(
        "attack-poison-cache",
        dump(with_cell(stubs, attacks.POISON_CACHE)),
        Expect("zero", status=("graded", "error"), feedback_has=("POISONED-OWN-COPY",)),
    )
    simulated.add(
        "attack-fork-bomb", dump(with_cell(stubs, attacks.FORK_BOMB)), Expect("zero", status=("graded", "error"))
    )
    simulated.add(
        "attack-memory-bomb", dump(with_cell(stubs, attacks.MEMORY_BOMB)), Expect("zero", status=("graded", "error"))
    )
    simulated.add(
        "attack-os-exit", dump(with_cell(stubs, attacks.EXIT)), Expect("zero", ("error",), message_has=("kernel died",))
    )
    simulated.add(
        "attack-kill-kernel",
        dump(with_cell(stubs, attacks.KILL_KERNEL)),
        Expect("zero", ("error",), message_has=("kernel died",)),
    )
    simulated.add(
        "attack-patched-builtins",
        dump(forged_answers(stubs, attacks.PATCH_BUILTINS)),
        Expect("zero", ("error",), message_has=("tampered",)),
    )
    simulated.add(
        "attack-swallow-errors",
        dump(with_cell(stubs, attacks.SWALLOW_ERRORS)),
        Expect("zero", ("error",), message_has=("tampered",)),
    )
    simulated.add(
        "attack-strip-asserts",
        dump(with_cell(forged_answers(stubs, ""), attacks.STRIP_ASSERTS)),
        Expect("zero", ("error",), message_has=("tampered",)),
    )
    simulated.add(
        "attack-clear-outputs", dump(with_cell(stubs, attacks.CLEAR_OUTPUTS)), Expect("zero", ("graded", "error"))
    )
    simulated.add("attack-edited-cells", dump(edited_cells(stubs)), Expect("zero"))
    hidden_lines = sorted(
        {
            line.strip()
            for notebook in full.values()
            for cell in notebook.cells
            for block in re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", cell.source, re.DOTALL)
            for line in block.splitlines()
            if len(line.strip()) >= 8
        }
    )
    simulated.add(
        "attack-exfiltrate-hidden",
        dump(with_cell(full, attacks.EXFILTRATE, where="end")),
        Expect("max", feedback_lacks=tuple(hidden_lines)),
    )
    # layouts and malformed files
    (name,) = list(full) if len(full) == 1 else [next(iter(full))]
    sol_bytes, stub_bytes = dump(full), dump(stubs)
    zip_path = simulated.folder / "zipped-student.zip"
    simulated.folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w") as archive:
        for item, data in stub_bytes.items():
            archive.writestr(f"Zipped Student/{assignment}/{item}", data)
        archive.writestr("../../escape.txt", b"zip slip")
    simulated.expectations["zipped-student"] = Expect("zero")
    (simulated.folder / "nbgrader-layout" / assignment).mkdir(parents=True)
    for item, data in stub_bytes.items():
        (simulated.folder / "nbgrader-layout" / assignment / item).write_bytes(data)
    simulated.expectations["nbgrader-layout"] = Expect("zero")
    if len(full) == 1:
        simulated.add(
            "renamed-with-extras",
            {f"{Path(name).stem} (1).ipynb": stub_bytes[name], "notes.txt": b"hello", "numpy.py": b"raise SystemExit"},
            Expect("zero", message_has=("file name differs", "ignored other files")),
        )
    simulated.add(
        "not-json", {name: b"this is not json {"}, Expect("zero", ("error",), message_has=("not valid JSON",))
    )
    simulated.add("empty-file", {name: b""}, Expect("zero", ("error",), message_has=("empty",)))
    simulated.add("json-list", {name: b"[1, 2, 3]"}, Expect("zero", ("error",), message_has=("not a notebook",)))
    raw = json.loads(sol_bytes[name])
    simulated.add(
        "nbformat-5",
        {name: json.dumps({**raw, "nbformat": 5}).encode()},
        Expect("zero", ("error",), message_has=("format",)),
    )
    broken = copy.deepcopy(raw)
    broken["cells"][0]["cell_type"] = "spreadsheet"
    simulated.add(
        "invalid-notebook", {name: json.dumps(broken).encode()}, Expect("zero", ("error",), message_has=("valid",))
    )
    other = copy.deepcopy(raw)
    for cell in other["cells"]:
        if "nbgrader" in cell["metadata"]:
            cell["metadata"]["nbgrader"]["grade_id"] = "other_" + cell["metadata"]["nbgrader"]["grade_id"]
    simulated.add(
        "other-assignment",
        {name: json.dumps(other).encode()},
        Expect("zero", ("error",), message_has=("another assignment",)),
    )
    huge = copy.deepcopy(raw)
    huge["cells"][first_code_index(full[name])]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "x" * (40 * 1024**2)}
    ]
    simulated.add(
        "huge-output", {name: json.dumps(huge).encode()}, Expect("zero", ("error",), message_has=("larger than",))
    )
    (simulated.folder / "missing-notebook").mkdir()
    (simulated.folder / "missing-notebook" / "README.txt").write_text("forgot it")
    (simulated.folder / "missing-notebook" / "a.ipynb").symlink_to(SOLUTIONS / assignment / name)
    simulated.expectations["missing-notebook"] = Expect("zero", ("missing",))


def edited_cells(stubs):
    """Deleted and edited test cells, a duplicated answer, invented grade cells, changed points."""
    result = copy.deepcopy(stubs)
    for notebook in result.values():
        kept = []
        tests_seen = 0
        for cell in notebook.cells:
            meta = nbgrader_meta(cell)
            if meta.get("grade") and not meta.get("solution"):
                tests_seen += 1
                if tests_seen % 2:  # delete every other test cell, edit the rest to pass
                    continue
                cell.source = "pass"
                meta["points"] = 100
                meta["solution"] = True
            if meta.get("solution") and not meta.get("grade"):
                kept.append(copy.deepcopy(cell))  # duplicate
            kept.append(cell)
        bonus = nbformat.v4.new_code_cell("print('free points')")
        bonus.metadata["nbgrader"] = {
            "grade": True,
            "solution": False,
            "locked": False,
            "points": 1000,
            "grade_id": "bonus",
            "schema_version": 3,
        }
        kept.append(bonus)
        notebook.cells = kept
    return result
