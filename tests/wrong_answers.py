"""Plausible wrong answers to every exercise, each a small named change to the solution notebook's own answer.

One table per assignment (`TABLES`): a `WrongAnswer` names the answer cell it changes (its grade_id), the text
replacements that make the mistake (each `old` must occur exactly once in the solution's answer, so that a
changed solution fails loudly here instead of silently testing nothing), and the cause: text that the failing
visible self-check's message must show. tests/nbval_tables.py runs every table, in nbval's kernel after the
solution's last cell, through the notebook's visible self-checks and hidden tests; the simulated class
(tests/grader_fixtures/simulated_class.py) grades some of them, whole notebooks at a time, through the grader.
"""

from __future__ import annotations

import ast
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


def _bound(scope: ast.AST) -> set[str]:
    """The names a module, function or class body binds itself (not those of the scopes nested in it)."""
    bound: set[str] = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = scope.args
        every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
        bound |= {arg.arg for arg in every + [arguments.vararg, arguments.kwarg] if arg is not None}
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            stack += node.decorator_list  # evaluated in this scope; the body is a scope of its own
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        stack += ast.iter_child_nodes(node)
    return bound


def notebook_names_used(source: str) -> set[str]:
    """The names that `source` reads from the notebook's globals: every name it loads where neither its own
    scope nor an enclosing function binds it. A helper the cell defines under an exercise's name (07's
    hidden test has its own `save_checkpoint`, a trusted one) is not the exercise's function."""
    used: set[str] = set()

    def visit(scope: ast.AST, enclosing: set[str]) -> None:
        seen = enclosing | _bound(scope)  # what this scope's own code sees
        visible = enclosing if isinstance(scope, ast.ClassDef) else seen  # a class body's names are not its methods'
        stack = list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                if not isinstance(node, ast.Lambda):
                    stack += node.decorator_list
                if not isinstance(node, ast.ClassDef):
                    stack += node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
                visit(node, visible)
                continue
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in seen:
                used.add(node.id)
            stack += ast.iter_child_nodes(node)

    visit(ast.parse(source), set())
    return used


