"""The fitted BP network as plain NumPy arrays: exported from torch, run in NumPy, rebuilt in torch.

Scoring a customer needs neither autograd nor torch itself: a fitted
:class:`~models.network.BPNetworkClassifier` keeps its best-validation
snapshots (:class:`~models.network_heads.HeadSnapshots`) as these arrays, pickles
them instead of the torch module, and runs its forward pass with
:func:`forward` — so loading a model for scoring never imports torch (about
4–6 s of start-up on this project's machines). Training and the reasons'
attributions (Integrated Gradients) use the torch module, which :func:`build_snapshots`
rebuilds from the arrays on first use.

The arrays of one snapshot (:class:`~models.network_heads.TwoHeadMLP`), each
``(weight, bias)`` with ``weight`` of shape ``(out, in)`` as in ``nn.Linear``
(``bias`` ``None`` where the layer has none; a head the network lacks is
``None``): ``hidden`` (a list), ``segment``, ``churn_deep``, ``churn_wide``,
``spend_deep``, ``spend_wide``, and ``dropout`` (a float). The whole network
is ``{"segment": …, "churn": …, "spend": …}``, where ``churn`` or ``spend`` is
the string ``"segment"`` when that head's best epoch was the segment's (one
shared snapshot, one pass) and ``None`` without that head.

The forward pass runs in float64 on the float32 weights and inputs the
torch module uses: a float32 matrix product's rounding depends on how many
rows it is given (BLAS blocks them), so a customer's score would differ in
the 8th digit between a chunk of 16 and one of 100,000; in float64 it does
not, beyond 1e-15. The outputs agree with torch's float32 forward to float32
rounding, not bit for bit (docs/benchmarks.md gives the measured difference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Layer = tuple[np.ndarray, np.ndarray | None]
Snapshot = dict[str, Any]
SHARED = "segment"
"""Marks a head whose snapshot is the segment head's (the same weights)."""
_LAYERS = ("segment", "churn_deep", "churn_wide", "spend_deep", "spend_wide")


def _layer(linear: Any) -> Layer | None:
    if linear is None:
        return None
    bias = None if linear.bias is None else linear.bias.detach().cpu().numpy().copy()
    return linear.weight.detach().cpu().numpy().copy(), bias


def snapshot_arrays(snapshots: Any) -> dict[str, Snapshot | str | None]:
    """The arrays of a fitted :class:`~models.network_heads.HeadSnapshots` (see the docstring)."""

    def one(net: Any) -> Snapshot:
        names = {"segment": "segment_head"}
        arrays: Snapshot = {name: _layer(getattr(net, names.get(name, name))) for name in _LAYERS}
        arrays["hidden"] = [_layer(layer) for layer in net.hidden]
        arrays["dropout"] = float(net.dropout)
        return arrays

    def other(net: Any) -> Snapshot | str | None:
        if net is None:
            return None
        return SHARED if net is snapshots.segment else one(net)

    return {
        "segment": one(snapshots.segment),
        "churn": other(snapshots.churn),
        "spend": other(snapshots.spend),
    }


def _linear(x: np.ndarray, layer: Layer) -> np.ndarray:
    weight, bias = layer
    out = x.astype(np.float64, copy=False) @ weight.T.astype(np.float64)
    if bias is not None:
        out += bias
    return out


