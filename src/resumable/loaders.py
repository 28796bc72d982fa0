"""Real data loaders for the course's run: a Datarax `Pipeline` and a Grain `DataLoader`, their snapshot bytes,
and the three-phase experiment (reference, crash, resume) with any save and restore."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grain
import jax
import numpy as np
from datarax import Pipeline
from datarax.core.config import ElementOperatorConfig
from datarax.operators.element_operator import ElementOperator
from datarax.sources import MemorySource, MemorySourceConfig
from flax import nnx

from resumable.data import Dataset, make_blobs
from resumable.diff import StateDiff, state_diff
from resumable.model import make_model, make_optimizer
from resumable.training import RunConfig, train

Triple = tuple[Any, nnx.Module, nnx.Optimizer]


def dataset(config: RunConfig) -> Dataset:
    """The course's blobs for `config` (the same bytes that `resumable.make_pipeline` serves)."""
    return make_blobs(config.data_seed, config.num_records, config.num_features, config.num_classes)


def _committed(tree: Any) -> Any:
    """Every jax.Array leaf placed on the default device; other leaves (Python ints, bools) unchanged.

    Why: restored arrays come back committed to a device, new ones do not, and `nnx.jit` compiles one train
    step per combination (seconds each). With both kinds committed, every phase shares one compiled step.
    """
    device = jax.devices()[0]
    return jax.tree.map(lambda leaf: jax.device_put(leaf, device) if isinstance(leaf, jax.Array) else leaf, tree)


def _model_and_optimizer(config: RunConfig) -> tuple[nnx.Module, nnx.Optimizer]:
    model = make_model(config.seed, config.num_features, config.num_hidden, config.num_classes, config.dropout_rate)
    optimizer = make_optimizer(model, config.learning_rate)
    for part in (model, optimizer):
        nnx.update(part, _committed(nnx.state(part)))
    return model, optimizer


# ---------------------------------------------------------------------------------------------- Datarax


@functools.cache
def _noise_stage(stddev: float) -> Callable[[Any, jax.Array], Any]:
    """One noise function per stddev. The function is static in the pipeline's graph, and Datarax shares a
    compiled step only between pipelines whose graphs are equal: a new closure per pipeline would cost a
    compile (seconds) for every pipeline built."""

    def add_noise(element: Any, key: jax.Array) -> Any:
        features = element.data["features"]
        noisy = features + stddev * jax.random.normal(key, features.shape, features.dtype)
        return element.replace(data={**element.data, "features": noisy})

    return add_noise


def datarax_pipeline(config: RunConfig) -> Pipeline:
    """The public guide's pipeline over the course's data.

    A shuffled `MemorySource` of {"features", "labels"} (shuffle stream from `config.seed`), one stochastic
    `ElementOperator` adding N(0, noise_stddev^2) to the features from its own "augment" stream
    (`config.seed + 1`), batches of `config.batch_size`, endless epochs. Iterate with `iter(pipeline)`.
    """
    data = dataset(config)
    source = MemorySource(
        MemorySourceConfig(shuffle=True),
        {"features": data.features, "labels": data.labels},
        rngs=nnx.Rngs(config.seed),
    )
    noise = ElementOperator(
        ElementOperatorConfig(stochastic=True, stream_name="augment"),
        fn=_noise_stage(config.noise_stddev),
        rngs=nnx.Rngs(augment=config.seed + 1),
    )
    pipeline = Pipeline(
        source=source, stages=[noise], batch_size=config.batch_size, rngs=nnx.Rngs(config.seed + 2), num_epochs=None
    )
    nnx.update(pipeline, _committed(nnx.state(pipeline)))
    return pipeline


def datarax_triple(config: RunConfig) -> Triple:
    """A fresh (Datarax pipeline, model, optimizer) for `config`, every array committed to the device."""
    return (datarax_pipeline(config), *_model_and_optimizer(config))


# ---------------------------------------------------------------------------------------------- Grain


class GrainRecords:
    """The course's records as a Grain data source: `len` and `[index]` -> {"features", "labels"}.

    Its `repr` names what it holds, not where it lives in memory: a `DataLoader` compares the source's
    `repr` with the one in a checkpoint it restores, and the default `repr` differs in every process.
    """

    def __init__(self, data: Dataset, data_seed: int) -> None:
        self.data = data
        self.data_seed = data_seed

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"features": self.data.features[index], "labels": self.data.labels[index]}

    def __repr__(self) -> str:
        return f"GrainRecords(blobs of {len(self)} x {self.data.features.shape[1]}, data_seed={self.data_seed})"


