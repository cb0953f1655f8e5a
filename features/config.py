"""Dataset configuration: the input schema, the factors and the indicator tree.

One YAML file per dataset (see ``configs/``) declares

* ``input`` — the shape of the raw data (a customer table or a transaction
  log), its columns with types and bounds, the id and label columns;
* ``factors`` — how each per-customer factor is computed from the columns;
* ``tree`` — the value cube's indicator tree: dimension → indicator →
  factors, each node with an AHP comparison matrix (or direct weights) and
  each factor with a direction (``benefit``: more is better, ``cost``: less
  is better);
* ``segmentation``, ``clv`` and ``lifecycle`` — the remaining settings.

The schema is a set of pydantic models, so a malformed file fails with the
path of the offending key.
"""

from __future__ import annotations

import codecs
import datetime as dt
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from valuecube.features.expressions import parse_expression

DIMENSIONS = ("current_value", "potential_value", "relative_advantage")
"""The three value dimensions, in the order of the score columns (CV, PV, RA)."""


class ConfigError(ValueError):
    """A dataset configuration file is missing, malformed or inconsistent."""


def _ratio(value: object) -> float:
    """Accept Saaty judgements written as numbers or as fractions like ``"1/3"``."""
    if isinstance(value, str):
        return float(Fraction(value.strip()))
    return float(value)  # type: ignore[arg-type]


Judgement = Annotated[float, BeforeValidator(_ratio)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """One raw input column: its type, allowed values and bounds."""

    type: Literal["string", "int", "float", "category", "date"]
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None
    missing: float | str | None = Field(
        default=None, description="Value that replaces a blank cell; blank is an error when unset."
    )
    format: str | None = Field(default=None, description="strptime format of a date column.")
    required: bool = Field(default=True, description="Whether the column must be in the file.")

    @model_validator(mode="after")
    def _check(self) -> ColumnSpec:
        if self.type == "category" and not self.values:
            raise ValueError("a category column needs its allowed 'values'")
        return self


class InputSpec(_Strict):
    """The raw data: a customer table (one row per customer) or a transaction log."""

    shape: Literal["customer_table", "transaction_log"]
    separator: str = Field(
        default=",", description="CSV separator; 'whitespace' for runs of blanks."
    )
    encoding: str = Field(
        default="utf-8",
        description="Text encoding of a CSV/text input file (a Python codec name, e.g. 'latin-1').",
    )
    id_column: str
    label_column: str | None = None
    label_positive: list[str] = Field(default_factory=lambda: ["Yes", "1", "True", "true"])
    columns: dict[str, ColumnSpec]
    date_column: str | None = None
    quantity_column: str | None = None
    amount_column: str | None = None
    as_of: dt.date | None = None
    window_start: dt.date | None = None
    holdout_end: dt.date | None = None

    @model_validator(mode="after")
    def _check(self) -> InputSpec:
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"encoding {self.encoding!r} is not a known text encoding") from None
        for role in (
            "id_column",
            "label_column",
            "date_column",
            "quantity_column",
            "amount_column",
        ):
            name = getattr(self, role)
            if name is not None and name not in self.columns:
                raise ValueError(f"{role} {name!r} is not declared under 'columns'")
        if self.shape == "transaction_log":
            missing = [
                r
                for r in ("date_column", "quantity_column", "amount_column")
                if getattr(self, r) is None
            ]
            if missing:
                raise ValueError(f"a transaction log needs {', '.join(missing)}")
            if self.label_column is not None:
                raise ValueError(
                    "a transaction log's labels come from its holdout window, not a label_column"
                )
        return self


