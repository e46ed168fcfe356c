"""Shape nodes: they only permute the index from ONNX tensor elements to stream elements;
no hardware, no step in the chain."""

from ...errors import node_error
from ..declared import attribute_value
from ..registry import handler

__all__ = ["SHAPE_OPS", "reshape"]

SHAPE_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout")


@handler(*SHAPE_OPS, layout_only=True)
def reshape(lowering, node):
    """Reshape or transpose the pending tensor's index.

    Raises
    ------
    GraphError
        If a Dropout has a mask output, a Transpose moves the batch axis, or the shape
        disagrees with shape inference.
    """
    pending = lowering.pending
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        raise node_error(node, "has a mask output", "inference Dropout")
    out_shape = lowering.shape(node.output[0], node)
    if node.op_type == "Transpose":
        perm = attribute_value(node, "perm")
        perm = list(perm) if perm is not None else list(range(pending.index.ndim))[::-1]
        if perm[0] != 0:
            raise node_error(node, f"moves the batch axis (perm {perm})",
                             "transposes that keep axis 0 (batch) first")
        index = pending.index.transpose(perm)
    else:
        index = pending.index.reshape(out_shape)
    if index.shape != out_shape:
        raise node_error(node, f"gives shape {index.shape}, but shape inference says "
                         f"{out_shape}", "shape nodes with consistent shapes")
    pending.index = index
    pending.tensor = node.output[0]
