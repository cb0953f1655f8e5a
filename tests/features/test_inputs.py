"""Input validation: strict mode (InputError naming file, line, column) and rejects mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import CDNOW_CONFIG, CDNOW_TXT, TELCO_CONFIG, TELCO_CSV

from valuecube.features.config import load_config
from valuecube.features.inputs import (
    LINE,
    REASON,
    InputError,
    RawChunk,
    _validate_rows,
    load_input,
    read_chunks,
    read_raw,
    scoring_spec,
    text_rows,
    validate,
    validate_chunk,
)

TELCO = load_config(TELCO_CONFIG).input
CDNOW = load_config(CDNOW_CONFIG).input
N_TELCO = 3930


@pytest.fixture(scope="module")
def telco_lines() -> list[str]:
    return TELCO_CSV.read_text().splitlines()


def _telco_file(tmp_path: Path, lines: list[str], n: int = 50) -> Path:
    path = tmp_path / "telco.csv"
    path.write_text("\n".join(lines[: n + 1]) + "\n")
    return path


def _edit(line: str, column: str, value: str, header: str) -> str:
    cols = header.split(",")
    cells = line.split(",")
    cells[cols.index(column)] = value
    return ",".join(cells)


def _both_modes(path: Path, spec, line: int, column: str, reason_word: str, rows: int) -> None:
    with pytest.raises(InputError) as info:
        load_input(path, spec, strict=True)
    msg = str(info.value)
    assert str(path) in msg and f"line {line}" in msg and column in msg and reason_word in msg
    assert "--rejects" in msg
    result = load_input(path, spec, strict=False)
    assert result.rows_read == rows == len(result.data) + len(result.rejects)
    assert len(result.rejects) == 1
    bad = result.rejects.iloc[0]
    assert bad[LINE] == line and column in bad[REASON] and reason_word in bad[REASON]
    assert line not in result.data.index


def test_real_files_load_clean() -> None:
    telco = load_input(TELCO_CSV, TELCO, strict=True)
    assert telco.rows_read == len(telco.data) == N_TELCO and telco.rejects.empty
    assert telco.data["tenure"].dtype == "float64" and telco.data.index[0] == 2
    cdnow = load_input(CDNOW_TXT, CDNOW, strict=True)
    assert len(cdnow.data) == cdnow.rows_read == len(CDNOW_TXT.read_text().splitlines()) - 1
    assert pd.api.types.is_datetime64_any_dtype(cdnow.data["date"])


@pytest.mark.parametrize(
    "column, value, word",
    [
        ("monthlycharges", "abc", "not a finite number"),
        ("monthlycharges", "nan", "not a finite number"),
        ("totalcharges", "inf", "not a finite number"),
        ("monthlycharges", "-5", "below the minimum"),
        ("tenure", "2.5", "not a whole number"),
        ("contract", "Three year", "unknown category"),
        ("gender", "", "missing value"),
    ],
)
def test_bad_cell(tmp_path, telco_lines, column, value, word) -> None:
    lines = list(telco_lines)
    lines[6] = _edit(lines[6], column, value, lines[0])  # file line 7
    _both_modes(_telco_file(tmp_path, lines), TELCO, 7, column, word, 50)


def test_blank_with_missing_default_is_fine(tmp_path, telco_lines) -> None:
    lines = list(telco_lines)
    lines[3] = _edit(lines[3], "totalcharges", " ", lines[0])
    result = load_input(_telco_file(tmp_path, lines), TELCO, strict=True)
    assert result.data.loc[4, "totalcharges"] == 0.0


def test_duplicate_id(tmp_path, telco_lines) -> None:
    lines = list(telco_lines)
    first_id = lines[1].split(",")[0]
    lines[9] = _edit(lines[9], "customerid", first_id, lines[0])  # file line 10
    path = _telco_file(tmp_path, lines)
    with pytest.raises(InputError, match="duplicate customerid") as info:
        load_input(path, TELCO, strict=True)
    assert "line 10" in str(info.value) and "first on line 2" in str(info.value)
    result = load_input(path, TELCO, strict=False)
    assert len(result.rejects) == 2 and sorted(result.rejects[LINE]) == [2, 10]
    assert result.rows_read == len(result.data) + len(result.rejects) == 50


def test_missing_column(tmp_path, telco_lines) -> None:
    frame = pd.read_csv(TELCO_CSV, dtype=str, nrows=20).drop(columns=["tenure"])
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    for strict in (True, False):
        with pytest.raises(InputError, match="missing required column") as info:
            load_input(path, TELCO, strict=strict)
        assert "'tenure'" in str(info.value) and str(path) in str(info.value)


def test_misnamed_column_suggests(tmp_path) -> None:
    frame = pd.read_csv(TELCO_CSV, dtype=str, nrows=20).rename(
        columns={"monthlycharges": "monthly_charges"}
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    for strict in (True, False):
        with pytest.raises(InputError, match=r"'monthly_charges'.*misnamed") as info:
            load_input(path, TELCO, strict=strict)
        assert str(path) in str(info.value) and "'monthlycharges'" in str(info.value)


def test_optional_label_column_may_be_absent(tmp_path) -> None:
    frame = pd.read_csv(TELCO_CSV, dtype=str, nrows=20).drop(columns=["churn"])
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    assert "churn" not in load_input(path, TELCO, strict=True).data.columns


def test_empty_and_header_only(tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header = tmp_path / "header.csv"
    header.write_text(TELCO_CSV.read_text().splitlines()[0] + "\n")
    for strict in (True, False):
        with pytest.raises(InputError, match="empty") as info:
            load_input(empty, TELCO, strict=strict)
        assert str(empty) in str(info.value)
        with pytest.raises(InputError, match="header but no rows") as info:
            load_input(header, TELCO, strict=strict)
        assert str(header) in str(info.value)
    with pytest.raises(InputError, match="not found"):
        load_input(tmp_path / "nope.csv", TELCO, strict=True)


def test_all_rows_bad_in_rejects_mode(tmp_path, telco_lines) -> None:
    lines = [telco_lines[0]] + [
        _edit(line, "tenure", "x", telco_lines[0]) for line in telco_lines[1:4]
    ]
    path = _telco_file(tmp_path, lines, 3)
    with pytest.raises(InputError, match="none of the 3 rows"):
        load_input(path, TELCO, strict=False)


def _cdnow_file(tmp_path: Path, n: int = 40) -> tuple[Path, list[str]]:
    lines = CDNOW_TXT.read_text().splitlines()[: n + 1]
    return tmp_path / "cdnow.txt", lines


@pytest.mark.parametrize(
    "field, value, column, word",
    [
        (1, "19971345", "date", "unparseable date"),
        (3, "-3.50", "dollar_value", "below the minimum"),
        (2, "two", "number_of_cds", "not a finite number"),
    ],
)
def test_cdnow_bad_cell(tmp_path, field, value, column, word) -> None:
    path, lines = _cdnow_file(tmp_path)
    cells = lines[11].split()
    cells[field] = value
    lines[11] = " " + "  ".join(cells)  # file line 12
    path.write_text("\n".join(lines) + "\n")
    _both_modes(path, CDNOW, 12, column, word, 40)


def test_parquet_like_csv(tmp_path, telco_lines) -> None:
    lines = list(telco_lines)
    lines[6] = _edit(lines[6], "monthlycharges", "abc", lines[0])
    csv = _telco_file(tmp_path, lines)
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    pq = tmp_path / "telco.parquet"
    frame.to_parquet(pq, index=False)
    _both_modes(pq, TELCO, 7, "monthlycharges", "not a finite number", 50)
    a = load_input(csv, TELCO, strict=False)
    b = load_input(pq, TELCO, strict=False)
    pd.testing.assert_frame_equal(a.data, b.data)


def test_parquet_with_typed_columns(tmp_path) -> None:
    frame = pd.read_csv(TELCO_CSV, nrows=30)  # numeric dtypes
    frame["totalcharges"] = pd.to_numeric(frame["totalcharges"], errors="coerce")
    pq = tmp_path / "typed.parquet"
    frame.to_parquet(pq, index=False)
    result = load_input(pq, TELCO, strict=True)
    assert len(result.data) == 30
    assert result.data["monthlycharges"].tolist() == pytest.approx(frame["monthlycharges"].tolist())


def test_validate_direct() -> None:
    raw = read_raw(TELCO_CSV, TELCO).head(10)
    out = validate(raw, TELCO, source="x")
    assert out.rows_read == 10 and out.source == "x" and list(out.data.index) == list(range(2, 12))


def test_blank_lines_keep_true_line_numbers(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:11])
    lines[8] = _edit(
        lines[8], "tenure", "ten", lines[0]
    )  # file line 9 before the blank lines go in
    lines[3:3] = ["", "   "]  # two blank lines after file line 3: the bad row is now on line 11
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines) + "\n\n\n")
    with pytest.raises(InputError, match="line 11: column 'tenure'"):
        load_input(path, TELCO, strict=True)
    result = load_input(path, TELCO, strict=False)
    assert result.rows_read == 10 == len(result.data) + len(result.rejects)
    assert result.rejects[LINE].tolist() == [11]
    assert list(result.data.index) == [2, 3, 6, 7, 8, 9, 10, 12, 13]
    assert result.data.loc[6, "customerid"] == telco_lines[3].split(",")[0]


def test_cdnow_blank_line_numbers(tmp_path) -> None:
    path, lines = _cdnow_file(tmp_path, 10)
    lines.insert(2, "")
    cells = lines[6].split()
    cells[1] = "19970231"  # no 31 February
    lines[6] = " " + "  ".join(cells)
    path.write_text("\n".join(lines) + "\n")
    _both_modes(path, CDNOW, 7, "date", "unparseable date", 10)


def test_missing_column_message_names_header_line(tmp_path) -> None:
    frame = pd.read_csv(TELCO_CSV, dtype=str, nrows=5).drop(columns=["contract"])
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"line 1 \(the header\).*'contract'"):
        load_input(path, TELCO, strict=True)


@pytest.mark.parametrize("as_dates", [False, True])
def test_parquet_with_typed_date_column(tmp_path, as_dates) -> None:
    text = load_input(CDNOW_TXT, CDNOW, strict=True).data.head(60)
    frame = text.reset_index(drop=True).astype({"number_of_cds": "int64"})
    if as_dates:
        frame["date"] = frame["date"].dt.date  # a Parquet date32 column
    pq = tmp_path / "log.parquet"
    frame.to_parquet(pq, index=False)
    result = load_input(pq, CDNOW, strict=True)
    assert result.rejects.empty and len(result.data) == 60
    pd.testing.assert_series_equal(
        result.data["date"].reset_index(drop=True),
        text["date"].reset_index(drop=True),
        check_dtype=False,
    )


def _same(fast, slow) -> None:
    """Same typed rows and rejects (line, reason) from the fast path and the row-by-row check."""
    assert fast.rows_read == slow.rows_read
    pd.testing.assert_frame_equal(
        fast.data.astype(object), slow.data.astype(object), check_index_type=False
    )
    a = fast.rejects[[LINE, REASON]].astype(str).sort_values(LINE).reset_index(drop=True)
    b = slow.rejects[[LINE, REASON]].astype(str).sort_values(LINE).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def _mixed_telco(n: int = 60) -> pd.DataFrame:
    raw = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False).head(n)
    edits = {
        3: ("gender", ""),
        5: ("tenure", "abc"),
        7: ("monthlycharges", "NaN"),
        9: ("monthlycharges", "-5.5"),
        11: ("contract", "Weekly"),
        13: ("customerid", raw.loc[40, "customerid"]),
        15: ("customerid", " "),
        17: ("seniorcitizen", "2"),
        19: ("partner", " Yes"),
        21: ("tenure", "-0"),
        23: ("totalcharges", " "),
        25: ("tenure", "1e1"),
        27: ("customerid", " " + raw.loc[44, "customerid"]),
        29: ("tenure", "3.5"),
    }
    for row, (column, value) in edits.items():
        raw.loc[row, column] = value
    raw.index = pd.RangeIndex(2, len(raw) + 2, name=LINE)
    return raw


def test_fast_path_equals_row_by_row_text(tmp_path) -> None:
    """The vectorised path gives the rows, types and reasons of the row-by-row check."""
    raw = _mixed_telco()
    slow = _validate_rows(raw, TELCO, "x")
    assert len(slow.rejects) >= 10 and len(slow.data) > 40  # the edits above really are a mix
    _same(validate(raw, TELCO, source="x"), slow)
    path = tmp_path / "mixed.csv"
    raw.to_csv(path, index=False)
    (chunk,) = read_chunks(path, TELCO, 1000)
    _same(validate_chunk(chunk, TELCO, "x"), slow)


def test_fast_path_equals_row_by_row_typed() -> None:
    """A caller's typed frame (numbers as numbers, None for blanks) validates like its text."""
    typed = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False).head(30)
    typed["tenure"] = typed["tenure"].astype(int)
    typed["monthlycharges"] = typed["monthlycharges"].astype(float)
    typed["totalcharges"] = pd.to_numeric(typed["totalcharges"].str.strip().replace("", None))
    typed.loc[2, "monthlycharges"] = np.nan
    typed.loc[4, "tenure"] = -3
    typed.loc[5, "totalcharges"] = None  # blank → the config's missing value (0)
    typed.loc[6, "gender"] = None
    typed.loc[7, "partner"] = " Yes"  # edge whitespace: stripped
    chunk = RawChunk(pa.Table.from_pandas(typed, preserve_index=False), np.arange(2, 32))
    typed.index = pd.RangeIndex(2, len(typed) + 2, name=LINE)
    text = typed.astype("string").astype(object).where(typed.notna(), None)
    slow = _validate_rows(text, TELCO, "x")  # one path: reasons quote values as text ('-3')
    assert len(slow.rejects) == 3
    _same(validate(typed, TELCO, source="x"), slow)
    _same(validate_chunk(chunk, TELCO, "x"), slow)
    assert isinstance(validate(typed, TELCO).data["contract"].dtype, pd.CategoricalDtype)


