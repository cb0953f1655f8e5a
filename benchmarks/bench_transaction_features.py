"""Benchmark ``features.transactions.customer_features`` against DuckDB.

Both engines start from the same in-memory pandas transaction log and produce
the same per-customer feature table (calibration RFM features plus holdout
churn / spend / purchase days, same definitions). Each engine runs in its own
freshly spawned child process that regenerates the seeded log, so timings and
memory of one engine cannot leak into the other.

Usage::

    .venv/bin/python benchmarks/bench_transaction_features.py \
        --transactions 10_000_000 --customers 1_000_000 --repeats 3 --seed 0
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import platform
import re
import resource
import statistics
import time

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-01-01")
SPAN_DAYS = 547  # ~18 months


def generate_log(n_transactions: int, n_customers: int, seed: int) -> pd.DataFrame:
    """Seeded synthetic log: skewed customer activity, dates over ~18 months."""
    rng = np.random.default_rng(seed)
    width = max(7, len(str(n_customers - 1)))
    ids = pd.Series([f"C{i:0{width}d}" for i in range(n_customers)], dtype="str")
    propensity = rng.gamma(shape=0.5, size=n_customers)
    codes = rng.choice(n_customers, size=n_transactions, p=propensity / propensity.sum())
    days = rng.integers(0, SPAN_DAYS, size=n_transactions)
    quantity = rng.integers(1, 6, size=n_transactions).astype(np.float64)
    return pd.DataFrame(
        {
            "customer_id": ids.take(codes).reset_index(drop=True),
            "date": np.datetime64(START.date(), "D") + days.astype("timedelta64[D]"),
            "quantity": quantity,
            "amount": np.round(rng.lognormal(mean=3.0, sigma=1.0, size=n_transactions), 2),
        }
    )


def windows() -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(window_start, as_of at 2/3 of the date range, holdout_end at its end)."""
    return (
        START,
        START + pd.Timedelta(days=(SPAN_DAYS - 1) * 2 // 3),
        START + pd.Timedelta(days=SPAN_DAYS - 1),
    )


def duckdb_query() -> str:
    ws, as_of, he = (f"DATE '{t.date()}'" for t in windows())
    half = (windows()[1] - windows()[0]).days  # first half: 2 * (d - ws) < half
    calib = f"d <= {as_of}"
    return f"""
WITH daily AS (
  SELECT customer_id, d, sum(amount) AS amt, sum(quantity) AS qty
  FROM (SELECT customer_id, CAST(date AS DATE) AS d, amount, quantity FROM log)
  WHERE d >= {ws} AND d <= {he}
  GROUP BY customer_id, d
), agg AS (
  SELECT customer_id,
    count(*) FILTER (WHERE {calib}) AS frequency,
    min(d) FILTER (WHERE {calib}) AS first_d,
    max(d) FILTER (WHERE {calib}) AS last_d,
    sum(amt) FILTER (WHERE {calib}) AS monetary_total,
    arg_min(amt, d) FILTER (WHERE {calib}) AS first_day_spend,
    sum(qty) FILTER (WHERE {calib}) AS quantity_total,
    coalesce(sum(amt) FILTER (WHERE 2 * (d - {ws}) < {half}), 0) AS s1,
    coalesce(sum(amt) FILTER (WHERE 2 * (d - {ws}) >= {half} AND {calib}), 0) AS s2,
    count(*) FILTER (WHERE d > {as_of}) AS future_purchases,
    coalesce(sum(amt) FILTER (WHERE d > {as_of}), 0.0) AS future_spend
  FROM daily
  GROUP BY customer_id
  HAVING count(*) FILTER (WHERE {calib}) > 0
)
SELECT customer_id,
  CAST({as_of} - last_d AS DOUBLE) AS recency_days,
  frequency,
  frequency - 1 AS repeat_frequency,
  monetary_total,
  monetary_total / frequency AS monetary_avg,
  CASE WHEN frequency > 1 THEN (monetary_total - first_day_spend) / (frequency - 1)
       ELSE 0.0 END AS repeat_monetary_avg,
  quantity_total,
  CAST({as_of} - first_d AS DOUBLE) AS tenure_days,
  CAST(last_d - first_d AS DOUBLE) AS first_to_last_days,
  CASE WHEN frequency > 1 THEN CAST(last_d - first_d AS DOUBLE) / (frequency - 1)
       ELSE CAST({as_of} - first_d AS DOUBLE) END AS interpurchase_days,
  CASE WHEN s1 + s2 > 0 THEN (s2 - s1) / (s1 + s2) ELSE 0.0 END AS purchase_growth,
  CAST(frequency - 1 AS DOUBLE) / frequency AS repeat_rate,
  CAST(future_purchases = 0 AS BIGINT) AS churn,
  future_spend,
  future_purchases
FROM agg
ORDER BY customer_id
"""


def run_ours(log: pd.DataFrame) -> pd.DataFrame:
    from valuecube.features.transactions import customer_features

    ws, as_of, he = windows()
    return customer_features(log, as_of, window_start=ws, holdout_end=he)


def run_duckdb(log: pd.DataFrame) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.register("log", log)
    out = con.sql(duckdb_query()).df().set_index("customer_id")
    con.close()
    return out


ENGINES = {"valuecube": run_ours, "duckdb": run_duckdb}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return int(re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.MULTILINE).group(1))


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def child(engine: str, n_transactions: int, n_customers: int, seed: int, repeats: int) -> dict:
    """Timed part of one engine, run in a fresh process."""
    import duckdb  # noqa: F401  (import cost and libraries outside the measurement)

    import valuecube.features.transactions  # noqa: F401

    log = generate_log(n_transactions, n_customers, seed)
    gc.collect()
    baseline_kib = _status_kib("VmRSS")
    hwm_reset = _reset_peak_rss()
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = ENGINES[engine](log)
        seconds.append(time.perf_counter() - t0)
        del out
        gc.collect()
    if hwm_reset:
        peak_kib = _status_kib("VmHWM")
    else:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": seconds,
        "baseline_mib": baseline_kib / 1024,
        "peak_extra_mib": (peak_kib - baseline_kib) / 1024,
        "hwm_reset": hwm_reset,
    }


