"""The ``compare`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from valuecube.console import console, fail


def compare(
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Model URI, e.g. models:/valuecube-telco@challenger."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The HTML report to write (self-contained).")
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="Dataset config (default: the model's).",
        ),
    ] = None,
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="Customers to compare on (default: the model's training input → its test split).",
        ),
    ] = None,
    max_rows: Annotated[
        int | None,
        typer.Option(min=1, help="Compare on a random sample of at most this many customers."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Disagreement customers to list.")] = 10,
    repeats: Annotated[int, typer.Option(min=1, help="Permutation-importance repeats.")] = 3,
    bootstrap: Annotated[
        int, typer.Option(min=20, help="Bootstrap resamples behind every 95 % interval.")
    ] = 200,
    currency: Annotated[str, typer.Option(help="Currency symbol for spend.")] = "$",
    seed: Annotated[int, typer.Option(help="Seed for sampling, peers and permutations.")] = 0,
) -> None:
    """Compare the network with the fuzzy value cube; write an HTML report for analysts.

    Sections: the verdict (which classifier to use for which decision, with
    bootstrap intervals and warnings), the segments with their policies,
    agreement (confusion matrix, kappa, the customers they disagree on most
    and why), churn (ROC, gain/lift, calibration against logistic regression,
    LightGBM and the fuzzy churn score), value (future spend, for transaction
    logs) and explanations (permutation importance); then, for transaction
    logs, where customers are heading (the network's forecast) and the BTYD
    diagnostics, and for customer tables with a lifetime block, Kaplan-Meier
    curves per segment. Prints the verdict and the headline numbers.

    Example: valuecube compare -m models:/valuecube-telco@challenger -o report.html
    """
    from mlflow.exceptions import MlflowException

    from valuecube.features.config import ConfigError
    from valuecube.features.inputs import InputError
    from valuecube.training.compare_inputs import run_compare
    from valuecube.training.report import headline_text
    from valuecube.training.tracking import TrackingError

    try:
        with console.status("comparing network and fuzzy value cube…"):
            result, verdict = run_compare(
                model,
                output,
                config,
                input,
                max_rows=max_rows,
                top=top,
                repeats=repeats,
                bootstrap=bootstrap,
                currency=currency,
                seed=seed,
            )
    except (ConfigError, InputError, TrackingError, MlflowException, ValueError) as exc:
        fail(str(exc))
    for line in verdict.lines():
        console.print(line, markup=False, highlight=False)
    for label, value in headline_text(result.headline).items():
        console.print(f"{label:>40}  {value}")
    console.print(f"wrote {output}")
