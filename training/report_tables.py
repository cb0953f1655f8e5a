"""The comparison report's tables: each a header and rows of formatted cells for the template.

Numbers are formatted for people here (:mod:`valuecube.training.formatting`):
shares as percentages, spend with its currency, differences with their
paired intervals; segments carry their chart colour as a swatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from valuecube.models.segments import BY_CODE, SEGMENT_CODES
from valuecube.training import figures
from valuecube.training.bootstrap import CHURN_METRICS
from valuecube.training.compare import CLASSIFIERS, DIMENSION_LABELS, Comparison
from valuecube.training.formatting import (
    METRIC_LABELS,
    difference,
    interval,
    metric,
    model_label,
    money,
    number,
    pct,
)

LOCAL_ROWS = 12
"""Per-customer explanations list the inputs with the largest mean absolute effect."""


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, an optional CSS class, colour swatch and tooltip."""

    text: str
    cls: str = ""
    swatch: str = ""
    title: str = ""


@dataclass(frozen=True)
class Table:
    """A table for the template; ``tall`` tables scroll vertically too."""

    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    tall: bool = False


def _hex(colour: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in colour[:3])


def _segment_cell(code: str) -> Cell:
    return Cell(BY_CODE[code].name, "l", _hex(figures.SEGMENT_COLOURS[code]))


def headline_table(c: Comparison) -> Table:
    rows = [[Cell("customers compared", "l"), Cell(f"{len(c.scored.table):,}"), Cell("")]]
    for key, r in c.agreement_intervals.iterrows():
        rows.append(
            [
                Cell(f"{METRIC_LABELS[key]}, network vs fuzzy rule", "l"),
                Cell(metric(key, r["value"])),
                Cell(interval(key, r["low"], r["high"])),
            ]
        )
    if c.churn_intervals is not None:
        for (model, key), r in c.churn_intervals.metrics.iterrows():
            rows.append(
                [
                    Cell(f"churn {METRIC_LABELS[key]} · {model_label(model)}", "l"),
                    Cell(metric(key, r["value"])),
                    Cell(interval(key, r["low"], r["high"])),
                ]
            )
    if c.value_intervals is not None:
        r = c.value_intervals.loc["pv_score"]
        rows.append(
            [
                Cell("Spearman ρ, PV score vs future spend", "l"),
                Cell(metric("spearman", r["value"])),
                Cell(interval("spearman", r["low"], r["high"])),
            ]
        )
    return Table(["metric", "value", "95 % interval"], rows)


def differences_table(c: Comparison) -> Table | None:
    if c.churn_intervals is None:
        return None
    d = c.churn_intervals.differences
    models = list(c.churn_scores)
    rows = []
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            cells = [Cell(f"{model_label(a)} − {model_label(b)}", "l")]
            for key in ("roc_auc", "brier", "top_decile_lift"):
                r = d.loc[(a, b, key)]
                clear = r["low"] > 0 or r["high"] < 0
                digits = 2 if key == "top_decile_lift" else 3
                cells.append(
                    Cell(difference(r["value"], r["low"], r["high"], digits), "hl" if clear else "")
                )
            rows.append(cells)
    return Table(["models", *(f"Δ {METRIC_LABELS[k]}" for k in CHURN_METRICS)], rows)


def spend_label(config: object | None, currency: str) -> str:
    spec = getattr(config, "input", None)
    start, end = getattr(spec, "as_of", None), getattr(spec, "holdout_end", None)
    if start is not None and end is not None:
        weeks = ((end - start).days + 6) // 7
        return f"mean spend ({currency}) in the {weeks}-week holdout to {end:%Y-%m-%d}"
    return f"mean future spend ({currency})"


def segments_table(c: Comparison, currency: str) -> Table:
    seg = c.segments
    metrics = {m for m, _ in seg.columns}
    header = ["segment", "resource policy", "customers (fuzzy / network)", "share (fuzzy)"]
    if "churn_rate" in metrics:
        header.append("churn rate (fuzzy / network)")
    if "mean_future_spend" in metrics:
        header.append(f"mean future spend, {currency} (fuzzy / network)")
    rows = []
    for code in SEGMENT_CODES:
        r = seg.loc[code]
        row = [
            _segment_cell(code),
            Cell(BY_CODE[code].policy, "l"),
            Cell(" / ".join(f"{int(r[('customers', k)]):,}" for k in CLASSIFIERS)),
            Cell(pct(r[("share", "fuzzy")])),
        ]
        if "churn_rate" in metrics:
            row.append(Cell(" / ".join(pct(r[("churn_rate", k)]) for k in CLASSIFIERS)))
        if "mean_future_spend" in metrics:
            row.append(
                Cell(" / ".join(money(r[("mean_future_spend", k)], currency) for k in CLASSIFIERS))
            )
        rows.append(row)
    return Table(header, rows)


