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
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from valuecube.features.io import AtomicFile
from valuecube.training import figures, report_tables
from valuecube.training.compare import Comparison, calibration
from valuecube.training.formatting import (
    model_label,
    pct,
)
from valuecube.training.report_tables import LOCAL_ROWS, Cell, Table
from valuecube.training.verdict import Verdict, build_verdict

_ENV = Environment(
    loader=PackageLoader("valuecube.training", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
)


class Section(Protocol):
    """An extra report section: a title and trusted HTML (rendered as is, after the others)."""

    @property
    def title(self) -> str:
        """The section's heading."""

    @property
    def html(self) -> str:
        """The section's body, trusted HTML."""


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
    spend_label = report_tables.spend_label(config, currency)
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
        "headline": report_tables.headline_table(c),
        "differences": report_tables.differences_table(c),
        "segments": report_tables.segments_table(c, currency),
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
        "disagreements": report_tables.disagreement_table(c),
        "disagreements_note": (
            "One row per customer the two place differently, lowest network probability for the "
            "fuzzy segment first. The highlighted score is the one nearest the threshold "
            f"{threshold} (hover for the distance): a dimension is high when its score is at least "
            "the threshold, so a small distance means a borderline customer. Then the factor "
            "values the rule scored."
        ),
        "local_effects": report_tables.local_table(c),
        "local_note": (
            "Change in the network's churn probability, in percentage points, due to each input: "
            "the probability minus the probability with that input set to a typical training "
            "customer's value (median; most common level for a category), one input at a time. "
            f"Positive (red): raises churn for this customer. The {LOCAL_ROWS} inputs with the "
            "largest mean effect are listed."
        ),
        "churn": report_tables.churn_table(c),
        "churn_note": (
            "All scores on the same customers. The peers (logistic regression, LightGBM) were "
            "refit on the model's own training split with the network's inputs; the fuzzy churn "
            "score is a logistic regression on the three VA scores. Higher ROC-AUC, PR-AUC and "
            "lift are better; lower Brier score and log loss are better. Each model keeps its "
            "colour and line style on every chart."
        ),
        "value": report_tables.value_table(c),
        "value_note": (
            f"{spend_label[0].upper()}{spend_label[1:]} per segment, and how well each "
            "potential-value score ranks customers by the spend realised (Spearman ρ; a "
            "cost-direction factor such as an inter-purchase time ranks with a negative ρ)."
        ),
        "importances": report_tables.importance_table(c),
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