def test_a_chunk_without_a_bad_row_skips_the_row_check_and_gives_its_results(tmp_path) -> None:
    """Every row clean (the usual chunk): the typed rows of the row-by-row check, and its empty
    rejects frame exactly (columns, dtypes, index); the rows of a repeated id still go to that
    check."""
    raw = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False).head(200)
    path = tmp_path / "clean.csv"
    raw.to_csv(path, index=False)
    (chunk,) = read_chunks(path, TELCO, 1000)
    fast = validate_chunk(chunk, TELCO, "x")
    slow = _validate_rows(text_rows(chunk, TELCO), TELCO, "x")
    assert len(fast.data) == 200 and len(slow.rejects) == 0
    _same(fast, slow)
    pd.testing.assert_frame_equal(fast.rejects, slow.rejects)
    raw.loc[150, "customerid"] = raw.loc[20, "customerid"]  # lines 22 and 152
    raw.to_csv(path, index=False)
    (chunk,) = read_chunks(path, TELCO, 1000)
    repeated = validate_chunk(chunk, TELCO, "x")  # both rows: the batch keeps the first before
    assert repeated.rejects[LINE].tolist() == [22, 152]
    assert repeated.rejects[REASON].str.startswith("duplicate customerid").all()
    _same(repeated, _validate_rows(text_rows(chunk, TELCO), TELCO, "x"))


