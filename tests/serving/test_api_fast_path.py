"""The API's scoring path and the fast model load give the batch path's results.

* :meth:`Scorer.score` (request records → response fields, built from
  :class:`~valuecube.features.columns.Columns` without a frame) equals the
  batch (DataFrame) path — the packaged model's ``predict`` on the raw rows
  plus the batch output rows — on 3,000 synthetic Telco customers with
  reasons and levers, every output field to 1e-12, and rejects the same
  customers;
* :func:`load_model` reads a local SQLite registry and the model's pickle
  without MLflow, and scores without importing torch, with the same numbers as
  the MLflow pyfunc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from valuecube.serving.loading import load_model, registry_lookup
from valuecube.serving.output import output_rows
from valuecube.serving.scorer import Scorer

from .helpers import ROOT, TELCO_URI, customers_json, telco_rows

BAD = {  # row → (column, value) the config's rules refuse, in the batch's raw text
    3: ("gender", "Robot"),
    10: ("tenure", "-4"),
    50: ("seniorcitizen", "2"),
    777: ("monthlycharges", "-1.5"),
    1999: ("contract", "Forever"),
}


@pytest.fixture(scope="module")
def loaded(telco_model):
    return load_model(TELCO_URI)


def test_api_scorer_equals_the_batch_path_and_rejects_the_same_rows(loaded):
    rows = telco_rows(3000, seed=13)
    bad_rows = rows.copy()
    for i, (column, value) in BAD.items():
        bad_rows.loc[i, column] = value
    model = loaded.model

    from valuecube.features.inputs import LINE, validate

    validated = validate(bad_rows, model.config.input, source="rows")
    batch_rejected = sorted(validated.rejects[LINE].to_numpy() - 2)  # line = position + 2
    records = customers_json(bad_rows)
    for i, (column, value) in BAD.items():  # JSON types: numbers stay numbers
        records[i][column] = value if column in ("gender", "contract") else float(value)
    scorer = Scorer(loaded, max_customers=5000, reasons=3)
    with pytest.raises(ValidationError) as refused:
        scorer.adapter.validate_json(json.dumps(records))
    api_rejected = sorted({e["loc"][0] for e in refused.value.errors()})
    assert batch_rejected == api_rejected == sorted(BAD)

    good = [i for i in range(len(rows)) if i not in BAD]
    customers = scorer.adapter.validate_json(json.dumps([records[i] for i in good]))
    answers, unscorable = scorer.score(customers, levers=True)
    assert unscorable == {}
    api = pd.DataFrame(answers)

    predictions = model.predict(rows.iloc[good].reset_index(drop=True), reasons=3, levers=True)
    now = pd.Timestamp("2026-01-01", tz="UTC")
    batch = output_rows(predictions, loaded.name, loaded.version, now)
    assert "churn_reasons" in batch.columns and "lever_factor" in batch.columns
    assert list(api.columns) == list(batch.columns)
    assert api["customer_id"].tolist() == rows["customerid"].iloc[good].tolist()
    assert api["customer_id"].tolist() == batch["customer_id"].astype(str).tolist()
    for column in batch.columns:
        if column == "scored_at":
            continue
        if column.endswith("_reasons"):
            _assert_same_reasons(api[column].tolist(), batch[column].tolist())
        elif pd.api.types.is_float_dtype(batch[column].dtype):
            np.testing.assert_allclose(
                api[column].to_numpy(float),
                batch[column].to_numpy(float),
                rtol=0,
                atol=1e-12,
                err_msg=column,
            )
        else:
            assert api[column].astype(str).tolist() == batch[column].astype(str).tolist(), column
    assert (api["model_version"] == loaded.version).all()


def _assert_same_reasons(api: list, batch: list) -> None:
    """Per customer the same reasons: factors and text values equal, numbers to 1e-12."""
    assert len(api) == len(batch)
    for mine, theirs in zip(api, batch, strict=True):
        assert [r["factor"] for r in mine] == [r["factor"] for r in theirs]
        for a, b in zip(mine, theirs, strict=True):
            assert abs(a["effect"] - b["effect"]) <= 1e-12
            if isinstance(b["value"], float):
                assert (b["value"] != b["value"] and a["value"] is None) or (
                    abs(a["value"] - b["value"]) <= 1e-12
                )
            else:
                assert a["value"] == b["value"]


def test_fast_load_needs_neither_mlflow_nor_torch_and_matches_the_pyfunc(loaded, telco_pyfunc):
    name, version, folder = registry_lookup(TELCO_URI)
    assert (name, version) == (loaded.name, loaded.version)
    assert (folder / "python_model.pkl").is_file()
    rows = telco_rows(300, seed=5)
    expected = telco_pyfunc.predict(rows)
    pd.testing.assert_frame_equal(loaded.model.predict(rows), expected, check_exact=True)

    script = (
        "import sys\n"
        "from valuecube.serving.loading import load_model\n"
        "import pandas as pd\n"
        f"rows = pd.read_csv({str(ROOT / 'data' / 'telco_churn.csv')!r}, dtype=str,\n"
        "                   keep_default_na=False, nrows=5).drop(columns='churn')\n"
        f"scores = load_model({TELCO_URI!r}).model.predict(rows)\n"
        "print(sorted(m for m in ('torch', 'mlflow', 'captum') if m in sys.modules))\n"
        "print(scores['churn_probability'].round(12).tolist())\n"
        f"explained = load_model({TELCO_URI!r}).model.predict(rows, reasons=3)\n"
        "assert explained['churn_reasons'].map(len).min() > 0\n"
        "print(sorted(m for m in ('captum', 'matplotlib') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported, probabilities, imported_for_reasons = done.stdout.strip().splitlines()
    assert imported == "[]"
    assert imported_for_reasons == "[]"  # reasons need torch, not Captum (nor matplotlib)
    five = pd.read_csv(ROOT / "data" / "telco_churn.csv", dtype=str, keep_default_na=False, nrows=5)
    reference = telco_pyfunc.predict(five.drop(columns="churn"))["churn_probability"]
    assert json.loads(probabilities) == reference.round(12).tolist()


def test_api_answers_with_reasons_are_valid_json(loaded):
    """Every answer with reasons encodes as strict JSON (a missing reason value is null)."""
    scorer = Scorer(loaded, max_customers=1000, reasons=3)
    customers = scorer.adapter.validate_json(json.dumps(customers_json(telco_rows(400, seed=2))))
    answers, unscorable = scorer.score(customers)
    assert unscorable == {} and len(answers) == 400
    json.dumps(answers, allow_nan=False)
    reasons = [r for answer in answers for r in answer["churn_reasons"]]
    assert len(reasons) >= 400
    assert all(r["value"] is None or r["value"] == r["value"] for r in reasons)
