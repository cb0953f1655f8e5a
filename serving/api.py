"""HTTP API: score customers with a registered model (FastAPI, run under uvicorn).

Endpoints

* ``POST /v1/score`` — a JSON list of customers in the model's input shape
  (a customer table's columns, or ``customer_id`` plus the per-customer
  features for a transaction-log model); returns one object per customer
  with the batch output fields (:data:`serving.batch.OUTPUT_COLUMNS`).
* ``GET /v1/model`` — name, version, metrics and the input schema.
* ``GET /healthz`` — the process is up; ``GET /readyz`` — the model is loaded.
* ``/docs`` — OpenAPI documentation (the request schema appears once the
  model is loaded: it is built from the model's own config).

Status codes: 401 without the bearer token when ``VALUECUBE_API_TOKEN`` is
set (probes and docs stay open); 413 for a body over the byte limit or more
customers than ``VALUECUBE_API_MAX_CUSTOMERS``; 422 naming the customer
index and the field for invalid input; 503 until the model is loaded.

The model loads in a background thread at start-up, so the health probe
answers at once. Requests that arrive together are scored together
(micro-batching: while one batch is being scored the next one gathers), which
spreads the fixed cost of a model call over many customers.

Settings come from the environment so that ``uvicorn --workers N`` and
``valuecube serve`` configure every worker alike: ``VALUECUBE_MODEL_URI``,
``VALUECUBE_API_TOKEN``, ``VALUECUBE_API_MAX_CUSTOMERS``,
``VALUECUBE_API_MAX_BODY_BYTES``, ``VALUECUBE_API_TORCH_THREADS`` (default 1).
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import (  # pydantic needs these on Python < 3.12
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
)

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, with_config
from typing_extensions import (
    TypedDict,
)

from valuecube.features.customers import CUSTOMER_ID, build_customer_table
from valuecube.features.inputs import LINE, REASON, ValidatedInput
from valuecube.models.packaged import ChurnSegmentModel
from valuecube.serving.batch import (
    CHURN_RISK_CUTOFFS,
    CHURN_RISK_LABELS,
    OUTPUT_COLUMNS,
    finish,
    score_customers,
)
from valuecube.serving.loading import LoadedModel, load_model

ENV_MODEL = "VALUECUBE_MODEL_URI"
ENV_TOKEN = "VALUECUBE_API_TOKEN"
ENV_MAX_CUSTOMERS = "VALUECUBE_API_MAX_CUSTOMERS"
ENV_MAX_BYTES = "VALUECUBE_API_MAX_BODY_BYTES"
ENV_TORCH_THREADS = "VALUECUBE_API_TORCH_THREADS"
DEFAULT_MAX_CUSTOMERS = 1000
BYTES_PER_CUSTOMER = 4096
"""Default byte limit per allowed customer (a Telco customer is ~600 bytes of JSON)."""
MAX_BATCH_ROWS = 4096
"""Most customers scored in one model call when requests are batched together."""

log = logging.getLogger("valuecube.api")


@dataclass(frozen=True)
class Settings:
    """API settings (see the module docstring for the environment variables)."""

    model_uri: str
    token: str | None = None
    max_customers: int = DEFAULT_MAX_CUSTOMERS
    max_body_bytes: int = DEFAULT_MAX_CUSTOMERS * BYTES_PER_CUSTOMER

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment; a missing model URI is an error."""
        uri = os.environ.get(ENV_MODEL)
        if not uri:
            raise RuntimeError(
                f"set {ENV_MODEL} to the model to serve, e.g. models:/valuecube-telco@champion"
            )
        n = int(os.environ.get(ENV_MAX_CUSTOMERS) or DEFAULT_MAX_CUSTOMERS)
        if n < 1:
            raise RuntimeError(f"{ENV_MAX_CUSTOMERS} must be at least 1, got {n}")
        size = int(os.environ.get(ENV_MAX_BYTES) or n * BYTES_PER_CUSTOMER)
        return cls(uri, os.environ.get(ENV_TOKEN) or None, n, size)


