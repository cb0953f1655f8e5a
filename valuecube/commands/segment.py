"""The ``segment`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from valuecube.console import (
    ConfigOption,
    InputOption,
    RejectsOption,
    compact_summary,
    console,
    fail,
    render_table,
)


def segment(
    config: ConfigOption,
    input: InputOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to write one row per customer (.csv or .parquet)."
        ),
    ],
    rejects: RejectsOption = None,
) -> None:
    """Segment every customer with the fuzzy value cube (the interpretable baseline).

    Fits the frozen normalisation and AHP weights on the input, scores the three
    value dimensions (CV, PV, RA, each 1–9), places each customer in one of the
    eight segments and adds CLV and lifecycle stage. Prints a summary per segment.

    Example: valuecube segment -c configs/telco.yaml -i data/telco_churn.csv -o out/segments.parquet
    """
    from valuecube.features.config import ConfigError
    from valuecube.features.inputs import InputError
    from valuecube.features.io import check_output_paths, table_format
    from valuecube.training.segment import run_segment

    try:
        table_format(output)
        if rejects is not None:
            table_format(rejects)
        check_output_paths(input, {"--output": output, "--rejects": rejects})
        with console.status("segmenting customers…"):
            result = run_segment(config, input, output=output, rejects_path=rejects)
    except (ConfigError, InputError, ValueError, OSError) as exc:
        fail(str(exc))
    render_table(
        compact_summary(result.summary), f"{result.config.name}: fuzzy value-cube segments"
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
    console.print(f"wrote {output}" + (f" and {rejects}" if rejects else ""))
