"""Lineage of a trained model: which data, which code, which customers, and a model card.

What the train job logs on the network's run (so that anyone with the store,
on any machine, can check and re-evaluate the model):

* the training data as an MLflow dataset input (``mlflow.log_input``): name,
  digest (SHA-256 of the file), row count, and its source relative to the
  project root (or a URI when it lives elsewhere);
* ``lineage/split.csv``: the SHA-256 of every customer id with its part
  (train, validation, test), so that the promotion gate can prove a model
  never trained on the customers it is evaluated on, without storing the ids;
* the git commit of the code (``git_commit`` tag; ``+dirty`` when the tree
  has uncommitted changes);
* an input example built from per-column quantiles and frequent categories of
  the training rows with made-up ids: no real customer's row.

The model card is the registered version's description, written from the
run by :func:`model_card`.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlflow
from valuecube.features.customers import CUSTOMER_ID
from valuecube.training.evaluation_split import EVALUATION_FRACTION
from valuecube.training.sources import PROJECT_ROOT, relative_source, resolve_source

SPLIT_ARTIFACT = "lineage/split.csv"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hashed_ids(ids: pd.Index | np.ndarray) -> np.ndarray:
    """SHA-256 (hex) of each customer id: comparable across runs without storing the ids."""
    return np.array([hashlib.sha256(str(i).encode("utf-8")).hexdigest() for i in ids], dtype=object)


def git_commit() -> str:
    """The project's git commit (``+dirty`` with uncommitted changes), ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def version_tags(data: Any) -> dict[str, str]:
    """Registry tags locating the training data: relative source, digest, row count, commit."""
    return {
        "data_source": relative_source(data.source),
        "data_digest": file_digest(data.source),
        "data_customers": str(len(data.customers.table)),
        "git_commit": git_commit(),
    }


def log_lineage(data: Any) -> dict[str, str]:
    """Log the dataset input, the hashed split and the commit on the active run; return the tags."""
    tags = version_tags(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "source can be interpreted in multiple ways"
        dataset = mlflow.data.from_pandas(
            data.rows.reset_index(),
            source=tags["data_source"],
            name=data.config.name,
            digest=tags["data_digest"][:16],
        )
    mlflow.log_input(dataset, context="training")
    mlflow.set_tags(tags)
    split = pd.concat(
        [
            pd.DataFrame({"customer_hash": hashed_ids(ids), "part": part})
            for part, ids in vars(data.split).items()
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(SPLIT_ARTIFACT).name
        split.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(SPLIT_ARTIFACT).parent))
    return tags


def logged_split(run_id: str) -> pd.DataFrame | None:
    """The hashed split a run logged (``customer_hash``, ``part``); None without lineage."""
    from mlflow.exceptions import MlflowException

    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SPLIT_ARTIFACT)
    except (MlflowException, OSError):
        return None
    return pd.read_csv(path, dtype=str)


def masked_example(data: Any, n: int = 5) -> pd.DataFrame:
    """An input example with no real customer's row: per-column quantiles and frequent categories.

    Numeric columns take the 10/30/50/70/90 % quantiles of the training rows
    (nearest observed value, so integer and bounded columns stay valid),
    independently per column; text columns cycle through their most frequent
    values; ids are ``example-1`` … ``example-n``.
    """
    rows = data.model_input(data.split.train)
    levels = np.linspace(0.1, 0.9, n)
    example = {}
    id_columns = {CUSTOMER_ID, getattr(data.config.input, "id_column", None)}
    for column in rows.columns:
        values = rows[column]
        if column in id_columns:
            example[column] = [f"example-{i + 1}" for i in range(n)]
        elif pd.api.types.is_numeric_dtype(values):
            example[column] = values.quantile(levels, interpolation="nearest").to_numpy()
        else:
            common = values.value_counts().index.to_numpy()
            example[column] = [common[i % len(common)] for i in range(n)]
    return pd.DataFrame(example).astype(rows.dtypes.to_dict())


def evaluation_customers_source(model: Any, version_tags: dict[str, str] | None = None) -> Path:
    """The labelled file holding a model's evaluation customers, found from what the model logged.

    The version's ``data_source`` tag (relative to the project, or a URI), checked
    against its ``data_digest``; for models without lineage tags, the metadata's input path.
    """
    tags = version_tags or {}
    source = tags.get("data_source") or str(model.metadata.get("input", ""))
    path = resolve_source(source)
    if "data_digest" in tags and file_digest(path) != tags["data_digest"]:
        raise ValueError(
            f"{path} is not the file the model was trained on (SHA-256 differs from the logged "
            f"{tags['data_digest'][:12]}…); pass --eval-data"
        )
    return path


