"""Benchmark the Spark engine against the local engine on the same 1,000,000-row input.

Trains a small Telco model into a temporary MLflow store, writes synthetic
Telco-shaped customers (see ``bench_batch_scoring``), and runs the scoring
job in fresh processes, ``--repeats`` times each, interleaved: ``--engine local``
and ``--engine spark`` on ``local[2]`` (wall time including Spark start-up, driver-side validation
and staging). Checks that both give the same scores (1e-6) on a sample.

Usage::

    .venv/bin/python benchmarks/bench_spark.py --customers 1000000 --master 'local[2]'
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_batch_scoring import synthetic_parquet, train_model


def run(uri: str, source: Path, output: Path, *extra: str) -> float:
    """``valuecube score`` in a fresh process; its wall time (model load, Spark's JVM start)."""
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "valuecube",
            "score",
            "-m",
            uri,
            "-i",
            str(source),
            "-o",
            str(output),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-3000:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each engine, interleaved (medians reported)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        tmp = Path(tmp)
        uri = train_model(tmp, "bench-spark-telco")
        source = synthetic_parquet(tmp / "customers.parquet", args.customers)
        local_runs, spark_runs = [], []
        for _ in range(
            args.repeats
        ):  # interleaved, so a change in the machine's load hits both engines
            local_runs.append(run(uri, source, tmp / "local.parquet"))
            spark_runs.append(
                run(
                    uri,
                    source,
                    tmp / "spark.parquet",
                    "--engine",
                    "spark",
                    "--spark-master",
                    args.master,
                )
            )
        local = pd.read_parquet(tmp / "local.parquet").set_index("customer_id")
        spark = pd.read_parquet(tmp / "spark.parquet").set_index("customer_id")
        sample = local.sample(20_000, random_state=0).index
        diff = float(
            np.abs(
                local.loc[sample, "churn_probability"] - spark.loc[sample, "churn_probability"]
            ).max()
        )
        same = len(local) == len(spark) and bool(
            (local.loc[sample, "segment_model"] == spark.loc[sample, "segment_model"]).all()
        )
    n = args.customers
    local_s, spark_s = float(np.median(local_runs)), float(np.median(spark_runs))
    print(
        f"\nSpark vs local engine, {n:,} synthetic Telco customers, Parquet → Parquet, median of "
        f"{args.repeats}, "
        f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f} (wall time of `valuecube "
        "score`, start-up included)"
    )
    print(
        f"  local engine:            {local_s:7.1f} s · {n / local_s:,.0f} customers/s "
        f"(runs {', '.join(f'{t:.1f}' for t in local_runs)} s)"
    )
    print(
        f"  spark engine {args.master:10s} {spark_s:7.1f} s · {n / spark_s:,.0f} customers/s "
        f"({spark_s / local_s:.1f}× the local time; runs "
        f"{', '.join(f'{t:.1f}' for t in spark_runs)} s)"
    )
    print(
        f"  same rows: {same} · max |Δ churn_probability| on 20,000 sampled customers: {diff:.2e}"
    )


if __name__ == "__main__":
    main()
