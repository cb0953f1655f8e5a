"""Reading and validating raw input files.

Every input row ends up either in the validated frame or in the rejects
frame with a reason: ``rows_read == len(data) + len(rejects)``. In strict
mode (no rejects file asked for) any bad row is an :class:`InputError` that
names the file, the line, the column and the value.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from valuecube.features.config import ColumnSpec, InputSpec

LINE = "line"
REASON = "reason"
MAX_LISTED = 10


class InputError(ValueError):
    """An input file cannot be used as it is; the message says why and where."""


@dataclass(frozen=True)
class ValidatedInput:
    """A validated input: typed good rows, rejected rows with reasons, and the count read.

    ``data`` keeps the declared columns, typed (numbers as float64, dates as
    datetimes, categories as a pandas ``Categorical`` over the declared values,
    other text as strings); its index is the row's line number in the source
    file (header = line 1). ``rejects`` keeps the raw
    values of every bad row plus ``line`` and ``reason`` columns.
    """

    data: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    source: str

    def __post_init__(self) -> None:
        if len(self.data) + len(self.rejects) != self.rows_read:
            raise AssertionError("row accounting broken: data + rejects != rows read")


def read_raw(path: str | Path, spec: InputSpec) -> pd.DataFrame:
    """Read a CSV (or whitespace-separated text) or Parquet file with every column as text.

    Parquet columns keep their values but are turned to strings, so that one
    validator serves both formats.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (no header, no rows)")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
        for name, col in spec.columns.items():
            # a typed date column goes back to text in the declared format, like a CSV cell
            if (
                col.type == "date"
                and col.format
                and name in frame.columns
                and (pd.api.types.is_datetime64_any_dtype(frame[name]) or _holds_dates(frame[name]))
            ):
                frame[name] = pd.to_datetime(frame[name]).dt.strftime(col.format)
        return frame.astype("string").astype(object).where(frame.notna(), None)
    sep = r"\s+" if spec.separator == "whitespace" else spec.separator
    try:
        # Blank lines are kept while reading so that every row keeps its line number, then dropped.
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: the file is empty (no header, no rows)") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: cannot be parsed as a table: {exc}") from exc
    frame.index = pd.RangeIndex(2, len(frame) + 2, name=LINE)
    blank_line = (
        frame.isna().all(axis=1) | (frame.fillna("") == "").all(axis=1)
        if len(frame.columns)
        else None
    )
    return frame if blank_line is None else frame[~blank_line.to_numpy()]


def _holds_dates(values: pd.Series) -> bool:
    first = values.dropna()
    return len(first) > 0 and isinstance(first.iloc[0], dt.date)


def _blank(values: pd.Series) -> np.ndarray:
    return (
        values.isna().to_numpy()
        | (values.astype("string").str.strip() == "").fillna(True).to_numpy()
    )


