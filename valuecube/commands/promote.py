"""The ``promote`` command: the fair, recorded promotion gate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from valuecube.console import console, fail, render_table


def promote(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="The challenger: models:/NAME@ALIAS, models:/NAME/VERSION, or NAME "
            "(its 'challenger' alias).",
        ),
    ],
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval-data",
            exists=True,
            dir_okay=False,
            help="Labelled file of customers neither model saw (default: the dataset's "
            "evaluation split of the challenger's logged training data).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the evidence; move and record nothing.")
    ] = False,
    auc_margin: Annotated[
        float, typer.Option(help="Accepted ROC-AUC loss (lower interval end ≥ −margin).")
    ] = 0.01,
    brier_margin: Annotated[
        float, typer.Option(help="Accepted Brier increase (lower interval end ≥ −margin).")
    ] = 0.005,
    min_auc: Annotated[float, typer.Option(help="Absolute churn ROC-AUC floor.")] = 0.6,
    max_ece: Annotated[float, typer.Option(help="Absolute expected calibration error cap.")] = 0.1,
    segment_accuracy_floor: Annotated[
        float, typer.Option(help="Absolute floor of segment agreement with the fuzzy cube.")
    ] = 0.5,
    n_boot: Annotated[int, typer.Option(help="Paired bootstrap resamples.", min=100)] = 1000,
) -> None:
    """Move 'champion' to the challenger if it passes the gate on customers neither model saw.

    Both models are scored on the same customers: the dataset's fixed evaluation split
    (by customer-id hash) of the challenger's training data, or --eval-data. A paired
    bootstrap of the ROC-AUC and Brier differences must stay within the margins, and
    calibration and segment agreement pass absolute checks (a first promotion, with no
    champion, passes the absolute checks). The decision is recorded on the challenger's
    version (promotion_* tags and its description). Exit code 2 when refused. A registered
    value cube has no labels to be judged on: its alias moves with no gate.

    Example: valuecube promote -m models:/valuecube-telco@challenger --dry-run
    """
    from valuecube.features.config import ConfigError
    from valuecube.features.inputs import InputError
    from valuecube.training.promotion import GatePolicy
    from valuecube.training.promotion_job import run_promotion
    from valuecube.training.tracking import TrackingError, configure_tracking

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    policy = GatePolicy(
        auc_margin=auc_margin,
        brier_margin=brier_margin,
        min_auc=min_auc,
        max_ece=max_ece,
        segment_accuracy_floor=segment_accuracy_floor,
        n_boot=n_boot,
    )
    try:
        configure_tracking()
        outcome = run_promotion(model, eval_data=eval_data, policy=policy, dry_run=dry_run)
    except (TrackingError, ConfigError, InputError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    if outcome.decision is not None:
        render_table(
            outcome.decision.table,
            f"{outcome.name} v{outcome.challenger} vs "
            f"{'v' + outcome.champion_before if outcome.champion_before else 'no champion'} "
            f"on {outcome.evaluation}",
        )
    console.print(outcome.reason)
    if outcome.decision is not None and not dry_run:
        console.print(f"decision recorded on {outcome.name} version {outcome.challenger}")
    passed = (outcome.decision.passed if outcome.decision is not None else outcome.promoted) or (
        not outcome.gated and outcome.dry_run
    )
    if not passed:
        raise typer.Exit(2)