class FactorSpec(_Strict):
    """How one per-customer factor is computed (exactly one of the four forms).

    * ``column``: a numeric column as it is;
    * ``column`` + ``map``: a categorical column mapped to numbers;
    * ``count_of``: how many of ``columns`` equal ``value`` (e.g. services taken);
    * ``expr``: an arithmetic expression over numeric columns and earlier factors
      (:mod:`features.expressions`).

    Non-finite results (e.g. a division by zero) take ``fill``; without a fill
    they are an error.
    """

    column: str | None = None
    map: dict[str, float] | None = None
    count_of: list[str] | None = None
    value: str = "Yes"
    expr: str | None = None
    fill: float | None = None
    description: str | None = None
    source: Literal["data", "experts"] = Field(
        default="data", description="'experts': memberships from the expert panel's ratings."
    )
    fallback: Literal["data"] | None = Field(
        default=None, description="An expert factor's data form for customers nobody rated."
    )

    @property
    def from_data(self) -> bool:
        """Whether the factor has a data form (a data factor, or an expert one with a fallback)."""
        return self.source == "data" or self.fallback == "data"

    @model_validator(mode="after")
    def _check(self) -> FactorSpec:
        forms = [self.column is not None, self.count_of is not None, self.expr is not None]
        if self.fallback is not None and self.source != "experts":
            raise ValueError("'fallback' goes with 'source: experts'")
        if not self.from_data:
            if any(forms):
                raise ValueError(
                    "an expert-rated factor takes no column/count_of/expr unless 'fallback: data'"
                )
            return self
        if sum(forms) != 1:
            raise ValueError(
                "give exactly one of 'column' (optionally with 'map'), 'count_of' or 'expr'"
            )
        if self.map is not None and self.column is None:
            raise ValueError("'map' goes with 'column'")
        if self.expr is not None:
            parse_expression(self.expr)  # a ValueError naming what is not allowed
        return self


class _Node(_Strict):
    comparison: list[list[Judgement]] | None = Field(
        default=None,
        description="AHP pairwise-comparison matrix over the children, in their order.",
    )
    weights: list[float] | None = Field(
        default=None, description="Direct weights instead of a matrix."
    )

    def _check_weights(self, n_children: int, where: str) -> None:
        if self.comparison is not None and self.weights is not None:
            raise ValueError(f"{where}: give 'comparison' or 'weights', not both")
        given = self.comparison if self.comparison is not None else self.weights
        if given is None:
            if n_children > 1:
                raise ValueError(f"{where}: {n_children} children need 'comparison' or 'weights'")
            return
        if len(given) != n_children:
            raise ValueError(f"{where}: {len(given)} rows of weights for {n_children} children")


class IndicatorSpec(_Node):
    """A sub-indicator: its factors with their directions."""

    factors: dict[str, Literal["benefit", "cost"]]

    @model_validator(mode="after")
    def _check(self) -> IndicatorSpec:
        self._check_weights(len(self.factors), "indicator")
        return self


class DimensionSpec(_Node):
    """A value dimension: its sub-indicators."""

    indicators: dict[str, IndicatorSpec]

    @model_validator(mode="after")
    def _check(self) -> DimensionSpec:
        self._check_weights(len(self.indicators), "dimension")
        return self


class TreeSpec(_Strict):
    """The indicator tree of the three dimensions."""

    current_value: DimensionSpec
    potential_value: DimensionSpec
    relative_advantage: DimensionSpec

    def dimensions(self) -> dict[str, DimensionSpec]:
        """The three dimensions in score order (CV, PV, RA)."""
        return {name: getattr(self, name) for name in DIMENSIONS}

    def factor_names(self) -> list[str]:
        """Every factor the tree uses, in first-use order, without repeats."""
        names: dict[str, None] = {}
        for dim in self.dimensions().values():
            for ind in dim.indicators.values():
                names.update(dict.fromkeys(ind.factors))
        return list(names)


class SegmentationSpec(_Strict):
    """How scores become segments."""

    threshold: float = Field(default=5.0, ge=1.0, le=9.0)
    operator: Literal["weighted_average", "zadeh"] = "weighted_average"
    normalization: Literal["quantile", "minmax"] = "quantile"


class ClvSpec(_Strict):
    """Customer lifetime value: a deterministic model over factors, or BG/NBD for logs."""

    method: Literal["revenue", "profit", "bgnbd", "spend_share", "survival"]
    yearly_revenue: str | None = None
    yearly_cost: str | None = None
    years: int = Field(default=5, ge=1)
    discount_rate: float = Field(default=0.09, ge=0.0)
    spend_share: SpendShareSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> ClvSpec:
        if (self.method == "spend_share") != (self.spend_share is not None):
            raise ValueError(
                "clv method 'spend_share' goes with a 'spend_share' block (and only it)"
            )
        if self.method in ("revenue", "profit") and self.yearly_revenue is None:
            raise ValueError(f"clv method {self.method!r} needs 'yearly_revenue' (a factor name)")
        if self.method == "profit" and self.yearly_cost is None:
            raise ValueError("clv method 'profit' needs 'yearly_cost' (a factor name)")
        return self


