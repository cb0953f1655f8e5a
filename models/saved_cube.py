"""The fitted value cube as a model of its own: saved once, applied to new customers.

:class:`ValueCubeModel` is an MLflow pyfunc holding a fitted
:class:`~valuecube.models.value_cube.ValueCube` — its config, the frozen
factor normalisation, the AHP weights and, for transaction logs, the fitted
BG/NBD model and the as-of date. Its input is the rows of a file that
``valuecube segment`` accepts (customer-table rows, or the transactions of
a log), with whatever dtypes ``pd.read_csv`` or ``pd.read_parquet`` give;
its output one row per customer (:data:`CUBE_PREDICTION_COLUMNS`).

The network's packaged model (:mod:`models.packaged`) embeds the same
:class:`ValueCube` object; :func:`cube_model` takes the cube out of either,
so segmenting with the network model and with the saved cube agree exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mlflow.pyfunc
import pandas as pd

from valuecube.features.config import DatasetConfig
from valuecube.features.customers import CUSTOMER_ID, CustomerTable, build_customer_table
from valuecube.features.inputs import REASON, InputError, ValidatedInput
from valuecube.models.packaged import ValueCubePyfunc, validate_strictly
from valuecube.models.value_cube import (
    CUBE_OUTPUT_COLUMNS,
    ValueCube,
    attach_expert_memberships,
    expert_factors,
)

CUBE_PREDICTION_COLUMNS = (CUSTOMER_ID, *CUBE_OUTPUT_COLUMNS)
KIND_TAG = "valuecube_kind"
"""Registry tag telling a registered cube (``cube``) from a network (``network``)."""


class ValueCubeModel(mlflow.pyfunc.PythonModel):
    """A fitted value cube that segments raw input rows without refitting.

    Parameters
    ----------
    cube : ValueCube
        Fitted on the reference customers.
    as_of : Timestamp or None
        Transaction logs: the date the reference customers were taken as of;
        new logs are aggregated as of the config's ``input.as_of`` when set,
        else this date, so a customer's features (and scores) do not depend
        on the last date of the file they arrive in.
    metadata : dict
        Facts about the fit (reference file, customers fitted on).
    panel : Series or None
        Configs with expert-rated factors: each expert's authority W_k, frozen
        at fit; the ratings are read from the config's ratings file or the
        one given to :meth:`customer_table`.
    """

    def __init__(
        self,
        cube: ValueCube,
        as_of: pd.Timestamp | None = None,
        metadata: dict[str, Any] | None = None,
        panel: pd.Series | None = None,
    ) -> None:
        self.cube = cube
        self.as_of = as_of
        self.metadata = dict(metadata or {})
        self.panel = panel

    @property
    def config(self) -> DatasetConfig:
        """The dataset config the cube was fitted with (it travels with the cube)."""
        return self.cube.config

    def customer_table(
        self, validated: ValidatedInput, ratings: str | None = None
    ) -> CustomerTable:
        """The per-customer table of validated input rows (labels kept, expert ratings joined)."""
        spec = self.config.input
        customers = build_customer_table(validated, spec, as_of=spec.as_of or self.as_of)
        return with_ratings(self.config, customers, self.panel, ratings)

    def segment(
        self, validated: ValidatedInput, ratings: str | None = None
    ) -> tuple[CustomerTable, pd.DataFrame, pd.DataFrame]:
        """(customers, scored, unscorable) of validated rows; see :meth:`ValueCube.segment`."""
        customers = self.customer_table(validated, ratings)
        scored, unscorable = self.cube.segment(customers.table)
        return customers, scored, unscorable

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Segment raw input rows; one row per customer, :data:`CUBE_PREDICTION_COLUMNS`.

        Raises
        ------
        InputError
            Naming the row (position in ``model_input``), column and value of
            a bad cell, or the customers whose factors cannot be computed.
        """
        validated = validate_strictly(pd.DataFrame(model_input), self.config.input)
        _, scored, unscorable = self.segment(validated)
        if len(unscorable):
            listed = "; ".join(f"{cid}: {why}" for cid, why in unscorable[REASON].head(10).items())
            raise InputError(f"{len(unscorable)} customer(s) cannot be segmented: {listed}")
        scored = scored.rename_axis(CUSTOMER_ID).reset_index()
        return scored[list(CUBE_PREDICTION_COLUMNS)]


def with_ratings(
    config: DatasetConfig,
    customers: CustomerTable,
    panel: pd.Series | None = None,
    ratings: str | None = None,
) -> CustomerTable:
    """``customers`` with the expert factors' memberships joined (as they are without)."""
    if not expert_factors(config):
        return customers
    table = attach_expert_memberships(config, customers.table, panel, ratings)
    return dataclasses.replace(customers, table=table)


def cube_model(python_model: object) -> ValueCubeModel:
    """The :class:`ValueCubeModel` of a loaded saved cube, or the cube inside a network model.

    Raises
    ------
    TypeError
        When the model is neither.
    """
    if isinstance(python_model, ValueCubeModel):
        return python_model
    if isinstance(python_model, ValueCubePyfunc):
        network = python_model.model
        return ValueCubeModel(network.cube, metadata={"from_network": network.metadata})
    raise TypeError(f"not a valuecube cube or network model (found {type(python_model).__name__})")
