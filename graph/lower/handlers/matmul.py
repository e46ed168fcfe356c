"""Matrix products: the MVAU's accumulator.

The pending tensor is materialized as an integer stream ``x`` with values ``a * x + b``;
the weights become integers ``W`` with per-column scales, and the new pending tensor is the
accumulator ``W @ x`` with the float value ``A * acc + B`` that the ONNX node computes.
The MVAU itself is made when that accumulator is materialized.
"""

from dataclasses import dataclass

import numpy as np

from ...errors import node_error
from ..constants import weight_dtype
from ..declared import attributes
from ..pending import Pending, Step
from ..registry import handler
from ..thresholds import materialize_for

__all__ = ["matmul"]


@dataclass
class _Weights:
    """A weight matrix ``(in features, out features)``: ``value == scale * q``, and how the
    node scales and offsets its product (Gemm's ``alpha``, ``beta``, ``bias``)."""
    q: np.ndarray
    scale: np.ndarray
    value: np.ndarray
    declared: str
    alpha: float = 1.0
    beta: float = 1.0
    bias: np.ndarray = None
    float_out: bool = True


@handler("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul")
def matmul(lowering, node):
    """Make the pending tensor the accumulator of an MVAU with the node's weights.

    Raises
    ------
    GraphError
        If the activation is not the left operand of 2-D constant weights, or the weights
        cannot be made integer against the input's scales.
    """
    pending = lowering.pending
    if node.input[0] != pending.tensor:
        raise node_error(node, "has the activation as its right operand",
                         "activation @ constant weights")
    shape = lowering.shape(pending.tensor, node)
    if len(shape) != 2:
        raise node_error(node, f"has an input of shape {shape}",
                         "2-D (batch, features) inputs; Flatten first")
    w = _weights(lowering, node)
    if w.value.ndim != 2 or w.value.shape[0] != shape[1]:
        raise node_error(node, f"has weights of shape {w.value.shape} for inputs of shape "
                         f"{shape}", "2-D weights (in features, out features)")
    stream, a, b = materialize_for(lowering, node)
    b = b - _input_zero_point(lowering, node, b.shape)
    perm = lowering.pending.index.ravel()  # feature k -> stream element
    a_k, b_k = a[perm], b[perm]
    unit = a_k[:, None] * np.asarray(w.scale, dtype=np.float64)
    weights_int, colscale = _integer_weights(node, w.q, unit)
    acc_weights = np.zeros((w.q.shape[1], stream.channels), dtype=np.int64)
    acc_weights[:, perm] = weights_int.T
    offset = b_k @ w.value
    if node.op_type == "Gemm":
        colscale = colscale * w.alpha
        offset = offset * w.alpha
        if w.bias is not None:
            offset = offset + w.beta * np.broadcast_to(w.bias.reshape(-1), offset.shape)
    out_shape = lowering.shape(node.output[0], node)
    lowering.pending = Pending("acc", node.output[0],
                               np.arange(w.q.shape[1]).reshape(out_shape),
                               stream=stream, weights=acc_weights, acc_scale=colscale,
                               acc_offset=offset, acc_float32=w.float_out, node=node,
                               weight_type=weight_dtype(acc_weights, w.declared))
    if node.op_type == "QLinearMatMul":
        lowering.pending.steps.append(_qlinear_requant(lowering, node))


def _weights(lowering, node):
    """The node's :class:`_Weights`, with zero points subtracted and Gemm's transB
    applied."""
    op = node.op_type
    index = 3 if op == "QLinearMatMul" else 1
    const = lowering.constants.parameter(node, index, "weight")
    q, scale, declared = lowering.constants.weights(node, const, node.input[index])
    w = _Weights(q, scale, np.asarray(const.value, dtype=np.float64), declared)
    if op == "Gemm":
        _gemm(lowering, node, w)
    elif op == "MatMulInteger":
        w.float_out = False
        if len(node.input) > 3 and node.input[3]:
            zero = _integer_parameter(lowering, node, 3)
            w.q, w.value = w.q - zero, w.value - zero
            w.scale = np.ones_like(w.value)
    elif op == "QLinearMatMul":
        w.float_out = False
        w.q = w.q - _integer_parameter(lowering, node, 5)
        w.value = w.q.astype(np.float64)
        w.scale = np.ones_like(w.value)
    return w


def _gemm(lowering, node, w):
    attrs = attributes(node)
    if attrs.get("transA", 0):
        raise node_error(node, "has transA=1", "Gemm with transA=0")
    w.alpha, w.beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if attrs.get("transB", 0):
        w.q, w.scale, w.value = w.q.T, w.scale.T, w.value.T
    if len(node.input) > 2 and node.input[2]:
        w.bias = np.asarray(lowering.constants.parameter(node, 2, "bias").value,
                            dtype=np.float64)


def _integer_parameter(lowering, node, index):
    return np.asarray(lowering.constants.parameter(node, index, "zero point").value,
                      dtype=np.int64)


def _input_zero_point(lowering, node, shape):
    """The activation's zero point of an integer MatMul (0 for float ones)."""
    if node.op_type not in ("MatMulInteger", "QLinearMatMul") or len(node.input) <= 2:
        return 0
    zero = lowering.constants.get(node.input[2])
    if zero is None:
        return 0
    return np.broadcast_to(np.asarray(zero.value, dtype=np.float64), shape)


def _qlinear_requant(lowering, node):
    """The Step of a QLinearMatMul's output requantization."""
    constants = lowering.constants
    a_scale, b_scale, y_scale = (np.float32(constants[node.input[i]].value)
                                 for i in (1, 4, 6))
    y_zero = constants[node.input[7]].value
    multiplier = np.float32(np.float32(a_scale * b_scale) / y_scale)
    info = np.iinfo(np.asarray(y_zero).dtype)

    def requant(x):
        scaled = np.round(x.astype(np.float32) * multiplier)
        return np.clip(scaled + int(y_zero), info.min, info.max).astype(np.float64)
    return Step(node, "quantizer", requant, np.arange(lowering.pending.channels)[None])


def _integer_weights(node, q, unit):
    """Integer weights ``(K, N)`` and per-column scales ``(N,)`` with
    ``unit * q == colscale * weights`` (``unit``: input scale times weight scale)."""
    magnitude = np.where(q != 0, np.abs(unit), np.inf)
    colscale = magnitude.min(axis=0)
    colscale = np.where(np.isfinite(colscale) & (colscale > 0), colscale, 1.0)
    ratio = unit / colscale
    rounded = np.round(ratio)
    bad = (q != 0) & (np.abs(ratio - rounded) > 1e-6 * np.maximum(np.abs(ratio), 1))
    if bad.any():
        k, n = np.argwhere(bad)[0]
        raise node_error(node, f"weights cannot be made integer: the scale of input {k} times "
                         f"the weight scale of output {n} is {ratio[k, n]:.6g} times the "
                         f"column's smallest", "per-tensor activation scales, or scales in "
                         "integer ratios")
    return (rounded * q).astype(np.int64), colscale