class LifecycleSpec(_Strict):
    """Lifecycle stage from a tenure factor and a spend-trend factor."""

    tenure: str
    trend: str
    new_below: float
    growth_above: float = 0.05
    decline_below: float = -0.05


# --- customer lifetimes: BTYD for logs, survival for tables (docs/lifetimes.md) ---------------


class BgNbdSpec(_Strict):
    """BTYD purchase model + Gamma-Gamma settings for transaction logs (features.btyd)."""

    model: Literal["bgnbd", "mbgnbd", "pareto_nbd"] = Field(
        default="bgnbd", description="BG/NBD, Modified BG/NBD or Pareto/NBD."
    )
    method: Literal["map", "advi", "mcmc"] = Field(
        default="map", description="MAP (Laplace intervals) or the library's posterior draws."
    )
    horizon_days: int = Field(default=273, gt=0)
    time_unit_days: Literal[1, 7, 30] = 7
    clv_months: int = Field(default=12, ge=1)
    monthly_discount_rate: float = Field(default=0.01, gt=-1)
    interval: float = Field(default=0.9, gt=0, lt=1, description="Coverage of clv_low..clv_high.")
    n_draws: int = Field(default=100, ge=2, description="Parameter draws behind the interval.")
    fit_options: dict[str, int] = Field(
        default_factory=dict, description="advi/mcmc: n (ADVI iterations), draws, tune, chains."
    )


class LifetimeSpec(_Strict):
    """Survival settings for customer tables with a tenure and a churn label (features.survival).

    ``covariates`` are factor names; factors computed from the tenure itself
    (e.g. total charges) leak the duration and should not be listed.
    """

    tenure: str = Field(description="Tenure column (months as a customer so far).")
    churn: str = Field(description="Churn label column (the input's label_column).")
    covariates: list[str] = Field(min_length=1, description="Factors the survival model uses.")
    categories: list[str] = Field(
        default_factory=list, description="Category columns the model uses, one-hot encoded."
    )
    monthly_revenue: str = Field(description="Factor with the monthly margin m_t for CLV.")
    model: Literal["cox", "gradient_boosting"] = Field(
        default="cox", description="Cox PH or gradient-boosted Cox; both on a Weibull baseline."
    )
    horizon_months: int = Field(
        default=60, ge=12, description="Cap of expected_remaining_months and of survival CLV."
    )


class NetworkSpec(_Strict):
    """Network settings outside tuning: whether the survival outputs are inputs (docs/lifetimes.md).

    ``auto`` trains the default network with and without them and keeps the
    one with the better validation churn ROC-AUC; ``always``/``never`` fix it.
    """

    lifetime_inputs: Literal["auto", "always", "never"] = "auto"


# --- end of customer lifetimes ---------------------------------------------------------------


# --- forecasting (transaction logs): horizon and rolling snapshots -------------------------


class ForecastSpec(_Strict):
    """Forward labels and training snapshots for transaction logs (docs/forecasting.md).

    ``horizon_days``: labels come from ``(t, t + horizon_days]`` for a customer
    seen as of ``t``; default the input's holdout window (``holdout_end - as_of``).
    ``snapshot_months``: months between training snapshots (month ends, back from
    the last date that still has a full horizon); ``first_snapshot``: the
    earliest one (default: one month after the window start).
    """

    horizon_days: int | None = Field(default=None, gt=0)
    snapshot_months: int = Field(default=1, ge=1)
    first_snapshot: dt.date | None = None


# --- end forecasting -----------------------------------------------------------------------


