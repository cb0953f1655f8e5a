"""The HTTP API, tested against a real ``valuecube serve`` process on a loopback port."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest

from valuecube.serving.loading import load_model
from valuecube.serving.output import OUTPUT_COLUMNS

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
        and info["output_columns"] == list(OUTPUT_COLUMNS)
    )
    assert (
        "test_churn_roc_auc" in info["metrics"] and "tenure" in info["input_schema"]["properties"]
    )


def test_score_equals_the_model(client: httpx.Client, telco_uri: str) -> None:
    rows = telco_rows(20, seed=11)
    response = client.post("/v1/score", json=customers_json(rows), headers=AUTH)
    assert response.status_code == 200
    got = pd.DataFrame(response.json())
    assert (
        list(got.columns) == list(OUTPUT_COLUMNS)
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
