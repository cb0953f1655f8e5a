"""The request record built from the config accepts and refuses what the batch validator does."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import TELCO_CONFIG, TELCO_CSV
from pydantic import TypeAdapter, ValidationError

from valuecube.features.config import load_config
from valuecube.features.inputs import LINE, validate
from valuecube.features.record_schema import customer_record

CONFIG = load_config(TELCO_CONFIG)
RECORD = TypeAdapter(list[customer_record(CONFIG.input, name=CONFIG.name)])
ROW = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False, nrows=1).drop(columns="churn")

# column, the value as a JSON body would carry it, the same value as a CSV cell, valid?
CASES = [
    ("tenure", 5, "5", True),
    ("tenure", "5", "5", True),
    ("tenure", 3.0, "3.0", True),
    ("tenure", 3.5, "3.5", False),
    ("tenure", -1, "-1", False),
    ("tenure", "abc", "abc", False),
    ("seniorcitizen", 2, "2", False),
    ("contract", " One year ", " One year ", True),
    ("contract", "Weekly", "Weekly", False),
    ("gender", "", "", False),
    ("gender", None, "", False),
    ("totalcharges", None, "", True),
    ("totalcharges", "", " ", True),
    ("totalcharges", -2.5, "-2.5", False),
    ("monthlycharges", "inf", "inf", False),
    ("customerid", "  ", "  ", False),
]


@pytest.mark.parametrize(("column", "value", "cell", "valid"), CASES)
def test_record_and_batch_validator_agree(column: str, value, cell: str, valid: bool) -> None:
    raw = ROW.copy()
    raw.loc[0, column] = cell
    raw.index = pd.RangeIndex(2, 3, name=LINE)
    batch_ok = len(validate(raw, CONFIG.input, source="case").rejects) == 0
    record = json.loads(ROW.to_json(orient="records"))[0]
    record[column] = value
    try:
        RECORD.validate_json(json.dumps([record]))
        record_ok = True
    except ValidationError:
        record_ok = False
    assert (batch_ok, record_ok) == (valid, valid)


def test_a_number_beyond_float64_is_refused() -> None:
    record = json.loads(ROW.to_json(orient="records"))[0]
    body = json.dumps([{**record, "tenure": 7}]).replace('"tenure": 7', '"tenure": 1' + "0" * 400)
    with pytest.raises(ValidationError, match="too large"):
        RECORD.validate_json(body)


def test_unknown_keys_are_errors_and_the_label_is_optional() -> None:
    record = json.loads(ROW.to_json(orient="records"))[0]
    with pytest.raises(ValidationError, match="Extra inputs"):
        RECORD.validate_python([{**record, "tenur": 3}])
    assert RECORD.validate_python([{**record, "churn": "Yes"}])[0]["churn"] == "Yes"
