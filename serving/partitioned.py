"""Transaction logs larger than memory: hash-partitioned Parquet parts, scored one after another.

A customer's features depend on their own purchases only, so a log can be
split by customer and the parts scored one by one. When a log's valid rows
would not fit in ``--memory-limit`` (about :data:`BYTES_PER_TRANSACTION`
bytes each while the per-customer table is built), the local engine
(:mod:`valuecube.serving.batch`) writes each validated chunk's rows into
:class:`LogParts`: one Parquet file per ``hash(customer_id) % parts`` in a
hidden folder beside the output (``.NAME.XXXX.parts``, like the ``.partial``
files of :class:`valuecube.features.io.AtomicWriter`). Validation still
runs chunk by chunk through :mod:`valuecube.features.inputs`, so rejects
keep their line numbers and reasons.

What would depend on the whole log is fixed from the whole log before any
part is scored: the default ``as_of`` (the last date) and the calibration
window's start (the first date), tracked while the parts are written.

The one-pass output is in ``customer_id`` order (the per-customer table is
sorted by id); the parts' scores go to a Parquet file in the folder and are
copied into the output sorted by id with DuckDB (which sorts larger than
memory, spilling into the folder), so both ways give the same file. The
folder is removed on success and on failure (an exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from valuecube.features.io import PARQUET_SUFFIXES, AtomicWriter

BYTES_PER_TRANSACTION = 165
"""Peak memory per valid transaction of a one-pass log job, above the model (docs/benchmarks.md)."""
DEFAULT_MEMORY_FRACTION = 0.25
"""The default ``--memory-limit``: this share of the machine's physical memory (it is shared)."""
PART_FILL = 0.8
"""Parts are sized to this share of the limit: hash buckets are only about equal in size."""
MAX_PARTS = 512
"""At most this many parts (open files while the log is split): 5 G transactions at 2 GB."""
MIN_MEMORY = 64 << 10
"""The smallest ``--memory-limit`` taken (tests use tiny limits to force several parts)."""
SAMPLE_BYTES = 1 << 20
"""How much of a text log is read to estimate its bytes per line."""
SCORED = "scored.parquet"
"""The parts' scores, in part order, inside the parts folder (sorted into the output at the end)."""

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def physical_memory() -> int:
    """The machine's physical memory in bytes."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_memory_limit() -> int:
    """:data:`DEFAULT_MEMORY_FRACTION` of the physical memory."""
    return int(physical_memory() * DEFAULT_MEMORY_FRACTION)


def parse_memory(value: str | int | None) -> int:
    """A memory size in bytes from ``"2GB"``, ``"500MB"``, ``"1.5g"``, ``"800000"`` (bytes).

    Units are powers of 1024 (K, M, G, T, with or without ``B``/``iB``);
    ``None`` gives :func:`default_memory_limit`. Anything else, or a size
    below :data:`MIN_MEMORY`, is a ``ValueError`` saying what to give instead.
    """
    if value is None:
        return default_memory_limit()
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(
                f"--memory-limit {value!r} is not a size; give a number with a unit, "
                "e.g. 2GB, 500MB or 1.5G (powers of 1024; a bare number is bytes)"
            )
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < MIN_MEMORY:
        raise ValueError(
            f"--memory-limit {value!r} is below 64KB; give the memory the job may use, e.g. 2GB"
        )
    return size


def estimated_transactions(path: Path) -> int:
    """About how many rows ``path`` holds: a Parquet footer's count, else size / bytes per line.

    A text log's bytes per line come from its first :data:`SAMPLE_BYTES`;
    an unreadable file gives 0 (reading it reports the problem).
    """
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pq.ParquetFile(path).metadata.num_rows
        size = path.stat().st_size
        with open(path, "rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except (OSError, pa.ArrowInvalid):
        return 0
    lines = sample.count(b"\n")
    return size // max(len(sample) // lines, 1) if lines else 1


def parts_needed(transactions: int, memory_limit: int) -> int:
    """How many hash parts keep each part's rows within the limit (1: the log fits in one pass).

    At most :data:`MAX_PARTS`: beyond that the parts exceed the limit.
    """
    need = transactions * BYTES_PER_TRANSACTION
    if need <= memory_limit:
        return 1
    return min(math.ceil(need / (memory_limit * PART_FILL)), MAX_PARTS)


class LogParts:
    """A hidden folder beside ``output`` holding a log's valid rows split by a hash of the id.

    :meth:`add` appends a validated chunk (one Parquet row group per part it
    touches); :meth:`close` ends the writing; :meth:`frames` reads the parts
    back one at a time; :meth:`remove` deletes the folder (always call it,
    in a ``finally``).
    """

    def __init__(self, output: Path, parts: int, id_column: str, date_column: str) -> None:
        self.parts, self.id_column, self.date_column = parts, id_column, date_column
        output.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(
            tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".parts", dir=output.parent)
        )
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.filled: set[int] = set()
        self.schema: pa.Schema | None = None
        self.first_date: pd.Timestamp | None = None
        self.last_date: pd.Timestamp | None = None
        self.rows = 0

    def path(self, part: int) -> Path:
        """The Parquet file of one part."""
        return self.folder / f"part-{part:05d}.parquet"

    def add(self, data: pd.DataFrame) -> None:
        """Append validated rows, each to the part of its customer id's hash."""
        if not len(data):
            return
        dates = data[self.date_column]
        first, last = dates.min(), dates.max()
        self.first_date = first if self.first_date is None else min(self.first_date, first)
        self.last_date = last if self.last_date is None else max(self.last_date, last)
        bucket = (
            pd.util.hash_pandas_object(data[self.id_column], index=False).to_numpy()
            % np.uint64(self.parts)
        ).astype(np.int64)
        order = np.argsort(bucket, kind="stable")  # keeps file order within a part
        table = pa.Table.from_pandas(data, preserve_index=False)
        if self.schema is None:
            self.schema = table.schema
        table = table.cast(self.schema).take(pa.array(order))
        ends = np.cumsum(np.bincount(bucket, minlength=self.parts))
        start = 0
        for part, end in enumerate(ends):  # a loop over parts, not over customers
            if end > start:
                self._writer(part).write_table(table.slice(start, end - start))
            start = end
        self.rows += len(data)

    def _writer(self, part: int) -> pq.ParquetWriter:
        if part not in self.writers:
            assert self.schema is not None
            self.writers[part] = pq.ParquetWriter(self.path(part), self.schema)
            self.filled.add(part)
        return self.writers[part]

    def close(self) -> None:
        """Finish every part file."""
        while self.writers:
            self.writers.popitem()[1].close()

    def frames(self) -> Iterator[pd.DataFrame]:
        """Each non-empty part's rows as the validated frame they were written from."""
        for part in sorted(self.filled):
            yield pq.read_table(self.path(part)).to_pandas(self_destruct=True)

    def remove(self) -> None:
        """Delete the folder and everything in it (writers closed first, errors ignored)."""
        for writer in self.writers.values():
            try:
                writer.close()
            except Exception:  # the folder goes whatever state a writer is in
                pass
        self.writers.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def copy_sorted(
    scored: Path, output: Path, schema: pa.Schema, memory_limit: int, spill: Path, rows: int
) -> None:
    """Write the Parquet file ``scored`` into ``output`` (atomically) sorted by ``customer_id``.

    DuckDB sorts with at most half of ``memory_limit``, spilling into
    ``spill``; batches of ``rows`` are cast back to the output ``schema``
    (DuckDB reads timestamps as microseconds) and appended.
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{max(memory_limit // 2 >> 20, 64)}MB'")
        con.execute(f"SET temp_directory = {_literal(spill)}")
        reader = con.sql(
            f"SELECT * FROM read_parquet({_literal(scored)}) ORDER BY customer_id"
        ).fetch_record_batch(rows)
        with AtomicWriter(output, schema) as writer:
            for batch in reader:
                writer.write(pa.Table.from_batches([batch]).cast(schema).to_pandas())
            writer.commit()
    finally:
        con.close()


def _literal(path: Path) -> str:
    """A path as an SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


class PartsProgress:
    """A tqdm bar over the parts on a terminal, one log line per part otherwise."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.enabled, self.bar = total, enabled, None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="parts", desc="scoring parts", file=sys.stderr)

    def update(self, part: int, summary: str) -> None:
        """Report one more part scored (``summary``: the counts so far)."""
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled:
            print(f"part {part}/{self.total}: {summary}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
