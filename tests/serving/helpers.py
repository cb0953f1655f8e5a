"""Plain helpers and constants of the serving tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
TELCO_CSV = ROOT / "data" / "telco_churn.csv"
TELCO_URI = "models:/test-telco@challenger"
API_TOKEN = "test-token-123"
API_MAX_CUSTOMERS = 50
FLOATS = ["cv_score", "pv_score", "ra_score", "churn_probability"]


def telco_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` Telco customers as raw text (resampled real rows, new unique ids, no label)."""
    real = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False).drop(columns="churn")
    rows = real.iloc[np.random.default_rng(seed).integers(0, len(real), n)].reset_index(drop=True)
    rows["customerid"] = [f"S{seed}-{i:07d}" for i in range(n)]
    return rows


def assert_same_scores(a: pd.DataFrame, b: pd.DataFrame, atol: float = 1e-6) -> None:
    """Same customers with the same scores, segments and risk bands (matched by id)."""
    a, b = a.set_index("customer_id").sort_index(), b.set_index("customer_id").sort_index()
    assert a.index.tolist() == b.index.tolist()
    for col in ("segment", "segment_model"):
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    if "churn_risk" in a.columns and "churn_risk" in b.columns:
        assert a["churn_risk"].astype(str).tolist() == b["churn_risk"].astype(str).tolist()
    for col in FLOATS:
        np.testing.assert_allclose(
            a[col].to_numpy(float), b[col].to_numpy(float), atol=atol, rtol=0, err_msg=col
        )


def customers_json(rows: pd.DataFrame) -> list[dict]:
    """Raw Telco rows → the API's JSON (numbers as numbers, a blank totalcharges as null)."""
    out = rows.copy()
    for col in ("seniorcitizen", "tenure"):
        out[col] = out[col].astype(int)
    out["monthlycharges"] = out["monthlycharges"].astype(float)
    out["totalcharges"] = pd.to_numeric(out["totalcharges"].str.strip().replace("", None))
    return json.loads(out.to_json(orient="records"))
