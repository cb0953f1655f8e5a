"""Reading and validating raw input files.

Every input row ends up either in the validated frame or in the rejects
frame with a reason: ``rows_read == len(data) + len(rejects)``. In strict
mode (no rejects file asked for) any bad row is an :class:`InputError` that
names the file, the line, the column and the value.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.config import ColumnSpec, InputSpec

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
            if (col.type == "date" and col.format and name in frame.columns
                    and (pd.api.types.is_datetime64_any_dtype(frame[name]) or _holds_dates(frame[name]))):
                frame[name] = pd.to_datetime(frame[name]).dt.strftime(col.format)
        return frame.astype("string").astype(object).where(frame.notna(), None)
    sep = r"\s+" if spec.separator == "whitespace" else spec.separator
    try:
        # Blank lines are kept while reading so that every row keeps its line number, then dropped.
        frame = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: the file is empty (no header, no rows)") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: cannot be parsed as a table: {exc}") from exc
    frame.index = pd.RangeIndex(2, len(frame) + 2, name=LINE)
    blank_line = frame.isna().all(axis=1) | (frame.fillna("") == "").all(axis=1) if len(frame.columns) else None
    return frame if blank_line is None else frame[~blank_line.to_numpy()]


def _holds_dates(values: pd.Series) -> bool:
    first = values.dropna()
    return len(first) > 0 and isinstance(first.iloc[0], dt.date)


def _blank(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy() | (values.astype("string").str.strip() == "").fillna(True).to_numpy()


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
            problem[low] = [f"column {name!r}: {v!r} is below the minimum {spec.min:g}" for v in values[low]]
        if spec.max is not None:
            high = (parsed > spec.max).fillna(False).to_numpy()
            problem[high] = [f"column {name!r}: {v!r} is above the maximum {spec.max:g}" for v in values[high]]
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
        problem[bad] = [f"column {name!r}: unknown category {v!r} (expected one of: {expected})" for v in values[bad]]
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


def validate(raw: pd.DataFrame, spec: InputSpec, *, source: str = "<input>") -> ValidatedInput:
    """Check a raw frame against the input spec; split it into good rows and rejects.

    Raises
    ------
    InputError
        For problems with the file as a whole: no rows, or a required column
        missing (with the closest names found, to catch a misspelling).
    """
    if len(raw) == 0:
        raise InputError(f"{source}: the file has a header but no rows")
    missing = [c for c, s in spec.columns.items() if s.required and c not in raw.columns]
    if missing:
        hints = []
        for col in missing:
            close = difflib.get_close_matches(col, [str(c) for c in raw.columns], n=1)
            hints.append(f"{col!r}" + (f" (found {close[0]!r} — misnamed?)" if close else ""))
        raise InputError(
            f"{source}: line 1 (the header): missing required column(s) {', '.join(hints)}; "
            f"the file has {list(raw.columns)}. Fix the file or the config's input.columns."
        )

    if raw.index.name != LINE:  # read_raw already numbers the lines of a text file
        raw = raw.reset_index(drop=True)
        raw.index = pd.RangeIndex(2, len(raw) + 2, name=LINE)
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
            first_line = ids[dup].reset_index().groupby(spec.id_column)[LINE].transform("min").to_numpy()
            dup_problem = pd.Series("", index=raw.index, dtype=object)
            dup_problem[dup] = [
                f"duplicate {spec.id_column} {v!r} (first on line {f})" for v, f in zip(ids[dup], first_line)
            ]
            problems.append(dup_problem)

    reason = _join_problems(problems, raw.index)
    bad = (reason != "").to_numpy()
    data = pd.DataFrame(typed, index=raw.index)[~bad]
    rejects = raw[bad].copy()
    rejects.insert(0, LINE, rejects.index)
    rejects[REASON] = reason[bad]
    return ValidatedInput(data=data, rejects=rejects.reset_index(drop=True), rows_read=len(raw), source=source)


def load_input(path: str | Path, spec: InputSpec, *, strict: bool) -> ValidatedInput:
    """Read and validate an input file.

    With ``strict=True`` any bad row raises :class:`InputError` listing the
    first bad rows (file, line, column, value) and how to keep going
    (``--rejects PATH``); otherwise bad rows come back in ``rejects``.
    """
    result = validate(read_raw(path, spec), spec, source=str(path))
    if strict and len(result.rejects):
        listed = "\n".join(
            f"  line {line}: {reason}" for line, reason in result.rejects[[LINE, REASON]].head(MAX_LISTED).itertuples(index=False)
        )
        more = len(result.rejects) - MAX_LISTED
        raise InputError(
            f"{path}: {len(result.rejects)} of {result.rows_read} rows are invalid:\n{listed}"
            + (f"\n  … and {more} more" if more > 0 else "")
            + "\nFix them, or pass --rejects PATH to write bad rows there and process the rest."
        )
    if len(result.data) == 0:
        raise InputError(f"{path}: none of the {result.rows_read} rows is valid (see the rejects file)")
    return result