def model_card(
    *,
    data: Any,
    tags: dict[str, str],
    intervals: pd.DataFrame,
    agreement: dict[str, float],
    guard: pd.DataFrame | None = None,
) -> str:
    """The version's description (Markdown): data, split, metrics with intervals, peers, limits.

    ``intervals`` has one row per model (network and peers) and the columns
    ``roc_auc``, ``roc_auc_low``, ``roc_auc_high``, ``brier``, ``brier_low``, ``brier_high``.
    """
    split = data.split
    lines = [
        f"## valuecube model · {data.config.name}",
        "",
        "**Data**: "
        f"`{tags['data_source']}` (SHA-256 {tags['data_digest'][:12]}…, "
        f"{len(data.customers.table):,} customers); code at commit `{tags['git_commit']}`.",
        "",
        f"**Split**: train {len(split.train):,} · validation {len(split.validation):,} · "
        f"test {len(split.test):,} (the dataset's fixed evaluation split: customers whose id hash "
        f"falls in the lowest {EVALUATION_FRACTION:.0%}; no model of this dataset trains on them).",
        "",
        "**Churn on the test customers** (95 % bootstrap intervals):",
        "",
        "| model | ROC-AUC | Brier |",
        "|---|---|---|",
    ]
    for name, row in intervals.iterrows():
        lines.append(
            f"| {name} | {row.roc_auc:.3f} [{row.roc_auc_low:.3f}, {row.roc_auc_high:.3f}] "
            f"| {row.brier:.4f} [{row.brier_low:.4f}, {row.brier_high:.4f}] |"
        )
    lines += [
        "",
        "**Segments**: agreement with the fuzzy cube's segments on test: "
        + ", ".join(f"{k.removeprefix('segment_')} {v:.3f}" for k, v in agreement.items())
        + ".",
    ]
    if guard is not None:
        failed = list(guard.index[~guard["pass"]])
        lines += [
            "",
            "**Training guard**: "
            + ("passed" if not failed else f"failed {', '.join(failed)}; registered anyway: ")
            + (tags.get("guard_override_reason", "") if failed else ""),
        ]
    lines += [
        "",
        "**Known limits**: segment agreement measures how well the network reproduces the fuzzy "
        "cube, not a ground truth; churn metrics hold for customers like the training data "
        "(check drift with `valuecube score`, realised quality with `valuecube monitor`); "
        "the intervals resample test customers only, not training randomness.",
    ]
    return "\n".join(lines)


def run_lineage_tags(model: Any) -> dict[str, str]:
    """Lineage tags (:func:`version_tags`) of the run that trained ``model``; {} without lineage."""
    from mlflow.exceptions import MlflowException

    try:
        tags = mlflow.MlflowClient().get_run(str(model.metadata.get("run_id", ""))).data.tags
    except MlflowException:
        return {}
    return {k: v for k, v in tags.items() if k in ("data_source", "data_digest", "git_commit")}


def training_parts(
    model: Any, version_tags: dict[str, str] | None = None
) -> dict[str, pd.DataFrame]:
    """The labelled per-customer tables of each part (train, validation, test) the model was fit on.

    Rebuilt from what the model logged: the data source (checked against its
    digest, :func:`evaluation_customers_source`) and the hashed split, with the
    model's own config; for ``compare`` and any re-evaluation on the model's
    own test customers.

    Raises
    ------
    FileNotFoundError, ValueError
        The data is not found or not the logged file; the model logged no split.
    """
    from valuecube.features.customers import build_customer_table
    from valuecube.features.inputs import load_input

    tags = version_tags or run_lineage_tags(model)
    path = evaluation_customers_source(model, tags)
    split = logged_split(str(model.metadata.get("run_id", "")))
    if split is None:
        raise ValueError("the model logged no split (lineage/split.csv); retrain it to compare")
    spec = model.config.input
    table = build_customer_table(load_input(path, spec, strict=True), spec).table
    id_of_hash = pd.Series(table.index, index=hashed_ids(table.index))
    out = {}
    for name in ("train", "validation", "test"):  # in the logged order: the fit's row order
        hashes = split.loc[split["part"] == name, "customer_hash"]
        out[name] = table.loc[id_of_hash.reindex(hashes).dropna().to_numpy()]
    return out
