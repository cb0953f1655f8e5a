"""Lineage on the registered version: data, split, commit, model card, a masked input example."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import TELCO_CSV

import mlflow
from mlflow import MlflowClient
from valuecube.training.evaluation_split import evaluation_split, is_evaluation
from valuecube.training.lineage import (
    evaluation_customers_source,
    file_digest,
    hashed_ids,
    logged_split,
)


def _version(telco_model):
    return MlflowClient().get_model_version(telco_model.registered_name, telco_model.version)


def test_evaluation_split_is_fixed_by_the_id_whatever_the_seed() -> None:
    table = pd.DataFrame({"churn": [0, 1] * 500}, index=pd.Index([f"c{i}" for i in range(1000)]))
    a, b = evaluation_split(table, seed=0), evaluation_split(table, seed=7)
    assert a.test.equals(b.test) and not a.train.equals(b.train)
    assert 150 < len(a.test) < 250  # about 20 %
    shuffled = table.sample(frac=1.0, random_state=1)
    assert set(evaluation_split(shuffled).test) == set(a.test)  # row order does not matter
    assert not set(a.test) & (set(a.train) | set(a.validation))


def test_version_carries_data_commit_and_card(telco_model) -> None:
    mv = _version(telco_model)
    assert mv.tags["data_source"] == "data/telco_churn.csv"  # relative, not this machine's path
    assert mv.tags["data_digest"] == file_digest(TELCO_CSV)
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", mv.tags["git_commit"])
    assert mv.tags["guard"] in {"passed", "overridden"}
    for part in ("**Data**", "**Split**", "95 % bootstrap intervals", "logistic_regression",
                 "lightgbm", "**Known limits**"):  # fmt: skip
        assert part in mv.description, part
    run = MlflowClient().get_run(mv.run_id)
    (dataset,) = [d.dataset for d in run.inputs.dataset_inputs]
    assert dataset.name == "telco" and "data/telco_churn.csv" in dataset.source
    assert '"num_rows": 3930' in dataset.profile


def test_logged_split_is_hashed_and_test_is_the_evaluation_split(telco_model) -> None:
    split = logged_split(telco_model.model.metadata["run_id"])
    customers = pd.read_csv(TELCO_CSV, usecols=["customerid"])["customerid"].astype(str)
    assert not split["customer_hash"].isin(customers).any()  # no raw id stored
    expected = set(hashed_ids(customers[is_evaluation(customers)]))
    assert set(split.loc[split["part"] == "test", "customer_hash"]) == expected
    assert split["customer_hash"].is_unique and len(split) == len(customers)


def test_input_example_has_no_real_customer(telco_model) -> None:
    model = mlflow.models.Model.load(telco_model.model_uri)
    example = model.load_input_example(mlflow.artifacts.download_artifacts(telco_model.model_uri))
    real = pd.read_csv(TELCO_CSV)
    real.columns = real.columns.str.lower()
    assert not example["customerid"].isin(real["customerid"]).any()
    columns = [c for c in example.columns if c != "customerid"]
    merged = example[columns].astype(str).merge(real[columns].astype(str), how="inner")
    assert merged.empty  # no example row equals a real customer's row


def test_evaluation_data_found_from_any_folder(telco_model, tmp_path, monkeypatch) -> None:
    mv = _version(telco_model)
    monkeypatch.chdir(tmp_path)
    found = evaluation_customers_source(telco_model.model, dict(mv.tags))
    assert Path(found).resolve() == TELCO_CSV.resolve()
    (tmp_path / "data").mkdir()  # a different file under the same relative name: refused
    (tmp_path / "data" / "telco_churn.csv").write_text(TELCO_CSV.read_text()[:-200])
    with pytest.raises(ValueError, match="not the file the model was trained on"):
        evaluation_customers_source(telco_model.model, dict(mv.tags))


def test_training_parts_rebuilt_from_the_logged_lineage(telco_model, tmp_path, monkeypatch) -> None:
    from valuecube.training.lineage import training_parts

    monkeypatch.chdir(tmp_path)  # any folder: found through the project-relative source
    parts = training_parts(telco_model.model)  # the run's tags, as `compare` would call it
    split = logged_split(telco_model.model.metadata["run_id"])
    sizes = split["part"].value_counts()
    assert {k: len(v) for k, v in parts.items()} == {k: sizes[k] for k in parts}
    assert set(hashed_ids(parts["test"].index)) == set(
        split.loc[split["part"] == "test", "customer_hash"]
    )
    assert parts["test"]["churn"].notna().all()