def dependents(notebook: nbformat.NotebookNode, names: set[str]) -> set[str]:
    """`names` and every function or class a code cell of the notebook defines at its top level that reads
    one of them, directly or through another such definition (the capstone's script calls the answers)."""
    definitions = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:  # a cell with IPython syntax defines nothing the checks call
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    definitions[node.name] = notebook_names_used(ast.unparse(node))
    found = set(names)
    while True:
        more = {name for name, reads in definitions.items() if reads & found} - found
        if not more:
            return found
        found |= more


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
    "04_pipeline": [
        wrong(
            "cursor-plain-int",
            "batches_solution",
            "serves other records at step 0: is every cursor, counter and key in nnx Variables",
            ("self.position = nnx.Variable(jnp.asarray(0, jnp.int32))", "self.position = 0"),
            ("int(self.position[...])", "self.position"),
            ("self.position[...] = position", "self.position = position"),
        ),
        wrong(
            "epoch-plain-int",
            "batches_solution",
            "serves other records at step 0: is every cursor, counter and key in nnx Variables",
            ("self.epoch = nnx.Variable(jnp.asarray(0, jnp.int32))", "self.epoch = 0"),
            ("int(self.epoch[...])", "self.epoch"),
            ("self.epoch[...] = epoch", "self.epoch = epoch"),
        ),
        wrong(
            "dataset-in-state",
            "batches_solution",
            "is the data or the epoch's order stored as an attribute?",
            (
                "        self.batch_size = batch_size\n",
                "        self.batch_size = batch_size\n        self.features = source.dataset.features\n",
            ),
        ),
        wrong(
            "order-stored",
            "batches_solution",
            "is the data or the epoch's order stored as an attribute?",
            ("        order = jax.random.permutation(", "        order = self.order = jax.random.permutation("),
        ),
        wrong(
            "same-order-every-epoch",
            "batches_solution",
            "serves epoch 1 in the order of epoch 0",
            ("jax.random.fold_in(self.rngs.shuffle.key[...], epoch)", "self.rngs.shuffle.key[...]"),
        ),
        wrong(
            "order-drawn-every-batch",
            "batches_solution",
            "not drawn anew for each batch",
            ("jax.random.fold_in(self.rngs.shuffle.key[...], epoch)", "self.rngs.shuffle()"),
        ),
        wrong(
            "epoch-never-wraps",
            "batches_solution",
            "does the cursor go back to 0 and the epoch up to 1?",
            ("if position == len(self.source):", "if position > len(self.source):"),
        ),
        wrong(
            "key-from-seed-attribute",
            "batches_solution",
            "an instance built with seed 3 and given this one's state serves other records",
            (
                "        self.rngs = nnx.Rngs(shuffle=seed)\n",
                "        self.rngs = nnx.Rngs(shuffle=seed)\n        self.seed = seed\n",
            ),
            (
                "jax.random.fold_in(self.rngs.shuffle.key[...], epoch)",
                "jax.random.fold_in(jax.random.key(self.seed), epoch)",
            ),
        ),
        wrong(
            "seed-from-global-config",
            "batches_solution",
            "not from a notebook global such as config.seed",
            ("nnx.Rngs(shuffle=seed)", "nnx.Rngs(shuffle=config.seed)"),
        ),
        wrong(
            "indices-after-cursor-moved",
            "batches_solution",
            'are not the records its "indices" name',
            ('"indices": indices}', '"indices": order[position : position + self.batch_size]}'),
        ),
        wrong(
            "position-counts-batches",
            "fast_forward_solution",
            "_position: 4 vs 128",
            ("batch * pipeline.batch_size", "batch"),
        ),
        wrong(
            "stage-rngs-left-out",
            "fast_forward_solution",
            "stages/0/rngs/noise/count: 0 vs 20",
            (
                "    for stage in pipeline.stages:\n        for _, stream in stage.rngs.items():\n"
                "            stream.count[...] = step\n",
                "",
            ),
        ),
        wrong(
            "noise-count-per-epoch",
            "fast_forward_solution",
            "stages/0/rngs/noise/count: 4 vs 20",
            ("stream.count[...] = step", "stream.count[...] = batch"),
        ),
        wrong(
            "shuffle-count-advanced",
            "fast_forward_solution",
            "rngs/shuffle/count: 20 vs 0",
            (
                "    for stage in pipeline.stages:\n",
                "    pipeline.rngs.shuffle.count[...] = step\n    for stage in pipeline.stages:\n",
            ),
        ),
        wrong(
            "reads-data",
            "fast_forward_solution",
            "fast_forward read data",
            (
                "    epoch, batch = divmod(step, pipeline.steps_per_epoch)\n",
                "    for _ in range(step):\n        next(pipeline)\n    return\n",
            ),
        ),
        wrong(
            "global-steps-per-epoch",
            "fast_forward_solution",
            "fast_forward on batch size 64",
            ("divmod(step, pipeline.steps_per_epoch)", "divmod(step, config.num_records // config.batch_size)"),
            ("batch * pipeline.batch_size", "batch * config.batch_size"),
        ),
        wrong(
            "first-stage-only",
            "fast_forward_solution",
            "stages/1/rngs/noise/count: 0 vs 13",
            ("for stage in pipeline.stages:", "for stage in pipeline.stages[:1]:"),
        ),
        wrong(
            "writes-python-ints",
            "fast_forward_solution",
            "_epoch: int64 vs int32 (dtypes differ)",
            ("pipeline._epoch[...] = epoch", "pipeline._epoch.value = epoch"),
            ("pipeline._position[...] = batch", "pipeline._position.value = batch"),
            ("stream.count[...] = step", "stream.count.value = step"),
        ),
        wrong(
            "returns-pipeline",
            "fast_forward_solution",
            "it works in place and returns None",
            ("stream.count[...] = step\n", "stream.count[...] = step\n    return pipeline\n"),
        ),
    ],
    "10_capstone": [
        wrong(
            "pipeline-rngs-left-out",
            "capstone_snapshot_solution",
            "snapshot['pipeline'] is not the pipeline's full state",
            ("nnx.state(pipeline)", "nnx.state(pipeline, nnx.Not(nnx.RngState))"),
        ),
        wrong(
            "optimizer-left-out",
            "capstone_snapshot_solution",
            "the snapshot has no ['optimizer']",
            ('    snapshot["optimizer"] = nnx.to_pure_dict(nnx.state(optimizer))\n', ""),
        ),
        wrong(
            "model-params-only",
            "capstone_snapshot_solution",
            "snapshot['model'] is not the model's full state",
            ("nnx.state(model)", "nnx.state(model, nnx.Param)"),
        ),
        wrong(
            "state-not-pure-dict",
            "capstone_snapshot_solution",
            "must be a pure dict (nnx.to_pure_dict)",
            ("nnx.to_pure_dict(nnx.state(model))", "nnx.state(model)"),
        ),
        wrong(
            "step-as-array",
            "capstone_snapshot_solution",
            "snapshot['step'] must be the int step",
            ('{"step": step}', '{"step": np.asarray(step)}'),
        ),
        wrong(
            "step-from-optimizer",
            "capstone_snapshot_solution",
            "store the `step` argument as given",
            ('{"step": step}', '{"step": int(optimizer.step[...])}'),
        ),
        wrong(
            "dataset-saved-too",
            "capstone_snapshot_solution",
            "keep only step, pipeline, model and optimizer",
            (
                "    return snapshot\n",
                '    snapshot["dataset"] = {"features": pipeline.source.dataset.features}\n    return snapshot\n',
            ),
        ),
        wrong(
            "restore-no-update",
            "capstone_restore_solution",
            "was nnx.update called?",
            ("        nnx.update(part, part_state)\n", ""),
        ),
        wrong(
            "restore-step-plus-one",
            "capstone_restore_solution",
            "run_training adds 1 itself (off by one?)",
            ('int(saved["step"])', 'int(saved["step"]) + 1'),
        ),
        wrong(
            "restore-optimizer-left-out",
            "capstone_restore_solution",
            "the restored optimizer still equals a fresh one",
            (', ("optimizer", optimizer)]', "]"),
        ),
        wrong(
            "restore-pipeline-filtered",
            "capstone_restore_solution",
            "key in pure_dict not available in state: ('rngs', 'shuffle', 'count')",
            (
                "part_state = nnx.state(part)",
                'part_state = nnx.state(part, nnx.Not(nnx.RngState)) if name == "pipeline" else nnx.state(part)',
            ),
        ),
        wrong(
            "restore-order-swapped",
            "capstone_restore_solution",
            "in this order",
            ("return pipeline, model, optimizer,", "return model, pipeline, optimizer,"),
        ),
        wrong(
            "resume-config-global",
            "capstone_restore_solution",
            "into objects built from the `config` argument",
            ("make_triple(config)", "make_triple(CONFIG)"),
        ),
        wrong(
            "restore-step-minus-one",
            "capstone_restore_solution",
            "resumes at step 4: run_training adds 1 itself (off by one?)",
            ('int(saved["step"])', 'int(saved["step"]) - 1'),
        ),
    ],
    "01_snapshot": [
        wrong(
            "state-not-pure",
            "snapshot_solution",
            "Was nnx.to_pure_dict called?",
            ("return nnx.to_pure_dict(nnx.state(module))", "return nnx.state(module)"),
        ),
        wrong(
            "params-only",
            "snapshot_solution",
            "snapshot(pipeline) leaves out",
            ("to_pure_dict(nnx.state(module))", "to_pure_dict(nnx.state(module, nnx.Param))"),
        ),
        wrong(
            "rng-streams-left-out",
            "snapshot_solution",
            "unfiltered (Params, RNG keys and counts",
            ("to_pure_dict(nnx.state(module))", "to_pure_dict(nnx.state(module, nnx.Not(nnx.RngState)))"),
        ),
        wrong(
            "global-model",
            "snapshot_solution",
            "not a notebook global",
            ("to_pure_dict(nnx.state(module))", "to_pure_dict(nnx.state(model))"),
        ),
        wrong(
            "refuses-optimizer",
            "snapshot_solution",
            "does snapshot check isinstance(module, nnx.Module)?",
            (
                "    return nnx.to_pure_dict",
                "    if not isinstance(module, nnx.Module):\n"
                '        raise TypeError(f"{type(module).__name__} is not an nnx.Module")\n'
                "    return nnx.to_pure_dict",
            ),
        ),
        wrong(
            "numpy-copies",
            "snapshot_solution",
            "np.asarray cannot convert a typed PRNG key",
            (
                "return nnx.to_pure_dict(nnx.state(module))",
                "return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(module)))",
            ),
        ),
        wrong(
            "keys-compared-raw",
            "changed_paths_solution",
            "Keys? np.array_equal says False",
            (
                "np.array_equal(comparable(leaf), comparable(flat_after[path]))",
                "np.array_equal(leaf, flat_after[path])",
            ),
        ),
        wrong(
            "keys-skipped",
            "changed_paths_solution",
            "don't skip keys",
            (
                "if not np.array_equal(comparable(leaf), comparable(flat_after[path]))",
                "if not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)  # keys never change\n"
                "        and not np.array_equal(leaf, flat_after[path])",
            ),
        ),
        wrong(
            "allclose",
            "changed_paths_solution",
            "not with np.allclose",
            ("if not np.array_equal(", "if not np.allclose("),
        ),
        wrong(
            "every-entry-differs",
            "changed_paths_solution",
            "when any one of its entries differs",
            (
                "if not np.array_equal(comparable(leaf), comparable(flat_after[path]))",
                "if np.all(comparable(leaf) != comparable(flat_after[path]))",
            ),
        ),
        wrong(
            "keeps-equal-leaves",
            "changed_paths_solution",
            "keep the leaves that differ",
            ("if not np.array_equal(", "if np.array_equal("),
        ),
        wrong("unsorted", "changed_paths_solution", "sort them", ("return sorted(\n", "return list(\n")),
        wrong(
            "int-keys-joined-raw",
            "changed_paths_solution",
            "need str(key) to be joined",
            ('"/".join(str(key) for key in path)', '"/".join(path)'),
        ),
        wrong(
            "dotted-paths",
            "changed_paths_solution",
            "join the keys with '/'",
            ('"/".join(str(key) for key in path)', '".".join(str(key) for key in path)'),
        ),
    ],
    "02_persist": [
        wrong(
            "no-wait",
            "save_snapshot_solution",
            "]: was wait_until_finished called?",
            ("    saver.wait_until_finished()\n", ""),
        ),
        wrong(
            "waits-on-a-new-checkpointer",
            "save_snapshot_solution",
            "]: was wait_until_finished called?",
            ("    saver.wait_until_finished()\n", "    ocp.StandardCheckpointer().wait_until_finished()\n"),
        ),
        wrong(
            "global-snapshot",
            "save_snapshot_solution",
            "not the notebook's `saved`",
            ("saver.save(path, snapshot)", "saver.save(path, saved)"),
        ),
        wrong(
            "no-exists-check",
            "save_snapshot_solution",
            "got ValueError (Destination",
            (
                "    if os.path.exists(path):\n"
                '        raise FileExistsError(f"{path} already exists: refusing to overwrite a checkpoint")\n',
                "",
            ),
        ),
        wrong(
            "refuses-only-checkpoints",
            "save_snapshot_solution",
            "not whether it holds a checkpoint",
            ("if os.path.exists(path):", 'if os.path.exists(os.path.join(path, "commit_success.txt")):'),
        ),
        wrong(
            "makes-folder-first",
            "save_snapshot_solution",
            "Does it create the folder before saving?",
            (
                "    saver = ocp.StandardCheckpointer()\n",
                "    os.makedirs(path)\n    saver = ocp.StandardCheckpointer()\n",
            ),
        ),
        wrong(
            "no-template",
            "load_snapshot_solution",
            "came back as ['0']: was the template passed to restore?",
            ("restore(os.path.abspath(path), template)", "restore(os.path.abspath(path))"),
        ),
        wrong(
            "no-template-int-paths",
            "load_snapshot_solution",
            "let Orbax's ValueError through",
            (
                "return ocp.StandardCheckpointer().restore(os.path.abspath(path), template)",
                "return nnx.restore_int_paths(ocp.StandardCheckpointer().restore(os.path.abspath(path)))",
            ),
        ),
        wrong(
            "falls-back-without-template",
            "load_snapshot_solution",
            "no fallback in an except",
            (
                "    return ocp.StandardCheckpointer().restore(os.path.abspath(path), template)\n",
                "    try:\n"
                "        return ocp.StandardCheckpointer().restore(os.path.abspath(path), template)\n"
                "    except ValueError:  # an old template: take the structure from the checkpoint\n"
                "        return nnx.restore_int_paths(ocp.StandardCheckpointer().restore(os.path.abspath(path)))\n",
            ),
        ),
        wrong(
            "own-template",
            "load_snapshot_solution",
            "not one you build",
            (
                "restore(os.path.abspath(path), template)",
                "restore(os.path.abspath(path), triple_snapshot(*make_triple(config)))",
            ),
        ),
        wrong(
            "template-from-trained-objects",
            "load_snapshot_solution",
            "not one you build",
            (
                "restore(os.path.abspath(path), template)",
                "restore(os.path.abspath(path), triple_snapshot(pipeline, model, optimizer))",
            ),
        ),
        wrong(
            "global-path",
            "load_snapshot_solution",
            "not the notebook's step_3",
            ("restore(os.path.abspath(path), template)", "restore(step_3, template)"),
        ),
        wrong(
            "returns-the-template",
            "load_snapshot_solution",
            "It equals the template",
            (
                "    return ocp.StandardCheckpointer().restore(os.path.abspath(path), template)\n",
                "    ocp.StandardCheckpointer().restore(os.path.abspath(path), template)\n    return template\n",
            ),
        ),
        wrong(
            "returns-a-state",
            "load_snapshot_solution",
            "the top level is a State, not a plain dict",
            ("return ocp.StandardCheckpointer()", "return nnx.State(ocp.StandardCheckpointer()"),
            ("path), template)", "path), template))"),
        ),
    ],
}
