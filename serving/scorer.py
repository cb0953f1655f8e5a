"""The API's scoring engine: request records → output records, with requests batched together.

Requests that arrive together are scored together (micro-batching: while
one batch is scored, the next one gathers), which spreads the
fixed cost of a model call over many customers. A batch that fails is
scored again request by request, so a failure stays with the request that
caused it and never reaches its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field, TypeAdapter

from valuecube.features.columns import Columns, Table
from valuecube.features.customers import CUSTOMER_ID
from valuecube.features.record_schema import customer_record
from valuecube.models.packaged import PREDICTION_COLUMNS
from valuecube.serving.loading import LoadedModel
from valuecube.serving.output import churn_risk, scorable

MAX_BATCH_ROWS = 4096
"""Most customers scored in one model call when requests are batched together."""
INLINE_ROWS = 256
"""Batches up to this many customers (about 20 ms of scoring) are scored on the event loop.

A scoring thread holds the GIL for most of a call, so the loop, which reads
and validates the next requests, would get it only once per switch interval
(5 ms): on the loop a small batch finishes sooner, and the requests that came
meanwhile are read at full speed afterwards (docs/benchmarks.md §2.3). Larger
batches go to a thread, so that probes and request reading never wait long."""

log = logging.getLogger("valuecube.api")

Records = list[dict[str, Any]]


class ScoringError(RuntimeError):
    """A request's customers could not be scored (its own data; other requests are unaffected)."""


@dataclass
class _Pending:
    customers: Records
    future: asyncio.Future
    levers: bool = False


class Scorer:
    """A loaded model, its request record type, and the micro-batching queue."""

    def __init__(self, loaded: LoadedModel, max_customers: int, reasons: int = 0) -> None:
        self.loaded = loaded
        self.reasons = reasons  # churn_reasons lists per result (models/reasons.py)
        model = loaded.model
        self.record = customer_record(
            model.config.input,
            name=model.config.name,
            customer_columns=model.metadata.get("customer_columns"),
        )
        self.adapter = TypeAdapter(Annotated[list[self.record], Field(max_length=max_customers)])
        self.record_schema = TypeAdapter(self.record).json_schema()
        self.max_customers = max_customers
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()

    @property
    def id_field(self) -> str:
        """The request key holding the customer id."""
        spec = self.loaded.config.input
        return spec.id_column if spec.shape == "customer_table" else CUSTOMER_ID

    def frame(self, customers: Records) -> tuple[Table, np.ndarray]:
        """Validated records → the model's per-customer table (positional index) and the ids.

        A customer-table model gets :class:`~valuecube.features.columns.Columns`
        built straight from the records (pydantic has checked them): numbers
        as float64, text and categories as NumPy text (an object array of
        ``str`` and None where a value is missing), an
        omitted optional value as the config's ``missing``; the label column
        is not read. No frame: for a few customers its fixed cost is most of
        the scoring. A transaction-log model's per-customer table is a frame
        (its cube's BG/NBD transform takes one).
        """
        model = self.loaded.model
        spec = model.config.input
        n = len(customers)
        if spec.shape == "customer_table":
            typed: dict[str, np.ndarray] = {}
            ids = None
            for name, col in spec.columns.items():
                if name == spec.label_column:
                    continue
                values = [c.get(name) for c in customers]
                if name == spec.id_column:
                    ids = np.array([str(v) for v in values], dtype=object)
                elif col.type in ("int", "float"):
                    array = np.array(values, dtype="float64")  # None → NaN
                    if col.missing is not None:
                        array[np.isnan(array)] = float(col.missing)
                    typed[name] = array
                else:
                    fill = None if col.missing is None else str(col.missing)
                    text = [fill if v is None else v for v in values]
                    # NumPy text where nothing is missing: category lookups skip the missing test
                    typed[name] = np.array(text, dtype=object if None in text else str)
            return Columns(typed, np.arange(n)), ids
        rows = pd.DataFrame.from_records(customers, columns=model.input_columns)
        columns = model.metadata["customer_columns"]
        table = rows.set_index(CUSTOMER_ID)[columns].astype("float64")
        ids = table.index.to_numpy()
        table.index = pd.Index(np.arange(len(table)), name=CUSTOMER_ID)
        return table, ids

    def score(self, customers: Records, levers: bool = False) -> tuple[Records, dict[int, str]]:
        """Score validated records: output records and unscorable reasons, by position.

        The table is indexed by row position (a batch may hold the same
        customer twice, from two requests); the ids go back in after scoring.
        ``levers`` adds the rule's lever columns (:mod:`models.levers`).
        """
        table, ids = self.frame(customers)
        model = self.loaded.model
        table, factors, unscorable = scorable(model, table)
        full: Records = [{}] * len(customers)
        if len(factors):
            predictions = model.predict_columns(table, factors, self.reasons, levers)
            positions = np.asarray(predictions[CUSTOMER_ID], dtype=np.int64)
            predictions[CUSTOMER_ID] = ids[positions]
            now = pd.Timestamp.now(tz="UTC").floor("ms").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out = response_columns(predictions, self.loaded.name, self.loaded.version, now)
            records = [dict(zip(out, row, strict=True)) for row in zip(*out.values(), strict=True)]
            for p, record in zip(positions.tolist(), records, strict=True):
                full[p] = record
        return full, {int(k): v for k, v in unscorable.items()}

    async def submit(
        self, customers: Records, levers: bool = False
    ) -> tuple[Records, dict[int, str]]:
        """Queue a request's customers for the batch worker and wait for their results.

        ``levers`` asks for the rule's lever columns on this request's results.
        Raises :class:`ScoringError` when this request's customers cannot be scored.
        """
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(customers, future, levers))
        return await future

    async def worker(self) -> None:
        """Score queued requests in batches: all that wait (up to :data:`MAX_BATCH_ROWS`) at once.

        A batch of at most :data:`INLINE_ROWS` customers is scored on the event
        loop, a larger one in a thread; the requests that arrive meanwhile form
        the next batch.
        """
        while True:
            batch = [await self.queue.get()]
            await asyncio.sleep(0)  # requests already read finish validating and join this batch
            rows = len(batch[0].customers)
            while not self.queue.empty() and rows < MAX_BATCH_ROWS:
                batch.append(self.queue.get_nowait())
                rows += len(batch[-1].customers)
            levers = any(p.levers for p in batch)  # a batch computes them if one request asks
            try:
                everyone = list(chain.from_iterable(p.customers for p in batch))
                if len(everyone) <= INLINE_ROWS:
                    records, unscorable = self.score(everyone, levers)
                else:
                    records, unscorable = await asyncio.to_thread(self.score, everyone, levers)
            except Exception:
                if len(batch) == 1:
                    _fail(batch[0])
                else:  # find the request that fails; the others are scored alone
                    for p in batch:
                        await self._score_alone(p)
                continue
            start = 0
            for p in batch:
                n = len(p.customers)
                mine = {i - start: r for i, r in unscorable.items() if start <= i < start + n}
                mine_records = records[start : start + n]
                if levers and not p.levers:
                    mine_records = [_without_levers(r) for r in mine_records]
                if not p.future.done():
                    p.future.set_result((mine_records, mine))
                start += n

    async def _score_alone(self, pending: _Pending) -> None:
        try:
            result = await asyncio.to_thread(self.score, pending.customers, pending.levers)
        except Exception:
            _fail(pending)
            return
        if not pending.future.done():
            pending.future.set_result(result)


