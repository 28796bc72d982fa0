"""Meshes of (simulated) devices, the course's partition rule, and pictures of which device holds which shard."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np
from jax.sharding import AxisType, Mesh, PartitionSpec
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from resumable.diff import state_diff

MESH_AXES = ("data", "model")
MESH_SHAPES = ((8, 1), (4, 2), (2, 4), (1, 8))
SpecFn = Callable[[tuple[int, ...], Mesh], PartitionSpec]


def make_mesh(shape: tuple[int, int]) -> Mesh:
    """A ("data", "model") mesh of `shape` over the first data * model devices, with Auto axis types.

    `jax.make_mesh` alone gives Explicit axes, under which the course's train step (a matmul whose
    contracted dimension is sharded) is a ShardingTypeError; with Auto axes the compiler inserts the
    collectives itself.
    """
    count = int(np.prod(shape))
    if len(shape) != 2 or count > jax.device_count():
        raise ValueError(f"need a 2-D mesh shape using at most {jax.device_count()} devices, got {tuple(shape)}")
    return jax.make_mesh(tuple(shape), MESH_AXES, axis_types=(AxisType.Auto,) * 2, devices=jax.devices()[:count])


def partition_spec(shape: tuple[int, ...], mesh: Mesh) -> PartitionSpec:
    """The course's rule: the last dimension over "model", the one before it over "data".

    A dimension is split only when the mesh axis size divides it (JAX needs equal shards); otherwise,
    and for scalars, the array is replicated along that mesh axis.
    """
    names: list[str | None] = [None] * len(shape)
    for offset, axis in ((1, "model"), (2, "data")):
        if len(shape) >= offset and shape[-offset] % mesh.shape[axis] == 0 and mesh.shape[axis] > 1:
            names[-offset] = axis
    return PartitionSpec(*names)


def shard_blocks(array: jax.Array) -> list[tuple[tuple[slice, ...], list[int]]]:
    """Each distinct block of `array` (a tuple of slices) with the ids of the devices that hold a copy of it."""
    blocks: dict[tuple[tuple[int | None, int | None], ...], tuple[tuple[slice, ...], list[int]]] = {}
    for shard in array.addressable_shards:
        key = tuple((index.start, index.stop) for index in shard.index)
        blocks.setdefault(key, (shard.index, []))[1].append(int(shard.device.id))
    return [(index, sorted(devices)) for index, devices in blocks.values()]


def _bounds(index: slice, size: int) -> tuple[int, int]:
    start, stop, _ = index.indices(size)
    return start, stop


def plot_placement(arrays: Mapping[str, jax.Array], title: str = "") -> Figure:
    """One panel per 1-D or 2-D array: a rectangle per block, labelled with the devices that hold it.

    Inputs: name -> array (any sharding). Output: the Figure (not shown).
    """
    figure, axes = plt.subplots(1, len(arrays), figsize=(3.3 * len(arrays), 3.4), squeeze=False, layout="constrained")
    colours = plt.get_cmap("tab10")
    for axis, (name, array) in zip(axes[0], arrays.items(), strict=True):
        shape = array.shape if array.ndim == 2 else (1, *array.shape)
        for index, devices in shard_blocks(array):
            rows = _bounds(index[0], shape[0]) if array.ndim == 2 else (0, 1)
            cols = _bounds(index[-1], shape[1])
            axis.add_patch(
                Rectangle(
                    (cols[0], rows[0]),
                    cols[1] - cols[0],
                    rows[1] - rows[0],
                    facecolor=colours(devices[0] % 10),
                    edgecolor="white",
                    linewidth=2,
                    alpha=0.75,
                )
            )
            axis.text(
                (cols[0] + cols[1]) / 2,
                (rows[0] + rows[1]) / 2,
                ",".join(str(device) for device in devices),
                ha="center",
                va="center",
                fontsize=8,
            )
        axis.set_xlim(0, shape[1])
        axis.set_ylim(shape[0], 0)
        axis.set_title(f"{name} {list(array.shape)}\n{array.sharding.spec}", fontsize=9)
        axis.set_xticks([0, shape[1]])
        axis.set_yticks([0, shape[0]])
    figure.suptitle(title, fontsize=10)
    plt.close(figure)
    return figure


def leaf(tree: Any, path: str) -> Any:
    """The leaf of a nested dict at a "/"-separated path; keys that are ints in the tree may be given as digits."""
    for part in path.split("/"):
        tree = tree[part] if part in tree else tree[int(part)]
    return tree


def restore_view(
    mesh_shape: tuple[int, int],
    *,
    restore_fn: Callable[[Any, Any, Mesh, SpecFn], Any],
    path: Any,
    template_state: Any,
    saved: Any,
    spec_fn: SpecFn = partition_spec,
    show: Sequence[str] = ("model/hidden/kernel", "model/output/kernel", "optimizer/opt_state/0/mu/hidden/bias"),
) -> Figure:
    """The mesh picker's callback: restore the checkpoint at `path` onto a new mesh and draw where it landed.

    Inputs: the target mesh shape; the student's `restore_fn(path, template_state, mesh, spec_fn)`; the
    pure-dict template; `saved`, the state that was saved (to check the restored values bit for bit);
    `show`, the leaf paths to draw. Output: a Figure whose title holds the state diff's verdict.
    """
    mesh = make_mesh(mesh_shape)
    restored = restore_fn(path, template_state, mesh, spec_fn)
    verdict = state_diff(saved, restored, names=("saved", f"restored onto {tuple(mesh_shape)}")).summary(limit=2)
    return plot_placement({name: leaf(restored, name) for name in show}, title=f"mesh {dict(mesh.shape)}\n{verdict}")
