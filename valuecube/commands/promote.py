"""The ``promote`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from valuecube.console import console, fail


def promote(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Registered model name, e.g. valuecube-telco.")
    ],
) -> None:
    """Move 'champion' to the 'challenger' if its test churn ROC-AUC is at least the champion's.

    Both versions are re-evaluated now on the challenger's test customers. Otherwise
    the aliases stay as they are and the reason is printed (exit code 2). A registered
    value cube (segment --register-as) has no labels to gate on: it is promoted as asked.
    """
    from valuecube.training.registry import promote as run_promote
    from valuecube.training.tracking import TrackingError, configure_tracking

    try:
        configure_tracking()
        outcome = run_promote(model)
    except (TrackingError, ValueError) as exc:
        fail(str(exc))
    console.print(outcome.reason)
    if not outcome.promoted:
        raise typer.Exit(2)