# ------------------------------------------------ records that are not rows as they stand


def _write(tmp_path: Path, lines: list[str], name: str = "t.csv", end: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes((end.join(lines) + end).encode())
    return path


def test_short_row_rejected_not_filled(tmp_path, telco_lines) -> None:
    """``missing:`` fills blank cells only: a line short of a field (totalcharges) is rejected."""
    lines = list(telco_lines[:21])
    lines[6] = lines[6].rsplit(",", 2)[0] + "," + lines[6].rsplit(",", 1)[1]  # drop totalcharges
    path = _write(tmp_path, lines)
    with pytest.raises(InputError, match="line 7: 20 fields, the header has 21"):
        load_input(path, TELCO, strict=True)
    result = load_input(path, TELCO, strict=False)
    assert result.rejects[LINE].tolist() == [7] and 7 not in result.data.index
    assert result.rejects[REASON].tolist() == ["20 fields, the header has 21"]
    assert result.rows_read == 20 == len(result.data) + 1


def test_long_row_goes_to_rejects(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:21])
    lines[10] += ",surprise"
    path = _write(tmp_path, lines)
    with pytest.raises(InputError, match=r"line 11: 22 fields, the header has 21 \(extra: 'surp"):
        load_input(path, TELCO, strict=True)
    result = load_input(path, TELCO, strict=False)
    assert result.rejects[LINE].tolist() == [11] and result.rows_read == 20
    row = result.rejects.iloc[0]
    assert row["customerid"] == telco_lines[10].split(",")[0]  # the raw columns are kept


