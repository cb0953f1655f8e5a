"""Options of ``valuecube train`` for the quality guard and shared Optuna studies."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from valuecube.console import console, fail, render_table

AllowWorse = Annotated[
    str | None,
    typer.Option(
        "--allow-worse",
        metavar="REASON",
        help="Register even if the quality guard fails; REASON is tagged on the version.",
    ),
]
BrierTolerance = Annotated[
    float,
    typer.Option(help="Guard: the network's churn Brier may exceed logistic regression's by this."),
]
AucTolerance = Annotated[
    float,
    typer.Option(
        help="Guard: the network's churn ROC-AUC may trail logistic regression's by this."
    ),
]
SegmentFloor = Annotated[
    float,
    typer.Option(help="Guard: lowest accepted segment accuracy against the fuzzy segments."),
]
Study = Annotated[
    str | None,
    typer.Option(
        help="Optuna study name to create or join in --storage (default: a new name per train)."
    ),
]
Worker = Annotated[
    int, typer.Option(help="This process's index in a shared study (its sampler seed).", min=0)
]
TuneOnly = Annotated[
    bool,
    typer.Option(
        "--tune-only", help="Run trials of --study in --storage, register nothing (a worker)."
    ),
]
FromStudy = Annotated[
    str | None,
    typer.Option(
        "--from-study",
        metavar="NAME",
        help="Run no trials: retrain the best trial of study NAME in --storage and register it.",
    ),
]


class Posterior(StrEnum):
    """BTYD estimation by the library's posterior instead of MAP."""

    advi = "advi"
    mcmc = "mcmc"


POSTERIOR_HELP = (
    "Transaction logs: fit BTYD (purchases and Gamma-Gamma spend) by PyMC-Marketing's "
    "posterior instead of MAP, overriding the config's bgnbd.method. clv_low/clv_high then "
    "come from the posterior draws instead of the Laplace approximation around the MAP, and "
    "point outputs are posterior means. Costs: advi tens of seconds more on a large log, "
    "mcmc (NUTS, 2 chains) minutes; the MAP default is the fastest."
)
PosteriorOption = Annotated[
    Posterior | None, typer.Option("--posterior", help=POSTERIOR_HELP, case_sensitive=False)
]


def posterior_method(posterior: Posterior | None) -> str | None:
    """The method name for ``features.config.with_posterior`` (``None``: the config's)."""
    return None if posterior is None else posterior.value


def guard_policy(allow_worse, brier_tolerance, auc_tolerance, segment_floor):
    """The training guard's policy from the command-line options."""
    from valuecube.training.guards import GuardPolicy

    return GuardPolicy(brier_tolerance, auc_tolerance, segment_floor, allow_worse)


def tune_only(config: Path, input: Path | None, **options) -> None:
    """``--tune-only``: run this worker's trials and print the study's state."""
    from valuecube.training.studies import run_worker

    if not options.get("study") or not options.get("storage"):
        fail("--tune-only needs --study NAME and --storage URL (the study the workers share)")
    study = run_worker(config, input, **options)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    console.print(
        f"study {study.study_name}: {len(study.trials)} trials ({len(complete)} complete), "
        f"best {study.best_value:.4f} (trial {study.best_trial.number}); "
        f"register it with: valuecube train -c {config} --storage {options['storage']} "
        f"--from-study {study.study_name}"
    )


def refused(exc) -> None:
    """Print the guard's table and exit with code 2."""
    render_table(exc.decision.table, "quality guard on the test customers (not registered)")
    fail(str(exc), code=2)
