"""The analysts' comparison of the BP network against the fuzzy value cube: pure computations.

Over a loaded :class:`~valuecube.models.packaged.ChurnSegmentModel` and
per-customer tables (loading lives in :mod:`valuecube.training.compare_inputs`,
drawing in :mod:`valuecube.training.figures`, the page in
:mod:`valuecube.training.report`). The steps, in the order of the report, each
usable alone (the notebook calls them one by one):

1. :func:`score_for_comparison` — fuzzy evaluation (memberships, VA scores,
   segment) and network outputs (segment probabilities, churn) per customer;
2. :func:`segment_table` — segment sizes, churn rate, future spend under both
   classifiers; :func:`agreement` — confusion matrix, accuracy, Cohen's kappa;
   :func:`disagreements` — the customers where they disagree most, with the
   fuzzy rule's reasons and the network's probabilities;
3. :func:`churn_scores` — the network, its peers (refit on the model's own
   training split with :mod:`valuecube.training.peers`) and the fuzzy churn
   score on the same customers; :func:`gain_curve`, :func:`calibration`;
4. :func:`value_correlations` — Spearman of each potential-value score with
   realised future spend (transaction logs);
5. :mod:`valuecube.training.explanations` — which network inputs move the
   churn probability;
6. :mod:`valuecube.training.bootstrap` — 95 % intervals on every headline
   metric and on the differences between models.

:func:`compare_model` runs them all into one :class:`Comparison`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.calibration import calibration_curve

from valuecube.features.factors import factor_problems
from valuecube.features.inputs import REASON
from valuecube.models.fuzzy import GRADES, SCORE_COLUMNS, FuzzyEvaluation, FuzzyValueClassifier
from valuecube.models.levers import lever_sentence, levers
from valuecube.models.packaged import ChurnSegmentModel
from valuecube.models.segments import SEGMENT_CODES, assign_segments
from valuecube.training import bootstrap, peers
from valuecube.training.evaluate import comparison_table, segment_agreement
from valuecube.training.explanations import (
    median_substitution,
    permutation_importances,
    reference_inputs,
)
from valuecube.training.peers import FUZZY, NETWORK
from valuecube.training.segment import segment_summary

CLASSIFIERS = ("fuzzy", "network")
DIMENSION_LABELS = ("CV", "PV", "RA")
BGNBD_VALUE_COLUMNS = ("expected_purchases", "clv")
"""BG/NBD outputs that are potential-value scores in their own right (logs only)."""


@dataclass(frozen=True)
class ScoredCustomers:
    """Both classifiers' view of the same customers (index: customer id, one order).

    ``table``: VA scores, ``segment_fuzzy``, ``segment_network``,
    ``p_fuzzy_class`` (the network's probability of the fuzzy segment),
    ``churn_probability`` and the labels present (``churn``, ``future_spend``);
    ``factors``: the configured factors; ``evaluation``: the fuzzy evaluation
    (memberships at every node); ``X``: the network's input matrix;
    ``proba``: the network's segment probabilities (columns: segment codes);
    ``rejected``: customers whose factors could not be computed, with a reason;
    ``threshold``: the VA score from which a dimension is high.
    """

    table: pd.DataFrame
    factors: pd.DataFrame
    evaluation: FuzzyEvaluation
    X: pd.DataFrame
    proba: pd.DataFrame
    rejected: pd.DataFrame
    threshold: float

    @property
    def has_churn(self) -> bool:
        """Whether churn labels (both classes) are known for these customers."""
        return "churn" in self.table and self.table["churn"].nunique() == 2

    @property
    def has_future_spend(self) -> bool:
        """Whether realised future spend is known (transaction logs with a holdout)."""
        return "future_spend" in self.table


def score_for_comparison(model: ChurnSegmentModel, customers: pd.DataFrame) -> ScoredCustomers:
    """Score per-customer rows with the model's frozen fuzzy cube and its network.

    Customers whose factors cannot be computed are set aside in ``rejected``
    (never silently dropped); the rest are scored by both classifiers.
    """
    factors = model.cube.factors(customers)
    problems = factor_problems(factors)
    ok = (problems == "").to_numpy()
    rejected = pd.DataFrame({REASON: problems[~ok]})
    good, factors = customers[ok], factors[ok]
    evaluation = model.cube.fuzzy_.evaluate(
        factors
    )  # memberships at every node, for the explanations
    X = model.design.transform(good)
    net = model.network
    proba = pd.DataFrame(net.predict_proba(X), index=good.index, columns=list(net.classes_))
    proba = proba.reindex(columns=list(SEGMENT_CODES), fill_value=0.0)
    fuzzy = model.cube.fuzzy_
    table = pd.DataFrame(fuzzy.transform(factors), index=good.index, columns=list(SCORE_COLUMNS))
    table["segment_fuzzy"] = assign_segments(table.to_numpy(), fuzzy.threshold)
    table["segment_network"] = proba.columns.to_numpy()[np.argmax(proba.to_numpy(), axis=1)]
    table["p_fuzzy_class"] = proba.to_numpy()[
        np.arange(len(good)), proba.columns.get_indexer(table["segment_fuzzy"])
    ]
    table["churn_probability"] = net.predict_churn_proba(X)
    for label in ("churn", "future_spend"):
        if label in good:
            table[label] = good[label].to_numpy()
    return ScoredCustomers(table, factors, evaluation, X, proba, rejected, float(fuzzy.threshold))


def segment_table(scored: ScoredCustomers) -> pd.DataFrame:
    """Per segment (all eight) under both classifiers: customers, share, churn rate, future spend.

    Columns are a (metric, classifier) MultiIndex, e.g. ``("churn_rate", "network")``.
    """
    parts = {}
    for name in CLASSIFIERS:
        frame = scored.table.rename(columns={f"segment_{name}": "segment"})
        parts[name] = segment_summary(frame).drop(columns="segment_name")
    joined = pd.concat(parts, axis=1).swaplevel(axis=1)
    metrics = [
        m for m in parts["fuzzy"].columns if not m.startswith("mean_") or m == "mean_future_spend"
    ]
    return joined[[(m, c) for m in metrics for c in CLASSIFIERS]]


def agreement(scored: ScoredCustomers) -> tuple[pd.DataFrame, dict[str, float]]:
    """Confusion matrix (rows fuzzy, columns network; all eight) and accuracy, macro-F1, kappa."""
    fuzzy, network = scored.table["segment_fuzzy"], scored.table["segment_network"]
    codes = pd.CategoricalDtype(list(SEGMENT_CODES))
    matrix = pd.crosstab(
        fuzzy.astype(codes).rename("fuzzy"), network.astype(codes).rename("network"), dropna=False
    )
    return matrix, segment_agreement(fuzzy.to_numpy(), network.to_numpy())


def disagreements(
    scored: ScoredCustomers, top: int = 10, fuzzy: FuzzyValueClassifier | None = None
) -> pd.DataFrame:
    """The ``top`` customers whose fuzzy segment the network finds least likely, with reasons.

    Only customers the two classifiers place differently, sorted by the
    network's probability of the fuzzy segment (lowest first). Columns are a
    (group, item) MultiIndex: ``segment``; ``VA score``; ``<dim> membership``
    (the five-grade vector B of each dimension: why the fuzzy rule said what it
    said); ``factor`` (the raw factor values); ``network P(segment)``;
    ``churn`` (network probability and, where known, the observed label);
    given the cube's ``fuzzy`` evaluator (weighted-average operator), ``lever``:
    the nearest threshold and the factor change that crosses it
    (:func:`models.levers.levers`).
    """
    t = scored.table
    ids = t.index[t["segment_fuzzy"] != t["segment_network"]]
    ids = t.loc[ids, "p_fuzzy_class"].sort_values(kind="stable").index[:top]
    pos = t.index.get_indexer(ids)
    parts: dict[str, pd.DataFrame] = {
        "segment": t.loc[ids, ["segment_fuzzy", "segment_network", "p_fuzzy_class"]].set_axis(
            ["fuzzy", "network", "network P(fuzzy segment)"], axis=1
        ),
        "VA score": t.loc[ids, list(SCORE_COLUMNS)].set_axis(list(DIMENSION_LABELS), axis=1),
    }
    for d, label in enumerate(DIMENSION_LABELS):
        parts[f"{label} membership"] = pd.DataFrame(
            scored.evaluation.dimensions[pos, d, :], index=ids, columns=list(GRADES)
        )
    parts["factor"] = scored.factors.loc[ids]
    parts["network P(segment)"] = scored.proba.loc[ids]
    churn = ["churn_probability"] + (["churn"] if "churn" in t else [])
    parts["churn"] = t.loc[ids, churn].set_axis(
        ["network P(churn)", "observed"][: len(churn)], axis=1
    )
    if fuzzy is not None and fuzzy.operator == "weighted_average" and len(ids):
        found = levers(fuzzy, scored.factors.loc[ids])
        sentences = [lever_sentence(row, scored.threshold) for _, row in found.iterrows()]
        parts["lever"] = pd.DataFrame({"lever": sentences}, index=ids)  # ≤ top rows
    return pd.concat(parts, axis=1)


def churn_scores(
    model: ChurnSegmentModel, scored: ScoredCustomers, train: ScoredCustomers, seed: int = 0
) -> dict[str, np.ndarray]:
    """Churn probabilities of the same customers from the network and its peers.

    The peers (:data:`training.peers.PEER_NAMES`) are refit here on the
    model's training customers (``train``) with the network's inputs; the
    fuzzy churn score is :func:`training.peers.fuzzy_churn_peer` on the three
    VA scores — the same recipe as at training time.
    """
    y = train.table["churn"].to_numpy()
    fitted = peers.fit_peers(train.X.to_numpy(), y, seed=seed)
    scores = {NETWORK: scored.table["churn_probability"].to_numpy()}
    scores.update(
        {name: est.predict_proba(scored.X.to_numpy())[:, 1] for name, est in fitted.items()}
    )
    fuzzy = peers.fuzzy_churn_peer(seed).fit(train.table[list(SCORE_COLUMNS)].to_numpy(), y)
    scores[FUZZY] = fuzzy.predict_proba(scored.table[list(SCORE_COLUMNS)].to_numpy())[:, 1]
    return scores


def gain_curve(y_true: np.ndarray, probability: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Cumulative gain and lift: target the customers with the highest probability first.

    ``targeted``: share of customers contacted; ``captured``: share of all
    churners among them; ``lift`` = captured / targeted (1 = random targeting).
    """
    y = np.asarray(y_true, dtype=float)[
        np.argsort(-np.asarray(probability, dtype=float), kind="stable")
    ]
    targeted = np.linspace(0.0, 1.0, points)
    cumulative = np.concatenate([[0.0], np.cumsum(y)])
    captured = cumulative[np.ceil(targeted * len(y)).astype(int)] / max(y.sum(), 1.0)
    lift = np.divide(captured, targeted, out=np.full_like(targeted, np.nan), where=targeted > 0)
    return pd.DataFrame({"targeted": targeted, "captured": captured, "lift": lift})


def calibration(
    y_true: np.ndarray, scores: dict[str, np.ndarray], n_bins: int = 10
) -> pd.DataFrame:
    """Reliability-diagram points per model (sklearn's ``calibration_curve``, equal-count bins)."""
    rows = []
    for name, p in scores.items():
        observed, predicted = calibration_curve(y_true, p, n_bins=n_bins, strategy="quantile")
        rows.append(
            pd.DataFrame({"model": name, "mean_predicted": predicted, "observed_rate": observed})
        )
    return pd.concat(rows, ignore_index=True)


def top_lift(y_true: np.ndarray, probability: np.ndarray, share: float = 0.1) -> float:
    """Churn rate among the ``share`` of customers scored highest, over the overall rate."""
    y = np.asarray(y_true, dtype=float)
    top = np.argsort(-np.asarray(probability, dtype=float), kind="stable")[
        : max(int(np.ceil(share * len(y))), 1)
    ]
    return float(y[top].mean() / y.mean())


def churn_table(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Churn metrics per model (``evaluate.comparison_table``) and the top-decile lift."""
    table = comparison_table(y_true, scores)
    table["top_decile_lift"] = [top_lift(y_true, scores[m]) for m in table.index]
    return table


def potential_value_scores(
    model: ChurnSegmentModel, customers: pd.DataFrame, scored: ScoredCustomers
) -> pd.DataFrame:
    """The potential-value scores : ``pv_score``, the PV factors, BG/NBD's outputs.

    BG/NBD expected purchases and CLV are added when the model has a BG/NBD
    fit (transaction logs) and no PV factor already reads that column.
    """
    weights = model.cube.fuzzy_.effective_weights()
    pv = list(dict.fromkeys(weights.loc[weights["dimension"] == "potential_value", "factor"]))
    frame = pd.concat([scored.table[["pv_score"]], scored.factors[pv]], axis=1)
    bgnbd = getattr(model.cube, "bgnbd_", None)
    if bgnbd is not None:
        read = {model.config.factors[f].column for f in pv}
        extra = bgnbd.transform(customers.loc[scored.table.index])
        frame = frame.join(
            extra[[c for c in BGNBD_VALUE_COLUMNS if c not in read]].add_prefix("bgnbd_")
        )
    return frame


def value_correlations(candidates: pd.DataFrame, future_spend: pd.Series) -> pd.DataFrame:
    """Spearman rank correlation (and p-value) of each candidate with realised future spend."""
    rows = {}
    for name, values in candidates.items():
        rho, p = spearmanr(values.to_numpy(), future_spend.loc[candidates.index].to_numpy())
        rows[name] = {"spearman": float(rho), "p_value": float(p)}
    return pd.DataFrame(rows).T.rename_axis("score")


@dataclass(frozen=True)
class Comparison:
    """Everything the report shows (see the module docstring for each step).

    ``agreement_intervals``, ``churn_intervals`` and ``value_intervals`` are
    the bootstrap intervals of :mod:`valuecube.training.bootstrap`;
    ``n_resamples`` says how many resamples they rest on.
    """

    scored: ScoredCustomers
    segments: pd.DataFrame
    confusion: pd.DataFrame
    agreement: dict[str, float]
    disagreements: pd.DataFrame
    churn_scores: dict[str, np.ndarray] = field(default_factory=dict)
    churn_metrics: pd.DataFrame | None = None
    value_scores: pd.DataFrame | None = None
    value_correlations: pd.DataFrame | None = None
    importances: pd.DataFrame | None = None
    local_effects: pd.DataFrame | None = None
    agreement_intervals: pd.DataFrame | None = None
    churn_intervals: bootstrap.ChurnIntervals | None = None
    value_intervals: pd.DataFrame | None = None
    n_resamples: int = 0

    @property
    def headline(self) -> dict[str, float]:
        """The numbers to read first: size, agreement, churn ROC-AUC per model, PV vs spend."""
        out = {
            "customers": float(len(self.scored.table)),
            "segment_accuracy": self.agreement["segment_accuracy"],
            "cohen_kappa": self.agreement["segment_kappa"],
        }
        if self.churn_metrics is not None:
            out.update({f"roc_auc_{m}": float(v) for m, v in self.churn_metrics["roc_auc"].items()})
        if self.value_correlations is not None:
            out["spearman_pv_future_spend"] = float(
                self.value_correlations.loc["pv_score", "spearman"]
            )
        return out


def with_intervals(
    comparison: Comparison, *, n_resamples: int = bootstrap.N_RESAMPLES, seed: int = 0
) -> Comparison:
    """The comparison with bootstrap intervals on agreement, churn metrics and value ranking."""
    c, t = comparison, comparison.scored.table
    parts: dict[str, Any] = {
        "agreement_intervals": bootstrap.agreement_intervals(
            t["segment_fuzzy"].to_numpy(),
            t["segment_network"].to_numpy(),
            n_resamples=n_resamples,
            seed=seed,
        ),
        "n_resamples": n_resamples,
    }
    if c.churn_metrics is not None:
        parts["churn_intervals"] = bootstrap.churn_intervals(
            t["churn"].to_numpy(), c.churn_scores, n_resamples=n_resamples, seed=seed
        )
    if c.value_scores is not None:
        parts["value_intervals"] = bootstrap.spearman_intervals(
            c.value_scores, t["future_spend"], n_resamples=n_resamples, seed=seed
        )
    return replace(c, **parts)


def compare_model(
    model: ChurnSegmentModel,
    customers: pd.DataFrame,
    train_customers: pd.DataFrame,
    *,
    top: int = 10,
    n_repeats: int = 3,
    n_resamples: int = bootstrap.N_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Every step on ``customers`` (labels where present); peers fit on ``train_customers``."""
    scored = score_for_comparison(model, customers)
    train = score_for_comparison(model, train_customers)
    confusion, agree = agreement(scored)
    table = disagreements(scored, top, model.cube.fuzzy_)
    local = (
        median_substitution(model, scored.X.loc[table.index], reference_inputs(train.X))
        if len(table)
        else None
    )
    parts: dict[str, Any] = {}
    if scored.has_churn:
        y = scored.table["churn"].to_numpy()
        parts["churn_scores"] = churn_scores(model, scored, train, seed)
        parts["churn_metrics"] = churn_table(y, parts["churn_scores"])
        parts["importances"] = permutation_importances(
            model, scored, n_repeats=n_repeats, seed=seed
        )
    if scored.has_future_spend:
        parts["value_scores"] = potential_value_scores(model, customers, scored)
        parts["value_correlations"] = value_correlations(
            parts["value_scores"], scored.table["future_spend"]
        )
    result = Comparison(
        scored, segment_table(scored), confusion, agree, table, local_effects=local, **parts
    )
    return with_intervals(result, n_resamples=n_resamples, seed=seed)
