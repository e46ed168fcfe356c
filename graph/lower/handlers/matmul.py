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

__all__ = ["matmul", "input_zero_point", "qlinear_requant", "INTEGER_OPS"]

#: the integer ops whose activation input 2 is its zero point
INTEGER_OPS = ("MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv")


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
    b = b - input_zero_point(lowering, node)
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
        lowering.pending.steps.append(qlinear_requant(lowering, node, (1, 4, 6), 7,
                                                      out_shape))


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
    """The weights' zero point: one, or one per column (output feature).

    Raises
    ------
    GraphError
        For any other shape.
    """
    zero = np.asarray(lowering.constants.parameter(node, index, "zero point").value,
                      dtype=np.int64)
    weights = np.shape(lowering.constants[node.input[index - 2]].value)
    if zero.size != 1 and (zero.ndim != 1 or len(weights) != 2 or zero.size != weights[1]):
        raise node_error(node, f"has a weight zero point of shape {zero.shape} for weights "
                         f"of shape {weights}", "one weight zero point, or one per column")
    return zero.reshape(()) if zero.size == 1 else zero


def input_zero_point(lowering, node):
    """The activation's zero point of an integer MatMul or convolution (input 2 of
    :data:`INTEGER_OPS`; 0 for float ones and when it is absent).

    Raises
    ------
    GraphError
        If it is not one (per-tensor) value.
    """
    if node.op_type not in INTEGER_OPS or len(node.input) <= 2 or not node.input[2]:
        return 0
    zero = np.asarray(lowering.constants.parameter(node, 2, "zero point").value)
    if zero.size != 1:
        raise node_error(node, f"has an input zero point of shape {zero.shape}",
                         "one (per-tensor) zero point of the activation")
    return float(zero.ravel()[0])


def qlinear_requant(lowering, node, scales, zero, out_shape):
    """The Step of a QLinearMatMul's or QLinearConv's output requantization,
    ``saturate(round(acc * (x_scale * w_scale / y_scale)) + y_zero_point)`` in float32 (as
    onnxruntime computes it).

    Parameters
    ----------
    scales : tuple
        The input indices of ``x_scale``, ``w_scale`` and ``y_scale``.
    zero : int
        The input index of ``y_zero_point``.
    out_shape : tuple
        The node's output shape; ``w_scale`` may have one value per output channel (axis 1
        of a convolution's map, the last axis of a matrix product).

    Raises
    ------
    GraphError
        If a scale is not positive, ``x_scale``, ``y_scale`` or ``y_zero_point`` is not one
        value, or ``w_scale`` is neither one value nor one per output channel.
    """
    constants = lowering.constants
    x_scale, w_scale, y_scale = (np.asarray(constants.parameter(node, i, "scale").value,
                                            dtype=np.float32) for i in scales)
    y_zero = np.asarray(constants.parameter(node, zero, "zero point").value)
    for name, array in (("input scale", x_scale), ("output scale", y_scale),
                        ("output zero point", y_zero)):
        if array.size != 1:
            raise node_error(node, f"has an {name} of shape {array.shape}",
                             f"one (per-tensor) {name}")
    for array in (x_scale, w_scale, y_scale):
        if not np.all(np.isfinite(array) & (array > 0)):
            raise node_error(node, f"has a scale {array.ravel()[:4].tolist()} that is not "
                             f"positive", "positive finite scales")
    conv = node.op_type == "QLinearConv"
    channels = out_shape[1] if conv else out_shape[-1]
    if w_scale.size != 1:
        if w_scale.ndim != 1 or w_scale.size != channels:
            raise node_error(node, f"has a weight scale of shape {w_scale.shape} for "
                             f"{channels} output channels", "one weight scale, or one per "
                             "output channel")
        if conv:
            w_scale = w_scale.reshape((1, channels) + (1,) * (len(out_shape) - 2))
    x_scale, y_scale = x_scale.reshape(()), y_scale.reshape(())
    multiplier = (np.float32(x_scale * w_scale) / y_scale).astype(np.float32)
    info = np.iinfo(y_zero.dtype)
    offset = int(y_zero.ravel()[0])

    def requant(x):
        scaled = np.round(x.astype(np.float32) * multiplier)
        return np.clip(scaled + offset, info.min, info.max).astype(np.float64)
    return Step(node, "quantizer", requant, lowering.pending.index)


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
