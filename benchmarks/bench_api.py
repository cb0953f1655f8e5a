"""Load-test the HTTP API on loopback: a real ``valuecube serve`` process, many concurrent clients.

Trains a small Telco model into a temporary MLflow store, starts the server
(one uvicorn worker unless ``--workers``), warms it up, then sends
``--requests`` single-customer ``POST /v1/score`` requests from
``--concurrency`` concurrent keep-alive connections, ``--repeats`` times, and
prints requests/s, latency percentiles and the error count of each run and
their medians, with the CPU the load generator itself used (it shares the
machine with the server).

Targets: p99 ≤ 50 ms, ≥ 300 requests/s, zero errors.

Usage::

    .venv/bin/python benchmarks/bench_api.py --requests 20000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
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

from benchmarks.bench_batch_scoring import train_model

TARGET_P99_MS = 50.0
TARGET_RPS = 300.0


def customers(n: int, seed: int = 0) -> list[dict]:
    """``n`` distinct Telco customers as API JSON objects."""
    real = pd.read_csv(ROOT / "data" / "telco_churn.csv", dtype=str, keep_default_na=False).drop(
        columns="churn"
    )
    rows = real.iloc[np.random.default_rng(seed).integers(0, len(real), n)].reset_index(drop=True)
    rows["customerid"] = [f"API-{i:06d}" for i in range(n)]
    for col in ("seniorcitizen", "tenure"):
        rows[col] = rows[col].astype(int)
    rows["monthlycharges"] = rows["monthlycharges"].astype(float)
    rows["totalcharges"] = pd.to_numeric(rows["totalcharges"].str.strip().replace("", None))
    return json.loads(rows.to_json(orient="records"))


async def load(
    port: int, bodies: list[bytes], total: int, concurrency: int
) -> tuple[list[float], int, float]:
    """Send ``total`` requests on ``concurrency`` connections: (latencies in s, errors, wall s).

    A minimal HTTP/1.1 client on asyncio streams: the requests are prepared
    bytes and only the status line and Content-Length are parsed, so that the
    load generator, which shares the machine's two cores with the server,
    costs as little CPU as possible (an httpx client cost more CPU than the
    server it measured).
    """
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    requests = [
        b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        for body in bodies
    ]

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                start = time.perf_counter()
                writer.write(requests[i % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                errors += head[9:12] != b"200"
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="load-test runs (medians reported)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        uri = train_model(Path(tmp), "bench-api-telco")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "VALUECUBE_API_MAX_CUSTOMERS": "1000"}
        env.pop("VALUECUBE_API_TOKEN", None)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "valuecube",
                "serve",
                "-m",
                uri,
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
            asyncio.run(load(port, bodies, 500, args.concurrency))  # warm-up
            runs = []
            for _ in range(args.repeats):
                cpu = time.process_time()
                latencies, errors, wall = asyncio.run(
                    load(port, bodies, args.requests, args.concurrency)
                )
                ms = np.asarray(latencies) * 1000
                runs.append(
                    {
                        "rps": len(ms) / wall,
                        "p50": np.percentile(ms, 50),
                        "p90": np.percentile(ms, 90),
                        "p99": np.percentile(ms, 99),
                        "max": ms.max(),
                        "errors": errors,
                        "client_cpu": (time.process_time() - cpu) / wall,
                    }
                )
            batch_body = json.dumps(customers(100, seed=1)).encode()
            _, batch_errors, batch_wall = asyncio.run(
                load(port, [batch_body], 400, args.concurrency)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)

    median = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    errors = sum(r["errors"] for r in runs)
    print(
        f"\nAPI load test on loopback: {args.repeats} runs of {args.requests:,} single-customer "
        "requests, "
        f"{args.concurrency} concurrent keep-alive clients, {args.workers} uvicorn worker(s), "
        f"{os.cpu_count()} CPUs, "
        f"load avg {os.getloadavg()[0]:.1f}"
    )
    for i, r in enumerate(runs, 1):
        print(
            f"  run {i}: {r['rps']:,.0f} requests/s · p50 {r['p50']:.1f} ms · p90 {r['p90']:.1f} "
            "ms · "
            f"p99 {r['p99']:.1f} ms · max {r['max']:.1f} ms · errors {r['errors']} · "
            f"load generator used {r['client_cpu']:.0%} of a core"
        )
    print(
        f"  median: {median['rps']:,.0f} requests/s · p50 {median['p50']:.1f} ms · p99 "
        f"{median['p99']:.1f} ms · "
        f"errors {errors} in all runs"
    )
    print(
        f"  targets: p99 ≤ {TARGET_P99_MS:.0f} ms "
        f"{'met' if median['p99'] <= TARGET_P99_MS else 'MISSED'} · "
        f"≥ {TARGET_RPS:.0f} req/s {'met' if median['rps'] >= TARGET_RPS else 'MISSED'} · "
        f"zero errors {'met' if errors == 0 else 'MISSED'}"
    )
    print(
        f"  100-customer requests: {400 * 100 / batch_wall:,.0f} customers/s "
        f"({400 / batch_wall:,.0f} requests/s), "
        f"errors {batch_errors}"
    )


if __name__ == "__main__":
    main()
