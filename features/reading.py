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
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from valuecube.features.config import InputSpec

LINE = "line"
REASON = "reason"
PARQUET_SUFFIXES = (".parquet", ".pq")
_BLOCK_BYTES = 1 << 22
_OTHER_SEPARATORS = {";": "';'", "\t": "tab", "|": "'|'", ",": "','"}


class InputError(ValueError):
    """An input file cannot be used as it is; the message says why and where."""


@dataclass(frozen=True)
class RawChunk:
    """Rows of an input as read: Arrow columns, the file line of each row, and read problems.

    ``table`` holds the columns as read (text for CSV, typed for Parquet);
    ``lines`` the line number of each row; ``problems`` (when not None) a
    text per row, ``''`` for a row read as it is, else why the record is not
    a row of the table (wrong field count, unclosed quote).
    """

    table: pa.Table
    lines: np.ndarray
    problems: np.ndarray | None = None

    @property
    def rows(self) -> int:
        """How many input rows the chunk holds (every one is used or rejected)."""
        return self.table.num_rows

    def take(self, positions: np.ndarray) -> RawChunk:
        """The rows at ``positions``, with their lines and read problems."""
        return RawChunk(
            self.table.take(pa.array(positions, type=pa.int64())),
            self.lines[positions],
            None if self.problems is None else self.problems[positions],
        )


def check_input_path(path: Path) -> None:
    """Refuse a missing path, a directory or an empty file, each with what is wrong."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file; give the path of the input file")
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (no header, no rows)")


def read_chunks(path: str | Path, spec: InputSpec, chunk_rows: int) -> Iterator[RawChunk]:
    """Stream an input file in chunks of at most ``chunk_rows`` rows (CSV/text or Parquet).

    Raises
    ------
    InputError
        For problems with the file as a whole (see the module docstring).
    """
    path = Path(path)
    check_input_path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        yield from _parquet_chunks(path, chunk_rows)
    else:
        yield from _rechunk(_text_pieces(path, spec), chunk_rows)


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
    """Rows of a chunk as text (``None`` for a null), index = line number.

    A typed date column (Parquet) goes back to text in the declared format,
    like a CSV cell, so that one validator serves both formats.
    """
    table = (
        chunk.table if positions is None else chunk.table.take(pa.array(positions, type=pa.int64()))
    )
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
    frame = pa.table(columns, names=table.column_names).to_pandas()
    frame = frame.astype(object).where(frame.notna(), None)
    frame.index = pd.Index(chunk.lines if positions is None else chunk.lines[positions], name=LINE)
    return frame


# ------------------------------------------------------------------ Parquet


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[RawChunk]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    line = 2
    for batch in parquet.iter_batches(batch_size=min(chunk_rows, 1 << 30)):
        table = pa.Table.from_batches([batch])
        yield RawChunk(table, np.arange(line, line + batch.num_rows), None)
        line += batch.num_rows


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


@dataclass
class _Piece:
    """Parsed records in file order: text columns, record numbers (header = 1), read problems."""

    table: pa.Table
    records: np.ndarray
    problems: np.ndarray
    extra_lines: np.ndarray  # newlines inside each record (quoted values, unclosed quotes)


def _text_pieces(path: Path, spec: InputSpec) -> Iterator[RawChunk]:
    """Parse a text file block by block; yield its rows in order with their file lines."""
    names = _header_names(path, spec)
    whitespace = _separator(spec) == "whitespace"
    bad: dict[int, tuple[str, int]] = {}

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        bad[row.number] = (row.text, row.actual_columns)
        return "skip"

    parse = pacsv.ParseOptions(
        delimiter="\x1f" if whitespace else spec.separator,
        quote_char=False if whitespace else '"',
        ignore_empty_lines=False,
        invalid_row_handler=keep_invalid,
    )
    read = pacsv.ReadOptions(
        use_threads=False,
        block_size=_BLOCK_BYTES,
        encoding=spec.encoding,
        skip_rows=1,
        column_names=["line"] if whitespace else names,
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in (["line"] if whitespace else names)},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    next_record, line_offset = 2, 0
    try:
        reader = pacsv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
        batches = iter(reader)
        while True:
            batch = next(batches, None)
            if batch is None:
                piece = _bad_piece(bad, names, spec, next_record, np.inf)
            else:
                table = pa.Table.from_batches([batch])
                if whitespace:
                    table, problems = _split_whitespace(table.column(0), names)
                else:
                    problems = np.full(table.num_rows, "", dtype=object)
                piece = _merge(table, problems, bad, names, spec, next_record)
            if len(piece.records):
                lines = (
                    piece.records + line_offset + np.cumsum(piece.extra_lines) - piece.extra_lines
                )
                line_offset += int(piece.extra_lines.sum())
                next_record = int(piece.records[-1]) + 1
                yield _drop_blank(RawChunk(piece.table, lines, piece.problems))
            if batch is None:
                return
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            raise _first_undecodable_line(path, spec) from exc
        raise InputError(f"{path}: cannot be parsed as a table: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise _first_undecodable_line(path, spec) from exc


def _merge(
    table: pa.Table,
    problems: np.ndarray,
    bad: dict[int, tuple[str, int]],
    names: list[str],
    spec: InputSpec,
    next_record: int,
) -> _Piece:
    """Put the records of a parsed batch and the invalid records reported so far in file order."""
    k = table.num_rows
    skipped = np.array(sorted(r for r in bad if r >= next_record), dtype=np.int64)
    candidates = np.arange(next_record, next_record + k + len(skipped))
    records = candidates[~np.isin(candidates, skipped)][:k]
    last = records[-1] if k else next_record - 1
    extra = np.zeros(k, dtype=np.int64)
    for column in table.columns:
        extra += np.asarray(
            pc.count_substring(column, "\n").to_numpy(zero_copy_only=False), dtype=np.int64
        )
    good = _Piece(table, records, problems, extra)
    invalid = _bad_piece(bad, names, spec, next_record, last)
    if not len(invalid.records):
        return good
    records = np.concatenate([good.records, invalid.records])
    order = np.argsort(records, kind="stable")
    return _Piece(
        pa.concat_tables([good.table, invalid.table]).take(pa.array(order)),
        records[order],
        np.concatenate([good.problems, invalid.problems])[order],
        np.concatenate([good.extra_lines, invalid.extra_lines])[order],
    )


def _bad_piece(
    bad: dict[int, tuple[str, int]], names: list[str], spec: InputSpec, first: int, last: float
) -> _Piece:
    """Invalid records numbered ``first..last`` (popped from ``bad``) as rows with read problems."""
    numbers = sorted(r for r in bad if first <= r <= last)
    rows, problems, extra = [], [], []
    for number in numbers:
        text, actual = bad.pop(number)
        fields, problem = _bad_record(text, actual, len(names), spec, number)
        rows.append(fields)
        problems.append(problem)
        extra.append(text.count("\n"))
    columns = {n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)}
    return _Piece(
        pa.table(columns) if names else pa.table({}),
        np.array(numbers, dtype=np.int64),
        np.array(problems, dtype=object),
        np.array(extra, dtype=np.int64),
    )


def _bad_record(
    text: str, actual: int, expected: int, spec: InputSpec, number: int
) -> tuple[list[str | None], str]:
    """The fields of an invalid record (padded or cut to the header) and why it is invalid."""
    if text.strip() == "":
        return [""] * expected, ""  # a line of blanks: dropped as a blank line
    if spec.separator == "whitespace":
        fields = text.split()
    else:
        fields = next(csv.reader([text.replace("\n", " ")], delimiter=spec.separator), [])
    if text.count('"') % 2 == 1:
        spans = text.count("\n")
        runs = f" (it takes in the next {spans} line(s))" if spans else ""
        problem = f'unclosed quote: a field opened with " is never closed{runs}'
    else:
        problem = f"{actual} fields, the header has {expected}"
        if actual > expected:
            extra = fields[expected:]
            if all(v.strip() == "" for v in extra):
                problem += " (the extra fields are empty: a trailing separator?)"
            else:
                problem += f" (extra: {', '.join(repr(v) for v in extra[:5])})"
    padded: list[str | None] = [*fields[:expected], *[None] * (expected - len(fields))]
    return padded, problem


def _split_whitespace(column: pa.ChunkedArray, names: list[str]) -> tuple[pa.Table, np.ndarray]:
    """Split whitespace-separated lines into the header's columns; a wrong count is a problem."""
    parts = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(column)).combine_chunks()
    count = np.asarray(pc.list_value_length(parts).to_numpy(zero_copy_only=False), dtype=np.int64)
    values = parts.flatten()
    offsets = np.asarray(parts.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)[:-1]
    blank = np.asarray(
        pc.equal(pc.utf8_trim_whitespace(column), "").to_numpy(zero_copy_only=False), dtype=bool
    )
    count[blank] = 0
    columns = {}
    for i, name in enumerate(names):
        has = count > i
        taken = values.take(pa.array(np.where(has, offsets + i, 0), type=pa.int64()))
        columns[name] = pc.if_else(
            pa.array(has | blank),
            pc.if_else(pa.array(blank), "", taken),
            pa.scalar(None, pa.string()),
        )
    wrong = (count != len(names)) & ~blank
    problems = np.full(len(count), "", dtype=object)
    problems[wrong] = [f"{c} fields, the header has {len(names)}" for c in count[wrong]]
    return pa.table(columns), problems


