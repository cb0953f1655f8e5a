"""Local batch scoring: a file of customers in, one scored row per valid customer out.

The job streams: customer tables are read ``chunk_rows`` rows at a time
(:func:`valuecube.features.inputs.read_chunks`), de-duplicated
(:mod:`valuecube.features.duplicates`), validated, scored and appended to the
output, so memory follows the chunk size, not the file size. Two things grow
with the input and are kept small:

* the ids already seen: their total length plus 8 bytes per customer;
* transaction logs: a customer's features need all of their purchases, so
  the log is validated chunk by chunk and only the valid, typed rows are
  kept (id, date, quantity, amount); the per-customer table is then built as
  of ``--as-of`` and scored in chunks of customers. Memory grows with the
  number of transactions (``benchmarks/bench_log_scoring.py`` measures it).
  A log whose rows would not fit in ``memory_limit`` is written, chunk by
  chunk, into temporary Parquet parts by a hash of the customer id and the
  parts are scored one after another (a customer's scores depend on their
  own purchases only): :mod:`valuecube.serving.partitioned`. The output and
  the rejects are the same as in one pass.

The next chunk is read and validated in a background thread while the
current one is scored (:func:`valuecube.serving.progress.prefetch`); BLAS
keeps the reader's core free (:func:`blas_threads`).

Row accounting: every input row is scored or written to the rejects file
with a reason (invalid values, duplicate id, factors not computable);
``rows_read == customers_scored + rows_rejected`` for customer tables. A
duplicate id keeps its *first* row and rejects the later ones.

Output appears atomically (:class:`valuecube.features.io.AtomicWriter`): a
job killed half-way leaves no file at the destination, only a hidden
``.partial`` file that is safe to delete; a rerun produces the full output.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from valuecube.features.config import InputSpec
from valuecube.features.customers import build_customer_table
from valuecube.features.duplicates import SeenIds, split_duplicates
from valuecube.features.inputs import (
    LINE,
    MAX_LISTED,
    REASON,
    InputError,
    RawChunk,
    ValidatedInput,
    read_chunks,
    scoring_spec,
    text_rows,
    validate_chunk,
)
from valuecube.features.io import check_output_paths, table_format
from valuecube.serving.drift import DriftMonitor
from valuecube.serving.loading import LoadedModel, check_config, load_model
from valuecube.serving.partitioned import (
    SCORED,
    LogParts,
    PartsProgress,
    copy_sorted,
    estimated_transactions,
    parse_memory,
    parts_needed,
)
from valuecube.serving.progress import Progress, prefetch
from valuecube.serving.result import NothingScoredError, ScoreResult
from valuecube.serving.sinks import LocalSink, RejectsFile, Sink

DEFAULT_CHUNK_ROWS = 100_000


@dataclass
class CheckedChunk:
    """One chunk read, de-duplicated and validated (see :meth:`BatchJob.chunks`)."""

    raw: RawChunk
    rows_read: int
    duplicates: pd.DataFrame
    validated: ValidatedInput | None


RawRows = Callable[[pd.Index], pd.DataFrame]
"""Customer ids → their raw input rows (with ``line``), for the rejects file."""


class BatchJob:
    """One scoring run over one input file (see the module docstring and :func:`score_file`)."""

    input_format: str | None = None
    """parquet, csv or text: overrides the input's extension (None: by extension)."""

    def __init__(
        self,
        loaded: LoadedModel,
        input_path: Path,
        output: Path,
        *,
        rejects: Path | None,
        chunk_rows: int,
        as_of: dt.date | str | None,
        scored_at: pd.Timestamp,
        sink: Sink,
        drift: DriftMonitor,
        progress: bool,
        parts: int = 1,
        memory_limit: int = 0,
    ) -> None:
        self.loaded, self.spec = loaded, scoring_spec(loaded.config.input)  # label not checked
        self.input_path, self.output, self.rejects_path = input_path, output, rejects
        self.chunk_rows, self.as_of, self.scored_at = chunk_rows, as_of, scored_at
        self.sink, self.drift = sink, drift
        self.result = ScoreResult(
            loaded.name, loaded.version, output, rejects, shape=self.spec.shape
        )
        self.rejects: RejectsFile | None = None
        self.raw_columns: list[str] = []
        self.seen = SeenIds()
        self.transactions: list[pd.DataFrame] = []
        self.partitions, self.memory_limit = parts, memory_limit
        self.parts: LogParts | None = None  # a log larger than memory_limit (see run)
        self.held: list[pd.DataFrame] = []  # its customers' rejects, written in id order
        self.show_progress = progress
        self.result.parts = parts
        total = _input_rows(input_path) if self.spec.shape == "customer_table" else None
        self.progress = Progress(total, enabled=progress)

    # ------------------------------------------------------------ the run

    def run(self) -> ScoreResult:
        """Score the whole input; the output (and rejects) appear only if it succeeds.

        A log scored in parts keeps them in a hidden folder beside the output,
        removed however the run ends.
        """
        if self.partitions > 1:
            spec = self.spec
            self.parts = LogParts(self.output, self.partitions, spec.id_column, spec.date_column)
        try:
            if self.spec.shape != "customer_table":
                return self._run()
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=blas_threads(), user_api="blas"):
                return self._run()
        finally:
            if self.parts is not None:
                self.parts.remove()

    def _run(self) -> ScoreResult:
        started = time.perf_counter()
        self.sink.open(self.output if self.parts is None else self.parts.folder / SCORED)
        try:
            for number, chunk in enumerate(prefetch(self.chunks()), start=1):
                self.take(chunk)
                self.progress.update(chunk.rows_read, self.result.summary(), number)
            self.finish()
        except NothingScoredError:
            self.sink.abort()
            if self.rejects is not None:  # keep the reasons when nothing could be scored
                (self.rejects.commit if self.result.rows_read else self.rejects.abort)()
            raise
        except BaseException:
            self.sink.abort()
            if self.rejects is not None:
                self.rejects.abort()
            raise
        finally:
            self.progress.close()
        if self.rejects is not None:
            self.rejects.commit()
        self.result.drift = self.drift.psi()
        self.result.drift_sample_size = self.drift.sample_size
        self.result.seconds = time.perf_counter() - started
        return self.result

    def chunks(self) -> Iterator[CheckedChunk]:
        """Read, de-duplicate and validate chunk after chunk (runs ahead in a background thread)."""
        spec, source = self.spec, str(self.input_path)
        for chunk in read_chunks(self.input_path, spec, self.chunk_rows, self.input_format):
            n = chunk.table.num_rows
            duplicates = pd.DataFrame()
            if spec.shape == "customer_table" and spec.id_column in chunk.table.column_names:
                chunk, duplicates = split_duplicates(chunk, spec, self.seen)
            validated = validate_chunk(chunk, spec, source) if chunk.table.num_rows else None
            yield CheckedChunk(chunk, n, duplicates, validated)

    def take(self, chunk: CheckedChunk) -> None:
        """Account for one chunk: its rejects out, its customers scored (or a log's rows kept)."""
        if not self.raw_columns:
            self.raw_columns = list(chunk.raw.table.column_names)
            if self.rejects_path is not None:
                self.rejects = RejectsFile(self.rejects_path, self.raw_columns)
        self.result.rows_read += chunk.rows_read
        validated = chunk.validated
        if validated is None:
            self.reject(chunk.duplicates)
            return
        self.reject(
            pd.concat([chunk.duplicates, validated.rejects], ignore_index=True).sort_values(
                LINE, kind="stable"
            )
            if len(chunk.duplicates)
            else validated.rejects
        )
        if self.spec.shape == "transaction_log" and self.parts is not None:
            self.parts.add(validated.data)
        elif self.spec.shape == "transaction_log":
            self.transactions.append(validated.data)
        elif len(validated.data):
            customers = build_customer_table(validated, self.spec, with_labels=False).table
            label = [c for c in (self.spec.label_column,) if c in validated.data.columns]
            lines = pd.Series(validated.data.index, index=customers.index)
            self.emit(
                customers,
                validated.data.drop(columns=label),
                lambda ids: _raw_by_lines(chunk.raw, self.spec, lines.loc[ids].to_numpy()),
            )

    def finish(self) -> None:
        """Score a log's customers, check the accounting and commit the output."""
        if self.result.rows_read == 0:
            raise NothingScoredError(f"{self.input_path}: the file has a header but no rows")
        if self.parts is not None and self.parts.rows:
            self.score_parts()
        elif self.spec.shape == "transaction_log" and any(len(t) for t in self.transactions):
            self.score_log()
        self.result.check()
        if self.result.customers_scored == 0:
            raise NothingScoredError(
                f"{self.input_path}: none of the {self.result.rows_read:,} rows could be scored "
                f"({self.result.summary()})"
                + (f"; see {self.rejects_path} for the reasons" if self.rejects_path else "")
            )
        self.sink.commit()
        if self.parts is not None:  # the parts' scores into the output, in one-pass (id) order
            copy_sorted(
                self.parts.folder / SCORED,
                self.output,
                self.sink.writer.schema,
                self.memory_limit,
                self.parts.folder,
                self.chunk_rows,
            )

    # ---------------------------------------------------------- the parts

    def reject(self, frame: pd.DataFrame) -> None:
        """Count rejected rows and write them (without a rejects file, any reject stops the job)."""
        if not len(frame):
            return
        self.result.rows_rejected += len(frame)
        if self.rejects is None:
            raise _strict_error(frame, self.input_path)
        self.rejects.write(frame)

    def emit(self, customers: pd.DataFrame, rows: pd.DataFrame, raw: RawRows | None) -> None:
        """Hand customers to the sink; reject the unscorable ones with their raw rows."""
        unscorable = self.sink.take(customers, rows, self.scored_at)
        self.result.customers_scored += len(customers) - len(unscorable)
        self.result.customers_unscorable += len(unscorable)
        if len(unscorable):
            frame = (
                raw(unscorable.index)
                if raw is not None
                else pd.DataFrame({self.spec.id_column: unscorable.index})
            )
            frame[REASON] = unscorable.to_numpy()
            if self.parts is not None and self.rejects is not None:
                self.held.append(frame)  # one pass writes them in id order: so do the parts
            else:
                self.reject(frame)

    def score_log(self) -> None:
        """Build a log's per-customer table as of ``as_of``; score it in chunks of customers."""
        data = pd.concat(self.transactions)
        self.transactions.clear()  # the chunks' frames go now: the log is held once
        self.score_transactions(data, self.spec, self.as_of)

    def score_parts(self) -> None:
        """Score a partitioned log part after part, with the whole log's window and ``as_of``."""
        parts = self.parts
        assert parts is not None and parts.first_date is not None and parts.last_date is not None
        parts.close()
        spec = self.spec
        if spec.window_start is None:  # one pass starts the window at the log's first date
            spec = spec.model_copy(update={"window_start": parts.first_date.normalize().date()})
        as_of = self.as_of or spec.as_of or parts.last_date.normalize().date()
        progress = PartsProgress(len(parts.filled), enabled=self.show_progress)
        try:
            for number, data in enumerate(parts.frames(), start=1):
                self.score_transactions(data, spec, as_of)
                del data
                progress.update(number, self.result.summary())
        finally:
            progress.close()
        if self.held:
            self.reject(
                pd.concat(self.held, ignore_index=True).sort_values(
                    self.spec.id_column, kind="stable"
                )
            )
            self.held.clear()

    def score_transactions(
        self, data: pd.DataFrame, spec: InputSpec, as_of: dt.date | str | None
    ) -> None:
        """Build the per-customer table of valid log rows ``data``; score it in chunks."""
        validated = ValidatedInput(
            data=data,
            rejects=pd.DataFrame({LINE: [], REASON: []}),
            rows_read=len(data),
            source=str(self.input_path),
        )
        built = build_customer_table(validated, spec, as_of=as_of, with_labels=False)
        del validated, data
        self.result.as_of = built.as_of
        self.result.customers_excluded += built.excluded
        self.result.rows_used += built.rows_used
        self.result.rows_unused += built.rows_unused
        columns = self.loaded.model.metadata["customer_columns"]
        table = built.table[columns].astype("float64")
        for start in range(0, len(table), self.chunk_rows):
            part = table.iloc[start : start + self.chunk_rows]
            self.emit(part, part.reset_index(), None)