def _parse_column(name: str, spec: ColumnSpec, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse one column; return the typed values and a per-row problem text ('' when fine)."""
    text = values.astype("string").str.strip()
    blank = _blank(values)
    problem = pd.Series("", index=values.index, dtype=object)
    if spec.missing is not None:
        text = text.mask(blank, str(spec.missing))
        blank = np.zeros_like(blank)
    else:
        problem[blank] = f"column {name!r}: missing value"

    if spec.type in ("int", "float"):
        parsed = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = ~np.isfinite(parsed.to_numpy(dtype="float64", na_value=np.nan)) & ~blank
        problem[bad] = [f"column {name!r}: not a finite number: {v!r}" for v in values[bad]]
        if spec.type == "int":
            frac = np.isfinite(parsed) & (parsed != np.floor(parsed))
            problem[frac] = [f"column {name!r}: not a whole number: {v!r}" for v in values[frac]]
        if spec.min is not None:
            low = (parsed < spec.min).fillna(False).to_numpy()
            problem[low] = [
                f"column {name!r}: {v!r} is below the minimum {spec.min:g}" for v in values[low]
            ]
        if spec.max is not None:
            high = (parsed > spec.max).fillna(False).to_numpy()
            problem[high] = [
                f"column {name!r}: {v!r} is above the maximum {spec.max:g}" for v in values[high]
            ]
        return parsed, problem

    if spec.type == "date":
        parsed = pd.to_datetime(text, format=spec.format, errors="coerce")
        bad = parsed.isna().to_numpy() & ~blank
        hint = f" (expected format {spec.format})" if spec.format else ""
        problem[bad] = [f"column {name!r}: unparseable date {v!r}{hint}" for v in values[bad]]
        return parsed, problem

    if spec.type == "category":
        known = text.isin(spec.values).fillna(False).to_numpy()
        bad = ~known & ~blank
        expected = ", ".join(spec.values or [])
        problem[bad] = [
            f"column {name!r}: unknown category {v!r} (expected one of: {expected})"
            for v in values[bad]
        ]
        return pd.Series(pd.Categorical(text, categories=spec.values), index=text.index), problem

    return text.astype("str"), problem  # Arrow-backed: a tenth of the memory of Python strings


def _join_problems(problems: list[pd.Series], index: pd.Index) -> pd.Series:
    """Join the per-column problem texts of each row with '; ' (touching only bad rows)."""
    reason = pd.Series("", index=index, dtype=object)
    for problem in problems:
        hit = (problem != "").to_numpy()
        if hit.any():
            before = reason[hit]
            reason[hit] = np.where(before == "", problem[hit], before + "; " + problem[hit])
    return reason


# ------------------------------------------------------ reading in chunks


@dataclass(frozen=True)
class RawChunk:
    """A chunk of the input as read: Arrow columns (typed for Parquet, text for CSV) and file line numbers."""

    table: pa.Table
    lines: np.ndarray


def read_chunks(path: Path, spec: InputSpec, chunk_rows: int) -> Iterator[RawChunk]:
    """Stream an input file in chunks of ``chunk_rows`` rows (CSV/text or Parquet by extension).

    Line numbers follow :func:`features.inputs.read_raw`: the header is line 1,
    blank lines of a text file are skipped but counted.
    """
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (no header, no rows)")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            parquet = pq.ParquetFile(path)
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
        line = 2
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield RawChunk(pa.Table.from_batches([batch]), np.arange(line, line + batch.num_rows))
            line += batch.num_rows
        return
    sep = r"\s+" if spec.separator == "whitespace" else spec.separator
    try:
        reader = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=False,
            chunksize=chunk_rows,
        )
        line = 2
        for frame in reader:
            lines = np.arange(line, line + len(frame))
            line += len(frame)
            blank = (
                (frame.isna() | (frame == "")).all(axis=1).to_numpy()
                if len(frame.columns)
                else None
            )
            if blank is not None and blank.any():
                frame, lines = frame[~blank], lines[~blank]
            yield RawChunk(pa.Table.from_pandas(frame, preserve_index=False), lines)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: the file is empty (no header, no rows)") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: cannot be parsed as a table: {exc}") from exc


def text_rows(
    chunk: RawChunk, spec: InputSpec, positions: np.ndarray | None = None
) -> pd.DataFrame:
    """Rows of a chunk as text (like :func:`features.inputs.read_raw`), index = line number."""
    table = (
        chunk.table if positions is None else chunk.table.take(pa.array(positions, type=pa.int64()))
    )
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        spec_col = spec.columns.get(name)
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


# ------------------------------------------------- the vectorised checks

_PY_WHITESPACE = "".join(c for c in map(chr, range(0x3000 + 1)) if c.isspace())
_EDGE_SPACE = "^[{0}]|[{0}]$".format("".join(f"\\x{{{ord(c):x}}}" for c in _PY_WHITESPACE))
_PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _clean_column(column: pa.ChunkedArray, spec: ColumnSpec) -> tuple[np.ndarray, object] | None:
    """Vectorised check of one column: (clean mask, typed values) or None when this fast path does not apply.

    "Clean" values are ones :func:`features.inputs.validate` certainly accepts
    and types exactly the same way (plain numbers in range, blanks of a
    numeric column with a ``missing`` value, exact category values, ids
    without edge whitespace); everything else goes to ``validate`` itself,
    which stays the authority on reasons.
    """
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    t = column.type
    text = pa.types.is_string(t) or pa.types.is_large_string(t)
    if spec.type in ("int", "float"):
        if text:
            blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), True)
            plain = pc.fill_null(pc.match_substring_regex(column, _PLAIN_NUMBER), False)
            number = pc.cast(pc.if_else(plain, column, pa.scalar("0", type=t)), pa.float64())
        elif pa.types.is_integer(t) or pa.types.is_float64(t):
            blank = pc.is_null(column)
            plain = pc.invert(blank)
            number = pc.cast(column, pa.float64())
        else:  # float32/16 would print and re-parse differently: leave to validate
            return None
        x = np.asarray(number.to_numpy(zero_copy_only=False), dtype=np.float64)
        # "-0" parses to +0.0 in pandas but -0.0 here: negative zeros are left to validate
        ok = (
            np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)
            & np.isfinite(x)
            & ~((x == 0) & np.signbit(x))
        )
        if spec.missing is not None:
            fill = _missing_number(spec.missing)
            if fill is None:
                return None
            filled = np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
            x = np.where(filled, fill, x)
            ok |= filled
        if spec.type == "int":
            ok &= x == np.floor(x)
        if spec.min is not None:
            ok &= x >= spec.min
        if spec.max is not None:
            ok &= x <= spec.max
        return ok, x
    if spec.type == "category" and text and spec.missing is None:
        values = list(spec.values or [])
        codes = pc.fill_null(pc.index_in(column, value_set=pa.array(values, type=t)), -1).to_numpy(
            zero_copy_only=False
        )
        codes = np.asarray(codes, dtype=np.int64)
        exact = np.array(
            [v == v.strip() for v in values] + [False]
        )  # validate strips: " Yes" is not clean
        return exact[codes], pd.Categorical.from_codes(
            np.where(exact[codes], codes, -1), categories=values
        )
    if spec.type == "string" and text and spec.missing is None:
        ok = pc.and_(
            pc.greater(pc.utf8_length(column), 0),
            pc.invert(pc.match_substring_regex(column, _EDGE_SPACE)),
        )
        return np.asarray(
            pc.fill_null(ok, False).to_numpy(zero_copy_only=False), dtype=bool
        ), column
    return None


def _missing_number(missing: float | str) -> float | None:
    """The number ``validate`` puts in a blank numeric cell (it parses ``str(missing)``), or None if not finite."""
    value = pd.to_numeric(pd.Series([str(missing)]), errors="coerce").astype("float64").iloc[0]
    return float(value) if np.isfinite(value) else None


def _check_header(columns: list[str], spec: InputSpec, source: str) -> None:
    """A required column missing from the header is an error for the file as a whole."""
    missing = [c for c, s in spec.columns.items() if s.required and c not in columns]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, [str(c) for c in columns], n=1)
            hints.append(f"{col!r}" + (f" (found {close[0]!r} — misnamed?)" if close else ""))
        raise InputError(
            f"{source}: line 1 (the header): missing required column(s) {', '.join(hints)}; "
            f"the file has {list(columns)}. Fix the file or the config's input.columns."
        )


def validate(raw: pd.DataFrame, spec: InputSpec, *, source: str = "<input>") -> ValidatedInput:
    """Check a raw frame against the input spec; split it into good rows and rejects.

    ``raw`` holds text (as read from a file) or typed values (a caller's
    frame). Rows whose every value is plainly valid are checked and typed
    column by column in Arrow; the others, usually few, are checked row by
    row, which words the reasons (:func:`validate_chunk`).

    Raises
    ------
    InputError
        For problems with the file as a whole: no rows, or a required column
        missing (with the closest names found, to catch a misspelling).
    """
    if len(raw) == 0:
        raise InputError(f"{source}: the file has a header but no rows")
    _check_header(list(raw.columns), spec, source)
    if raw.index.name != LINE:  # read_raw already numbers the lines of a text file
        raw = raw.reset_index(drop=True)
        raw.index = pd.RangeIndex(2, len(raw) + 2, name=LINE)
    try:
        table = pa.Table.from_pandas(
            raw[[c for c in spec.columns if c in raw.columns]], preserve_index=False
        )
    except (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        pa.ArrowNotImplementedError,
    ):  # e.g. mixed types in a column
        return _validate_rows(raw, spec, source)
    return _validate_fast(
        RawChunk(table, raw.index.to_numpy()), spec, source, lambda positions: raw.iloc[positions]
    )


def validate_chunk(chunk: RawChunk, spec: InputSpec, source: str) -> ValidatedInput:
    """:func:`validate` for a chunk read by :func:`read_chunks` (its rows stay in Arrow until typed)."""
    if chunk.table.num_rows == 0:
        raise InputError(f"{source}: the file has a header but no rows")
    _check_header(chunk.table.column_names, spec, source)
    return _validate_fast(chunk, spec, source, lambda positions: text_rows(chunk, spec, positions))


def _validate_fast(
    chunk: RawChunk, spec: InputSpec, source: str, text_of: Callable[[np.ndarray], pd.DataFrame]
) -> ValidatedInput:
    """Type the plainly valid rows in Arrow; the rest go through :func:`_validate_rows` (``text_of(positions)``).

    Each column is checked vectorised (:func:`_clean_column`). Every row of a
    repeated customer id goes to the row-by-row check, which words the
    duplicates. The result equals ``_validate_rows`` on all rows (tests check it).
    """
    n = chunk.table.num_rows
    present = [c for c in spec.columns if c in chunk.table.column_names]
    checks = {name: _clean_column(chunk.table.column(name), spec.columns[name]) for name in present}
    if any(v is None for v in checks.values()):
        return _validate_rows(text_of(np.arange(n)), spec, source)
    clean = (
        np.logical_and.reduce([ok for ok, _ in checks.values()])
        if checks
        else np.ones(n, dtype=bool)
    )
    if spec.shape == "customer_table" and spec.id_column in present:
        ids = pc.utf8_trim_whitespace(pc.cast(chunk.table.column(spec.id_column), pa.string()))
        clean &= ~pd.Series(ids.to_numpy(zero_copy_only=False)).duplicated(keep=False).to_numpy()
    positions = np.flatnonzero(clean)
    index = pd.Index(chunk.lines[positions], name=LINE)
    typed = {}
    for name, (_, values) in checks.items():
        if isinstance(values, np.ndarray | pd.Categorical):
            typed[name] = values[positions]
        else:
            # pandas' Arrow-backed "str" dtype: the model compares strings without converting from objects
            typed[name] = (
                values.take(pa.array(positions, type=pa.int64())).to_pandas().set_axis(index)
            )
    data = pd.DataFrame(typed, index=index)
    if clean.all():
        empty = text_of(positions[:0]).copy()
        empty.insert(0, LINE, pd.Series(dtype="int64"))
        empty[REASON] = pd.Series(dtype=object)
        return ValidatedInput(
            data=data, rejects=empty.reset_index(drop=True), rows_read=n, source=source
        )
    rest = _validate_rows(text_of(np.flatnonzero(~clean)), spec, source)
    data = pd.concat([data, rest.data]).sort_index(
        kind="stable"
    )  # Categoricals with equal categories stay so
    return ValidatedInput(data=data, rejects=rest.rejects, rows_read=n, source=source)


def _validate_rows(raw: pd.DataFrame, spec: InputSpec, source: str) -> ValidatedInput:
    """Check ``raw`` (index = line numbers) row by row: the authority on what is valid, and on the reasons."""
    typed: dict[str, pd.Series] = {}
    problems: list[pd.Series] = []
    for name, col_spec in spec.columns.items():
        if name not in raw.columns:
            continue
        typed[name], problem = _parse_column(name, col_spec, raw[name])
        problems.append(problem)

    if spec.shape == "customer_table":
        ids = raw[spec.id_column].astype("string").str.strip()
        dup = ids.duplicated(keep=False).fillna(False).to_numpy() & ~_blank(raw[spec.id_column])
        if dup.any():
            first_line = (
                ids[dup].reset_index().groupby(spec.id_column)[LINE].transform("min").to_numpy()
            )
            dup_problem = pd.Series("", index=raw.index, dtype=object)
            dup_problem[dup] = [
                f"duplicate {spec.id_column} {v!r} (first on line {f})"
                for v, f in zip(ids[dup], first_line)
            ]
            problems.append(dup_problem)

    reason = _join_problems(problems, raw.index)
    bad = (reason != "").to_numpy()
    data = pd.DataFrame(typed, index=raw.index)[~bad]
    rejects = raw[bad].copy()
    rejects.insert(0, LINE, rejects.index)
    rejects[REASON] = reason[bad]
    return ValidatedInput(
        data=data, rejects=rejects.reset_index(drop=True), rows_read=len(raw), source=source
    )


def load_input(path: str | Path, spec: InputSpec, *, strict: bool) -> ValidatedInput:
    """Read and validate an input file.

    With ``strict=True`` any bad row raises :class:`InputError` listing the
    first bad rows (file, line, column, value) and how to keep going
    (``--rejects PATH``); otherwise bad rows come back in ``rejects``.
    """
    result = validate(read_raw(path, spec), spec, source=str(path))
    if strict and len(result.rejects):
        listed = "\n".join(
            f"  line {line}: {reason}"
            for line, reason in result.rejects[[LINE, REASON]]
            .head(MAX_LISTED)
            .itertuples(index=False)
        )
        more = len(result.rejects) - MAX_LISTED
        raise InputError(
            f"{path}: {len(result.rejects)} of {result.rows_read} rows are invalid:\n{listed}"
            + (f"\n  … and {more} more" if more > 0 else "")
            + "\nFix them, or pass --rejects PATH to write bad rows there and process the rest."
        )
    if len(result.data) == 0:
        raise InputError(
            f"{path}: none of the {result.rows_read} rows is valid (see the rejects file)"
        )
    return result