def _drop_blank(chunk: RawChunk) -> RawChunk:
    """Drop rows whose every field is blank (blank lines); their line numbers stay counted."""
    if not chunk.table.num_columns or not chunk.table.num_rows:
        return chunk
    blank = np.ones(chunk.table.num_rows, dtype=bool)
    for column in chunk.table.columns:
        empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), True)
        blank &= np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)
    if chunk.problems is not None:
        blank &= chunk.problems == ""
    return chunk if not blank.any() else chunk.take(np.flatnonzero(~blank))


def _rechunk(pieces: Iterator[RawChunk], chunk_rows: int) -> Iterator[RawChunk]:
    """Regroup chunks into ones of ``chunk_rows`` rows (the last one smaller)."""
    pending: list[RawChunk] = []
    held = 0
    for piece in pieces:
        pending.append(piece)
        held += piece.rows
        while held >= chunk_rows:
            whole = _concat(pending)
            yield whole.take(np.arange(chunk_rows))
            rest = whole.take(np.arange(chunk_rows, whole.rows))
            pending, held = [rest], rest.rows
    whole = _concat(pending) if pending else None
    if whole is not None and whole.rows:
        yield whole


def _concat(chunks: list[RawChunk]) -> RawChunk:
    if len(chunks) == 1:
        return chunks[0]
    return RawChunk(
        pa.concat_tables([c.table for c in chunks]),
        np.concatenate([c.lines for c in chunks]),
        np.concatenate(
            [c.problems if c.problems is not None else np.full(c.rows, "", object) for c in chunks]
        ),
    )


def holds_dates(values: pd.Series) -> bool:
    """Whether a column holds ``datetime.date`` objects (a Parquet date32 column read by pandas)."""
    first = values.dropna()
    return len(first) > 0 and isinstance(first.iloc[0], dt.date)
