# ruff: noqa: E501 -- a table: one case per line, as wide as it needs
"""The bad-input corpus: one case per line.

Columns: name · command (``segment`` with the Telco or CDNOW config by the
input's suffix; ``score`` with the Telco model, ``score-log`` with the CDNOW
model) · input builder (:mod:`corpus_inputs`) · ``--rejects`` given · the
exit code · a fragment of the message (stdout or stderr, wrapping undone) ·
the accounting ``(rows read, rows rejected)`` printed, or None when the job
stops · the lines expected in the rejects file (None: not checked).

Every case is also held to the invariants of ``test_corpus.py``: no
traceback, the input's bytes unchanged, nothing at the output path after an
error, counts that add up and match the files, reject lines as integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import corpus_inputs as ci
from corpus_inputs import TELCO_LINES as T
from corpus_inputs import set_cell


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    build: ci.Builder
    rejects: bool
    code: int
    message: str
    accounting: tuple[int, int] | None = None
    reject_lines: tuple[int, ...] | None = None


SHORT = {7: T[6].rsplit(",", 2)[0] + "," + T[6].rsplit(",", 1)[1]}  # totalcharges dropped
LONG = {11: T[10] + ",x"}
UNCLOSED = {5: set_cell(T[4], "gender", '"Male')}
TRAILING = ci.telco(lambda lines: [lines[0]] + [line + "," for line in lines[1:]])
IDS = {2: "007", 3: "A 1", 4: "Ünïcødé-ß", 5: "id,with,comma", 6: "0000", 7: 'q"uote'}
SEP = "only 1 column found — wrong separator? the config expects ','"
EMPTY_EXTRA = "22 fields, the header has 21 (the extra fields are empty: a trailing separator?)"
WINDOW = "is before the window start 1997-01-01 (input.window_start in the config)"

# fmt: off
CASES = [
    Case("seg-clean", "segment", ci.telco(), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-short-row", "segment", ci.lines_at(SHORT), True, 0, "rows rejected 1", (40, 1), (7,)),
    Case("seg-short-row-strict", "segment", ci.lines_at(SHORT), False, 1, "line 7: 20 fields, the header has 21"),
    Case("seg-long-row", "segment", ci.lines_at(LONG), True, 0, "customers scored 39", (40, 1), (11,)),
    Case("seg-long-row-strict", "segment", ci.lines_at(LONG), False, 1, "line 11: 22 fields, the header has 21 (extra: 'x')"),
    Case("seg-trailing-commas", "segment", TRAILING, False, 1, "line 2: " + EMPTY_EXTRA),
    Case("seg-semicolon", "segment", ci.separated(";"), False, 1, SEP + " (the header has ';')"),
    Case("seg-tab", "segment", ci.separated("\t"), True, 1, SEP + " (the header has tab)"),
    Case("seg-latin1", "segment", ci.latin1(), False, 1, "line 5 is not utf-8 text"),
    Case("seg-latin1-hint", "segment", ci.latin1(), True, 1, "Re-save the file as UTF-8, or set input.encoding"),
    Case("seg-directory", "segment", ci.directory(), False, 1, "is a directory, not a file"),
    Case("seg-missing-file", "segment", ci.missing_file(), False, 1, "input file not found"),
    Case("seg-unclosed-quote", "segment", ci.lines_at(UNCLOSED), True, 0, "customers scored 39", (40, 1), (5,)),
    Case("seg-unclosed-quote-strict", "segment", ci.lines_at(UNCLOSED), False, 1, 'line 5: unclosed quote: a field opened with " is never closed'),
    Case("seg-duplicate-header", "segment", ci.telco(lambda ls: [ls[0].replace("gender", "tenure"), *ls[1:]]), False, 1, "column name 'tenure' appears twice (columns 2 and 6)"),
    Case("seg-empty-file", "segment", ci.raw_bytes(b""), False, 1, "the file is empty"),
    Case("seg-header-only", "segment", ci.raw_bytes((T[0] + "\n").encode()), True, 1, "header but no rows"),
    Case("seg-blank-lines", "segment", ci.lines_at(insert={4: "", 9: "   ", 12: ",,,"}), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-blank-lines-numbering", "segment", ci.lines_at(replace={8: set_cell(T[7], "tenure", "x")}, insert={4: ""}), True, 0, "rows rejected 1", (40, 1), (9,)),
    Case("seg-not-a-number", "segment", ci.cells({3: ("tenure", "abc")}), True, 0, "rows rejected 1", (40, 1), (3,)),
    Case("seg-nan", "segment", ci.cells({4: ("monthlycharges", "NaN"), 5: ("totalcharges", "inf")}), False, 1, "not a finite number"),
    Case("seg-below-minimum", "segment", ci.cells({6: ("monthlycharges", "-5")}), False, 1, "line 6: column 'monthlycharges': '-5' is below the minimum 0"),
    Case("seg-unknown-category", "segment", ci.cells({8: ("contract", "Weekly")}), True, 0, "rows rejected 1", (40, 1), (8,)),
    Case("seg-missing-value", "segment", ci.cells({9: ("gender", "")}), False, 1, "line 9: column 'gender': missing value"),
    Case("seg-blank-filled-by-missing", "segment", ci.cells({10: ("totalcharges", " ")}), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-missing-column", "segment", ci.frame_csv(lambda f: f.drop(columns=["tenure"])), False, 1, "missing required column(s) 'tenure'"),
    Case("seg-misnamed-column", "segment", ci.frame_csv(lambda f: f.rename(columns={"monthlycharges": "monthly_charges"})), False, 1, "(found 'monthly_charges' — misnamed?)"),
    Case("seg-crlf-bom", "segment", ci.crlf_bom(), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-all-quoted", "segment", ci.frame_csv(lambda f: f, quoting=1), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-extra-column", "segment", ci.frame_csv(lambda f: f.assign(note="free text, with a comma")), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-shuffled-columns", "segment", ci.frame_csv(lambda f: f[f.columns[::-1]]), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-spanning-quote", "segment", ci.spanning_quote(), True, 0, "rows rejected 2", (40, 2), (3, 8)),
    Case("seg-duplicate-id", "segment", ci.ids({12: T[1].split(",")[0]}), False, 1, "duplicate customerid"),
    Case("seg-binary-garbage", "segment", ci.raw_bytes(bytes(range(256)) * 8), False, 1, "error:"),
    Case("seg-parquet", "segment", ci.parquet(), False, 0, "customers scored 40", (40, 0), ()),
    Case("seg-parquet-corrupt", "segment", ci.raw_bytes(b"PAR1 not really parquet", "in.parquet"), False, 1, "not a readable Parquet file"),
    Case("seg-log-before-window", "segment", ci.cdnow_dates({5: "19961201"}), True, 0, "rows rejected 1", (300, 1), (5,)),
    Case("seg-log-before-window-strict", "segment", ci.cdnow_dates({5: "19961201"}), False, 1, "line 5: column 'date': '19961201' " + WINDOW),
    Case("seg-log-field-count", "segment", ci.cdnow(300, lambda ls: [*ls[:9], ls[9] + " 7", *ls[10:]]), True, 0, "rows rejected 1", (300, 1), (10,)),
    Case("score-clean", "score", ci.telco(), False, 0, "scored 40", (40, 0), ()),
    Case("score-short-row", "score", ci.lines_at(SHORT), True, 0, "scored 39", (40, 1), (7,)),
    Case("score-long-row", "score", ci.lines_at(LONG), True, 0, "scored 39", (40, 1), (11,)),
    Case("score-long-row-strict", "score", ci.lines_at(LONG), False, 1, "line 11: 22 fields, the header has 21"),
    Case("score-label-ignored", "score", ci.cells({4: ("churn", ""), 6: ("churn", "Maybe")}), False, 0, "scored 40", (40, 0), ()),
    Case("score-unclosed-quote", "score", ci.lines_at(UNCLOSED), True, 0, "scored 39", (40, 1), (5,)),
    Case("score-trailing-commas", "score", TRAILING, True, 1, "none of the 40 rows could be scored", None, tuple(range(2, 42))),
    Case("score-ids-exact", "score", ci.ids(IDS), False, 0, "scored 40", (40, 0), ()),
    Case("score-semicolon", "score", ci.separated(";"), True, 1, SEP),
    Case("score-log-before-window", "score-log", ci.cdnow_dates({5: "19961201"}), True, 0, "rows rejected 1", (300, 1), (5,)),
    Case("score-log-all-before", "score-log", ci.cdnow_all_before_window(), True, 1, "none of the 20 rows could be scored", None, tuple(range(2, 22))),
    Case("score-log-after-as-of", "score-log", ci.cdnow_dates({5: "19980101", 6: "19991231"}), False, 0, "rows not used (dated after as_of, or of those customers)", (300, 0), ()),
]
# fmt: on
