"""Benchmark fuzzy value-cube scoring on synthetic Telco-shaped customers.

Fits ``ValueCube`` on the real Telco data, then resamples real customer-table
rows with replacement (small jitter on monthlycharges/tenure/totalcharges, new
unique ids) up to ``--customers`` rows and times

(a) fuzzy scoring: ``cube.fuzzy_.transform`` + ``assign_segments`` on a
    precomputed factor frame;
(b) the full ``ValueCube.score`` from the customer table (factors, CLV,
    lifecycle).

Usage::

    .venv/bin/python benchmarks/bench_fuzzy_scoring.py --customers 1000000 --repeats 5 --seed 0
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.config import load_config  # noqa: E402
from features.customers import build_customer_table  # noqa: E402
from features.inputs import load_input  # noqa: E402
from models.segments import assign_segments  # noqa: E402
from models.value_cube import ValueCube  # noqa: E402

TARGET = 500_000


def synthetic_customers(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Resample real rows with replacement, jitter the numeric columns a little, give new ids."""
    rng = np.random.default_rng(seed)
    out = table.iloc[rng.integers(0, len(table), n)].copy()
    tenure = np.clip(out["tenure"].to_numpy() + rng.integers(-2, 3, n), 0, None).astype("float64")
    monthly = np.round(out["monthlycharges"].to_numpy() * rng.uniform(0.95, 1.05, n), 2)
    total = np.where(tenure == 0, 0.0, np.round(out["totalcharges"].to_numpy() * rng.uniform(0.97, 1.03, n), 2))
    out["tenure"], out["monthlycharges"], out["totalcharges"] = tenure, monthly, total
    out.index = pd.Index([f"SYN-{i:08d}" for i in range(n)], name=table.index.name)
    return out


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cfg = load_config(ROOT / "configs" / "telco.yaml")
    real = build_customer_table(load_input(ROOT / "data" / "telco_churn.csv", cfg.input, strict=True), cfg.input).table
    cube = ValueCube(cfg).fit(real)
    customers = synthetic_customers(real, args.customers, args.seed)
    factors = cube.factors(customers)
    n = len(customers)
    print(f"python {platform.python_version()} · numpy {np.__version__} · pandas {pd.__version__} · {platform.machine()}")
    print(f"customers {n:,} (resampled from {len(real):,} real Telco rows) · repeats {args.repeats} · seed {args.seed}")

    def fuzzy() -> np.ndarray:
        scores = cube.fuzzy_.transform(factors)
        return assign_segments(scores, cube.fuzzy_.threshold)

    t_a, codes = timed(fuzzy, args.repeats)
    t_b, (scored, rejected) = timed(lambda: cube.score(customers), args.repeats)
    assert len(codes) == n and len(scored) + len(rejected) == n
    assert (scored["segment"].to_numpy() == codes[: len(scored)]).all() if len(rejected) == 0 else True
    rate_a, rate_b = n / t_a, n / t_b
    print(f"(a) fuzzy scoring (transform + assign_segments): median {t_a:.3f} s · {rate_a:,.0f} customers/s "
          f"· target {TARGET:,} → {'MET' if rate_a >= TARGET else 'MISSED'}")
    print(f"(b) full ValueCube.score (factors, CLV, lifecycle): median {t_b:.3f} s · {rate_b:,.0f} customers/s")
    print(f"segments: " + ", ".join(f"{k} {v:,}" for k, v in pd.Series(codes).value_counts().items()))
    print(f"peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
