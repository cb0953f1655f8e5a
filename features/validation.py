"""Validating raw rows against the config's input spec: one rule set, two speeds.

Every row ends up either in the validated frame or in the rejects frame with
a reason: ``rows_read == len(data) + len(rejects)``. The rules live in
:func:`_parse_column` (one column's values: blanks, numbers and bounds,
dates and the window start, categories) and :func:`_validate_rows` (the rows:
read problems, duplicate ids). :func:`validate_chunk` types the plainly valid
rows column by column in Arrow (:func:`_clean_column` accepts only values the
rules certainly accept and types them the same way) and sends every other
row through :func:`_validate_rows`, which words the reasons; the result is
the same as checking every row that way (the tests check it).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from valuecube.features.config import ColumnSpec, InputSpec
from valuecube.features.reading import LINE, REASON, InputError, RawChunk, text_rows


@dataclass(frozen=True)
class ValidatedInput:
    """A validated input: typed good rows, rejected rows with reasons, and the count read.

    ``data`` keeps the declared columns, typed (numbers as float64, dates as
    datetimes, categories as a pandas ``Categorical`` over the declared values,
    other text as strings); its index is the row's line number in the source
    file (header = line 1). ``rejects`` keeps ``line`` (an integer), the
    ``reason`` and the raw values of every bad row, as text.
    """

    data: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    source: str

    def __post_init__(self) -> None:
        if len(self.data) + len(self.rejects) != self.rows_read:
            raise AssertionError("row accounting broken: data + rejects != rows read")


def _blank(values: pd.Series) -> np.ndarray:
    return (
        values.isna().to_numpy()
        | (values.astype("string").str.strip() == "").fillna(True).to_numpy()
    )


def _parse_column(
    name: str, spec: ColumnSpec, values: pd.Series, earliest: pd.Timestamp | None = None
) -> tuple[pd.Series, pd.Series]:
    """Parse one column; return the typed values and a per-row problem text ('' when fine).

    ``missing`` fills blank cells only. ``earliest`` (the log's
    ``window_start``, for its date column) rejects earlier dates: such a
    purchase is outside every window the model uses.
    """
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
        if earliest is not None:
            early = (parsed < earliest).fillna(False).to_numpy()
            problem[early] = [
                f"column {name!r}: {v!r} is before the window start {earliest.date()} "
                "(input.window_start in the config)"
                for v in values[early]
            ]
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


# ------------------------------------------------- the vectorised checks

_PY_WHITESPACE = "".join(c for c in map(chr, range(0x3000 + 1)) if c.isspace())
_EDGE_SPACE = "^[{0}]|[{0}]$".format("".join(f"\\x{{{ord(c):x}}}" for c in _PY_WHITESPACE))
_PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _clean_column(column: pa.ChunkedArray, spec: ColumnSpec) -> tuple[np.ndarray, object] | None:
    """One column checked in Arrow: (clean mask, typed values), or None where this does not apply.

    "Clean" values are ones :func:`_validate_rows` certainly accepts
    and types exactly the same way (plain numbers in range, blanks of a
    numeric column with a ``missing`` value, exact category values, ids
    without edge whitespace); everything else goes to :func:`_validate_rows`,
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
        else:  # float32/16 would print and re-parse differently: leave to the row check
            return None
        x = np.asarray(number.to_numpy(zero_copy_only=False), dtype=np.float64)
        # "-0" parses to +0.0 in pandas but -0.0 here: negative zeros are left to the row check
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
    """The number the row check puts in a blank numeric cell (``str(missing)`` parsed), or None."""
    value = pd.to_numeric(pd.Series([str(missing)]), errors="coerce").astype("float64").iloc[0]
    return float(value) if np.isfinite(value) else None


def check_header(columns: list[str], spec: InputSpec, source: str) -> None:
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
    """Check a caller's frame (text as read, or typed values) against the input spec.

    The frame becomes a chunk (its index, when named ``line``, gives the line
    numbers; otherwise rows are numbered from 2 as in a file with a header)
    and goes through :func:`validate_chunk`. A column Arrow cannot hold as
    one type (mixed values) is taken as text.
    """
    lines = (
        raw.index.to_numpy(dtype=np.int64)
        if raw.index.name == LINE
        else np.arange(2, len(raw) + 2, dtype=np.int64)
    )
    columns = {}
    for name in raw.columns:
        values = raw[name]
        try:
            columns[str(name)] = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            text = values.astype(str).where(values.notna(), None)
            columns[str(name)] = pa.array(text.to_numpy(dtype=object), pa.string())
    if not columns:
        check_header([], spec, source)
    return validate_chunk(RawChunk(pa.table(columns), lines), spec, source)


