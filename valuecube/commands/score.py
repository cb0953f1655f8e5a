"""The ``score`` command: batch scoring with a registered model.

Heavy libraries (pandas, MLflow, torch, Spark) are imported inside the
function so that ``valuecube --help`` stays instant.
"""

from __future__ import annotations

import datetime as dt
import errno
import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from valuecube.commands.monitor import (
    DriftThreshold,
    FailOnDrift,
    MonitorExperiment,
    after_scoring,
    monitoring_process,
)
from valuecube.console import console, err, fail
from valuecube.process import keep_freed_memory

DEFAULT_CHUNK_ROWS = (
    100_000  # = valuecube.serving.batch.DEFAULT_CHUNK_ROWS (not imported: keeps --help fast)
)
DEFAULT_REASONS = 3  # = valuecube.models.reasons.DEFAULT_REASONS (not imported: keeps --help fast)


class Stopped(Exception):
    """The job was asked to stop (SIGTERM): it unwinds, dropping its temporary files."""


def _stop(signum: int, frame: object) -> None:
    raise Stopped()


class InputFormat(StrEnum):
    """How to read the input when its extension does not say."""

    parquet = "parquet"
    csv = "csv"
    text = "text"


class Engine(StrEnum):
    """Where the model runs."""

    local = "local"
    spark = "spark"


def score(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="MLflow model URI, e.g. models:/valuecube-telco@champion."
        ),
    ],
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="Customers to score: CSV/text or Parquet (by extension). With --engine spark "
            "also a folder of part files or a glob (quoted), e.g. 'data/part-*.csv'.",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Scores: .csv or .parquet (a Parquet folder with --engine spark).",
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="Dataset config to check against the model's own "
            "(optional: the model carries its config).",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Write invalid rows here with a 'reason' column and score the rest "
            "(without it, any invalid row stops the job).",
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows per chunk: bounds the memory used.")
    ] = DEFAULT_CHUNK_ROWS,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Transaction logs: compute customers as of this date "
            "(default: the config's as_of, else the last date in the log).",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local: this process, chunk by chunk; spark: the whole job in Spark (reading, "
            "validation, duplicates, log aggregation, the model via spark_udf); see docs/spark.md.",
        ),
    ] = Engine.local,
    spark_master: Annotated[
        str, typer.Option("--spark-master", help="Spark master URL for --engine spark.")
    ] = "local[*]",
    input_format: Annotated[
        InputFormat | None,
        typer.Option(
            "--input-format",
            help="Read the input as parquet, csv or text (whitespace or the config's separator) "
            "whatever its extension says.",
        ),
    ] = None,
    reasons: Annotated[
        int,
        typer.Option(
            "--reasons",
            min=0,
            help="Per customer, the top N factors raising and N lowering the churn probability "
            "(churn_reasons: a JSON list of {factor, value, effect}, effect in probability "
            "points; spend_reasons too for forecasts); 0 skips them. They cost about 3x the "
            "scoring without them (docs/benchmarks.md).",
        ),
    ] = DEFAULT_REASONS,
    levers: Annotated[
        bool,
        typer.Option(
            "--levers/--no-levers",
            help="Add the rule's levers: margin to the threshold per dimension, the nearest "
            "dimension, and the one factor change that crosses it (both engines).",
        ),
    ] = False,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit",
            help="Transaction logs, local engine: memory the log's rows may take, e.g. 2GB or "
            "500MB (default: a quarter of the machine's memory). A larger log is split by "
            "customer into temporary Parquet parts beside the output and scored part by part.",
        ),
    ] = None,
    monitor_experiment: MonitorExperiment = None,
    drift_threshold: DriftThreshold = 0.2,
    fail_on_drift: FailOnDrift = False,
) -> None:
    """Score customers in batch with a registered model: segments, churn probability and risk band.

    One output row per valid customer (customer_id, cv/pv/ra scores, segment, segment_model,
    churn_probability, churn_risk, model_name, model_version, scored_at, then the model's own
    columns: for a transaction-log model segment_next, expected_spend, horizon_days and the BTYD
    expected_purchases, p_alive, clv, clv_low, clv_high; for a customer table with survival
    survival_12m, expected_remaining_months, survival_clv), then churn_reasons (and
    spend_reasons for forecasts; --reasons 0 drops them) and, with --levers, the rule's lever
    columns; churn_risk is low below 0.3, medium below 0.6, high from 0.6. Invalid rows go to
    --rejects with a reason. The output appears only when the job has finished (temporary
    file, then rename). Logs drift (PSI per factor) and row counts to an MLflow run linked to
    the model version; warns when a factor has drifted (PSI above --drift-threshold). Exit code
    1 when nothing could be scored, 3 with --fail-on-drift when a factor has drifted.

    Example: valuecube score -m models:/valuecube-telco@champion -i data/telco_churn.csv
    -o out/scores.parquet --rejects out/rejects.csv
    """
    with monitoring_process(monitor_experiment) as monitoring:  # MLflow loads beside the job
        from valuecube.features.config import ConfigError
        from valuecube.features.inputs import InputError
        from valuecube.serving.batch import score_file
        from valuecube.serving.drift import DRIFT_MIN_SAMPLE
        from valuecube.serving.loading import ModelLoadError

        keep_freed_memory()  # chunks reuse each other's memory (glibc; elsewhere a no-op)
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            result = score_file(
                model,
                input,
                output,
                rejects=rejects,
                config=config,
                chunk_rows=chunk_rows,
                as_of=as_of.date() if as_of else None,
                engine=engine.value,
                spark_master=spark_master,
                reasons=reasons,
                levers=levers,
                input_format=input_format.value if input_format else None,
                memory_limit=memory_limit,
            )
        except Stopped:
            fail(f"stopped by SIGTERM; nothing was written to {output}", code=128 + signal.SIGTERM)
        except OSError as exc:  # the machine, not the data: disk full, permissions, I/O
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc)
            fail(
                f"no space left on the device while writing {output}; nothing was written. "
                "Free some space or choose another --output"
                if full
                else f"{exc.strerror or exc}: {exc.filename or output}"
            )
        except (ConfigError, InputError, ModelLoadError, ValueError) as exc:
            fail(str(exc))
        finally:
            signal.signal(signal.SIGTERM, previous)
        for warning in result.warnings:
            err.print(f"[yellow]warning:[/] {warning}")
        drifted = result.drifted_over(drift_threshold)
        if drifted:
            listed = ", ".join(f"{name} (PSI {result.drift[name]:.2f})" for name in drifted)
            err.print(
                f"[yellow]warning:[/] input drift: {listed} differ from the training data "
                f"(PSI > {drift_threshold}); "
                "check the input or retrain"
            )
        elif result.drift_sample_size and not result.drift_judged:
            err.print(
                f"[dim]input drift not judged: {result.drift_sample_size:,} customers scored, "
                f"at least {DRIFT_MIN_SAMPLE} needed[/]"
            )
        console.print(result.summary())
        console.print(
            f"model {result.model_name} version {result.model_version} · {result.seconds:.1f} s · "
            f"wrote {output}" + (f" and {rejects}" if rejects else "")
        )
        after_scoring(result, input, monitor_experiment, drift_threshold, fail_on_drift, monitoring)
