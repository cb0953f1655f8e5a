"""The ``segment`` job: segment every customer with the fuzzy value cube, fitted here or saved.

Without a saved cube the cube is fitted on the input itself (the reference
customers) and can be saved (``save_cube``) or registered (``register_as``);
with one (``cube``: a folder written by ``--save-cube``, a ``models:/`` URI of
a registered cube, or a network model, which embeds its cube) nothing is
refitted and the config comes from the cube, so a customer gets the same
scores alone or inside any batch.

Every input row is scored or rejected with a reason: invalid values, a
repeated customer id (the first row is kept, like ``valuecube score``),
factors that cannot be computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from valuecube.features.config import DatasetConfig, load_config, with_posterior
from valuecube.features.customers import (
    CUSTOMER_ID,
    CustomerTable,
    build_customer_table,
    customer_rejects,
)
from valuecube.features.duplicates import SeenIds, split_duplicates
from valuecube.features.experts import read_panel
from valuecube.features.inputs import (
    LINE,
    MAX_LISTED,
    REASON,
    InputError,
    ValidatedInput,
    read_whole,
    validate_chunk,
)
from valuecube.features.io import write_table
from valuecube.models.saved_cube import CUBE_PREDICTION_COLUMNS, ValueCubeModel, with_ratings
from valuecube.models.segments import SEGMENTS
from valuecube.models.value_cube import ValueCube, expert_factors
from valuecube.training.cube_store import load_cube, log_and_register_cube, save_cube

MIN_FIT_CUSTOMERS = 30
"""Fewest customers a cube is fitted on: below it the frozen quantiles say little."""
WARN_FIT_CUSTOMERS = 100
"""Below this many customers a fitted cube gets a warning (coarse normalisation)."""


@dataclass(frozen=True)
class SegmentResult:
    """What a segment run produced and how every input row was accounted for."""

    config: DatasetConfig
    cube: ValueCube
    customers: CustomerTable
    scored: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    rows_rejected: int
    fitted: bool = True
    cube_source: str = ""
    warnings: list[str] = field(default_factory=list)
    saved_to: Path | None = None
    registered: tuple[str, str, str] | None = None  # (name, version, alias)

    @property
    def summary(self) -> pd.DataFrame:
        """Customers, share, churn rate and mean future spend per segment."""
        return segment_summary(self.scored)


def segment_summary(scored: pd.DataFrame, segment_column: str = "segment") -> pd.DataFrame:
    """One row per segment (all eight, in table order): size, share and the label means present."""
    groups = scored.groupby(segment_column, observed=True)
    table = pd.DataFrame({"customers": groups.size()})
    for label, name in (("churn", "churn_rate"), ("future_spend", "mean_future_spend")):
        if label in scored.columns:
            table[name] = groups[label].mean()
    for col in ("cv_score", "pv_score", "ra_score"):
        if col in scored.columns:
            table[f"mean_{col}"] = groups[col].mean()
    table = table.reindex([s.code for s in SEGMENTS])
    table["customers"] = table["customers"].fillna(0).astype(int)
    table.insert(1, "share", table["customers"] / max(len(scored), 1))
    table.insert(0, "segment_name", [s.name for s in SEGMENTS])
    table.index.name = "segment"
    return table


def _check_paths(input_path: Path, output: Path | None, rejects_path: Path | None) -> None:
    named = {"--output": output, "--rejects": rejects_path}
    for flag, path in named.items():
        if path is not None and path.resolve() == input_path.resolve():
            raise ValueError(f"{flag} {path} is the input file; give another path")
    if (
        output is not None
        and rejects_path is not None
        and output.resolve() == rejects_path.resolve()
    ):
        raise ValueError(f"--output and --rejects are the same file ({output}); give two paths")


def read_validated(input_path: Path, cfg: DatasetConfig) -> ValidatedInput:
    """Read and validate the input; a repeated customer id keeps its first row (as ``score``)."""
    chunk = read_whole(input_path, cfg.input)
    dups = pd.DataFrame()
    if cfg.input.shape == "customer_table" and cfg.input.id_column in chunk.table.column_names:
        chunk, dups = split_duplicates(chunk, cfg.input, SeenIds())
    if len(chunk.lines) == 0 and len(dups) == 0:
        raise InputError(f"{input_path}: the file has a header but no rows")
    validated = validate_chunk(chunk, cfg.input, str(input_path))
    if len(dups) == 0:
        return validated
    rejects = pd.concat([validated.rejects, dups], ignore_index=True)
    rejects = rejects.sort_values(LINE, kind="stable", ignore_index=True)
    return ValidatedInput(
        validated.data, rejects, validated.rows_read + len(dups), validated.source
    )


def _strict_error(path: Path, validated: ValidatedInput) -> InputError:
    rejects = validated.rejects
    listed = "\n".join(
        f"  line {line}: {reason}"
        for line, reason in rejects[[LINE, REASON]].head(MAX_LISTED).itertuples(index=False)
    )
    more = len(rejects) - MAX_LISTED
    return InputError(
        f"{path}: {len(rejects)} of {validated.rows_read} rows are invalid:\n{listed}"
        + (f"\n  … and {more} more" if more > 0 else "")
        + "\nFix them, or pass --rejects PATH to write bad rows there and process the rest."
    )


def _write_rejects(rejects: pd.DataFrame, path: Path, id_column: str) -> None:
    """Rejected rows: ``line``, ``customer_id`` (the raw id where the row had one), ``reason``."""
    rejects = rejects.copy()
    raw_id = rejects[id_column] if id_column in rejects.columns else None
    if CUSTOMER_ID not in rejects.columns:
        rejects[CUSTOMER_ID] = raw_id
    elif raw_id is not None and id_column != CUSTOMER_ID:
        rejects[CUSTOMER_ID] = rejects[CUSTOMER_ID].fillna(raw_id)
    ordered = [LINE, CUSTOMER_ID, REASON]
    write_table(rejects[ordered + [c for c in rejects.columns if c not in ordered]], path)


def _fit(cfg: DatasetConfig, customers: CustomerTable) -> tuple[ValueCubeModel, list[str]]:
    n = len(customers.table)
    if n < MIN_FIT_CUSTOMERS:
        raise ValueError(
            f"only {n} valid customers: fitting the cube needs at least {MIN_FIT_CUSTOMERS}. "
            "Fit it once on a reference file (--save-cube DIR) and apply it with --cube DIR"
        )
    warnings = []
    if n < WARN_FIT_CUSTOMERS:
        warnings.append(
            f"the cube is fitted on only {n} customers (fewer than {WARN_FIT_CUSTOMERS}): its "
            "normalisation is coarse; prefer a saved cube fitted on a reference file"
        )
    cube = ValueCube(cfg).fit(customers.table)
    model = ValueCubeModel(cube, as_of=customers.as_of, metadata={"fitted_on_customers": n})
    return model, warnings


def run_segment(
    config: str | Path | DatasetConfig | None,
    input_path: str | Path,
    *,
    output: str | Path | None = None,
    rejects_path: str | Path | None = None,
    cube: str | Path | None = None,
    save_cube_to: str | Path | None = None,
    register_as: str | None = None,
    ratings: str | Path | None = None,
    posterior: str | None = None,
) -> SegmentResult:
    """Validate the input, fit (or load) the value cube, score every customer, write the outputs.

    Without ``rejects_path`` any invalid row is an error (nothing is written);
    with it, invalid rows and unscorable customers go to that file with a
    reason and the rest are scored. ``cube`` applies a saved cube instead of
    fitting one (``config``, when given, must then be the cube's own).
    ``ratings`` replaces the config's expert ratings file (e.g. for new customers).
    ``posterior`` (``"advi"``/``"mcmc"``) overrides the config's ``bgnbd.method``.
    """
    input_path = Path(input_path)
    output = None if output is None else Path(output)
    rejects_path = None if rejects_path is None else Path(rejects_path)
    _check_paths(input_path, output, rejects_path)
    model = None
    if cube is not None:
        if save_cube_to is not None:
            raise ValueError("--save-cube saves a cube fitted here; it does not go with --cube")
        if posterior is not None:
            raise ValueError("--posterior chooses how a cube is fitted; it does not go with --cube")
        model = load_cube(cube)
        cfg = model.config
        if config is not None:
            given = config if isinstance(config, DatasetConfig) else load_config(config)
            keep = {"data", "description"}
            if given.model_dump(exclude=keep) != cfg.model_dump(exclude=keep):
                raise ValueError(
                    f"{config} differs from the config the cube {cube} was fitted with; "
                    "drop --config (the cube carries its own)"
                )
    elif config is None:
        raise ValueError("give --config CONFIG to fit a cube, or --cube DIR to apply a saved one")
    else:
        cfg = config if isinstance(config, DatasetConfig) else load_config(config)
        cfg = with_posterior(cfg, posterior)

    validated = read_validated(input_path, cfg)
    if rejects_path is None and len(validated.rejects):
        raise _strict_error(input_path, validated)
    if len(validated.data) == 0:
        _write_rejects(validated.rejects, rejects_path, cfg.input.id_column)
        raise InputError(
            f"{input_path}: none of the {validated.rows_read} rows is valid; "
            f"the reasons are in {rejects_path}"
        )

    warnings: list[str] = []
    if model is None:
        panel = read_panel(cfg.experts) if expert_factors(cfg) else None
        customers = with_ratings(cfg, build_customer_table(validated, cfg.input), panel, ratings)
        model, warnings = _fit(cfg, customers)
        model.panel = panel
        model.metadata["reference"] = str(input_path)
    else:
        customers = model.customer_table(validated, ratings)
    scored, unscorable = model.cube.segment(customers.table)
    predicted = scored.rename_axis(CUSTOMER_ID).reset_index()[list(CUBE_PREDICTION_COLUMNS)]
    scored = scored.join(customers.labels)
    scored.index.name = CUSTOMER_ID
    scored = scored.join(_levers(model.cube, customers.table, scored.index))
    scored = scored.reset_index()

    unscorable = customer_rejects(validated, cfg.input, unscorable)  # line and values kept
    rejects = pd.concat([validated.rejects, unscorable], ignore_index=True)
    if len(unscorable) and rejects_path is None:
        raise ValueError(
            f"{len(unscorable)} customers have factors that cannot be computed, e.g. "
            f"{unscorable[CUSTOMER_ID].iloc[0]}: {unscorable[REASON].iloc[0]}. "
            "Pass --rejects PATH to set them aside."
        )
    saved_to = registered = None
    if save_cube_to is not None:
        saved_to = save_cube(model, save_cube_to, predicted.head(5))
    if register_as is not None:
        version, alias = log_and_register_cube(model, register_as, predicted.head(5))
        registered = (register_as, version, alias)
    if output is not None:
        write_table(scored, output)
    if rejects_path is not None:
        _write_rejects(rejects, rejects_path, cfg.input.id_column)
    return SegmentResult(
        cfg,
        model.cube,
        customers,
        scored,
        rejects,
        validated.rows_read,
        len(validated.rejects),
        fitted=cube is None,
        cube_source=str(cube) if cube is not None else str(input_path),
        warnings=warnings,
        saved_to=saved_to,
        registered=registered,
    )


def _levers(cube: object, table: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """The scored customers' rule levers (:mod:`models.levers`); none under Zadeh's operator."""
    from valuecube.models.levers import levers

    if cube.fuzzy_.operator != "weighted_average" or not len(ids):
        return pd.DataFrame(index=ids)
    return levers(cube.fuzzy_, cube.factors(table.loc[ids])).set_axis(ids)
