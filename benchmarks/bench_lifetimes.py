"""Customer lifetimes: BTYD model choice on CDNOW, first-run cost, survival models on Telco.

* ``btyd``: BG/NBD, MBG/NBD and Pareto/NBD (MAP) on the bundled CDNOW log.
  The model is chosen on a split inside the calibration window (features
  1997-01-01..1997-06-30, holdout 1997-07-01..1997-09-30), so the project's
  own holdout (to 1998-06-30) is not used for the choice; it is then reported
  on the project's protocol. Per model: parameters, fit seconds, ROC-AUC of
  P(alive) and of expected purchases for "bought in the holdout", and the
  total expected against actual holdout purchase days.
* ``cost``: ``BtydValue().fit`` on all 18,856 customers in a fresh process with
  an empty PyTensor compile directory (cold), then again in fresh processes
  with that directory kept (warm, median of 3).
* ``survival``: on Telco, the customer split ``train`` uses (seed 0). The
  model is chosen on the validation customers (fit on train); the figures are
  then on the test customers (fit on train + validation): Harrell's C-index of
  the risk score, the integrated Brier score over months 1..71, and the ROC-AUC
  of −expected_remaining_months and −survival_12m for churn. Peers on the same
  customers and covariates: scikit-survival's Cox PH, and, with
  ``--lifelines-python`` (an interpreter with lifelines, which needs pandas < 3),
  lifelines' Cox PH and Weibull AFT.

    .venv/bin/python benchmarks/bench_lifetimes.py [--sections btyd cost survival]
        [--lifelines-python /tmp/venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from valuecube.features.btyd import BTYD_MODELS, BtydValue, parameter_summary
from valuecube.features.config import load_config
from valuecube.features.factors import compute_factors
from valuecube.features.survival import (
    SurvivalValue,
    conditional_on_tenure,
    lifetime_columns,
    lifetime_design,
    monthly_rate,
    survival_on,
)
from valuecube.features.transactions import customer_features
from valuecube.training.data import load_training_data

ROOT = Path(__file__).resolve().parent.parent
CDNOW = ROOT / "data" / "cdnow_master.txt"
warnings.filterwarnings("ignore")


def cdnow_log() -> pd.DataFrame:
    tx = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str})
    return pd.DataFrame(
        {
            "customer_id": tx["customer_id"],
            "date": pd.to_datetime(tx["date"].astype(str), format="%Y%m%d"),
            "quantity": tx["number_of_cds"].astype(float),
            "amount": tx["dollar_value"].astype(float),
        }
    )


def btyd_section() -> None:
    log = cdnow_log()
    splits = {
        "choice (inner: 1997-06-30 / holdout to 1997-09-30)": ("1997-06-30", "1997-09-30"),
        "report (project: 1997-09-30 / holdout to 1998-06-30)": ("1997-09-30", "1998-06-30"),
    }
    for label, (as_of, end) in splits.items():
        rfm = customer_features(
            log,
            pd.Timestamp(as_of),
            window_start=pd.Timestamp("1997-01-01"),
            holdout_end=pd.Timestamp(end),
        )
        horizon = (pd.Timestamp(end) - pd.Timestamp(as_of)).days
        active = rfm["churn"].to_numpy() == 0
        print(f"\n## BTYD, {label}: {len(rfm)} customers, {active.mean():.1%} buy in the holdout")
        print("| model | fit s | AUC P(alive) | AUC E[purchases] | E total / actual |")
        print("|---|---|---|---|---|")
        for key in BTYD_MODELS:
            start = time.perf_counter()
            model = BtydValue(model=key, horizon_days=horizon, n_draws=20).fit(rfm)
            seconds = time.perf_counter() - start
            out = model.transform(rfm)
            ratio = out["expected_purchases"].sum() / rfm["future_purchases"].sum()
            print(
                f"| {parameter_summary(model)} | {seconds:.1f} | "
                f"{roc_auc_score(active, out['p_alive']):.3f} | "
                f"{roc_auc_score(active, out['expected_purchases']):.3f} | {ratio:.3f} |"
            )


_COST_SCRIPT = textwrap.dedent(
    """
    import time, warnings, pandas as pd
    warnings.filterwarnings("ignore")
    from valuecube.features.btyd import BtydValue
    rfm = pd.read_parquet({path!r})
    start = time.perf_counter()
    BtydValue().fit(rfm)
    print(time.perf_counter() - start)
    """
)


def cost_section() -> None:
    rfm = customer_features(
        cdnow_log(), pd.Timestamp("1997-09-30"), window_start=pd.Timestamp("1997-01-01")
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rfm.parquet"
        rfm.to_parquet(path)
        env = {**os.environ, "PYTENSOR_FLAGS": f"compiledir={Path(tmp) / 'pytensor'}"}
        script = _COST_SCRIPT.format(path=str(path))

        def run() -> float:
            out = subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
            )
            return float(out.stdout.strip().splitlines()[-1])

        cold = run()
        warm = [run() for _ in range(3)]
    print(
        f"\n## First-run cost: BtydValue().fit on {len(rfm)} customers (BG/NBD MAP + Laplace, GG)"
    )
    print(
        f"cold (empty PyTensor cache): {cold:.1f} s; warm: median {np.median(warm):.1f} s "
        f"(runs {', '.join(f'{w:.1f}' for w in warm)})"
    )


_LIFELINES_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd
    from lifelines import CoxPHFitter, WeibullAFTFitter
    train, test, out = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2]), sys.argv[3]
    grid = np.arange(0, int(sys.argv[4]) + 61)
    train = train.assign(tenure=train["tenure"].clip(lower=0.5))  # Weibull needs t > 0
    for name, model in (("lifelines Cox PH", CoxPHFitter(penalizer=1e-4)),
                        ("lifelines Weibull AFT", WeibullAFTFitter(penalizer=1e-4))):
        model.fit(train, duration_col="tenure", event_col="churn")
        s = model.predict_survival_function(test.drop(columns=["tenure", "churn"]), times=grid)
        pd.DataFrame(s.T.to_numpy(), columns=grid).to_csv(f"{out}/{name}.csv", index=False)
    """
)


