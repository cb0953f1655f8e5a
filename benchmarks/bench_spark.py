"""Benchmark the Spark engine: driver memory as the input grows, throughput and log aggregation.

Uses the model ``make demo`` trains (``--model``, default
``models:/valuecube-telco@challenger``; ``--log-model`` for the aggregation
step, default ``models:/valuecube-cdnow@challenger``) from MLFLOW_TRACKING_URI.

1. **Driver memory**: ``valuecube score --engine spark`` in a fresh process
   on synthetic Telco customers (Parquet, ``bench_batch_scoring``), for each
   of ``--sizes``; the peak RSS of the driver (the Python process plus the
   JVM it starts, sampled with psutil every 0.2 s; on ``local[N]`` the JVM
   also hosts the executor) must stay flat as the input grows.
2. **Throughput**: at the smallest size, the local engine on the same file
   in the same run, interleaved; the ratio of wall times (start-up
   included).
3. **Log aggregation**: ``--transactions`` CDNOW-shaped valid rows, the
   per-customer table with its factors by the local function in this
   process against the Spark engine's bucketed ``applyInPandas``
   (:class:`valuecube.serving.spark_job.LogAggregator`) on ``--master``.

The last line printed is JSON. Usage::

    .venv/bin/python benchmarks/bench_spark.py --sizes 1000000 5000000 --transactions 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_batch_scoring import synthetic_parquet

NMT_CATEGORIES = ("Java Heap", "Class", "Thread", "Code", "GC", "Internal", "Other", "Symbol")
"""The JVM's Native Memory Tracking categories reported (``Other`` holds direct/Arrow buffers)."""


def native_memory(pid: int) -> dict[str, float]:
    """Committed MB per Native Memory Tracking category of JVM ``pid`` (``jcmd``), or {}."""
    try:
        text = subprocess.run(
            ["jcmd", str(pid), "VM.native_memory", "summary"],
            capture_output=True, text=True, timeout=20,
        ).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out = {}
    for line in text.splitlines():
        line = line.strip().lstrip("-").strip()
        for name in ("Total", *NMT_CATEGORIES):
            if line.startswith(f"{name} (") or line.startswith(f"{name}:"):
                committed = line.split("committed=")[1].split("KB")[0]
                out[name] = int(committed) / 1024
    return out


