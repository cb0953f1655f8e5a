"""The Spark engine's Spark side: the session, and the registered model applied by ``spark_udf``.

:mod:`valuecube.serving.spark_job` runs a whole ``valuecube score --engine
spark`` job in Spark (reading, validation, duplicates, log aggregation);
this module holds what it shares: :func:`spark_session`, and
:func:`score_dataframe`, which runs the model in the Python workers through
``mlflow.pyfunc.spark_udf`` (pinned to the resolved version,
``models:/NAME/VERSION``) and adds the risk band and provenance columns with
Spark SQL. Results equal the local engine's (same model, same validated
rows) to floating-point noise; the row order is Spark's.

Workers must run an interpreter that has valuecube, pandas and MLflow:
``PYSPARK_PYTHON`` defaults to this process's Python (docs/spark.md for a
cluster).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pandas as pd

from valuecube.models.packaged import TEXT_OUTPUT_COLUMNS, ChurnSegmentModel
from valuecube.serving.loading import LoadedModel
from valuecube.serving.output import CHURN_RISK_CUTOFFS, CHURN_RISK_LABELS, output_columns


def result_type(model: ChurnSegmentModel, reasons: int = 0, levers: bool = False) -> str:
    """The Spark DDL of the model's pyfunc output (:attr:`ChurnSegmentModel.output_columns`).

    ``reasons`` > 0 adds the reasons columns, JSON strings (:mod:`models.reasons`);
    ``levers`` the rule's lever columns (:data:`models.levers.LEVER_COLUMNS`).
    """
    from valuecube.models.levers import TEXT_LEVER_COLUMNS

    text = set(TEXT_OUTPUT_COLUMNS) | set(TEXT_LEVER_COLUMNS) | set(_reason_columns(model, reasons))
    return ", ".join(
        f"{c} {'string' if c in text else 'double'}"
        for c in (*model.output_columns, *_extra_columns(model, reasons, levers))
    )


def _reason_columns(model: ChurnSegmentModel, reasons: int) -> tuple[str, ...]:
    from valuecube.models.reasons import reason_column_names

    return reason_column_names(model) if reasons > 0 else ()


def _extra_columns(model: ChurnSegmentModel, reasons: int, levers: bool) -> tuple[str, ...]:
    """The optional columns after the model's own, in the local engine's order."""
    from valuecube.models.levers import LEVER_COLUMNS

    return (*_reason_columns(model, reasons), *(LEVER_COLUMNS if levers else ()))


def _pyfunc_params(loaded: LoadedModel, reasons: int, levers: bool) -> dict:
    """The pyfunc ``params`` for the optional columns; a model registered without them fails."""
    params = {}
    if reasons > 0:
        params.update(reasons=reasons, reasons_json=True)
    if levers:
        params["levers"] = True
    signature = loaded.pyfunc.metadata.signature
    known = {p.name for p in signature.params} if signature and signature.params else set()
    missing = sorted(set(params) - known)
    if missing:
        raise ValueError(
            f"{loaded.name} version {loaded.version} was registered without the pyfunc "
            f"param(s) {missing}; retrain it with this version of valuecube, or score it "
            "with --engine local"
        )
    return params


def spark_session(
    master: str = "local[*]", *, shuffle_partitions: int = 8, batch_rows: int = 100_000
):
    """A Spark session for scoring (Arrow on, UTC, workers on this Python unless PYSPARK_PYTHON).

    Python workers inherit this process's environment: one intra-op thread
    each (``OMP_NUM_THREADS=1``), since Spark already runs one worker per
    core and torch threads on top of that only contend (measured: a quarter
    slower on ``local[2]``).
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master)
        .appName("valuecube-score")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def score_dataframe(
    spark,
    loaded: LoadedModel,
    frame,
    scored_at: pd.Timestamp,
    reasons: int = 0,
    levers: bool = False,
):
    """Score a Spark DataFrame of model-input rows into a Spark DataFrame of the output columns.

    ``reasons`` and ``levers`` add the same columns as the local engine, made
    by the same pyfunc (``params``), after the model's own columns.
    """
    from mlflow.pyfunc import spark_udf
    from pyspark.sql import functions as F

    model = loaded.model
    params = _pyfunc_params(loaded, reasons, levers)
    udf = spark_udf(
        spark,
        loaded.uri,
        result_type=result_type(model, reasons, levers),
        env_manager="local",
        **({"params": params} if params else {}),
    )
    extra = _extra_columns(model, reasons, levers)
    p = F.col("churn_probability")
    risk = F.when(p < CHURN_RISK_CUTOFFS[0], CHURN_RISK_LABELS[0])
    for cut, label in zip(CHURN_RISK_CUTOFFS[1:], CHURN_RISK_LABELS[1:-1], strict=True):
        risk = risk.when(p < cut, label)
    risk = risk.otherwise(CHURN_RISK_LABELS[-1])
    columns = [F.col(f"`{c}`") for c in model.input_columns]
    return (
        frame.select(udf(F.struct(*columns)).alias("p"))
        .select(*[F.col(f"p.{c}").alias(c) for c in (*model.output_columns, *extra)])
        .withColumn("churn_risk", risk)
        .withColumn("model_name", F.lit(loaded.name))
        .withColumn("model_version", F.lit(loaded.version))
        .withColumn("scored_at", F.lit(scored_at.to_pydatetime()).cast("timestamp"))
        .select(*output_columns(model), *extra)
    )


def replace_dir(src: Path, dest: Path) -> None:
    """Put folder ``src`` at ``dest``: a previous output is moved aside first and removed after."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(dest, old)
    os.replace(src, dest)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()
