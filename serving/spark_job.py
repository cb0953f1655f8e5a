"""The Spark engine's job: reading, validation, duplicates, log aggregation, scoring, in Spark.

``valuecube score --engine spark`` runs here (:class:`SparkJob`). The
driver lists the input's files and reads their headers
(:mod:`valuecube.serving.spark_read`); everything that touches rows runs in
Spark's workers, and the driver only ever collects counts, the first few
rejects of a strict run, and a log's first and last dates:

1. **Read and check** (``mapInArrow`` over the work units): every row comes
   out once, with its file, line, outcome and reason, checked by the local
   engine's own reader and validator (:class:`~valuecube.serving.spark_read.Checker`).
2. **Duplicates** (customer tables): a window per trimmed id, ordered by
   file then line, keeps the first row as the local engine does; the later
   copies are rejected, their reason worded in Python as locally
   (``duplicate customerid 'X' (first on line N)``, with ``of FILE`` when
   the first row is in another file).
3. **Transaction logs**: the valid rows are grouped into buckets by a hash
   of the customer id (a customer's purchases meet in one bucket, whatever
   file they came from) and each bucket goes through the local engine's
   :func:`~valuecube.features.customers.build_customer_table` with the
   log-wide ``as_of`` and window start (``applyInPandas``): the same
   factors, one definition.
4. **Scoring**: the model through ``spark_udf``
   (:func:`valuecube.serving.spark.score_dataframe`).

The checked rows are persisted on the workers' disks (``DISK_ONLY``) so that
the counts, the rejects and the scores read them once. Outputs are Parquet
folders (the rejects a CSV or Parquet folder, by extension, with ``file``,
``line``, ``reason`` and the raw columns), written to hidden folders and
renamed into place when the job has succeeded.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from valuecube.features.config import InputSpec
from valuecube.features.customers import CUSTOMER_ID, build_customer_table
from valuecube.features.factors import split_computable
from valuecube.features.inputs import (
    LINE,
    MAX_LISTED,
    REASON,
    InputError,
    ValidatedInput,
    scoring_spec,
)
from valuecube.features.io import table_format
from valuecube.serving.loading import LoadedModel
from valuecube.serving.result import NothingScoredError, ScoreResult
from valuecube.serving.spark import replace_dir, score_dataframe, spark_session
from valuecube.serving.spark_read import (
    FILE,
    ID,
    KIND,
    OK,
    REJECTED,
    ROW,
    STATS,
    UNSCORABLE,
    WHY,
    Checker,
    checked_schema,
    input_files,
    plan,
    raw_name,
    typed_columns,
    typed_name,
)

BUCKET_ROWS = 1_000_000
"""Valid log rows per aggregation bucket (a bucket is one pandas frame in a worker)."""
_SPARK_TYPES = {
    pa.float64(): "double",
    pa.string(): "string",
    pa.timestamp("us"): "timestamp_ntz",
    pa.int8(): "tinyint",
    pa.int32(): "int",
    pa.int64(): "bigint",
}


def ddl(schema: pa.Schema) -> str:
    """The Spark DDL of an Arrow schema of the types used here."""
    return ", ".join(f"`{f.name}` {_SPARK_TYPES[f.type]}" for f in schema)


@dataclass(frozen=True)
class DuplicateWording:
    """``mapInArrow`` after the window: later copies of an id rejected, worded as locally."""

    id_column: str
    paths: list[str]
    schema: pa.Schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            dup = np.asarray(batch.column("_dup").to_numpy(zero_copy_only=False), dtype=bool)
            columns = {name: batch.column(name) for name in self.schema.names}
            if dup.any():
                at = np.flatnonzero(dup)
                reason = np.asarray(columns[WHY].to_numpy(zero_copy_only=False), dtype=object)
                kind = np.asarray(columns[KIND].to_numpy(zero_copy_only=False)).copy()
                picked = [
                    batch.column(c).take(pa.array(at)).to_pylist()
                    for c in (ID, "_first_file", "_first_line", FILE)
                ]
                reason[at] = [
                    f"duplicate {self.id_column} {v!r} (first on line {line}"
                    + ("" if first == own else f" of {self.paths[first]}")
                    + ")"
                    for v, first, line, own in zip(*picked, strict=True)
                ]
                kind[at] = REJECTED
                columns[WHY], columns[KIND] = pa.array(reason, pa.string()), pa.array(kind)
            yield pa.RecordBatch.from_arrays(list(columns.values()), schema=self.schema)


@dataclass(frozen=True)
class LogAggregator:
    """``applyInPandas`` per bucket of customers: the local per-customer table and its factors."""

    spec: InputSpec
    as_of: pd.Timestamp
    columns: list[str]
    cube: object

    def schema(self) -> str:
        """The Spark DDL of a bucket's rows (customers, then one row of counts)."""
        return ", ".join(
            [
                f"`{CUSTOMER_ID}` string",
                *[f"`{c}` double" for c in self.columns],
                f"{KIND} tinyint",
                f"{WHY} string",
                "_used bigint",
                "_unused bigint",
                "_excluded bigint",
            ]
        )

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        spec = self.spec
        names = [spec.id_column, spec.date_column, spec.quantity_column, spec.amount_column]
        data = frame[[typed_name(i) for i in range(4)]].set_axis(names, axis=1)
        data[spec.date_column] = pd.to_datetime(data[spec.date_column])
        validated = ValidatedInput(
            data=data,
            rejects=pd.DataFrame({LINE: [], REASON: []}),
            rows_read=len(data),
            source="<spark>",
        )
        built = build_customer_table(validated, spec, as_of=self.as_of, with_labels=False)
        table = built.table[self.columns].astype("float64")
        ok, unscorable = split_computable(self.cube.factors(table))  # type: ignore[attr-defined]
        out = table.reset_index(names=CUSTOMER_ID)
        out[KIND] = np.where(ok, OK, UNSCORABLE).astype(np.int8)
        out[WHY] = None
        out.loc[~ok, WHY] = unscorable.to_numpy()
        stats = {KIND: [STATS], "_used": [built.rows_used], "_unused": [built.rows_unused]}
        stats["_excluded"] = [built.excluded]
        out = pd.concat([out, pd.DataFrame(stats)], ignore_index=True)
        for column in (CUSTOMER_ID, WHY):  # Spark's pandas → Arrow step takes object text only
            out[column] = out[column].astype(object).where(out[column].notna(), None)
        return out


