"""Reasons on every score: which factors raise and which lower a customer's churn probability.

Attribution method: **Integrated Gradients** (Sundararajan et al. 2017), by
the arithmetic of Captum's ``captum.attr.IntegratedGradients`` (PyTorch's
maintained interpretability library) with Gauss-Legendre steps; a test pins
the two equal bit for bit (:func:`integrated_gradients`). Its guarantee is
*completeness*: for each customer the attributions of all network inputs add
up to ``f(x) − f(baseline)``, up to the integral's numerical error (the
convergence delta).

* ``f`` is the churn **probability** (``sigmoid`` of the churn head; effects are
  in probability points) and, for a forecasting model, the expected spend
  (effects in the spend's currency units).
* The baseline is the training-mean input (the network's ``input_mean_``, i.e.
  the zero of its standardised inputs): an effect of +0.05 means "this factor,
  at this customer's value instead of the training average, adds 5 points".
  Integrated Gradients are invariant under the network's per-column
  standardisation, so attributing the standardised input is attributing X.
* For a purely linear head (``churn_head="wide"``) the logit attributions are
  exactly ``w_i·(x_i − mean_i)``; in probability points the sigmoid is not
  linear and Integrated Gradients distribute its curvature along the path.

Network input columns (:class:`~models.design.NetworkDesign`) are grouped back
to reported names, summing their attributions (sums keep completeness):
``u:``/``f:``/``r:`` columns → the factor; ``c:col=value`` one-hots → ``col``;
``x:col`` and ``c:col=…`` of a raw column that a factor copies or maps
(``factors: {tenure_months: {column: tenure}}``) → the factor, so a column and
its copy are reported once under the factor's name; ``h:col`` → ``col``;
``l:`` (the survival outputs used as inputs) → ``survival_12m``, …;
``s:``/``si:`` → the score (``_idle`` for the idle projection); ``g:``/``gi:`` →
``segment_now``/``segment_idle``.

The attributions are computed for all customers of a batch at once (the
batch is expanded over the integration steps; :data:`INTERNAL_BATCH` bounds
memory). The top-N choice is an ``argpartition`` over the customers × names
matrix and the JSON text is built column-wise with Arrow string kernels
(:func:`top_reasons`): no Python code runs per customer, except parsing the
text back into lists where a caller wants lists (the API, the pyfunc).
"""

from __future__ import annotations

import json
import weakref
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from valuecube.features.columns import Table, like
from valuecube.models.segments import SEGMENT_CODES
from valuecube.models.spend_loss import expected_spend

DEFAULT_REASONS = 3
"""How many raising and lowering reasons `score` and `serve` report by default."""
N_STEPS = 8
"""Integration steps (Gauss-Legendre) for the churn probability. Its completeness error (the
sum of the effects against ``p − p(baseline)``) must stay below :data:`CHURN_TOLERANCE`; on
the demo's Telco model (a wide, i.e. smooth, churn head) it is about 5e-7 with 8 steps and 8e-4
with 4 (docs/benchmarks.md). Each step is one forward and backward pass over the batch."""
SPEND_STEPS = 32
"""Steps for the expected spend: its head runs through ReLU layers, whose kinks make the
integral converge only as 1/steps (measured on the CDNOW test model, largest error 0.80 with
8 steps, 0.29 with 32, 0.072 with 128, for spends up to about 90)."""
CHURN_TOLERANCE = 1e-3
"""Largest completeness error allowed for churn effects, in probability points."""
SPEND_TOLERANCE = 1e-2
"""Largest completeness error allowed for spend effects, as a share of the batch's largest
expected spend (at least 1 currency unit)."""
MAX_STEPS = 128
"""Steps are quadrupled, up to this, while a batch's completeness error exceeds its tolerance."""
INTERNAL_BATCH = 65_536
"""Customers × steps evaluated per forward pass (bounds memory)."""


