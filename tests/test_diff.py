"""The state diff: identical snapshots, and differences named in words."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from resumable import make_pipeline, make_triple, state_diff, train


def test_identical_triples():
    diff = state_diff(
        dict(zip(("pipeline", "model", "optimizer"), make_triple(), strict=True)),
        dict(zip(("pipeline", "model", "optimizer"), make_triple(), strict=True)),
    )
    assert diff.identical and bool(diff) and diff.differences == []
    assert diff.num_leaves == 22
    assert str(diff).startswith("identical: all 22 leaves")


def test_a_moved_cursor_is_named_with_both_values():
    advanced, fresh = make_pipeline(), make_pipeline()
    for _ in range(2):
        next(advanced)
    diff = state_diff({"pipeline": advanced}, {"pipeline": fresh}, names=("resumed", "reference"))
    assert not diff.identical
    assert diff.paths == ["pipeline/_position", "pipeline/stages/0/rngs/noise/count"]
    assert str(diff.differences[0]) == "pipeline/_position: 64 vs 0 (values differ)"
    assert "2 of 6 leaves differ (resumed vs reference)" in diff.summary()


def test_array_differences_report_where_and_how_much():
    left = {"w": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)}
    right = {"w": np.array([[1.0, 2.0], [3.0, 4.5]], np.float32)}
    (difference,) = state_diff(left, right).differences
    assert difference.path == "w" and difference.left == "4.0" and difference.right == "4.5"
    assert "at [1, 1]" in difference.reason and "1 of 4 entries differ" in difference.reason
    assert "max |diff| 5.000e-01" in difference.reason


def test_missing_leaves_shapes_and_dtypes():
    left = {"a": np.zeros(3, np.float32), "b": np.zeros(2, np.float32), "c": np.int32(1)}
    right = {"a": np.zeros(4, np.float32), "c": np.int64(1), "d": np.zeros(1)}
    reasons = {d.path: d.reason for d in state_diff(left, right).differences}
    assert reasons == {"a": "shapes differ", "b": "only in left", "c": "dtypes differ", "d": "only in right"}


def test_bitwise_not_approximately_equal():
    tiny = np.float32(1.0) + np.finfo(np.float32).eps
    assert not state_diff({"x": np.float32(1.0)}, {"x": tiny}).identical
    assert not state_diff({"x": np.float32(0.0)}, {"x": np.float32(-0.0)}).identical
    assert state_diff({"x": np.float32(np.nan)}, {"x": np.float32(np.nan)}).identical


def test_typed_prng_keys_are_compared_by_their_bits():
    assert state_diff({"k": jax.random.key(0)}, {"k": jax.random.key(0)}).identical
    assert not state_diff({"k": jax.random.key(0)}, {"k": jax.random.key(1)}).identical


def test_modules_states_and_pure_dicts_are_accepted():
    pipeline, model, optimizer = make_triple()
    train(pipeline, model, optimizer, 1)
    _, fresh_model, _ = make_triple()
    as_module = state_diff(model, fresh_model)
    as_state = state_diff(nnx.state(model), nnx.state(fresh_model))
    as_dict = state_diff(nnx.to_pure_dict(nnx.state(model)), nnx.to_pure_dict(nnx.state(fresh_model)))
    assert as_module.paths == as_state.paths == as_dict.paths
    assert "dropout/rngs/count" in as_module.paths and "hidden/kernel" in as_module.paths
    assert state_diff([jnp.ones(2)], [jnp.ones(2)]).identical
