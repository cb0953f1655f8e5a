"""The API's settings, read from the environment.

The environment configures every ``uvicorn --workers N`` process alike:
``VALUECUBE_MODEL_URI``, ``VALUECUBE_API_TOKEN``,
``VALUECUBE_API_MAX_CUSTOMERS``, ``VALUECUBE_API_MAX_BODY_BYTES``,
``VALUECUBE_API_TORCH_THREADS`` (default 1), ``VALUECUBE_API_REASONS`` (default 3),
``VALUECUBE_API_LEVERS`` (``1``/``true``: the rule's lever columns on every result that does
not say ``?levers=false``; default off).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV_MODEL = "VALUECUBE_MODEL_URI"
ENV_TOKEN = "VALUECUBE_API_TOKEN"
ENV_MAX_CUSTOMERS = "VALUECUBE_API_MAX_CUSTOMERS"
ENV_MAX_BYTES = "VALUECUBE_API_MAX_BODY_BYTES"
ENV_TORCH_THREADS = "VALUECUBE_API_TORCH_THREADS"
ENV_REASONS = "VALUECUBE_API_REASONS"
"""Top raising/lowering churn reasons per customer in each result (default 3, 0: none)."""
ENV_LEVERS = "VALUECUBE_API_LEVERS"
"""The default of ``POST /v1/score?levers=``: the rule's levers on each result (default off)."""
DEFAULT_MAX_CUSTOMERS = 1000
BYTES_PER_CUSTOMER = 4096
"""Default byte limit per allowed customer (a Telco customer is ~600 bytes of JSON)."""


@dataclass(frozen=True)
class Settings:
    """API settings (see the module docstring for the environment variables)."""

    model_uri: str
    token: str | None = None
    max_customers: int = DEFAULT_MAX_CUSTOMERS
    max_body_bytes: int = DEFAULT_MAX_CUSTOMERS * BYTES_PER_CUSTOMER
    torch_threads: int = 1
    reasons: int = 3
    levers: bool = False

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
        threads = int(os.environ.get(ENV_TORCH_THREADS) or 1)
        reasons = int(os.environ.get(ENV_REASONS) or 3)
        if reasons < 0:
            raise RuntimeError(f"{ENV_REASONS} must be at least 0, got {reasons}")
        levers_text = (os.environ.get(ENV_LEVERS) or "0").strip().lower()
        if levers_text not in ("0", "1", "false", "true", "no", "yes"):
            raise RuntimeError(f"{ENV_LEVERS} must be 1/true or 0/false, got {levers_text!r}")
        levers = levers_text in ("1", "true", "yes")
        return cls(
            uri,
            os.environ.get(ENV_TOKEN) or None,
            n,
            size,
            threads,
            reasons=reasons,
            levers=levers,
        )