def _heads(net: Snapshot, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One snapshot's ``(segment_logits, churn_logit, spend_outputs)`` (eval mode: no dropout)."""
    h = x
    for layer in net["hidden"]:
        h = _linear(h, layer)
        np.maximum(h, 0, out=h)
    churn = None if net["churn_deep"] is None else _linear(h, net["churn_deep"])
    if net["churn_wide"] is not None:
        wide = _linear(x, net["churn_wide"])
        churn = wide if churn is None else churn + wide
    spend = None
    if net["spend_deep"] is not None:
        spend = _linear(h, net["spend_deep"]) + _linear(x, net["spend_wide"])
    return _linear(h, net["segment"]), None if churn is None else churn[:, 0], spend


def segment_logits(net: Snapshot, x: np.ndarray) -> np.ndarray:
    """One snapshot's segment logits alone."""
    h = x
    for layer in net["hidden"]:
        h = _linear(h, layer)
        np.maximum(h, 0, out=h)
    return _linear(h, net["segment"])


def _churn_logit(net: Snapshot, x: np.ndarray) -> np.ndarray | None:
    """The churn logit alone: the hidden layers only run when the deep path reads them."""
    if net["churn_deep"] is not None:
        return _heads(net, x)[1]
    return None if net["churn_wide"] is None else _linear(x, net["churn_wide"])[:, 0]


FORWARD_ROWS = 4096
"""Rows per block of the forward pass: a block's float64 temporaries (4096 × 128 × 8 bytes =
4 MB for the demo's widest layer) stay in the CPU cache and are reused from the allocator,
where a whole chunk's (100 MB) would be mapped and zeroed by the kernel afresh."""


def forward(
    arrays: dict[str, Any],
    x: np.ndarray,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Segment logits, churn logit and spend outputs of the rows ``x``, per snapshot.

    The NumPy twin of :meth:`models.network_heads.HeadSnapshots.forward`,
    :data:`FORWARD_ROWS` rows at a time: each row's outputs depend on that row
    only, and the blocks change them only at float64 rounding (BLAS orders a
    block's sums by its row count; a test pins 1e-12). ``prepare`` makes a
    block of ``x`` the float64 input the layers take; by default ``x`` is the
    standardised input already, as float32. The network passes its checked,
    unstandardised rows and its standardisation instead.
    """
    prepare = _as_float64 if prepare is None else prepare
    if len(x) <= FORWARD_ROWS:
        return _forward_block(arrays, prepare(x))
    blocks = [
        _forward_block(arrays, prepare(x[s : s + FORWARD_ROWS]))
        for s in range(0, len(x), FORWARD_ROWS)
    ]
    return tuple(  # type: ignore[return-value]
        None if blocks[0][i] is None else np.concatenate([block[i] for block in blocks])
        for i in range(3)
    )


def _as_float64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64)  # once for every layer that reads the input


def _forward_block(
    arrays: dict[str, Any], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    segment, churn, spend = _heads(arrays["segment"], x)
    if isinstance(arrays["churn"], dict):
        churn = _churn_logit(arrays["churn"], x)
    if isinstance(arrays["spend"], dict):
        spend = _heads(arrays["spend"], x)[2]
    return segment, churn, spend


def churn_logit(arrays: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    """The churn logit from the churn snapshot (``None`` without a churn head)."""
    which = arrays["churn"]
    if which is None:
        return None
    return _churn_logit(arrays["segment"] if which == SHARED else which, x)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (as ``torch.softmax(logits.double(), dim=1)``)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def sigmoid(logit: np.ndarray) -> np.ndarray:
    """The logistic function in float64, without overflow for large negative logits."""
    from scipy.special import expit  # scipy is loaded with scikit-learn already

    return expit(logit.astype(np.float64))


def build_snapshots(arrays: dict[str, Any]) -> Any:
    """The torch :class:`~models.network_heads.HeadSnapshots` these arrays describe (eval mode)."""
    import torch

    from valuecube.models.network_heads import HeadSnapshots, TwoHeadMLP

    def one(net: Snapshot) -> TwoHeadMLP:
        hidden = [w.shape[0] for w, _ in net["hidden"]]
        n_features = net["hidden"][0][0].shape[1] if hidden else net["segment"][0].shape[1]
        deep, wide = net["churn_deep"] is not None, net["churn_wide"] is not None
        head = {(True, True): "wide_deep", (True, False): "deep", (False, True): "wide"}
        module = TwoHeadMLP(
            n_features=n_features,
            hidden_layers=hidden,
            dropout=net["dropout"],
            n_classes=net["segment"][0].shape[0],
            churn_head=head.get((deep, wide)),
            n_spend_outputs=0 if net["spend_deep"] is None else net["spend_deep"][0].shape[0],
        )
        targets = {"segment": module.segment_head} | {
            name: getattr(module, name) for name in _LAYERS if name != "segment"
        }
        pairs = [(targets[name], net[name]) for name in _LAYERS]
        pairs += list(zip(module.hidden, net["hidden"], strict=True))
        with torch.no_grad():
            for linear, layer in pairs:
                if linear is None:
                    continue
                linear.weight.copy_(torch.from_numpy(layer[0]))
                if layer[1] is not None:
                    linear.bias.copy_(torch.from_numpy(layer[1]))
        return module.eval()

    segment = one(arrays["segment"])

    def other(which: Snapshot | str | None) -> TwoHeadMLP | None:
        if which is None:
            return None
        return segment if which == SHARED else one(which)

    return HeadSnapshots(segment, other(arrays["churn"]), other(arrays["spend"])).eval()
