"""State diff: are two snapshots bit-identical, and if not, which leaves differ first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np
from flax import nnx


@dataclass(frozen=True)
class LeafDifference:
    """One leaf that differs: its path, both values in words, and why it differs."""

    path: str
    left: str
    right: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.left} vs {self.right} ({self.reason})"


@dataclass(frozen=True)
class StateDiff:
    """The result of `state_diff`. `bool(diff)` is True when the two sides are bit-identical."""

    left_name: str
    right_name: str
    num_leaves: int
    differences: list[LeafDifference] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences

    def __bool__(self) -> bool:
        return self.identical

    @property
    def paths(self) -> list[str]:
        return [difference.path for difference in self.differences]

    def summary(self, limit: int = 5) -> str:
        if self.identical:
            return (
                f"identical: all {self.num_leaves} leaves of {self.left_name} and {self.right_name} are bit-identical"
            )
        lines = [
            f"{len(self.differences)} of {self.num_leaves} leaves differ "
            f"({self.left_name} vs {self.right_name}); first {min(limit, len(self.differences))}:"
        ]
        lines += [f"  {difference}" for difference in self.differences[:limit]]
        if len(self.differences) > limit:
            lines.append(f"  ... and {len(self.differences) - limit} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())


def _to_tree(value: Any) -> Any:
    """Modules and States become pure dicts; mappings and sequences are converted item by item."""
    if isinstance(value, nnx.Pytree):  # Modules and Optimizers
        return nnx.to_pure_dict(nnx.state(value))
    if isinstance(value, nnx.State):
        return nnx.to_pure_dict(value)
    if isinstance(value, nnx.Variable):
        return value.get_value()
    if isinstance(value, Mapping):
        return {key: _to_tree(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return {index: _to_tree(item) for index, item in enumerate(value)}
    return value


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        flat: dict[str, Any] = {}
        for key in sorted(tree, key=str):
            flat.update(_flatten(tree[key], f"{prefix}/{key}" if prefix else str(key)))
        return flat
    return {prefix or "<root>": tree}


def _as_array(leaf: Any) -> np.ndarray:
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def _describe(array: np.ndarray) -> str:
    if array.size == 1:
        return repr(array.reshape(()).item())
    return f"array{list(array.shape)} {array.dtype}"


def _compare(path: str, left: Any, right: Any) -> LeafDifference | None:
    try:
        left_array, right_array = _as_array(left), _as_array(right)
    except (TypeError, ValueError):
        return None if left == right else LeafDifference(path, repr(left), repr(right), "values differ")
    if left_array.shape != right_array.shape:
        return LeafDifference(path, f"shape {left_array.shape}", f"shape {right_array.shape}", "shapes differ")
    if left_array.dtype != right_array.dtype:
        return LeafDifference(path, str(left_array.dtype), str(right_array.dtype), "dtypes differ")
    if left_array.tobytes() == right_array.tobytes():
        return None
    if left_array.size == 1:
        return LeafDifference(path, _describe(left_array), _describe(right_array), "values differ")
    unequal = left_array != right_array
    first = tuple(int(i) for i in np.argwhere(unequal)[0]) if unequal.any() else ()
    reason = f"{int(unequal.sum())} of {left_array.size} entries differ"
    if np.issubdtype(left_array.dtype, np.number) and unequal.any():
        gap = np.abs(left_array.astype(np.float64) - right_array.astype(np.float64)).max()
        reason += f", max |diff| {gap:.3e}"
    if first:
        return LeafDifference(
            path, repr(left_array[first].item()), repr(right_array[first].item()), f"at {list(first)}: {reason}"
        )
    return LeafDifference(path, _describe(left_array), _describe(right_array), "bits differ (NaN or -0.0)")


def state_diff(left: Any, right: Any, *, names: tuple[str, str] = ("left", "right")) -> StateDiff:
    """Compare two snapshots leaf by leaf, bit for bit.

    Inputs: two of the same kind of thing: pure dicts (`nnx.to_pure_dict`), `nnx.State`s, Modules, or
    mappings/sequences of those (e.g. `{"pipeline": p, "model": m, "optimizer": o}`); `names` label the
    two sides in the report.
    Output: a `StateDiff`; `.identical` is True only when every leaf has the same shape, dtype and bits,
    otherwise `.differences` lists the differing leaves in path order, with both values.
    """
    left_flat, right_flat = _flatten(_to_tree(left)), _flatten(_to_tree(right))
    differences = []
    for path in sorted(set(left_flat) | set(right_flat)):
        if path not in right_flat:
            differences.append(LeafDifference(path, "present", "missing", f"only in {names[0]}"))
        elif path not in left_flat:
            differences.append(LeafDifference(path, "missing", "present", f"only in {names[1]}"))
        else:
            difference = _compare(path, left_flat[path], right_flat[path])
            if difference is not None:
                differences.append(difference)
    return StateDiff(names[0], names[1], len(set(left_flat) | set(right_flat)), differences)


def max_param_difference(left: nnx.Module, right: nnx.Module) -> float:
    """The public guide's metric: the largest |difference| over the two models' `nnx.Param` leaves."""
    pairs = zip(jax.tree.leaves(nnx.state(left, nnx.Param)), jax.tree.leaves(nnx.state(right, nnx.Param)), strict=True)
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) for a, b in pairs)
