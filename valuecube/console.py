"""Terminal output shared by the commands: one console for results, one for errors.

Errors go to stderr as one ``error:`` line and exit with status 1 (2 is typer's
wrong-command-line code); results go to stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # pandas loads inside the functions: `valuecube --help` does not need it
    import pandas as pd

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="Dataset config (YAML), e.g. configs/telco.yaml.",
        exists=True,
        dir_okay=False,
    ),
]
InputOption = Annotated[
    Path,
    typer.Option(
        "--input", "-i", help="Input file: CSV/whitespace text or Parquet (by extension)."
    ),
]
RejectsOption = Annotated[
    Path | None,
    typer.Option(
        "--rejects",
        help="Write invalid rows here with a 'reason' column and go on with the rest "
        "(without it, any invalid row stops the job with an error naming it).",
    ),
]


def render_table(frame: pd.DataFrame, title: str) -> None:
    """Print a DataFrame as a rich table (index included)."""
    import pandas as pd

    table = Table(title=title, show_lines=False)
    frame = frame.reset_index()
    for col in frame.columns:
        table.add_column(
            str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left"
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(_fmt(v) for v in row))
    console.print(table)


def compact_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """A per-segment summary with short column names, for the terminal."""
    short = {
        "customers": "n",
        "mean_cv_score": "CV",
        "mean_pv_score": "PV",
        "mean_ra_score": "RA",
        "churn_rate": "churn",
        "mean_future_spend": "future $",
    }
    return summary.drop(columns=["segment_name"]).rename(columns=short)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:,.3f}"
    return str(value)


def fail(message: str, code: int = 1) -> None:
    """Print one ``error:`` line on stderr (``message`` shown literally); exit with ``code``."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)
