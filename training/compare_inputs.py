"""The I/O around :mod:`valuecube.training.compare`: which model, which customers.

Loading lives here, not in the pure comparison module: the registered model
and its identity (:func:`load_packaged_model`), and the customers to compare on
(:func:`comparison_inputs`): the model's own test split — rebuilt from the
config, input and seed stored with it — when the input is its training input,
otherwise every row of the given input. Heavy libraries are imported inside
the functions so that ``valuecube --help`` stays instant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from valuecube.features.config import InputSpec
    from valuecube.models.packaged import ChurnSegmentModel
    from valuecube.training.compare import Comparison
    from valuecube.training.verdict import Verdict


@dataclass(frozen=True)
class ComparisonInputs:
    """The customers to compare on, the model's training customers (for peers), a description.

    For a transaction log also the log the customers were built from
    (:func:`features.snapshots.log_frame`) and their as-of date, for the
    forecast and BTYD sections of the report; ``None`` for customer tables.
    """

    customers: pd.DataFrame
    train_customers: pd.DataFrame
    description: str
    log: pd.DataFrame | None = None
    as_of: pd.Timestamp | None = None


def _date(ms: int | None) -> str:
    return (
        "–"
        if ms is None
        else dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )


def model_identity(uri: str, model: ChurnSegmentModel) -> dict[str, str]:
    """Name, version, aliases, run id, training data and dates of a model."""
    import mlflow.exceptions

    client = mlflow.MlflowClient()
    meta = model.metadata
    out = {"model URI": uri, "name": "–", "version": "–", "aliases": "–"}
    if uri.startswith("models:/"):
        name, _, ref = uri.removeprefix("models:/").partition("@")
        version = (
            client.get_model_version_by_alias(name, ref)
            if ref
            else client.get_model_version(*name.split("/", 1))
        )
        out.update(
            name=version.name,
            version=str(version.version),
            aliases=", ".join(version.aliases) or "–",
            registered=_date(version.creation_timestamp),
        )
    run_id = str(meta.get("run_id", "–"))
    try:
        trained = _date(client.get_run(run_id).info.start_time)
    except (
        mlflow.exceptions.MlflowException
    ):  # the run may live in another tracking store; the report still renders
        trained = "–"
    metrics = meta.get("metrics", {})
    auc = metrics.get("test_churn_roc_auc")
    return {
        **out,
        "run id": run_id,
        "trained": trained,
        "dataset": str(meta.get("dataset", "–")),
        "training data": str(meta.get("input", "–")),
        "seed": str(meta.get("seed", "–")),
        "test churn ROC-AUC at training": "–" if auc is None else f"{auc:.3f}",
    }


def load_packaged_model(uri: str) -> tuple[ChurnSegmentModel, dict[str, str]]:
    """Load a packaged model (any MLflow model URI) and describe it (:func:`model_identity`)."""
    import mlflow.pyfunc

    from valuecube.models.packaged import unwrap
    from valuecube.training.tracking import configure_tracking

    configure_tracking()
    model = unwrap(mlflow.pyfunc.load_model(uri))
    return model, model_identity(uri, model)


def comparison_inputs(
    model: ChurnSegmentModel,
    config: str | Path | None = None,
    input_path: str | Path | None = None,
    *,
    max_rows: int | None = None,
    seed: int = 0,
) -> ComparisonInputs:
    """The per-customer tables to compare on; ``config``/``input_path`` default to the model's own.

    The training customers are always the model's own training split (the
    peers are refit there). ``max_rows`` caps the compared customers with a
    seeded random sample (quick looks, tests).
    """
    from valuecube.features.config import load_config
    from valuecube.features.customers import build_customer_table
    from valuecube.features.inputs import load_input
    from valuecube.training import lineage

    meta = model.metadata
    try:  # the model's own parts, from the source and hashed split it logged
        parts = lineage.training_parts(model)
        trained_on = lineage.evaluation_customers_source(model, lineage.run_lineage_tags(model))
    except FileNotFoundError as exc:
        raise ValueError(f"{exc}; the peers are refit on the model's training data") from exc
    cfg = load_config(config) if config is not None else model.config
    own = input_path is None or Path(input_path).resolve() == trained_on.resolve()
    train = parts["train"]
    if own:
        same = cfg == model.config
        customers = parts["test"]
        if not same:
            rebuilt = build_customer_table(
                load_input(trained_on, cfg.input, strict=True), cfg.input
            )
            customers = rebuilt.table.loc[customers.index]
        description = f"the model's own test split of {trained_on.name} (seed {meta['seed']})"
    else:
        customers = build_customer_table(
            load_input(input_path, cfg.input, strict=True), cfg.input
        ).table
        description = f"every customer of {Path(input_path).name}"
    if max_rows is not None and len(customers) > max_rows:
        description += f", a random sample of {max_rows:,} of its {len(customers):,} customers"
        customers = customers.sample(max_rows, random_state=seed)
    log, as_of = _log_and_as_of(trained_on if own else input_path, cfg.input)
    return ComparisonInputs(customers, train, f"Compared on {description}.", log, as_of)


def _log_and_as_of(
    path: str | Path, spec: InputSpec
) -> tuple[pd.DataFrame | None, pd.Timestamp | None]:
    """A transaction log as :func:`features.snapshots.log_frame`, and the customers' as-of date."""
    import pandas as pd

    from valuecube.features.inputs import load_input
    from valuecube.features.snapshots import log_frame

    if spec.shape != "transaction_log":
        return None, None
    log = log_frame(load_input(path, spec, strict=True), spec)
    as_of = pd.Timestamp(spec.as_of) if spec.as_of is not None else log["date"].max()
    return log, as_of


def run_compare(
    model_uri: str,
    output: str | Path,
    config: str | Path | None = None,
    input_path: str | Path | None = None,
    *,
    max_rows: int | None = None,
    top: int = 10,
    repeats: int = 3,
    bootstrap: int = 200,
    currency: str = "$",
    seed: int = 0,
) -> tuple[Comparison, Verdict]:
    """Load, compare, write the HTML report to ``output``; return the comparison and its verdict."""
    from valuecube.training.compare import compare_model
    from valuecube.training.report import render_report, write_report
    from valuecube.training.report_sections import extra_sections
    from valuecube.training.verdict import build_verdict

    model, identity = load_packaged_model(model_uri)
    inputs = comparison_inputs(model, config, input_path, max_rows=max_rows, seed=seed)
    result = compare_model(
        model,
        inputs.customers,
        inputs.train_customers,
        top=top,
        n_repeats=repeats,
        n_resamples=bootstrap,
        seed=seed,
    )
    verdict = build_verdict(result)
    title = f"valuecube · {model.config.name}: BP network vs fuzzy value cube"
    page = render_report(
        result,
        identity,
        title=title,
        customers=inputs.description,
        config=model.config,
        currency=currency,
        verdict=verdict,
        extra_sections=extra_sections(model, result, inputs.customers, inputs.log, inputs.as_of),
    )
    write_report(page, output)
    return result, verdict