class GrainNoise(grain.transforms.RandomMap):
    """Adds N(0, stddev^2) noise to a record's features, drawn from the generator Grain hands in.

    Grain seeds that generator from the sampler's seed and the record's index, so the noise of a record
    depends only on where it is in the run, never on what was served before.
    """

    def __init__(self, stddev: float) -> None:
        self.stddev = stddev

    def random_map(self, element: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        features = element["features"]
        noise = rng.standard_normal(features.shape).astype(features.dtype)
        return {**element, "features": features + np.float32(self.stddev) * noise}


def grain_loader(config: RunConfig, *, worker_count: int = 0) -> grain.DataLoader:
    """A Grain `DataLoader` over the course's records: shuffled per epoch (seed `config.seed`), endless,
    noise from `GrainNoise`, batches of `config.batch_size`. `iter(loader)` gives the checkpointable iterator.

    `worker_count=0` reads in this process: a worker is a new Python process that imports the loader's code.
    """
    sampler = grain.samplers.IndexSampler(
        config.num_records, shuffle=True, seed=config.seed, num_epochs=None
    )
    return grain.DataLoader(
        data_source=GrainRecords(dataset(config), config.data_seed),
        sampler=sampler,
        operations=[GrainNoise(config.noise_stddev), grain.transforms.Batch(config.batch_size)],
        worker_count=worker_count,
        read_options=grain.ReadOptions(num_threads=0, prefetch_buffer_size=0),
    )


def grain_triple(config: RunConfig) -> Triple:
    """A fresh (Grain iterator, model, optimizer) for `config`; the iterator is `iter(grain_loader(config))`."""
    return (iter(grain_loader(config)), *_model_and_optimizer(config))


# ---------------------------------------------------------------------------------------------- bytes


def leaf_bytes(tree: Any) -> tuple[int, int]:
    """(number of leaves, bytes of their values) of a pure dict; typed RNG keys count as their key data."""
    leaves = jax.tree.leaves(tree)
    total = 0
    for leaf in leaves:
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        total += np.asarray(leaf).nbytes
    return len(leaves), int(total)


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of every file under `path` (a checkpoint folder on disk)."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def leaf_paths(tree: Any) -> list[str]:
    """The paths of a pure dict's leaves, as "a/b/c"."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return [jax.tree_util.keystr(path, simple=True, separator="/") for path, _ in leaves]


# ---------------------------------------------------------------------------------------------- three phases


@dataclass
class ThreePhases:
    """The outcome of `three_phases`: both loss curves, both final triples, what was on disk."""

    reference: list[float]
    resumed: list[float]
    reference_triple: Triple
    resumed_triple: Triple
    resume_step: int
    checkpoints: list[int]

    @property
    def max_loss_difference(self) -> float:
        return float(np.max(np.abs(np.subtract(self.resumed, self.reference))))

    def diff(self, names: tuple[str, str] = ("resumed", "reference")) -> StateDiff:
        """Every leaf of the two final (model, optimizer) and loader states; see `loader_state`."""
        return state_diff(_named(self.resumed_triple), _named(self.reference_triple), names=names)


def loader_state(loader: Any) -> Any:
    """What the loader's position is made of: a Datarax pipeline's Variables, a Grain iterator's state."""
    if isinstance(loader, nnx.Module):
        return nnx.to_pure_dict(nnx.state(loader, nnx.Variable))
    state = loader.get_state()  # a DataLoader iterator's JSON document as bytes, a dataset iterator's dict
    return json.loads(state) if isinstance(state, bytes) else dict(state)


def _named(triple: Triple) -> dict[str, Any]:
    loader, model, optimizer = triple
    return {"pipeline": loader_state(loader), "model": model, "optimizer": optimizer}


def batches(loader: Any) -> Iterator[Any]:
    """Batches for `resumable.train`: a Datarax pipeline's new iterator (it starts at the pipeline's cursor and
    writes its state back after every batch), or a Grain iterator's batches placed on the device.

    Why the device: Grain gives NumPy arrays, Datarax device arrays, and `nnx.jit` compiles a train step per
    kind (seconds each); on the device both share one.
    """
    if isinstance(loader, nnx.Module):
        return iter(loader)
    device = jax.devices()[0]
    return (jax.device_put(batch, device) for batch in loader)


def three_phases(
    new_triple: Callable[[], Triple],
    save: Callable[[int, Triple], None],
    restore: Callable[[int, Triple], None],
    *,
    num_steps: int = 60,
    crash_step: int = 30,
    checkpoint_every: int = 10,
) -> ThreePhases:
    """The guide's experiment: a reference run of `num_steps`; a run that saves after every
    `checkpoint_every` steps and crashes after `crash_step`; a resume of fresh objects from the latest
    checkpoint at or before the crash, trained to `num_steps`.

    `save(step, triple)` and `restore(step, triple)` are yours (the triple is (loader, model, optimizer));
    both phases after the reference use `new_triple()` objects. Returns a `ThreePhases`.
    """
    reference_triple = new_triple()
    reference = train(batches(reference_triple[0]), *reference_triple[1:], num_steps, description="reference")
    crashed_triple, crashed, checkpoints = new_triple(), [], []
    while len(crashed) < crash_step:
        chunk = min(checkpoint_every - len(crashed) % checkpoint_every, crash_step - len(crashed))
        crashed += train(batches(crashed_triple[0]), *crashed_triple[1:], chunk, description="until the crash")
        if len(crashed) % checkpoint_every == 0:
            save(len(crashed), crashed_triple)
            checkpoints.append(len(crashed))
    resume_step = max((step for step in checkpoints if step <= crash_step), default=0)
    resumed_triple = new_triple()
    if resume_step:
        restore(resume_step, resumed_triple)
    continued = train(batches(resumed_triple[0]), *resumed_triple[1:], num_steps - resume_step, description="resume")
    return ThreePhases(
        reference, crashed[:resume_step] + continued, reference_triple, resumed_triple, resume_step, checkpoints
    )
