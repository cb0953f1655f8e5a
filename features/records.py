"""Text records to rows: pyarrow's CSV parser, with every record kept and numbered by file line.

pyarrow parses the file block by block (vectorised, in C++). A record that
does not fit the header — more or fewer fields, or an unclosed quote — is
handed to a callback instead of becoming a row; here it becomes a row all
the same, its fields padded with nulls or cut to the header's width, with a
*read problem* that validation turns into its reject reason. An unclosed
quote keeps only its own line: the lines it swallowed are parsed again as
records of their own, so one stray ``"`` costs one row, not the rest of the
file. A whitespace-separated file (no quoting) is read one line per record
and split on runs of blanks.

Line numbers: pyarrow numbers records; a record's file line is its number
plus the newlines inside the records before it (quoted values that span
lines), so the header is line 1 and blank lines are counted.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

UNCLOSED = 'unclosed quote: a field opened with " is never closed on this line'
BLOCK_BYTES = 1 << 22
"""Bytes parsed at a time; a single record (e.g. an unclosed quote's span) may not exceed it."""


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


def concat(chunks: list[RawChunk]) -> RawChunk:
    """One chunk of the rows of ``chunks``, in order."""
    if len(chunks) == 1:
        return chunks[0]
    return RawChunk(
        pa.concat_tables([c.table for c in chunks]),
        np.concatenate([c.lines for c in chunks]),
        np.concatenate(
            [c.problems if c.problems is not None else np.full(c.rows, "", object) for c in chunks]
        ),
    )


def parse_records(
    source: Path, names: list[str], separator: str, encoding: str
) -> Iterator[RawChunk]:
    """Parse a text file (its header already read: ``names``) into chunks of rows.

    Raises
    ------
    pyarrow.ArrowInvalid
        When the text cannot be decoded, or a record exceeds :data:`BLOCK_BYTES`.
    """
    whitespace = separator == "whitespace"
    columns = ["line"] if whitespace else names
    bad: dict[int, tuple[str, int]] = {}

    def keep_invalid(row: pacsv.InvalidRow) -> str:
        bad[row.number] = (row.text, row.actual_columns)
        return "skip"

    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(
            use_threads=False,
            block_size=BLOCK_BYTES,
            encoding=encoding,
            skip_rows=1,
            column_names=columns,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter="\x1f" if whitespace else separator,
            quote_char=False if whitespace else '"',
            ignore_empty_lines=False,
            invalid_row_handler=keep_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in columns},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    next_record, offset = 2, 0
    batches = iter(reader)
    while True:
        batch = next(batches, None)
        if batch is None:
            table = pa.table({n: pa.array([], pa.string()) for n in names})
            problems = np.zeros(0, dtype=object)
        elif whitespace:
            table, problems = _split_whitespace(pa.Table.from_batches([batch]).column(0), names)
        else:
            table = pa.Table.from_batches([batch])
            problems = np.full(table.num_rows, "", dtype=object)
        k = table.num_rows
        skipped = np.array(sorted(r for r in bad if r >= next_record), dtype=np.int64)
        candidates = np.arange(next_record, next_record + k + len(skipped))
        records = candidates[~np.isin(candidates, skipped)][:k]
        newlines = np.zeros(k, np.int64) if whitespace else _newlines(table)
        spill: list[str | None] = [None] * k
        last = (records[-1] if k else next_record - 1) if batch is not None else np.inf
        numbers = [r for r in skipped if r <= last]
        if numbers:
            rows = [_invalid_record(*bad.pop(r), names, separator) for r in numbers]
            table = pa.concat_tables([table, _text_table([r[0] for r in rows], names)])
            records = np.concatenate([records, numbers])
            problems = np.concatenate([problems, np.array([r[1] for r in rows], dtype=object)])
            newlines = np.concatenate([newlines, [r[2] for r in rows]])
            spill += [r[3] for r in rows]
            order = np.argsort(records, kind="stable")
            table = table.take(pa.array(order))
            records, problems, newlines = records[order], problems[order], newlines[order]
            spill = [spill[i] for i in order]
        if len(records):
            lines = records + offset + np.cumsum(newlines) - newlines
            offset += int(newlines.sum())
            next_record = int(records[-1]) + 1
            chunk = RawChunk(table, lines, problems)
            if any(s is not None for s in spill):
                chunk = _respill(chunk, spill, names, separator)
            yield _drop_blank(chunk)
        if batch is None:
            return


def _newlines(table: pa.Table) -> np.ndarray:
    """Newlines inside each row's values (quoted values spanning lines)."""
    count = np.zeros(table.num_rows, dtype=np.int64)
    for column in table.columns:
        count += np.asarray(
            pc.count_substring(column, "\n").to_numpy(zero_copy_only=False), dtype=np.int64
        )
    return count


def _blank_line(text: str, separator: str) -> bool:
    """Nothing but blanks and separators (``,,,``): a blank line, whatever its field count."""
    return text.replace(separator if separator != "whitespace" else " ", "").strip() == ""


def _fields(text: str, separator: str) -> list[str]:
    if separator == "whitespace":
        return text.split()
    return next(csv.reader([text], delimiter=separator), [])


def _invalid_record(
    text: str, actual: int, names: list[str], separator: str
) -> tuple[list[str | None], str, int, str | None]:
    """An invalid record as (fields padded or cut to the header, problem, newlines, spill).

    A record whose first line opens a quote it does not close keeps that
    line only; the lines it swallowed come back as ``spill``, to be read
    again line by line (the quote may close on a later line, in another
    row's quoted field: those rows are read as they are).
    """
    expected = len(names)
    if _blank_line(text, separator):
        return [""] * expected, "", text.count("\n"), None  # dropped as a blank line
    first, _, rest = text.partition("\n")
    spill = None
    if first.count('"') % 2 == 1:  # the record runs on past its line only through this quote
        fields = _fields(first, separator)
        problem = UNCLOSED
        spill = rest if rest else None
    else:
        fields = _fields(text.replace("\n", " "), separator)
        problem = _count_problem(len(fields) if fields else actual, expected, fields)
    padded: list[str | None] = [*fields[:expected], *[None] * (expected - len(fields))]
    return padded, problem, text.count("\n"), spill


def _count_problem(actual: int, expected: int, fields: list[str]) -> str:
    problem = f"{actual} fields, the header has {expected}"
    if actual > expected:
        extra = fields[expected:]
        if all(v.strip() == "" for v in extra):
            problem += " (the extra fields are empty: a trailing separator?)"
        else:
            problem += f" (extra: {', '.join(repr(v) for v in extra[:5])})"
    return problem


def _respill(
    chunk: RawChunk, spill: list[str | None], names: list[str], separator: str
) -> RawChunk:
    """Put back, after each unclosed-quote row, the lines it swallowed, one record per line."""
    parts: list[RawChunk] = []
    start = 0
    for position, text in enumerate(spill):
        if text is None:
            continue
        parts.append(chunk.take(np.arange(start, position + 1)))
        rows = [_line_record(line, names, separator) for line in text.split("\n")]
        parts.append(
            RawChunk(
                _text_table([r[0] for r in rows], names),
                chunk.lines[position] + 1 + np.arange(len(rows)),
                np.array([r[1] for r in rows], dtype=object),
            )
        )
        start = position + 1
    parts.append(chunk.take(np.arange(start, chunk.rows)))
    return concat(parts)


def _text_table(rows: list[list[str | None]], names: list[str]) -> pa.Table:
    return pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})


def _line_record(line: str, names: list[str], separator: str) -> tuple[list[str | None], str]:
    """One swallowed line as a record: its fields and problem (blank lines come back blank)."""
    expected = len(names)
    if _blank_line(line, separator):
        return [""] * expected, ""
    fields = _fields(line, separator)
    if line.count('"') % 2 == 1:
        problem = UNCLOSED
    elif len(fields) != expected:
        problem = _count_problem(len(fields), expected, fields)
    else:
        problem = ""
    return [*fields[:expected], *[None] * (expected - len(fields))], problem


def _split_whitespace(column: pa.ChunkedArray, names: list[str]) -> tuple[pa.Table, np.ndarray]:
    """Split whitespace-separated lines into the header's columns; a wrong count is a problem."""
    parts = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(column)).combine_chunks()
    count = np.asarray(pc.list_value_length(parts).to_numpy(zero_copy_only=False), dtype=np.int64)
    values = parts.flatten()
    if len(values) == 0:
        values = pa.array([""], pa.string())
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
