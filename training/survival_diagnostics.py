"""Kaplan-Meier curves per segment for the comparison report (docs/lifetimes.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from valuecube.features.survival import kaplan_meier_by_group
from valuecube.training.btyd_diagnostics import ReportSection, html_fragment

__all__ = ["kaplan_meier_section", "kaplan_meier_summary"]


def kaplan_meier_summary(curves: pd.DataFrame, months=(12, 24, 48)) -> pd.DataFrame:
    """S at ``months`` per segment from :func:`features.survival.kaplan_meier_by_group` curves."""
    table = {}
    for name, curve in curves.groupby("group", sort=True):
        at = np.searchsorted(curve["tenure"].to_numpy(), months, side="right") - 1
        values = curve["survival"].to_numpy()
        table[name] = [values[i] if i >= 0 else 1.0 for i in at]
    frame = pd.DataFrame(table, index=[f"S({m})" for m in months]).T
    frame.index.name = "segment"
    return frame


def kaplan_meier_section(tenure: ArrayLike, churn: ArrayLike, segment: ArrayLike) -> ReportSection:
    """Kaplan-Meier survival by segment: one step curve per segment and a 12/24/48-month table.

    Parameters
    ----------
    tenure, churn, segment : array of shape (n_customers,)
        Months as a customer, 1 = churned, and the segment of each customer.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = kaplan_meier_by_group(tenure, churn, segment)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, curve in curves.groupby("group", sort=True):
        ax.step(
            curve["tenure"], curve["survival"], where="post", label=f"{name} ({curve['n'].iloc[0]})"
        )
    ax.set_xlabel("tenure (months)")
    ax.set_ylabel("share still a customer")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    frame = kaplan_meier_summary(curves)
    caption = "Kaplan-Meier survival per segment (customers in brackets)"
    return ReportSection("Kaplan-Meier curves by segment", html_fragment(caption, fig, frame))
