"""Optuna studies shared by several processes, without repeated trials or inherited old ones.

* A study is named. ``train`` without ``--study`` makes a new name per call
  (:func:`new_study_name`), so an RDB storage never silently feeds old trials
  into a new training.
* Each process (``worker``) samples with its own TPE seed, derived from the
  study name and the worker index (:func:`worker_seed`), and TPE's
  ``constant_liar`` keeps concurrent workers away from the points others are
  evaluating: two processes on one study run different trials. The data split
  stays fixed by the dataset seed, so all trials are comparable.
* Workers only tune (:func:`run_worker`, ``train --tune-only``); one
  ``train --from-study NAME`` then retrains the best trial and registers it
  once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path

import optuna
from mlflow.exceptions import MlflowException

import mlflow
from valuecube.features.config import DatasetConfig, load_config


def new_study_name(dataset: str) -> str:
    """A fresh study name: ``valuecube-<dataset>-<UTC time>-<random>``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"valuecube-{dataset}-{stamp}-{secrets.token_hex(3)}"


def worker_seed(study_name: str, worker: int) -> int:
    """A sampler seed per (study, worker): SHA-256 of ``"<study>#<worker>"``, 31 bits."""
    digest = hashlib.sha256(f"{study_name}#{worker}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def open_study(
    name: str, *, storage: str | None, worker: int = 0, seed: int = 0, shared: bool = True
) -> optuna.Study:
    """Create or join the minimising study ``name`` (TPE with a per-worker seed, median pruning).

    A ``shared`` (named) study seeds each worker's sampler from the study name
    and the worker index; a fresh per-train study from the dataset ``seed``
    (plus the worker index), so the same ``train`` call reproduces its trials. The
    study remembers the dataset seed of its first worker and refuses another
    one: trials on different splits are not comparable.
    """
    sampler_seed = worker_seed(name, worker) if shared else seed + worker
    study = optuna.create_study(
        study_name=name,
        storage=_storage(storage),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed, constant_liar=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=10),
        load_if_exists=True,
    )
    first = study.user_attrs.get("dataset_seed")
    if first is None:
        study.set_user_attr("dataset_seed", seed)
    elif first != seed:
        raise ValueError(
            f"study {name!r} tunes on the split of seed {first}, not {seed}: pass --seed {first}"
        )
    return study


def _storage(url: str | None) -> str | optuna.storages.BaseStorage | None:
    """The study's storage; a SQLite file is created under a file lock.

    Optuna writes a new database's schema version on first open: two workers
    opening the same new SQLite file at once both write it, and one fails
    (``UNIQUE constraint failed: alembic_version``). The lock lets the first
    create it; the others then open an existing database.
    """
    if url is None or not url.startswith("sqlite:///"):
        return url
    from filelock import FileLock

    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=120):
        return optuna.storages.RDBStorage(url)


def finished_study(name: str, storage: str | None) -> optuna.Study:
    """An existing study with a complete trial (for ``--from-study``); a clear error otherwise."""
    if storage is None:
        raise ValueError("--from-study needs --storage (the RDB URL the study lives in)")
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError as exc:
        known = optuna.get_all_study_names(storage)
        raise ValueError(
            f"no study {name!r} in {storage}; studies there: {', '.join(known) or 'none'}"
        ) from exc
    if not study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        raise ValueError(f"study {name!r} has no complete trial yet")
    return study


def run_worker(
    config: str | Path | DatasetConfig,
    input_path: str | Path | None = None,
    *,
    study: str,
    storage: str,
    worker: int = 0,
    trials: int = 10,
    experiment: str | None = None,
    seed: int = 0,
    max_epochs: int = 150,
    patience: int = 15,
) -> optuna.Study:
    """Run ``trials`` trials of the shared study in this process and log them; register nothing."""
    from valuecube.training.tracking import configure_tracking, ensure_experiment
    from valuecube.training.train import _tune, prepare

    configure_tracking()
    cfg = config if isinstance(config, DatasetConfig) else load_config(config)
    try:
        ensure_experiment(experiment or f"valuecube-{cfg.name}")
    except MlflowException:  # another worker created the experiment at the same moment
        ensure_experiment(experiment or f"valuecube-{cfg.name}")
    prepared = prepare(cfg, input_path, seed=seed)
    with mlflow.start_run(run_name=f"tune-{cfg.name}-w{worker}"):
        mlflow.log_params({"study": study, "worker": worker, "seed": seed, "trials": trials})
        return _tune(
            cfg,
            prepared.parts,
            trials=trials,
            storage=storage,
            seed=seed,
            max_epochs=max_epochs,
            patience=patience,
            show_progress=False,
            fixed=prepared.fixed,
            study_name=study,
            worker=worker,
        )
