"""A data pipeline that is an `nnx.Module`: its snapshot holds a cursor and RNG state, not the data."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from resumable.data import Dataset, make_blobs

Batch = dict[str, jax.Array]


# Each step of serving a batch is one compiled function, not a dozen eager operations. On the CPU every
# compiled program stays in memory (a few MB each), so this keeps a notebook's kernel smaller and faster.
@functools.partial(jax.jit, static_argnums=2)
def _epoch_order(shuffle_key: jax.Array, epoch: jax.Array, num_records: int) -> jax.Array:
    return jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), num_records)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _batch_indices(
    shuffle_key: jax.Array, epoch: jax.Array, position: jax.Array, num_records: int, batch_size: int
) -> jax.Array:
    order = _epoch_order(shuffle_key, epoch, num_records)  # inlined: still one compiled program
    return jax.lax.dynamic_slice_in_dim(order, position, batch_size)


@jax.jit
def _gather(features: jax.Array, labels: jax.Array, indices: jax.Array) -> Batch:
    return {"features": features[indices], "labels": labels[indices]}


@jax.jit
def _add_noise(key: jax.Array, features: jax.Array, stddev: float) -> jax.Array:
    return features + stddev * jax.random.normal(key, features.shape, features.dtype)


class ArraySource:
    """Holds the records. A plain object, not a pytree, so it never enters `nnx.state(pipeline)`.

    Assigning the arrays themselves to a Module attribute would put them in the state, and every
    checkpoint would carry a copy of the dataset.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, indices: jax.Array) -> Batch:
        return _gather(self.dataset.features, self.dataset.labels, indices)

    def __repr__(self) -> str:
        return f"ArraySource({len(self)} records, {self.dataset.nbytes:,} bytes)"


class GaussianNoise(nnx.Module):
    """A stochastic augmentation stage: adds N(0, stddev^2) noise to the features.

    It owns its RNG stream; every batch advances the stream's count by one.
    """

    def __init__(self, stddev: float, *, seed: int) -> None:
        self.stddev = stddev
        self.rngs = nnx.Rngs(noise=seed)

    def __call__(self, batch: Batch) -> Batch:
        return {**batch, "features": _add_noise(self.rngs.noise(), batch["features"], self.stddev)}


class Pipeline(nnx.Module):
    """Per-epoch shuffled batches from a source, passed through stochastic stages.

    State (all of it checkpointable with `nnx.state`): `_epoch`, `_position` (records already served in
    this epoch), the pipeline's `rngs` (the shuffle key) and each stage's RNG stream.
    The order within an epoch is a permutation that depends only on (shuffle key, epoch), so every
    record appears exactly once per epoch, and a batch depends only on the pipeline state.
    """

    def __init__(
        self,
        source: ArraySource,
        batch_size: int,
        *,
        seed: int,
        stages: list[nnx.Module] | tuple[nnx.Module, ...] = (),
    ) -> None:
        if batch_size < 1 or len(source) % batch_size != 0:
            raise ValueError(
                f"batch_size must divide the number of records so that every record is served exactly "
                f"once per epoch: {len(source)} records, batch_size {batch_size}"
            )
        self.source = source
        self.batch_size = batch_size
        self.stages = nnx.List(stages)
        self.rngs = nnx.Rngs(shuffle=seed)
        self._epoch = nnx.Variable(jnp.asarray(0, jnp.int32))
        self._position = nnx.Variable(jnp.asarray(0, jnp.int32))

    @property
    def steps_per_epoch(self) -> int:
        return len(self.source) // self.batch_size

    def epoch_order(self, epoch: int) -> jax.Array:
        """The record indices of `epoch`, in serving order."""
        return _epoch_order(self.rngs.shuffle.key[...], epoch, len(self.source))

    def __iter__(self) -> Pipeline:
        return self

    def __next__(self) -> Batch:
        epoch, position = int(self._epoch[...]), int(self._position[...])
        indices = _batch_indices(self.rngs.shuffle.key[...], epoch, position, len(self.source), self.batch_size)
        batch = self.source.read(indices)
        for stage in self.stages:
            batch = stage(batch)
        position += self.batch_size
        if position == len(self.source):
            epoch, position = epoch + 1, 0
        self._epoch[...] = jnp.asarray(epoch, jnp.int32)
        self._position[...] = jnp.asarray(position, jnp.int32)
        return batch


def make_pipeline(
    seed: int = 0,
    num_records: int = 512,
    batch_size: int = 32,
    num_features: int = 8,
    num_classes: int = 4,
    noise_stddev: float = 0.1,
    data_seed: int = 1234,
) -> Pipeline:
    """The course's pipeline: blobs from `data_seed`, shuffled from `seed`, noise from `seed + 1`."""
    dataset = make_blobs(data_seed, num_records, num_features, num_classes)
    return Pipeline(
        ArraySource(dataset),
        batch_size,
        seed=seed,
        stages=[GaussianNoise(noise_stddev, seed=seed + 1)],
    )
