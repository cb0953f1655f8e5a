"""Load-test the HTTP API on loopback: a real ``valuecube serve`` process, many concurrent clients.

Serves ``--model`` (default: the demo's registered model, as ``make demo``
trains it) with ``valuecube serve`` and, in the same run and under the same
client, a bare FastAPI peer (:mod:`benchmarks.bare_fastapi`: parses the same
JSON, answers a same-sized body, no model), both with ``--workers`` uvicorn
workers. After a warm-up it sends ``--requests`` single-customer
``POST /v1/score`` requests from ``--concurrency`` keep-alive connections to
each, interleaved, ``--repeats`` times, and prints requests/s, latency
percentiles, errors and the load generator's own CPU (it shares the machine),
their medians and the ratios valuecube / bare; the last line is JSON.

Goals: p99 ≤ 3× the bare peer's, throughput ≥ 25 % of it, zero errors.

Usage::

    .venv/bin/python benchmarks/bench_api.py --model models:/valuecube-telco@challenger \
        --requests 20000 --concurrency 16
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


DEMO_MODEL = "models:/valuecube-telco@challenger"
TARGET_P99_RATIO = 3.0
TARGET_RPS_SHARE = 0.25


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    """Start a server and wait until its ``/readyz`` answers 200."""
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"{command[:4]} did not become ready")
        time.sleep(0.3)


def measure(port: int, bodies: list[bytes], total: int, concurrency: int) -> dict:
    """One load-test run against ``port``: throughput, latency percentiles, errors, client CPU."""
    cpu = time.process_time()
    latencies, errors, wall = asyncio.run(load(port, bodies, total, concurrency))
    ms = np.asarray(latencies) * 1000
    return {
        "rps": len(ms) / wall,
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "errors": errors,
        "client_cpu": (time.process_time() - cpu) / wall,
    }


def _line(label: str, r: dict) -> str:
    return (
        f"  {label}: {r['rps']:,.0f} requests/s · p50 {r['p50']:.1f} ms · p90 {r['p90']:.1f} ms · "
        f"p99 {r['p99']:.1f} ms · max {r['max']:.1f} ms · errors {r['errors']} · "
        f"load generator {r['client_cpu']:.0%} of a core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=DEMO_MODEL, help=f"model URI to serve (default {DEMO_MODEL})"
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="load-test runs (medians reported)")
    args = parser.parse_args()

    env = {**os.environ, "VALUECUBE_API_MAX_CUSTOMERS": "1000"}
    env.pop("VALUECUBE_API_TOKEN", None)
    port, bare_port = free_port(), free_port()
    common = ["--port", str(port), "--workers", str(args.workers)]
    bodies = [json.dumps([c]).encode() for c in customers(2000)]
    servers = [
        start([sys.executable, "-m", "valuecube", "serve", "-m", args.model, *common], env, port)
    ]
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/score", content=bodies[0]).json()[0]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(answer, f)
        bare_env = {**env, "BENCH_BARE_TEMPLATE": f.name}
        bare = [sys.executable, "-m", "uvicorn", "benchmarks.bare_fastapi:app", "--no-access-log"]
        bare += ["--log-level", "warning", "--port", str(bare_port)]
        servers.append(start([*bare, "--workers", str(args.workers)], bare_env, bare_port))
        for p in (port, bare_port):  # warm-up
            measure(p, bodies, 500, args.concurrency)
        runs, bare_runs = [], []
        for _ in range(args.repeats):  # interleaved: a change of load hits both alike
            runs.append(measure(port, bodies, args.requests, args.concurrency))
            bare_runs.append(measure(bare_port, bodies, args.requests, args.concurrency))
        batch_body = json.dumps(customers(100, seed=1)).encode()
        _, batch_errors, batch_wall = asyncio.run(load(port, [batch_body], 400, args.concurrency))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        Path(f.name).unlink(missing_ok=True)

    med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    bare_med = {k: float(np.median([r[k] for r in bare_runs])) for k in bare_runs[0]}
    errors = sum(r["errors"] for r in runs)
    p99_ratio = med["p99"] / bare_med["p99"]
    rps_share = med["rps"] / bare_med["rps"]
    load_avg = os.getloadavg()[0]
    print(
        f"\nAPI load test on loopback ({args.model}): {args.repeats} runs of "
        f"{args.requests:,} single-customer requests, {args.concurrency} concurrent keep-alive "
        f"clients, {args.workers} uvicorn worker(s), {os.cpu_count()} CPUs, load avg {load_avg:.1f}"
    )
    for i, (r, b) in enumerate(zip(runs, bare_runs, strict=True), 1):
        print(_line(f"run {i} valuecube", r))
        print(_line(f"run {i} bare FastAPI", b))
    print(_line("median valuecube", med))
    print(_line("median bare FastAPI", bare_med))
    print(
        f"  valuecube / bare: p99 {p99_ratio:.1f}× (goal ≤ {TARGET_P99_RATIO:.0f}×: "
        f"{'met' if p99_ratio <= TARGET_P99_RATIO else 'MISSED'}) · throughput {rps_share:.0%} "
        f"(goal ≥ {TARGET_RPS_SHARE:.0%}: {'met' if rps_share >= TARGET_RPS_SHARE else 'MISSED'})"
        f" · errors {errors} in all runs"
    )
    print(
        f"  100-customer requests: {400 * 100 / batch_wall:,.0f} customers/s "
        f"({400 / batch_wall:,.0f} requests/s), errors {batch_errors}"
    )
    print(
        json.dumps(
            {
                "model": args.model,
                "workers": args.workers,
                "concurrency": args.concurrency,
                "load_avg": load_avg,
                "valuecube": med,
                "bare_fastapi": bare_med,
                "p99_ratio": p99_ratio,
                "rps_share": rps_share,
                "errors": errors,
                "batch100_customers_per_s": 400 * 100 / batch_wall,
            }
        )
    )


if __name__ == "__main__":
    main()
