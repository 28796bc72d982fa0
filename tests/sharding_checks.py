"""Checks of resumable.checkpoints.sharding that need 8 devices; tests/test_sharding.py runs them in a child process.

Not collected on its own (the name does not start with test_): XLA fixes the number of CPU devices when JAX
starts, so these run in a fresh Python started with XLA_FLAGS=--xla_force_host_platform_device_count=8.
"""

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from resumable.checkpoints.sharding import (
    MESH_SHAPES,
    leaf,
    make_mesh,
    partition_spec,
    shard_blocks,
)
from resumable.views import mesh_picker as mesh_picker_module
from resumable.views.mesh_picker import mesh_picker, plot_placement, restore_view


def test_there_are_eight_devices():
    assert jax.device_count() == 8


@pytest.mark.parametrize("shape", MESH_SHAPES)
def test_make_mesh_has_auto_data_and_model_axes(shape):
    mesh = make_mesh(shape)
    assert dict(mesh.shape) == {"data": shape[0], "model": shape[1]}
    assert mesh.axis_types == (AxisType.Auto, AxisType.Auto)


def test_make_mesh_refuses_more_devices_than_there_are():
    with pytest.raises(ValueError, match="at most 8 devices"):
        make_mesh((4, 4))


def test_partition_spec_splits_only_where_the_mesh_axis_divides():
    mesh = make_mesh((4, 2))
    assert partition_spec((8, 32), mesh) == PartitionSpec("data", "model")
    assert partition_spec((32,), mesh) == PartitionSpec("model")
    assert partition_spec((), mesh) == PartitionSpec()
    assert partition_spec((6, 3), mesh) == PartitionSpec(None, None)
    assert partition_spec((32, 4), make_mesh((1, 8))) == PartitionSpec(None, None)
    assert partition_spec((8, 32), make_mesh((8, 1))) == PartitionSpec("data", None)


def test_shard_blocks_names_the_devices_of_each_block():
    mesh = make_mesh((4, 2))
    kernel = jax.device_put(np.zeros((8, 32), np.float32), NamedSharding(mesh, PartitionSpec("data", "model")))
    blocks = shard_blocks(kernel)
    assert len(blocks) == 8 and sorted(devices[0] for _, devices in blocks) == list(range(8))
    bias = jax.device_put(np.zeros(32, np.float32), NamedSharding(mesh, PartitionSpec("model")))
    assert sorted(devices for _, devices in shard_blocks(bias)) == [[0, 2, 4, 6], [1, 3, 5, 7]]


def test_plot_placement_draws_one_panel_per_array_with_device_labels():
    mesh = make_mesh((2, 4))
    arrays = {
        "kernel": jax.device_put(np.zeros((8, 32), np.float32), NamedSharding(mesh, PartitionSpec("data", "model"))),
        "bias": jax.device_put(np.zeros(32, np.float32), NamedSharding(mesh, PartitionSpec("model"))),
    }
    figure = plot_placement(arrays, title="placement")
    assert len(figure.axes) == 2 and figure._suptitle.get_text() == "placement"
    labels = sorted(text.get_text() for text in figure.axes[0].texts)
    assert labels == [str(device) for device in range(8)]
    assert sorted(text.get_text() for text in figure.axes[1].texts) == ["0,4", "1,5", "2,6", "3,7"]


def test_leaf_follows_paths_with_int_keys():
    assert leaf({"a": {0: {"b": 5}}}, "a/0/b") == 5


def _saved_checkpoint(tmp_path):
    state = {
        "model": {"hidden": {"kernel": np.arange(256, dtype=np.float32).reshape(8, 32)}},
        "optimizer": {"opt_state": {0: {"mu": {"hidden": {"bias": np.linspace(0, 1, 32, dtype=np.float32)}}}}},
        "rngs": {"key": jax.random.key(7)},
    }
    mesh = make_mesh((4, 2))
    saved = jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, partition_spec(x.shape, mesh))), state)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "checkpoint", saved)
    checkpointer.wait_until_finished()
    return tmp_path / "checkpoint", saved


def _trusted_restore(path, template_state, mesh, spec_fn):
    template = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=NamedSharding(mesh, spec_fn(x.shape, mesh))),
        template_state,
    )
    return ocp.StandardCheckpointer().restore(path, template)


@pytest.mark.parametrize("shape", MESH_SHAPES)
def test_restore_view_draws_the_restored_blocks_and_reports_identical(tmp_path, shape):
    path, saved = _saved_checkpoint(tmp_path)
    figure = restore_view(
        shape,
        restore_fn=_trusted_restore,
        path=path,
        template_state=saved,
        saved=saved,
        show=("model/hidden/kernel", "optimizer/opt_state/0/mu/hidden/bias"),
    )
    title = figure._suptitle.get_text()
    assert f"'data': {shape[0]}, 'model': {shape[1]}" in title and "identical" in title and "differ" not in title
    kernel_labels = {text.get_text() for text in figure.axes[0].texts}
    assert len(kernel_labels) == len(
        shard_blocks(_trusted_restore(path, saved, make_mesh(shape), partition_spec)["model"]["hidden"]["kernel"])
    )


def test_restore_view_reports_a_restore_that_loses_values(tmp_path):
    path, saved = _saved_checkpoint(tmp_path)

    def restore_zeros(path, template_state, mesh, spec_fn):
        restored = _trusted_restore(path, template_state, mesh, spec_fn)
        restored["model"]["hidden"]["kernel"] = restored["model"]["hidden"]["kernel"] * 0
        return restored

    figure = restore_view(
        (2, 4), restore_fn=restore_zeros, path=path, template_state=saved, saved=saved, show=("model/hidden/kernel",)
    )
    assert "1 of 3 leaves differ" in figure._suptitle.get_text()
    assert "model/hidden/kernel" in figure._suptitle.get_text()


def test_mesh_picker_shows_the_figure_at_once_and_on_every_choice(monkeypatch):
    """The picker's widget must display a PNG of the figure when it is made and after each choice (an
    `interactive` without auto_display showed the dropdown and no figure)."""
    shown, drawn = [], []
    monkeypatch.setattr(mesh_picker_module, "display", shown.append)

    def draw(mesh_shape):
        drawn.append(mesh_shape)
        mesh = make_mesh(mesh_shape)
        kernel = jax.device_put(np.zeros((8, 32), np.float32), NamedSharding(mesh, partition_spec((8, 32), mesh)))
        return plot_placement({"kernel": kernel}, title=str(mesh_shape))

    picker = mesh_picker(draw, MESH_SHAPES, value=(2, 4))
    assert drawn == [(2, 4)] and len(shown) == 1
    assert shown[0].format == "png" and shown[0].data.startswith(b"\x89PNG")
    (dropdown,) = [child for child in picker.children if hasattr(child, "options")]
    dropdown.value = (4, 2)
    assert drawn == [(2, 4), (4, 2)] and len(shown) == 2 and shown[1].data != shown[0].data
