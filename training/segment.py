"""The ``segment`` job: fit the fuzzy value cube on a dataset and segment every customer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from valuecube.features.config import DatasetConfig, load_config
from valuecube.features.customers import (
    CUSTOMER_ID,
    CustomerTable,
    build_customer_table,
    customer_rejects,
)
from valuecube.features.inputs import LINE, REASON, load_input
from valuecube.features.io import write_table
from valuecube.models.segments import SEGMENTS
from valuecube.models.value_cube import ValueCube


@dataclass(frozen=True)
class SegmentResult:
    """What a segment run produced and how every input row was accounted for."""

    config: DatasetConfig
    cube: ValueCube
    customers: CustomerTable
    scored: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    rows_rejected: int

    @property
    def summary(self) -> pd.DataFrame:
        """Customers, share, churn rate and mean future spend per segment."""
        return segment_summary(self.scored)


def segment_summary(scored: pd.DataFrame, segment_column: str = "segment") -> pd.DataFrame:
    """One row per segment (all eight, in table order): size, share, and label means where present."""
    groups = scored.groupby(segment_column, observed=True)
    table = pd.DataFrame({"customers": groups.size()})
    for label, name in (("churn", "churn_rate"), ("future_spend", "mean_future_spend")):
        if label in scored.columns:
            table[name] = groups[label].mean()
    for col in ("cv_score", "pv_score", "ra_score"):
        if col in scored.columns:
            table[f"mean_{col}"] = groups[col].mean()
    table = table.reindex([s.code for s in SEGMENTS])
    table["customers"] = table["customers"].fillna(0).astype(int)
    table.insert(1, "share", table["customers"] / max(len(scored), 1))
    table.insert(0, "segment_name", [s.name for s in SEGMENTS])
    table.index.name = "segment"
    return table


def run_segment(
    config: str | Path | DatasetConfig,
    input_path: str | Path,
    *,
    output: str | Path | None = None,
    rejects_path: str | Path | None = None,
) -> SegmentResult:
    """Validate the input, fit the value cube on it, score every customer, write the outputs.

    Without ``rejects_path`` any invalid row is an error (nothing is written);
    with it, invalid rows and unscorable customers go to that file with a
    reason and the rest are scored.
    """
    cfg = config if isinstance(config, DatasetConfig) else load_config(config)
    validated = load_input(input_path, cfg.input, strict=rejects_path is None)
    customers = build_customer_table(validated, cfg.input)
    cube = ValueCube(cfg).fit(customers.table)
    scored, unscorable = cube.segment(customers.table)
    scored = scored.join(customers.labels)
    scored.index.name = CUSTOMER_ID
    scored = scored.reset_index()

    unscorable = customer_rejects(validated, cfg.input, unscorable)  # line and values kept
    rejects = pd.concat([validated.rejects, unscorable], ignore_index=True)
    if len(unscorable) and rejects_path is None:
        raise ValueError(
            f"{len(unscorable)} customers have factors that cannot be computed, e.g. "
            f"{unscorable[CUSTOMER_ID].iloc[0]}: {unscorable[REASON].iloc[0]}. Pass --rejects PATH to set them aside."
        )
    if output is not None:
        write_table(scored, output)
    if rejects_path is not None:
        ordered = [LINE, CUSTOMER_ID, REASON]
        write_table(
            rejects[ordered + [c for c in rejects.columns if c not in ordered]], rejects_path
        )
    return SegmentResult(
        cfg, cube, customers, scored, rejects, validated.rows_read, len(validated.rejects)
    )
