"""The Spark engine: the same registered model, applied by ``mlflow.pyfunc.spark_udf``.

How a job runs (``valuecube score --engine spark``):

1. **Validation in the driver, with pandas**, by the very code of the local
   engine (:class:`valuecube.serving.batch.BatchJob`): the input is streamed in
   chunks, bad rows and duplicate ids go to the rejects file with their
   reasons, customers whose factors cannot be computed are set aside, and
   the valid model-input rows are staged as one Parquet file per chunk in a
   hidden folder beside the output. Doing it there keeps one definition of
   "valid" (and of the line numbers in the rejects file) for both engines;
   its cost is one pass over the input in the driver (see the benchmark).
   Transaction logs are aggregated into the per-customer table there too.
2. **Scoring in Spark**: the staged files are read (one partition per
   chunk file), the model runs in the Python workers through
   ``spark_udf`` (pinned to the resolved version, ``models:/NAME/VERSION``),
   the risk band and provenance columns are added with Spark SQL, and the
   result is written as a Parquet *folder* (part files), first to a hidden
   temporary folder that is then renamed to the destination.

Results equal the local engine's (same model, same validated rows) to
floating-point noise; the row order is Spark's.

Workers must run the interpreter that has pandas and MLflow:
``PYSPARK_PYTHON`` defaults to this process's Python.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from valuecube.features.factors import split_computable
from valuecube.models.packaged import TEXT_OUTPUT_COLUMNS, ChurnSegmentModel
from valuecube.serving.drift import DriftMonitor
from valuecube.serving.loading import LoadedModel
from valuecube.serving.output import CHURN_RISK_CUTOFFS, CHURN_RISK_LABELS, output_columns
from valuecube.serving.sinks import Sink


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


class SparkSink(Sink):
    """Stage validated, scorable model-input rows as Parquet; score them with Spark on commit."""

    def __init__(
        self, loaded: LoadedModel, drift: DriftMonitor, *, master: str, batch_rows: int
    ) -> None:
        super().__init__(loaded, drift)
        self.master = master
        self.batch_rows = batch_rows
        self.parts = 0
        self.scored_at: pd.Timestamp | None = None

    def open(self, output: Path) -> None:
        _pyfunc_params(self.loaded, self.reasons, self.levers)  # fail before reading the input
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.staging-", dir=output.parent))

    def take(
        self, customers: pd.DataFrame, rows: pd.DataFrame, scored_at: pd.Timestamp
    ) -> pd.Series:
        model = self.loaded.model
        factors = model.cube.factors(customers)
        ok, unscorable = split_computable(factors)
        self.drift.update(factors[ok])
        staged = rows[ok].reset_index(drop=True)
        pq.write_table(
            pa.Table.from_pandas(staged, preserve_index=False),
            self.staging / f"part-{self.parts:05d}.parquet",
        )
        self.parts += 1
        self.scored_at = scored_at
        return unscorable

    def commit(self) -> None:
        """Score the staged rows with Spark into a hidden folder, then rename it into place."""
        spark = spark_session(self.master, batch_rows=self.batch_rows)
        tmp = self.output.parent / f".{self.output.name}.spark-{uuid.uuid4().hex[:8]}.partial"
        try:
            frame = spark.read.parquet(str(self.staging))
            score_dataframe(
                spark,
                self.loaded,
                frame,
                self.scored_at or pd.Timestamp.now(tz="UTC"),
                reasons=self.reasons,
                levers=self.levers,
            ).write.parquet(str(tmp))
            _replace_dir(tmp, self.output)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _replace_dir(src: Path, dest: Path) -> None:
    """Put folder ``src`` at ``dest``: a previous output is moved aside first and removed after."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(dest, old)
    os.replace(src, dest)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()