def score_file(
    model: LoadedModel | str,
    input_path: str | Path,
    output: str | Path,
    *,
    rejects: str | Path | None = None,
    config: str | Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    as_of: dt.date | str | None = None,
    progress: bool = True,
    scored_at: pd.Timestamp | None = None,
    engine: str = "local",
    spark_master: str = "local[*]",
    reasons: int = 0,
    levers: bool = False,
    input_format: str | None = None,
    memory_limit: int | str | None = None,
) -> ScoreResult:
    """Score every customer of ``input_path`` into ``output`` (see the module docstring).

    Without ``rejects`` any invalid row stops the job (nothing is written);
    with it, invalid rows go there with a reason. Raises
    :class:`NothingScoredError` when no customer could be scored (the rejects
    file is still written, the output is not), and
    :class:`valuecube.features.io.OutputPathError` for an output that is the
    input, equals the rejects path or cannot be written. ``engine="spark"``
    validates the same way, then scores with Spark (:mod:`valuecube.serving.spark`).
    ``memory_limit`` (bytes, or ``"2GB"``; default a share of the machine's
    memory): a transaction log whose valid rows would not fit is scored in
    hash parts by the local engine (:mod:`valuecube.serving.partitioned`).
    """
    input_path, output = Path(input_path), Path(output)
    rejects_path = None if rejects is None else Path(rejects)
    limit = parse_memory(memory_limit)
    if chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    if engine not in ("local", "spark"):
        raise ValueError(f"unknown engine {engine!r}; use 'local' or 'spark'")
    if table_format(output) != "parquet" and engine == "spark":
        raise ValueError(f"{output}: the Spark engine writes Parquet; use a .parquet output path")
    if rejects_path is not None:
        table_format(rejects_path)
    spark = engine == "spark"
    check_output_paths(
        None if spark else input_path,
        {"--output": output, "--rejects": rejects_path},
        folders=("--output", "--rejects") if spark else (),
    )
    loaded = load_model(model) if isinstance(model, str) else model
    if as_of is not None and loaded.config.input.shape != "transaction_log":
        raise ValueError(
            "--as-of applies to transaction-log models only; this model scores a customer table"
        )
    warnings = check_config(loaded.config, config)
    scored_at = scored_at if scored_at is not None else pd.Timestamp.now(tz="UTC").floor("ms")
    if spark:
        from valuecube.serving.spark_job import SparkJob

        result = SparkJob(
            loaded,
            input_path,
            output,
            rejects=rejects_path,
            input_format=input_format,
            chunk_rows=chunk_rows,
            as_of=as_of,
            scored_at=scored_at,
            master=spark_master,
            reasons=reasons,
            levers=levers,
        ).run()
        result.warnings += warnings
        return result
    parts = (
        parts_needed(estimated_transactions(input_path), limit)
        if loaded.config.input.shape == "transaction_log"
        else 1
    )
    drift = DriftMonitor(loaded.model)
    sink: Sink = LocalSink(loaded, drift)
    sink.reasons = reasons  # churn_reasons (spend_reasons) columns, models/reasons.py
    sink.levers = levers  # the rule's levers, models/levers.py
    job = BatchJob(
        loaded,
        input_path,
        output,
        rejects=rejects_path,
        chunk_rows=chunk_rows,
        as_of=as_of,
        scored_at=scored_at,
        sink=sink,
        drift=drift,
        progress=progress,
        parts=parts,
        memory_limit=limit,
    )
    job.input_format = input_format
    job.result.warnings += warnings
    return job.run()


