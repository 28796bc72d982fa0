"""Notebook 04's batch-order explorer callback."""

import numpy as np
import pytest
from flax import nnx

from resumable import make_pipeline
from resumable.views.batch_order import batch_order_view, epoch_batches


def test_epoch_batches_are_the_epoch_order_cut_into_batches_and_a_permutation():
    pipeline = make_pipeline(seed=3, num_records=96, batch_size=8)
    for epoch in range(2):
        batches = epoch_batches(pipeline, epoch)
        assert batches.shape == (12, 8)
        np.testing.assert_array_equal(batches.ravel(), np.asarray(pipeline.epoch_order(epoch)))
        assert sorted(batches.ravel().tolist()) == list(range(96))
    assert not np.array_equal(epoch_batches(pipeline, 0), epoch_batches(pipeline, 1))


def test_the_batches_are_the_ones_the_pipeline_serves_and_its_state_is_untouched():
    pipeline = make_pipeline(seed=1)
    before = nnx.to_pure_dict(nnx.state(pipeline))
    batches = epoch_batches(pipeline, 1)
    after = nnx.to_pure_dict(nnx.state(pipeline))
    assert int(after["_position"]) == int(before["_position"]) == 0
    for _ in range(16 + 3):  # all of epoch 0, then batches 0, 1 and 2 of epoch 1
        batch = next(pipeline)
    np.testing.assert_array_equal(np.asarray(batch["labels"]), pipeline.source.dataset.labels[batches[2]])


def test_view_draws_the_epoch_and_names_the_batch():
    pipeline = make_pipeline(seed=2)
    figure, text = batch_order_view(pipeline, 1, 4)
    np.testing.assert_array_equal(figure.axes[0].images[0].get_array(), epoch_batches(pipeline, 1))
    assert text.startswith("epoch 1, batch 4 of 16 = training step 21: 32 records")
    assert text.splitlines()[1].split() == [str(i) for i in epoch_batches(pipeline, 1)[4]]
    other_figure, other_text = batch_order_view(pipeline, 2, 4)
    assert not np.array_equal(figure.axes[0].images[0].get_array(), other_figure.axes[0].images[0].get_array())
    assert other_text != text


@pytest.mark.parametrize("epoch, batch", [(0, -1), (0, 16), (-1, 0)])
def test_out_of_range_choices_are_refused(epoch, batch):
    with pytest.raises(ValueError):
        batch_order_view(make_pipeline(), epoch, batch)
