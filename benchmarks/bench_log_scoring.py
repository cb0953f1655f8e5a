"""Scoring transaction logs: memory and speed in one pass and in hash parts, against DuckDB.

A customer's features need all of their purchases. A log that fits in
``--memory-limit`` is held (valid rows, typed) until the whole file is read;
a larger one is split by a hash of the customer id into temporary Parquet
parts that are scored one after another (``serving/partitioned.py``). This
script writes synthetic CDNOW-shaped logs (``--transactions``, each with a
tenth as many customers, dates in the calibration window, text columns as in
the raw file) as Parquet, in chunks, and in the same run, each in a fresh
process:

* ``valuecube``: the local engine's ``score_file`` with ``--memory-limit``:
  peak resident memory (VmHWM, model included), seconds, transactions/s,
  the number of parts;
* ``duckdb``: DuckDB computing the per-customer aggregates of the same
  Parquet file (parse, calibration RFM features, quarterly spend and
  purchase days) into a Parquet file, with the same memory limit: the floor.

The model is ``--model URI`` (e.g. the one ``valuecube train --config
configs/cdnow.yaml`` registers) or, without it, a small one trained into a
temporary store. The last line printed is JSON.

Usage::

    .venv/bin/python benchmarks/bench_log_scoring.py --model models:/valuecube-cdnow@challenger \
        --transactions 10000000 50000000 --memory-limit 2GB
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_batch_scoring import peak_rss_mb


def train_model(store: Path, name: str = "bench-cdnow") -> str:
    """Train a small CDNOW model into ``store``; its registry URI."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    from valuecube.training.guards import GuardPolicy
    from valuecube.training.train import run_train

    return run_train(
        ROOT / "configs" / "cdnow.yaml",
        trials=1,
        max_epochs=5,
        guard=GuardPolicy(allow_worse="a small model for tests and benchmarks"),
        seed=0,
        register_as=name,
        experiment="bench",
    ).model_uri


GENERATE_ROWS = 2_000_000
"""Rows generated and written per Parquet row group (the log is never held whole)."""
CALIBRATION_DAYS = 273
"""1997-01-01 … 1997-09-30: the CDNOW config's calibration window."""


