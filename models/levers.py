"""Why the fuzzy cube placed a customer where it did: the nearest threshold and its lever.

With the weighted-average operator each dimension's score is linear in the
normalised factors (:meth:`models.fuzzy.FuzzyValueClassifier.transform`):

    VA_k = 1 + 8·(offset_k + Σ_j W_jk·u_j),   u_j ∈ [0, 1]

with ``W`` the signed global factor weights (negative for a cost factor). The
margin of dimension k is ``VA_k − threshold`` (positive: high on k). The
nearest dimension is the one with the smallest |margin|; its lever is the
single factor j whose smallest change reaches the threshold,
``Δu_j = −margin / (8·W_jk)``, among the factors for which ``u_j + Δu_j``
stays in [0, 1]. The change is given in the factor's **raw units** (the
frozen normalisation is a monotone piecewise-linear map, inverted with the
same knots) when the factor is measured from data, and in **normalised
units** for an expert-rated factor (``lever_units`` says which). Vectorised
over customers; no lever (``None``) when no single factor can reach it.
Zadeh's operator is not linear: levers are then not computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from valuecube.features.columns import Table, floats
from valuecube.models.fuzzy import FuzzyValueClassifier

DIMENSIONS = ("CV", "PV", "RA")
LEVER_COLUMNS = (
    "cv_margin",
    "pv_margin",
    "ra_margin",
    "nearest_dimension",
    "margin",
    "lever_factor",
    "lever_change",
    "lever_units",
)
TEXT_LEVER_COLUMNS = ("nearest_dimension", "lever_factor", "lever_units")


def levers(fuzzy: FuzzyValueClassifier, factors: pd.DataFrame) -> pd.DataFrame:
    """Per customer: the three margins, the nearest dimension, its lever and the change needed."""
    return pd.DataFrame(lever_columns(fuzzy, factors), index=factors.index)


def lever_columns(fuzzy: FuzzyValueClassifier, factors: Table) -> dict[str, np.ndarray]:
    """:func:`levers`' columns as arrays, from a frame or :class:`~features.columns.Columns`."""
    if fuzzy.operator != "weighted_average":
        raise ValueError("levers need the weighted-average operator (Zadeh's is not linear)")
    u_frame = fuzzy.normalize(factors)
    names = list(u_frame.columns)
    u = u_frame.to_numpy()
    scores = fuzzy.score_normalized(u_frame)
    margins = scores - fuzzy.threshold
    nearest = np.argmin(np.abs(margins), axis=1)
    rows = np.arange(len(u))
    margin = margins[rows, nearest]
    weights, _ = fuzzy.linear_weights_
    w = weights[:, nearest].T  # (n, F): each customer's nearest dimension's weights
    with np.errstate(divide="ignore", invalid="ignore"):
        du = -margin[:, None] / (8.0 * w)
    target = u + du
    feasible = (w != 0) & (target >= -1e-12) & (target <= 1 + 1e-12)
    size = np.where(feasible, np.abs(du), np.inf)
    best = np.argmin(size, axis=1)
    found = np.isfinite(size[rows, best])
    change = du[rows, best]
    raw_change = np.full(len(u), np.nan)
    units = np.full(len(u), "normalised", dtype=object)
    for j, name in enumerate(names):  # per factor (a handful), vectorised over customers
        pick = found & (best == j)
        if not pick.any() or name not in fuzzy.knots_:
            continue
        xp, fp = fuzzy.knots_[name]
        if not np.all(np.diff(fp) > 0):
            continue  # a flat normalisation has no inverse: keep normalised units
        now = floats(factors[name])[pick]
        reached = np.interp(np.clip(target[pick, j], 0.0, 1.0), fp, xp)
        raw_change[pick] = reached - now
        units[pick] = "raw"
    lever_change = np.where(units == "raw", raw_change, change)
    return {
        "cv_margin": margins[:, 0],
        "pv_margin": margins[:, 1],
        "ra_margin": margins[:, 2],
        "nearest_dimension": np.asarray(DIMENSIONS, dtype=object)[nearest],
        "margin": margin,
        "lever_factor": np.where(found, np.asarray(names, dtype=object)[best], None),
        "lever_change": np.where(found, lever_change, np.nan),
        "lever_units": np.where(found, units, None),
    }


def lever_sentence(row: pd.Series, threshold: float) -> str:
    """One line for a report, e.g. "PV 4.98: 0.02 below high; tenure_months is the lever (+3.1)"."""
    score = threshold + row["margin"]
    side = "above" if row["margin"] >= 0 else "below"
    text = f"{row['nearest_dimension']} {score:.2f}: {abs(row['margin']):.2f} {side} high"
    if row["lever_factor"] is None or pd.isna(row["lever_factor"]):
        return text + "; no single factor can cross it"
    unit = "" if row["lever_units"] == "raw" else " normalised"
    return f"{text}; {row['lever_factor']} is the lever ({row['lever_change']:+.3g}{unit})"
