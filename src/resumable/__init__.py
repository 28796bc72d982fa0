"""Helpers shared by the notebooks of "Resumable training with Flax NNX and Orbax", by role.

The training world (this package's top level; the names below import from `resumable`):
    data         `Dataset`, `make_blobs`: synthetic data made in code from a seed
    pipeline     `Pipeline`, `ArraySource`, `GaussianNoise`, `make_pipeline`: a data pipeline that is an nnx.Module
    model        `MLP`, `make_model`, `make_optimizer`
    training     `RunConfig`, `make_triple`, `train`, `train_step`; `fresh_triple`, `named`
    diff         `state_diff`, `StateDiff`, `LeafDifference`; `max_param_difference` (the public guide's metric)

Checkpoint and process tooling, `resumable.checkpoints`:
    files        what a checkpoint folder holds (listing, stored shapes vs a template, Orbax's noise)
    manager      `open_manager`: the course's Orbax CheckpointManager
    jobs         start, follow, kill and resume training processes (`EventProcess`, the one launcher;
                 `run_job`, `TrainingJob`)
    training_job the training process itself (`python -m resumable.checkpoints.training_job`)
    job_server   a process that imports the jobs' libraries once and forks each job from itself
    processes    several JAX processes on a loopback port (`run_processes`, `RunRecord`), built on jobs
    process_job  one data-parallel process of them (`python -m resumable.checkpoints.process_job`)
    sharding     meshes of simulated devices and the course's partition rule
    uncommitted  host copies of restored arrays (restored runs reuse a fresh run's compiled steps)

What the notebooks show, `resumable.views` (one module per widget: a plain callback plus its wiring):
    plots, progress, snapshot_tree (01), update_toggle (03), batch_order (04), crash_lab (05),
    timeline (06), mesh_picker (07), process_timeline (09)

Runtime set-up, `resumable.runtime`:
    compile_cache  the opt-in persistent JAX compilation cache (`RESUMABLE_JAX_CACHE`)
    memory         in a notebook kernel, the allocator's free memory given back after each cell
"""

from resumable.data import Dataset, make_blobs
from resumable.diff import LeafDifference, StateDiff, state_diff
from resumable.model import MLP, make_model, make_optimizer
from resumable.pipeline import ArraySource, GaussianNoise, Pipeline, make_pipeline
from resumable.runtime.compile_cache import enable_compilation_cache
from resumable.runtime.memory import release_after_each_cell
from resumable.training import RunConfig, make_triple, train, train_step
from resumable.views.plots import plot_losses
from resumable.views.progress import progress

COMPILATION_CACHE = enable_compilation_cache()
RELEASES_MEMORY_AFTER_EACH_CELL = release_after_each_cell()

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
