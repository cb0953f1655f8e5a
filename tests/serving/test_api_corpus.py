"""The bad-input corpus against the HTTP API (issue 10): each bad body gets its own clear error.

Every case is sent to a real ``valuecube serve`` process together with a
good request; the bad one gets 422 (naming the customer and the field),
413 (too large) or 401 (no token), and the good one still gets 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .helpers import API_MAX_CUSTOMERS, API_TOKEN, customers_json, telco_rows

AUTH = {"Authorization": f"Bearer {API_TOKEN}", "content-type": "application/json"}


def _customers(n: int = 2, seed: int = 70) -> list[dict]:
    return customers_json(telco_rows(n, seed=seed))


def _with(field: str, value: object, customer: int = 1) -> str:
    rows = _customers()
    rows[customer][field] = value
    return json.dumps(rows)


def _without(field: str, customer: int = 1) -> str:
    rows = _customers()
    del rows[customer][field]
    return json.dumps(rows)


def _duplicate_ids() -> str:
    rows = _customers(3)
    rows[2]["customerid"] = rows[0]["customerid"]
    return json.dumps(rows)


def _huge_integer() -> str:
    return _with("tenure", 7654321).replace("7654321", "9" * 400)


# name -> (body, expected status, the (customer, field) pairs a 422 must name)
CASES: dict[str, tuple[Callable[[], str], int, set[tuple[int, str]] | None]] = {
    "wrong type": (lambda: _with("monthlycharges", "lots"), 422, {(1, "monthlycharges")}),
    "unknown category": (lambda: _with("contract", "Weekly"), 422, {(1, "contract")}),
    "missing field": (lambda: _without("tenure"), 422, {(1, "tenure")}),
    "unknown field": (lambda: _with("favourite_colour", "teal"), 422, {(1, "favourite_colour")}),
    "400-digit integer": (_huge_integer, 422, {(1, "tenure")}),
    "nested value": (lambda: _with("tenure", [[[12]]]), 422, {(1, "tenure")}),
    "null id": (lambda: _with("customerid", None, 0), 422, {(0, "customerid")}),
    "duplicate ids": (_duplicate_ids, 422, {(0, "customerid"), (2, "customerid")}),
    "not a list": (lambda: json.dumps(_customers(1)[0]), 422, None),
    "over the limit": (lambda: json.dumps(_customers(API_MAX_CUSTOMERS + 1)), 413, None),
}


@pytest.fixture(scope="module")
def client(api_server: str):
    with httpx.Client(base_url=api_server, timeout=60) as c:
        yield c


@pytest.mark.parametrize("name", list(CASES))
def test_bad_body_is_refused_and_a_good_one_still_scored(client: httpx.Client, name: str) -> None:
    body, status, named = CASES[name]
    good = json.dumps(_customers(3, seed=71))

    def post(content: str) -> httpx.Response:
        return client.post("/v1/score", content=content.encode(), headers=AUTH)

    with ThreadPoolExecutor(2) as pool:
        bad_response, good_response = pool.map(post, [body(), good])
    assert bad_response.status_code == status, bad_response.text[:500]
    assert good_response.status_code == 200, good_response.text[:500]
    assert len(good_response.json()) == 3
    if named is not None:
        detail = bad_response.json()["detail"]
        assert {(d["customer"], d["field"]) for d in detail} == named, detail


def test_no_token_is_401_and_a_good_request_still_scored(client: httpx.Client) -> None:
    body = json.dumps(_customers(2, seed=72))
    no_token = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    scored = client.post("/v1/score", content=body, headers=AUTH)
    assert no_token.status_code == 401
    assert scored.status_code == 200 and len(scored.json()) == 2


def test_an_empty_list_scores_nobody(client: httpx.Client) -> None:
    """No customers in, none out: an empty batch is not an error (nothing is lost)."""
    response = client.post("/v1/score", content=b"[]", headers=AUTH)
    assert response.status_code == 200 and response.json() == []
