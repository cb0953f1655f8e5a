"""Memberships from an expert panel: ratings of customers' factors, weighted by authority.

docs/methods.md §2.3: the membership of factor p in grade q is

    r_pq = Σ_k W_k·[expert k rated p as q] / Σ_k W_k,

where W_k is expert k's authority weight by standing (high 1.2, fairly high
1.1, ordinary 1.0 by default; the config may override them). The sums run
over the experts who rated that customer's factor, so an expert who skipped
a customer neither votes nor dilutes the others.

Files (CSV, header required):

* panel — ``expert, standing`` with standing one of high, fairly_high, ordinary;
* ratings — ``customer_id, factor, expert, grade`` with grade one of high,
  fairly_high, medium, fairly_low, low (``fairly high`` with a space is read
  the same way).

Every problem is an :class:`ExpertRatingsError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from valuecube.features.config import STANDINGS, ExpertPanelSpec

GRADE_NAMES = ("high", "fairly_high", "medium", "fairly_low", "low")
"""The five grades as ratings files spell them, in the order of the evaluation set V."""
RATINGS_COLUMNS = ("customer_id", "factor", "expert", "grade")
PANEL_COLUMNS = ("expert", "standing")


class ExpertRatingsError(ValueError):
    """A panel or ratings file that cannot be used; the message names the file and line."""


def membership_columns(factor: str) -> list[str]:
    """The per-customer columns holding an expert factor's memberships, one per grade."""
    return [f"{factor}@{grade}" for grade in GRADE_NAMES]


def _read(path: str | Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ExpertRatingsError(f"{what} file not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ExpertRatingsError(
            f"{path}: line 1 (the header): missing column(s) {missing}; expected {list(columns)}"
        )
    frame = frame[list(columns)].apply(lambda col: col.str.strip())
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    return frame


def _first_problem(path: str | Path, frame: pd.DataFrame, bad: pd.Series, why: str) -> None:
    if bad.any():
        line = frame.index[bad.to_numpy()][0]
        row = ", ".join(f"{k}={v!r}" for k, v in frame.loc[line].items())
        more = int(bad.sum()) - 1
        raise ExpertRatingsError(
            f"{path}: line {line}: {why} ({row})" + (f"; {more} more such line(s)" if more else "")
        )


def read_panel(spec: ExpertPanelSpec) -> pd.Series:
    """Authority weight W_k per expert (index = expert), from the panel file."""
    panel = _read(spec.panel, PANEL_COLUMNS, "expert panel")
    standing = panel["standing"].str.lower().str.replace(" ", "_")
    _first_problem(spec.panel, panel, panel["expert"] == "", "blank expert")
    _first_problem(
        spec.panel, panel, ~standing.isin(STANDINGS), f"unknown standing; use one of {STANDINGS}"
    )
    _first_problem(spec.panel, panel, panel["expert"].duplicated(), "expert listed twice")
    authority = {**{"high": 1.2, "fairly_high": 1.1, "ordinary": 1.0}, **spec.authority}
    return pd.Series(standing.map(authority).to_numpy(), index=panel["expert"].to_numpy())


def read_memberships(
    spec: ExpertPanelSpec,
    factors: list[str],
    customers: pd.Index,
    panel: pd.Series,
    ratings_path: str | Path | None = None,
) -> pd.DataFrame:
    """Memberships r_pq per customer (index) for the expert factors (:func:`membership_columns`).

    Customers nobody rated on a factor have NaN there. A rating for a customer
    not in ``customers``, a factor not in ``factors``, an expert not on the
    panel, an unknown grade, or the same expert rating a customer's factor
    twice is an :class:`ExpertRatingsError` naming the line.
    """
    path = ratings_path or spec.ratings
    ratings = _read(path, RATINGS_COLUMNS, "expert ratings")
    grade = ratings["grade"].str.lower().str.replace(" ", "_")
    _first_problem(
        path,
        ratings,
        ~ratings["factor"].isin(factors),
        f"unknown factor; the config rates {factors} by experts",
    )
    _first_problem(
        path,
        ratings,
        ~ratings["expert"].isin(panel.index),
        f"expert not on the panel {list(panel.index)}",
    )
    _first_problem(
        path, ratings, ~grade.isin(GRADE_NAMES), f"unknown grade; use one of {GRADE_NAMES}"
    )
    _first_problem(
        path, ratings, ~ratings["customer_id"].isin(customers), "no such customer in the input"
    )
    twice = ratings.duplicated(["customer_id", "factor", "expert"])
    _first_problem(path, ratings, twice, "this expert already rated this customer's factor")

    weight = panel.reindex(ratings["expert"]).to_numpy()
    grade_index = pd.Index(GRADE_NAMES).get_indexer(grade)
    votes = np.zeros((len(ratings), len(GRADE_NAMES)))
    votes[np.arange(len(ratings)), grade_index] = weight
    keys = [ratings["customer_id"].to_numpy(), ratings["factor"].to_numpy()]
    summed = pd.DataFrame(votes, columns=list(GRADE_NAMES)).groupby(keys).sum()
    r = summed.div(summed.sum(axis=1), axis=0)  # Σ_k W_k·[k rated q] / Σ_k W_k
    wide = r.unstack(level=1)  # columns (grade, factor)
    out = pd.DataFrame(index=customers)
    for factor in factors:
        for grade_name, column in zip(GRADE_NAMES, membership_columns(factor), strict=True):
            key = (grade_name, factor)
            out[column] = wide[key].reindex(customers) if key in wide.columns else np.nan
    return out
