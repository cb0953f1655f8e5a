"""Serving test helpers and fixtures (imported by the serving tests; not a conftest.py, so that `from conftest import …` elsewhere keeps meaning tests/conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

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


@pytest.fixture(scope="session")
def telco_uri(telco_model) -> str:
    """The session's trained Telco model, by registry alias."""
    return TELCO_URI


@pytest.fixture(scope="session")
def make_telco() -> Callable[[int, int], pd.DataFrame]:
    """Factory of synthetic raw Telco rows (see :func:`telco_rows`)."""
    return telco_rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVER: dict[str, str] = {}


@pytest.fixture(scope="session")
def api_server(telco_uri: str) -> Iterator[str]:
    """``python -m valuecube serve`` on a free loopback port (token and a 50-customer limit set); yields its URL.

    Test modules import this fixture, which gives each its own fixture
    instance: the first one starts the process and the others reuse it.
    """
    if "url" in _SERVER:
        yield _SERVER["url"]
        return
    port = _free_port()
    env = {
        **os.environ,
        "VALUECUBE_API_TOKEN": API_TOKEN,
        "VALUECUBE_API_MAX_CUSTOMERS": str(API_MAX_CUSTOMERS),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "valuecube",
            "serve",
            "--model",
            telco_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the API server exited with {proc.returncode}: {proc.stderr.read()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not become ready within 180 s")
            time.sleep(0.3)
        _SERVER["url"] = url
        yield url
    finally:
        _SERVER.pop("url", None)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
