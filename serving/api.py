"""HTTP API: score customers with a registered model (FastAPI, run under uvicorn).

Endpoints

* ``POST /v1/score`` — a JSON list of customers in the model's input shape
  (a customer table's columns, or ``customer_id`` plus the per-customer
  features for a transaction-log model); returns one object per customer
  with the batch output fields (:func:`valuecube.serving.output.output_columns`),
  ``churn_reasons`` (``VALUECUBE_API_REASONS``, default 3) and, with
  ``?levers=true`` (default ``VALUECUBE_API_LEVERS``, off), the rule's levers.
* ``GET /v1/model`` — name, version, metrics, the input schema, the output
  columns and ``horizon_days`` (a forecasting model's horizon; null otherwise).
* ``GET /healthz`` — the process is up; ``GET /readyz`` — the model is loaded.
* ``/docs`` — OpenAPI documentation, the request schema built from the
  model's own config (:mod:`valuecube.features.record_schema`).

Status codes: 401 without the bearer token when ``VALUECUBE_API_TOKEN`` is
set (probes and docs stay open); 413 for a body over the byte limit or more
customers than ``VALUECUBE_API_MAX_CUSTOMERS``; 422 naming the customer
index and the field for invalid input, or for customers that cannot be
scored; 503 when the model failed to load.

The model loads in the app's lifespan, before the server accepts requests
(``/readyz`` answers 200 from the first request on); a failed load keeps the
process up with ``/readyz`` and ``/v1/*`` answering 503 and the reason.
Routes and checks: :mod:`valuecube.serving.routes`; scoring and
micro-batching: :mod:`valuecube.serving.scorer`; settings from the
environment: :mod:`valuecube.serving.settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from valuecube.serving.loading import load_model
from valuecube.serving.routes import model_router, probes
from valuecube.serving.scorer import Scorer
from valuecube.serving.settings import Settings

log = logging.getLogger("valuecube.api")


def _load(settings: Settings) -> Scorer:
    """Load the model and build its scorer (runs in a thread).

    Scoring runs in NumPy (:mod:`valuecube.models.network_arrays`); torch
    loads here only when the answers carry reasons, so that the first
    request does not pay for them. Torch then runs single-threaded by
    default: a request batch is a few rows, where intra-op threads only add
    synchronisation latency; scale out with uvicorn workers instead.
    """
    loaded = load_model(settings.model_uri)
    if settings.reasons > 0:
        import torch

        import valuecube.models.reasons  # noqa: F401  (torch, imported once here)

        torch.set_num_threads(settings.torch_threads)
        loaded.model.network.module_  # noqa: B018  (the torch module, rebuilt once here)
    return Scorer(loaded, settings.max_customers, settings.reasons)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model, mount the ``/v1`` routes, run the batch worker until shutdown."""
    settings: Settings = app.state.settings
    try:
        scorer = await asyncio.to_thread(_load, settings)
    except Exception as exc:  # reported by /readyz and /v1/*
        app.state.load_error = f"{type(exc).__name__}: {exc}"
        log.error("cannot load %s: %s", settings.model_uri, app.state.load_error)
        app.include_router(model_router(settings, None))
        yield
        return
    app.state.scorer = scorer
    app.include_router(model_router(settings, scorer.record_schema))
    gc.collect()
    gc.freeze()  # the model's and the libraries' objects: out of every later collection
    log.info("model %s version %s loaded", scorer.loaded.name, scorer.loaded.version)
    worker = asyncio.create_task(scorer.worker())
    try:
        yield
    finally:
        worker.cancel()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI application (settings from the environment when not given; a uvicorn factory)."""
    app = FastAPI(
        title="valuecube scoring API",
        version="1",
        lifespan=lifespan,
        description="Customer-value segments and churn risk from a registered valuecube model.",
    )
    app.state.settings = settings or Settings.from_env()
    app.state.scorer = None
    app.state.load_error = None
    app.include_router(probes)
    return app
