"""The HTTP API, tested against a real ``valuecube serve`` process on a loopback port."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest

from valuecube.serving.loading import load_model
from valuecube.serving.output import OUTPUT_COLUMNS, output_columns

from .helpers import (
    API_MAX_CUSTOMERS,
    API_TOKEN,
    assert_same_scores,
    customers_json,
    telco_rows,
)

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
def client(api_server: str):
    with httpx.Client(base_url=api_server, timeout=60) as c:
        yield c


def test_probes_docs_and_model_info(client: httpx.Client, telco_uri: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body["maxItems"] == API_MAX_CUSTOMERS
    item = body["items"]  # the record type's own schema, from the model's config
    assert item["properties"]["contract"]["enum"] == ["Month-to-month", "One year", "Two year"]
    info = client.get("/v1/model", headers=AUTH).json()
    assert (
        info["name"] == "test-telco"
        and info["version"]
        and info["output_columns"] == list(output_columns(load_model(telco_uri).model))
        and info["output_columns"][: len(OUTPUT_COLUMNS)] == list(OUTPUT_COLUMNS)
        and info["horizon_days"] is None  # a customer table has no forecast horizon
    )
    assert (
        "test_churn_roc_auc" in info["metrics"] and "tenure" in info["input_schema"]["properties"]
    )


def test_score_equals_the_model(client: httpx.Client, telco_uri: str) -> None:
    rows = telco_rows(20, seed=11)
    response = client.post("/v1/score", json=customers_json(rows), headers=AUTH)
    assert response.status_code == 200
    got = pd.DataFrame(response.json()).drop(columns="churn_reasons")  # serve --reasons 3
    assert (
        list(got.columns) == list(output_columns(load_model(telco_uri).model))
        and got["customer_id"].tolist() == rows["customerid"].tolist()
    )
    assert_same_scores(got.drop(columns="churn_risk"), load_model(telco_uri).model.predict(rows))


def test_401_without_or_with_a_wrong_token(client: httpx.Client) -> None:
    payload = customers_json(telco_rows(1, seed=12))
    assert client.post("/v1/score", json=payload).status_code == 401
    wrong = client.post("/v1/score", json=payload, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/model").status_code == 401
    assert client.get("/readyz").status_code == 200  # probes stay open


def test_413_over_the_limits(client: httpx.Client) -> None:
    payload = customers_json(telco_rows(API_MAX_CUSTOMERS + 1, seed=13))
    too_many = client.post("/v1/score", json=payload, headers=AUTH)
    assert (
        too_many.status_code == 413 and f"at most {API_MAX_CUSTOMERS}" in too_many.json()["detail"]
    )
    huge = client.post(
        "/v1/score",
        content=b"[" + b" " * 2_000_000 + b"]",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert huge.status_code == 413


def test_422_names_the_customer_and_the_field(client: httpx.Client) -> None:
    payload = customers_json(telco_rows(4, seed=14))
    del payload[0]["contract"]
    payload[1]["tenure"] = -1
    payload[2]["gender"] = "Other"
    payload[3]["monthlycharges"] = "lots"
    response = client.post("/v1/score", json=payload, headers=AUTH)
    assert response.status_code == 422
    found = {(d["customer"], d["field"]) for d in response.json()["detail"]}
    assert found == {(0, "contract"), (1, "tenure"), (2, "gender"), (3, "monthlycharges")}
    assert all(d["loc"][0] == "body" for d in response.json()["detail"])

    twice = customers_json(telco_rows(2, seed=15))
    twice[1]["customerid"] = twice[0]["customerid"]
    dup = client.post("/v1/score", json=twice, headers=AUTH)
    assert dup.status_code == 422 and {d["customer"] for d in dup.json()["detail"]} == {0, 1}
    assert client.post("/v1/score", content=b"{not json", headers=AUTH).status_code == 422
    assert client.post("/v1/score", json={"a": 1}, headers=AUTH).status_code == 422


def test_concurrent_requests_are_batched_correctly(client: httpx.Client) -> None:
    """Requests scored together (the same customer in several) each get their own customers back."""
    rows = telco_rows(8, seed=16)
    payloads = [customers_json(rows.iloc[[i % 8]]) for i in range(48)]
    expected = pd.DataFrame(
        client.post("/v1/score", json=customers_json(rows), headers=AUTH).json()
    ).set_index("customer_id")
    with ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(lambda p: client.post("/v1/score", json=p, headers=AUTH), payloads)
        )
    assert [r.status_code for r in responses] == [200] * 48
    for i, r in enumerate(responses):
        (record,) = r.json()
        assert record["customer_id"] == rows["customerid"].iloc[i % 8]
        np.testing.assert_allclose(
            record["churn_probability"],
            expected.loc[record["customer_id"], "churn_probability"],
            atol=1e-6,
        )


def test_a_huge_integer_fails_only_its_own_request(client: httpx.Client) -> None:
    """A 400-digit tenure is that request's 422; good requests sent at the same moment get 200."""
    good = [customers_json(telco_rows(1, seed=40 + i)) for i in range(6)]
    bad = customers_json(telco_rows(1, seed=50))
    bad[0]["tenure"] = 1234567
    body = json.dumps(bad).replace("1234567", "1" + "0" * 399)  # json.dumps would write it too

    def post(payload: list[dict] | str) -> httpx.Response:
        if isinstance(payload, str):
            headers = {**AUTH, "content-type": "application/json"}
            return client.post("/v1/score", content=payload, headers=headers)
        return client.post("/v1/score", json=payload, headers=AUTH)

    with ThreadPoolExecutor(7) as pool:
        responses = list(pool.map(post, [*good[:3], body, *good[3:]]))
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 200, 422, 200, 200, 200], [r.text[:200] for r in responses]
    (detail,) = responses[3].json()["detail"]
    assert detail["customer"] == 0 and detail["field"] == "tenure"


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '[{"tenure": ' + "[" * 5000])
def test_deeply_nested_json_is_a_client_error(client: httpx.Client, body: str) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    response = client.post("/v1/score", content=body.encode(), headers=headers)
    assert response.status_code in (413, 422), response.text[:300]
    assert client.get("/readyz").status_code == 200  # and the server is fine


