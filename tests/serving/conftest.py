"""Serving test fixtures: the session's Telco model URI, a row factory and a real API server.

The folder is a package (``tests/serving/__init__.py``) so that this conftest
does not take the module name ``conftest`` that other folders import from.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pandas as pd
import pytest

from .helpers import API_MAX_CUSTOMERS, API_TOKEN, ROOT, TELCO_URI, telco_rows


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


@pytest.fixture(scope="session")
def api_server(telco_uri: str) -> Iterator[str]:
    """``python -m valuecube serve`` on a free loopback port (token, 50-customer limit); its URL.

    One process for the whole session, shared by the API and Spark tests.
    """
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
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def spark():
    """One local[2] Spark session for every Spark test of the session (start-up costs ~10 s)."""
    from valuecube.serving.spark import spark_session

    session = spark_session("local[2]", shuffle_partitions=4)
    yield session
    session.stop()
