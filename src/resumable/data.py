"""Synthetic classification data made in code from a seed (no downloads)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Dataset:
    """Records as two host arrays: `features` (n, num_features) float32 and `labels` (n,) int32."""

    features: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.features.ndim != 2:
            raise ValueError(f"features must be 2-D (records, features), got shape {self.features.shape}")
        if self.labels.shape != (self.features.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.features.shape[0]},) to match the features, got {self.labels.shape}"
            )

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.features.nbytes + self.labels.nbytes)


def make_blobs(
    seed: int = 0,
    num_records: int = 512,
    num_features: int = 8,
    num_classes: int = 4,
    spread: float = 2.0,
) -> Dataset:
    """Gaussian blobs: `num_classes` random centres, records scattered around them, shuffled by `seed`.

    The same arguments always give the same bytes.
    """
    if num_records < 1 or num_features < 1 or num_classes < 2:
        raise ValueError(
            "make_blobs needs num_records >= 1, num_features >= 1 and num_classes >= 2, "
            f"got {num_records}, {num_features}, {num_classes}"
        )
    generator = np.random.default_rng(seed)
    centres = generator.normal(0.0, 1.0, size=(num_classes, num_features))
    labels = generator.integers(0, num_classes, size=num_records).astype(np.int32)
    features = centres[labels] + generator.normal(0.0, spread, size=(num_records, num_features))
    return Dataset(features=features.astype(np.float32), labels=labels)
