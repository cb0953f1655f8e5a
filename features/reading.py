"""Reading input files into chunks of text rows, each row with its line in the file.

A CSV (or whitespace-separated text) file is parsed by pyarrow's streaming
CSV reader; a Parquet file by ``ParquetFile.iter_batches``. Every record of
the file becomes a row of a :class:`RawChunk`, including the records that
cannot be a row as they are: a line with more or fewer fields than the
header, or an unclosed quote. Those keep their fields (padded with nulls or
cut to the header's width) and carry a *read problem*, which validation turns
into the row's reject reason; nothing read is dropped except blank lines.

Line numbers are the file's own: the header is line 1, blank lines are
counted, and a quoted value spanning several lines moves the next row's
number on by as many lines.

Problems with the file as a whole (not found, a directory, empty, not
UTF-8 text, a duplicated or mis-separated header) are an :class:`InputError`
naming the file and, where there is one, the line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuecube.features.config import InputSpec
from valuecube.features.records import BLOCK_BYTES, RawChunk, concat, parse_records

__all__ = [
    "LINE",
    "REASON",
    "InputError",
    "RawChunk",
    "header_columns",
    "input_format",
    "read_chunks",
    "read_parquet_row_groups",
    "read_raw",
    "text_rows",
    "text_table",
]

LINE = "line"
REASON = "reason"
PARQUET_SUFFIXES = (".parquet", ".pq")
_OTHER_SEPARATORS = {";": "';'", "\t": "tab", "|": "'|'", ",": "','"}


class InputError(ValueError):
    """An input file cannot be used as it is; the message says why and where."""


def check_input_path(path: Path) -> None:
    """Refuse a missing path, a directory or an empty file, each with what is wrong."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file; give the path of the input file")
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (no header, no rows)")


def read_chunks(
    path: str | Path, spec: InputSpec, chunk_rows: int, fmt: str | None = None
) -> Iterator[RawChunk]:
    """Stream an input file in chunks of at most ``chunk_rows`` rows (CSV/text or Parquet).

    ``fmt`` (``"parquet"``, ``"csv"`` or ``"text"``) overrides the format the
    extension says; CSV and text are both read with the config's separator.

    Raises
    ------
    InputError
        For problems with the file as a whole (see the module docstring).
    """
    path = Path(path)
    check_input_path(path)
    if input_format(path, fmt) == "parquet":
        yield from _parquet_chunks(path, chunk_rows)
    else:
        yield from _rechunk(_text_chunks(path, spec), chunk_rows)


def input_format(path: str | Path, fmt: str | None = None) -> str:
    """``"parquet"`` or ``"text"`` (CSV or whitespace text): ``fmt`` if given, else by extension."""
    if fmt is not None:
        if fmt not in ("parquet", "csv", "text"):
            raise InputError(f"unknown input format {fmt!r}; use parquet, csv or text")
        return "parquet" if fmt == "parquet" else "text"
    return "parquet" if Path(path).suffix.lower() in PARQUET_SUFFIXES else "text"


def read_raw(path: str | Path, spec: InputSpec) -> pd.DataFrame:
    """The whole file as text rows (index = line number), as :func:`text_rows` gives them."""
    return text_rows(read_whole(path, spec), spec)


def read_whole(path: str | Path, spec: InputSpec) -> RawChunk:
    """The whole file as one chunk."""
    chunks = list(read_chunks(path, spec, 1 << 62))
    if len(chunks) == 1:
        return chunks[0]
    header = _header_names(Path(path), spec) if not chunks else chunks[0].table.column_names
    table = pa.table({name: pa.array([], pa.string()) for name in header})
    return RawChunk(table, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))


def text_rows(
    chunk: RawChunk, spec: InputSpec, positions: np.ndarray | None = None
) -> pd.DataFrame:
    """Rows of a chunk as text (``None`` for a null), index = line (see :func:`text_table`)."""
    table = (
        chunk.table if positions is None else chunk.table.take(pa.array(positions, type=pa.int64()))
    )
    frame = text_table(table, spec).to_pandas()
    frame = frame.astype(object).where(frame.notna(), None)
    frame.index = pd.Index(chunk.lines if positions is None else chunk.lines[positions], name=LINE)
    return frame


