"""Reading and validating raw input files: the entry point the rest of the code uses.

Every input row ends up either in the validated frame or in the rejects
frame with a reason: ``rows_read == len(data) + len(rejects)``. In strict
mode (no rejects file asked for) any bad row is an :class:`InputError` that
names the file, the line, the column and the value.

Reading (files → chunks of text rows with their line numbers, and the
records that are not rows as they stand) is :mod:`features.reading`; the
rules (one rule set, vectorised for plainly valid rows) are
:mod:`features.validation`. Both are re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from valuecube.features.config import InputSpec
from valuecube.features.reading import (
    LINE,
    REASON,
    InputError,
    RawChunk,
    header_columns,
    input_format,
    read_chunks,
    read_parquet_row_groups,
    read_raw,
    read_whole,
    text_rows,
    text_table,
)
from valuecube.features.validation import (
    ValidatedInput,
    _validate_rows,
    check_header,
    validate,
    validate_chunk,
)

__all__ = [
    "LINE",
    "MAX_LISTED",
    "REASON",
    "InputError",
    "RawChunk",
    "ValidatedInput",
    "_validate_rows",
    "check_header",
    "header_columns",
    "input_format",
    "load_input",
    "read_chunks",
    "read_parquet_row_groups",
    "read_raw",
    "scoring_spec",
    "strict_error",
    "text_rows",
    "text_table",
    "validate",
    "validate_chunk",
]

MAX_LISTED = 10


def scoring_spec(spec: InputSpec) -> InputSpec:
    """The input spec for scoring: the label column, if any, is neither required nor checked.

    Scoring predicts the label, so a file's label cells (blank, unknown, or
    the whole column absent) never decide whether a customer is scored; the
    column is kept as it is in the rejects file's raw columns.
    """
    if spec.label_column is None:
        return spec
    columns = {n: c for n, c in spec.columns.items() if n != spec.label_column}
    return spec.model_copy(update={"columns": columns, "label_column": None})


def strict_error(path: str | Path, result: ValidatedInput) -> InputError:
    """The strict-mode error: how many rows are bad, the first ones (line: reason), what to do."""
    listed = "\n".join(
        f"  line {line}: {reason}"
        for line, reason in result.rejects[[LINE, REASON]].head(MAX_LISTED).itertuples(index=False)
    )
    more = len(result.rejects) - MAX_LISTED
    return InputError(
        f"{path}: {len(result.rejects)} of {result.rows_read} rows are invalid:\n{listed}"
        + (f"\n  … and {more} more" if more > 0 else "")
        + "\nFix them, or pass --rejects PATH to write bad rows there and process the rest."
    )


def load_input(path: str | Path, spec: InputSpec, *, strict: bool) -> ValidatedInput:
    """Read and validate a whole input file.

    With ``strict=True`` any bad row raises :class:`InputError` listing the
    first bad rows (file, line, reason) and how to keep going
    (``--rejects PATH``); otherwise bad rows come back in ``rejects``.
    """
    result = validate_chunk(read_whole(path, spec), spec, str(path))
    if strict and len(result.rejects):
        raise strict_error(path, result)
    if len(result.data) == 0:
        raise InputError(
            f"{path}: none of the {result.rows_read} rows is valid (see the rejects file)"
        )
    return result