def synthetic_log(path: Path, n_transactions: int, seed: int = 0) -> Path:
    """A CDNOW-shaped log as Parquet, text columns as in the raw file (dates ``YYYYMMDD``).

    A tenth as many customers as transactions, with gamma-distributed
    activity (a few heavy buyers, many one-off ones), 1-5 CDs and lognormal
    dollar values per purchase; written in row groups of :data:`GENERATE_ROWS`.
    """
    rng = np.random.default_rng(seed)
    n_customers = max(n_transactions // 10, 1)
    propensity = rng.gamma(shape=0.5, size=n_customers)
    cumulative = np.cumsum(propensity / propensity.sum())
    names = np.char.add("C", np.arange(n_customers).astype("U8"))
    calendar = np.char.replace(
        (np.datetime64("1997-01-01") + np.arange(CALIBRATION_DAYS).astype("timedelta64[D]"))
        .astype("datetime64[D]")
        .astype(str),
        "-",
        "",
    )
    schema = pa.schema(
        [(c, pa.string()) for c in ("customer_id", "date", "number_of_cds", "dollar_value")]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n_transactions, GENERATE_ROWS):
            n = min(GENERATE_ROWS, n_transactions - start)
            customers = np.minimum(np.searchsorted(cumulative, rng.random(n)), n_customers - 1)
            dollars = np.round(rng.lognormal(3.0, 1.0, size=n), 2)
            table = pa.table(
                {
                    "customer_id": pa.array(names[customers]),
                    "date": pa.array(calendar[rng.integers(0, CALIBRATION_DAYS, size=n)]),
                    "number_of_cds": pa.array(rng.integers(1, 6, size=n).astype(str)),
                    "dollar_value": pa.array(dollars.astype(str)),
                },
                schema=schema,
            )
            writer.write_table(table)
    return path


def _job(uri: str, source: str, output: str, memory_limit: str) -> None:
    """One scoring job (a fresh process): its seconds, counts, parts and peak RSS, as JSON."""
    from valuecube.serving.batch import score_file
    from valuecube.serving.loading import load_model

    loaded = load_model(uri)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    result = score_file(loaded, source, output, progress=False, memory_limit=memory_limit)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "rows": result.rows_read,
                "customers": result.customers_scored,
                "parts": result.parts,
                "baseline_mb": baseline,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


DUCKDB_AGGREGATES = """
COPY (
WITH t AS (
  SELECT customer_id, strptime(date, '%Y%m%d')::DATE AS d,
         CAST(number_of_cds AS DOUBLE) AS qty, CAST(dollar_value AS DOUBLE) AS amt
  FROM read_parquet({source})
), daily AS (
  SELECT customer_id, d, sum(amt) AS amt, sum(qty) AS qty,
         (DATE '1997-09-30' - d) // 91 AS quarter
  FROM t WHERE d BETWEEN DATE '1997-01-01' AND DATE '1997-09-30'
  GROUP BY customer_id, d
), agg AS (
  SELECT customer_id, count(*) AS frequency, min(d) AS first_d, max(d) AS last_d,
    sum(amt) AS monetary_total, arg_min(amt, d) AS first_day_spend, sum(qty) AS quantity_total,
    sum(amt) FILTER (WHERE 2 * (d - DATE '1997-01-01') < 272) AS s1,
    sum(amt) FILTER (WHERE 2 * (d - DATE '1997-01-01') >= 272) AS s2,
    sum(amt) FILTER (WHERE quarter = 0) AS spend_q1,
    sum(amt) FILTER (WHERE quarter = 1) AS spend_q2,
    sum(amt) FILTER (WHERE quarter = 2) AS spend_q3,
    sum(amt) FILTER (WHERE quarter = 3) AS spend_q4,
    count(*) FILTER (WHERE quarter = 0) AS purchase_days_q1,
    count(*) FILTER (WHERE quarter = 1) AS purchase_days_q2,
    count(*) FILTER (WHERE quarter = 2) AS purchase_days_q3,
    count(*) FILTER (WHERE quarter = 3) AS purchase_days_q4
  FROM daily GROUP BY customer_id
)
SELECT customer_id, CAST(DATE '1997-09-30' - last_d AS DOUBLE) AS recency_days, frequency,
  monetary_total, monetary_total / frequency AS monetary_avg,
  CASE WHEN frequency > 1 THEN (monetary_total - first_day_spend) / (frequency - 1) ELSE 0 END
    AS repeat_monetary_avg,
  quantity_total, CAST(DATE '1997-09-30' - first_d AS DOUBLE) AS tenure_days,
  CASE WHEN frequency > 1 THEN CAST(last_d - first_d AS DOUBLE) / (frequency - 1)
    ELSE CAST(DATE '1997-09-30' - first_d AS DOUBLE) END AS interpurchase_days,
  CASE WHEN coalesce(s1, 0) + coalesce(s2, 0) > 0
    THEN (coalesce(s2, 0) - coalesce(s1, 0)) / (coalesce(s1, 0) + coalesce(s2, 0)) ELSE 0 END
    AS purchase_growth,
  spend_q1, spend_q2, spend_q3, spend_q4,
  purchase_days_q1, purchase_days_q2, purchase_days_q3, purchase_days_q4
FROM agg ORDER BY customer_id
) TO {output} (FORMAT PARQUET)
"""


def _duckdb_job(source: str, output: str, memory_limit: str, spill: str) -> None:
    """DuckDB's per-customer aggregates of the same file (a fresh process), as JSON."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")  # ORDER BY still orders; lets it spill
    con.execute(f"SET temp_directory = '{spill}'")
    start = time.perf_counter()
    con.execute(DUCKDB_AGGREGATES.format(source=f"'{source}'", output=f"'{output}'"))
    seconds = time.perf_counter() - start
    customers = con.execute(f"SELECT count(*) FROM read_parquet('{output}')").fetchall()[0][0]
    print(json.dumps({"seconds": seconds, "customers": customers, "peak_rss_mb": peak_rss_mb()}))


def _child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--model", help="a registered CDNOW model (default: train a small one)")
    parser.add_argument("--memory-limit", default="2GB", help="valuecube's --memory-limit")
    parser.add_argument(
        "--duckdb-memory-limit", help="DuckDB's memory_limit (default: --memory-limit)"
    )
    parser.add_argument(
        "--folder", type=Path, help="where the logs go (default: a temporary folder)"
    )
    parser.add_argument("--job", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--duckdb-job", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        _job(*args.job)
        return
    if args.duckdb_job:
        _duckdb_job(*args.duckdb_job)
        return
    with tempfile.TemporaryDirectory(prefix="bench-log-", dir=args.folder) as tmp:
        tmp = Path(tmp)
        uri = args.model or train_model(tmp)
        limit = args.memory_limit
        print(
            f"\nscoring synthetic CDNOW-shaped logs (Parquet), {os.cpu_count()} CPUs, "
            f"--memory-limit {limit}"
        )
        runs = []
        for n in args.transactions:
            started = time.perf_counter()
            source = synthetic_log(tmp / f"log_{n}.parquet", n)
            generated = time.perf_counter() - started
            load_before = _load()
            ours = _child("--job", uri, str(source), str(tmp / "scores.parquet"), limit)
            print(f"  valuecube: {json.dumps(ours)} (load avg {_load()})", flush=True)
            duck_limit = args.duckdb_memory_limit or limit
            duck = _child(
                "--duckdb-job", str(source), str(tmp / "duck.parquet"), duck_limit, str(tmp)
            )
            load_after = _load()
            run = {
                "transactions": n,
                "customers": ours["customers"],
                "parts": ours["parts"],
                "valuecube_s": round(ours["seconds"], 1),
                "valuecube_tx_per_s": round(n / ours["seconds"]),
                "valuecube_peak_rss_mb": round(ours["peak_rss_mb"]),
                "model_loaded_mb": round(ours["baseline_mb"]),
                "duckdb_s": round(duck["seconds"], 1),
                "duckdb_tx_per_s": round(n / duck["seconds"]),
                "duckdb_peak_rss_mb": round(duck["peak_rss_mb"]),
                "duckdb_memory_limit": duck_limit,
                "ratio_valuecube_over_duckdb": round(ours["seconds"] / duck["seconds"], 2),
                "generate_s": round(generated, 1),
                "load_avg_before": load_before,
                "load_avg_after": load_after,
            }
            runs.append(run)
            print(
                f"  {n:>11,} transactions, {ours['customers']:,} customers, "
                f"{ours['parts']} part(s): "
                f"valuecube {ours['seconds']:.1f} s ({run['valuecube_tx_per_s']:,} tx/s), peak RSS "
                f"{ours['peak_rss_mb']:,.0f} MB (model loaded {ours['baseline_mb']:,.0f} MB) · "
                f"DuckDB aggregates {duck['seconds']:.1f} s ({run['duckdb_tx_per_s']:,} tx/s), "
                f"peak RSS {duck['peak_rss_mb']:,.0f} MB · "
                f"ratio {run['ratio_valuecube_over_duckdb']}x "
                f"· load avg {load_before} → {load_after}",
                flush=True,
            )
            for name in (source, tmp / "scores.parquet", tmp / "duck.parquet"):
                name.unlink(missing_ok=True)
        print(json.dumps({"memory_limit": limit, "runs": runs}))


if __name__ == "__main__":
    main()
