"""Input drift of a scoring job: each tree factor's histogram against the training distribution.

The population stability index (PSI) and its 10 bins are the model's own
(:func:`valuecube.models.packaged.population_stability_index`); this module
only accumulates the counts over a job's chunks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from valuecube.models.packaged import (
    PSI_BINS,
    ChurnSegmentModel,
    population_stability_index,
    psi_bin_counts,
)

DRIFT_PSI_WARN = 0.2
"""PSI above this (a rule of thumb: > 0.2 is a significant shift) triggers a drift warning."""
DRIFT_MIN_SAMPLE = 100
"""Fewest customers drift is judged on: ten per bin of a 10-bin histogram (fewer are noise)."""
DRIFT_SAMPLE_ROWS = 10_000
"""Customers per chunk whose factors feed the drift histograms (all of them in smaller chunks)."""


class DriftMonitor:
    """Accumulates each tree factor's histogram over chunks; PSI against training at the end.

    Each chunk contributes an evenly spaced sample of at most
    :data:`DRIFT_SAMPLE_ROWS` customers: plenty for 10-bin histograms, and
    the normalisation stays a small cost of the job.
    """

    def __init__(self, model: ChurnSegmentModel) -> None:
        self.model = model
        self.counts = {name: np.zeros(PSI_BINS, dtype=np.int64) for name in model.reference}

    def update(self, factors: pd.DataFrame) -> None:
        """Add a chunk of scored customers' factors."""
        if not len(factors):
            return
        step = -(-len(factors) // DRIFT_SAMPLE_ROWS)
        normalised = self.model.cube.fuzzy_.normalize(factors.iloc[::step])
        for name in self.counts:
            self.counts[name] += psi_bin_counts(normalised[name].to_numpy())

    @property
    def sample_size(self) -> int:
        """Customers counted so far: the PSI's sample (at most DRIFT_SAMPLE_ROWS a chunk)."""
        return int(next(iter(self.counts.values())).sum()) if self.counts else 0

    def psi(self) -> pd.Series:
        """PSI per factor (NaN when nothing was counted)."""
        out = {}
        for name, counts in self.counts.items():
            total = counts.sum()
            out[name] = (
                population_stability_index(self.model.reference[name], counts / total)
                if total
                else np.nan
            )
        return pd.Series(out, name="psi", dtype=float)
