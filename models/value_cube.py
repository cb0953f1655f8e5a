"""The value cube end to end: customers → factors → scores, segment, CLV, lifecycle, loyalty.

:class:`ValueCube` is what the ``segment`` command runs and what the packaged
model carries: the fitted state (BG/NBD for transaction logs, the frozen
factor normalisation, AHP weights and loyalty thresholds) is learned once in
``fit`` and reused, so a customer scores the same alone or inside any batch.

Factors rated by an expert panel (``source: experts``) arrive as membership
columns of the customer table (:func:`features.experts.membership_columns`,
attached by :func:`attach_expert_memberships`); a customer nobody rated on
such a factor takes its data membership when the factor has
``fallback: data``, and is rejected with that reason otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from valuecube.features.clv import (
    BetaGeoValue,
    clv_profit,
    clv_revenue,
    customer_spend_share_clv,
)
from valuecube.features.columns import floats
from valuecube.features.config import DatasetConfig
from valuecube.features.experts import membership_columns, read_memberships, read_panel
from valuecube.features.factors import compute_factors, factor_problems
from valuecube.features.inputs import REASON
from valuecube.features.lifecycle import lifecycle_stage
from valuecube.features.loyalty import loyalty_type
from valuecube.features.survival import (
    SURVIVAL_COLUMNS,
    SurvivalValue,
    lifetime_columns,
    lifetime_design,
    monthly_rate,
)
from valuecube.models.fuzzy import SCORE_COLUMNS, FuzzyValueClassifier
from valuecube.models.segments import describe_segments

CUBE_OUTPUT_COLUMNS = (
    *SCORE_COLUMNS,
    "segment",
    "segment_name",
    "policy",
    "clv",
    "lifecycle_stage",
    "loyalty_type",
)
_SHARE_TOLERANCE = 1e-6


def attach_expert_memberships(
    config: DatasetConfig,
    customers: pd.DataFrame,
    panel: pd.Series | None = None,
    ratings: str | None = None,
) -> pd.DataFrame:
    """The customer table with the expert factors' membership columns (a copy; no-op without).

    ``panel``: authority per expert (default: the config's panel file);
    ``ratings``: a ratings file other than the config's.
    """
    experts = expert_factors(config)
    if not experts:
        return customers
    panel = read_panel(config.experts) if panel is None else panel
    memberships = read_memberships(config.experts, experts, customers.index, panel, ratings)
    return customers.join(memberships)


def expert_factors(config: DatasetConfig) -> list[str]:
    """The tree factors rated by experts, in tree order."""
    return [f for f in config.tree.factor_names() if config.factors[f].source == "experts"]


# Logs: the BTYD outputs besides ``clv`` (features.btyd), after CUBE_OUTPUT_COLUMNS.
BTYD_EXTRA_COLUMNS = ("expected_purchases", "p_alive", "clv_low", "clv_high")


class ValueCube(BaseEstimator):
    """Segments customers into the value cube as a dataset config describes.

    Parameters
    ----------
    config : DatasetConfig
        Factors, indicator tree, segmentation, CLV and lifecycle settings.

    Attributes
    ----------
    bgnbd_ : BetaGeoValue or None
        BG/NBD + Gamma-Gamma model fitted on the training customers (logs only).
    fuzzy_ : FuzzyValueClassifier
        The fitted fuzzy evaluator.
    loyalty_cuts_ : tuple of float or None
        The (attachment, repeat purchase) thresholds of the loyalty types:
        the config's, else the medians of the fit customers.
    survival_ : SurvivalValue or None
        Survival model (customer tables with ``lifetime:`` and a churn label);
        its columns :data:`features.survival.SURVIVAL_COLUMNS` follow the others.
    """

    def __init__(self, config: DatasetConfig) -> None:
        self.config = config

    def _enrich(self, customers: pd.DataFrame, *, interval: bool = True) -> pd.DataFrame:
        """Add the fitted model columns (BG/NBD) that factors may refer to.

        ``interval=False`` skips the CLV interval unless a factor reads it:
        the factors alone need only the point estimates, the costly part of
        the interval is evaluating every draw (see ``BtydValue.transform``).
        """
        if getattr(self, "bgnbd_", None) is None:
            return customers
        interval = interval or self._factors_read_interval()
        return customers.join(self.bgnbd_.transform(customers, interval=interval))

    def _factors_read_interval(self) -> bool:
        """Whether a data factor reads ``clv_low`` or ``clv_high``."""
        from valuecube.features.expressions import parse_expression

        wanted = {"clv_low", "clv_high"}
        for spec in self.config.factors.values():
            read = {spec.column} | set(spec.count_of or ())
            if spec.expr:
                read |= set(parse_expression(spec.expr).names)
            if read & wanted:
                return True
        return False

    def factors(self, customers: pd.DataFrame) -> pd.DataFrame:
        """Every configured factor per customer (NaN where not computable).

        Expert factors come as their membership columns (NaN where nobody rated).
        """
        check_is_fitted(self, "fuzzy_")
        return self._factors(self._enrich(customers, interval=False))

    def _factors(self, enriched: pd.DataFrame) -> pd.DataFrame:
        specs = {n: s for n, s in self.config.factors.items() if s.from_data}
        factors = compute_factors(enriched, specs)
        for name in expert_factors(self.config):
            for column in membership_columns(name):
                rated = floats(enriched[column]) if column in enriched else None
                factors[column] = np.full(len(factors), np.nan) if rated is None else rated
        return factors

    def _problems(self, factors: pd.DataFrame) -> pd.Series:
        """Per customer why it cannot be scored ('' when it can)."""
        experts = expert_factors(self.config)
        rated_columns = {c for name in experts for c in membership_columns(name)}
        problems = factor_problems(factors[[c for c in factors.columns if c not in rated_columns]])
        for name in experts:
            rated = factors[membership_columns(name)].notna().all(axis=1).to_numpy()
            if self.config.factors[name].fallback == "data" or rated.all():
                continue
            why = f"no expert rating for factor {name!r}"
            before = problems[~rated]
            problems[~rated] = np.where(before == "", why, before + "; " + why)
        spend = self.config.clv.spend_share if self.config.clv else None
        if spend is not None:
            total = factors[spend.shares].sum(axis=1).to_numpy()
            off = ~(np.abs(total - 1.0) <= _SHARE_TOLERANCE) & (problems == "").to_numpy()
            problems[off] = [f"spend shares {spend.shares} sum to {t:g}, not 1" for t in total[off]]
        return problems

    def fit(self, customers: pd.DataFrame, y: object = None) -> ValueCube:
        """Fit BG/NBD (transaction logs) and freeze the fuzzy normalisation on these customers."""
        cfg = self.config
        self.bgnbd_ = None
        if cfg.input.shape == "transaction_log" and (
            cfg.bgnbd is not None or (cfg.clv and cfg.clv.method == "bgnbd")
        ):
            self.bgnbd_ = BetaGeoValue(**(cfg.bgnbd.model_dump() if cfg.bgnbd else {})).fit(
                customers
            )
        factors = self._factors(self._enrich(customers, interval=False))
        usable = (self._problems(factors) == "").to_numpy()
        if not usable.any():
            raise ValueError(
                "no customer has computable factors; check the config's factor definitions"
            )
        self.survival_ = None
        if cfg.lifetime is not None and "churn" in customers.columns:
            design = lifetime_design(customers[usable], factors[usable], cfg)
            self.survival_ = SurvivalValue(
                "tenure",
                lifetime_columns(cfg),
                "monthly_revenue",
                model=cfg.lifetime.model,
                horizon_months=cfg.lifetime.horizon_months,
                monthly_discount_rate=monthly_rate(cfg.clv.discount_rate) if cfg.clv else 0.0,
            ).fit(design, customers["churn"][usable])
        if cfg.clv is not None and cfg.clv.method == "survival" and self.survival_ is None:
            raise ValueError(
                "clv method 'survival' fits a survival model on the churn label: the "
                f"customers need their churn label ({cfg.input.label_column!r})"
            )
        seg = cfg.segmentation
        self.fuzzy_ = FuzzyValueClassifier(
            cfg.tree,
            threshold=seg.threshold,
            operator=seg.operator,
            normalization=seg.normalization,
            expert_factors=tuple(expert_factors(cfg)),
        ).fit(factors[usable])
        self.loyalty_cuts_ = None
        if cfg.loyalty is not None:
            spec, good = cfg.loyalty, factors[usable]
            self.loyalty_cuts_ = (
                float(good[spec.attachment].median())
                if spec.attachment_above is None
                else spec.attachment_above,
                float(good[spec.repeat_purchase].median())
                if spec.repeat_purchase_above is None
                else spec.repeat_purchase_above,
            )
        return self

    def segment(self, customers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Score customers; return (scored, rejected).

        ``scored`` has the columns of :data:`CUBE_OUTPUT_COLUMNS` (index = customer
        id); ``rejected`` the customers whose factors could not be computed,
        with a ``reason``. Every customer is in exactly one of the two.
        """
        check_is_fitted(self, "fuzzy_")
        if len(customers) == 0:  # e.g. an empty chunk: BG/NBD cannot transform zero customers
            extra = self._lifetime_columns()
            scored = pd.DataFrame(
                {c: pd.Series(dtype=object) for c in (*CUBE_OUTPUT_COLUMNS, *extra)},
                index=customers.index,
            )
            scored = scored.astype({c: "float64" for c in (*SCORE_COLUMNS, "clv", *extra)})
            return scored, pd.DataFrame({REASON: pd.Series(dtype=object)}, index=customers.index)
        enriched = self._enrich(customers)
        factors = self._factors(enriched)
        problems = self._problems(factors)
        ok = (problems == "").to_numpy()
        good = factors[ok]
        scores = self.fuzzy_.transform(good)
        codes = self.fuzzy_.predict(good) if len(good) else np.asarray([], dtype=object)
        names, policies = describe_segments(codes)
        scored = pd.DataFrame(scores, index=good.index, columns=list(SCORE_COLUMNS))
        scored["segment"] = codes
        scored["segment_name"] = names
        scored["policy"] = policies
        lifetimes = None
        if getattr(self, "survival_", None) is not None:
            lifetimes = self.survival_.transform(lifetime_design(customers[ok], good, self.config))
        scored["clv"] = self._clv(enriched[ok], good, lifetimes)
        scored["lifecycle_stage"] = self._lifecycle(good)
        scored["loyalty_type"] = self._loyalty(good)
        if getattr(self, "bgnbd_", None) is not None:  # logs: BTYD outputs after the others
            for column in BTYD_EXTRA_COLUMNS:
                scored[column] = enriched[column].to_numpy()[ok]
        if lifetimes is not None:
            scored[list(SURVIVAL_COLUMNS)] = lifetimes[list(SURVIVAL_COLUMNS)].to_numpy()
        rejected = pd.DataFrame({REASON: problems[~ok]})
        return scored, rejected

    def _lifetime_columns(self) -> tuple[str, ...]:
        """The BTYD or survival columns that follow :data:`CUBE_OUTPUT_COLUMNS` in ``segment``."""
        if getattr(self, "bgnbd_", None) is not None:
            return BTYD_EXTRA_COLUMNS
        return SURVIVAL_COLUMNS if getattr(self, "survival_", None) is not None else ()

    def _clv(
        self, enriched: pd.DataFrame, factors: pd.DataFrame, lifetimes: pd.DataFrame | None
    ) -> np.ndarray:
        """CLV by the config's method (docs/methods.md §2.6); ``lifetimes``: survival outputs."""
        spec = self.config.clv
        if spec is None:
            return np.full(len(factors), np.nan)
        if spec.method == "bgnbd":
            return enriched["clv"].to_numpy()
        if spec.method == "survival":
            return lifetimes["clv"].to_numpy()
        if spec.method == "spend_share":
            share = spec.spend_share
            return customer_spend_share_clv(
                factors[share.shares].to_numpy(),
                share.switching,
                share.periods,
                factors[share.frequency].to_numpy(),
                factors[share.revenue].to_numpy(),
                spec.discount_rate,
                brand=share.ours,
            )
        revenue = factors[spec.yearly_revenue].to_numpy()
        if spec.method == "revenue":
            return np.asarray(clv_revenue(revenue, spec.years, spec.discount_rate), dtype=float)
        cost = factors[spec.yearly_cost].to_numpy()
        return np.asarray(clv_profit(revenue, cost, spec.years, spec.discount_rate), dtype=float)

    def _lifecycle(self, factors: pd.DataFrame) -> np.ndarray:
        spec = self.config.lifecycle
        if spec is None:
            return np.full(len(factors), None, dtype=object)
        return lifecycle_stage(
            factors[spec.tenure].to_numpy(),
            factors[spec.trend].to_numpy(),
            new_below=spec.new_below,
            growth_above=spec.growth_above,
            decline_below=spec.decline_below,
        )

    def _loyalty(self, factors: pd.DataFrame) -> np.ndarray:
        spec = self.config.loyalty
        if spec is None or getattr(self, "loyalty_cuts_", None) is None:
            return np.full(len(factors), None, dtype=object)
        attachment_above, repeat_above = self.loyalty_cuts_
        return loyalty_type(
            factors[spec.attachment].to_numpy(),
            factors[spec.repeat_purchase].to_numpy(),
            attachment_above=attachment_above,
            repeat_purchase_above=repeat_above,
        )
