"""Smoke test of the Datarax and Grain APIs that notebook 06_loaders and `resumable.loaders` rely on.

Datarax calls itself a research preview and is pinned exactly; when a new pin moves one of these, this test
fails here with a message naming it, not deep inside a notebook.
"""

import importlib
import json

import datarax
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from resumable import RunConfig
from resumable.loaders import batches, datarax_pipeline, grain_loader, leaf_paths

NOTEBOOK = "the notebook 06_loaders relies on it"
DATARAX = f"datarax {datarax.__version__}"
GRAIN = f"grain {grain.__version__}"
SMALL = RunConfig(num_records=64, batch_size=16)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("datarax", "Pipeline"),
        ("datarax.sources", "MemorySource"),
        ("datarax.sources", "MemorySourceConfig"),
        ("datarax.operators.element_operator", "ElementOperator"),
        ("datarax.core.config", "ElementOperatorConfig"),
    ],
)
def test_datarax_names_exist(module, name):
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{DATARAX} changed {module}.{name} ({error}): {NOTEBOOK}")
    assert found is not None


def test_datarax_pipeline_iterates_dict_batches_and_writes_its_cursor_back():
    pipeline = datarax_pipeline(SMALL)
    batch = next(batches(pipeline))
    assert set(batch) == {"features", "labels"} and batch["features"].shape == (16, SMALL.num_features), (
        f"{DATARAX} changed what iter(Pipeline) yields ({ {k: v.shape for k, v in batch.items()} }): {NOTEBOOK}"
    )
    position = int(np.asarray(nnx.state(pipeline, nnx.Variable)["_position"][...]))
    assert position == 16, (
        f"{DATARAX} changed Pipeline's `_position` after one batch ({position}, expected 16), or no longer writes "
        f"the iterator's state back into the Module: {NOTEBOOK}"
    )


def test_datarax_unfiltered_state_holds_the_data_and_the_variable_filter_leaves_it_out():
    pipeline = datarax_pipeline(SMALL)
    unfiltered = set(leaf_paths(nnx.to_pure_dict(nnx.state(pipeline))))
    filtered = set(leaf_paths(nnx.to_pure_dict(nnx.state(pipeline, nnx.Variable))))
    assert unfiltered - filtered == {"source/data/features", "source/data/labels"}, (
        f"{DATARAX} changed where MemorySource keeps its data (unfiltered minus filtered: "
        f"{sorted(unfiltered - filtered)}): {NOTEBOOK}"
    )
    wanted = {"_epoch", "_position", "rngs/default/key", "rngs/default/count"}
    assert wanted <= filtered, f"{DATARAX} changed Pipeline's variables ({sorted(filtered)}): {NOTEBOOK}"
    keys = nnx.to_pure_dict(nnx.state(pipeline, nnx.Variable))["rngs"]["default"]["key"]
    assert jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key), f"{DATARAX}: the RNG key is not typed: {NOTEBOOK}"


@pytest.mark.parametrize("name", ["DataLoader", "MapDataset", "ReadOptions", "samplers.IndexSampler",
                                  "transforms.RandomMap", "transforms.Batch", "checkpoint.CheckpointSave",
                                  "checkpoint.CheckpointRestore"])
def test_grain_names_exist(name):
    found = grain
    try:
        for part in name.split("."):
            found = getattr(found, part)
    except AttributeError as error:
        pytest.fail(f"{GRAIN} changed grain.{name} ({error}): {NOTEBOOK}")


def test_grain_iterator_state_is_json_and_restores_in_one_orbax_step(tmp_path):
    iterator = iter(grain_loader(SMALL))
    for _ in range(3):
        next(iterator)
    state = json.loads(iterator.get_state())
    assert state["last_seen_indices"] == {"0": 47} and state["worker_count"] == 0, (
        f"{GRAIN} changed the DataLoader iterator's state ({state}): {NOTEBOOK}"
    )
    with ocp.CheckpointManager(tmp_path) as manager:
        manager.save(3, args=ocp.args.Composite(loader=grain.checkpoint.CheckpointSave(iterator)))
        manager.wait_until_finished()
        restored = iter(grain_loader(SMALL))
        manager.restore(3, args=ocp.args.Composite(loader=grain.checkpoint.CheckpointRestore(restored)))
        restored_state = json.loads(restored.get_state())
        assert restored_state == state, f"{GRAIN}: CheckpointRestore did not set the state: {NOTEBOOK}"
        assert np.array_equal(next(restored)["features"], next(iterator)["features"]), f"{GRAIN}: {NOTEBOOK}"
        other = iter(grain_loader(SMALL.replace(seed=7)))
        with pytest.raises(ValueError, match="Sampler in checkpoint does not match"):
            manager.restore(3, args=ocp.args.Composite(loader=grain.checkpoint.CheckpointRestore(other)))
