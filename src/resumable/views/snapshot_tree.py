"""The tree of a snapshot: its leaves (path, variable type, shape, dtype, bytes), a text view, a purity check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from flax import nnx


@dataclass(frozen=True)
class Leaf:
    """One leaf of a snapshot. `kind` is the nnx Variable type (`Param`, `RngKey`, ...) or, for a bare
    value as in a pure dict, the value's own type (`ArrayImpl`, `ndarray`, ...)."""

    path: tuple[str, ...]
    kind: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


def _value_nbytes(value: Any) -> int:
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        return int(jax.random.key_data(value).nbytes)
    return int(np.asarray(value).nbytes)


def _walk(tree: Any, path: tuple[str, ...]) -> Iterator[Leaf]:
    if isinstance(tree, Mapping):
        for key in sorted(tree, key=str):
            yield from _walk(tree[key], (*path, str(key)))
        return
    kind = type(tree).__name__
    value = tree.get_value() if isinstance(tree, nnx.Variable) else tree
    dtype = str(value.dtype) if hasattr(value, "dtype") else type(value).__name__
    yield Leaf(path, kind, tuple(int(size) for size in np.shape(value)), dtype, _value_nbytes(value))


def snapshot_leaves(tree: Any) -> list[Leaf]:
    """Every leaf of `tree`, in path order.

    Input: an nnx Module or Optimizer (any `nnx.Pytree`: its `nnx.state` is walked, so leaves keep their
    Variable types), an `nnx.State`, or a nested dict of arrays (a pure dict).
    Output: one `Leaf` per array; paths use the dict keys as strings (integer keys such as 0 become "0").
    """
    if isinstance(tree, nnx.Pytree):
        tree = nnx.state(tree)
    return list(_walk(tree, ()))


def _format_bytes(nbytes: int) -> str:
    return f"{nbytes:,} B"


def _tree_rows(nodes: dict[str, Any], prefix: str) -> Iterator[tuple[str, Leaf | None]]:
    for index, (name, node) in enumerate(nodes.items()):
        last = index == len(nodes) - 1
        label = prefix + ("└─ " if last else "├─ ") + name
        if isinstance(node, Leaf):
            yield label, node
        else:
            yield label, None
            yield from _tree_rows(node, prefix + ("   " if last else "│  "))


def render_tree(tree: Any, title: str = "snapshot") -> str:
    """The leaves of `tree` (anything `snapshot_leaves` accepts) as an indented tree, one line per node.

    Output: text whose first line is the title with the leaf count and total bytes; leaf lines show
    variable type, dtype, shape and bytes in aligned columns.
    """
    leaves = snapshot_leaves(tree)
    nested: dict[str, Any] = {}
    for leaf in leaves:
        folder = nested
        for name in leaf.path[:-1]:
            folder = folder.setdefault(name, {})
        folder[leaf.path[-1] if leaf.path else "<root>"] = leaf
    rows = list(_tree_rows(nested, ""))
    columns = [
        (lambda leaf: leaf.kind, "<"),
        (lambda leaf: leaf.dtype, "<"),
        (lambda leaf: str(leaf.shape), "<"),
        (lambda leaf: _format_bytes(leaf.nbytes), ">"),
    ]
    widths = [max((len(text(leaf)) for leaf in leaves), default=0) for text, _ in columns]
    label_width = max((len(label) for label, leaf in rows if leaf is not None), default=0)
    lines = [f"{title}: {len(leaves)} leaves, {_format_bytes(sum(leaf.nbytes for leaf in leaves))}"]
    for label, leaf in rows:
        if leaf is None:
            lines.append(label)
            continue
        cells = [f"{text(leaf):{align}{width}}" for (text, align), width in zip(columns, widths, strict=True)]
        lines.append(f"{label:<{label_width}}  " + "  ".join(cells))
    return "\n".join(lines)


def render_choice(choice: str, trees: Mapping[str, Any]) -> str:
    """The tree view of `trees[choice]` (the callback of the notebooks' snapshot dropdown)."""
    if choice not in trees:
        return f"unknown choice {choice!r}; pick one of {', '.join(trees)}"
    return render_tree(trees[choice], title=choice)


def pure_dict_problems(tree: Any, limit: int = 3) -> list[str]:
    """Why `tree` is not a pure dict snapshot (empty list when it is one).

    A pure dict is made of plain `dict`s (exactly that type, not `nnx.State` or another mapping) whose
    leaves are arrays (`jax.Array` or `numpy.ndarray`), never `nnx.Variable`s. Output: up to `limit`
    sentences, each naming a path and what was found there.
    """
    problems: list[str] = []

    def visit(node: Any, path: str) -> None:
        if len(problems) >= limit:
            return
        where = path or "the top level"
        if isinstance(node, Mapping):
            if type(node) is not dict:
                problems.append(f"{where} is a {type(node).__name__}, not a plain dict")
                return
            for key, child in node.items():
                visit(child, f"{path}/{key}" if path else str(key))
        elif isinstance(node, nnx.Variable):
            problems.append(f"{where} is an nnx.{type(node).__name__}, not an array")
        elif not isinstance(node, (jax.Array, np.ndarray)):
            problems.append(f"{where} is a {type(node).__name__}, not an array")

    visit(tree, "")
    return problems
