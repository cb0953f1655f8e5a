"""Benchmark fuzzy value-cube scoring on synthetic Telco-shaped customers.

Fits ``ValueCube`` (and so its ``FuzzyValueClassifier``) with
``configs/telco.yaml`` on the real Telco data, then builds ``--customers``
synthetic Telco-shaped customers by resampling real customer-table rows with
replacement and jittering the continuous columns (tenure ±2 months, monthly
charges ±5 %, total charges ±3 %; new unique ids). Their factor frame is
computed once, outside the timings. Timed (median of ``--repeats``):

(a) fuzzy scoring = ``FuzzyValueClassifier.transform`` + ``predict`` on the
    factor frame (issue 13's goal: ≥ 1,000,000 customers/s); ``predict``
    computes the scores again, so (a) scores every customer twice. Shown
    broken down into transform alone and predict alone as well;
(b) the full ``ValueCube.score`` from the synthetic *customer table*:
    factors from the raw columns, fuzzy scores, segments, CLV, lifecycle.

Rates are customers per second of wall time (the target is on wall time); the
process CPU time of the same calls is printed too, since on a shared machine
the wall time also counts waiting for a core (the load average is printed).

Memory: peak RSS of the process (``ru_maxrss``, includes the synthetic data)
and the tracemalloc peak of one extra, untimed call of (a) and of (b) (the
memory that call allocates on top of its inputs).

The last line printed is JSON with the figures.

Usage::

    .venv/bin/python benchmarks/bench_fuzzy_scoring.py --customers 1_000_000 --repeats 5 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from valuecube.features.config import load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.inputs import load_input
from valuecube.models.value_cube import ValueCube

TARGET = 1_000_000


def synthetic_customers(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Resample real rows with replacement, jitter the continuous columns a little, give new ids."""
    rng = np.random.default_rng(seed)
    out = table.iloc[rng.integers(0, len(table), n)].copy()
    tenure = np.clip(out["tenure"].to_numpy() + rng.integers(-2, 3, n), 0, None).astype("float64")
    monthly = np.round(out["monthlycharges"].to_numpy() * rng.uniform(0.95, 1.05, n), 2)
    total = np.where(
        tenure == 0, 0.0, np.round(out["totalcharges"].to_numpy() * rng.uniform(0.97, 1.03, n), 2)
    )
    out["tenure"], out["monthlycharges"], out["totalcharges"] = tenure, monthly, total
    out.index = pd.Index([f"SYN-{i:08d}" for i in range(n)], name=table.index.name)
    return out


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median wall time and median process CPU time of ``repeats`` calls, and the last result.

    On a shared machine the wall time includes waiting for a core; the CPU time does not
    (the scoring is single-threaded numpy, so CPU time ≈ wall time on an idle machine).
    """
    times, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), statistics.median(cpu), result


def traced_peak_mb(fn: Callable[[], object]) -> float:
    """tracemalloc peak (MB) of one call: what it allocates beyond its inputs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=lambda s: int(s.replace("_", "")), default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cfg = load_config(ROOT / "configs" / "telco.yaml")
    real = build_customer_table(
        load_input(ROOT / "data" / "telco_churn.csv", cfg.input, strict=True), cfg.input
    ).table
    cube = ValueCube(cfg).fit(real)
    fuzzy = cube.fuzzy_
    customers = synthetic_customers(real, args.customers, args.seed)
    factors = cube.factors(customers)
    n = len(customers)
    print(
        f"python {platform.python_version()} · numpy {np.__version__} · pandas {pd.__version__} · "
        f"{platform.machine()} · {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"fitted on {len(real):,} real Telco customers; scoring {n:,} synthetic customers "
        f"({factors.shape[1]} factors, {fuzzy.n_features_in_} of them in the tree) · "
        f"repeats {args.repeats} (median) · seed {args.seed}"
    )

    def scoring() -> tuple[np.ndarray, np.ndarray]:
        return fuzzy.transform(factors), fuzzy.predict(factors)

    t_a, c_a, (scores, codes) = timed(scoring, args.repeats)
    t_transform, _, _ = timed(lambda: fuzzy.transform(factors), args.repeats)
    t_predict, _, _ = timed(lambda: fuzzy.predict(factors), args.repeats)
    t_b, c_b, (scored, rejected) = timed(lambda: cube.segment(customers), args.repeats)
    assert scores.shape == (n, 3) and scores.min() >= 1.0 and scores.max() <= 9.0
    assert len(scored) + len(rejected) == n
    if len(rejected) == 0:
        assert (scored["segment"].to_numpy() == codes).all()
    mem_a = traced_peak_mb(scoring)
    mem_b = traced_peak_mb(lambda: cube.segment(customers))

    rate_a = n / t_a
    print(
        f"(a) fuzzy scoring, transform + predict on the factor frame: "
        f"median {t_a:.3f} s wall · {rate_a:,.0f} customers/s · "
        f"target {TARGET:,} → {'MET' if rate_a >= TARGET else 'MISSED'} "
        f"(CPU time {c_a:.3f} s → {n / c_a:,.0f} customers per CPU-second)"
    )
    print(
        f"      of which transform alone {t_transform:.3f} s ({n / t_transform:,.0f}/s), "
        f"predict alone {t_predict:.3f} s ({n / t_predict:,.0f}/s)"
    )
    print(
        f"(b) full ValueCube.segment from the customer table "
        f"(factors, scores, segments, CLV, lifecycle): median {t_b:.3f} s wall · "
        f"{n / t_b:,.0f} customers/s (CPU time {c_b:.3f} s) · {len(rejected):,} rejected"
    )
    print(
        "segments: " + ", ".join(f"{k} {v:,}" for k, v in pd.Series(codes).value_counts().items())
    )
    print(
        f"memory: tracemalloc peak of one call of (a) {mem_a:,.0f} MB, of (b) {mem_b:,.0f} MB · "
        f"process peak RSS {peak_rss_mb():,.0f} MB (includes the {n:,}-customer inputs)"
    )
    figures = {
        "customers": n,
        "load_avg": os.getloadavg()[0],
        "fuzzy_s": t_a,
        "fuzzy_customers_per_s": rate_a,
        "fuzzy_cpu_s": c_a,
        "transform_s": t_transform,
        "predict_s": t_predict,
        "segment_s": t_b,
        "segment_customers_per_s": n / t_b,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
