"""What a scoring job reports: :class:`ScoreResult`, the one result type of both engines.

Kept apart from :mod:`valuecube.serving.batch` (the local engine) so that the
Spark engine (:mod:`valuecube.serving.spark_job`) returns the same type
without importing the local engine back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from valuecube.features.inputs import InputError
from valuecube.serving.drift import DRIFT_MIN_SAMPLE, DRIFT_PSI_WARN


class NothingScoredError(InputError):
    """No input row could be scored (all rejected, or none read)."""


@dataclass
class ScoreResult:
    """How a scoring job went; the counts always add up (checked)."""

    model_name: str
    model_version: str
    output: Path | None
    rejects: Path | None
    rows_read: int = 0
    rows_rejected: int = 0
    customers_scored: int = 0
    customers_unscorable: int = 0
    customers_excluded: int = 0
    rows_used: int = 0
    rows_unused: int = 0
    shape: str = "customer_table"
    as_of: pd.Timestamp | None = None
    drift: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    drift_sample_size: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    parts: int = 1
    """Hash parts a transaction log was scored in (1: in one pass)."""

    @property
    def drifted(self) -> list[str]:
        """Factors whose PSI exceeds :data:`DRIFT_PSI_WARN`."""
        return self.drifted_over(DRIFT_PSI_WARN)

    @property
    def drift_judged(self) -> bool:
        """Whether enough customers were counted to judge drift (:data:`DRIFT_MIN_SAMPLE`)."""
        return self.drift_sample_size >= DRIFT_MIN_SAMPLE

    def drifted_over(self, threshold: float) -> list[str]:
        """Factors whose PSI exceeds ``threshold``; none when too few customers were counted."""
        if not self.drift_judged:
            return []
        return list(self.drift[self.drift > threshold].index)

    def summary(self) -> str:
        """One line of counts for the terminal or a log."""
        if self.shape == "customer_table":
            unscorable = (
                f" (of which {self.customers_unscorable:,} with non-computable factors)"
                if self.customers_unscorable
                else ""
            )
            return (
                f"rows read {self.rows_read:,} · scored {self.customers_scored:,} · "
                f"rejected {self.rows_rejected:,}{unscorable}"
            )
        as_of = f" at {self.as_of.date()}" if self.as_of is not None else ""
        return (
            f"rows read {self.rows_read:,} · "
            f"rows rejected {self.rows_rejected - self.customers_unscorable:,} · "
            f"customers scored {self.customers_scored:,} · customers rejected (factors not "
            f"computable) {self.customers_unscorable:,} · "
            f"customers not yet active{as_of} {self.customers_excluded:,} · "
            f"rows not used (dated after as_of, or of those customers) {self.rows_unused:,}"
        )

    def check(self) -> None:
        """Raise if the row accounting does not add up (a bug, never an input problem)."""
        if (
            self.shape == "customer_table"
            and self.rows_read != self.customers_scored + self.rows_rejected
        ):
            raise AssertionError(f"row accounting broken: {self.summary()}")
        rejected_rows = self.rows_rejected - self.customers_unscorable
        if self.shape == "transaction_log" and (
            self.rows_used + self.rows_unused + rejected_rows != self.rows_read
        ):
            raise AssertionError(f"row accounting broken: {self.summary()}")
