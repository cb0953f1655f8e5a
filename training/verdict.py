"""The report's verdict: which classifier to use for which decision, read from the numbers.

Three decisions, each answered from the comparison's bootstrap intervals
(docs/methods.md §3.3):

* **targeting retention by churn risk** — the churn score with the highest
  ROC-AUC; when others are within the interval of its lead (a tie on these
  customers), the first of :data:`PREFERENCE` among them: the served network,
  then the simplest;
* **allocating resources by segment** — the fuzzy cube's segments carry the
  resource policies (docs/methods.md §2.4); the network's are judged by how
  well they reproduce them;
* **forecasting value** — the potential-value score that ranks realised
  future spend best (transaction logs with a holdout only).

Warnings name every model worse than a plain peer or the rule beyond its
interval, and a network whose segments do not reproduce the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from valuecube.models.fuzzy import SCORE_COLUMNS
from valuecube.models.segments import BY_CODE
from valuecube.training.compare import Comparison
from valuecube.training.formatting import (
    difference,
    metric,
    model_label,
    pct,
    with_interval,
)
from valuecube.training.peers import FUZZY, NETWORK

PREFERENCE = (NETWORK, FUZZY, "logistic_regression", "lightgbm")
"""Among churn scores tied on ROC-AUC: the one ``valuecube score`` serves, then the simplest."""
CHECKED = {
    NETWORK: ("logistic_regression", "lightgbm", FUZZY),
    "lightgbm": ("logistic_regression", FUZZY),
}
"""Model → the plain peers and the rule it must not be worse than."""
MIN_KAPPA = 0.6
"""Below this kappa the network's segments are not a stand-in for the rule's."""


@dataclass(frozen=True)
class Decision:
    """One decision: what it is, which classifier to use, and the evidence from the page."""

    decision: str
    use: str
    evidence: str


@dataclass(frozen=True)
class Verdict:
    """The decisions in order and the warnings (empty when no model is worse than its peers)."""

    decisions: tuple[Decision, ...]
    warnings: tuple[str, ...]

    def lines(self) -> list[str]:
        """The verdict as plain text lines (what ``valuecube compare`` prints)."""
        out = [f"{d.decision}: {d.use}. {d.evidence}" for d in self.decisions]
        return out + [f"warning: {w}" for w in self.warnings]


def the(name: str, start: bool = False) -> str:
    """A model's name as the subject or object of a sentence ("the BP network", "LightGBM")."""
    label = model_label(name)
    text = label if name == "lightgbm" else f"the {label}"
    return text[0].upper() + text[1:] if start else text


def _diff(c: Comparison, model: str, versus: str, name: str) -> pd.Series:
    return c.churn_intervals.differences.loc[(model, versus, name)]


def _churn_decision(c: Comparison) -> Decision:
    title = "Targeting retention by churn risk"
    if c.churn_intervals is None:
        return Decision(title, "not assessable", "These customers have no churn labels.")
    m = c.churn_intervals.metrics
    auc = m.xs("roc_auc", level="metric")["value"]
    best = str(auc.idxmax())
    tied = [x for x in auc.index if x == best or _diff(c, x, best, "roc_auc")["high"] >= 0]
    choice = next(x for x in PREFERENCE if x in tied) if set(tied) & set(PREFERENCE) else best
    row = m.loc[(choice, "roc_auc")]
    lift = m.loc[(choice, "top_decile_lift")]
    evidence = (
        f"ROC-AUC {with_interval('roc_auc', row['value'], row['low'], row['high'])}; "
        f"the 10 % it scores highest churn {metric('top_decile_lift', lift['value'])} as often "
        "as average"
    )
    if choice != best:
        d = _diff(c, best, choice, "roc_auc")
        reason = "the model already served" if choice == NETWORK else "the simpler one"
        evidence += (
            f". {the(best, True)}'s ROC-AUC differs from it by "
            f"{difference(d['value'], d['low'], d['high'])} on the same customers: a tie at "
            f"this sample size, so use {reason}"
        )
    else:
        others = [x for x in auc.sort_values(ascending=False).index if x != best]
        if others:
            d = _diff(c, best, others[0], "roc_auc")
            lead = difference(d["value"], d["low"], d["high"])
            evidence += (
                f"; {the(others[0])} is within {lead} of it: a tie"
                if d["low"] <= 0
                else f"; ahead of {the(others[0])} by {lead}"
            )
    brier = m.xs("brier", level="metric")["value"]
    if str(brier.idxmin()) != choice:
        d = _diff(c, choice, str(brier.idxmin()), "brier")
        if d["low"] > 0:
            evidence += (
                f". Its probabilities are less well calibrated than "
                f"{the(str(brier.idxmin()))}'s (Brier "
                f"{difference(d['value'], d['low'], d['high'])}): rank with it, but read "
                "expected losses from the better-calibrated score"
            )
    return Decision(title, f"use {the(choice)}", evidence + ".")