def _copied_columns(config: Any) -> dict[str, str]:
    """Raw column → the first factor that copies or maps it (``column:`` factors)."""
    copies: dict[str, str] = {}
    for name, spec in config.factors.items():
        column = getattr(spec, "column", None)
        if column is not None and column not in copies:
            copies[column] = name
    return copies


def group_names(columns: list[str], config: Any) -> list[str]:
    """The reported name of each network input column (see the module docstring)."""
    copies = _copied_columns(config)
    names = []
    for column in columns:
        prefix, _, rest = column.partition(":")
        if prefix in ("u", "f", "r"):
            names.append(rest)
        elif prefix in ("x", "c"):
            raw = rest.split("=", 1)[0]
            names.append(copies.get(raw, raw))
        elif prefix in ("h", "l"):
            names.append(rest)
        elif prefix == "s":
            names.append(rest)
        elif prefix == "si":
            names.append(f"{rest}_idle")
        elif prefix == "g":
            names.append("segment_now")
        elif prefix == "gi":
            names.append("segment_idle")
        else:
            names.append(column)
    return names


def _grouping(columns: list[str], config: Any) -> tuple[list[str], np.ndarray]:
    """``(groups, G)``: the distinct reported names and the 0/1 column → group matrix."""
    names = group_names(columns, config)
    groups = list(dict.fromkeys(names))
    index = {g: i for i, g in enumerate(groups)}
    matrix = np.zeros((len(columns), len(groups)))
    matrix[np.arange(len(columns)), [index[n] for n in names]] = 1.0
    return groups, matrix


_BASELINES: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, float]] = (
    weakref.WeakKeyDictionary()
)


def _baseline(module: torch.nn.Module, name: str, forward: Any, like_x: torch.Tensor) -> float:
    """Output ``name`` at the training-mean input (the standardised zero), once per fitted module.

    Every call of :func:`attribute` integrates from that input; a fit makes a
    new module, so a refitted network gets its own value.
    """
    values = _BASELINES.setdefault(module, {})
    if name not in values:
        with torch.no_grad():
            values[name] = float(forward(like_x.new_zeros((1, like_x.shape[1])))[0])
    return values[name]


def _targets(network: Any) -> dict[str, Any]:
    """Output name → a function of the standardised input giving one value per row."""
    module = network.module_
    targets = {"churn": lambda x: torch.sigmoid(module.churn_logit(x))}
    if getattr(network, "has_spend_head_", False):
        targets["spend"] = lambda x: expected_spend(network.spend_loss, module.spend(x)[2])
    return targets


