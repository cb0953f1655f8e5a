"""The bad-input corpus (:mod:`corpus_cases`), each case through the real ``valuecube`` CLI.

A few cases (``SUBPROCESS``) run as their own ``python -m valuecube`` process; the
others run one after another in two batch processes through the same entry point, each
with its own stdout, stderr and exit code (an escaping exception becomes a traceback on
its stderr), which saves an interpreter start-up (seconds) per case.

Invariants checked on every case, besides its own exit code, message and
accounting: no traceback on stderr; the input file's bytes unchanged; after
an error one ``error:`` line and nothing at the output path (and no rejects
file, unless the job read rows and none could be scored); after success
the printed counts add up and match the files written; every reject's
``line`` is an integer and its raw id cell is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from corpus_cases import CASES, IDS, Case
from corpus_run import Job, Run, run_batch, run_cli

BY_NAME = {case.name: case for case in CASES}
CUSTOMER_IDS = {".csv": "customerid", ".parquet": "customerid", ".txt": "customer_id"}


def test_corpus_size() -> None:
    assert len(CASES) >= 40 and len(BY_NAME) == len(CASES)
    assert {c.command for c in CASES} == {"segment", "score", "score-log"}


# Cases run as their own ``python -m valuecube`` process (the others run in two batch
# processes, see corpus_run.run_batch): an error, a success, a job with no scorable row,
# a score error and the transaction log, to prove what the user sees of a real process.
SUBPROCESS = {
    "seg-clean",
    "seg-binary-garbage",
    "seg-missing-file",
    "score-short-row",
    "score-trailing-commas",
    "score-log-all-before",
}
BATCHES = 2


def test_subprocess_cases_exist() -> None:
    assert SUBPROCESS <= set(BY_NAME)


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory, telco_model, cdnow_model) -> Iterator[dict[str, Callable]]:
    """Every selected case started in the background, two processes at a time.

    Each test waits for its own case (a callable returning its ``(Run, input path)``).
    """
    params = [
        getattr(getattr(item, "callspec", None), "params", {}) for item in request.session.items
    ]
    selected = [c for c in CASES if c.name in {p["name"] for p in params if "name" in p}]
    uris = {"score": telco_model.model_uri, "score-log": cdnow_model.model_uri}
    paths, jobs = {}, {}
    for case in selected:
        folder = tmp_path_factory.mktemp(case.name)
        paths[case.name] = case.build(folder)
        command = "segment" if case.command == "segment" else "score"
        jobs[case.name] = Job(
            case.name, command, uris.get(case.command), paths[case.name], folder, case.rejects
        )

    def single(name: str) -> Run:
        job = jobs[name]
        return run_cli(job.command, job.model_uri, job.input_path, job.folder, rejects=job.rejects)

    batched = [name for name in jobs if name not in SUBPROCESS]
    chunks = [batched[i::BATCHES] for i in range(BATCHES)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures: dict[str, Callable[[], Run]] = {}
        for chunk in filter(None, chunks):
            batch = pool.submit(run_batch, [jobs[name] for name in chunk])
            for name in chunk:
                futures[name] = lambda batch=batch, name=name: batch.result()[name]
        for name in jobs:
            if name in SUBPROCESS:
                futures[name] = pool.submit(single, name).result
        yield {name: (lambda f=f, name=name: (f(), paths[name])) for name, f in futures.items()}
        pool.shutdown(cancel_futures=True)


@pytest.mark.parametrize("name", list(BY_NAME))
def test_case(name: str, runs) -> None:
    case = BY_NAME[name]
    run, path = runs[name]()
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
