"""churn_reasons through the real CLI (`score --reasons 2`) and the real API server (default 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd

from .helpers import API_TOKEN, ROOT, customers_json, telco_rows

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def _assert_reasons(reasons: list[dict], n: int) -> None:
    assert reasons and len(reasons) <= 2 * n
    assert all(set(r) == {"factor", "value", "effect"} for r in reasons)
    up = [r["effect"] for r in reasons if r["effect"] > 0]
    down = [r["effect"] for r in reasons if r["effect"] < 0]
    assert len(up) <= n and len(down) <= n and len(up) + len(down) == len(reasons)
    assert up == sorted(up, reverse=True) and down == sorted(down)
    names = [r["factor"] for r in reasons]
    assert len(set(names)) == len(names) and "tenure" not in names  # copies reported once


def test_cli_score_reasons_2_writes_a_json_column(telco_uri: str, tmp_path: Path) -> None:
    rows = telco_rows(30, seed=5)
    path, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    rows.to_csv(path, index=False)
    cmd = [sys.executable, "-m", "valuecube", "score", "-m", telco_uri, "-i", str(path)]
    done = subprocess.run(
        [*cmd, "-o", str(out), "--reasons", "2"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    scores = pd.read_parquet(out)
    assert len(scores) == 30 and scores.columns[-1] == "churn_reasons"
    for text in scores["churn_reasons"]:
        _assert_reasons(json.loads(text), 2)


def test_api_results_carry_reasons(api_server: str) -> None:
    rows = telco_rows(5, seed=12)
    with httpx.Client(base_url=api_server, timeout=60) as client:
        response = client.post("/v1/score", json=customers_json(rows), headers=AUTH)
    assert response.status_code == 200
    for result in response.json():
        _assert_reasons(result["churn_reasons"], 3)
