"""A data pipeline that is an `nnx.Module`: its snapshot holds a cursor and RNG state, not the data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from resumable.data import Dataset, make_blobs

Batch = dict[str, jax.Array]


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
        return {
            "features": jnp.asarray(self.dataset.features)[indices],
            "labels": jnp.asarray(self.dataset.labels)[indices],
        }

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
        noise = jax.random.normal(self.rngs.noise(), batch["features"].shape, batch["features"].dtype)
        return {**batch, "features": batch["features"] + self.stddev * noise}


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
        key = jax.random.fold_in(self.rngs.shuffle.key[...], epoch)
        return jax.random.permutation(key, len(self.source))

    def __iter__(self) -> Pipeline:
        return self

    def __next__(self) -> Batch:
        epoch, position = int(self._epoch[...]), int(self._position[...])
        indices = self.epoch_order(epoch)[position : position + self.batch_size]
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
