"""Helpers shared by the notebooks of "Resumable training with Flax NNX and Orbax"."""

from resumable.compile_cache import enable_compilation_cache
from resumable.data import Dataset, make_blobs
from resumable.diff import LeafDifference, StateDiff, state_diff
from resumable.model import MLP, make_model, make_optimizer
from resumable.pipeline import ArraySource, GaussianNoise, Pipeline, make_pipeline
from resumable.plots import plot_losses
from resumable.progress import progress
from resumable.training import RunConfig, make_triple, train, train_step

COMPILATION_CACHE = enable_compilation_cache()

__all__ = [
    "ArraySource",
    "Dataset",
    "GaussianNoise",
    "LeafDifference",
    "MLP",
    "Pipeline",
    "RunConfig",
    "StateDiff",
    "make_blobs",
    "make_model",
    "make_optimizer",
    "make_pipeline",
    "make_triple",
    "plot_losses",
    "progress",
    "state_diff",
    "train",
    "train_step",
]