def validate_chunk(chunk: RawChunk, spec: InputSpec, source: str) -> ValidatedInput:
    """Split a chunk into typed good rows and rejects with reasons (see the module docstring).

    Raises
    ------
    InputError
        For problems with the input as a whole: no rows, or a required column
        missing (with the closest names found, to catch a misspelling).
    """
    if chunk.rows == 0:
        raise InputError(f"{source}: the file has a header but no rows")
    check_header(chunk.table.column_names, spec, source)
    n = chunk.rows
    problems = chunk.problems if chunk.problems is not None else np.full(n, "", dtype=object)
    present = [c for c in spec.columns if c in chunk.table.column_names]
    checks = {name: _clean_column(chunk.table.column(name), spec.columns[name]) for name in present}
    if any(v is None for v in checks.values()):
        return _validate_rows(text_rows(chunk, spec), spec, source, problems)
    clean = np.logical_and.reduce([ok for ok, _ in checks.values()] + [problems == ""])
    if spec.shape == "customer_table" and spec.id_column in present:
        # every row of a repeated id goes to the row-by-row check, which words the duplicates
        ids = pc.utf8_trim_whitespace(pc.cast(chunk.table.column(spec.id_column), pa.string()))
        clean &= ~_repeated(ids)
    every = bool(clean.all())  # the usual chunk: nothing to take out, no row to check
    positions = np.flatnonzero(clean)
    index = pd.Index(chunk.lines if every else chunk.lines[positions], name=LINE)
    typed = {}
    for name, (_, values) in checks.items():
        if isinstance(values, np.ndarray | pd.Categorical):
            typed[name] = values if every else values[positions]
        else:  # pandas' Arrow-backed "str" dtype: a tenth of the memory of Python strings
            kept = values if every else values.take(pa.array(positions, type=pa.int64()))
            typed[name] = kept.to_pandas().set_axis(index)
    data = pd.DataFrame(typed, index=index)
    if every:
        return ValidatedInput(
            data=data, rejects=_no_rejects(chunk.table.column_names), rows_read=n, source=source
        )
    rest = np.flatnonzero(~clean)
    checked = _validate_rows(text_rows(chunk, spec, rest), spec, source, problems[rest])
    if len(checked.data):  # Categoricals with equal categories stay so
        data = pd.concat([data, checked.data]).sort_index(kind="stable")
    return ValidatedInput(data=data, rejects=checked.rejects, rows_read=n, source=source)


def _repeated(ids: pa.ChunkedArray) -> np.ndarray:
    """Whether each id occurs more than once in the chunk (nulls count as one value).

    ``duplicated(keep=False)`` by Arrow's hash encoding, without making a
    Python string of every id.
    """
    encoded = pc.dictionary_encode(ids.combine_chunks(), null_encoding="encode")
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
    return np.bincount(codes, minlength=len(encoded.dictionary))[codes] > 1


def _no_rejects(columns: list[str]) -> pd.DataFrame:
    """The rejects frame of :func:`_validate_rows` when no row is rejected: its columns, no rows."""
    rejects = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    rejects.insert(0, LINE, pd.array([], dtype="Int64"))
    rejects[REASON] = pd.Series(dtype=object)
    return rejects


def _validate_rows(
    raw: pd.DataFrame, spec: InputSpec, source: str, read_problems: np.ndarray | None = None
) -> ValidatedInput:
    """Check ``raw`` (index = line numbers) row by row: the authority on validity and reasons.

    A row with a read problem (``read_problems``: wrong field count, unclosed
    quote) is rejected with that reason alone: its fields are not where the
    header says.
    """
    typed: dict[str, pd.Series] = {}
    problems: list[pd.Series] = []
    for name, col_spec in spec.columns.items():
        if name not in raw.columns:
            continue
        earliest = (
            pd.Timestamp(spec.window_start)
            if spec.shape == "transaction_log"
            and name == spec.date_column
            and spec.window_start is not None
            else None
        )
        typed[name], problem = _parse_column(name, col_spec, raw[name], earliest)
        problems.append(problem)

    if spec.shape == "customer_table" and spec.id_column in raw.columns:
        ids = raw[spec.id_column].astype("string").str.strip()
        dup = ids.duplicated(keep=False).fillna(False).to_numpy() & ~_blank(raw[spec.id_column])
        if dup.any():
            first_line = (
                ids[dup].reset_index().groupby(spec.id_column)[LINE].transform("min").to_numpy()
            )
            dup_problem = pd.Series("", index=raw.index, dtype=object)
            dup_problem[dup] = [
                f"duplicate {spec.id_column} {v!r} (first on line {f})"
                for v, f in zip(ids[dup], first_line, strict=True)
            ]
            problems.append(dup_problem)

    reason = _join_problems(problems, raw.index)
    if read_problems is not None and len(read_problems):
        hit = read_problems != ""
        reason[hit] = read_problems[hit]
    bad = (reason != "").to_numpy()
    data = pd.DataFrame(typed, index=raw.index)[~bad]
    rejects = raw[bad].copy()
    # nullable: joined with customer-level rejects (no line) the column stays integers
    rejects.insert(0, LINE, pd.array(rejects.index.to_numpy(dtype=np.int64), dtype="Int64"))
    rejects[REASON] = reason[bad]
    return ValidatedInput(
        data=data, rejects=rejects.reset_index(drop=True), rows_read=len(raw), source=source
    )
