"""Reasons on every score: which factors raise and which lower a customer's churn probability.

Attribution method: **Integrated Gradients** (Sundararajan et al. 2017) from
Captum (``captum.attr.IntegratedGradients``, PyTorch's maintained
interpretability library). Its guarantee is *completeness*: for each customer
the attributions of all network inputs add up to ``f(x) − f(baseline)``, up to
the integral's numerical error, which Captum reports as the convergence delta.

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
``s:``/``si:`` → the score (``_idle`` for the idle projection); ``g:``/``gi:`` →
``segment_now``/``segment_idle``.

The attributions are computed for all customers of a batch at once (Captum
expands the batch over the integration steps; ``internal_batch_size`` bounds
memory). Only the final conversion to JSON-friendly lists is per row.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients

from valuecube.models.segments import SEGMENT_CODES
from valuecube.models.spend_loss import expected_spend

DEFAULT_REASONS = 3
"""How many raising and lowering reasons `score` and `serve` report by default."""
N_STEPS = 32
"""Integration steps (Gauss-Legendre): the convergence delta stays below 1e-3 on Telco."""
INTERNAL_BATCH = 65_536
"""Customers × steps evaluated per forward pass inside Captum (bounds memory)."""


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
        elif prefix == "h":
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


def _targets(network: Any) -> dict[str, Any]:
    """Output name → a function of the standardised input giving one value per row."""
    module = network.module_
    targets = {"churn": lambda x: torch.sigmoid(module.churn_logit(x))}
    if getattr(network, "has_spend_head_", False):
        targets["spend"] = lambda x: expected_spend(network.spend_loss, module.spend(x)[2])
    return targets


def attribute(model: Any, X: pd.DataFrame) -> dict[str, tuple[pd.DataFrame, float, np.ndarray]]:
    """Per output (``churn``, and ``spend`` for a forecasting model): grouped attributions.

    Returns, per output, ``(effects, baseline, delta)``: a customers × reported
    names frame of signed effects that add up to ``f(x) − baseline`` per row
    (up to ``delta``, the per-row gap between the effects' sum and
    ``f(x) − baseline``), the output at the training-mean input, and ``delta``.

    The batch goes to Captum as *one* example of shape ``(1, n, F)`` whose
    output is the sum of the customers' outputs. Each customer's output
    depends on its own row only, so the gradient of the sum with respect to
    row i is the gradient of output i, and Integrated Gradients of the sum
    are exactly every customer's own attributions; Captum then takes one
    gradient per integration step instead of one per customer and step.
    """
    network = model.network
    groups, G = _grouping(list(X.columns), model.config)
    x = network.standardise(X)
    n, width = x.shape
    zero = torch.zeros_like(x)
    steps_per_pass = max(1, INTERNAL_BATCH // max(n, 1))
    out = {}
    for name, forward in _targets(network).items():

        def summed(z: torch.Tensor, forward=forward) -> torch.Tensor:
            return forward(z.reshape(-1, width)).reshape(z.shape[0], -1).sum(dim=1)

        attributions = IntegratedGradients(summed).attribute(
            x.unsqueeze(0),
            baselines=zero.unsqueeze(0),
            n_steps=N_STEPS,
            internal_batch_size=steps_per_pass,
        )[0]
        with torch.no_grad():
            baseline = float(forward(zero[:1])[0])
            gap = forward(x).reshape(-1).double().numpy() - baseline
        raw = attributions.detach().double().numpy()
        out[name] = (
            pd.DataFrame(raw @ G, index=X.index, columns=groups),
            baseline,
            raw.sum(axis=1) - gap,
        )
    return out


def reported_values(
    effects: pd.DataFrame, X: pd.DataFrame, customers: pd.DataFrame, factors: pd.DataFrame
) -> pd.DataFrame:
    """The customer's value of each reported name: the factor, the raw column, or the score."""
    values = {}
    for group in effects.columns:
        if group in factors.columns:
            values[group] = factors[group].to_numpy()
        elif group in customers.columns:
            values[group] = customers[group].to_numpy()
        elif group in ("segment_now", "segment_idle"):
            prefix = "g" if group == "segment_now" else "gi"
            onehot = X[[f"{prefix}:segment={c}" for c in SEGMENT_CODES]].to_numpy()
            values[group] = np.asarray(SEGMENT_CODES, dtype=object)[onehot.argmax(axis=1)]
        else:
            score = group.removesuffix("_idle")
            column = f"si:{score}" if group.endswith("_idle") else f"s:{score}"
            values[group] = X[column].to_numpy() if column in X.columns else np.nan
    return pd.DataFrame(values, index=effects.index)


def top_reasons(effects: pd.DataFrame, values: pd.DataFrame, n: int) -> list[list[dict]]:
    """Per customer, up to ``n`` raising then up to ``n`` lowering reasons, by |effect|.

    Each reason is ``{"factor": name, "value": the customer's value, "effect":
    signed probability points}``. The ranking is one vectorised ``argsort``.
    """
    e = effects.to_numpy()
    order = np.argsort(-e, axis=1)  # most raising first
    raising = order[:, :n]
    lowering = order[:, ::-1][:, :n]  # most lowering first
    names = np.asarray(effects.columns, dtype=object)
    v = values.to_numpy(dtype=object)
    rows = np.arange(len(e))[:, None]
    picked = np.concatenate([raising, lowering], axis=1)
    picked_e = e[rows, picked]
    keep = np.concatenate([picked_e[:, :n] > 0, picked_e[:, n:] < 0], axis=1)
    picked_v = v[rows, picked]
    picked_n = names[picked]
    return [
        [
            {"factor": str(f), "value": _plain(val), "effect": round(float(eff), 6)}
            for f, val, eff, k in zip(fs, vs, es, ks, strict=True)
            if k
        ]
        for fs, vs, es, ks in zip(picked_n, picked_v, picked_e, keep, strict=True)
    ]


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar."""
    if isinstance(value, (np.floating, float)):
        return round(float(value), 6)
    if isinstance(value, (np.integer, int, np.bool_)):
        return int(value)
    return str(value)


def reason_columns(
    model: Any, X: pd.DataFrame, customers: pd.DataFrame, factors: pd.DataFrame, n: int
) -> dict[str, list[list[dict]]]:
    """``churn_reasons`` (and ``spend_reasons`` for a forecasting model): per-customer lists."""
    if n <= 0:
        return {}
    out = {}
    for name, (effects, _, _) in attribute(model, X).items():
        values = reported_values(effects, X, customers, factors)
        out[f"{name}_reasons"] = top_reasons(effects, values, n)
    return out


def reason_column_names(model: Any) -> tuple[str, ...]:
    """The reasons columns a model appends when asked: churn, and spend with the forecast heads."""
    return ("churn_reasons", "spend_reasons") if model.forecasts else ("churn_reasons",)


def reasons_params_schema() -> Any:
    """The pyfunc params schema: ``reasons`` (int, default 0: no reasons column)."""
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ParamSchema(
        [ParamSpec("reasons", "long", 0), ParamSpec("reasons_json", "boolean", False)]
    )


def as_json(reasons: pd.Series) -> pd.Series:
    """A reasons column as JSON strings (for Parquet and CSV outputs)."""
    return reasons.map(json.dumps)