def customer_schema(model: ChurnSegmentModel) -> type:
    """The request item type, built from the model's config: one key per input column.

    Categories are ``Literal`` of the declared values, numbers are bounded
    and finite, a column with a ``missing`` value may be null or absent (it
    takes that value, as a blank cell would), and unknown keys are errors
    (a misspelt optional column would otherwise go unnoticed). A customer
    table's label column is accepted and ignored.
    """
    spec = model.config.input
    keys: dict[str, Any] = {}
    if spec.shape == "customer_table":
        for name, col in spec.columns.items():
            if col.type == "category":
                kind: Any = Literal[tuple(col.values or [])]
            elif col.type in ("int", "float"):
                kind = (
                    Annotated[int, Field(ge=col.min, le=col.max)]
                    if col.type == "int"
                    else Annotated[float, Field(ge=col.min, le=col.max, allow_inf_nan=False)]
                )
            elif col.type == "date":
                kind = Annotated[str, StringConstraints(min_length=1)]
            else:
                kind = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
            optional = name == spec.label_column or col.missing is not None or not col.required
            keys[name] = NotRequired[kind | None] if optional else Required[kind]
    else:
        keys[CUSTOMER_ID] = Required[
            Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
        ]
        for name in model.metadata["customer_columns"]:
            keys[name] = Required[Annotated[float, Field(allow_inf_nan=False)]]
    customer = TypedDict(f"{model.config.name.capitalize()}Customer", keys)  # type: ignore[misc]
    return with_config(ConfigDict(extra="forbid"))(customer)


@dataclass
class _Pending:
    customers: list[dict[str, Any]]
    future: asyncio.Future


@dataclass
class Service:
    """The loaded model, its request validator and the micro-batching queue."""

    settings: Settings
    loaded: LoadedModel | None = None
    error: str | None = None
    adapter: TypeAdapter | None = None
    schema: dict | None = None
    queue: asyncio.Queue | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def load(self) -> None:
        """Load the model (runs in a background thread at start-up).

        Torch runs single-threaded here: a request batch is a few rows, where
        intra-op threads only add synchronisation latency (measured: 2× slower
        on 2 cores); scale out with uvicorn workers instead.
        """
        try:
            import torch

            torch.set_num_threads(int(os.environ.get(ENV_TORCH_THREADS) or 1))
            loaded = load_model(self.settings.model_uri)
            customer = customer_schema(loaded.model)
            self.adapter = TypeAdapter(list[customer])
            self.schema = TypeAdapter(customer).json_schema(
                ref_template="#/components/schemas/{model}"
            )
            self.loaded = loaded
            self.ready.set()
            log.info("model %s version %s loaded", loaded.name, loaded.version)
        except Exception as exc:  # reported by /readyz and every scoring call
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("cannot load %s: %s", self.settings.model_uri, self.error)

    def frame(self, customers: list[dict[str, Any]]) -> tuple[pd.DataFrame, np.ndarray]:
        """Validated request items → the model's per-customer table (positional index) and the customer ids.

        Columns are typed straight from the items (pydantic has checked
        them): numbers as float64, text and categories as Arrow strings, an
        omitted optional value as the config's ``missing``.
        """
        assert self.loaded is not None
        model = self.loaded.model
        spec = model.config.input
        if spec.shape == "customer_table":
            typed = {}
            for name, col in spec.columns.items():
                if name == spec.label_column:
                    continue
                values = [c.get(name) for c in customers]
                if col.type in ("int", "float"):
                    array = np.array(values, dtype="float64")  # None → NaN
                    if col.missing is not None:
                        array[np.isnan(array)] = float(col.missing)
                    typed[name] = array
                else:
                    fill = None if col.missing is None else str(col.missing)
                    # Arrow strings, also for categories: building a Categorical costs more than a request's lookups
                    typed[name] = pd.array([fill if v is None else v for v in values], dtype="str")
            empty = pd.DataFrame({LINE: [], REASON: []})
            table = build_customer_table(
                ValidatedInput(pd.DataFrame(typed), empty, len(customers), "request"),
                spec,
                with_labels=False,
            ).table
        else:
            rows = pd.DataFrame.from_records(customers, columns=model.input_columns)
            table = rows.set_index(CUSTOMER_ID)[model.metadata["customer_columns"]].astype(
                "float64"
            )
        ids = table.index.to_numpy()
        table.index = pd.Index(np.arange(len(table)).astype(str), name=CUSTOMER_ID)
        return table, ids

    def score(self, customers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, str]]:
        """Score validated request items (one request's, or a whole batch's): output records and unscorable reasons by position.

        The table is indexed by row position (a batch may hold the same
        customer twice, from two requests); the ids go back in after scoring.
        """
        assert self.loaded is not None
        table, ids = self.frame(customers)
        predictions, unscorable, _ = score_customers(self.loaded.model, table)
        positions = predictions[CUSTOMER_ID].astype(int).to_numpy()
        predictions[CUSTOMER_ID] = ids[positions]
        out = finish(
            predictions,
            self.loaded.name,
            self.loaded.version,
            pd.Timestamp.now(tz="UTC").floor("ms"),
        )
        out["scored_at"] = out["scored_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        records = out.to_dict(orient="records")
        full: list[dict[str, Any]] = [{}] * len(table)
        for p, record in zip(positions, records, strict=True):
            full[p] = record
        return full, {int(k): v for k, v in unscorable.items()}

    async def submit(
        self, customers: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[int, str]]:
        """Queue a request's customers for the batch worker and wait for their results."""
        assert self.queue is not None
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(customers, future))
        return await future

    async def worker(self) -> None:
        """Score queued requests in batches: everything waiting (up to :data:`MAX_BATCH_ROWS` customers) at once.

        The table is built and scored in a thread, so the event loop keeps
        accepting and validating requests meanwhile: they form the next batch.
        """
        assert self.queue is not None
        while True:
            batch = [await self.queue.get()]
            rows = len(batch[0].customers)
            while not self.queue.empty() and rows < MAX_BATCH_ROWS:
                batch.append(self.queue.get_nowait())
                rows += len(batch[-1].customers)
            try:
                everyone = list(chain.from_iterable(p.customers for p in batch))
                records, unscorable = await asyncio.to_thread(self.score, everyone)
            except Exception as exc:  # a bug or a broken model: fail these requests, keep serving
                log.exception("scoring failed")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            start = 0
            for p in batch:
                n = len(p.customers)
                mine = {i - start: r for i, r in unscorable.items() if start <= i < start + n}
                if not p.future.done():
                    p.future.set_result((records[start : start + n], mine))
                start += n


