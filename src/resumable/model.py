"""The small model and the optimizer factory used throughout the course."""

from __future__ import annotations

import functools

import jax
import optax
from flax import nnx


class MLP(nnx.Module):
    """Linear -> ReLU -> Dropout -> Linear. Dropout draws from the model's own `dropout` RNG stream."""

    def __init__(
        self,
        num_features: int,
        num_hidden: int,
        num_classes: int,
        *,
        dropout_rate: float,
        rngs: nnx.Rngs,
    ) -> None:
        self.hidden = nnx.Linear(num_features, num_hidden, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)
        self.output = nnx.Linear(num_hidden, num_classes, rngs=rngs)

    def __call__(self, features: jax.Array) -> jax.Array:
        return self.output(self.dropout(nnx.relu(self.hidden(features))))


def make_model(
    seed: int = 0,
    num_features: int = 8,
    num_hidden: int = 32,
    num_classes: int = 4,
    dropout_rate: float = 0.1,
) -> MLP:
    """A freshly initialised MLP; parameters come from `seed`, dropout masks from `seed + 1`."""
    return MLP(
        num_features,
        num_hidden,
        num_classes,
        dropout_rate=dropout_rate,
        rngs=nnx.Rngs(params=seed, dropout=seed + 1),
    )


@functools.cache
def adam(learning_rate: float) -> optax.GradientTransformation:
    """One shared Adam per learning rate.

    The transformation is static in the optimizer's graph definition and optax builds new closures on
    every call, so sharing it is what lets `nnx.jit` reuse one compiled step across fresh optimizers.
    """
    return optax.adam(learning_rate)


def make_optimizer(model: nnx.Module, learning_rate: float = 3e-3) -> nnx.Optimizer:
    """Adam over the model's `nnx.Param` variables."""
    return nnx.Optimizer(model, adam(learning_rate), wrt=nnx.Param)