def disagreement_table(c: Comparison) -> Table | None:
    table = c.disagreements
    if not len(table):
        return None
    threshold = c.scored.threshold
    va = table["VA score"].to_numpy()
    nearest = np.abs(va - threshold).argmin(axis=1)
    factors = list(table["factor"].columns)
    churn = table["churn"]
    header = ["customer", "fuzzy rule", "BP network", "network P(fuzzy segment)"]
    header += [f"{d} score" for d in DIMENSION_LABELS] + ["network P(churn)"]
    header += ["churned"] if "observed" in churn else []
    header += factors
    lever = ("lever", "lever") in table.columns
    header += ["lever"] if lever else []
    rows = []
    for i, customer in enumerate(table.index):
        row = [
            Cell(str(customer), "l"),
            _segment_cell(table[("segment", "fuzzy")].iloc[i]),
            _segment_cell(table[("segment", "network")].iloc[i]),
            Cell(pct(table[("segment", "network P(fuzzy segment)")].iloc[i])),
        ]
        for d in range(len(DIMENSION_LABELS)):
            gap = va[i, d] - threshold
            row.append(
                Cell(
                    f"{va[i, d]:.3f}",
                    "hl" if d == nearest[i] else "",
                    title=f"{gap:+.2f} from the threshold {threshold:g}",
                )
            )
        row.append(Cell(pct(churn["network P(churn)"].iloc[i])))
        if "observed" in churn:
            row.append(Cell("yes" if churn["observed"].iloc[i] else "no"))
        row += [Cell(number(v)) for v in table["factor"].iloc[i].to_numpy(dtype=float)]
        if lever:  # why the fuzzy rule placed the customer where it did (models.levers)
            row.append(Cell(str(table[("lever", "lever")].iloc[i]), "l"))
        rows.append(row)
    return Table(header, rows, tall=True)


def local_table(c: Comparison) -> Table | None:
    if c.local_effects is None:
        return None
    effects = c.local_effects
    order = effects.abs().mean(axis=1).sort_values(ascending=False).index[:LOCAL_ROWS]
    shown = effects.loc[order].T
    rows = [
        [Cell(str(customer), "l")]
        + [Cell(f"{100 * v:+.1f}", "neg" if v > 0 else "") for v in shown.loc[customer]]
        for customer in shown.index
    ]
    return Table(["customer", *(f"{g} (pp)" for g in order)], rows, tall=True)


def churn_table(c: Comparison) -> Table | None:
    if c.churn_metrics is None:
        return None
    m = c.churn_metrics
    rows = [
        [
            Cell(model_label(name), "l"),
            Cell(f"{r['roc_auc']:.3f}"),
            Cell(f"{r['pr_auc']:.3f}"),
            Cell(f"{r['brier']:.3f}"),
            Cell(f"{r['log_loss']:.3f}"),
            Cell(f"{r['top_decile_lift']:.2f}×"),
        ]
        for name, r in m.iterrows()
    ]
    return Table(["model", "ROC-AUC", "PR-AUC", "Brier", "log loss", "top-decile lift"], rows)


def value_table(c: Comparison) -> Table | None:
    if c.value_intervals is None:
        return None
    v, p = c.value_intervals, c.value_correlations["p_value"]
    lead = "lead" in v
    rows = []
    for name, r in v.iterrows():
        row = [
            Cell(str(name), "l"),
            Cell(f"{r['value']:+.3f}"),
            Cell(interval("spearman", r["low"], r["high"])),
            Cell(f"{p[name]:.1e}"),
        ]
        if lead:
            clear = r["lead_low"] > 0 or r["lead_high"] < 0
            text = (
                "–" if name == "pv_score" else difference(r["lead"], r["lead_low"], r["lead_high"])
            )
            row.append(Cell(text, "hl" if clear and name != "pv_score" else ""))
        rows.append(row)
    header = ["score", "Spearman ρ", "95 % interval", "p-value"]
    return Table(header + (["ρ − ρ(PV score), same customers"] if lead else []), rows)


def importance_table(c: Comparison) -> Table | None:
    if c.importances is None:
        return None
    rows = [
        [Cell(str(name), "l"), Cell(f"{r['importance']:.4f}"), Cell(f"{r['std']:.4f}")]
        for name, r in c.importances.head(20).iterrows()
    ]
    return Table(["input", "drop in ROC-AUC (mean)", "std over repeats"], rows)
