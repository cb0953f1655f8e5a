"""The Spark engine's reading side: the input's files, their work units, and what a worker does.

The driver lists the input's files (a file, a folder's files or a glob, in
name order: the *file order* of "first occurrence") and reads only their
headers (:func:`plan`). Each work unit is one text file, or about
:data:`UNIT_ROWS` rows of whole row groups of a Parquet file, so that the
workers split large Parquet files and the driver never holds a row.

A worker reads its unit with the local engine's own reader
(:func:`valuecube.features.inputs.read_chunks`), so line numbers and read
problems (wrong field count, unclosed quote) are the local engine's, and
checks each chunk with the local engine's own functions: duplicates met
earlier in the unit (:func:`~valuecube.features.duplicates.split_duplicates`),
the column rules (:func:`~valuecube.features.inputs.validate_chunk`) and, for
a customer table, the factors (:func:`~valuecube.features.factors.split_computable`).
It emits every input row once, with its file, line, outcome and raw text
(:func:`checked_schema`); the Spark side (:mod:`valuecube.serving.spark_job`)
finds duplicates across units and words their reasons.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuecube.features.config import InputSpec
from valuecube.features.customers import build_customer_table
from valuecube.features.duplicates import SeenIds, split_duplicates
from valuecube.features.factors import split_computable
from valuecube.features.inputs import (
    LINE,
    REASON,
    InputError,
    RawChunk,
    ValidatedInput,
    check_header,
    header_columns,
    input_format,
    read_chunks,
    read_parquet_row_groups,
    text_table,
    validate_chunk,
)

FILE, ROW, ID, KIND, WHY = "_file", "_line", "_id", "_kind", "_reason"
"""Bookkeeping columns: file index (file order), line in the file, trimmed id, outcome, reason."""
OK, REJECTED, UNSCORABLE, STATS = 0, 1, 2, 3
"""Outcomes (``_kind``): scored, rejected row, customer whose factors are not computable, counts."""
DUPLICATE = "duplicate"
"""Placeholder reason of a later copy of an id within a unit; the Spark side words every copy."""
UNIT_ROWS = 1_000_000
"""Rows of a Parquet work unit (whole row groups): a worker's share of a large file."""


@dataclass(frozen=True)
class Unit:
    """One worker task's share of the input: a text file, or row groups of a Parquet file."""

    file: int
    path: str
    fmt: str
    row_groups: list[int] | None
    first_line: int


def input_files(source: str | Path) -> list[Path]:
    """The files of an input, in name order: a file, a folder's files, or a glob's matches.

    A folder's hidden files and Spark's markers (names starting ``.`` or
    ``_``, e.g. ``_SUCCESS``) are not input.
    """
    text = str(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
        )
        if not files:
            raise InputError(f"{path}: the folder holds no input file")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not files:
            raise InputError(f"{text}: no file matches this pattern")
        return files
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    return [path]


def plan(
    files: list[Path], spec: InputSpec, fmt: str | None, unit_rows: int = UNIT_ROWS
) -> tuple[list[Unit], list[str]]:
    """The work units and the raw column names (the first file's header), headers checked.

    Every file must have the required columns, and all files the same
    columns (in any order); a Parquet file is cut between row groups.
    """
    units: list[Unit] = []
    columns: list[str] | None = None
    for index, path in enumerate(files):
        names = header_columns(path, spec, fmt)
        check_header(names, spec, str(path))
        if columns is None:
            columns = names
        elif sorted(names) != sorted(columns):
            raise InputError(
                f"{path}: its columns {names} differ from those of {files[0]} ({columns}); "
                "all the files of one input need the same columns"
            )
        kind = input_format(path, fmt)
        if kind != "parquet":
            units.append(Unit(index, str(path), kind, None, 2))
            continue
        meta = pq.ParquetFile(path).metadata
        groups: list[int] = []
        rows, line = 0, 2
        for group in range(meta.num_row_groups):
            groups.append(group)
            rows += meta.row_group(group).num_rows
            if rows >= unit_rows:
                units.append(Unit(index, str(path), kind, groups, line))
                line, groups, rows = line + rows, [], 0
        if groups or meta.num_row_groups == 0:
            units.append(Unit(index, str(path), kind, groups, line))
    return units, columns or []


def unit_chunks(unit: Unit, spec: InputSpec, chunk_rows: int) -> Iterator[RawChunk]:
    """A unit's rows in chunks, numbered by their lines in the file."""
    if unit.row_groups is not None:
        yield from read_parquet_row_groups(unit.path, unit.row_groups, unit.first_line, chunk_rows)
    else:
        yield from read_chunks(unit.path, spec, chunk_rows, unit.fmt)


# ------------------------------------------------------------ the schema


def typed_columns(spec: InputSpec, names: list[str]) -> dict[str, pa.DataType]:
    """The validated columns a worker passes on, with their Arrow types (as validation types)."""
    kinds = {"int": pa.float64(), "float": pa.float64(), "date": pa.timestamp("us")}
    return {name: kinds.get(spec.columns[name].type, pa.string()) for name in names}