def text_table(table: pa.Table, spec: InputSpec) -> pa.Table:
    """Every column of ``table`` as Arrow strings: the raw text a rejects file shows.

    A typed date column (Parquet) goes back to text in the declared format,
    like a CSV cell, so that one validator serves both formats.
    """
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        spec_col = spec.columns.get(name)
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        if (
            spec_col is not None
            and spec_col.type == "date"
            and spec_col.format
            and pa.types.is_temporal(column.type)
        ):
            column = pc.strftime(pc.cast(column, pa.timestamp("s")), format=spec_col.format)
        elif not pa.types.is_string(column.type):
            column = pc.cast(column, pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


# ------------------------------------------------------------------ Parquet


def _parquet_chunks(
    path: Path, chunk_rows: int, row_groups: list[int] | None = None, first_line: int = 2
) -> Iterator[RawChunk]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    line = first_line
    for batch in parquet.iter_batches(batch_size=min(chunk_rows, 1 << 30), row_groups=row_groups):
        table = pa.Table.from_batches([batch])
        yield RawChunk(table, np.arange(line, line + batch.num_rows), None)
        line += batch.num_rows


def read_parquet_row_groups(
    path: str | Path, row_groups: list[int], first_line: int, chunk_rows: int
) -> Iterator[RawChunk]:
    """Some row groups of a Parquet file, numbered as in the whole file (its first row is line 2).

    ``first_line`` is the line of the first row of ``row_groups[0]``: 2 plus
    the rows of the row groups before it. Lets several workers read one file.
    """
    yield from _parquet_chunks(Path(path), chunk_rows, row_groups, first_line)


def header_columns(path: str | Path, spec: InputSpec, fmt: str | None = None) -> list[str]:
    """A file's column names, its rows unread (text: the header line; Parquet: the schema)."""
    path = Path(path)
    check_input_path(path)
    if input_format(path, fmt) == "parquet":
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    return _header_names(path, spec)


# --------------------------------------------------------------------- text


def _separator(spec: InputSpec) -> str:
    return "whitespace" if spec.separator == "whitespace" else spec.separator


def _header_line(path: Path, spec: InputSpec) -> str:
    with path.open("rb") as file:
        first = file.readline()
    try:
        return first.decode(spec.encoding).rstrip("\r\n").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, spec, 1, first, exc) from exc


def _header_names(path: Path, spec: InputSpec) -> list[str]:
    """The header's column names, checked: no duplicates, not one column of a mis-separated file."""
    line = _header_line(path, spec)
    sep = _separator(spec)
    names = line.split() if sep == "whitespace" else next(csv.reader([line], delimiter=sep), [])
    names = [n.strip() for n in names]
    if len(names) == 1 and len(spec.columns) > 1:
        found = [label for s, label in _OTHER_SEPARATORS.items() if s != sep and s in line]
        expects = "runs of blanks" if sep == "whitespace" else repr(sep)
        hint = f" (the header has {', '.join(found)})" if found else ""
        raise InputError(
            f"{path}: line 1 (the header): only 1 column found — wrong separator? the config "
            f"expects {expects}{hint}. Fix the file or set input.separator in the config."
        )
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise InputError(
                f"{path}: line 1 (the header): column name {name!r} appears twice "
                f"(columns {seen[name]} and {position}); each column needs its own name"
            )
        seen[name] = position
    return names


def _encoding_error(
    path: Path, spec: InputSpec, line: int, raw: bytes, exc: UnicodeDecodeError
) -> InputError:
    return InputError(
        f"{path}: line {line} is not {spec.encoding} text (byte 0x{raw[exc.start]:02x} at "
        f"position {exc.start + 1}). Re-save the file as UTF-8, or set input.encoding in the "
        f"config to the file's encoding (e.g. encoding: latin-1)."
    )


def _first_undecodable_line(path: Path, spec: InputSpec) -> InputError:
    """The error for the first line that is not text in the config's encoding."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                raw.decode(spec.encoding)
            except UnicodeDecodeError as exc:
                return _encoding_error(path, spec, number, raw, exc)
    return InputError(f"{path}: is not {spec.encoding} text")


def _text_chunks(path: Path, spec: InputSpec) -> Iterator[RawChunk]:
    """The rows of a text file in file order (:func:`features.records.parse_records`)."""
    names = _header_names(path, spec)
    try:
        yield from parse_records(path, names, _separator(spec), spec.encoding)
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower():
            raise _first_undecodable_line(path, spec) from exc
        if "straddl" in str(exc):
            raise InputError(
                f"{path}: a record runs on for more than {BLOCK_BYTES >> 20} MB: most likely a "
                f'quote (") opened and never closed, from line {_first_odd_quote(path, spec)} '
                "on. Fix the quoting of that line."
            ) from exc
        raise InputError(f"{path}: cannot be parsed as a table: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise _first_undecodable_line(path, spec) from exc


def _first_odd_quote(path: Path, spec: InputSpec) -> int | str:
    with path.open(encoding=spec.encoding, errors="replace") as file:
        for number, line in enumerate(file, start=1):
            if line.count('"') % 2 == 1:
                return number
    return "?"


def _rechunk(pieces: Iterator[RawChunk], chunk_rows: int) -> Iterator[RawChunk]:
    """Regroup chunks into ones of ``chunk_rows`` rows (the last one smaller)."""
    pending: list[RawChunk] = []
    held = 0
    for piece in pieces:
        pending.append(piece)
        held += piece.rows
        while held >= chunk_rows:
            whole = concat(pending)
            yield whole.take(np.arange(chunk_rows))
            rest = whole.take(np.arange(chunk_rows, whole.rows))
            pending, held = [rest], rest.rows
    whole = concat(pending) if pending else None
    if whole is not None and whole.rows:
        yield whole
