"""How the memory of scoring a transaction log grows with its size.

A customer's features need all of their purchases, so ``valuecube score``
keeps a log's valid rows (typed: id, date, quantity, amount) until the whole
file is read, then builds the per-customer table as of ``--as-of`` and scores
it in chunks of customers. This script measures what that costs: it trains a
small CDNOW model into a temporary MLflow store, writes synthetic
CDNOW-shaped logs (``--transactions``, each with a tenth as many customers,
dates in the calibration window) as Parquet, and runs the scoring job on
each in a fresh process, printing its peak resident memory (VmHWM), the
memory per transaction above the model's own footprint, and its time.

Usage::

    .venv/bin/python benchmarks/bench_log_scoring.py --transactions 1000000 4000000
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


def synthetic_log(path: Path, n_transactions: int, seed: int = 0) -> Path:
    """A CDNOW-shaped log as Parquet, text columns as in the raw file (dates ``YYYYMMDD``)."""
    rng = np.random.default_rng(seed)
    n_customers = max(n_transactions // 10, 1)
    propensity = rng.gamma(shape=0.5, size=n_customers)
    customers = rng.choice(n_customers, size=n_transactions, p=propensity / propensity.sum())
    days = rng.integers(
        0, 273, size=n_transactions
    )  # 1997-01-01 … 1997-09-30, the config's calibration window
    dates = (
        (np.datetime64("1997-01-01") + days.astype("timedelta64[D]"))
        .astype("datetime64[D]")
        .astype(str)
    )
    table = pa.table(
        {
            "customer_id": pa.array(np.char.add("C", customers.astype("U8"))),
            "date": pa.array(np.char.replace(dates, "-", "")),
            "number_of_cds": pa.array(rng.integers(1, 6, size=n_transactions).astype(str)),
            "dollar_value": pa.array(
                np.round(rng.lognormal(3.0, 1.0, size=n_transactions), 2).astype(str)
            ),
        }
    )
    pq.write_table(table, path)
    return path


def _job(uri: str, source: str, output: str) -> None:
    from valuecube.serving.batch import score_file
    from valuecube.serving.loading import load_model

    loaded = load_model(uri)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    result = score_file(loaded, source, output, progress=False)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "rows": result.rows_read,
                "customers": result.customers_scored,
                "baseline_mb": baseline,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument(
        "--job", nargs=3, metavar=("URI", "INPUT", "OUTPUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.job:
        _job(*args.job)
        return
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        tmp = Path(tmp)
        uri = train_model(tmp)
        print(
            f"\nscoring synthetic CDNOW-shaped logs (Parquet), {os.cpu_count()} CPUs, load avg "
            f"{os.getloadavg()[0]:.1f}"
        )
        for n in args.transactions:
            source = synthetic_log(tmp / f"log_{n}.parquet", n)
            done = subprocess.run(
                [sys.executable, __file__, "--job", uri, str(source), str(tmp / "scores.parquet")],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-3000:])
            job = json.loads(done.stdout.strip().splitlines()[-1])
            extra = job["peak_rss_mb"] - job["baseline_mb"]
            print(
                f"  {n:>11,} transactions, {job['customers']:,} customers: peak RSS "
                f"{job['peak_rss_mb']:,.0f} MB "
                f"(model loaded: {job['baseline_mb']:,.0f} MB; {extra * 2**20 / n:,.0f} bytes per "
                "transaction "
                f"above that) · {job['seconds']:.1f} s · {n / job['seconds']:,.0f} transactions/s"
            )
            source.unlink()


if __name__ == "__main__":
    main()
