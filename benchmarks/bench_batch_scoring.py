"""Benchmark local batch scoring, Parquet → Parquet, end to end, next to its floor.

Scores with ``--model`` (default: the demo's registered model, as ``make
demo`` trains it; ``--model train`` trains a small one into a temporary
store instead), writes
``--customers`` synthetic Telco-shaped customers (real rows resampled with
jitter, unique ids, typed Parquet columns, blank totalcharges at tenure 0 as
in the real file), then measures in the same run:

* the job: ``serving.batch.score_file`` with the default chunk size, in a
  fresh subprocess set up as ``valuecube score`` sets its own
  (``valuecube.process.keep_freed_memory``): throughput, and its peak RSS;
* the floor: reading the input with pyarrow, the bare network's forward pass
  on the same rows (its input matrix built beforehand, untimed), and writing
  the output with pyarrow;

each ``--repeats`` times, interleaved, reporting medians (the machine is
shared: the ratio of medians measured side by side is the robust figure);
* start-up: ``valuecube score`` of a one-customer file in a fresh process
  (process start, imports, model resolution and load, one customer, write);
* peak memory of the same job on ``--memory-customers`` rows (default
  5,000,000; 0 skips it);
* with ``--reasons N`` (N > 0), the same job with ``churn_reasons`` (the
  ``valuecube score`` default is 3), interleaved with the others: its time
  and its ratio to the job without them.

The last line printed is JSON with the figures.

Goals: ≥ 400,000 customers/s, within 1.5× the floor, start-up ≤ 3 s, peak RSS < 2 GB.

Usage::

    .venv/bin/python benchmarks/bench_batch_scoring.py --customers 1000000 \
        --memory-customers 5000000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_RATE = 400_000
TARGET_FLOOR_RATIO = 1.5
TARGET_STARTUP_S = 3.0
DEMO_MODEL = "models:/valuecube-telco@challenger"
TARGET_RSS_MB = 2048
PIECE = 500_000


def train_model(store: Path, name: str = "bench-telco") -> str:
    """Train a small Telco model into ``store`` (trials=1, few epochs); return its registry URI."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    from valuecube.training.guards import GuardPolicy
    from valuecube.training.train import run_train

    result = run_train(
        ROOT / "configs" / "telco.yaml",
        trials=1,
        max_epochs=8,
        guard=GuardPolicy(allow_worse="a small model for tests and benchmarks"),
        seed=0,
        register_as=name,
        experiment="bench",
    )
    return result.model_uri


