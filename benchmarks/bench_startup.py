"""Start-up cost: a fresh ``valuecube`` process that loads the model and scores one customer.

Measures, in fresh processes and interleaved ``--repeats`` times (medians
reported), the wall time of

* ``valuecube score -m MODEL -i one.csv -o scores.csv`` on one Telco
  customer (process start + imports + model resolution and load + one score
  + the CSV written + the monitoring run logged to MLflow), and the same with
  ``--monitor-experiment ''`` (no monitoring run: MLflow is never imported),
  against the goal of at most 3 s;
* in the monitored run, the moment its scores file is complete (it is renamed
  into place; the monitoring run is logged after it);
* ``valuecube --help`` (the command line's own imports);
* two floors: ``python -c pass`` and ``python -c "import numpy, pandas, pyarrow"``
  (the libraries any scoring needs);

and prints their medians, the ratios to the second floor, the load average
and a last line of JSON. ``--model`` defaults to the demo's registered model
(``make demo``); set ``MLFLOW_TRACKING_URI`` for another store.

Usage::

    .venv/bin/python benchmarks/bench_startup.py --model models:/valuecube-telco@challenger
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed_run(command: list[str], watch: Path | None = None) -> tuple[float, float | None]:
    """Wall seconds of ``command`` in a fresh process, and when ``watch`` appeared (or None).

    ``watch`` is the command's output file: ``valuecube score`` renames a
    finished file into place, so its appearance is the moment the scores are
    complete (polled every 5 ms). Raises with the stderr tail when it fails.
    """
    if watch is not None:
        watch.unlink(missing_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    written = None
    while watch is not None and written is None and process.poll() is None:
        if watch.exists():
            written = time.perf_counter() - start
        else:
            time.sleep(0.005)
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {stderr.strip()[-2000:]}")
    if watch is not None and written is None and watch.exists():
        written = seconds
    return seconds, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/valuecube-telco@challenger")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    cli = str(Path(python).parent / "valuecube")
    with tempfile.TemporaryDirectory(prefix="valuecube-startup-") as tmp:
        one = Path(tmp) / "one.csv"
        lines = (ROOT / "data" / "telco_churn.csv").read_text().splitlines()[:2]
        one.write_text("\n".join(lines) + "\n")
        commands = {
            "python_pass": [python, "-c", "pass"],
            "import_numpy_pandas_pyarrow": [python, "-c", "import numpy, pandas, pyarrow"],
            "cli_help": [cli, "--help"],
            "score_one": [cli, "score", "-m", args.model, "-i", str(one), "-o", f"{tmp}/s.csv"],
        }
        commands["score_one_unmonitored"] = [*commands["score_one"], "--monitor-experiment", ""]
        output = Path(tmp) / "s.csv"
        timed_run(commands["score_one"])  # warm the page cache and the store once
        runs: dict[str, list[float]] = {name: [] for name in commands}
        runs["score_one_scores_written"] = []
        for _ in range(args.repeats):
            for name, command in commands.items():
                seconds, written = timed_run(command, output if name == "score_one" else None)
                runs[name].append(seconds)
                if written is not None:
                    runs["score_one_scores_written"].append(written)
    medians = {name: statistics.median(times) for name, times in runs.items() if times}
    floor = medians["import_numpy_pandas_pyarrow"]
    load = os.getloadavg()
    for name, seconds in medians.items():
        print(f"{name:30s} {seconds:7.3f} s  ({seconds / floor:5.2f}x numpy+pandas+pyarrow)")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; goal: unmonitored <= 3 s")
    print(
        json.dumps(
            {
                "model": args.model,
                "repeats": args.repeats,
                "median_s": {k: round(v, 3) for k, v in medians.items()},
                "score_one_vs_floor": round(medians["score_one"] / floor, 2),
                "score_one_unmonitored_vs_floor": round(
                    medians["score_one_unmonitored"] / floor, 2
                ),
                "goal_met": medians["score_one_unmonitored"] <= 3.0,
                "load_average": [round(x, 2) for x in load],
            }
        )
    )


if __name__ == "__main__":
    main()