class DatasetConfig(_Strict):
    """A whole dataset configuration (one YAML file)."""

    name: str
    description: str = ""
    data: str | None = Field(
        default=None, description="Default input file, relative to the config file."
    )
    input: InputSpec
    factors: dict[str, FactorSpec]
    tree: TreeSpec
    segmentation: SegmentationSpec = SegmentationSpec()
    clv: ClvSpec | None = None
    lifecycle: LifecycleSpec | None = None
    bgnbd: BgNbdSpec | None = None
    experts: ExpertPanelSpec | None = None
    loyalty: LoyaltySpec | None = None
    forecast: ForecastSpec = ForecastSpec()
    lifetime: LifetimeSpec | None = None
    network: NetworkSpec = NetworkSpec()

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        undefined = [f for f in self.tree.factor_names() if f not in self.factors]
        if undefined:
            raise ValueError(f"the tree uses factors not defined under 'factors': {undefined}")
        refs = []
        if self.clv is not None:
            refs += [self.clv.yearly_revenue, self.clv.yearly_cost]
        if self.lifecycle is not None:
            refs += [self.lifecycle.tenure, self.lifecycle.trend]
        if self.lifetime is not None:
            self._check_lifetime(self.lifetime)
        unknown = [r for r in refs if r is not None and r not in self.factors]
        if unknown:
            raise ValueError(f"clv/lifecycle refer to undefined factors: {unknown}")
        if (
            self.clv is not None
            and self.clv.method == "bgnbd"
            and self.input.shape != "transaction_log"
        ):
            raise ValueError("clv method 'bgnbd' needs a transaction log input")
        if self.clv is not None and self.clv.method == "survival" and self.lifetime is None:
            raise ValueError("clv method 'survival' needs a 'lifetime' block (docs/lifetimes.md)")
        self._check_category_maps()
        _check_cube_settings(self)
        return self

    def _check_lifetime(self, spec: LifetimeSpec) -> None:
        """A survival model needs a customer table whose columns and factors exist."""
        if self.input.shape != "customer_table":
            raise ValueError("'lifetime' is for customer tables (logs use 'bgnbd')")
        unknown = [c for c in (spec.tenure, spec.churn) if c not in self.input.columns]
        if unknown:
            raise ValueError(f"lifetime: columns {unknown} are not declared under 'input.columns'")
        not_categories = [
            c
            for c in spec.categories
            if c not in self.input.columns or self.input.columns[c].type != "category"
        ]
        if not_categories:
            raise ValueError(f"lifetime.categories {not_categories} are not category columns")
        if spec.churn != self.input.label_column:
            raise ValueError(f"lifetime.churn {spec.churn!r} must be the input's label_column")
        factors = [*spec.covariates, spec.monthly_revenue]
        undefined = [f for f in factors if f not in self.factors]
        if undefined:
            raise ValueError(f"lifetime refers to undefined factors: {undefined}")

    def _check_category_maps(self) -> None:
        """A factor's ``map`` over a declared category column must cover exactly its values.

        An unmapped category would make the factor NaN for every such customer
        (all of them unscorable); a key that is not a declared value is a typo.
        """
        for name, factor in self.factors.items():
            if factor.map is None or factor.column not in self.input.columns:
                continue
            column = self.input.columns[factor.column]
            if column.type != "category":
                continue
            unmapped = [v for v in column.values or [] if v not in factor.map]
            unknown = [k for k in factor.map if k not in (column.values or [])]
            if unmapped or unknown:
                problems = []
                if unmapped:
                    problems.append(f"no number for categories {unmapped}")
                if unknown:
                    problems.append(f"keys {unknown} are not values of the column")
                raise ValueError(
                    f"factors.{name}.map: {'; '.join(problems)} (column {factor.column!r} "
                    f"declares {column.values})"
                )


# --- expert panels, loyalty types and the spend-share CLV (the value cube's own settings) ---

STANDINGS = ("high", "fairly_high", "ordinary")


class ExpertPanelSpec(_Strict):
    """Where the expert ratings and the panel are (docs/cube.md, "Expert panels").

    ``ratings``: a CSV of ``customer_id, factor, expert, grade``; ``panel``: a
    CSV of ``expert, standing``; both relative to the config file. Each
    standing's authority weight W_k can be overridden.
    """

    ratings: str
    panel: str
    authority: dict[Literal["high", "fairly_high", "ordinary"], float] = Field(
        default_factory=lambda: {"high": 1.2, "fairly_high": 1.1, "ordinary": 1.0}
    )

    @model_validator(mode="after")
    def _check(self) -> ExpertPanelSpec:
        bad = {k: v for k, v in self.authority.items() if not v > 0}
        if bad:
            raise ValueError(f"authority weights must be positive, got {bad}")
        return self


