"""Host copies of restored arrays, so that a restored run reuses the compiled steps of a fresh one."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _uncommitted_leaf(leaf: Any) -> Any:
    if not isinstance(leaf, jax.Array):
        return leaf
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(
            jnp.asarray(np.asarray(jax.random.key_data(leaf))), impl=jax.random.key_impl(leaf)
        )
    return jnp.asarray(np.asarray(leaf))


def uncommitted(tree: Any) -> Any:
    """The same tree with every jax array copied through host memory: same bits, not committed to a device.

    Why: Orbax returns arrays committed to a device, freshly built objects hold uncommitted ones, and jax
    compiles a separate version of every function (the train step, the pipeline's shuffling) for each kind:
    seconds and tens of megabytes per function. Typed PRNG keys stay typed keys of the same implementation.
    """
    return jax.tree.map(_uncommitted_leaf, tree)
