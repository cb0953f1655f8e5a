"""Benchmark the cost of churn reasons: local batch scoring with and without ``--reasons N``.

Trains a small Telco model into a temporary MLflow store (as
``bench_batch_scoring.py`` does, reusing its helpers), writes ``--customers``
synthetic Telco customers as Parquet, then runs ``serving.batch.score_file``
in this process with ``reasons=0`` and ``reasons=N``, interleaved,
``--repeats`` times; prints the medians, their ratio and the largest
additivity error |sum(effects) − (p − p_baseline)| over the scored rows.
The last line is JSON.

Usage::

    .venv/bin/python benchmarks/bench_reasons.py --customers 20000 --reasons 3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from bench_batch_scoring import synthetic_parquet, train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--reasons", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from valuecube.models.reasons import attribute
    from valuecube.serving.batch import score_file
    from valuecube.serving.loading import load_model

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        uri = train_model(store)
        source = synthetic_parquet(store / "in.parquet", args.customers)
        loaded = load_model(uri)
        seconds: dict[int, list[float]] = {0: [], args.reasons: []}
        for _ in range(args.repeats):
            for n in seconds:
                started = time.perf_counter()
                score_file(loaded, source, store / f"out{n}.parquet", progress=False, reasons=n)
                seconds[n].append(time.perf_counter() - started)
        model = loaded.model
        rows = pd.read_parquet(source).head(5_000)
        customers, factors = model.prepare(model.customers(rows))
        X = model.design.transform(customers, factors)
        effects, baseline, _ = attribute(model, X)["churn"]
        p = model.network.predict_churn_proba(X)
        error = float(np.abs(effects.sum(axis=1).to_numpy() - (p - baseline)).max())
    rate = {n: args.customers / statistics.median(s) for n, s in seconds.items()}
    result = {
        "customers": args.customers,
        "reasons": args.reasons,
        "rate_without": round(rate[0]),
        "rate_with": round(rate[args.reasons]),
        "slowdown": round(rate[0] / rate[args.reasons], 2),
        "additivity_max_abs_error": error,
    }
    print(
        f"without reasons {result['rate_without']:,} customers/s, with --reasons {args.reasons} "
        f"{result['rate_with']:,} customers/s ({result['slowdown']}x slower); "
        f"max additivity error {error:.2e} probability"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