def verify(n_transactions: int, n_customers: int, seed: int) -> tuple[int, int, float]:
    """Check that both engines produce the same table; return (rows, columns, churn rate)."""
    log = generate_log(n_transactions, n_customers, seed)
    ours = run_ours(log)
    duck = run_duckdb(log)
    assert list(ours.columns) == list(duck.columns), (ours.columns, duck.columns)
    assert ours.index.equals(duck.index.astype(ours.index.dtype)), "customer sets differ"
    for col in ours.columns:
        np.testing.assert_allclose(
            ours[col].to_numpy(np.float64),
            duck[col].to_numpy(np.float64),
            rtol=1e-9,
            atol=1e-6,
            err_msg=col,
        )
    return len(ours), len(ours.columns), float(ours["churn"].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import duckdb

    ws, as_of, he = windows()
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"duckdb {duckdb.__version__}, {os.cpu_count()} CPUs "
        f"(duckdb uses all of them; valuecube runs single-threaded numpy)"
    )
    print(
        f"log: {args.transactions:,} transactions, {args.customers:,} customers, seed {args.seed}; "
        f"calibration {ws.date()}..{as_of.date()}, holdout ..{he.date()}"
    )

    ctx = mp.get_context("spawn")
    results = {}
    for engine in ENGINES:
        with ctx.Pool(1) as pool:
            results[engine] = pool.apply(
                child, (engine, args.transactions, args.customers, args.seed, args.repeats)
            )
        secs = ", ".join(f"{s:.2f}" for s in results[engine]["seconds"])
        print(f"{engine:>9}: runs [{secs}] s")

    rows, ncols, churn = verify(args.transactions, args.customers, args.seed)
    print(
        f"verified: identical index and all {ncols} columns allclose ({rows:,} customers, "
        f"churn rate {churn:.3f})"
    )

    print(
        "\nmemory: each engine runs in its own spawned process that first builds the log; "
        "'peak extra' = peak RSS during the timed runs minus RSS right after building the log"
        + (
            " (VmHWM reset via /proc/self/clear_refs)"
            if all(r["hwm_reset"] for r in results.values())
            else " (ru_maxrss; includes the log-building peak, an upper bound)"
        )
    )
    median = {e: statistics.median(r["seconds"]) for e, r in results.items()}
    print(
        f"\n{'engine':<10} {'median s':>9} {'min s':>7} {'Mtx/s':>7} {'log RSS MiB':>12} "
        f"{'peak extra MiB':>15} {'vs duckdb':>10}"
    )
    for engine, r in results.items():
        print(
            f"{engine:<10} {median[engine]:>9.2f} {min(r['seconds']):>7.2f} "
            f"{args.transactions / median[engine] / 1e6:>7.2f} {r['baseline_mib']:>12.0f} "
            f"{r['peak_extra_mib']:>15.0f} {median[engine] / median['duckdb']:>9.2f}x"
        )
    print(
        f"\nratio valuecube/duckdb (median wall time): {median['valuecube'] / median['duckdb']:.2f}"
    )


if __name__ == "__main__":
    main()