def _borderline(c: Comparison) -> float:
    """The largest distance to the threshold of the nearest VA score, over disagreeing customers."""
    t = c.scored.table
    off = t[t["segment_fuzzy"] != t["segment_network"]]
    if off.empty:
        return float("nan")
    gaps = np.abs(off[list(SCORE_COLUMNS)].to_numpy() - c.scored.threshold).min(axis=1)
    return float(gaps.max())


def _segment_decision(c: Comparison) -> Decision:
    title = "Allocating resources by segment"
    a = c.agreement_intervals
    acc, kappa = a.loc["segment_accuracy"], a.loc["segment_kappa"]
    t = c.scored.table
    evidence = (
        "The resource policies are defined on the fuzzy cube's segments, which also explain "
        "themselves (three scores against a threshold). The network reproduces them for "
        f"{with_interval('segment_accuracy', acc['value'], acc['low'], acc['high'])} of customers;"
        f" Cohen's kappa "
        f"{with_interval('segment_kappa', kappa['value'], kappa['low'], kappa['high'])}"
    )
    gap = _borderline(c)
    if not np.isnan(gap):
        evidence += (
            f"; every customer they place differently has a score within {gap:.2f} of the "
            f"threshold {c.scored.threshold:g}"
        )
    if "churn" in t:
        rates = t.groupby("segment_fuzzy")["churn"].mean()
        counts = t["segment_fuzzy"].value_counts()
        rates = rates[counts.reindex(rates.index) >= 20]
        if len(rates) >= 2:
            evidence += (
                f". Segments separate churn: from {pct(rates.min())} "
                f"({BY_CODE[rates.idxmin()].name}) to {pct(rates.max())} "
                f"({BY_CODE[rates.idxmax()].name})"
            )
    use = "use the fuzzy value cube's segment (output column segment)"
    return Decision(title, use, evidence + ".")


def _value_decision(c: Comparison) -> Decision:
    title = "Forecasting value"
    if c.value_intervals is None:
        return Decision(
            title,
            "not assessable",
            "These customers have no realised future spend (only transaction logs with a "
            "holdout window do); the clv that valuecube segment writes is an estimate this report "
            "cannot check.",
        )
    v = c.value_intervals
    best = str(v["value"].idxmax())
    clear = best != "pv_score" and v.loc[best, "lead_low"] > 0
    choice = best if clear else "pv_score"
    row = v.loc[choice]
    evidence = (
        "Spearman ρ with the spend realised in the holdout "
        f"{with_interval('spearman', row['value'], row['low'], row['high'])}"
    )
    if best != "pv_score":
        lead = difference(v.loc[best, "lead"], v.loc[best, "lead_low"], v.loc[best, "lead_high"])
        if clear:
            evidence += (
                f"; it ranks spend better than the PV score by {lead} on the same customers: "
                "consider re-weighting the PV tree towards it"
            )
        else:
            evidence += (
                f"; {best} differs from it by {lead} on the same customers, a tie: keep the "
                "score the segments are built on"
            )
    return Decision(title, f"rank customers by {choice}", evidence + ".")


def _warnings(c: Comparison) -> list[str]:
    out = []
    kappa = c.agreement_intervals.loc["segment_kappa"]
    if kappa["high"] < MIN_KAPPA:
        out.append(
            f"The network's segments do not reproduce the fuzzy rule (kappa "
            f"{with_interval('segment_kappa', kappa['value'], kappa['low'], kappa['high'])}, "
            f"below {MIN_KAPPA}): do not use its segments (output column segment_model)."
        )
    if c.churn_intervals is None:
        return out
    models = set(c.churn_intervals.metrics.index.get_level_values("model"))
    for model, peers in CHECKED.items():
        for versus in (p for p in peers if {model, p} <= models):
            d = _diff(c, model, versus, "roc_auc")
            if d["high"] < 0:
                out.append(
                    f"{the(model, True)} ranks churners worse than {the(versus)}: ROC-AUC "
                    f"{difference(d['value'], d['low'], d['high'])}."
                )
            d = _diff(c, model, versus, "brier")
            if d["low"] > 0:
                out.append(
                    f"{the(model, True)}'s churn probabilities are further from the outcomes "
                    f"than {the(versus)}'s: Brier {difference(d['value'], d['low'], d['high'])}."
                )
    return out


def build_verdict(comparison: Comparison) -> Verdict:
    """The verdict of a comparison with intervals (``compare.with_intervals``)."""
    if comparison.agreement_intervals is None:
        raise ValueError("the comparison has no intervals; run compare.with_intervals first")
    decisions = (
        _churn_decision(comparison),
        _segment_decision(comparison),
        _value_decision(comparison),
    )
    return Verdict(decisions, tuple(_warnings(comparison)))
