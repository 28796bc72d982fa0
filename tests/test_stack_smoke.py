"""Smoke test of the pinned stack: the APIs the course teaches exist and behave as the notebooks say."""

import jax
import optax
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from resumable import make_model


def test_optimizer_needs_wrt_and_updates_in_place():
    model = make_model()
    with pytest.raises(TypeError):
        nnx.Optimizer(model, optax.adam(1e-3))  # wrt is required on this Flax
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    assert int(optimizer.step[...]) == 0


def test_saving_a_module_directly_works_on_this_flax_but_restores_an_unusable_tree(tmp_path):
    # Older Flax raised a TypeError here. Since Flax 0.11 Modules are pytrees: Orbax saves them, and a
    # restore without a template returns Flax's internal layout, not the pure dict the course uses.
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "module", make_model())
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(tmp_path / "module")
    assert set(restored["hidden"]) == {"_pytree__state", "bias", "kernel"}
    assert set(restored["hidden"]["kernel"]) == {"value"}
    with pytest.raises(ValueError):
        nnx.replace_by_pure_dict(nnx.state(make_model()), restored)


def test_restoring_without_a_template_turns_int_keys_into_strings(tmp_path):
    model = make_model()
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    pure = nnx.to_pure_dict(nnx.state(optimizer))
    assert 0 in pure["opt_state"]
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "optimizer", pure)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(tmp_path / "optimizer")
    assert "0" in restored["opt_state"] and 0 not in restored["opt_state"]
    assert 0 in nnx.restore_int_paths(restored)["opt_state"]


def test_rngs_streams_hold_a_typed_key_and_a_count():
    rngs = nnx.Rngs(dropout=0)
    rngs.dropout()
    assert jax.dtypes.issubdtype(rngs.dropout.key[...].dtype, jax.dtypes.prng_key)
    assert int(rngs.dropout.count[...]) == 1