def _brier_times(y_fit, y_eval) -> np.ndarray:
    return np.arange(1, int(min(y_fit["time"].max(), y_eval["time"].max())))


def _survival_metrics(name, y_fit, y_eval, at, conditional, risk) -> dict:
    """C-index, integrated Brier score (``at``: S at the Brier times) and churn ROC-AUCs."""
    from sksurv.metrics import concordance_index_censored, integrated_brier_score

    remaining = conditional[:, 1:61].sum(axis=1)
    return {
        "model": name,
        "C-index": concordance_index_censored(y_eval["event"], y_eval["time"], risk)[0],
        "IBS": integrated_brier_score(y_fit, y_eval, at, _brier_times(y_fit, y_eval)),
        "AUC -ERM": roc_auc_score(y_eval["event"], -remaining),
        "AUC -S12": roc_auc_score(y_eval["event"], -conditional[:, 12]),
    }


def _from_grid(grid_survival: np.ndarray, tenure: np.ndarray, brier_times: np.ndarray):
    """(S at the Brier times, S(t | τ) for t = 0..60) from S on the month grid 0, 1, ..."""
    grid = np.arange(grid_survival.shape[1], dtype=float)
    at = survival_on(
        grid, grid_survival, np.broadcast_to(brier_times, (len(tenure), len(brier_times)))
    )
    months = tenure[:, np.newaxis] + np.arange(61)
    return at, conditional_on_tenure(survival_on(grid, grid_survival, months))


def survival_section(lifelines_python: str | None) -> None:
    from sksurv.util import Surv

    cfg = load_config(ROOT / "configs" / "telco.yaml")
    data = load_training_data(cfg, seed=0)
    table = data.customers.table
    design = lifetime_design(table, compute_factors(table, cfg.factors), cfg)
    churn = table["churn"]
    columns = lifetime_columns(cfg)
    rate = monthly_rate(cfg.clv.discount_rate)
    end = int(design["tenure"].max())

    def target(ids):
        return Surv.from_arrays(churn.loc[ids].to_numpy().astype(bool), design.loc[ids, "tenure"])

    stages = {
        "choice: fit on train, scored on validation": (data.split.train, data.split.validation),
        "report: fit on train + validation, scored on test": (
            data.split.train.append(data.split.validation),
            data.split.test,
        ),
    }
    for label, (fit_ids, eval_ids) in stages.items():
        rows = []
        variants = [
            (model, baseline, f"{label} (sksurv, {baseline} baseline)")
            for model, label in (("gradient_boosting", "GB Cox"), ("cox", "Cox PH"))
            for baseline in ("weibull", "breslow")
        ]
        for key, baseline, name in variants:
            start = time.perf_counter()
            model = SurvivalValue(
                "tenure",
                columns,
                "monthly_revenue",
                model=key,
                baseline=baseline,
                monthly_discount_rate=rate,
            ).fit(design.loc[fit_ids], churn.loc[fit_ids])
            seconds = time.perf_counter() - start
            X_eval = design.loc[eval_ids]
            times = _brier_times(target(fit_ids), target(eval_ids))
            metrics = _survival_metrics(
                name,
                target(fit_ids),
                target(eval_ids),
                model.survival_at(X_eval, np.broadcast_to(times, (len(X_eval), len(times)))),
                model.conditional_survival(X_eval),
                model.risk_score(X_eval),
            )
            rows.append({**metrics, "fit s": seconds})
        if lifelines_python:
            with tempfile.TemporaryDirectory() as tmp:
                keep = ["tenure", *columns]
                design.loc[fit_ids, keep].assign(churn=churn.loc[fit_ids]).to_csv(
                    f"{tmp}/fit.csv", index=False
                )
                design.loc[eval_ids, keep].assign(churn=churn.loc[eval_ids]).to_csv(
                    f"{tmp}/eval.csv", index=False
                )
                start = time.perf_counter()
                subprocess.run(
                    [
                        lifelines_python,
                        "-c",
                        _LIFELINES_SCRIPT,
                        f"{tmp}/fit.csv",
                        f"{tmp}/eval.csv",
                        tmp,
                        str(end),
                    ],
                    check=True,
                )
                seconds = time.perf_counter() - start
                for name in ("lifelines Cox PH", "lifelines Weibull AFT"):
                    grid = pd.read_csv(f"{tmp}/{name}.csv").to_numpy()
                    # risk: 1 − S at the median tenure, a monotone stand-in for the hazard ranking
                    risk = 1 - grid[:, min(24, end)]
                    y_fit, y_eval = target(fit_ids), target(eval_ids)
                    at, conditional = _from_grid(grid, y_eval["time"], _brier_times(y_fit, y_eval))
                    metrics = _survival_metrics(name, y_fit, y_eval, at, conditional, risk)
                    rows.append({**metrics, "fit s": seconds / 2})
        print(f"\n## Survival on Telco, {label} ({len(fit_ids)} / {len(eval_ids)} customers)")
        print(pd.DataFrame(rows).round(4).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", default=["btyd", "cost", "survival"])
    parser.add_argument("--lifelines-python", default=None)
    args = parser.parse_args()
    if "btyd" in args.sections:
        btyd_section()
    if "cost" in args.sections:
        cost_section()
    if "survival" in args.sections:
        survival_section(args.lifelines_python)


if __name__ == "__main__":
    main()
