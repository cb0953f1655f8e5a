"""Model registry: register a trained network as ``challenger``, a saved value cube by its alias.

Promotion to ``champion`` is :mod:`valuecube.training.promotion_job`: a
network passes the gate of :mod:`valuecube.training.promotion`; a saved value
cube (``valuecube segment --register-as``) is a rule fitted on reference
customers, with no labels to be judged on, so its first version is the
``champion``, later ones the ``challenger``, and ``promote`` moves the alias
when asked, saying that no gate applies.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException

import mlflow
from mlflow import MlflowClient
from valuecube.models.saved_cube import KIND_TAG

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