class SparkJob:
    """One ``--engine spark`` run (see the module docstring); ``SparkJob(...).run()``."""

    def __init__(
        self,
        loaded: LoadedModel,
        source: str | Path,
        output: Path,
        *,
        rejects: Path | None,
        input_format: str | None,
        chunk_rows: int,
        as_of: dt.date | str | None,
        scored_at: pd.Timestamp,
        master: str,
        reasons: int,
        levers: bool = False,
    ) -> None:
        self.loaded, self.spec = loaded, scoring_spec(loaded.config.input)
        self.source, self.output, self.rejects = str(source), output, rejects
        self.input_format, self.chunk_rows, self.as_of = input_format, chunk_rows, as_of
        self.scored_at, self.master, self.reasons = scored_at, master, reasons
        self.levers = levers
        self.result = ScoreResult(
            loaded.name, loaded.version, output, rejects, shape=self.spec.shape
        )
        self.persisted: list = []
        self.temporary: list[Path] = []

    def run(self) -> ScoreResult:
        """Score the whole input; the outputs appear only if the job succeeds."""
        started = time.perf_counter()
        files = input_files(self.source)
        units, raw_columns = plan(files, self.spec, self.input_format)
        self.paths, self.raw_columns = [str(f) for f in files], raw_columns
        spark = spark_session(self.master, batch_rows=self.chunk_rows)
        try:
            checked = self.checked(spark, units)
            counts = self.count(checked, OK, REJECTED, UNSCORABLE)
            self.result.rows_read = sum(counts.values())
            if self.result.rows_read == 0:
                raise NothingScoredError(f"{self.source}: the input has a header but no rows")
            if self.spec.shape == "customer_table":
                rejected, scorable = checked.filter(f"{KIND} != {OK}"), checked
                self.result.customers_unscorable = counts[UNSCORABLE]
                self.result.customers_scored = counts[OK]
                self.result.rows_rejected = counts[REJECTED] + counts[UNSCORABLE]
                frame = scorable.filter(f"{KIND} = {OK}").select(
                    *[
                        checked[typed_name(i)].alias(c)
                        for i, c in enumerate(self.loaded.model.input_columns)
                    ]
                )
            else:
                self.result.rows_rejected = counts[REJECTED]
                rejected, frame = self.aggregate(spark, checked, counts[OK])
            self.strict(rejected)
            self.write(rejected, frame)
        except Exception as exc:
            raise _worker_error(exc) from exc
        finally:
            for frame_ in self.persisted:
                frame_.unpersist()
            for path in self.temporary:
                shutil.rmtree(path, ignore_errors=True)
        self.result.seconds = time.perf_counter() - started
        return self.result

    # ---------------------------------------------------------- the parts

    def checked(self, spark, units):
        """Every input row checked in the workers (duplicates worded), persisted on disk."""
        from pyspark import StorageLevel
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        spec, model = self.spec, self.loaded.model
        names = (
            list(model.input_columns)
            if spec.shape == "customer_table"
            else [spec.id_column, spec.date_column, spec.quantity_column, spec.amount_column]
        )
        typed = typed_columns(spec, names)
        checker = Checker(spec, self.raw_columns, typed, self.chunk_rows, model.cube)
        schema = checked_schema(self.raw_columns, typed)
        rows = [(u.file, u.path, u.fmt, u.row_groups, u.first_line) for u in units]
        plan_frame = spark.createDataFrame(
            spark.sparkContext.parallelize(rows, max(len(rows), 1)),
            "file int, path string, fmt string, row_groups array<int>, first_line bigint",
        )
        checked = plan_frame.mapInArrow(checker, ddl(schema))
        if spec.shape == "customer_table":
            window = Window.partitionBy(ID).orderBy(FILE, ROW)
            checked = (
                checked.withColumn("_first_file", F.first(FILE).over(window))
                .withColumn("_first_line", F.first(ROW).over(window))
                .withColumn("_dup", F.col(ID).isNotNull() & (F.row_number().over(window) > 1))
                .mapInArrow(DuplicateWording(spec.id_column, self.paths, schema), ddl(schema))
            )
        checked = checked.persist(StorageLevel.DISK_ONLY)
        self.persisted.append(checked)
        return checked

    def count(self, frame, *kinds: int) -> dict[int, int]:
        """Rows of each outcome (the driver collects one small row per outcome)."""
        got = {row[KIND]: row["count"] for row in frame.groupBy(KIND).count().collect()}
        return {kind: int(got.get(kind, 0)) for kind in kinds}

    def aggregate(self, spark, checked, valid_rows: int):
        """A log's customers from its valid rows, by bucket; (the rejects, the model-input rows)."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        spec = self.spec
        date = typed_name(1)
        valid = checked.filter(f"{KIND} = {OK}")
        row_rejects = checked.filter(f"{KIND} != {OK}").select(
            FILE, ROW, WHY, *[raw_name(i) for i in range(len(self.raw_columns))]
        )
        if valid_rows == 0:  # nothing to aggregate: the rejects say why
            return row_rejects, None
        first, last = valid.agg(F.min(date), F.max(date)).first()
        as_of = (
            pd.Timestamp(self.as_of or spec.as_of)
            if (self.as_of or spec.as_of)
            else pd.Timestamp(last).normalize()
        )
        window_start = spec.window_start or pd.Timestamp(first).normalize().date()
        aggregator = LogAggregator(
            spec.model_copy(update={"window_start": window_start}),
            as_of,
            list(self.loaded.model.metadata["customer_columns"]),
            self.loaded.model.cube,
        )
        buckets = max(int(spark.conf.get("spark.sql.shuffle.partitions")), 1)
        buckets = max(buckets, math.ceil(valid_rows / BUCKET_ROWS))
        customers = (
            valid.select(*[typed_name(i) for i in range(4)])
            .withColumn("_bucket", F.pmod(F.xxhash64(typed_name(0)), F.lit(buckets)))
            .groupBy("_bucket")
            .applyInPandas(lambda frame: aggregator(frame), aggregator.schema())  # one argument
            .persist(StorageLevel.DISK_ONLY)
        )
        self.persisted.append(customers)
        totals = customers.filter(f"{KIND} = {STATS}").agg(
            F.sum("_used"), F.sum("_unused"), F.sum("_excluded")
        )
        used, unused, excluded = (int(v or 0) for v in totals.first())
        kinds = self.count(customers, OK, UNSCORABLE)
        result = self.result
        result.as_of, result.rows_used, result.rows_unused = as_of, used, unused
        result.customers_excluded = excluded
        result.customers_scored, result.customers_unscorable = kinds[OK], kinds[UNSCORABLE]
        result.rows_rejected += kinds[UNSCORABLE]
        null = F.lit(None).cast("string")
        unscorable = customers.filter(f"{KIND} = {UNSCORABLE}").select(
            F.lit(None).cast("int").alias(FILE),
            F.lit(None).cast("bigint").alias(ROW),
            F.col(WHY),
            *[
                (F.col(CUSTOMER_ID) if c == spec.id_column else null).alias(raw_name(i))
                for i, c in enumerate(self.raw_columns)
            ],
        )
        rejected = row_rejects.unionByName(unscorable)
        frame = customers.filter(f"{KIND} = {OK}").select(*self.loaded.model.input_columns)
        return rejected, frame

    def strict(self, rejected) -> None:
        """Without a rejects file, any rejected row stops the job, the first ones listed."""
        if self.rejects is not None or self.result.rows_rejected == 0:
            return
        from pyspark.sql import functions as F

        first = (
            rejected.orderBy(F.col(FILE).asc_nulls_last(), F.col(ROW).asc_nulls_last())
            .select(FILE, ROW, WHY)
            .limit(MAX_LISTED)
            .collect()
        )
        listed = "\n".join(
            f"  {self.paths[r[FILE]]} line {r[ROW]}: {r[WHY]}"
            if r[FILE] is not None
            else f"  customer: {r[WHY]}"
            for r in first
        )
        raise InputError(
            f"{self.source}: {self.result.rows_rejected:,} invalid rows, the first:\n{listed}\n"
            "Fix them, or pass --rejects PATH to write bad rows there and score the rest."
        )

    def write(self, rejected, frame) -> None:
        """Write the rejects and the scores to hidden folders; rename them into place."""
        from pyspark.sql import functions as F

        rejects_tmp = None
        if self.rejects is not None:
            paths = F.array(*[F.lit(p) for p in self.paths])
            out = rejected.orderBy(
                F.col(FILE).asc_nulls_last(), F.col(ROW).asc_nulls_last()
            ).select(
                F.element_at(paths, F.col(FILE) + 1).alias("file"),
                F.col(ROW).alias(LINE),
                F.col(WHY).alias(REASON),
                *[F.col(raw_name(i)).alias(c) for i, c in enumerate(self.raw_columns)],
            )
            rejects_tmp = self.hidden(self.rejects)
            if table_format(self.rejects) == "csv":
                out.write.option("header", True).option("escape", '"').csv(str(rejects_tmp))
            else:
                out.write.parquet(str(rejects_tmp))
        if self.result.customers_scored == 0:
            if rejects_tmp is not None:
                replace_dir(rejects_tmp, self.rejects)
            raise NothingScoredError(
                f"{self.source}: none of the {self.result.rows_read:,} rows could be scored "
                f"({self.result.summary()})"
                + (f"; see {self.rejects} for the reasons" if self.rejects else "")
            )
        self.result.check()
        output_tmp = self.hidden(self.output)
        score_dataframe(
            frame.sparkSession,
            self.loaded,
            frame,
            self.scored_at,
            reasons=self.reasons,
            levers=self.levers,
        ).write.parquet(str(output_tmp))
        if rejects_tmp is not None:
            replace_dir(rejects_tmp, self.rejects)
        replace_dir(output_tmp, self.output)

    def hidden(self, destination: Path) -> Path:
        """A hidden temporary folder beside ``destination`` (removed unless renamed into place)."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        path = destination.parent / f".{destination.name}.spark-{uuid.uuid4().hex[:8]}.partial"
        self.temporary.append(path)
        return path


class SparkJobError(ValueError):
    """The Spark job failed for a reason other than the input (the message's last line says)."""


def _worker_error(exc: Exception) -> Exception:
    """A failure as one line: an input problem found in a worker as the InputError it was."""
    if isinstance(exc, InputError | NothingScoredError | OSError):
        return exc
    text = str(exc)
    found = re.findall(r"InputError: (.+)", text)
    if found:
        return InputError(found[-1].strip())
    if type(exc).__module__.startswith(("pyspark", "py4j")):
        last = next((line for line in reversed(text.splitlines()) if line.strip()), text)
        return SparkJobError(
            f"the Spark job failed: {last.strip()[:500]} (run with a smaller input or see "
            "the Spark logs; docs/spark.md)"
        )
    return exc
