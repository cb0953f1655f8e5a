"""Local batch scoring: a file of customers in, one scored row per valid customer out.

The job streams: customer tables are read ``chunk_rows`` rows at a time
(pandas ``read_csv(chunksize=…)`` / pyarrow ``ParquetFile.iter_batches``),
validated, scored and appended to the output, so memory follows the chunk
size, not the file size. Two things grow with the input and are kept small:

* the ids already seen (duplicates across chunks are rejected): a sorted
  NumPy array of the ids' bytes plus their line numbers, ~``len(id) + 8``
  bytes per customer (5,000,000 ten-character ids ≈ 90 MB);
* transaction logs: a customer's features need all of their purchases, so
  the log is validated chunk by chunk and only the valid, typed rows are
  kept (id, date, quantity, amount, as Arrow strings and floats); the
  per-customer table is then built as of ``--as-of`` and scored in chunks of
  customers. Memory therefore grows with the number of transactions:
  ``benchmarks/bench_log_scoring.py`` measured ~165 bytes per transaction
  at the peak (3,000,000 transactions: 1.1 GB in all). A log larger than the
  machine can hold must be split by customer (every purchase of a customer
  in the same part) and the parts scored one by one: a customer's scores
  depend on their own purchases only (BG/NBD is frozen in the model).

Speed: validation is vectorised in Arrow for the rows that are plainly
valid (:func:`features.inputs.validate_chunk`; the others are checked row by
row, which words the reasons); the next chunk is read and validated in a
background thread while the current one is scored, and Parquet output is
written in the background too.

Row accounting: every input row is scored or written to the rejects file
with a reason (invalid values, duplicate id, factors not computable);
``rows_read == customers_scored + rows_rejected`` for customer tables. A
duplicate id keeps its *first* row and rejects the later ones — a streaming
job cannot take back a row it has already written, and this rule does not
depend on where the chunks split.

Output appears atomically: rows go to a hidden temporary file next to the
destination (``.NAME.XXXX.partial``), which is flushed, fsynced and renamed
over the destination only when the whole input has been processed. A job
killed half-way leaves no file at the destination (only the hidden
``.partial`` file, safe to delete); a rerun produces the full output.
"""

from __future__ import annotations

import datetime as dt
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuecube.features.config import InputSpec
from valuecube.features.customers import CUSTOMER_ID, build_customer_table
from valuecube.features.factors import split_computable
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
from valuecube.features.io import AtomicFile, table_format
from valuecube.models.packaged import (
    PREDICTION_COLUMNS,
    PSI_BINS,
    ChurnSegmentModel,
    population_stability_index,
    psi_bin_counts,
)
from valuecube.serving.loading import LoadedModel, check_config, load_model

