"""The ``serve`` command: the HTTP API under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from valuecube.console import err, fail


def serve(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="MLflow model URI, e.g. models:/valuecube-telco@champion."
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    max_customers: Annotated[
        int | None,
        typer.Option(
            "--max-customers",
            min=1,
            help="Most customers per request (default $VALUECUBE_API_MAX_CUSTOMERS, else 1000).",
        ),
    ] = None,
    reasons: Annotated[
        int,
        typer.Option(
            "--reasons",
            min=0,
            help="Per customer, the top N factors raising and N lowering the churn probability "
            "(churn_reasons: a list of {factor, value, effect}); 0 skips them.",
        ),
    ] = 3,
    levers: Annotated[
        bool,
        typer.Option(
            "--levers/--no-levers",
            help="Add the rule's levers (margins to the threshold, the nearest dimension, the "
            "one factor change that crosses it) to every result; a request overrides it with "
            "?levers=true or ?levers=false.",
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="uvicorn worker processes (each loads the model).")
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every request (off by default: it costs ~10% of throughput).",
        ),
    ] = False,
) -> None:
    """Serve the model over HTTP (FastAPI, uvicorn): POST /v1/score, GET /v1/model, /healthz, /docs.

    The scores carry the batch output's columns, those of the model included (a transaction-log
    model's segment_next, expected_spend, horizon_days and BTYD columns; a customer table's
    survival columns), then churn_reasons (--reasons) and, per request with ?levers=true (or
    for every request with --levers), the rule's lever columns; GET /v1/model lists the model's
    columns and gives the forecast horizon. Set
    VALUECUBE_API_TOKEN to require 'Authorization: Bearer <token>' on /v1/*.

    Example: valuecube serve -m models:/valuecube-telco@champion --port 8000
    """
    import uvicorn

    from valuecube.serving.loading import ModelLoadError, resolve_quickly
    from valuecube.serving.settings import ENV_LEVERS, ENV_MAX_CUSTOMERS, ENV_MODEL, ENV_REASONS

    try:  # fail fast on a wrong store, name or alias; the model itself loads in the server
        name, version, _ = resolve_quickly(model)
    except ModelLoadError as exc:
        fail(str(exc))
    os.environ[ENV_MODEL] = model
    os.environ[ENV_REASONS] = str(reasons)
    os.environ[ENV_LEVERS] = "1" if levers else "0"
    if max_customers is not None:
        os.environ[ENV_MAX_CUSTOMERS] = str(max_customers)
    err.print(f"serving {name} version {version} on http://{host}:{port} (docs at /docs)")
    uvicorn.run(
        "valuecube.serving.api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )
