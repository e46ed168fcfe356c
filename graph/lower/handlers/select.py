"""TopK/ArgMax at the end of the graph: a label-select layer.

Label select compares integers, so the values before it must be one increasing function
of the integers for every class. A raw MatMul's per-class bias that is an integer multiple
of the accumulator's scale, ``a * acc_c + b_c`` with ``d_c = (b_c - b_0) / a`` integers,
becomes offsets ``d_c`` of that MVAU (``a * (acc_c + d_c) + b_0``).
"""

import numpy as np

from ...errors import node_error
from ...ir import LabelSelectLayer, smallest_dtype
from ..declared import attributes
from ..pending import Pending, Stream
from ..registry import handler
from ..thresholds import materialize

__all__ = ["label_select"]


@handler("TopK", "ArgMax", fold=False)
def label_select(lowering, node):
    """End the chain in a label-select layer; sets ``lowering.label``.

    Raises
    ------
    GraphError
        If the selection is not the largest along the one feature axis, its values output
        is used, or the values are not one increasing function of every class's integers.
    """
    k, label = _selection(lowering, node)
    pending = lowering.pending
    raw = pending.source == "acc" and all(s.kind == "affine" for s in pending.steps)
    stream = materialize(lowering, node)
    a, b = stream.affine()
    if a is not None and np.all(a == a[0]) and a[0] > 0 and not np.all(b == b[0]):
        offsets = _class_offsets(a[0], b, *stream.range()) if raw else None
        if offsets is not None:
            stream = _offset_raw_mvau(lowering, offsets)
            b = np.full_like(b, b[0])
    if a is None or not (np.all(a == a[0]) and np.all(b == b[0]) and a[0] > 0):
        raise node_error(node, "follows per-element scales or offsets (values are "
                         "not one increasing function of the integers of all classes)",
                         "the same positive scale and offset for every class (per-class "
                         "offsets: integer multiples of the scale, straight after a MatMul)")
    if not np.all(lowering.pending.index.ravel() == np.arange(lowering.pending.channels)):
        raise node_error(node, "follows a reordering of a thresholded stream",
                         "Transpose before the last MatMul")
    layer = LabelSelectLayer(name=lowering.layer_name(node.name), channels=stream.channels,
                             k=k, input_type=stream.dtype)
    lowering.add(layer, stream)
    lowering.label = (label, k, node)
    lowering.pending = None


def _selection(lowering, node):
    """``(k, label tensor)`` of a TopK/ArgMax node, after checking its attributes."""
    attrs = attributes(node)
    shape = lowering.shape(lowering.pending.tensor, node)
    axis = attrs.get("axis", -1 if node.op_type == "TopK" else 0)
    if len([d for d in shape[1:] if d != 1]) > 1 or (axis % len(shape)) == 0 or \
            shape[axis % len(shape)] != int(np.prod(shape)):
        raise node_error(node, f"selects along axis {axis} of shape {shape}",
                         "selection along the one feature axis")
    if node.op_type != "TopK":
        if attrs.get("select_last_index", 0):
            raise node_error(node, "has select_last_index=1", "select_last_index=0")
        return 1, node.output[0]
    k = int(np.asarray(lowering.constants.parameter(node, 1, "K").value).ravel()[0])
    if not attrs.get("largest", 1) or not attrs.get("sorted", 1):
        raise node_error(node, "selects the smallest or unsorted values",
                         "largest=1, sorted=1")
    if node.output[0] and (lowering.consumers.get(node.output[0]) or
                           node.output[0] in [o.name for o in lowering.graph.output]):
        raise node_error(node, "uses its values output", "only the indices output")
    return k, node.output[1]


def _offset_raw_mvau(lowering, offsets):
    """Add per-class integer ``offsets`` to the raw MVAU layer just made, so that its
    outputs are one increasing function of the integers for every class; returns the new
    stream."""
    layer = lowering.layers[-1]
    pending = lowering.pending
    old = pending.stream
    layer.offsets = offsets
    low, high = layer.accumulator_range()
    layer.output_type = smallest_dtype(min(low.min(), -1), high.max())

    def values(x):
        return old.values(x - offsets)
    stream = Stream(layer.output_type, layer.mh, values, layer.name)
    lowering.record(layer.name, pending.tensor, stream)
    lowering.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
    return stream


def _class_offsets(a, b, low, high):
    """Integers ``d`` with ``b == b[0] + a * d`` (within float rounding), or None."""
    d = (b - b[0]) / a
    rounded = np.round(d)
    scale = max(1.0, float(np.abs(d).max()), float(np.abs(low).max()),
                float(np.abs(high).max()))
    if np.any(np.abs(d - rounded) > 1e-6 * scale):
        return None
    return rounded.astype(np.int64)
