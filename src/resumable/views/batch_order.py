"""Notebook 04's batch-order explorer: which records each batch of an epoch holds."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from resumable.pipeline import Pipeline


def epoch_batches(pipeline: Pipeline, epoch: int) -> np.ndarray:
    """The record indices of every batch of `epoch`: shape (steps_per_epoch, batch_size), row b = batch b.

    Reads only the shuffle key: the pipeline's cursor and RNG counts are left as they are.
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    order = np.asarray(pipeline.epoch_order(epoch), dtype=np.int64)
    return order.reshape(pipeline.steps_per_epoch, pipeline.batch_size)


def batch_order_view(pipeline: Pipeline, epoch: int, batch: int) -> tuple[Figure, str]:
    """The explorer's callback: the order of `epoch` as an image, batch `batch` of it outlined.

    Inputs: a pipeline (its shuffle key decides the order), an epoch (0, 1, ...) and a batch within that
    epoch (0 .. steps_per_epoch - 1).
    Output: the Figure (one row per batch, one column per position in the batch, colour = record index)
    and a text naming the training step that serves this batch and the record indices it holds.
    """
    if not 0 <= batch < pipeline.steps_per_epoch:
        raise ValueError(f"batch must be in 0..{pipeline.steps_per_epoch - 1}, got {batch}")
    batches = epoch_batches(pipeline, epoch)
    num_records = batches.size
    figure, axis = plt.subplots(figsize=(7, 3.2), layout="constrained")
    image = axis.imshow(batches, aspect="auto", cmap="viridis", vmin=0, vmax=num_records - 1, interpolation="nearest")
    axis.add_patch(Rectangle((-0.5, batch - 0.5), pipeline.batch_size, 1, fill=False, edgecolor="red", linewidth=2))
    axis.set_xlabel("position in the batch")
    axis.set_ylabel("batch of the epoch")
    step = epoch * pipeline.steps_per_epoch + batch + 1
    axis.set_title(f"Epoch {epoch}: record served at each position (batch {batch} = training step {step} in red)")
    figure.colorbar(image, ax=axis, label="record index")
    plt.close(figure)
    records = batches[batch]
    text = (
        f"epoch {epoch}, batch {batch} of {pipeline.steps_per_epoch} = training step {step}: "
        f"{records.size} records\n{' '.join(str(int(index)) for index in records)}"
    )
    return figure, text
