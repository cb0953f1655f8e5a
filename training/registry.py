"""Model registry: register a model as ``challenger``; promote it to ``champion`` behind a gate.

The gate for networks: the challenger takes the ``champion`` alias only when
its churn ROC-AUC on the test customers is at least the champion's, both
models re-evaluated now on the same data (the challenger's test split,
rebuilt from the config, input and seed stored with it).

Saved value cubes (``valuecube segment --register-as``) are rules fitted on
reference customers, with no labels to be judged on: the first version is
the ``champion``, later ones the ``challenger``, and ``promote`` moves the
alias when asked, saying that no gate applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlflow.exceptions import MlflowException
from sklearn.metrics import roc_auc_score

import mlflow
from mlflow import MlflowClient
from valuecube.models.packaged import unwrap
from valuecube.models.saved_cube import KIND_TAG
from valuecube.training.data import load_training_data

CHALLENGER = "challenger"
CHAMPION = "champion"


def register_challenger(name: str, model_uri: str, *, tags: dict[str, str]) -> str:
    """Register ``model_uri`` as a new version of ``name``, tagged and aliased ``challenger``."""
    version = mlflow.register_model(model_uri, name, tags=tags).version
    MlflowClient().set_registered_model_alias(name, CHALLENGER, version)
    return str(version)


def register_cube(name: str, model_uri: str, *, tags: dict[str, str]) -> tuple[str, str]:
    """Register a saved cube as a new version of ``name``; return (version, alias it took).

    The first version becomes ``champion``, later ones ``challenger``.
    """
    client = MlflowClient()
    version = str(mlflow.register_model(model_uri, name, tags={**tags, KIND_TAG: "cube"}).version)
    alias = CHALLENGER if _version_by_alias(client, name, CHAMPION) is not None else CHAMPION
    client.set_registered_model_alias(name, alias, version)
    return version, alias


def _version_by_alias(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


@dataclass(frozen=True)
class Promotion:
    """The outcome of a promotion attempt."""

    promoted: bool
    reason: str
    challenger: str
    champion_before: str | None
    challenger_auc: float | None = None
    champion_auc: float | None = None


def evaluate_version(name: str, version: str, rows: object, churn: np.ndarray) -> float:
    """Churn ROC-AUC of a registered version on the given model input rows."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return float(roc_auc_score(churn, model.predict(rows)["churn_probability"]))


def promote(name: str) -> Promotion:
    """Move ``champion`` to the challenger behind the gate of the module docstring."""
    client = MlflowClient()
    challenger = _version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise ValueError(
            f"registered model {name!r} has no {CHALLENGER!r} alias; run `valuecube train` first"
        )
    champion = _version_by_alias(client, name, CHAMPION)
    if champion is None:
        client.set_registered_model_alias(name, CHAMPION, challenger)
        return Promotion(
            True, f"no champion yet: version {challenger} becomes champion", challenger, None
        )
    if champion == challenger:
        return Promotion(
            False, f"version {challenger} is already the champion", challenger, champion
        )

    if client.get_model_version(name, challenger).tags.get(KIND_TAG) == "cube":
        client.set_registered_model_alias(name, CHAMPION, challenger)
        return Promotion(
            True,
            f"cube v{challenger} becomes champion (was v{champion}); value cubes have no "
            "quality gate",
            challenger,
            champion,
        )
    model = unwrap(mlflow.pyfunc.load_model(f"models:/{name}/{challenger}"))
    data = load_training_data(
        model.config, model.metadata["input"], seed=int(model.metadata["seed"])
    )
    rows, churn = data.model_input(data.split.test), data.churn.loc[data.split.test].to_numpy()
    challenger_auc = evaluate_version(name, challenger, rows, churn)
    champion_auc = evaluate_version(name, champion, rows, churn)
    facts = dict(
        challenger=challenger,
        champion_before=champion,
        challenger_auc=challenger_auc,
        champion_auc=champion_auc,
    )
    if challenger_auc >= champion_auc:
        client.set_registered_model_alias(name, CHAMPION, challenger)
        return Promotion(
            True,
            f"challenger v{challenger} AUC {challenger_auc:.4f} ≥ champion v{champion} "
            f"AUC {champion_auc:.4f}: promoted",
            **facts,
        )
    return Promotion(
        False,
        f"challenger v{challenger} AUC {challenger_auc:.4f} < champion v{champion} "
        f"AUC {champion_auc:.4f} on the same {len(churn)} test customers: aliases unchanged",
        **facts,
    )
