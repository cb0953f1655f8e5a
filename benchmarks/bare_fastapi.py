"""A bare FastAPI peer for ``bench_api.py``: parse the same JSON, answer a same-sized body.

``POST /v1/score`` reads the request body as JSON (a list of customers) and
answers, per customer, the record of ``$BENCH_BARE_TEMPLATE`` (a JSON file
holding one real answer of ``valuecube serve``) with the customer's id: the
same parsing, serialisation and HTTP cost as the real API, without the model.
Run under uvicorn with the same options as ``valuecube serve``::

    BENCH_BARE_TEMPLATE=answer.json .venv/bin/python -m uvicorn \
        benchmarks.bare_fastapi:app --port 8001 --no-access-log
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
_TEMPLATE: dict = json.loads(Path(os.environ["BENCH_BARE_TEMPLATE"]).read_text())


@app.get("/readyz")
async def readyz() -> dict:
    """Always ready (there is no model)."""
    return {"status": "ready"}


@app.post("/v1/score")
async def score(request: Request) -> JSONResponse:
    """One template record per customer sent, carrying its id."""
    customers = json.loads(await request.body())
    return JSONResponse([{**_TEMPLATE, "customer_id": c.get("customerid")} for c in customers])