DEFAULT_CHUNK_ROWS = 100_000
CHURN_RISK_CUTOFFS = (0.3, 0.6)
"""Churn-risk bands: probability < 0.3 → low, < 0.6 → medium, else high."""
CHURN_RISK_LABELS = ("low", "medium", "high")
DRIFT_PSI_WARN = 0.2
"""PSI above this (a common rule of thumb: > 0.2 is a significant shift) triggers a drift warning."""
DRIFT_SAMPLE_ROWS = 10_000
"""Customers per chunk whose factors feed the drift histograms (all of them in smaller chunks)."""
OUTPUT_COLUMNS = (*PREDICTION_COLUMNS, "churn_risk", "model_name", "model_version", "scored_at")
OUTPUT_SCHEMA = pa.schema(
    [
        (CUSTOMER_ID, pa.string()),
        ("cv_score", pa.float64()),
        ("pv_score", pa.float64()),
        ("ra_score", pa.float64()),
        ("segment", pa.string()),
        ("segment_model", pa.string()),
        ("churn_probability", pa.float64()),
        ("churn_risk", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("scored_at", pa.timestamp("ms", tz="UTC")),
    ]
)


class NothingScoredError(InputError):
    """No input row could be scored (all rejected, or none read)."""


def churn_risk(probability: np.ndarray) -> np.ndarray:
    """The churn-risk band of each probability (see :data:`CHURN_RISK_CUTOFFS`)."""
    bands = np.searchsorted(
        np.asarray(CHURN_RISK_CUTOFFS), np.asarray(probability, dtype=float), side="right"
    )
    return np.asarray(CHURN_RISK_LABELS, dtype=object)[bands]


def finish(
    predictions: pd.DataFrame, name: str, version: str, scored_at: pd.Timestamp
) -> pd.DataFrame:
    """Model predictions → the output rows (:data:`OUTPUT_COLUMNS`): risk band and provenance added."""
    probability = predictions["churn_probability"].to_numpy()
    return pd.DataFrame(
        {  # the columns' arrays as they are: text stays Arrow strings, never Python objects
            **{c: predictions[c].array for c in PREDICTION_COLUMNS},
            CUSTOMER_ID: predictions[CUSTOMER_ID].astype("str").array,
            "churn_risk": churn_risk(probability),
            "model_name": name,
            "model_version": version,
            "scored_at": scored_at,
        },
        index=pd.RangeIndex(len(predictions)),
    )


def score_customers(
    model: ChurnSegmentModel, customers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Score a per-customer table, setting aside customers whose factors cannot be computed.

    Returns ``(predictions, unscorable, factors)``: the model's
    :data:`PREDICTION_COLUMNS` for the scorable customers, the reason per
    unscorable customer (index = customer id), and the scored customers'
    factors (for the drift check).
    """
    factors = model.cube.factors(customers)
    ok, unscorable = split_computable(factors)
    if not ok.all():
        customers, factors = customers[ok], factors[ok]
    if not len(customers):
        return pd.DataFrame({c: [] for c in PREDICTION_COLUMNS}), unscorable, factors
    return model.predict_customers(customers, factors), unscorable, factors


class DriftMonitor:
    """Accumulates each tree factor's histogram over chunks; PSI against the training distribution at the end.

    Each chunk contributes an evenly spaced sample of at most
    :data:`DRIFT_SAMPLE_ROWS` customers: plenty for 10-bin histograms, and
    the normalisation stays a small cost of the job.
    """

    def __init__(self, model: ChurnSegmentModel) -> None:
        self.model = model
        self.counts = {name: np.zeros(PSI_BINS, dtype=np.int64) for name in model.reference}

    def update(self, factors: pd.DataFrame) -> None:
        """Add a chunk of scored customers' factors."""
        if not len(factors):
            return
        step = -(-len(factors) // DRIFT_SAMPLE_ROWS)
        normalised = self.model.cube.fuzzy_.normalize(factors.iloc[::step])
        for name in self.counts:
            self.counts[name] += psi_bin_counts(normalised[name].to_numpy())

    def psi(self) -> pd.Series:
        """PSI per factor (NaN when nothing was counted)."""
        out = {}
        for name, counts in self.counts.items():
            total = counts.sum()
            out[name] = (
                population_stability_index(self.model.reference[name], counts / total)
                if total
                else np.nan
            )
        return pd.Series(out, name="psi", dtype=float)


class SeenIds:
    """The ids met so far, for rejecting duplicates across chunks (keep the first row).

    Stored as a sorted NumPy array of the ids' UTF-8 bytes with the line of
    each id's first row: memory ~``len(id) + 8`` bytes per customer, lookups
    by binary search (no Python loop over customers).
    """

    def __init__(self) -> None:
        self.ids = np.empty(0, dtype="S1")
        self.lines = np.empty(0, dtype=np.int64)

    def check(self, ids: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """For each id (bytes), the line of an earlier row with the same id, or 0; then remember the new ones.

        Within ``ids`` the first occurrence counts as new and later ones point at it.
        """
        first_line = np.zeros(len(ids), dtype=np.int64)
        if len(self.ids):
            pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
            hit = self.ids[pos] == ids
            first_line[hit] = self.lines[pos[hit]]
        if len(np.unique(ids)) < len(
            ids
        ):  # duplicates inside this chunk: point them at their first line
            codes = pd.factorize(pd.Index(ids))[0]
            dup_in_chunk = pd.Series(codes).duplicated(keep="first").to_numpy()
            first = pd.Series(lines).groupby(codes).transform("min").to_numpy()
            first_line = np.where(dup_in_chunk & (first_line == 0), first, first_line)
        new = first_line == 0
        if new.any():
            order = np.argsort(ids[new], kind="stable")
            add_ids, add_lines = ids[new][order], lines[new][order]
            at = np.searchsorted(self.ids, add_ids)
            width = max(self.ids.dtype.itemsize, add_ids.dtype.itemsize)
            self.ids = np.insert(self.ids.astype(f"S{width}"), at, add_ids.astype(f"S{width}"))
            self.lines = np.insert(self.lines, at, add_lines)
        return first_line


def fixed_width_bytes(strings: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """UTF-8 strings (no nulls) as a NumPy ``S<width>`` array, gathered from the Arrow buffers (no Python objects)."""
    array = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    array = pc.cast(array, pa.large_binary())
    if len(array) == 0:
        return np.empty(0, dtype="S1")
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    width = max(int(lengths.max()), 1)
    index = offsets[:-1, None] + np.arange(width)
    padded = np.where(
        np.arange(width) < lengths[:, None], data[np.minimum(index, len(data) - 1)], 0
    ).astype(np.uint8)
    return padded.view(f"S{width}").ravel()


def split_duplicates(
    chunk: RawChunk, spec: InputSpec, seen: SeenIds
) -> tuple[RawChunk, pd.DataFrame]:
    """Take out rows whose id was already met (this chunk or earlier); return the rest and their rejects."""
    ids = pc.utf8_trim_whitespace(pc.cast(chunk.table.column(spec.id_column), pa.string()))
    present = pc.fill_null(pc.greater(pc.utf8_length(ids), 0), False).to_numpy(zero_copy_only=False)
    where = np.flatnonzero(present)
    raw = fixed_width_bytes(ids.take(pa.array(where, type=pa.int64())))
    first = seen.check(raw, chunk.lines[where])
    dup = np.zeros(chunk.table.num_rows, dtype=bool)
    dup[where[first > 0]] = True
    if not dup.any():
        return chunk, pd.DataFrame()
    rejects = text_rows(chunk, spec, np.flatnonzero(dup))
    rejects.insert(0, LINE, rejects.index)
    rejects[REASON] = [
        f"duplicate {spec.id_column} {v.decode()!r} (first on line {f})"
        for v, f in zip(raw[first > 0], first[first > 0])
    ]  # only the duplicates: usually none
    keep = np.flatnonzero(~dup)
    kept = chunk.take(keep)  # keeps the read problems of the rows
    return kept, rejects.reset_index(drop=True)


def prefetch(items: Iterator[object]) -> Iterator[object]:
    """Yield from ``items``, producing the next item in a background thread meanwhile.

    Reading and validating the next chunk (mostly pyarrow, which releases the
    GIL) then overlaps with scoring the current one. Exceptions are re-raised
    here, in order; at most one item waits, so memory grows by one chunk.
    """
    done, pending = object(), queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        pending.put((None, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            pending.put((None, done))
        except BaseException as exc:  # handed to the consumer
            pending.put((exc, None))

    worker = threading.Thread(target=produce, name="chunk-reader", daemon=True)
    worker.start()
    try:
        while True:
            error, item = pending.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()


# --------------------------------------------------------------- writing


class AtomicWriter:
    """Append DataFrames to a hidden temporary file beside ``path``; :meth:`commit` renames it into place.

    CSV or Parquet by the extension of ``path``. Use as a context manager:
    leaving it by an exception deletes the temporary file.
    """

    def __init__(self, path: Path, schema: pa.Schema | None = None) -> None:
        self.path = Path(path)
        self.format = table_format(self.path)
        self.file = AtomicFile(self.path)
        self.handle = self.file.handle
        self.schema = schema
        self.parquet: pq.ParquetWriter | None = None
        self.rows = 0
        self.header_written = False
        self.pending: threading.Thread | None = (
            None  # one Parquet write in flight, overlapping the next chunk
        )
        self.error: BaseException | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append rows (the first call fixes the schema when none was given)."""
        if self.schema is None:
            self.schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
        if self.format == "parquet":
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.handle, self.schema)
            if len(frame):
                table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
                self._wait()
                self.pending = threading.Thread(target=self._write, args=(table,), daemon=True)
                self.pending.start()
        else:
            frame.to_csv(
                self.handle,
                index=False,
                header=not self.header_written,
                date_format="%Y-%m-%dT%H:%M:%S.%fZ" if "scored_at" in frame.columns else None,
            )
            self.header_written = True
        self.rows += len(frame)

    def _write(self, table: pa.Table) -> None:
        try:
            self.parquet.write_table(table)  # type: ignore[union-attr]
        except BaseException as exc:  # re-raised by _wait in the caller's thread
            self.error = exc

    def _wait(self) -> None:
        if self.pending is not None:
            self.pending.join()
            self.pending = None
        if self.error is not None:
            raise self.error

    def commit(self) -> Path:
        """Finish the file, fsync it and rename it over the destination."""
        self._wait()
        if self.format == "parquet" and self.parquet is None:
            self.parquet = pq.ParquetWriter(self.handle, self.schema or pa.schema([]))
        elif self.format == "csv" and not self.header_written and self.schema is not None:
            self.handle.write((",".join(self.schema.names) + "\n").encode())
        if self.parquet is not None:
            self.parquet.close()
        return self.file.commit()

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            if self.pending is not None:
                self.pending.join()
            if self.parquet is not None:
                self.parquet.close()
        finally:
            self.file.abort()

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()


def rejects_schema(raw_columns: list[str]) -> pa.Schema:
    """Rejects file: the line (null for customer-level rejects of a log), the reason, then the raw columns as text."""
    return pa.schema(
        [(LINE, pa.int64()), (REASON, pa.string()), *[(c, pa.string()) for c in raw_columns]]
    )


def _rejects_frame(rejects: pd.DataFrame, raw_columns: list[str]) -> pd.DataFrame:
    line = rejects[LINE] if LINE in rejects.columns else [pd.NA] * len(rejects)
    out = pd.DataFrame(
        {LINE: pd.array(line, dtype="Int64"), REASON: rejects[REASON].astype(object).to_numpy()}
    )
    for c in raw_columns:
        out[c] = (
            rejects[c].astype(object).where(rejects[c].notna(), None).to_numpy()
            if c in rejects.columns
            else None
        )
    return out


# ------------------------------------------------------------------ the job


@dataclass
class ScoreResult:
    """How a scoring job went; the counts always add up (checked)."""

    model_name: str
    model_version: str
    output: Path | None
    rejects: Path | None
    rows_read: int = 0
    rows_rejected: int = 0
    customers_scored: int = 0
    customers_unscorable: int = 0
    customers_excluded: int = 0
    rows_used: int = 0
    rows_unused: int = 0
    shape: str = "customer_table"
    as_of: pd.Timestamp | None = None
    drift: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def drifted(self) -> list[str]:
        """Factors whose PSI exceeds :data:`DRIFT_PSI_WARN`."""
        return list(self.drift[self.drift > DRIFT_PSI_WARN].index)

    def summary(self) -> str:
        """One line of counts for the terminal or a log."""
        if self.shape == "customer_table":
            return (
                f"rows read {self.rows_read:,} · scored {self.customers_scored:,} · rejected {self.rows_rejected:,}"
                + (
                    f" (of which {self.customers_unscorable:,} with non-computable factors)"
                    if self.customers_unscorable
                    else ""
                )
            )
        as_of = f" at {self.as_of.date()}" if self.as_of is not None else ""
        return (
            f"rows read {self.rows_read:,} · rows rejected {self.rows_rejected - self.customers_unscorable:,} · "
            f"customers scored {self.customers_scored:,} · customers rejected (factors not computable) "
            f"{self.customers_unscorable:,} · customers not yet active{as_of} {self.customers_excluded:,}"
            + f" · rows not used (dated after as_of, or of those customers) {self.rows_unused:,}"
        )

    def check(self) -> None:
        """Raise if the row accounting does not add up (a bug, never an input problem)."""
        if (
            self.shape == "customer_table"
            and self.rows_read != self.customers_scored + self.rows_rejected
        ):
            raise AssertionError(f"row accounting broken: {self.summary()}")
        rejected_rows = self.rows_rejected - self.customers_unscorable
        if self.shape == "transaction_log" and self.rows_used + self.rows_unused + rejected_rows != (
            self.rows_read
        ):
            raise AssertionError(f"row accounting broken: {self.summary()}")


class Progress:
    """A tqdm bar on a terminal, plain log lines (stderr) otherwise."""

    def __init__(self, total: int | None, enabled: bool = True) -> None:
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="rows", unit_scale=True, desc="scoring", file=sys.stderr
            )

    def update(self, rows: int, result: ScoreResult, chunk: int) -> None:
        """Report one more chunk."""
        if self.bar is not None:
            self.bar.update(rows)
        elif self.enabled:
            print(f"chunk {chunk}: {result.summary()}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


def _input_rows(path: Path) -> int | None:
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except pa.ArrowInvalid:
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


class Sink:
    """Where validated customers go: scored into the output here; staged for Spark by :mod:`serving.spark`."""

    def __init__(self, loaded: LoadedModel, drift: DriftMonitor) -> None:
        self.loaded = loaded
        self.drift = drift

    def open(self, output: Path) -> None:
        """Prepare the destination (nothing is visible there until :meth:`commit`)."""

    def take(
        self, customers: pd.DataFrame, rows: pd.DataFrame, scored_at: pd.Timestamp
    ) -> pd.Series:
        """Handle one chunk; return the reasons of the unscorable customers (index = customer id)."""
        raise NotImplementedError

    def commit(self) -> None:
        """Make the output appear at the destination."""

    def abort(self) -> None:
        """Drop whatever was written."""


class LocalSink(Sink):
    """Score each chunk in this process and append it to the output file."""

    def open(self, output: Path) -> None:
        self.writer = AtomicWriter(output, OUTPUT_SCHEMA)

    def take(
        self, customers: pd.DataFrame, rows: pd.DataFrame, scored_at: pd.Timestamp
    ) -> pd.Series:
        predictions, unscorable, factors = score_customers(self.loaded.model, customers)
        self.drift.update(factors)
        self.writer.write(finish(predictions, self.loaded.name, self.loaded.version, scored_at))
        return unscorable

    def commit(self) -> None:
        self.writer.commit()

    def abort(self) -> None:
        self.writer.abort()


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
) -> ScoreResult:
    """Score every customer of ``input_path`` into ``output`` (see the module docstring).

    Without ``rejects`` any invalid row stops the job (nothing is written);
    with it, invalid rows go there with a reason. Raises
    :class:`NothingScoredError` when no customer could be scored (the rejects
    file is still written, the output is not). ``engine="spark"`` validates
    the same way, then scores with Spark (see :mod:`serving.spark`).
    """
    started = time.perf_counter()
    loaded = load_model(model) if isinstance(model, str) else model
    spec = scoring_spec(loaded.config.input)  # the label column is not checked
    input_path, output = Path(input_path), Path(output)
    rejects_path = None if rejects is None else Path(rejects)
    if chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    if engine not in ("local", "spark"):
        raise ValueError(f"unknown engine {engine!r}; use 'local' or 'spark'")
    if table_format(output) != "parquet" and engine == "spark":
        raise ValueError(f"{output}: the Spark engine writes Parquet; use a .parquet output path")
    if rejects_path is not None:
        table_format(rejects_path)
    if as_of is not None and spec.shape != "transaction_log":
        raise ValueError(
            "--as-of applies to transaction-log models only; this model scores a customer table"
        )
    result = ScoreResult(loaded.name, loaded.version, output, rejects_path, shape=spec.shape)
    result.warnings += check_config(loaded.config, config)
    scored_at = scored_at if scored_at is not None else pd.Timestamp.now(tz="UTC").floor("ms")
    drift = DriftMonitor(loaded.model)
    if engine == "spark":
        from valuecube.serving.spark import SparkSink

        sink: Sink = SparkSink(loaded, drift, master=spark_master, batch_rows=chunk_rows)
    else:
        sink = LocalSink(loaded, drift)
    bar = Progress(
        _input_rows(input_path) if spec.shape == "customer_table" else None, enabled=progress
    )
    source = str(input_path)
    state: dict[str, object] = {"rejects": None, "columns": []}
    sink.open(output)
    try:

        def reject(frame: pd.DataFrame) -> None:
            if not len(frame):
                return
            result.rows_rejected += len(frame)
            if state["rejects"] is None:
                raise _strict_error(frame, input_path)
            state["rejects"].write(_rejects_frame(frame, state["columns"]))  # type: ignore[union-attr]

        def emit(
            customers: pd.DataFrame,
            rows: pd.DataFrame,
            raw: Callable[[pd.Index], pd.DataFrame] | None,
        ) -> None:
            unscorable = sink.take(customers, rows, scored_at)
            result.customers_scored += len(customers) - len(unscorable)
            result.customers_unscorable += len(unscorable)
            if len(unscorable):
                frame = (
                    raw(unscorable.index)
                    if raw
                    else pd.DataFrame({spec.id_column: unscorable.index})
                )
                frame[REASON] = unscorable.to_numpy()
                reject(frame)

        seen = SeenIds()
        kept: list[pd.DataFrame] = []

        def checked() -> Iterator[tuple[RawChunk, int, pd.DataFrame, ValidatedInput | None]]:
            """Read, de-duplicate and validate chunk after chunk (runs ahead in a background thread)."""
            for chunk in read_chunks(input_path, spec, chunk_rows):
                n = chunk.table.num_rows
                dups = pd.DataFrame()
                if spec.shape == "customer_table" and spec.id_column in chunk.table.column_names:
                    chunk, dups = split_duplicates(chunk, spec, seen)
                validated = validate_chunk(chunk, spec, source) if chunk.table.num_rows else None
                yield chunk, n, dups, validated

        for number, (chunk, n, dups, validated) in enumerate(prefetch(checked()), start=1):
            if not state["columns"]:
                state["columns"] = list(chunk.table.column_names)
                if rejects_path is not None:
                    state["rejects"] = AtomicWriter(rejects_path, rejects_schema(state["columns"]))
            result.rows_read += n
            if validated is None:
                reject(dups)
                bar.update(n, result, number)
                continue
            reject(
                pd.concat([dups, validated.rejects], ignore_index=True).sort_values(
                    LINE, kind="stable"
                )
                if len(dups)
                else validated.rejects
            )
            if spec.shape == "customer_table" and len(validated.data):
                customers = build_customer_table(validated, spec, with_labels=False).table
                rows = validated.data.drop(
                    columns=[c for c in (spec.label_column,) if c in validated.data.columns]
                )
                lines = pd.Series(validated.data.index, index=customers.index)
                emit(
                    customers,
                    rows,
                    lambda ids, c=chunk, ln=lines: _raw_by_lines(c, spec, ln.loc[ids].to_numpy()),
                )
            elif spec.shape == "transaction_log":
                kept.append(validated.data)
            bar.update(n, result, number)
        if result.rows_read == 0:
            raise NothingScoredError(f"{input_path}: the file has a header but no rows")
        if spec.shape == "transaction_log" and kept:
            transactions = pd.concat(kept)
            kept.clear()  # the chunks' frames go now, not after scoring: the log is held once
            _score_log(loaded, spec, transactions, as_of, chunk_rows, result, emit, source)
        result.check()
        if result.customers_scored == 0:
            raise NothingScoredError(
                f"{input_path}: none of the {result.rows_read:,} rows could be scored ({result.summary()})"
                + (f"; see {rejects_path} for the reasons" if rejects_path else "")
            )
        sink.commit()
    except BaseException:
        sink.abort()
        if isinstance(
            state["rejects"], AtomicWriter
        ):  # keep the reasons when nothing could be scored
            if sys.exc_info()[0] is NothingScoredError and result.rows_read:
                state["rejects"].commit()
            else:
                state["rejects"].abort()
        raise
    finally:
        bar.close()
    if isinstance(state["rejects"], AtomicWriter):
        state["rejects"].commit()
    result.drift = drift.psi()
    result.seconds = time.perf_counter() - started
    return result


def _raw_by_lines(chunk: RawChunk, spec: InputSpec, lines: np.ndarray) -> pd.DataFrame:
    """The raw text rows of a chunk at the given file lines, with a ``line`` column."""
    frame = text_rows(chunk, spec, np.searchsorted(chunk.lines, lines))
    frame.insert(0, LINE, frame.index)
    return frame.reset_index(drop=True)


def _score_log(
    loaded: LoadedModel,
    spec: InputSpec,
    data: pd.DataFrame,
    as_of: dt.date | str | None,
    chunk_rows: int,
    result: ScoreResult,
    emit: Callable,
    source: str,
) -> None:
    """Build the per-customer table of a transaction log as of ``as_of`` and score it in chunks of customers."""
    validated = ValidatedInput(
        data=data, rejects=pd.DataFrame({LINE: [], REASON: []}), rows_read=len(data), source=source
    )
    built = build_customer_table(validated, spec, as_of=as_of, with_labels=False)
    result.as_of, result.customers_excluded = built.as_of, built.excluded
    result.rows_used, result.rows_unused = built.rows_used, built.rows_unused
    table = built.table[loaded.model.metadata["customer_columns"]].astype("float64")
    for start in range(0, len(table), chunk_rows):
        part = table.iloc[start : start + chunk_rows]
        emit(part, part.reset_index(), None)
