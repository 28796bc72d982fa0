"""Notebook 08's mesh picker: restore a checkpoint onto a chosen mesh and draw which device holds which shard."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets
import jax
import matplotlib.pyplot as plt
from IPython.display import Image, display
from jax.sharding import Mesh
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from resumable.checkpoints.sharding import SpecFn, _bounds, leaf, make_mesh, partition_spec, shard_blocks
from resumable.diff import state_diff
from resumable.views.plots import png


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


def mesh_picker(
    draw: Callable[[tuple[int, int]], Figure], mesh_shapes: Sequence[tuple[int, int]], value: tuple[int, int]
) -> ipywidgets.interactive:
    """A dropdown of mesh shapes that shows the figure `draw(mesh_shape)` returns, at once and on every choice.

    `ipywidgets.interactive` displays its callback's return value only with `auto_display=True` (off by
    default), and the figures here are closed, so the inline backend does not show them either: a picker
    made as `interactive(draw, ...)` shows the dropdown and no figure. This one displays each figure as a
    PNG itself (inside the widget's output, replacing the previous one). `draw` stays a plain function
    returning a Figure, which tests call directly.
    """

    def show(mesh_shape: tuple[int, int]) -> None:
        display(Image(png(draw(mesh_shape))))

    options = [(str(shape), tuple(shape)) for shape in mesh_shapes]
    dropdown = ipywidgets.Dropdown(options=options, value=tuple(value), description="mesh")
    return ipywidgets.interactive(show, mesh_shape=dropdown)