def test_trailing_separators_on_data_rows(tmp_path, telco_lines) -> None:
    lines = [telco_lines[0]] + [line + "," for line in telco_lines[1:6]]
    with pytest.raises(InputError) as info:
        load_input(_write(tmp_path, lines), TELCO, strict=True)
    assert (
        "22 fields, the header has 21 (the extra fields are empty: a trailing separator?)"
        in str(info.value)
    )


@pytest.mark.parametrize("sep, named", [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_wrong_separator(tmp_path, telco_lines, sep, named) -> None:
    lines = [line.replace(",", sep) for line in telco_lines[:6]]
    with pytest.raises(InputError) as info:
        load_input(_write(tmp_path, lines), TELCO, strict=False)
    message = str(info.value)
    assert "only 1 column found — wrong separator? the config expects ','" in message
    assert f"the header has {named}" in message and "line 1" in message


def test_not_utf8_names_file_and_line(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:11])
    lines[6] = _edit(lines[6], "paymentmethod", "Chèque", lines[0])
    path = tmp_path / "latin.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_input(path, TELCO, strict=False)
    message = str(info.value)
    assert str(path) in message and "line 7 is not utf-8 text" in message
    assert "Re-save the file as UTF-8" in message and "input.encoding" in message
    latin = TELCO.model_copy(update={"encoding": "latin-1"})
    assert load_input(path, latin, strict=False).rejects[LINE].tolist() == [7]  # unknown category


def test_directory_as_input(tmp_path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_input(tmp_path, TELCO, strict=True)


def test_duplicated_header_name(tmp_path, telco_lines) -> None:
    lines = [telco_lines[0].replace("gender", "tenure"), *telco_lines[1:5]]
    with pytest.raises(InputError, match=r"'tenure' appears twice \(columns 2 and 6\)"):
        load_input(_write(tmp_path, lines), TELCO, strict=False)


def test_unclosed_quote_costs_its_line_only(tmp_path, telco_lines) -> None:
    """An unclosed quote rejects its own line (by file line); the lines after it are read."""
    lines = list(telco_lines[:21])
    lines[4] = _edit(lines[4], "gender", '"Male', lines[0])  # file line 5
    path = _write(tmp_path, lines)
    with pytest.raises(InputError, match="line 5: unclosed quote"):
        load_input(path, TELCO, strict=True)
    result = load_input(path, TELCO, strict=False)
    assert result.rejects[LINE].tolist() == [5] and result.rows_read == 20
    assert list(result.data.index) == [2, 3, 4, *range(6, 22)]


def test_quoted_value_spanning_lines_keeps_file_lines(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:11])
    lines[2] = _edit(lines[2], "paymentmethod", '"Mailed\ncheck"', lines[0])  # lines 3-4
    lines[6] = _edit(lines[6], "tenure", "ten", lines[0])  # now on file line 8
    path = _write(tmp_path, lines)
    result = load_input(path, TELCO, strict=False)
    assert result.rejects[LINE].tolist() == [3, 8]  # 'Mailed\ncheck' is an unknown category
    assert list(result.data.index) == [2, 5, 6, 7, 9, 10, 11, 12]


def test_bom_and_crlf(tmp_path, telco_lines) -> None:
    path = tmp_path / "win.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(telco_lines[:11]) + "\r\n").encode())
    result = load_input(path, TELCO, strict=True)
    assert result.rows_read == 10 and list(result.data.index) == list(range(2, 12))
    assert result.data["customerid"].iloc[0] == telco_lines[1].split(",")[0]


def test_whitespace_file_wrong_field_count(tmp_path) -> None:
    path, lines = _cdnow_file(tmp_path, 10)
    lines[3] += "  7"
    lines[5] = " ".join(lines[5].split()[:3])
    path.write_text("\n".join(lines) + "\n")
    result = load_input(path, CDNOW, strict=False)
    assert result.rejects[REASON].tolist() == [
        "5 fields, the header has 4",
        "3 fields, the header has 4",
    ]
    assert result.rejects[LINE].tolist() == [4, 6] and result.rows_read == 10


def test_log_rows_before_window_start_rejected(tmp_path) -> None:
    path, lines = _cdnow_file(tmp_path, 10)
    cells = lines[4].split()
    cells[1] = "19961231"
    lines[4] = " ".join(cells)  # file line 5
    path.write_text("\n".join(lines) + "\n")
    _both_modes(path, CDNOW, 5, "date", "before the window start 1997-01-01", 10)


def test_chunks_keep_lines_and_problems_across_boundaries(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:31])
    lines[4] += ",x"
    lines[9] = _edit(lines[9], "gender", '"Male', lines[0])
    lines[12:12] = ["", ""]
    path = _write(tmp_path, lines)
    whole = load_input(path, TELCO, strict=False)
    for rows in (1, 3, 7):
        parts = [validate_chunk(chunk, TELCO, "x") for chunk in read_chunks(path, TELCO, rows)]
        assert [p.rows_read for p in parts[:-1]] == [rows] * (len(parts) - 1)
        lines_seen = [line for p in parts for line in p.data.index]
        assert lines_seen == list(whole.data.index)
        rejected = pd.concat([p.rejects for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(rejected, whole.rejects)
    assert whole.rejects[LINE].tolist() == [5, 10] and whole.rows_read == 30


def test_rejects_line_is_an_integer_column(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:11])
    lines[3] = _edit(lines[3], "tenure", "x", lines[0])
    rejects = load_input(_write(tmp_path, lines), TELCO, strict=False).rejects
    assert str(rejects[LINE].dtype) == "Int64" and rejects[LINE].tolist() == [4]
    joined = pd.concat([rejects, pd.DataFrame({REASON: ["customer-level"]})])
    assert joined.to_csv(index=False).splitlines()[1].startswith("4,")


def test_scoring_spec_ignores_the_label(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:11])
    lines[3] = _edit(lines[3], "churn", "", lines[0])
    lines[5] = _edit(lines[5], "churn", "Maybe", lines[0])
    path = _write(tmp_path, lines)
    assert load_input(path, TELCO, strict=False).rejects[LINE].tolist() == [4, 6]
    scoring = scoring_spec(TELCO)
    result = load_input(path, scoring, strict=True)
    assert result.rows_read == 10 and "churn" not in result.data.columns
    assert scoring.label_column is None and TELCO.label_column == "churn"


def test_separator_only_lines_are_blank(tmp_path, telco_lines) -> None:
    lines = list(telco_lines[:6])
    lines[3:3] = [",,,", " , ,", ""]
    result = load_input(_write(tmp_path, lines), TELCO, strict=True)
    assert result.rows_read == 5 and list(result.data.index) == [2, 3, 7, 8, 9]


def test_two_stray_quotes_in_one_column_pair_up(tmp_path, telco_lines) -> None:
    """CSV's own rule: a quote opened on line 4 closes at the next quote, here on line 5.

    The two lines are one record (CSV cannot tell this from a quoted value on
    two lines); it fails validation and is rejected as line 4, both lines'
    text in its cell: nothing is lost, and the lines after it are read.
    """
    lines = list(telco_lines[:8])
    for i in (3, 4):
        lines[i] = _edit(lines[i], "streamingmovies", '"' + lines[i].split(",")[14], lines[0])
    result = load_input(_write(tmp_path, lines), TELCO, strict=False)
    assert result.rejects[LINE].tolist() == [4] and result.rows_read == 6
    assert telco_lines[4].split(",")[0] in result.rejects.iloc[0]["streamingmovies"]
    assert list(result.data.index) == [2, 3, 6, 7, 8]
