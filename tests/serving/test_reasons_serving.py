"""Reasons and levers through the real CLI (`score`: reasons by default) and the real API server.

The API's levers are asked per request (``?levers=true``), so the session's shared server serves
both kinds of request, also batched together.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from typer.testing import CliRunner

from valuecube.cli import app
from valuecube.models.levers import LEVER_COLUMNS, TEXT_LEVER_COLUMNS
from valuecube.serving.loading import load_model

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


def test_cli_score_writes_3_reasons_by_default(telco_uri: str, tmp_path: Path) -> None:
    rows = telco_rows(30, seed=5)
    path, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    rows.to_csv(path, index=False)
    cmd = [sys.executable, "-m", "valuecube", "score", "-m", telco_uri, "-i", str(path)]
    done = subprocess.run([*cmd, "-o", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = pd.read_parquet(out)
    assert len(scores) == 30 and scores.columns[-1] == "churn_reasons"
    assert max(len(json.loads(text)) for text in scores["churn_reasons"]) == 6
    for text in scores["churn_reasons"]:
        _assert_reasons(json.loads(text), 3)

    skipped = tmp_path / "skipped.parquet"  # --reasons 0 skips them; --levers adds the rule's
    args = ["score", "-m", telco_uri, "-i", str(path), "-o", str(skipped)]
    result = CliRunner().invoke(app, [*args, "--reasons", "0", "--levers"])
    assert result.exit_code == 0, result.output
    plain = pd.read_parquet(skipped)
    assert "churn_reasons" not in plain.columns
    assert list(plain.columns) == [*scores.columns[:-1], *LEVER_COLUMNS]


def test_api_results_carry_reasons(api_server: str) -> None:
    rows = telco_rows(5, seed=12)
    with httpx.Client(base_url=api_server, timeout=60) as client:
        response = client.post("/v1/score", json=customers_json(rows), headers=AUTH)
    assert response.status_code == 200
    for result in response.json():
        _assert_reasons(result["churn_reasons"], 3)


def _assert_same_levers(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    for column in LEVER_COLUMNS:
        if column in TEXT_LEVER_COLUMNS:
            assert got[column].tolist() == expected[column].tolist(), column
        else:
            np.testing.assert_allclose(
                got[column].astype(float), expected[column].astype(float), atol=1e-9, err_msg=column
            )


def test_api_levers_per_request_also_in_a_shared_batch(api_server: str, telco_uri: str) -> None:
    rows = telco_rows(6, seed=13)
    expected = load_model(telco_uri).model.predict(rows, levers=True)
    body = customers_json(rows)

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api_server, timeout=60, headers=AUTH) as client:
            paths = ["/v1/score?levers=true" if i % 2 == 0 else "/v1/score" for i in range(6)]
            return await asyncio.gather(*[client.post(path, json=body) for path in paths])

    responses = asyncio.run(both())  # sent together: the server batches them together
    assert all(r.status_code == 200 for r in responses), [r.text[:300] for r in responses]
    for i, response in enumerate(responses):
        results = response.json()
        if i % 2:
            assert not set(LEVER_COLUMNS) & set(results[0])
        else:
            got = pd.DataFrame(results)
            assert list(got.columns[-len(LEVER_COLUMNS) :]) == list(LEVER_COLUMNS)
            _assert_same_levers(got, expected)
