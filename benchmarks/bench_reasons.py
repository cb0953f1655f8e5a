"""Benchmark the cost of churn reasons: local batch scoring with and without ``--reasons N``.

Scores with ``--model`` (default: the demo's registered model, as ``make
demo`` trains it; ``--model train`` trains a small one into a temporary store,
as ``bench_batch_scoring.py`` does, reusing its helpers), writes
``--customers`` synthetic Telco customers as Parquet, then runs
``serving.batch.score_file`` in this process with ``reasons=0`` and
``reasons=N``, interleaved, ``--repeats`` times (after one untimed warm-up of
each, which pays the one-off imports); prints the medians, their ratio, the
largest completeness error |sum(effects) − (p − p_baseline)| over the first
5,000 customers with the model's integration steps
(``models.reasons.N_STEPS``), the largest difference of any effect from a
64-step reference, and the machine's load average. The last line is JSON.

Usage::

    .venv/bin/python benchmarks/bench_reasons.py --customers 20000 --reasons 3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from bench_batch_scoring import DEMO_MODEL, synthetic_parquet, train_model

REFERENCE_STEPS = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=DEMO_MODEL, help="model URI, or 'train' for a small temporary one"
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--reasons", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from valuecube.models.reasons import N_STEPS, attribute
    from valuecube.serving.batch import score_file
    from valuecube.serving.loading import load_model

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        uri = train_model(store) if args.model == "train" else args.model
        source = synthetic_parquet(store / "in.parquet", args.customers)
        loaded = load_model(uri)
        seconds: dict[int, list[float]] = {0: [], args.reasons: []}
        for n in seconds:  # warm-up: imports (torch), first-call costs
            score_file(loaded, source, store / f"out{n}.parquet", progress=False, reasons=n)
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
        reference, _, _ = attribute(model, X, n_steps=REFERENCE_STEPS)["churn"]
        p = model.network.predict_churn_proba(X)
        error = float(np.abs(effects.sum(axis=1).to_numpy() - (p - baseline)).max())
        drift = float(np.abs(effects.to_numpy() - reference.to_numpy()).max())
    rate = {n: args.customers / statistics.median(s) for n, s in seconds.items()}
    result = {
        "model": uri if args.model != "train" else "train",
        "customers": args.customers,
        "reasons": args.reasons,
        "steps": N_STEPS,
        "seconds_without": [round(x, 3) for x in seconds[0]],
        "seconds_with": [round(x, 3) for x in seconds[args.reasons]],
        "rate_without": round(rate[0]),
        "rate_with": round(rate[args.reasons]),
        "slowdown": round(rate[0] / rate[args.reasons], 2),
        "additivity_max_abs_error": error,
        f"max_abs_effect_difference_vs_{REFERENCE_STEPS}_steps": drift,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(
        f"without reasons {result['rate_without']:,} customers/s, with --reasons {args.reasons} "
        f"{result['rate_with']:,} customers/s ({result['slowdown']}x slower); "
        f"{N_STEPS} steps: max additivity error {error:.2e} probability, "
        f"effects within {drift:.1e} of {REFERENCE_STEPS} steps; load {os.getloadavg()}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
