"""Notebook 03's toggle callback and the `uncommitted` host copy."""

import jax
import numpy as np
import pytest
from flax import nnx

from resumable import RunConfig, make_triple, state_diff, train
from resumable.checkpoints.uncommitted import uncommitted
from resumable.views.update_toggle import resume_with, update_toggle_view

CONFIG = RunConfig(seed=4)
RESUME_STEP, TOTAL_STEPS = 5, 9
PARTS = ("pipeline", "model", "optimizer")


def restore_with_update(module, pure):
    state = nnx.state(module)
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(module, state)


def restore_without_update(module, pure):
    nnx.replace_by_pure_dict(nnx.state(module), pure)


@pytest.fixture(scope="module")
def run():
    reference = train(*make_triple(CONFIG), TOTAL_STEPS)
    crashed = make_triple(CONFIG)
    train(*crashed, RESUME_STEP)
    saved = {name: nnx.to_pure_dict(nnx.state(part)) for name, part in zip(PARTS, crashed, strict=True)}
    return reference, saved


def resumed_curve(figure):
    return np.asarray(figure.axes[0].lines[1].get_ydata(), dtype=np.float64)


def test_resume_with_update_continues_the_reference_exactly(run):
    reference, saved = run
    losses, diff = resume_with(restore_with_update, saved, CONFIG, TOTAL_STEPS - RESUME_STEP)
    assert losses == reference[RESUME_STEP:]
    assert diff.identical


def test_resume_without_update_is_a_fresh_run(run):
    reference, saved = run
    losses, diff = resume_with(restore_without_update, saved, CONFIG, TOTAL_STEPS - RESUME_STEP)
    assert losses == train(*make_triple(CONFIG), TOTAL_STEPS - RESUME_STEP)
    assert not diff.identical and "model/hidden/kernel" in diff.paths


def test_the_two_toggle_positions_draw_different_curves(run):
    reference, saved = run
    with_figure, with_text = update_toggle_view(restore_with_update, saved, reference, CONFIG, RESUME_STEP)
    without_figure, without_text = update_toggle_view(restore_without_update, saved, reference, CONFIG, RESUME_STEP)
    with_curve, without_curve = resumed_curve(with_figure), resumed_curve(without_figure)
    np.testing.assert_array_equal(with_curve, np.asarray(reference, dtype=np.float64))
    assert not np.array_equal(with_curve[RESUME_STEP:], without_curve[RESUME_STEP:])
    np.testing.assert_array_equal(with_curve[:RESUME_STEP], without_curve[:RESUME_STEP])
    assert "identical" in with_text and "largest loss gap after the resume: 0.0000e+00" in with_text
    assert "leaves differ" in without_text and "model/hidden/kernel" in without_text


def test_uncommitted_keeps_bits_and_key_types_but_not_the_device_commitment():
    _, model, _ = make_triple(CONFIG)
    committed = jax.device_put(nnx.to_pure_dict(nnx.state(model)), jax.devices()[0])
    copy = uncommitted(committed)
    assert state_diff(copy, committed).identical
    assert jax.dtypes.issubdtype(copy["dropout"]["rngs"]["key"].dtype, jax.dtypes.prng_key)
    assert all(leaf.committed for leaf in jax.tree.leaves(committed))
    assert not any(leaf.committed for leaf in jax.tree.leaves(copy))
