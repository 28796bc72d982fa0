"""The snapshot tree view (notebook 01's widget callback) and the pure-dict check."""

import jax
import numpy as np
from flax import nnx

from resumable import make_triple
from resumable.views.snapshot_tree import pure_dict_problems, render_choice, render_tree, snapshot_leaves


def test_leaves_of_the_model_carry_types_shapes_dtypes_and_bytes():
    _, model, _ = make_triple()
    leaves = {"/".join(leaf.path): leaf for leaf in snapshot_leaves(model)}
    assert sorted(leaves) == [
        "dropout/rngs/count",
        "dropout/rngs/key",
        "hidden/bias",
        "hidden/kernel",
        "output/bias",
        "output/kernel",
    ]
    kernel = leaves["hidden/kernel"]
    assert (kernel.kind, kernel.shape, kernel.dtype, kernel.nbytes) == ("Param", (8, 32), "float32", 1024)
    key = leaves["dropout/rngs/key"]
    assert (key.kind, key.shape, key.dtype, key.nbytes) == ("RngKey", (), "key<fry>", 8)


def test_optimizer_and_pipeline_paths_write_integer_keys_as_digits():
    pipeline, _, optimizer = make_triple()
    optimizer_paths = ["/".join(leaf.path) for leaf in snapshot_leaves(optimizer)]
    assert "opt_state/0/count" in optimizer_paths and "step" in optimizer_paths
    assert sum(leaf.nbytes for leaf in snapshot_leaves(pipeline)) == 32


def test_a_pure_dict_keeps_paths_and_bytes_but_not_variable_types():
    _, model, _ = make_triple()
    typed, pure = snapshot_leaves(model), snapshot_leaves(nnx.to_pure_dict(nnx.state(model)))
    assert [leaf.path for leaf in typed] == [leaf.path for leaf in pure]
    assert [leaf.nbytes for leaf in typed] == [leaf.nbytes for leaf in pure]
    assert {leaf.kind for leaf in pure} == {"ArrayImpl", "PRNGKeyArray"}


def test_render_tree_draws_one_line_per_node_with_a_header():
    text = render_tree({"b": {"x": np.zeros(3, np.float32)}, "a": np.zeros((2, 2), np.int64)}, "demo")
    assert text.splitlines() == [
        "demo: 2 leaves, 44 B",
        "├─ a     ndarray  int64    (2, 2)  32 B",
        "└─ b",
        "   └─ x  ndarray  float32  (3,)    12 B",
    ]


def test_render_tree_of_an_empty_tree_is_just_the_header():
    assert render_tree({}, "empty") == "empty: 0 leaves, 0 B"


def test_render_choice_is_the_widget_callback():
    pipeline, model, optimizer = make_triple()
    trees = {"pipeline": pipeline, "model": model, "optimizer": optimizer}
    assert render_choice("model", trees) == render_tree(model, "model")
    assert render_choice("optimizer", trees).startswith("optimizer: 10 leaves, 3,368 B")
    assert "unknown choice" in render_choice("nothing", trees)


def test_pure_dict_problems_names_what_is_not_plain():
    _, model, _ = make_triple()
    assert pure_dict_problems(nnx.to_pure_dict(nnx.state(model))) == []
    assert pure_dict_problems(nnx.state(model)) == ["the top level is a State, not a plain dict"]
    assert pure_dict_problems({"a": {"b": 1.0}}) == ["a/b is a float, not an array"]
    assert pure_dict_problems({"p": nnx.Param(np.zeros(2))}) == ["p is an nnx.Param, not an array"]
    assert pure_dict_problems({"k": jax.random.key(0), "n": np.zeros(1)}) == []
