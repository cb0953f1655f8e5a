"""One customer record as a pydantic type, built from a dataset config's column specs.

The HTTP API validates request bodies with it and documents them with its
JSON schema; the rules are the batch validator's
(:func:`valuecube.features.inputs.validate`), stated for JSON values:

* text (strings, categories, dates) is stripped of surrounding spaces, as a
  CSV cell is; a category must then be one of the declared ``values``;
* numbers must be finite and inside ``min``/``max``; an ``int`` column takes
  whole numbers only (``3.0`` is ``3``, ``3.5`` is an error) that fit a
  float64, the type the model computes in;
* a blank value (``null``, ``""`` or an absent key) takes the column's
  ``missing`` value when it has one, and is an error otherwise; a column
  with ``required: false`` and a customer table's label column may be
  absent; unknown keys are errors (a misspelt optional column would
  otherwise go unnoticed).

A transaction-log model scores per-customer features: its record is
``customer_id`` plus those features, all required finite numbers.

The record is a ``TypedDict`` with pydantic's config, so validated records
are plain dicts: no model objects to build per customer on the request path.
"""

from __future__ import annotations

import math
from typing import (  # pydantic needs typing_extensions' TypedDict on Python < 3.12
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
)

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from valuecube.features.config import ColumnSpec, InputSpec
from valuecube.features.customers import CUSTOMER_ID


def _strip(value: Any) -> Any:
    """Text stripped of surrounding spaces, a blank one as ``None`` (a blank cell)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _fits_float64(value: int) -> int:
    """Refuse a whole number the model cannot compute with (beyond float64's range)."""
    try:
        if math.isfinite(float(value)):
            return value
    except OverflowError:
        pass
    raise ValueError("number too large (beyond the float64 range)")


def column_type(spec: ColumnSpec) -> Any:
    """The JSON value type of one column (without its optionality)."""
    if spec.type == "category":
        kind: Any = Literal[tuple(spec.values or [])]
    elif spec.type == "int":
        kind = Annotated[int, Field(ge=spec.min, le=spec.max), AfterValidator(_fits_float64)]
    elif spec.type == "float":
        kind = Annotated[float, Field(ge=spec.min, le=spec.max, allow_inf_nan=False)]
    else:  # string, date (parsed with the config's format when the table is built)
        kind = Annotated[str, Field(min_length=1)]
    return kind


def customer_record(
    spec: InputSpec, *, name: str, customer_columns: list[str] | None = None
) -> type:
    """The record type of one customer in the model's input shape (see the module docstring).

    Parameters
    ----------
    spec
        The dataset config's ``input`` section.
    name
        The dataset name; the type is called ``<Name>Customer`` (its OpenAPI title).
    customer_columns
        For a transaction-log model, the per-customer features it scores.
    """
    keys: dict[str, Any] = {}
    if spec.shape == "customer_table":
        for column, col in spec.columns.items():
            kind = Annotated[column_type(col) | None, BeforeValidator(_strip)]
            if column == spec.label_column or col.missing is not None or not col.required:
                keys[column] = NotRequired[kind]
            else:
                keys[column] = Required[Annotated[column_type(col), BeforeValidator(_strip)]]
    else:
        keys[CUSTOMER_ID] = Required[Annotated[str, Field(min_length=1), BeforeValidator(_strip)]]
        for column in customer_columns or []:
            keys[column] = Required[Annotated[float, Field(allow_inf_nan=False)]]
    record = TypedDict(f"{name.capitalize()}Customer", keys)  # type: ignore[misc]
    return with_config(ConfigDict(extra="forbid"))(record)
