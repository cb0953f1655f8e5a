"""The analysts' comparison report: one self-contained HTML page from a Jinja2 template.

:func:`render_report` lays a :class:`~valuecube.training.compare.Comparison`
out as ``templates/report.html.j2``: the verdict first
(:mod:`valuecube.training.verdict`), then the model's identity, the headline
numbers with their intervals, segments, agreement, churn, value,
explanations, and any extra sections (objects with ``.title`` and ``.html``).
Charts come from :mod:`valuecube.training.figures` as embedded PNGs and the
style sheet is inline, so the file opens offline and can be mailed as it is.
:func:`write_report` writes it atomically (:class:`~valuecube.features.io.AtomicFile`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from valuecube.features.io import AtomicFile
from valuecube.models.segments import BY_CODE, SEGMENT_CODES
from valuecube.training import figures
from valuecube.training.bootstrap import CHURN_METRICS
from valuecube.training.compare import CLASSIFIERS, DIMENSION_LABELS, Comparison, calibration
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
from valuecube.training.verdict import Verdict, build_verdict

LOCAL_ROWS = 12
"""Per-customer explanations list the inputs with the largest mean absolute effect."""
_ENV = Environment(
    loader=PackageLoader("valuecube.training", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
)


class Section(Protocol):
    """An extra report section: a title and trusted HTML (rendered as is, after the others)."""

    title: str
    html: str


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


def _figure(fig: object, alt: str) -> dict[str, object]:
    width, height = figures.display_size(fig)
    return {"uri": figures.figure_uri(fig), "alt": alt, "width": width, "height": height}


def headline_text(headline: dict[str, float]) -> dict[str, str]:
    """Label → formatted value of the headline numbers (no intervals), as the CLI prints them."""
    labels = {
        "customers": "customers compared",
        "segment_accuracy": "segment agreement",
        "cohen_kappa": "Cohen's kappa",
        "spearman_pv_future_spend": "Spearman(PV score, future spend)",
    }
    out = {}
    for key, value in headline.items():
        if key.startswith("roc_auc_"):
            out[f"churn ROC-AUC · {model_label(key.removeprefix('roc_auc_'))}"] = f"{value:.3f}"
        elif key == "customers":
            out[labels[key]] = f"{value:,.0f}"
        elif key == "segment_accuracy":
            out[labels[key]] = pct(value)
        else:
            out[labels.get(key, key)] = f"{value:.3f}"
    return out


def _headline_table(c: Comparison) -> Table:
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


def _differences_table(c: Comparison) -> Table | None:
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


def _spend_label(config: object | None, currency: str) -> str:
    spec = getattr(config, "input", None)
    start, end = getattr(spec, "as_of", None), getattr(spec, "holdout_end", None)
    if start is not None and end is not None:
        weeks = ((end - start).days + 6) // 7
        return f"mean spend ({currency}) in the {weeks}-week holdout to {end:%Y-%m-%d}"
    return f"mean future spend ({currency})"


def _segments_table(c: Comparison, currency: str) -> Table:
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


def _disagreement_table(c: Comparison) -> Table | None:
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
        rows.append(row)
    return Table(header, rows, tall=True)


def _local_table(c: Comparison) -> Table | None:
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


def _churn_table(c: Comparison) -> Table | None:
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


def _value_table(c: Comparison) -> Table | None:
    if c.value_intervals is None:
        return None
    v, p = c.value_intervals, c.value_correlations["p_value"]
    rows = [
        [
            Cell(name, "l"),
            Cell(f"{r['value']:+.3f}"),
            Cell(interval("spearman", r["low"], r["high"])),
            Cell(f"{p[name]:.1e}"),
        ]
        for name, r in v.iterrows()
    ]
    return Table(["score", "Spearman ρ", "95 % interval", "p-value"], rows)


def _importance_table(c: Comparison) -> Table | None:
    if c.importances is None:
        return None
    rows = [
        [Cell(str(name), "l"), Cell(f"{r['importance']:.4f}"), Cell(f"{r['std']:.4f}")]
        for name, r in c.importances.head(20).iterrows()
    ]
    return Table(["input", "drop in ROC-AUC (mean)", "std over repeats"], rows)


def _figures(c: Comparison, spend_label: str) -> dict[str, dict[str, object]]:
    s = c.scored
    out = {
        "cube": _figure(figures.cube_projections(s), "the customers by pairs of fuzzy scores"),
        "sizes": _figure(figures.segment_sizes_figure(c.segments), "customers per segment"),
        "confusion": _figure(figures.confusion_figure(c.confusion), "confusion matrix"),
    }
    if c.churn_metrics is not None:
        y = s.table["churn"].to_numpy()
        out["roc"] = _figure(figures.roc_figure(y, c.churn_scores), "ROC curves")
        out["calibration"] = _figure(
            figures.calibration_figure(calibration(y, c.churn_scores)), "calibration"
        )
        out["gain"] = _figure(figures.gain_figure(y, c.churn_scores), "cumulative gain and lift")
        out["churn_by_segment"] = _figure(
            figures.churn_by_segment_figure(c.segments), "churn rate per segment"
        )
    if c.value_correlations is not None:
        out["value"] = _figure(
            figures.value_figure(c.segments, c.value_correlations, spend_label),
            "future spend per segment and PV correlations",
        )
    if c.importances is not None:
        out["importance"] = _figure(
            figures.importance_figure(c.importances), "permutation importance"
        )
    return out


def render_report(
    comparison: Comparison,
    identity: dict[str, str],
    *,
    title: str = "",
    customers: str = "",
    config: object | None = None,
    currency: str = "$",
    extra_sections: Iterable[Section] = (),
    verdict: Verdict | None = None,
    date: dt.datetime | None = None,
) -> str:
    """The whole report as one HTML string (see the module docstring).

    ``identity``: facts about the model (name, version, run id, training
    data, dates) shown as a table; ``customers``: which customers were
    compared; ``config``: the dataset config (for the holdout horizon of
    spend); ``currency``: the symbol spend is shown in; ``extra_sections``:
    objects with ``.title`` and trusted ``.html``, rendered after the
    built-in sections; ``verdict``: default :func:`build_verdict`;
    ``date``: the report's date (default now, UTC).
    """
    c, s = comparison, comparison.scored
    verdict = verdict or build_verdict(c)
    date = date or dt.datetime.now(dt.UTC)
    spend_label = _spend_label(config, currency)
    threshold = f"{s.threshold:g}"
    acc, kappa = c.agreement["segment_accuracy"], c.agreement["segment_kappa"]
    context = {
        "title": title or "valuecube: BP network vs fuzzy value cube",
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "customers": customers or f"{len(s.table):,} customers compared.",
        "excluded": (
            f" {len(s.rejected):,} customer(s) could not be scored and are left out."
            if len(s.rejected)
            else ""
        ),
        "n_resamples": c.n_resamples,
        "verdict": verdict,
        "identity": Table([], [[Cell(k, "l"), Cell(v, "l")] for k, v in identity.items()]),
        "headline": _headline_table(c),
        "differences": _differences_table(c),
        "segments": _segments_table(c, currency),
        "segments_note": (
            "The eight segments of the value cube with the resource policy of each "
            "(docs/methods.md §2.4), under the fuzzy rule and the BP network. Each segment has one "
            "colour on every chart. In the scatter plots each dot is a customer placed by two of "
            f"its fuzzy scores (1–9; dotted lines: the high/low threshold {threshold}); top row "
            "coloured by the fuzzy rule's segment, bottom row by the network's."
        ),
        "agreement_note": (
            f"The network reproduces the fuzzy segment for {pct(acc)} of these customers "
            f"(Cohen's kappa {kappa:.3f}: agreement beyond chance; 1 = perfect, 0 = chance)."
        ),
        "disagreements": _disagreement_table(c),
        "disagreements_note": (
            "One row per customer the two place differently, lowest network probability for the "
            "fuzzy segment first. The highlighted score is the one nearest the threshold "
            f"{threshold} (hover for the distance): a dimension is high when its score is at least "
            "the threshold, so a small distance means a borderline customer. Then the factor "
            "values the rule scored."
        ),
        "local_effects": _local_table(c),
        "local_note": (
            "Change in the network's churn probability, in percentage points, due to each input: "
            "the probability minus the probability with that input set to a typical training "
            "customer's value (median; most common level for a category), one input at a time. "
            f"Positive (red): raises churn for this customer. The {LOCAL_ROWS} inputs with the "
            "largest mean effect are listed."
        ),
        "churn": _churn_table(c),
        "churn_note": (
            "All scores on the same customers. The peers (logistic regression, LightGBM) were "
            "refit on the model's own training split with the network's inputs; the fuzzy churn "
            "score is a logistic regression on the three VA scores. Higher ROC-AUC, PR-AUC and "
            "lift are better; lower Brier score and log loss are better. Each model keeps its "
            "colour and line style on every chart."
        ),
        "value": _value_table(c),
        "value_note": (
            f"{spend_label[0].upper()}{spend_label[1:]} per segment, and how well each "
            "potential-value score ranks customers by the spend realised (Spearman ρ; a "
            "cost-direction factor such as an inter-purchase time ranks with a negative ρ)."
        ),
        "importances": _importance_table(c),
        "importance_note": (
            "Permutation importance of the network's inputs: how much churn ROC-AUC drops when one "
            "input is shuffled across these customers (one-hot columns of a category together). "
            "Inputs that carry the same information share the credit."
        ),
        "figures": _figures(c, spend_label),
        "extra_sections": list(extra_sections),
    }
    return _ENV.get_template("report.html.j2").render(**context)


def write_report(text: str, path: str | Path) -> Path:
    """Write the HTML atomically; readable by others (a report is meant to be shared)."""
    path = Path(path)
    with AtomicFile(path) as file:
        file.handle.write(text.encode("utf-8"))
        os.chmod(file.tmp, 0o644)
    return path
