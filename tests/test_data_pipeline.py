"""The synthetic data and the pipeline: coverage, purity, state size."""

import jax
import numpy as np
import pytest
from flax import nnx

from resumable import ArraySource, Pipeline, make_blobs, make_pipeline


def rows(batch):
    return {row.tobytes() for row in np.asarray(batch["features"])}


def test_blobs_are_a_pure_function_of_the_seed():
    first, again, other = make_blobs(3), make_blobs(3), make_blobs(4)
    assert first.features.tobytes() == again.features.tobytes()
    assert first.labels.tobytes() == again.labels.tobytes()
    assert first.features.tobytes() != other.features.tobytes()
    assert first.features.dtype == np.float32 and first.labels.dtype == np.int32


@pytest.mark.parametrize("num_records, batch_size", [(512, 32), (96, 8), (60, 60)])
def test_every_record_appears_exactly_once_per_epoch(num_records, batch_size):
    dataset = make_blobs(0, num_records=num_records)
    pipeline = Pipeline(ArraySource(dataset), batch_size, seed=7)  # no stages: rows come back unchanged
    all_rows = {row.tobytes() for row in dataset.features}
    assert len(all_rows) == num_records
    for epoch in range(2):
        seen: list[bytes] = []
        for _ in range(pipeline.steps_per_epoch):
            seen += [row.tobytes() for row in np.asarray(next(pipeline)["features"])]
        assert len(seen) == num_records and set(seen) == all_rows, f"epoch {epoch} is not a permutation"
        assert int(pipeline._epoch[...]) == epoch + 1 and int(pipeline._position[...]) == 0


def test_order_is_a_pure_function_of_seed_and_epoch():
    first, again, other_seed = make_pipeline(seed=1), make_pipeline(seed=1), make_pipeline(seed=2)
    for epoch in range(3):
        np.testing.assert_array_equal(first.epoch_order(epoch), again.epoch_order(epoch))
    assert not np.array_equal(first.epoch_order(0), first.epoch_order(1))
    assert not np.array_equal(first.epoch_order(0), other_seed.epoch_order(0))


def test_a_batch_is_a_function_of_the_pipeline_state():
    advanced = make_pipeline(seed=5)
    for _ in range(21):  # into the second epoch (16 steps per epoch)
        next(advanced)
    restored = make_pipeline(seed=5)
    assert not rows(next(make_pipeline(seed=5))) == rows(next(make_pipeline(seed=6)))
    nnx.update(restored, nnx.state(advanced))
    for _ in range(12):  # across the next epoch boundary
        expected, actual = next(advanced), next(restored)
        for name in ("features", "labels"):
            assert np.asarray(expected[name]).tobytes() == np.asarray(actual[name]).tobytes()


def test_the_stage_rng_advances_once_per_batch():
    pipeline = make_pipeline()
    for _ in range(3):
        next(pipeline)
    assert int(pipeline.stages[0].rngs.noise.count[...]) == 3


def test_snapshot_holds_bytes_not_the_dataset():
    pipeline = make_pipeline(num_records=4096)
    leaves = jax.tree.leaves(nnx.to_pure_dict(nnx.state(pipeline)))
    size = sum(
        np.asarray(jax.random.key_data(leaf) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf).nbytes
        for leaf in leaves
    )
    assert size <= 64, f"pipeline snapshot is {size} bytes"
    assert pipeline.source.dataset.nbytes > 100_000
    assert all(np.ndim(leaf) == 0 for leaf in leaves)


@pytest.mark.parametrize("batch_size", [0, 7, 1000])
def test_a_batch_size_that_does_not_divide_the_records_is_refused(batch_size):
    with pytest.raises(ValueError, match="batch_size must divide"):
        make_pipeline(num_records=512, batch_size=batch_size)


def test_bad_data_shapes_are_refused():
    from resumable import Dataset

    with pytest.raises(ValueError, match="2-D"):
        Dataset(np.zeros(3, np.float32), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="labels must have shape"):
        Dataset(np.zeros((3, 2), np.float32), np.zeros(4, np.int32))
