"""Is the fuzzy baseline any good? Per-segment churn and spend; PV's rank correlation with spend.

Fits the value cube on a random half of the customers (the *training* half,
where the trees were checked) and reports on the other half (held out), so
the figures are not tuned on the customers they describe.

    .venv/bin/python benchmarks/baseline_quality.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from valuecube.features.config import load_config
from valuecube.features.customers import build_customer_table
from valuecube.features.inputs import load_input
from valuecube.models.value_cube import ValueCube
from valuecube.training.segment import segment_summary

ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"telco": ROOT / "data/telco_churn.csv", "cdnow": ROOT / "data/cdnow_master.txt"}


def evaluate(name: str, seed: int) -> None:
    """Fit on the training half, print the held-out half's per-segment table and correlations."""
    cfg = load_config(ROOT / f"configs/{name}.yaml")
    table = build_customer_table(
        load_input(DATASETS[name], cfg.input, strict=True), cfg.input
    ).table
    train = np.random.default_rng(seed).random(len(table)) < 0.5
    cube = ValueCube(cfg).fit(table[train])
    scored, _ = cube.segment(table[~train])
    scored = scored.join(table[[c for c in ("churn", "future_spend") if c in table.columns]])
    summary = segment_summary(scored).drop(columns=["segment_name"])
    print(
        f"\n== {name}: fuzzy segments of the {len(scored):,} held-out customers "
        "(cube fitted on the other half)"
    )
    print(summary.round(3).to_string())
    high_cv = scored["cv_score"] >= cfg.segmentation.threshold
    print(
        f"churn rate: high-CV {scored.churn[high_cv].mean():.3f} "
        f"vs low-CV {scored.churn[~high_cv].mean():.3f}; "
        f"high-PV {scored.churn[scored.pv_score >= 5].mean():.3f} "
        f"vs low-PV {scored.churn[scored.pv_score < 5].mean():.3f}"
    )
    for col in ("cv_score", "pv_score", "ra_score"):
        line = f"Spearman({col}, churn) = {spearmanr(scored[col], scored['churn']).statistic:+.3f}"
        if "future_spend" in scored:
            rho = spearmanr(scored[col], scored["future_spend"]).statistic
            line += f"   Spearman({col}, future_spend) = {rho:+.3f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    for name in DATASETS:
        evaluate(name, args.seed)


if __name__ == "__main__":
    main()
