"""The jitted train step (compiled once per shape), a plain training loop, and the run factories."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import jax
import optax
from flax import nnx

from resumable.model import MLP, make_model, make_optimizer
from resumable.pipeline import Batch, Pipeline, make_pipeline
from resumable.views.progress import progress


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. The same config always gives bit-identical runs."""

    seed: int = 0
    num_records: int = 512
    batch_size: int = 32
    num_features: int = 8
    num_classes: int = 4
    num_hidden: int = 32
    noise_stddev: float = 0.1
    dropout_rate: float = 0.1
    learning_rate: float = 3e-3
    data_seed: int = 1234

    def replace(self, **changes: object) -> RunConfig:
        return RunConfig(**{**asdict(self), **changes})


def make_triple(config: RunConfig = RunConfig()) -> tuple[Pipeline, MLP, nnx.Optimizer]:
    """A fresh (pipeline, model, optimizer) for `config`, in its step-0 state."""
    pipeline = make_pipeline(
        seed=config.seed,
        num_records=config.num_records,
        batch_size=config.batch_size,
        num_features=config.num_features,
        num_classes=config.num_classes,
        noise_stddev=config.noise_stddev,
        data_seed=config.data_seed,
    )
    model = make_model(
        seed=config.seed,
        num_features=config.num_features,
        num_hidden=config.num_hidden,
        num_classes=config.num_classes,
        dropout_rate=config.dropout_rate,
    )
    return pipeline, model, make_optimizer(model, config.learning_rate)


def _loss(model: nnx.Module, batch: Batch) -> jax.Array:
    logits = model(batch["features"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]).mean()


@nnx.jit
def train_step(model: nnx.Module, optimizer: nnx.Optimizer, batch: Batch) -> jax.Array:
    """One Adam step on `batch`; updates `model` and `optimizer` in place and returns the loss."""
    loss, grads = nnx.value_and_grad(_loss)(model, batch)
    optimizer.update(model, grads)
    return loss


def train(
    pipeline: Pipeline,
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    num_steps: int,
    *,
    step_fn: Callable[[nnx.Module, nnx.Optimizer, Batch], jax.Array] = train_step,
    description: str = "training",
) -> list[float]:
    """Run `num_steps` steps from whatever state the three objects are in; return the losses as floats."""
    losses = []
    for _ in progress(range(num_steps), description=description):
        losses.append(float(step_fn(model, optimizer, next(pipeline))))
    return losses


Triple = tuple[Pipeline, nnx.Module, nnx.Optimizer]


def named(triple: Triple) -> dict[str, Any]:
    """{"pipeline": ..., "model": ..., "optimizer": ...}, the form `state_diff` reports paths in."""
    return dict(zip(("pipeline", "model", "optimizer"), triple, strict=True))


def fresh_triple(config: RunConfig) -> Triple:
    """`make_triple(config)` with every state leaf committed to the default device.

    Why: restored arrays come back committed to a device, fresh ones do not, and `nnx.jit` compiles one step
    per combination (1-3 s each). With every triple committed, all phases and pitfalls share one compiled step.
    """
    triple = make_triple(config)
    device = jax.devices()[0]
    for part in triple:
        nnx.update(part, jax.device_put(nnx.state(part), device))
    _return_freed_memory()
    return triple


def _return_freed_memory() -> None:
    """Hand freed heap memory back to the OS (glibc only; elsewhere nothing happens).

    Why: glibc keeps what XLA's compiler frees (about 60 MB after the first train step is compiled), and
    everything a notebook does later piles on top of it; trimming keeps a notebook kernel under 450 MB.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)
