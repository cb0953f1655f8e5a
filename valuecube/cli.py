"""The ``valuecube`` command line: one command, a subcommand per job.

A thin shell over the library: each subcommand lives in
:mod:`valuecube.commands` and imports heavy libraries (torch, MLflow) inside
its function, so that ``valuecube --help`` answers at once. Nothing in the
library imports this module.
"""

from __future__ import annotations

import typer

from valuecube.commands.compare import compare
from valuecube.commands.monitor import monitor
from valuecube.commands.promote import promote
from valuecube.commands.score import score
from valuecube.commands.segment import segment
from valuecube.commands.serve import serve
from valuecube.commands.train import train
from valuecube.process import collect_less

app = typer.Typer(
    name="valuecube",
    help=(
        "Customer-value segmentation (AHP + fuzzy value cube) and churn prediction.\n\n"
        "Typical flow: `segment` a dataset with the fuzzy baseline, `train` the network "
        "(tracked in MLflow), `promote` it, then `score` customers in batch "
        "or `serve` them over HTTP."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Customer-value segmentation (AHP + fuzzy value cube) and churn prediction."""
    collect_less()


for command in (segment, train, promote, compare, score, serve, monitor):
    app.command()(command)


def main() -> None:
    """Entry point for ``python -m valuecube``."""
    app()
