"""The ``segment`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from valuecube.commands.train_options import PosteriorOption, posterior_method
from valuecube.console import (
    InputOption,
    RejectsOption,
    compact_summary,
    console,
    err,
    fail,
    render_table,
)


def btyd_parameters(cube: object) -> str | None:
    """The cube's fitted BTYD parameters in one line (transaction logs), else ``None``."""
    bgnbd = getattr(cube, "bgnbd_", None)
    if bgnbd is None:
        return None
    from valuecube.features.btyd import parameter_summary

    return parameter_summary(bgnbd)


def segment(
    input: InputOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to write one row per customer (.csv or .parquet)."
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Dataset config (YAML), e.g. configs/telco.yaml. Not needed with --cube.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    rejects: RejectsOption = None,
    cube: Annotated[
        str | None,
        typer.Option(
            "--cube",
            help="Apply a saved cube without refitting: a folder written by --save-cube, "
            "or models:/NAME@ALIAS (a registered cube, or a network model's own cube).",
        ),
    ] = None,
    save_cube: Annotated[
        Path | None,
        typer.Option(
            "--save-cube", help="Save the cube fitted here as an MLflow pyfunc model folder."
        ),
    ] = None,
    ratings: Annotated[
        Path | None,
        typer.Option(
            "--ratings",
            help="Expert ratings file (customer_id, factor, expert, grade) instead of the "
            "config's, for configs with expert-rated factors.",
        ),
    ] = None,
    register_as: Annotated[
        str | None,
        typer.Option(
            "--register-as",
            help="Register the fitted cube in the MLflow registry under this name "
            "(alias champion on the first version, challenger after).",
        ),
    ] = None,
    posterior: PosteriorOption = None,
) -> None:
    """Segment every customer with the fuzzy value cube (the interpretable baseline).

    Scores the three value dimensions (CV, PV, RA, each 1–9), places each customer
    in one of the eight segments and adds CLV, lifecycle stage and loyalty type.
    Without --cube the cube (frozen normalisation, AHP weights) is fitted on this
    input; --save-cube keeps it, and --cube applies it to new customers unchanged.

    Example: valuecube segment -c configs/telco.yaml -i data/telco_churn.csv -o out/seg.parquet
    """
    from valuecube.features.config import ConfigError
    from valuecube.features.inputs import InputError
    from valuecube.features.io import check_output_paths, table_format
    from valuecube.training.segment import run_segment
    from valuecube.training.tracking import TrackingError

    try:
        table_format(output)
        if rejects is not None:
            table_format(rejects)
        check_output_paths(input, {"--output": output, "--rejects": rejects})
        with console.status("segmenting customers…"):
            result = run_segment(
                config,
                input,
                output=output,
                rejects_path=rejects,
                cube=cube,
                save_cube_to=save_cube,
                register_as=register_as,
                ratings=ratings,
                posterior=posterior_method(posterior),
            )
    except (ConfigError, InputError, TrackingError, ValueError, OSError) as exc:
        fail(str(exc))
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    render_table(
        compact_summary(result.summary), f"{result.config.name}: fuzzy value-cube segments"
    )
    btyd = btyd_parameters(result.cube)
    if btyd:
        console.print(btyd, markup=False, soft_wrap=True)
    if result.fitted:
        console.print(
            f"cube fitted on this input ({len(result.customers.table):,} customers); "
            "save it with --save-cube DIR, apply it to new customers with --cube DIR",
            markup=False,
            soft_wrap=True,
        )
    else:
        console.print(
            f"cube applied from {result.cube_source} (not refitted)", markup=False, soft_wrap=True
        )
    console.print(
        f"rows read {result.rows_read:,} · rows rejected {result.rows_rejected:,} · "
        f"customers scored {len(result.scored):,}"
        + (
            f" · customers not yet active at as_of {result.customers.excluded:,}"
            if result.customers.excluded
            else ""
        )
        + (
            f" · customers unscorable {len(result.rejects) - result.rows_rejected:,}"
            if len(result.rejects) > result.rows_rejected
            else ""
        )
    )
    if result.saved_to is not None:
        console.print(f"saved the cube to {result.saved_to}", markup=False)
    if result.registered is not None:
        name, version, alias = result.registered
        console.print(
            f"registered the cube as models:/{name}/{version} (alias @{alias})", markup=False
        )
    console.print(f"wrote {output}" + (f" and {rejects}" if rejects else ""), markup=False)
