"""A fixed evaluation split per dataset, defined by a hash of the customer id.

Every model of a dataset holds out the same customers, whatever its seed: a
customer is an *evaluation* customer when the SHA-256 of its id, read as a
number in [0, 1), is below :data:`EVALUATION_FRACTION`. Nothing trains, tunes
or early-stops on them, so two models of the dataset can be compared on them
fairly (the promotion gate, :mod:`valuecube.training.promotion`). The rest is
split into train and validation by the seed, stratified on churn.

The hash is computed from the id alone (not the row position, the file or
the seed), so it survives re-ordering, appended customers and new snapshots
of the same customers.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from valuecube.training.splits import Split

EVALUATION_FRACTION = 0.2
"""Share of customers (by id hash) held out for evaluation in every model of a dataset."""
VALIDATION_FRACTION = 0.2
"""Share of all customers (from the non-evaluation ones) for early stopping and tuning."""


def id_hash_unit(ids: pd.Index | np.ndarray) -> np.ndarray:
    """Each id's SHA-256, its first 8 bytes read as an integer and scaled to [0, 1).

    A deterministic, platform-independent number per id (Python's ``hash`` is
    salted per process, pandas' hashing is not promised stable across versions).
    """
    digests = [hashlib.sha256(str(i).encode("utf-8")).digest()[:8] for i in ids]
    as_int = np.frombuffer(b"".join(digests), dtype=">u8") if digests else np.array([], ">u8")
    return as_int.astype(np.float64) / 2.0**64


def is_evaluation(ids: pd.Index | np.ndarray, fraction: float = EVALUATION_FRACTION) -> np.ndarray:
    """Boolean mask: which ids belong to the dataset's fixed evaluation split."""
    return id_hash_unit(ids) < fraction


def evaluation_split(
    table: pd.DataFrame,
    *,
    seed: int = 0,
    fraction: float = EVALUATION_FRACTION,
    validation_size: float = VALIDATION_FRACTION,
) -> Split:
    """Test = the hash-defined evaluation customers; train/validation = a seeded split of the rest.

    ``validation_size`` is a fraction of all customers, as in
    :func:`~valuecube.training.splits.split_customers`.
    """
    held_out = is_evaluation(table.index, fraction)
    rest = table.index[~held_out]
    stratify = table.loc[rest, "churn"].to_numpy() if "churn" in table.columns else None
    train, validation = train_test_split(
        rest.to_numpy(dtype=object),
        test_size=validation_size / (1 - fraction),
        random_state=seed,
        stratify=stratify,
    )
    return Split(pd.Index(train), pd.Index(validation), table.index[held_out])


def with_evaluation_split(data, *, seed: int = 0):
    """``data`` (a ``TrainingData``) with :func:`evaluation_split` as its split."""
    return dataclasses.replace(data, split=evaluation_split(data.customers.table, seed=seed))


def cover_segments(data, cube):
    """Move validation customers whose fuzzy segment no training customer has into training.

    The network learns only the segments it sees in training and cannot score a
    validation customer of another one; a rare segment (a handful of customers)
    can fall entirely into validation by chance. Evaluation customers are never
    moved. ``cube`` is the value cube fitted on the training customers.
    """
    table, split = data.customers.table, data.split
    seen = set(cube.fuzzy_.predict(cube.factors(table.loc[split.train])))
    segment = cube.fuzzy_.predict(cube.factors(table.loc[split.validation]))
    unseen = ~np.isin(np.asarray(segment, dtype=object), list(seen))
    if not unseen.any():
        return data
    moved = split.validation[unseen]
    return dataclasses.replace(
        data,
        split=Split(split.train.append(moved), split.validation[~unseen], split.test),
    )