def _error(code: int, message: str, **extra: Any) -> JSONResponse:
    headers = (
        {"WWW-Authenticate": "Bearer"}
        if code == 401
        else ({"Retry-After": "1"} if code == 503 else None)
    )
    return JSONResponse({"detail": message, **extra}, status_code=code, headers=headers)


def _authorised(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as FastAPI-style details, each naming the customer index and the field."""
    out = []
    for err in exc.errors(include_url=False, include_context=False):
        loc = list(err["loc"])
        index = loc[0] if loc and isinstance(loc[0], int) else None
        name = ".".join(str(p) for p in loc[1:]) or None
        out.append(
            {
                "loc": ["body", *loc],
                "customer": index,
                "field": name,
                "msg": err["msg"],
                "type": err["type"],
                "message": f"customer {index}: field {name!r}: {err['msg']}"
                if name
                else f"customer {index}: {err['msg']}",
            }
        )
    return out


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds ``limit`` bytes (checked on the header and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI application (settings from the environment when not given; a uvicorn factory)."""
    settings = settings or Settings.from_env()
    service = Service(settings)

    async def lifespan(app: FastAPI):
        service.queue = asyncio.Queue()
        worker = asyncio.create_task(service.worker())
        threading.Thread(target=service.load, name="model-loader", daemon=True).start()
        yield
        worker.cancel()

    app = FastAPI(
        title="valuecube scoring API",
        version="1",
        lifespan=lifespan,
        description="Customer-value segments and churn risk from a registered valuecube model.",
    )
    app.state.service = service

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> Response:
        """Readiness: 200 once the model is loaded, 503 while loading or after a failed load."""
        if service.loaded is not None:
            return JSONResponse(
                {"status": "ready", "model": service.loaded.name, "version": service.loaded.version}
            )
        if service.error is not None:
            return _error(503, f"model failed to load: {service.error}", status="failed")
        return _error(503, "model loading", status="loading")

    @app.get("/v1/model", tags=["model"])
    async def model_info(request: Request) -> Response:
        """The served model: name, version, metrics, input schema and output fields."""
        if not _authorised(request, settings.token):
            return _error(
                401, "missing or wrong bearer token (Authorization: Bearer <VALUECUBE_API_TOKEN>)"
            )
        if service.loaded is None:
            return _error(503, service.error or "model loading")
        loaded, spec = service.loaded, service.loaded.config.input
        return JSONResponse(
            {
                "name": loaded.name,
                "version": loaded.version,
                "uri": loaded.uri,
                "dataset": loaded.config.name,
                "shape": spec.shape,
                "metrics": loaded.model.metadata.get("metrics", {}),
                "input_columns": loaded.model.input_columns,
                "input_schema": service.schema,
                "output_columns": list(OUTPUT_COLUMNS),
                "max_customers": settings.max_customers,
                "churn_risk": {
                    "cutoffs": list(CHURN_RISK_CUTOFFS),
                    "labels": list(CHURN_RISK_LABELS),
                },
            }
        )

    @app.post("/v1/score", tags=["model"], responses={401: {}, 413: {}, 422: {}, 503: {}})
    async def score(request: Request) -> Response:
        """Score a JSON list of customers; one output object per customer, in order."""
        if not _authorised(request, settings.token):
            return _error(
                401, "missing or wrong bearer token (Authorization: Bearer <VALUECUBE_API_TOKEN>)"
            )
        if service.loaded is None or service.adapter is None:
            return _error(503, service.error or "model loading; retry shortly")
        body = await _read_body(request, settings.max_body_bytes)
        if body is None:
            return _error(
                413,
                f"request body over {settings.max_body_bytes:,} bytes; send fewer customers per request",
            )
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(422, f"body is not valid JSON: {exc}")
        if not isinstance(payload, list):
            return _error(422, "body must be a JSON list of customers, e.g. [{...}, {...}]")
        if len(payload) > settings.max_customers:
            return _error(
                413,
                f"{len(payload)} customers in one request; at most {settings.max_customers} "
                f"({ENV_MAX_CUSTOMERS}); split the list",
            )
        if not payload:
            return JSONResponse([])
        spec = service.loaded.config.input
        try:
            customers = service.adapter.dump_python(service.adapter.validate_python(payload))
        except ValidationError as exc:
            errors = _validation_errors(exc)
            return JSONResponse({"detail": errors}, status_code=422)
        id_field = spec.id_column if spec.shape == "customer_table" else CUSTOMER_ID
        duplicated = (
            pd.Index(list(map(itemgetter(id_field), customers))).duplicated(keep=False)
            if len(customers) > 1
            else None
        )
        if duplicated is not None and duplicated.any():
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body", int(i), id_field],
                            "customer": int(i),
                            "field": id_field,
                            "msg": f"duplicate customer id {customers[i][id_field]!r} in this request",
                            "type": "duplicate",
                        }
                        for i in np.flatnonzero(duplicated)
                    ]
                },
                status_code=422,
            )
        records, unscorable = await service.submit(customers)
        if unscorable:
            return JSONResponse(
                {
                    "detail": [
                        {
                            "loc": ["body", i],
                            "customer": i,
                            "field": None,
                            "msg": reason,
                            "type": "unscorable",
                        }
                        for i, reason in sorted(unscorable.items())
                    ]
                },
                status_code=422,
            )
        return JSONResponse(records)

    def openapi() -> dict[str, Any]:
        """OpenAPI with the request schema of the loaded model (generic until it is loaded)."""
        if app.openapi_schema is not None and (
            service.schema is None or app.openapi_schema.get("x-model-loaded")
        ):
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        item: dict[str, Any] = {
            "type": "object",
            "description": "a customer in the model's input shape",
        }
        if service.schema is not None:
            item_schema = copy.deepcopy(service.schema)
            defs = dict(item_schema.pop("$defs", {}))
            name = item_schema.get("title", "Customer")
            defs[name] = item_schema
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
            item = {"$ref": f"#/components/schemas/{name}"}
            schema["x-model-loaded"] = True
        schema["paths"]["/v1/score"]["post"]["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": item, "maxItems": settings.max_customers}
                }
            },
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