class LoyaltySpec(_Strict):
    """Loyalty type from attachment × repeat purchase (docs/cube.md, "Loyalty types").

    Both are factor names, more meaning more; a customer is high on one when
    the factor is above its threshold (default: the median of the customers
    the cube is fitted on, frozen with the cube).
    """

    attachment: str
    repeat_purchase: str
    attachment_above: float | None = None
    repeat_purchase_above: float | None = None


class SpendShareSpec(_Strict):
    """Inputs of the spend-share (brand-switching) CLV: CLV = Σ_t S_t·F·R / (1+r)^t for our brand.

    ``shares``: one factor per brand, in the order of ``switching`` (each
    customer's current share of spend per brand, summing to 1); ``ours``: the
    index of our brand; ``frequency``/``revenue``: factors giving purchases per
    period and revenue per purchase.
    """

    switching: list[list[float]]
    shares: list[str]
    ours: int = Field(default=0, ge=0)
    frequency: str
    revenue: str
    periods: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _check(self) -> SpendShareSpec:
        n = len(self.shares)
        if len(self.switching) != n or any(len(row) != n for row in self.switching):
            raise ValueError(f"switching must be {n} × {n}, one row and column per share factor")
        if self.ours >= n:
            raise ValueError(f"ours = {self.ours} but there are {n} brands")
        return self

    def factor_refs(self) -> list[str]:
        """The factors the spend-share CLV reads."""
        return [*self.shares, self.frequency, self.revenue]


def _check_cube_settings(config: DatasetConfig) -> None:
    """Expert factors need a panel and one direction; loyalty/spend-share name defined factors."""
    experts = [n for n, f in config.factors.items() if f.source == "experts"]
    if experts and config.experts is None:
        raise ValueError(
            f"factors {experts} have 'source: experts' but the config has no 'experts'"
        )
    directions: dict[str, set[str]] = {}
    for dim in config.tree.dimensions().values():
        for ind in dim.indicators.values():
            for name, direction in ind.factors.items():
                directions.setdefault(name, set()).add(direction)
    mixed = [n for n in experts if len(directions.get(n, ())) > 1]
    if mixed:
        raise ValueError(f"expert-rated factors {mixed} are used as both benefit and cost")
    refs = []
    if config.loyalty is not None:
        refs += [config.loyalty.attachment, config.loyalty.repeat_purchase]
    if config.clv is not None and config.clv.spend_share is not None:
        refs += config.clv.spend_share.factor_refs()
    unknown = [r for r in refs if r not in config.factors]
    if unknown:
        raise ValueError(f"loyalty/clv.spend_share refer to undefined factors: {unknown}")
    not_data = [r for r in refs if not config.factors[r].from_data]
    if not_data:
        raise ValueError(f"loyalty/clv.spend_share need factors from data, not {not_data}")


def with_posterior(config: DatasetConfig, method: str | None) -> DatasetConfig:
    """``config`` with the BTYD estimation method set to ``method`` (``None``: unchanged).

    Only transaction logs fit BTYD; for other inputs a method is an error.
    """
    if method is None:
        return config
    clv_btyd = config.clv is not None and config.clv.method == "bgnbd"
    if config.bgnbd is None and not clv_btyd:
        raise ValueError(
            f"--posterior {method}: config {config.name!r} fits no BTYD model "
            "(a transaction log with a 'bgnbd' block or clv method 'bgnbd' does)"
        )
    spec = (config.bgnbd or BgNbdSpec()).model_copy(update={"method": method})
    return config.model_copy(update={"bgnbd": spec})


def load_config(path: str | Path) -> DatasetConfig:
    """Read and validate a dataset configuration file.

    Raises
    ------
    ConfigError
        When the file is missing, is not YAML, or does not fit the schema; the
        message names the file and the offending key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        config = DatasetConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: invalid configuration:\n{problems}") from exc
    if config.data is not None:
        config = config.model_copy(update={"data": str((path.parent / config.data).resolve())})
    if config.experts is not None:  # the panel files, like 'data', are relative to the config
        files = {
            k: str((path.parent / getattr(config.experts, k)).resolve())
            for k in ("ratings", "panel")
        }
        config = config.model_copy(update={"experts": config.experts.model_copy(update=files)})
    return config