def test_category_values_are_stripped_like_a_csv_cell(client: httpx.Client) -> None:
    clean = customers_json(telco_rows(3, seed=17))
    padded = json.loads(json.dumps(clean))
    for record in padded:
        record["contract"], record["gender"] = f"  {record['contract']} ", f"{record['gender']} "
    a = client.post("/v1/score", json=clean, headers=AUTH)
    b = client.post("/v1/score", json=padded, headers=AUTH)
    assert a.status_code == b.status_code == 200, b.text[:300]
    drop = ["scored_at"]
    assert_same_scores(
        pd.DataFrame(a.json()).drop(columns=drop), pd.DataFrame(b.json()).drop(columns=drop)
    )


def test_a_scoring_failure_stays_with_its_request(telco_uri: str, monkeypatch) -> None:
    """The batch worker scores a failing batch again request by request: only one fails."""
    import asyncio

    from valuecube.serving.scorer import Scorer, ScoringError

    scorer = Scorer(load_model(telco_uri), max_customers=10)
    requests = [customers_json(telco_rows(2, seed=60 + i)) for i in range(5)]
    requests[2][1]["customerid"] = "POISON"
    score = Scorer.score

    def fragile(self: Scorer, customers: list[dict], *options):  # an injected fault
        if any(c["customerid"] == "POISON" for c in customers):
            raise FloatingPointError("injected")
        return score(self, customers, *options)

    monkeypatch.setattr(Scorer, "score", fragile)

    async def run() -> list:
        worker = asyncio.create_task(scorer.worker())
        try:
            return await asyncio.gather(
                *(scorer.submit(r) for r in requests), return_exceptions=True
            )
        finally:
            worker.cancel()

    results = asyncio.run(run())
    assert isinstance(results[2], ScoringError)
    for i in (0, 1, 3, 4):
        records, unscorable = results[i]
        assert [r["customer_id"] for r in records] == [c["customerid"] for c in requests[i]]
        assert not unscorable
