"""The ``promote`` job: load both models, check lineage, run the gate, move the alias, record.

See :mod:`~valuecube.training.promotion` for the checks. The decision is
recorded on the challenger's version: ``promotion_*`` tags (verdict, who,
when, the champion it was compared with, the evaluation customers, each
difference with its interval) and a section appended to its description.
A dry run records nothing and moves nothing. A registered value cube
(tagged ``valuecube_kind=cube``) has no labels to be judged on: ``promote``
moves its alias when asked, with no gate, and says so (:func:`promote_cube`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

import mlflow
from mlflow import MlflowClient
from valuecube.features.customers import LABEL_COLUMNS, build_customer_table
from valuecube.features.inputs import load_input
from valuecube.models.saved_cube import KIND_TAG
from valuecube.training import lineage
from valuecube.training.evaluation_split import is_evaluation
from valuecube.training.promotion import Evaluation, GateDecision, GatePolicy, gate
from valuecube.training.registry import CHALLENGER, CHAMPION


class LeakageError(ValueError):
    """Some evaluation customers were in a model's training or validation data."""


def resolve_version(model: str) -> tuple[str, str]:
    """(name, version) of ``NAME`` (its challenger), ``models:/NAME@ALIAS``, ``models:/NAME/N``."""
    client = MlflowClient()
    ref = model.removeprefix("models:/")
    name, alias, version = ref, CHALLENGER, None
    if "@" in ref:
        name, alias = ref.split("@", 1)
    elif "/" in ref:
        name, version = ref.split("/", 1)
    try:
        mv = (
            client.get_model_version(name, version)
            if version
            else client.get_model_version_by_alias(name, alias)
        )
    except MlflowException as exc:
        raise ValueError(
            f"no registered model version {model!r} (alias {alias!r} of {name!r}) in the MLflow "
            f"store {mlflow.get_tracking_uri()}; set MLFLOW_TRACKING_URI to use another store"
            + ("; run `valuecube train` first" if alias == CHALLENGER and not version else "")
        ) from exc
    return mv.name, str(mv.version)


def champion_version(name: str) -> str | None:
    """The version holding the ``champion`` alias, if any."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_version(name: str, version: str):
    """The packaged model of a registered version and the version's tags."""
    from valuecube.models.packaged import unwrap

    mv = MlflowClient().get_model_version(name, version)
    return unwrap(mlflow.pyfunc.load_model(f"models:/{name}/{version}")), dict(mv.tags)


def evaluation_table(model, path: Path, *, own_split: bool) -> pd.DataFrame:
    """Labelled customers of ``path`` by the model's config (hash split if ``own_split``)."""
    spec = model.config.input
    table = build_customer_table(load_input(path, spec, strict=True), spec).table
    if "churn" not in table.columns:
        raise ValueError(f"{path}: the evaluation data needs the churn label")
    return table[is_evaluation(table.index)] if own_split else table


def check_not_trained_on(model, version: str, ids: pd.Index) -> None:
    """Raise :class:`LeakageError` unless the model's logged split shows it never saw ``ids``."""
    split = lineage.logged_split(str(model.metadata.get("run_id", "")))
    if split is None:
        raise LeakageError(
            f"version {version} logged no split (lineage/split.csv), so the gate cannot prove it "
            "never trained on the evaluation customers; retrain it with this version of valuecube"
        )
    trained = set(split.loc[split["part"].isin(["train", "validation"]), "customer_hash"])
    overlap = int(pd.Series(lineage.hashed_ids(ids)).isin(trained).sum())
    if overlap:
        raise LeakageError(
            f"{overlap:,} of the {len(ids):,} evaluation customers were in version {version}'s "
            "training or validation data: refusing to evaluate on them "
            "(use the dataset's evaluation split or an --eval-data file of unseen customers)"
        )


def evaluate(model, table: pd.DataFrame) -> Evaluation:
    """Score the evaluation customers with a packaged model."""
    features = table.drop(columns=[c for c in LABEL_COLUMNS if c in table.columns])
    out = model.predict_customers(features)
    return Evaluation(
        table["churn"].to_numpy().astype(float),
        out["churn_probability"].to_numpy(dtype=float),
        out["segment"].to_numpy(),
        out["segment_model"].to_numpy(),
    )


@dataclass(frozen=True)
class PromotionOutcome:
    """What ``promote`` decided, on which evidence (``decision``: None if not evaluated).

    ``gated``: False for a value cube, whose alias moves without a gate.
    """

    name: str
    challenger: str
    champion_before: str | None
    promoted: bool
    reason: str
    decision: GateDecision | None = None
    evaluation: str = ""
    dry_run: bool = False
    gated: bool = True


