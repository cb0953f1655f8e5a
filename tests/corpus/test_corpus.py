"""The bad-input corpus (:mod:`corpus_cases`), each case a real ``valuecube`` subprocess.

Invariants checked on every case, besides its own exit code, message and
accounting: no traceback on stderr; the input file's bytes unchanged; after
an error one ``error:`` line and nothing at the output path (and no rejects
file, unless the job read rows and none could be scored); after success
the printed counts add up and match the files written; every reject's
``line`` is an integer and its raw id cell is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from corpus_cases import CASES, IDS, Case
from corpus_run import Run, run_cli

BY_NAME = {case.name: case for case in CASES}
CUSTOMER_IDS = {".csv": "customerid", ".parquet": "customerid", ".txt": "customer_id"}


def test_corpus_size() -> None:
    assert len(CASES) >= 40 and len(BY_NAME) == len(CASES)
    assert {c.command for c in CASES} == {"segment", "score", "score-log"}


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory, telco_model, cdnow_model) -> Iterator[dict[str, Future]]:
    """Every selected case started in the background, two at a time; each test waits for its own."""
    params = [
        getattr(getattr(item, "callspec", None), "params", {}) for item in request.session.items
    ]
    selected = {p["name"] for p in params if "name" in p}
    uris = {"score": telco_model.model_uri, "score-log": cdnow_model.model_uri}

    def run(case: Case) -> tuple[Run, Path]:
        folder = tmp_path_factory.mktemp(case.name)
        path = case.build(folder)
        command = "segment" if case.command == "segment" else "score"
        return run_cli(command, uris.get(case.command), path, folder, rejects=case.rejects), path

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case.name: pool.submit(run, case) for case in CASES if case.name in selected}
        yield futures
        for future in futures.values():
            future.cancel()


@pytest.mark.parametrize("name", list(BY_NAME))
def test_case(name: str, runs) -> None:
    case = BY_NAME[name]
    run, path = runs[name].result()
    assert "Traceback" not in run.stderr, run.stderr
    assert run.input_unchanged
    assert run.code == case.code, run.text
    assert " ".join(case.message.split()) in run.text, run.text
    if run.code != 0:
        assert len(re.findall(r"^error: ", run.stderr, re.MULTILINE)) == 1, run.stderr
        assert not run.output.exists()
    else:
        _check_outputs(case, run, path)
    _check_rejects(case, run, path)


def _check_outputs(case: Case, run: Run, path: Path) -> None:
    counts = run.counts()
    read, rejected = case.accounting
    assert counts["rows read"] == read and counts["rejected"] == rejected, counts
    out = pd.read_csv(run.output, dtype=str, keep_default_na=False)
    assert len(out) == counts["scored"]
    if path.suffix != ".txt":  # a customer table: one row in, one row out or rejected
        assert counts["scored"] + counts["rejected"] == counts["rows read"]
    if case.name == "score-ids-exact":
        assert set(IDS.values()) <= set(out["customer_id"])


def _check_rejects(case: Case, run: Run, path: Path) -> None:
    rejects = run.rejects_frame()
    if case.reject_lines is None:
        assert run.rejects is None or not run.rejects.exists()
        return
    if not case.rejects:
        return
    assert rejects is not None
    assert all(re.fullmatch(r"\d+", v) for v in rejects["line"]), rejects["line"].tolist()
    assert tuple(int(v) for v in rejects["line"]) == case.reject_lines
    assert (rejects["reason"] != "").all()
    assert (rejects[CUSTOMER_IDS[path.suffix]] != "").all()  # the raw row is kept
    if case.accounting is not None:
        assert len(rejects) == case.accounting[1]
