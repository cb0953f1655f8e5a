"""Property-based tests: malformed CSV rows never break the invariants of reading and scoring.

hypothesis builds Telco files from real rows with tricky ids (leading
zeros, inner spaces, unicode, commas, quotes) and damages some rows (a
field dropped or added, one stray quote, garbage in a cell, a blank line,
a repeated id). Whatever it builds:

* nothing but an :class:`InputError` (one ``error:`` line at the command
  line) ever comes out — no other exception, so no traceback;
* rows in = scored + rejected, and the rejects file holds one row per
  rejected row, each with an integer ``line`` and a reason;
* the input file's bytes are unchanged;
* ids come out exactly as they went in, and every undamaged row with a
  unique id is scored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import TELCO_CONFIG
from corpus_inputs import TELCO_HEADER, TELCO_LINES
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from valuecube.features.config import load_config
from valuecube.features.inputs import InputError, load_input

TELCO = load_config(TELCO_CONFIG).input
BASE_ROWS = [next(csv.reader([line])) for line in TELCO_LINES[1:31]]
ID_CHARS = st.sampled_from(list("0123456789ABCXYZabc -_,.'\"éßÜ中"))
DAMAGE = ("none", "none", "none", "drop", "extra", "quote", "garbage", "blank_line", "dup")
GARBAGE = st.text(st.characters(exclude_characters="\r\n"), max_size=6)
"""Cell garbage, on one line: with a stray quote elsewhere, a quoted newline makes the count of
records ambiguous (the reader still accounts for each record it sees)."""
PROPERTY = settings(  # bounded: no shrinking, a failure reports the example as drawn
    max_examples=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _is_clean_id(value: str) -> bool:
    return value == value.strip() and value != ""


ids = st.one_of(
    st.integers(0, 10**6).map(lambda n: f"{n:08d}"),  # leading zeros
    st.text(ID_CHARS, min_size=1, max_size=10).filter(_is_clean_id),
)


@st.composite
def damaged_files(draw) -> tuple[str, list[str], int, set[str]]:
    """(file text, the id of every record, rows in, ids of undamaged rows with a unique id)."""
    n = draw(st.integers(3, 12))
    row_ids = draw(st.lists(ids, min_size=n, max_size=n, unique=True))
    damage = draw(st.lists(st.sampled_from(DAMAGE), min_size=n, max_size=n))
    if "quote" in damage:  # one stray quote a file: two in one column pair up (see docs/inputs.md)
        first = damage.index("quote")
        damage = [h if h != "quote" or i == first else "none" for i, h in enumerate(damage)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(TELCO_HEADER)
    record_ids = []
    for i, (row_id, harm) in enumerate(zip(row_ids, damage, strict=True)):
        cells = [row_id, *BASE_ROWS[i % len(BASE_ROWS)][1:]]
        if harm == "dup":
            cells[0] = row_ids[0]
        if harm == "garbage":
            cells[TELCO_HEADER.index("tenure")] = draw(GARBAGE)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(cells)  # quotes cells with \r or \n
        line = buffer.getvalue()[:-2]
        if harm == "drop":
            line = line.rsplit(",", 1)[0]
        elif harm == "extra":
            line += "," + draw(st.sampled_from(["", "x", '"y"']))
        elif harm == "quote":
            at = line.rindex(",No,") if ",No," in line else line.rindex(",")
            line = line[: at + 1] + '"' + line[at + 1 :]
        elif harm == "blank_line":
            out.write("\n")
        out.write(line + "\n")
        record_ids.append(cells[0])
    times = Counter(record_ids)
    undamaged = {
        rid
        for rid, harm in zip(record_ids, damage, strict=True)
        if harm in ("none", "blank_line", "dup") and times[rid] == 1
    }
    return out.getvalue(), record_ids, n, undamaged


def _write(text: str) -> tuple[Path, str]:
    folder = Path(tempfile.mkdtemp(prefix="vc-prop-"))
    path = folder / "in.csv"
    path.write_text(text, encoding="utf-8")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@PROPERTY
@given(damaged_files())
def test_reading_accounts_for_every_row(case) -> None:
    text, record_ids, rows_in, undamaged = case
    path, digest = _write(text)
    try:
        result = load_input(path, TELCO, strict=False)
    except InputError as exc:
        assert "none of the" in str(exc)  # every row rejected: said so, no other error
        return
    finally:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert result.rows_read == rows_in == len(result.data) + len(result.rejects)
    assert set(result.data["customerid"]) <= set(record_ids)
    assert undamaged <= set(result.data["customerid"])
    assert result.rejects["line"].notna().all() and (result.rejects["reason"] != "").all()


@pytest.fixture(scope="module")
def loaded(telco_model):
    from valuecube.serving.loading import load_model

    return load_model(telco_model.model_uri)


@PROPERTY
@given(case=damaged_files())
def test_scoring_accounts_for_every_row(loaded, case) -> None:
    from valuecube.serving.batch import NothingScoredError, score_file

    text, record_ids, rows_in, undamaged = case
    path, digest = _write(text)
    output, rejects = path.with_name("out.csv"), path.with_name("rejects.csv")
    try:
        result = score_file(loaded, path, output, rejects=rejects, progress=False)
    except NothingScoredError:
        assert not output.exists() and not undamaged
        written = pd.read_csv(rejects, dtype=str, keep_default_na=False)
        assert len(written) == rows_in
        return
    finally:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    scored = pd.read_csv(output, dtype=str, keep_default_na=False)
    written = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert result.rows_read == rows_in == len(scored) + len(written)
    assert result.customers_scored == len(scored) and result.rows_rejected == len(written)
    assert set(scored["customer_id"]) <= set(record_ids)
    assert undamaged <= set(scored["customer_id"])
    assert written["line"].str.fullmatch(r"\d+").all() and (written["reason"] != "").all()