def response_columns(
    predictions: Mapping[str, Any], name: str, version: str, scored_at: str
) -> dict[str, list[Any]]:
    """The response fields as Python lists, in :func:`~valuecube.serving.output.output_rows`' order.

    ``predictions``: :meth:`~valuecube.models.packaged.ChurnSegmentModel.predict_columns`'
    arrays (or a frame of them). The same values as the batch output's rows,
    built straight from the prediction arrays (a request is a few customers:
    a frame per response costs more than the scoring). JSON has no NaN: a
    missing number is null.
    """
    fields: dict[str, list[Any]] = {}
    for column in PREDICTION_COLUMNS:
        fields[column] = _as_list(predictions[column])
    fields[CUSTOMER_ID] = [str(v) for v in fields[CUSTOMER_ID]]
    fields["churn_risk"] = churn_risk(np.asarray(predictions["churn_probability"])).tolist()
    n = len(fields[CUSTOMER_ID])
    fields.update(model_name=[name] * n, model_version=[version] * n, scored_at=[scored_at] * n)
    for column in predictions:
        if column not in PREDICTION_COLUMNS:
            fields[column] = _as_list(predictions[column])
    return fields


def _as_list(values: Any) -> list[Any]:
    """A column as Python values: floats with NaN as None, text as str, objects as they are."""
    if pd.api.types.is_float_dtype(values.dtype):
        array = np.asarray(values, dtype=np.float64)
        out = array.tolist()
        if np.isnan(array).any():
            out = [None if v != v else v for v in out]
        return out
    out = np.asarray(values).tolist()
    if out and isinstance(out[0], list):  # reasons: {factor, value, effect} lists
        return [[_json_safe(reason) for reason in reasons] for reasons in out]
    return out


def _json_safe(reason: dict[str, Any]) -> dict[str, Any]:
    """A reason with a NaN value as null (a lifetime input's value is not in the row: NaN)."""
    value = reason.get("value")
    return {**reason, "value": None} if isinstance(value, float) and value != value else reason


def _without_levers(record: dict[str, Any]) -> dict[str, Any]:
    """A result without the lever columns (its request did not ask for them)."""
    from valuecube.models.levers import LEVER_COLUMNS

    return {k: v for k, v in record.items() if k not in LEVER_COLUMNS}


def _fail(pending: _Pending) -> None:
    """Fail one request with :class:`ScoringError`, logging the cause."""
    log.exception("scoring a request of %d customers failed", len(pending.customers))
    if not pending.future.done():
        pending.future.set_exception(
            ScoringError("these customers could not be scored; check their values")
        )
