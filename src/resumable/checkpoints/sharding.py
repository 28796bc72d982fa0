"""Meshes of (simulated) devices, the course's partition rule, and pictures of which device holds which shard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, PartitionSpec

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


def leaf(tree: Any, path: str) -> Any:
    """The leaf of a nested dict at a "/"-separated path; keys that are ints in the tree may be given as digits."""
    for part in path.split("/"):
        tree = tree[part] if part in tree else tree[int(part)]
    return tree
