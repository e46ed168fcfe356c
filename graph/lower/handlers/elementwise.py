"""Element-wise nodes: appended to the pending chain as reference calls.

Affine nodes (scales, biases, batch-norm, casts) keep integers affine; monotone ones
(Relu, Clip) keep them ordered; quantizers end the chain in levels that the next
materialization turns into thresholds.
"""

import numpy as np

from ...errors import node_error
from ...evaluate import NodeRunner
from ..declared import attribute, attribute_value
from ..pending import Step
from ..registry import handler

__all__ = ["affine", "monotone", "quantizer"]

FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
# ops whose inputs after the first are parameters, never the activation
FIRST_INPUT_OPS = ("BatchNormalization", "Quant", "BipolarQuant", "MultiThreshold",
                   "QuantizeLinear", "DequantizeLinear", "Trunc", "Clip")


@handler("Mul", "Add", "Sub", "Div", "BatchNormalization", "DequantizeLinear", "Cast", "Neg")
def affine(lowering, node):
    """Append an affine node to the pending chain.

    Raises
    ------
    GraphError
        If the node's operands, parameters or shapes are not supported.
    """
    _append(lowering, node, "affine")


@handler("Relu", "Clip")
def monotone(lowering, node):
    """Append a non-decreasing node to the pending chain (see :func:`affine`)."""
    _append(lowering, node, "monotone")


@handler("Quant", "BipolarQuant", "MultiThreshold", "QuantizeLinear", "Sign", "Trunc")
def quantizer(lowering, node):
    """Append a quantizer to the pending chain (see :func:`affine`)."""
    _append(lowering, node, "quantizer")


def _append(lowering, node, kind):
    pending = lowering.pending
    _check_operands(lowering, node, list(node.input).index(pending.tensor))
    in_shape = lowering.shape(pending.tensor, node)
    out_shape = lowering.shape(node.output[0], node)
    if in_shape != out_shape:
        raise node_error(node, f"changes the shape {in_shape} to {out_shape} (a constant "
                         f"operand broadcasts the activation)",
                         "constants that broadcast to the activation's shape")
    if node.op_type == "BatchNormalization" and len(node.output) > 1 and any(node.output[1:]):
        raise node_error(node, "is in training mode", "inference BatchNormalization")
    runner = NodeRunner(lowering.model, node, pending.tensor,
                        lowering.constants.values(node))
    pending.steps.append(Step(node, kind, runner, pending.index))
    pending.tensor = node.output[0]


def _check_operands(lowering, node, dyn_index):
    op = node.op_type
    if op == "Div" and dyn_index != 0:
        raise node_error(node, "divides a constant by the activation",
                         "Div of the activation by a constant")
    if op in FIRST_INPUT_OPS and dyn_index != 0:
        raise node_error(node, "has the activation as a parameter input",
                         "the activation as input 0")
    if op == "Cast" and attribute_value(node, "to") not in FLOAT_TYPES:
        raise node_error(node, "casts to a non-float type", "Cast to float types")
    if op in ("Quant", "BipolarQuant", "Trunc"):
        lowering.constants.check_quant(node)
    if op == "MultiThreshold":
        _check_multithreshold(lowering, node)


def _check_multithreshold(lowering, node):
    thresholds = np.asarray(lowering.constants.parameter(node, 1, "thresholds").value)
    if thresholds.ndim != 2:
        raise node_error(node, f"has thresholds of shape {thresholds.shape}",
                         "thresholds of shape (channels, T) or (1, T)")
    unsorted = np.any(np.diff(thresholds, axis=1) < 0, axis=1)
    if np.any(unsorted):
        row = int(np.flatnonzero(unsorted)[0])
        raise node_error(node, f"has unsorted thresholds (row {row}: "
                         f"{thresholds[row].tolist()[:6]})",
                         "thresholds sorted ascending in every row")
    if attribute(node, "out_dtype") is None:
        raise node_error(node, "has no out_dtype attribute",
                         "MultiThreshold with out_dtype")
