"""Load-test the HTTP API on loopback: a real ``valuecube serve`` process, many concurrent clients.

Trains a small Telco model into a temporary MLflow store, starts the server
(one uvicorn worker unless ``--workers``), warms it up, then sends
``--requests`` single-customer ``POST /v1/score`` requests from
``--concurrency`` concurrent clients (httpx async, one connection each) and
prints requests/s, latency percentiles and the error count.

Targets: p99 ≤ 50 ms, ≥ 300 requests/s, zero errors.

Usage::

    .venv/bin/python benchmarks/bench_api.py --requests 20000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_batch_scoring import train_model  # noqa: E402

TARGET_P99_MS = 50.0
TARGET_RPS = 300.0


def customers(n: int, seed: int = 0) -> list[dict]:
    """``n`` distinct Telco customers as API JSON objects."""
    real = pd.read_csv(ROOT / "data" / "telco_churn.csv", dtype=str, keep_default_na=False).drop(columns="churn")
    rows = real.iloc[np.random.default_rng(seed).integers(0, len(real), n)].reset_index(drop=True)
    rows["customerid"] = [f"API-{i:06d}" for i in range(n)]
    for col in ("seniorcitizen", "tenure"):
        rows[col] = rows[col].astype(int)
    rows["monthlycharges"] = rows["monthlycharges"].astype(float)
    rows["totalcharges"] = pd.to_numeric(rows["totalcharges"].str.strip().replace("", None))
    return json.loads(rows.to_json(orient="records"))


async def load(url: str, bodies: list[bytes], total: int, concurrency: int) -> tuple[list[float], int, float]:
    """Send ``total`` requests from ``concurrency`` clients; (latencies in s, errors, wall seconds)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    headers = {"content-type": "application/json"}

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1)) as c:
            for i in counter:
                start = time.perf_counter()
                try:
                    r = await c.post("/v1/score", content=bodies[i % len(bodies)], headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        uri = train_model(Path(tmp), "bench-api-telco")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "VALUECUBE_API_MAX_CUSTOMERS": "1000"}
        env.pop("VALUECUBE_API_TOKEN", None)
        server = subprocess.Popen(
            [sys.executable, "-m", "valuecube", "serve", "-m", uri, "--port", str(port), "--workers", str(args.workers)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready")
                time.sleep(0.3)
            bodies = [json.dumps([c]).encode() for c in customers(2000)]
            asyncio.run(load(url, bodies, 500, args.concurrency))  # warm-up
            latencies, errors, wall = asyncio.run(load(url, bodies, args.requests, args.concurrency))
            batch_body = json.dumps(customers(100, seed=1)).encode()
            _, batch_errors, batch_wall = asyncio.run(load(url, [batch_body], 400, args.concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)

    ms = np.asarray(latencies) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    rps = len(ms) / wall
    print(f"\nAPI load test on loopback: {len(ms):,} single-customer requests, {args.concurrency} concurrent clients, "
          f"{args.workers} uvicorn worker(s), {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")
    print(f"  {rps:,.0f} requests/s · latency p50 {p50:.1f} ms · p90 {p90:.1f} ms · p99 {p99:.1f} ms · "
          f"max {ms.max():.1f} ms · errors {errors}")
    print(f"  targets: p99 ≤ {TARGET_P99_MS:.0f} ms {'met' if p99 <= TARGET_P99_MS else 'MISSED'} · "
          f"≥ {TARGET_RPS:.0f} req/s {'met' if rps >= TARGET_RPS else 'MISSED'} · "
          f"zero errors {'met' if errors == 0 else 'MISSED'}")
    print(f"  100-customer requests: {400 * 100 / batch_wall:,.0f} customers/s ({400 / batch_wall:,.0f} requests/s), "
          f"errors {batch_errors}")


if __name__ == "__main__":
    main()
