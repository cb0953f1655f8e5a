"""The API's routes and their checks: probes, ``/v1/model`` and ``/v1/score``.

Each check is a FastAPI dependency written once, raising ``HTTPException``:
:func:`check_token` (401) guards the whole ``/v1`` router, :func:`ready`
(503) every route that needs the model, :func:`request_customers` (413, 422)
reads and validates a scoring body. The body is read here rather than by
FastAPI so that its size is bounded while it streams in and malformed JSON
(however deeply nested) is a 422; its OpenAPI schema comes from the same
record type that validates it. The checks are ``async def``: FastAPI runs a
plain ``def`` dependency in its thread pool, and a thread that needs the GIL
while the scoring thread holds it waits up to a switch interval (5 ms) per hop.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from valuecube.serving.output import CHURN_RISK_CUTOFFS, CHURN_RISK_LABELS, output_columns
from valuecube.serving.scorer import Records, Scorer, ScoringError
from valuecube.serving.settings import ENV_MAX_CUSTOMERS, Settings

probes = APIRouter(tags=["probes"])


def _settings(request: Request) -> Settings:
    """The app's settings (read directly, not a dependency: each dependency FastAPI resolves
    per request costs about as much as validating a customer)."""
    return request.app.state.settings


async def check_token(request: Request) -> None:
    """401 unless the request carries ``Authorization: Bearer <VALUECUBE_API_TOKEN>`` (when set)."""
    config = _settings(request)
    if config.token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), config.token.encode()
    ):
        raise HTTPException(
            401,
            "missing or wrong bearer token (Authorization: Bearer <VALUECUBE_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def ready(request: Request) -> Scorer:
    """The scorer, or 503 while the model is not loaded (with the load error once it failed)."""
    scorer: Scorer | None = request.app.state.scorer
    if scorer is None:
        error = request.app.state.load_error
        raise HTTPException(
            503,
            f"model failed to load: {error}" if error else "model loading; retry shortly",
            headers={"Retry-After": "1"},
        )
    return scorer


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@probes.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 once the model is loaded, 503 after a failed load."""
    try:
        scorer = await ready(request)
    except HTTPException as exc:
        status = "failed" if request.app.state.load_error else "loading"
        return JSONResponse(
            {"detail": exc.detail, "status": status}, status_code=503, headers=exc.headers
        )
    return JSONResponse(
        {"status": "ready", "model": scorer.loaded.name, "version": scorer.loaded.version}
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it exceeds ``limit`` bytes (on the header and while reading)."""
    too_big = HTTPException(
        413, f"request body over {limit:,} bytes; send fewer customers per request"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_big
    return bytes(body)


def _details(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as FastAPI-style details, each naming the customer index and the field."""
    out = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = list(err["loc"])
        index = loc[0] if loc and isinstance(loc[0], int) else None
        name = ".".join(str(p) for p in loc[1:]) or None
        where = f"customer {index}: field {name!r}" if name else f"customer {index}"
        out.append(
            {
                "loc": ["body", *loc],
                "customer": index,
                "field": name,
                "msg": err["msg"],
                "type": err["type"],
                "message": f"{where}: {err['msg']}",
            }
        )
    return out


async def request_customers(
    request: Request,
    scorer: Annotated[Scorer, Depends(ready)],
) -> Records:
    """The body's customers, validated by the model's record type (413 or 422 otherwise)."""
    config = _settings(request)
    body = await _read_body(request, config.max_body_bytes)
    try:
        customers = scorer.adapter.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(e["type"] == "too_long" and not e["loc"] for e in errors):
            raise HTTPException(
                413,
                f"too many customers in one request; at most {config.max_customers} "
                f"({ENV_MAX_CUSTOMERS}); split the list",
            ) from None
        top = errors[0] if len(errors) == 1 and not errors[0]["loc"] else None
        if top is not None and top["type"] == "json_invalid":
            raise HTTPException(422, f"body is not valid JSON: {top['msg']}") from None
        if top is not None and top["type"] == "list_type":
            raise HTTPException(
                422, "body must be a JSON list of customers, e.g. [{...}, {...}]"
            ) from None
        raise HTTPException(422, _details(exc)) from None
    if len(customers) > 1:
        ids = pd.Index([c[scorer.id_field] for c in customers])
        duplicated = ids.duplicated(keep=False)
        if duplicated.any():
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", int(i), scorer.id_field],
                        "customer": int(i),
                        "field": scorer.id_field,
                        "msg": f"duplicate customer id {ids[i]!r} in this request",
                        "type": "duplicate",
                    }
                    for i in duplicated.nonzero()[0]
                ],
            )
    return customers


def model_router(config: Settings, record_schema: dict[str, Any] | None) -> APIRouter:
    """The ``/v1`` routes behind the token check; the body documented by the record's schema."""
    router = APIRouter(prefix="/v1", tags=["model"], dependencies=[Depends(check_token)])
    item = record_schema or {"type": "object", "description": "a customer"}
    body = {"type": "array", "items": item, "maxItems": config.max_customers}

    @router.get("/model")
    async def model_info(scorer: Annotated[Scorer, Depends(ready)]) -> dict[str, Any]:
        """The served model: name, version, metrics, input schema, output fields and horizon.

        ``horizon_days`` is the forecast horizon of a forecasting (transaction-log)
        model, null for a customer-table model.
        """
        loaded = scorer.loaded
        return {
            "name": loaded.name,
            "version": loaded.version,
            "uri": loaded.uri,
            "dataset": loaded.config.name,
            "shape": loaded.config.input.shape,
            "metrics": loaded.model.metadata.get("metrics", {}),
            "input_columns": loaded.model.input_columns,
            "input_schema": scorer.record_schema,
            "output_columns": list(output_columns(loaded.model)),
            "horizon_days": loaded.model.horizon_days,
            "max_customers": config.max_customers,
            "churn_risk": {"cutoffs": list(CHURN_RISK_CUTOFFS), "labels": list(CHURN_RISK_LABELS)},
        }

    @router.post(
        "/score",
        responses={401: {}, 413: {}, 422: {}, 503: {}},
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}}
        },
    )
    async def score(
        customers: Annotated[Records, Depends(request_customers)],
        scorer: Annotated[Scorer, Depends(ready)],
        levers: Annotated[
            bool | None,
            Query(
                description="Add the rule's levers (cv/pv/ra_margin, nearest_dimension, margin, "
                "lever_factor, lever_change, lever_units) to each result; "
                "default: the server's --levers/VALUECUBE_API_LEVERS (off)."
            ),
        ] = None,
    ) -> JSONResponse:
        """Score a JSON list of customers; one output object per customer, in order."""
        if not customers:
            return JSONResponse([])
        try:
            records, unscorable = await scorer.submit(
                customers, levers=config.levers if levers is None else levers
            )
        except ScoringError as exc:
            raise HTTPException(422, str(exc)) from None
        if unscorable:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", i],
                        "customer": i,
                        "field": None,
                        "msg": reason,
                        "type": "unscorable",
                    }
                    for i, reason in sorted(unscorable.items())
                ],
            )
        return JSONResponse(records)

    return router