def run_promotion(
    model: str,
    *,
    eval_data: str | Path | None = None,
    policy: GatePolicy | None = None,
    dry_run: bool = False,
) -> PromotionOutcome:
    """Gate ``model`` (a name, ``models:/NAME@ALIAS`` or ``models:/NAME/N``) against the champion.

    Raises
    ------
    ValueError
        Unknown model, missing data; :class:`LeakageError` when an evaluation
        customer was in either model's training or validation data.
    """
    name, version = resolve_version(model)
    champion = champion_version(name)
    if champion == version:
        return PromotionOutcome(
            name, version, champion, False, f"version {version} is already the champion"
        )
    if MlflowClient().get_model_version(name, version).tags.get(KIND_TAG) == "cube":
        return promote_cube(name, version, champion, dry_run=dry_run)
    challenger_model, tags = load_version(name, version)
    path = (
        Path(eval_data)
        if eval_data is not None
        else lineage.evaluation_customers_source(challenger_model, tags)
    )
    own = eval_data is None
    where = (
        f"the evaluation split (id hash) of {tags.get('data_source', path.name)}"
        if own
        else f"every customer of {path}"
    )
    table = evaluation_table(challenger_model, path, own_split=own)
    check_not_trained_on(challenger_model, version, table.index)
    evaluations = {version: evaluate(challenger_model, table)}
    if champion is not None:
        champion_model, _ = load_version(name, champion)
        champion_table = evaluation_table(champion_model, path, own_split=own)
        common = table.index.intersection(champion_table.index)
        check_not_trained_on(champion_model, champion, common)
        evaluations = {
            version: evaluate(challenger_model, table.loc[common]),
            champion: evaluate(champion_model, champion_table.loc[common]),
        }
    decision = gate(evaluations[version], evaluations.get(champion), policy)
    where = f"{decision.n_customers:,} customers: {where}"
    against = "no champion yet" if champion is None else f"against champion v{champion}"
    if decision.passed:
        reason = f"challenger v{version} passes every check ({against}): " + (
            "would be promoted (dry run)" if dry_run else f"promoted to {CHAMPION}"
        )
    else:
        failed = ", ".join(decision.table.index[~decision.table["pass"]])
        reason = f"challenger v{version} fails {failed} ({against}): aliases unchanged"
    outcome = PromotionOutcome(
        name, version, champion, decision.passed and not dry_run, reason, decision, where, dry_run
    )
    if not dry_run:
        if decision.passed:
            MlflowClient().set_registered_model_alias(name, CHAMPION, version)
        record(outcome)
    return outcome


def promote_cube(
    name: str, version: str, champion: str | None, *, dry_run: bool = False
) -> PromotionOutcome:
    """Move ``champion`` to a registered value cube: no quality gate (see the module docstring)."""
    was = "no champion before" if champion is None else f"was v{champion}"
    if dry_run:
        reason = f"cube v{version} would become champion ({was}; dry run)"
    else:
        MlflowClient().set_registered_model_alias(name, CHAMPION, version)
        reason = f"cube v{version} becomes champion ({was})"
    reason += "; value cubes have no quality gate"
    return PromotionOutcome(
        name, version, champion, not dry_run, reason, dry_run=dry_run, gated=False
    )


def record(outcome: PromotionOutcome) -> None:
    """Tag the challenger's version with the decision and append it to the version's description."""
    client = MlflowClient()
    table = outcome.decision.table
    who = os.environ.get("VALUECUBE_USER") or getpass.getuser()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    tags = {
        "promotion_verdict": "promoted" if outcome.promoted else "refused",
        "promotion_decided_by": who,
        "promotion_decided_at": when,
        "promotion_champion_before": outcome.champion_before or "none",
        "promotion_evaluation": outcome.evaluation,
        "promotion_reason": outcome.reason,
    }
    for check, row in table.iterrows():
        ascii_check = check.replace("Δ", "delta").split(" (")[0]
        key = "promotion_" + "".join(c if c.isalnum() else "_" for c in ascii_check)
        value = f"{row.challenger:.4f}"
        if pd.notna(row["Δ"]):
            value = f"Δ {row['Δ']:+.4f} [{row.low:+.4f}, {row.high:+.4f}]"
        tags[key] = f"{value} ({row.bound}: {'pass' if row['pass'] else 'FAIL'})"
    for key, value in tags.items():
        client.set_model_version_tag(outcome.name, outcome.challenger, key, value)
    lines = [
        f"## Promotion decision: {tags['promotion_verdict']} ({when}, by {who})",
        "",
        f"{outcome.reason}. Evaluated on {outcome.evaluation}.",
        "",
        "| check | challenger | champion | difference [interval] | bound | pass |",
        "|---|---|---|---|---|---|",
    ]
    for check, row in table.iterrows():
        diff = "" if pd.isna(row["Δ"]) else (f"{row['Δ']:+.4f} [{row.low:+.4f}, {row.high:+.4f}]")
        champ = "" if pd.isna(row.champion) else f"{row.champion:.4f}"
        lines.append(
            f"| {check} | {row.challenger:.4f} | {champ} | {diff} | {row.bound} | "
            f"{'yes' if row['pass'] else 'NO'} |"
        )
    current = client.get_model_version(outcome.name, outcome.challenger).description or ""
    description = (current + "\n\n" if current else "") + "\n".join(lines)
    client.update_model_version(outcome.name, outcome.challenger, description=description)
