"""The ``valuecube`` command line: one command, a subcommand per job.

Heavy libraries (torch, MLflow) are imported inside the subcommands so that
``valuecube --help`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from serving.cli import score, serve
from training.compare_cli import compare

app = typer.Typer(
    name="valuecube",
    help=(
        "Customer-value segmentation (AHP + fuzzy value cube) and churn prediction.\n\n"
        "Typical flow: `segment` a dataset with the fuzzy baseline, `train` the network "
        "(tracked in MLflow), `promote` it, then `score` customers in batch or `serve` them over HTTP."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Dataset config (YAML), e.g. configs/telco.yaml.", exists=True, dir_okay=False)
]
InputOption = Annotated[
    Path, typer.Option("--input", "-i", help="Input file: CSV/whitespace text or Parquet (by extension).")
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
    table = Table(title=title, show_lines=False)
    frame = frame.reset_index()
    for col in frame.columns:
        table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(_fmt(v) for v in row))
    console.print(table)


def compact_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """A per-segment summary with short column names, for the terminal."""
    short = {"customers": "n", "mean_cv_score": "CV", "mean_pv_score": "PV", "mean_ra_score": "RA",
             "churn_rate": "churn", "mean_future_spend": "future $"}
    return summary.drop(columns=["segment_name"]).rename(columns=short)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "–" if pd.isna(value) else f"{value:,.3f}"
    return str(value)


def fail(message: str) -> None:
    """Print an error for the user and exit with status 1."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


@app.callback()
def _root() -> None:
    """Customer-value segmentation (AHP + fuzzy value cube) and churn prediction."""


@app.command()
def segment(
    config: ConfigOption,
    input: InputOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write one row per customer (.csv or .parquet).")],
    rejects: RejectsOption = None,
) -> None:
    """Segment every customer with the fuzzy value cube (the interpretable baseline).

    Fits the frozen normalisation and AHP weights on the input, scores the three
    value dimensions (CV, PV, RA, each 1–9), places each customer in one of the
    eight segments and adds CLV and lifecycle stage. Prints a summary per segment.

    Example: valuecube segment -c configs/telco.yaml -i data/telco_churn.csv -o out/segments.parquet
    """
    from rich.markup import escape

    from features.config import ConfigError
    from features.inputs import InputError
    from features.io import table_format
    from training.segment import run_segment

    try:
        table_format(output)
        if rejects is not None:
            table_format(rejects)
        with console.status("segmenting customers…"):
            result = run_segment(config, input, output=output, rejects_path=rejects)
    except (ConfigError, InputError, ValueError) as exc:
        fail(escape(str(exc)))  # file values such as "[x]" must not be read as rich markup
    render_table(compact_summary(result.summary), f"{result.config.name}: fuzzy value-cube segments")
    console.print(
        f"rows read {result.rows_read:,} · rows rejected {result.rows_rejected:,} · "
        f"customers scored {len(result.scored):,}"
        + (f" · customers not yet active at as_of {result.customers.excluded:,}" if result.customers.excluded else "")
        + (f" · customers unscorable {len(result.rejects) - result.rows_rejected:,}" if len(result.rejects) > result.rows_rejected else "")
    )
    console.print(f"wrote {output}" + (f" and {rejects}" if rejects else ""))


@app.command()
def train(
    config: ConfigOption,
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Input file (default: the config's 'data').")] = None,
    trials: Annotated[int, typer.Option(help="Optuna trials (TPE sampler, median pruning).", min=1)] = 10,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: valuecube-<dataset>).")] = None,
    register_as: Annotated[str | None, typer.Option(help="Registered model name (default: valuecube-<dataset>).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the split, the sampler and the network.")] = 0,
    storage: Annotated[
        str | None,
        typer.Option(help="Optuna RDB storage URL (e.g. sqlite:///mlflow/optuna.db) to share a study; default in-memory."),
    ] = None,
    max_epochs: Annotated[int, typer.Option(help="Epoch cap per network fit (early stopping usually ends sooner).", min=1)] = 150,
) -> None:
    """Tune and train the BP network, compare it with peers, log to MLflow, register it as 'challenger'.

    Tracking goes to MLFLOW_TRACKING_URI, or to the local store under mlflow/ when unset.
    Ends with a table of test-split churn metrics for the network, logistic regression,
    LightGBM and the fuzzy baseline, and the network's agreement with the fuzzy segments.

    Example: valuecube train -c configs/telco.yaml --trials 20
    """
    from features.config import ConfigError
    from features.inputs import InputError
    from training.tracking import TrackingError
    from training.train import run_train

    try:
        result = run_train(config, input, trials=trials, experiment=experiment, register_as=register_as, seed=seed,
                           storage=storage, max_epochs=max_epochs, show_progress=console.is_terminal)
    except (ConfigError, InputError, TrackingError, ValueError) as exc:
        fail(str(exc))
    render_table(result.comparison, "churn on the test split")
    agreement = " · ".join(f"{k.removeprefix('segment_')} {v:.3f}" for k, v in result.agreement.items())
    console.print(f"network vs fuzzy segments on test: {agreement}")
    console.print(f"registered {result.registered_name} version {result.version} as {result.model_uri}")


@app.command()
def promote(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model name, e.g. valuecube-telco.")],
) -> None:
    """Move the 'champion' alias to the 'challenger' if its test churn ROC-AUC is at least the champion's.

    Both versions are re-evaluated now on the challenger's test customers. Otherwise
    the aliases stay as they are and the reason is printed (exit code 2).
    """
    from training.registry import promote as run_promote
    from training.tracking import TrackingError, configure_tracking

    try:
        configure_tracking()
        outcome = run_promote(model)
    except (TrackingError, ValueError) as exc:
        fail(str(exc))
    console.print(outcome.reason)
    if not outcome.promoted:
        raise typer.Exit(2)


app.command()(compare)
app.command()(score)
app.command()(serve)


def main() -> None:
    """Entry point for ``python -m valuecube``."""
    app()
