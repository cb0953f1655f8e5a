"""The packaged model: frozen normalisation + fuzzy evaluator + BP network, raw rows in.

:class:`ChurnSegmentModel` is the in-memory model; :class:`ValueCubePyfunc`
wraps it as one MLflow pyfunc, so batch jobs, Spark and the HTTP API all
load the same thing by ``models:/NAME@alias``.

Input (one row per customer):

* customer tables — the config's input columns as in the raw file (the
  label column is optional and ignored);
* transaction logs — the per-customer table that
  :func:`features.customers.build_customer_table` builds as of a date.

Output columns: :attr:`ChurnSegmentModel.output_columns`, derived from the
model — :data:`PREDICTION_COLUMNS` (the cube's scores and segment, the
network's segment and churn probability), then

* :data:`FORECAST_COLUMNS` for a forecasting (transaction-log) model: the
  network's forecast over ``horizon_days`` after the as-of date (the segment
  then under the frozen cube, and the expected spend; ``churn_probability``
  is then churn within the horizon);
* the cube's lifetime columns when its cube produces them:
  :data:`BTYD_COLUMNS` (logs: BTYD purchases, P(alive), CLV and its 90 %
  interval) or :data:`features.survival.SURVIVAL_COLUMNS` (customer tables
  with a ``lifetime:`` block).

A customer-table model (no dates, no horizon) has no forecast columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from valuecube.features.btyd import OUTPUT_COLUMNS as BTYD_OUTPUTS
from valuecube.features.columns import Table, floats
from valuecube.features.config import DatasetConfig, InputSpec
from valuecube.features.customers import CUSTOMER_ID, build_customer_table
from valuecube.features.factors import computable, split_computable
from valuecube.features.inputs import LINE, REASON, InputError, ValidatedInput, validate
from valuecube.features.survival import SURVIVAL_COLUMNS, lifetime_design
from valuecube.models.design import NetworkDesign
from valuecube.models.fuzzy import SCORE_COLUMNS
from valuecube.models.network import BPNetworkClassifier
from valuecube.models.segments import assign_segments
from valuecube.models.value_cube import ValueCube

PREDICTION_COLUMNS = (
    CUSTOMER_ID,
    "cv_score",
    "pv_score",
    "ra_score",
    "segment",
    "segment_model",
    "churn_probability",
)
FORECAST_COLUMNS = ("segment_next", "expected_spend", "horizon_days")
MODEL_OUTPUT_COLUMNS = (*PREDICTION_COLUMNS, *FORECAST_COLUMNS)
"""A forecasting model's columns before its lifetime columns."""
BTYD_COLUMNS = ("expected_purchases", "p_alive", "clv", "clv_low", "clv_high")
"""The BTYD outputs of a log model's cube (:mod:`features.btyd`; its per-purchase spend is not
output: ``expected_spend`` is the network's forecast)."""
TEXT_OUTPUT_COLUMNS = (CUSTOMER_ID, "segment", "segment_model", "segment_next")
"""Output columns holding text; every other output column is a float."""
PSI_BINS = 10

if TYPE_CHECKING:  # MLflow loads only where a pyfunc is built or loaded through it
    import mlflow.pyfunc
    from mlflow.types.schema import Schema