@lru_cache(maxsize=16)
def _gauss_legendre(steps: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(step_sizes, alphas)``: Gauss-Legendre weights and nodes on [0, 1], as Captum's
    ``gausslegendre`` method takes them (``0.5·w`` and ``0.5·(1 + x)`` of ``leggauss``)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return tuple((0.5 * weights).tolist()), tuple((0.5 * (1 + nodes)).tolist())


def integrated_gradients(
    summed: Any, x: torch.Tensor, steps: int, steps_per_pass: int
) -> torch.Tensor:
    """Integrated Gradients of ``summed`` from a zero baseline to ``x`` (``n × F``).

    ``summed`` maps a ``(k, n, F)`` stack of scaled inputs to the ``k`` sums
    of the customers' outputs. This is the arithmetic of Captum's
    ``IntegratedGradients.attribute(x[None], baselines=0, n_steps=steps,
    method="gausslegendre", internal_batch_size=steps_per_pass)`` — the same
    operations in the same order, so the same bits (a test compares the two)
    — without its per-call set-up, which at one customer is most of the call,
    and without importing Captum (and matplotlib through it) when a process
    starts to serve.
    """
    step_sizes, alphas = _gauss_legendre(steps)
    total = None
    for start in range(0, steps, steps_per_pass):
        chunk = slice(start, min(start + steps_per_pass, steps))
        scaled = torch.cat([alpha * x for alpha in alphas[chunk]], dim=0).requires_grad_()
        k = len(alphas[chunk])
        with torch.enable_grad():
            (grads,) = torch.autograd.grad(summed(scaled.view(k, *x.shape)).sum(), scaled)
        weights = torch.tensor(step_sizes[chunk], dtype=torch.float32).view(k, 1)
        part = (grads.contiguous().view(k, -1) * weights).reshape(k, *x.shape).sum(dim=0) * x
        total = part if total is None else total + part
    return total


def attribute(
    model: Any, X: Table, n_steps: int | None = None
) -> dict[str, tuple[Table, float, np.ndarray]]:
    """Per output (``churn``, and ``spend`` for a forecasting model): grouped attributions.

    Returns, per output, ``(effects, baseline, delta)``: a customers × reported
    names frame of signed effects that add up to ``f(x) − baseline`` per row
    (up to ``delta``, the per-row gap between the effects' sum and
    ``f(x) − baseline``), the output at the training-mean input, and ``delta``.
    The effects are a frame for a frame ``X``, :class:`~features.columns.Columns`
    for ``Columns``.

    The batch is integrated as *one* example whose output is the sum of the
    customers' outputs. Each customer's output depends on its own row only,
    so the gradient of the sum with respect to row i is the gradient of
    output i, and Integrated Gradients of the sum are exactly every
    customer's own attributions, from one gradient per integration step
    instead of one per customer and step (:func:`integrated_gradients`).

    Steps: :data:`N_STEPS` for churn, :data:`SPEND_STEPS` for spend, quadrupled
    (up to :data:`MAX_STEPS`) while the batch's largest ``|delta|`` is above
    :data:`CHURN_TOLERANCE` / :data:`SPEND_TOLERANCE`; ``n_steps`` fixes the
    count for every output instead (benchmarks).
    """
    network = model.network
    groups, G = _grouping(tuple(X.columns), model.config)
    x = network.standardise(X).contiguous()
    n, width = x.shape
    steps_per_pass = max(1, INTERNAL_BATCH // max(n, 1))
    out = {}
    for name, forward in _targets(network).items():

        def summed(z: torch.Tensor, forward=forward) -> torch.Tensor:
            return forward(z.reshape(-1, width)).reshape(z.shape[0], -1).sum(dim=1)

        baseline = _baseline(network.module_, name, forward, x)
        with torch.no_grad():
            value = forward(x).reshape(-1).double().numpy()
        gap = value - baseline
        if name == "churn":
            tolerance = CHURN_TOLERANCE
        else:
            tolerance = SPEND_TOLERANCE * max(1.0, float(np.abs(value).max(initial=0.0)))
        steps = n_steps or (N_STEPS if name == "churn" else SPEND_STEPS)
        while True:
            raw = integrated_gradients(summed, x, steps, steps_per_pass).double().numpy()
            delta = raw.sum(axis=1) - gap
            if n_steps or steps >= MAX_STEPS or np.abs(delta).max(initial=0.0) <= tolerance:
                break
            steps = min(4 * steps, MAX_STEPS)
        out[name] = (like(X, raw @ G, groups), baseline, delta)
    return out


def reported_values(
    effects: Table, X: Table, customers: Table, factors: Table
) -> dict[str, np.ndarray]:
    """The customer's value of each reported name: the factor, the raw column, or the score."""
    values: dict[str, np.ndarray] = {}
    for group in effects.columns:
        if group in factors.columns:
            values[group] = np.asarray(factors[group])
        elif group in customers.columns:
            values[group] = np.asarray(customers[group])
        elif group in ("segment_now", "segment_idle"):
            prefix = "g" if group == "segment_now" else "gi"
            onehot = X[[f"{prefix}:segment={c}" for c in SEGMENT_CODES]].to_numpy()
            values[group] = np.asarray(SEGMENT_CODES, dtype=object)[onehot.argmax(axis=1)]
        elif f"l:{group}" in X.columns:  # a survival output used as an input
            values[group] = np.asarray(X[f"l:{group}"])
        else:
            score = group.removesuffix("_idle")
            column = f"si:{score}" if group.endswith("_idle") else f"s:{score}"
            values[group] = (
                np.asarray(X[column]) if column in X.columns else np.full(len(effects), np.nan)
            )
    return values


def pick_reasons(effects: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(picked, picked_effects, keep)``: per customer the top ``n`` raising then ``n`` lowering.

    ``picked`` (customers × 2k, k = min(n, names)) holds column indices of
    ``effects``: the k largest effects in decreasing order, then the k
    smallest in increasing order; ``keep`` is False where a "raising" effect
    is not positive or a "lowering" one not negative. One ``argpartition``
    per side over the customers × names matrix, then a sort of the k picked.
    """
    m, g = effects.shape
    k = min(n, g)
    rows = np.arange(m)[:, None]
    if k < g:
        up = np.argpartition(-effects, k - 1, axis=1)[:, :k]
        down = np.argpartition(effects, k - 1, axis=1)[:, :k]
    else:
        up = down = np.broadcast_to(np.arange(g), (m, g))
    up = np.take_along_axis(up, np.argsort(-effects[rows, up], axis=1, kind="stable"), axis=1)
    down = np.take_along_axis(down, np.argsort(effects[rows, down], axis=1, kind="stable"), axis=1)
    picked = np.concatenate([up, down], axis=1)
    picked_effects = effects[rows, picked]
    keep = np.concatenate([picked_effects[:, :k] > 0, picked_effects[:, k:] < 0], axis=1)
    return picked, picked_effects, keep


def _json_values(values: np.ndarray) -> pa.Array:
    """Each value as JSON text: a number rounded to 6 decimals, text quoted, NaN/missing null."""
    if values.dtype.kind in "fiub":
        numbers = pa.array(np.round(values.astype("float64"), 6))
        return pc.if_else(pc.is_finite(numbers), pc.cast(numbers, pa.string()), "null")
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    texts = pa.array([json.dumps(str(u)) for u in uniques] + ["null"], pa.string())
    return texts.take(pa.array(np.where(codes < 0, len(uniques), codes)))


def top_reasons(effects: Table, values: dict[str, np.ndarray], n: int) -> pa.Array:
    """Per customer, the JSON list of up to ``n`` raising then ``n`` lowering reasons (by |effect|).

    Each reason is ``{"factor": name, "value": the customer's value, "effect":
    signed probability points}`` (numbers rounded to 6 decimals; a missing
    value is ``null``). Built column-wise with Arrow string kernels: the
    picked (customer, name) values are formatted one name at a time, put
    back in slot order with one ``take``, and the objects joined per
    customer, so no Python code runs per customer.
    """
    e = effects.to_numpy(dtype="float64")
    m = len(e)
    picked, picked_effects, keep = pick_reasons(e, n)
    slots = picked.shape[1]
    flat = picked.T.ravel()  # slot-major: position j·m + i is customer i's slot j
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(len(effects.columns) + 1))
    row_of = np.tile(np.arange(m), slots)
    pieces = [
        _json_values(np.asarray(values[name])[row_of[order[lo:hi]]])
        for name, lo, hi in zip(effects.columns, bounds[:-1], bounds[1:], strict=True)
    ]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    formatted = pa.concat_arrays(pieces).take(pa.array(inverse)) if m else pa.array([], pa.string())
    names = pa.array([json.dumps(str(c)) for c in effects.columns], pa.string())
    items = []
    for j in range(slots):  # 2n slots, vectorised over customers
        effect = pc.cast(pa.array(np.round(picked_effects[:, j], 6)), pa.string())
        item = pc.binary_join_element_wise(
            '{"factor": ',
            names.take(pa.array(picked[:, j])),
            ', "value": ',
            formatted.slice(j * m, m),
            ', "effect": ',
            effect,
            "}, ",
            "",
        )
        items.append(pc.if_else(pa.array(keep[:, j]), item, ""))
    if not items:
        return pa.array(["[]"] * m, pa.string())
    # Each kept object ends in ", ", the others are empty; the last ", " is trimmed (an object
    # ends in "}"). Not null_handling="skip": pyarrow 25 drops trailing all-null rows with it.
    joined = pc.utf8_rtrim(pc.binary_join_element_wise(*items, ""), characters=", ")
    return pc.binary_join_element_wise("[", joined, "]", "")


def reason_lists(
    effects: Table, values: dict[str, np.ndarray], n: int
) -> list[list[dict[str, Any]]]:
    """Per customer the reasons of :func:`top_reasons` as lists of dicts, built directly.

    Equal to ``json.loads`` of :func:`top_reasons`' text for every customer
    (a test pins it), without the text: the API answers with these lists, and
    for a few customers the Arrow kernels' fixed cost is most of the work.
    """
    e = effects.to_numpy(dtype="float64")
    picked, picked_effects, keep = pick_reasons(e, n)
    names = [str(c) for c in effects.columns]
    columns = list(effects.columns)
    reported = {  # only the names some customer reports (a few, for a few customers)
        g: _python_values(np.asarray(values[columns[g]])) for g in np.unique(picked[keep]).tolist()
    }
    rounded = np.round(picked_effects, 6).tolist()
    return [
        [
            {"factor": names[g], "value": reported[g][i], "effect": effect}
            for g, effect, kept in zip(row, row_effects, row_keep, strict=True)
            if kept
        ]
        for i, (row, row_effects, row_keep) in enumerate(
            zip(picked.tolist(), rounded, keep.tolist(), strict=True)
        )
    ]


def _python_values(values: np.ndarray) -> list[Any]:
    """Values as :func:`_json_values` writes them, parsed back: numbers rounded to 6 decimals
    (integral ones as ints, as JSON text has them), text as str, NaN and missing as None."""
    if values.dtype.kind in "fiub":
        numbers = np.round(values.astype("float64"), 6)
        finite = np.isfinite(numbers)
        integral = finite & (numbers == np.trunc(numbers)) & (np.abs(numbers) < 1e15)
        out = numbers.tolist()
        for i in np.flatnonzero(~finite | integral):  # the few non-float cases only
            out[i] = int(numbers[i]) if integral[i] else None
        return out
    missing = pd.isna(values)
    return [None if gone else str(v) for v, gone in zip(values.tolist(), missing, strict=True)]


def reason_columns(
    model: Any,
    X: Table,
    customers: Table,
    factors: Table,
    n: int,
    as_text: bool = False,
) -> dict[str, Any]:
    """``churn_reasons`` (and ``spend_reasons`` for a forecasting model), one entry per customer.

    ``as_text`` gives the JSON strings as an Arrow-backed string array (files,
    Spark); otherwise a 1-D object array of lists of ``{factor, value,
    effect}`` (the API, the pyfunc's default).
    """
    if n <= 0:
        return {}
    out = {}
    for name, (effects, _, _) in attribute(model, X).items():
        values = reported_values(effects, X, customers, factors)
        if as_text:
            text = top_reasons(effects, values, n).to_numpy(zero_copy_only=False)
            out[f"{name}_reasons"] = pd.array(text, dtype="str")
        else:  # fromiter: np.array of equal-length lists would make them a 2-D array
            lists = reason_lists(effects, values, n)
            out[f"{name}_reasons"] = np.fromiter(lists, dtype=object, count=len(lists))
    return out


def reason_column_names(model: Any) -> tuple[str, ...]:
    """The reasons columns a model appends when asked: churn, and spend with the forecast heads."""
    return ("churn_reasons", "spend_reasons") if model.forecasts else ("churn_reasons",)


def reasons_params_schema() -> Any:
    """The pyfunc params schema: ``reasons`` (int, default 0: no reasons column),
    ``reasons_json`` (reasons as JSON text) and ``levers`` (the rule's lever columns)."""
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ParamSchema(
        [
            ParamSpec("reasons", "long", 0),
            ParamSpec("reasons_json", "boolean", False),
            ParamSpec("levers", "boolean", False),
        ]
    )


def as_json(reasons: pd.Series) -> pd.Series:
    """A column of reasons lists as JSON strings (the same text :func:`top_reasons` builds)."""
    return reasons.map(json.dumps)