def synthetic_parquet(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` Telco-shaped customers as typed Parquet, written in pieces (bounded memory)."""
    real = pa.csv.read_csv(
        ROOT / "data" / "telco_churn.csv",
        convert_options=pa.csv.ConvertOptions(
            column_types={c: pa.string() for c in ("customerid", "totalcharges")}
        ),
    )
    real = real.drop_columns(["churn"])
    rng = np.random.default_rng(seed)
    schema = _schema(real)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, PIECE):
            m = min(PIECE, n - start)
            t = real.take(pa.array(rng.integers(0, real.num_rows, m)))
            tenure = np.clip(t["tenure"].to_numpy() + rng.integers(-2, 3, m), 0, None)
            monthly = np.round(t["monthlycharges"].to_numpy() * rng.uniform(0.95, 1.05, m), 2)
            total = np.round(monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.1, m), 2)
            columns = {name: t[name] for name in t.column_names}
            columns["customerid"] = pa.array(
                np.char.add("SYN-", np.arange(start, start + m).astype("U9"))
            )
            columns["tenure"] = pa.array(tenure, pa.int64())
            columns["monthlycharges"] = pa.array(monthly)
            columns["totalcharges"] = pa.array(total, mask=tenure == 0)
            table = pa.table(columns)
            writer.write_table(table.cast(schema), row_group_size=100_000)
    return path


def _schema(table: pa.Table) -> pa.Schema:
    fields = [
        pa.field(f.name, pa.float64() if f.name == "totalcharges" else f.type) for f in table.schema
    ]
    return pa.schema(fields)


def run_job(
    uri: str, source: Path, output: Path, chunk_rows: int | None = None, reasons: int = 0
) -> dict:
    """Run the scoring job in a fresh Python (model load not timed); its JSON report."""
    args = [sys.executable, __file__, "--job", uri, str(source), str(output)]
    if chunk_rows:
        args += ["--chunk-rows", str(chunk_rows)]
    if reasons:
        args += ["--reasons", str(reasons)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over from the parent
    through fork and exec, so a child started by a big benchmark process
    would report the parent's peak.
    """
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
        / 1024
    )


def _job(uri: str, source: str, output: str, chunk_rows: int | None, reasons: int = 0) -> None:
    from valuecube.process import keep_freed_memory
    from valuecube.serving.batch import DEFAULT_CHUNK_ROWS, score_file
    from valuecube.serving.loading import load_model

    keep_freed_memory()  # as `valuecube score` sets its process
    loaded = load_model(uri)
    if reasons:  # the one-off torch import is start-up, not scoring
        import valuecube.models.reasons  # noqa: F401
    start = time.perf_counter()
    result = score_file(
        loaded,
        source,
        output,
        chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS,
        progress=False,
        reasons=reasons,
    )
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": result.rows_read,
                "scored": result.customers_scored,
                "rejected": result.rows_rejected,
                "chunk_rows": chunk_rows or DEFAULT_CHUNK_ROWS,
                "peak_rss_mb": peak_rss_mb(),
                "drifted": result.drifted,
            }
        )
    )


def forward_matrix(uri: str, source: Path):
    """The bare network and its standardised input matrix for every row of ``source`` (untimed)."""
    import torch

    from valuecube.features.customers import build_customer_table
    from valuecube.features.inputs import read_chunks, validate_chunk
    from valuecube.serving.loading import load_model

    model = load_model(uri).model
    spec = model.config.input
    parts = []
    for chunk in read_chunks(source, spec, 200_000):
        table = build_customer_table(
            validate_chunk(chunk, spec, "bench"), spec, with_labels=False
        ).table
        X = model.design.transform(table).to_numpy()
        parts.append(
            ((X - model.network.input_mean_) / model.network.input_scale_).astype(np.float32)
        )
    return model.network.module_, torch.from_numpy(np.concatenate(parts))


def forward_seconds(module, X) -> float:
    """One timed forward pass of ``module`` over ``X``."""
    import torch

    with torch.inference_mode():
        module(X[:1000])  # warm-up
        start = time.perf_counter()
        module(X)
        return time.perf_counter() - start


def startup_seconds(uri: str, tmp: Path) -> float:
    """Wall time of ``valuecube score`` on a one-customer CSV in a fresh process."""
    one = tmp / "one.csv"
    lines = (ROOT / "data" / "telco_churn.csv").read_text().splitlines()[:2]
    one.write_text("\n".join(lines) + "\n")
    command = [str(Path(sys.executable).parent / "valuecube"), "score", "-m", uri, "-i", str(one)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "-o", str(tmp / "one_scores.csv")], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return seconds


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=DEMO_MODEL,
        help=f"model URI to score with (default {DEMO_MODEL}; 'train': a small temporary one)",
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--memory-customers", type=int, default=5_000_000)
    parser.add_argument(
        "--job", nargs=3, metavar=("URI", "INPUT", "OUTPUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--chunk-rows", type=int, default=None)
    parser.add_argument(
        "--reasons",
        type=int,
        default=0,
        help="also time the job with --reasons N (0: not measured)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of the job and of each floor part (medians)"
    )
    args = parser.parse_args()
    if args.job:
        _job(*args.job, args.chunk_rows, args.reasons)
        return

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        uri = args.model
        if uri == "train":
            t0 = time.perf_counter()
            uri = train_model(tmp)
            print(f"trained {uri} in {time.perf_counter() - t0:.0f} s")
        source = synthetic_parquet(tmp / "customers.parquet", args.customers)
        out = tmp / "scores.parquet"
        n = args.customers

        module, X = forward_matrix(uri, source)
        jobs, reads, forwards, writes, starts, with_reasons = [], [], [], [], [], []
        for _ in range(args.repeats):  # interleaved, so load changes hit job and floor alike
            starts.append(startup_seconds(uri, tmp))
            jobs.append(run_job(uri, source, out))
            if args.reasons:
                with_reasons.append(run_job(uri, source, tmp / "r.parquet", reasons=args.reasons))
            reads.append(timed(lambda: pq.read_table(source)))
            forwards.append(forward_seconds(module, X))
            scored = pq.read_table(out)
            writes.append(timed(lambda s=scored: pq.write_table(s, tmp / "floor_write.parquet")))
        del X
        job_s = float(np.median([j["seconds"] for j in jobs]))
        read_s, forward_s, write_s = (float(np.median(v)) for v in (reads, forwards, writes))
        floor = read_s + forward_s + write_s
        rate = n / job_s
        job = jobs[0]
        rss = float(np.median([j["peak_rss_mb"] for j in jobs]))
        runs = ", ".join(f"{j['seconds']:.2f}" for j in jobs)
        startup = float(np.median(starts))
        load_avg = os.getloadavg()[0]

        print(
            f"\nbatch scoring, {n:,} synthetic Telco customers, Parquet → Parquet, median of "
            f"{args.repeats} with {uri} "
            f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load avg "
            f"{load_avg:.1f})"
        )
        print(
            f"  job (score_file, chunk {job['chunk_rows']:,}): {job_s:.2f} s · {rate:,.0f} "
            "customers/s · "
            f"scored {job['scored']:,} · rejected {job['rejected']:,} · peak RSS {rss:,.0f} MB "
            f"(runs: {runs} s)"
        )
        print(
            f"  floor: read {read_s:.2f} s + forward {forward_s:.2f} s + write {write_s:.2f} s = "
            f"{floor:.2f} s "
            f"({n / floor:,.0f} customers/s)"
        )
        print(
            f"  job / floor: {job_s / floor:.2f}× (goal ≤ {TARGET_FLOOR_RATIO:.1f}×: "
            f"{'met' if job_s / floor <= TARGET_FLOOR_RATIO else 'MISSED'}) · throughput goal "
            f"≥ {TARGET_RATE:,}/s: {'met' if rate >= TARGET_RATE else 'MISSED'}"
        )
        print(
            f"  start-up (valuecube score, one customer, fresh process): {startup:.2f} s "
            f"(goal ≤ {TARGET_STARTUP_S:.0f} s: "
            f"{'met' if startup <= TARGET_STARTUP_S else 'MISSED'}"
            f"; runs: {', '.join(f'{s:.2f}' for s in starts)} s)"
        )
        pc.sum(scored["churn_probability"])  # keep the table alive until here
        figures = {
            "model": uri,
            "customers": n,
            "load_avg": load_avg,
            "job_s": job_s,
            "customers_per_s": rate,
            "floor_s": floor,
            "floor_read_s": read_s,
            "floor_forward_s": forward_s,
            "floor_write_s": write_s,
            "job_floor_ratio": job_s / floor,
            "peak_rss_mb": rss,
            "startup_s": startup,
        }
        if args.reasons:
            reasons_s = float(np.median([j["seconds"] for j in with_reasons]))
            reasons_runs = ", ".join(f"{j['seconds']:.2f}" for j in with_reasons)
            print(
                f"  with --reasons {args.reasons}: {reasons_s:.2f} s · {n / reasons_s:,.0f} "
                f"customers/s · {reasons_s / job_s:.2f}× the job without "
                f"(runs: {reasons_runs} s)"
            )
            figures.update(
                reasons=args.reasons,
                job_with_reasons_s=reasons_s,
                reasons_slowdown=reasons_s / job_s,
            )

        if args.memory_customers:
            big = synthetic_parquet(tmp / "big.parquet", args.memory_customers, seed=1)
            (tmp / "customers.parquet").unlink()
            mem = run_job(uri, big, tmp / "big_scores.parquet")
            print(
                f"  memory: {args.memory_customers:,} customers, default chunk "
                f"{mem['chunk_rows']:,}: "
                f"peak RSS {mem['peak_rss_mb']:,.0f} MB (target < {TARGET_RSS_MB:,} MB: "
                f"{'met' if mem['peak_rss_mb'] < TARGET_RSS_MB else 'MISSED'}) · "
                f"{mem['seconds']:.1f} s · "
                f"{args.memory_customers / mem['seconds']:,.0f} customers/s"
            )
            figures["memory_customers"] = args.memory_customers
            figures["memory_peak_rss_mb"] = mem["peak_rss_mb"]
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