def blas_threads() -> int:
    """BLAS threads for a customer table's job: the cores this process may use, less one.

    The job already keeps two threads busy, the chunk reader and the scorer;
    BLAS's own threads for the network's products (all the cores by default)
    would compete with the reader for the same cores and spin while they
    wait. On a 2-core machine this gives one thread: the same rows, less
    time (``docs/benchmarks.md``).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


def _input_rows(path: Path) -> int | None:
    """A Parquet file's row count from its footer (for the progress bar); None otherwise."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowInvalid, OSError):
            return None
    return None


def _strict_error(rejects: pd.DataFrame, path: Path) -> InputError:
    listed = "\n".join(
        f"  line {line}: {reason}"
        for line, reason in rejects[[LINE, REASON]].head(MAX_LISTED).itertuples(index=False)
    )
    return InputError(
        f"{path}: invalid rows:\n{listed}\n"
        "Fix them, or pass --rejects PATH to write bad rows there and score the rest."
    )


def _raw_by_lines(chunk: RawChunk, spec: InputSpec, lines: np.ndarray) -> pd.DataFrame:
    """The raw text rows of a chunk at the given file lines, with a ``line`` column."""
    frame = text_rows(chunk, spec, np.searchsorted(chunk.lines, lines))
    frame.insert(0, LINE, frame.index)
    return frame.reset_index(drop=True)