def __getattr__(name: str) -> Any:
    """``ValueCubePyfunc`` (:mod:`models.pyfunc`), imported on first use with MLflow.

    Models logged before it moved pickle it under this module's name.
    """
    if name == "ValueCubePyfunc":
        from valuecube.models.pyfunc import ValueCubePyfunc

        return ValueCubePyfunc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def input_schema(columns: list[str]) -> Schema:
    """An MLflow input schema of optional columns of any type.

    MLflow's own enforcement would refuse what ``pd.read_csv`` gives for a
    valid file (int64 where a float is declared, ``object`` for a numeric
    column with blank cells) with a dump of the schema; the model validates
    its input itself (the config's column rules, as the CLI does) and names
    the row, the column and the value of a bad cell.
    """
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return Schema([ColSpec(AnyType(), name, required=False) for name in columns])


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = Σ (a − e)·ln(a / e) over bins of two distributions (shares; empty bins floored)."""
    e = np.clip(np.asarray(expected, dtype=float), 1e-4, None)
    a = np.clip(np.asarray(actual, dtype=float), 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def validate_strictly(rows: pd.DataFrame, spec: InputSpec) -> ValidatedInput:
    """Validate raw rows of any dtypes (as ``pd.read_csv`` gives them) against the config.

    Raises
    ------
    InputError
        Naming each invalid row (by position in ``rows``), its column and value.
    """
    validated = validate(pd.DataFrame(rows).reset_index(drop=True), spec, source="input rows")
    if len(validated.rejects):
        listed = "; ".join(
            f"row {line - 2}: {reason}"
            for line, reason in validated.rejects[[LINE, REASON]].head(10).itertuples(index=False)
        )
        raise InputError(f"{len(validated.rejects)} invalid input row(s): {listed}")
    return validated


class ChurnSegmentModel:
    """Everything needed to score raw customer rows, fitted once.

    Parameters
    ----------
    config : DatasetConfig
    cube : ValueCube
        Fitted fuzzy value cube (frozen normalisation, AHP weights, BG/NBD).
    design : NetworkDesign
        Fitted input-matrix builder.
    network : BPNetworkClassifier
        Fitted two-head network.
    reference : dict
        Per tree factor, the training distribution over ``PSI_BINS`` bins of the
        normalised value (for drift checks).
    metadata : dict
        Free-form facts about the training (dataset, metrics, …).
    """

    def __init__(
        self,
        config: DatasetConfig,
        cube: ValueCube,
        design: NetworkDesign,
        network: BPNetworkClassifier,
        reference: dict[str, list[float]],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.cube = cube
        self.design = design
        self.network = network
        self.reference = reference
        self.metadata = dict(metadata or {})

    @staticmethod
    def reference_distribution(cube: ValueCube, customers: pd.DataFrame) -> dict[str, list[float]]:
        """Training distribution of each normalised tree factor over equal-width bins of [0, 1]."""
        u = cube.fuzzy_.normalize(cube.factors(customers))
        return {name: _bin_shares(u[name].to_numpy()).tolist() for name in u.columns}

    def drift(self, customers: pd.DataFrame) -> pd.Series:
        """PSI of each tree factor between the training data and these customers."""
        u = self.cube.fuzzy_.normalize(self.cube.factors(customers))
        return pd.Series(
            {
                name: population_stability_index(
                    self.reference[name], _bin_shares(u[name].to_numpy())
                )
                for name in u.columns
            },
            name="psi",
        )

    @property
    def input_columns(self) -> list[str]:
        """The columns a caller sends (customer tables: the config's columns, no label)."""
        spec = self.config.input
        if spec.shape == "customer_table":
            return [c for c in spec.columns if c != spec.label_column]
        return [CUSTOMER_ID, *self.metadata["customer_columns"]]

    def customers(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Validate raw rows strictly and build the per-customer table.

        Raises
        ------
        InputError
            Naming each invalid row (by position in ``rows``) and the problem.
        """
        spec = self.config.input
        if spec.shape == "customer_table":
            validated = validate_strictly(rows, spec)
            return build_customer_table(validated, spec, with_labels=False).table
        return self._log_customers(rows)

    def _log_customers(self, rows: pd.DataFrame) -> pd.DataFrame:
        needed = self.metadata["customer_columns"]
        missing = [c for c in [CUSTOMER_ID, *needed] if c not in rows.columns]
        if missing:
            raise InputError(
                f"missing column(s) {missing}; a transaction-log model takes the per-customer table"
            )
        table = rows.set_index(rows[CUSTOMER_ID].astype(str)).drop(columns=CUSTOMER_ID)
        values = table[needed].apply(pd.to_numeric, errors="coerce").astype("float64")
        bad = ~np.isfinite(values.to_numpy())
        if bad.any():
            where = [
                f"row {i}: "
                + ", ".join(
                    f"{needed[j]} = {_cell(table[needed[j]].iloc[i])}" for j in np.flatnonzero(b)
                )
                for i, b in zip(np.flatnonzero(bad.any(axis=1)), bad[bad.any(axis=1)], strict=True)
            ]
            raise InputError(
                f"NaN, inf or non-numeric values in {len(where)} row(s): {'; '.join(where[:10])}"
            )
        if table.index.duplicated().any():
            repeated = sorted(set(table.index[table.index.duplicated()]))[:10]
            raise InputError(f"duplicate {CUSTOMER_ID}: {repeated}")
        return values

    @property
    def forecasts(self) -> bool:
        """The network has the forecast heads (a transaction-log model with a horizon)."""
        return bool(getattr(self.network, "has_spend_head_", False))

    @property
    def horizon_days(self) -> float | None:
        """The forecast horizon in days (None for a model without one)."""
        return float(self.design.horizon_days) if self.forecasts else None

    @property
    def lifetime_columns(self) -> tuple[str, ...]:
        """The cube's BTYD or survival columns this model outputs (none if it has neither)."""
        if getattr(self.cube, "bgnbd_", None) is not None:
            return BTYD_COLUMNS
        return SURVIVAL_COLUMNS if getattr(self.cube, "survival_", None) is not None else ()

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The columns of :meth:`predict`, in order (see the module docstring)."""
        forecast = FORECAST_COLUMNS if self.forecasts else ()
        return (*PREDICTION_COLUMNS, *forecast, *self.lifetime_columns)

    def prepare(self, customers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(enriched, factors)``: the table with the cube's BTYD columns (logs), and its factors.

        One BTYD transform serves both the factors that refer to its outputs
        and the BTYD output columns (it is the costly step of scoring a log).
        """
        enriched = self.cube._enrich(customers)
        return enriched, self.cube._factors(enriched)

    def predict_customers(
        self,
        customers: pd.DataFrame,
        factors: pd.DataFrame | None = None,
        reasons: int = 0,
        levers: bool = False,
        reasons_as_text: bool = False,
    ) -> pd.DataFrame:
        """Score a validated per-customer table; one row per customer, :attr:`output_columns`.

        The same numbers as ``cube.segment`` (scores, segment, lifetime
        columns) and the network's ``predict``/``predict_churn_proba``,
        computing the factors and BTYD outputs once (or taking
        ``customers, factors = prepare(customers)`` from the caller) and running
        one forward pass: scoring is a hot path of batch jobs and the API.
        ``reasons`` > 0 appends ``churn_reasons`` (and ``spend_reasons``):
        per customer the top raising and lowering factors (:mod:`models.reasons`),
        as lists of ``{factor, value, effect}`` or, with ``reasons_as_text``, as
        their JSON text (files and Spark: no per-customer Python on that path);
        ``levers`` appends the rule's levers (:data:`models.levers.LEVER_COLUMNS`).
        """
        if len(customers) == 0:  # BG/NBD cannot transform zero customers
            return pd.DataFrame(
                {
                    c: pd.Series(dtype=object if c in TEXT_OUTPUT_COLUMNS else float)
                    for c in self.output_columns
                }
            )
        if factors is None:
            customers, factors = self.prepare(customers)
        columns = self.predict_columns(customers, factors, reasons, levers, reasons_as_text)
        return pd.DataFrame(columns)

    def predict_columns(
        self,
        customers: Table,
        factors: Table,
        reasons: int = 0,
        levers: bool = False,
        reasons_as_text: bool = False,
    ) -> dict[str, Any]:
        """:meth:`predict_customers`' columns as arrays, from frames or :class:`Columns`.

        ``customers, factors = prepare(customers)`` of at least one customer.
        The one implementation of scoring: a batch passes frames, the API
        passes :class:`~features.columns.Columns` of its few customers (no
        frame is built on that path). ``customer_id`` holds ``factors.index``.
        """
        if not computable(factors).all():
            _, problems = split_computable(factors)
            raise InputError(
                f"{len(problems)} customer(s) have non-computable factors, "
                f"e.g. {problems.index[0]}: {problems.iloc[0]}"
            )
        enriched = [c for c in BTYD_OUTPUTS if c in customers.columns]
        fuzzy = self.cube.fuzzy_
        u = fuzzy.normalize(factors)  # one normalisation serves the network input and the scores
        survival = self._survival(customers, factors)  # once: network input and output columns
        design_input = customers.drop(columns=enriched) if enriched else customers
        X = self.design.transform(design_input, factors, u, survival)  # enriches itself
        scores = fuzzy.score_normalized(u) if fuzzy.operator == "weighted_average" else None
        scores = fuzzy.transform(factors) if scores is None else scores
        columns: dict[str, Any] = {
            CUSTOMER_ID: factors.index,
            **dict(zip(SCORE_COLUMNS, scores.T, strict=True)),
            "segment": assign_segments(scores, self.cube.fuzzy_.threshold),
        }
        if self.forecasts:
            segment_model, churn_probability, spend = self.network.predict_forecast(X)
            forecast = {
                "segment_next": segment_model,
                "expected_spend": spend,
                "horizon_days": np.full(len(X), self.horizon_days),
            }
        else:
            segment_model, churn_probability = self.network.predict_with_churn(X)
            forecast = {}
        columns.update(segment_model=segment_model, churn_probability=churn_probability)
        columns.update(forecast)
        columns.update(self._lifetimes(customers, factors, survival))
        columns = {c: columns[c] for c in self.output_columns}
        if reasons > 0:
            from valuecube.models.reasons import reason_columns

            columns.update(
                reason_columns(self, X, customers, factors, reasons, as_text=reasons_as_text)
            )
        if levers:
            from valuecube.models.levers import lever_columns

            columns.update(lever_columns(self.cube.fuzzy_, factors))
        return columns

    def _survival(self, customers: Table, factors: Table) -> Table | None:
        """The cube's survival outputs (:data:`SURVIVAL_COLUMNS`), None without a survival model."""
        if getattr(self.cube, "survival_", None) is None:
            return None
        return self.cube.survival_.transform(lifetime_design(customers, factors, self.config))

    def _lifetimes(
        self,
        customers: Table,
        factors: Table,
        survival: Table | None = None,
    ) -> dict[str, np.ndarray]:
        """The cube's BTYD or survival outputs per customer (as ``cube.segment`` computes them)."""
        which = self.lifetime_columns
        if which == BTYD_COLUMNS:
            btyd = customers if set(which) <= set(customers.columns) else self.prepare(customers)[0]
            return {c: btyd[c].to_numpy(dtype=float) for c in which}
        if which == SURVIVAL_COLUMNS:
            survival = self._survival(customers, factors) if survival is None else survival
            return {c: floats(survival[c]) for c in which}
        return {}

    def predict(
        self,
        rows: pd.DataFrame,
        reasons: int = 0,
        levers: bool = False,
        reasons_as_text: bool = False,
    ) -> pd.DataFrame:
        """Validate raw rows and score them (see :meth:`predict_customers`)."""
        return self.predict_customers(
            self.customers(rows), reasons=reasons, levers=levers, reasons_as_text=reasons_as_text
        )


def _cell(value: object) -> str:
    """A cell as an error message shows it: text quoted, numbers plain."""
    return repr(value) if isinstance(value, str) else str(value)


def psi_bin_counts(u: np.ndarray) -> np.ndarray:
    """How many normalised values fall in each of :data:`PSI_BINS` equal-width bins of [0, 1]."""
    return np.bincount(
        np.minimum((np.clip(u, 0.0, 1.0) * PSI_BINS).astype(int), PSI_BINS - 1), minlength=PSI_BINS
    )


def _bin_shares(u: np.ndarray) -> np.ndarray:
    counts = psi_bin_counts(u)
    return counts / max(counts.sum(), 1)


def unwrap(pyfunc_model: mlflow.pyfunc.PyFuncModel) -> ChurnSegmentModel:
    """The :class:`ChurnSegmentModel` inside a loaded pyfunc model."""
    return pyfunc_model.unwrap_python_model().model
