"""The dataset-specific sections of the comparison report, built from what ``compare`` loaded.

:func:`extra_sections` picks them by the model and its input:

* a transaction-log model with forward heads: *Where customers are heading*
  (:func:`training.forecast_report.forecast_sections`), with the realised
  segment and spend after the horizon when the log covers it;
* a transaction-log model with a BTYD fit and a holdout: the BTYD
  diagnostics (:func:`training.btyd_diagnostics.btyd_sections`);
* a customer table with a ``lifetime:`` block and churn labels:
  Kaplan-Meier survival per segment
  (:func:`training.survival_diagnostics.kaplan_meier_section`).

Every section describes the compared customers only (the ones both
classifiers scored), never the training customers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from valuecube.models.packaged import ChurnSegmentModel
    from valuecube.training.compare import Comparison

FORECAST_TITLE = "Where customers are heading"


def _heading(horizon_days: int) -> Any:
    from valuecube.training.forecast_report import ReportSection

    return ReportSection(
        FORECAST_TITLE,
        f"<p>The network's forecast {horizon_days} days after the as-of date, under the value "
        "cube frozen at training (docs/forecasting.md). The sections below describe the "
        "compared customers.</p>",
    )


def forecast_frame(
    model: ChurnSegmentModel,
    customers: pd.DataFrame,
    log: pd.DataFrame | None,
    as_of: pd.Timestamp | None,
    window_start: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The model's forecast per customer, and the realised segment and spend when known.

    ``customers``: per-customer rows (all computable) as of ``as_of``; ``log``:
    the transaction log they came from (``customer_id``, ``date``, ...);
    ``window_start``: the config's observation window start.
    """
    from valuecube.features.factors import split_computable
    from valuecube.features.snapshots import forward_snapshot
    from valuecube.training.forecast_report import ACTUAL_SEGMENT, ACTUAL_SPEND

    frame = model.predict_customers(customers).set_index("customer_id", drop=False)
    horizon = int(model.design.horizon_days)
    if log is None or as_of is None:
        return frame.reset_index(drop=True)
    try:
        snap = forward_snapshot(
            log,
            as_of,
            horizon,
            window_start=window_start,
            customers=customers.index,
            observed_until=log["date"].max(),
        )
    except ValueError:  # the log ends before the horizon: no realised values to show
        return frame.reset_index(drop=True)
    later = model.cube.factors(snap.later)
    ok = split_computable(later)[0]
    actual = pd.Series(model.cube.fuzzy_.predict(later[ok]), index=later.index[ok])
    frame[ACTUAL_SEGMENT] = actual.reindex(frame.index)
    frame[ACTUAL_SPEND] = snap.now["future_spend"].reindex(frame.index)
    known = frame[ACTUAL_SEGMENT].notna() & frame[ACTUAL_SPEND].notna()
    return frame[known].reset_index(drop=True)


def extra_sections(
    model: ChurnSegmentModel,
    comparison: Comparison,
    customers: pd.DataFrame,
    log: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None,
) -> list[Any]:
    """The report sections for this model and these customers (see the module docstring)."""
    cfg = model.config
    scored = customers.loc[comparison.scored.table.index]
    sections: list[Any] = []
    spec = cfg.input
    if spec.shape == "transaction_log":
        window_start = pd.Timestamp(spec.window_start) if spec.window_start else None
        if getattr(model.network, "has_spend_head_", False) and len(scored):
            from valuecube.training.forecast_report import forecast_sections

            horizon = int(model.design.horizon_days)
            frame = forecast_frame(model, scored, log, as_of, window_start)
            sections += [_heading(horizon), *forecast_sections(frame, horizon)]
        bgnbd = getattr(model.cube, "bgnbd_", None)
        if (
            bgnbd is not None
            and log is not None
            and as_of is not None
            and spec.holdout_end is not None
            and "future_purchases" in scored
        ):
            from valuecube.training.btyd_diagnostics import btyd_sections

            ids = log["customer_id"].isin(scored.index)
            sections += btyd_sections(
                bgnbd,
                scored,
                log[ids],
                window_start=window_start if window_start is not None else log["date"].min(),
                as_of=as_of,
                holdout_end=pd.Timestamp(spec.holdout_end),
            )
    elif cfg.lifetime is not None and comparison.scored.has_churn:
        from valuecube.training.survival_diagnostics import kaplan_meier_section

        table = comparison.scored.table
        sections.append(
            kaplan_meier_section(
                scored[cfg.lifetime.tenure].to_numpy(dtype=float),
                table["churn"].to_numpy(),
                table["segment_fuzzy"].to_numpy(),
            )
        )
    return sections