def typed_name(i: int) -> str:
    """Internal name of the i-th typed column (raw and typed names never clash)."""
    return f"t{i}"


def raw_name(i: int) -> str:
    """Internal name of the i-th raw column."""
    return f"r{i}"


def checked_schema(raw_columns: list[str], typed: dict[str, pa.DataType]) -> pa.Schema:
    """What a worker emits: bookkeeping, every row's raw text, the typed values of valid rows."""
    return pa.schema(
        [
            (FILE, pa.int32()),
            (ROW, pa.int64()),
            (ID, pa.string()),
            (KIND, pa.int8()),
            (WHY, pa.string()),
            *[(raw_name(i), pa.string()) for i in range(len(raw_columns))],
            *[(typed_name(i), t) for i, t in enumerate(typed.values())],
        ]
    )


# ------------------------------------------------------------ the worker


@dataclass(frozen=True)
class Checker:
    """What a worker needs to check units: the spec, the columns, and the cube (for factors)."""

    spec: InputSpec
    raw_columns: list[str]
    typed: dict[str, pa.DataType]
    chunk_rows: int
    cube: object | None = None
    """The model's value cube: customer-table rows whose factors are not computable are rejected."""

    def __call__(self, plans: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``mapInArrow`` over the plan's units: every row of each unit, checked."""
        for batch in plans:
            for row in batch.to_pylist():
                unit = Unit(**row)
                seen = SeenIds()
                for chunk in unit_chunks(unit, self.spec, self.chunk_rows):
                    if chunk.rows:
                        yield self.check(chunk, unit, seen)

    def check(self, chunk: RawChunk, unit: Unit, seen: SeenIds) -> pa.RecordBatch:
        """One chunk: its rows' outcomes and reasons, raw text, and typed values of valid rows."""
        spec, n = self.spec, chunk.rows
        reason = np.full(n, None, dtype=object)
        kind = np.zeros(n, dtype=np.int8)
        ids = pa.nulls(n, pa.string())
        if spec.shape == "customer_table":
            ids = pc.utf8_trim_whitespace(pc.cast(chunk.table.column(spec.id_column), pa.string()))
            ids = pc.if_else(pc.equal(ids, ""), pa.scalar(None, pa.string()), ids).combine_chunks()
            chunk_kept, duplicates = split_duplicates(chunk, spec, seen)
            if len(duplicates):
                at = _positions(chunk, duplicates[LINE])
                reason[at], kind[at] = DUPLICATE, REJECTED
        else:
            chunk_kept = chunk
        good = pd.DataFrame()
        if chunk_kept.rows:
            validated = validate_chunk(chunk_kept, spec, unit.path)
            if len(validated.rejects):
                at = _positions(chunk, validated.rejects[LINE])
                reason[at], kind[at] = validated.rejects[REASON].to_numpy(), REJECTED
            good = validated.data
            if len(good) and spec.shape == "customer_table" and self.cube is not None:
                good = self._scorable(chunk, validated, reason, kind)
        at = _positions(chunk, good.index)
        raw = text_table(chunk.table, spec)
        arrays = [
            pa.array(np.full(n, unit.file, dtype=np.int32)),
            pa.array(chunk.lines.astype(np.int64)),
            ids,
            pa.array(kind),
            pa.array(reason, type=pa.string()),
            *[pc.cast(raw.column(c), pa.string()).combine_chunks() for c in self.raw_columns],
            *[_spread(good.get(c), at, n, t) for c, t in self.typed.items()],
        ]
        arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays]
        return pa.RecordBatch.from_arrays(
            arrays, schema=checked_schema(self.raw_columns, self.typed)
        )

    def _scorable(
        self, chunk: RawChunk, validated: ValidatedInput, reason: np.ndarray, kind: np.ndarray
    ) -> pd.DataFrame:
        """Valid rows whose factors are computable; the others marked, with the reason."""
        customers = build_customer_table(validated, self.spec, with_labels=False).table
        ok, unscorable = split_computable(self.cube.factors(customers))  # type: ignore[attr-defined]
        if not ok.all():
            at = _positions(chunk, validated.data.index[~ok])
            reason[at], kind[at] = unscorable.to_numpy(), UNSCORABLE
        return validated.data[ok]


def _positions(chunk: RawChunk, lines: pd.Series | pd.Index) -> np.ndarray:
    """Positions in the chunk of rows given by line (a file's lines are unique and ascending)."""
    return np.searchsorted(chunk.lines, np.asarray(lines, dtype=np.int64))


def _spread(values: pd.Series | None, at: np.ndarray, n: int, arrow_type: pa.DataType) -> pa.Array:
    """``values`` placed at positions ``at`` of an ``n``-long Arrow array, nulls elsewhere."""
    if values is None or not len(at):
        return pa.nulls(n, arrow_type)
    array = pa.Array.from_pandas(values.reset_index(drop=True))
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    array = pc.cast(array, arrow_type)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    take = np.full(n, -1, dtype=np.int64)
    take[at] = np.arange(len(at))
    return array.take(pa.array(take, mask=take < 0))