def run(uri: str, source: Path, output: Path, *extra: str, env: dict | None = None) -> dict:
    """``valuecube score`` in a fresh process: wall seconds and peak RSS (MB) of each part.

    Sampled every 0.2 s with psutil: the Python driver, the JVM it starts (on
    ``local[N]`` it also hosts the executor) and the JVM's Python workers
    (``pyspark.daemon``: executor-side on a cluster); ``total`` is the largest
    sum. With Native Memory Tracking on (``-XX:NativeMemoryTracking=summary``
    in ``env``'s ``PYSPARK_SUBMIT_ARGS``), the JVM's committed memory by
    category is read with ``jcmd`` every few seconds, keeping the snapshot
    taken at the JVM's largest RSS.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "valuecube", "score", "-m", uri, "-i", str(source), "-o",
         str(output), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )  # fmt: skip
    peak = {"python_driver": 0.0, "jvm": 0.0, "python_workers": 0.0, "total": 0.0}
    nmt: dict[str, float] = {}
    tracking = "NativeMemoryTracking" in (env or {}).get("PYSPARK_SUBMIT_ARGS", "")

    def sample() -> None:
        driver = psutil.Process(proc.pid)
        last_nmt, jvm_at_nmt = 0.0, 0.0
        while proc.poll() is None:
            try:
                children = driver.children(recursive=True)
                jvms = [c for c in children if "java" in c.name().lower()]
                workers = [c for c in children if c not in jvms and "python" in c.name().lower()]
                mb = {
                    "python_driver": driver.memory_info().rss / 2**20,
                    "jvm": sum(p.memory_info().rss for p in jvms) / 2**20,
                    "python_workers": sum(p.memory_info().rss for p in workers) / 2**20,
                }
                mb["total"] = sum(mb.values())
                for k, v in mb.items():
                    peak[k] = max(peak[k], v)
                due = time.monotonic() - last_nmt > 3 and mb["jvm"] >= jvm_at_nmt
                if tracking and jvms and due:
                    snapshot = native_memory(jvms[0].pid)
                    if snapshot:
                        nmt.clear()
                        nmt.update(snapshot)
                        jvm_at_nmt = mb["jvm"]
                    last_nmt = time.monotonic()
            except psutil.Error:
                pass
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(out[-2000:] + err[-3000:])
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak, "jvm_native_mb": nmt}


def synthetic_valid_log(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` valid CDNOW-shaped transactions, typed, as the workers pass them on (Parquet)."""
    rng = np.random.default_rng(seed)
    customers = max(n // 10, 1)
    propensity = rng.gamma(shape=0.5, size=customers)
    with pq.ParquetWriter(
        path,
        pa.schema([("t0", pa.string()), ("t1", pa.timestamp("us")), ("t2", pa.float64()),
                   ("t3", pa.float64())]),
    ) as writer:  # fmt: skip
        for start in range(0, n, 1_000_000):
            m = min(1_000_000, n - start)
            ids = rng.choice(customers, size=m, p=propensity / propensity.sum())
            days = rng.integers(0, 273, size=m).astype("timedelta64[D]")
            writer.write_table(
                pa.table({
                    "t0": pa.array(np.char.add("C", ids.astype("U8"))),
                    "t1": pa.array(np.datetime64("1997-01-01", "us") + days),
                    "t2": pa.array(rng.integers(1, 6, m).astype(float)),
                    "t3": pa.array(np.round(rng.lognormal(3.0, 1.0, m), 2)),
                }),
                row_group_size=500_000,
            )  # fmt: skip
    return path


def aggregation(log_uri: str, path: Path, master: str) -> dict:
    """The per-customer table and factors of a log: local function vs Spark buckets (seconds)."""
    from pyspark.sql import functions as F

    from valuecube.features.customers import build_customer_table
    from valuecube.features.factors import split_computable
    from valuecube.features.inputs import ValidatedInput, scoring_spec
    from valuecube.serving.loading import load_model
    from valuecube.serving.spark import spark_session
    from valuecube.serving.spark_job import BUCKET_ROWS, LogAggregator

    loaded = load_model(log_uri)
    spec = scoring_spec(loaded.config.input)
    columns = list(loaded.model.metadata["customer_columns"])
    as_of = pd.Timestamp(spec.as_of)
    started = time.perf_counter()
    frame = pd.read_parquet(path)
    names = [spec.id_column, spec.date_column, spec.quantity_column, spec.amount_column]
    data = frame.set_axis(names, axis=1)
    empty = pd.DataFrame({"line": [], "reason": []})
    built = build_customer_table(
        ValidatedInput(data, empty, len(data), "<bench>"), spec, as_of=as_of, with_labels=False
    )
    table = built.table[columns].astype("float64")
    split_computable(loaded.model.cube.factors(table))
    local_s = time.perf_counter() - started
    customers = len(table)
    del frame, data, built, table

    spark = spark_session(master)
    aggregator = LogAggregator(spec, as_of, columns, loaded.model.cube)
    n = pq.ParquetFile(path).metadata.num_rows
    buckets = max(int(spark.conf.get("spark.sql.shuffle.partitions")), -(-n // BUCKET_ROWS))
    started = time.perf_counter()
    got = (
        spark.read.parquet(str(path))
        .withColumn("_bucket", F.pmod(F.xxhash64("t0"), F.lit(buckets)))
        .groupBy("_bucket")
        .applyInPandas(lambda f: aggregator(f), aggregator.schema())
        .filter("_kind != 3")
        .count()
    )
    spark_s = time.perf_counter() - started
    spark.stop()
    assert got == customers, (got, customers)
    return {"transactions": n, "customers": customers, "local_s": local_s, "spark_s": spark_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/valuecube-telco@challenger")
    parser.add_argument("--log-model", default="models:/valuecube-cdnow@challenger")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each engine, interleaved")
    parser.add_argument(
        "--driver-memory", default="1g",
        help="the driver JVM's heap (spark-submit --driver-memory; Spark's default is 1g)",
    )  # fmt: skip
    parser.add_argument(
        "--native-memory", action="store_true",
        help="JVM Native Memory Tracking: committed memory by category at the JVM's peak",
    )  # fmt: skip
    args = parser.parse_args()
    spark_flags = ["--engine", "spark", "--spark-master", args.master]
    java = "-XX:NativeMemoryTracking=summary" if args.native_memory else ""
    submit = f"--driver-memory {args.driver_memory}"
    submit += f' --driver-java-options "{java}"' if java else ""
    spark_env = {"PYSPARK_SUBMIT_ARGS": f"{submit} pyspark-shell"}
    report: dict = {"master": args.master, "cpus": os.cpu_count(),
                    "driver_memory": args.driver_memory}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-spark-", dir=ROOT / "out") as tmp:
        tmp = Path(tmp)
        memory = []
        for n in args.sizes:
            source = synthetic_parquet(tmp / f"customers-{n}.parquet", n)
            got = run(args.model, source, tmp / f"spark-{n}.parquet", *spark_flags, env=spark_env)
            memory.append({"rows": n, **got})
            rss = got["peak_rss_mb"]
            print(f"spark {n:>10,} rows: {got['seconds']:7.1f} s, peak RSS MB: Python driver "
                  f"{rss['python_driver']:,.0f}, JVM {rss['jvm']:,.0f}, Python workers "
                  f"{rss['python_workers']:,.0f}, total {rss['total']:,.0f} "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
            if got["jvm_native_mb"]:
                parts = ", ".join(f"{k} {v:,.0f}" for k, v in got["jvm_native_mb"].items())
                print(f"    JVM committed MB at its peak: {parts}", flush=True)
        report["driver_memory_by_size"] = memory
        n = args.sizes[0]
        source = tmp / f"customers-{n}.parquet"
        local_runs, spark_runs = [], []
        for _ in range(args.repeats):  # interleaved: the machine's load hits both engines
            local_runs.append(run(args.model, source, tmp / "local.parquet")["seconds"])
            spark_runs.append(
                run(args.model, source, tmp / "spark.parquet", *spark_flags, env=spark_env)[
                    "seconds"
                ]
            )
        local = pd.read_parquet(tmp / "local.parquet").set_index("customer_id")
        remote = pd.read_parquet(tmp / "spark.parquet").set_index("customer_id")
        sample = local.sample(min(20_000, len(local)), random_state=0).index
        diff = float(np.abs(local.loc[sample, "churn_probability"]
                            - remote.loc[sample, "churn_probability"]).max())  # fmt: skip
        local_s, spark_s = float(np.median(local_runs)), float(np.median(spark_runs))
        report["throughput"] = {
            "rows": n, "local_s": local_s, "spark_s": spark_s,
            "spark_over_local": spark_s / local_s, "same_rows": len(local) == len(remote),
            "max_abs_diff_churn": diff,
        }  # fmt: skip
        print(f"throughput at {n:,} rows: local {local_s:.1f} s, spark {spark_s:.1f} s "
              f"({spark_s / local_s:.2f}x the local time); max |Δp| {diff:.1e}")  # fmt: skip
        if args.transactions:
            log = synthetic_valid_log(tmp / "log.parquet", args.transactions)
            agg = aggregation(args.log_model, log, args.master)
            agg["spark_over_local"] = agg["spark_s"] / agg["local_s"]
            report["aggregation"] = agg
            print(f"aggregation of {agg['transactions']:,} transactions "
                  f"({agg['customers']:,} customers): local {agg['local_s']:.1f} s, spark "
                  f"{agg['spark_s']:.1f} s ({agg['spark_over_local']:.2f}x)")  # fmt: skip
    report["load_average"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
