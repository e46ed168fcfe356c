"""Nodes of two or more activations: residual ``Add`` and channel ``Concat``.

Each input is materialized as an integer stream with affine values ``a_k * x_k + b_k``
(per element). ``Add`` needs one integer domain for the sum: where the scales differ by a
power of two, ``a_0 == 2**s * a_1`` for every element, the smaller-scale input's domain
takes the other one shifted left by ``s`` (:class:`~graph.maplayers.AddLayer`), and the
sum has the values ``a_1 * y + b_0 + b_1``. Other ratios have no exact integer sum and are
refused, naming both scales. ``Concat`` of feature maps along the channels keeps every
input's affine values in its channels (:class:`~graph.maplayers.ConcatLayer`).
"""

import numpy as np

from ...errors import node_error
from ...maplayers import AddLayer, ConcatLayer
from ..declared import attributes
from ..maps import map_geometry, nhwc_index, stream_order
from ..pending import Pending, Stream
from ..registry import join
from ..thresholds import materialize_for

__all__ = ["residual_add", "concat"]


def _materialized(lowering, node, inputs):
    """Each input as ``(stream, a, b, pending)``."""
    out = []
    for pending in inputs:
        lowering.pending = pending
        stream, a, b = materialize_for(lowering, node)
        out.append((stream, a, b, lowering.pending))
    return out


def _geometry(lowering, node, pending):
    """``(channels, pixels)`` of an input: a feature map's, or ``(elements, 1)``."""
    lowering.pending = pending
    shape = lowering.shape(pending.tensor, node)
    if len(shape) in (3, 4):
        channels, (height, width) = map_geometry(lowering, node)
        return channels, height * width
    return pending.channels, 1


def _shift(node, a0, a1):
    """``(shift0, shift1, unit)`` with ``a0 == unit * 2**shift0`` and ``a1 == unit *
    2**shift1`` for every element, or a GraphError naming both scales."""
    ratio = a0 / a1
    k = np.round(np.log2(np.abs(ratio))) if np.all(ratio > 0) else None
    if k is None or not np.all(k == k[0]) or not np.allclose(ratio, 2.0 ** k[0], rtol=1e-9,
                                                                atol=0):
        def scales(a):
            values = np.unique(a)
            return ", ".join(f"{v:.6g}" for v in values[:3]) + (" ..." if len(values) > 3
                                                              else "")
        raise node_error(node, f"adds inputs whose integer scales {scales(a0)} and "
                         f"{scales(a1)} differ by a factor that is not a power of two, so "
                         f"no integer sum is exact", "residual inputs whose scales differ "
                         "by a power of two (for example one shared quantizer)")
    k = int(k[0])
    if k >= 0:
        return k, 0, a1
    return 0, -k, a0


@join("Add")
def residual_add(lowering, node, inputs):
    """The element-wise sum of two activations (a residual join).

    Raises
    ------
    GraphError
        For broadcasting, inputs in different orders, BIPOLAR inputs, or scales that differ
        by other than a power of two.
    """
    if len(inputs) != 2:
        raise node_error(node, f"has {len(inputs)} activation inputs", "Add of two")
    shapes = [lowering.shape(p.tensor, node) for p in inputs]
    if shapes[0] != shapes[1]:
        raise node_error(node, f"adds activations of shapes {shapes[0]} and {shapes[1]}",
                         "residual Add of two activations of one shape")
    geometry = [_geometry(lowering, node, p) for p in inputs]
    (s0, a0, b0, p0), (s1, a1, b1, p1) = _materialized(lowering, node, inputs)
    if not np.array_equal(p0.index, p1.index):
        raise node_error(node, "adds activations streamed in different orders",
                         "residual Add of activations in the same layout")
    for stream in (s0, s1):
        if stream.dtype == "BIPOLAR":
            raise node_error(node, "adds a BIPOLAR activation", "residual Add of BINARY, "
                             "UINTn or INTn activations")
    shift0, shift1, unit = _shift(node, a0, a1)
    channels, pixels = geometry[0]
    layer = lowering.add(AddLayer(name=lowering.layer_name(node.name), channels=channels,
                                  vectors=pixels, input_types=(s0.dtype, s1.dtype),
                                  shift0=shift0, shift1=shift1), s0, s1)
    offset = b0 + b1

    def values(y):
        return unit * y + offset
    out = Stream(layer.output_type, layer.out_elements, values, layer.name)
    lowering.record(layer.name, node.output[0], out, stream_order(p0.index))
    lowering.pending = Pending("stream", node.output[0], p0.index.copy(), stream=out)


@join("Concat")
def concat(lowering, node, inputs):
    """Channel concatenation of feature maps (or of flat activations, along axis 1).

    Raises
    ------
    GraphError
        For another axis, inputs of different pixels, or BIPOLAR inputs.
    """
    shapes = [lowering.shape(p.tensor, node) for p in inputs]
    axis = attributes(node).get("axis")
    if axis is None or axis % len(shapes[0]) != 1:
        raise node_error(node, f"concatenates along axis {axis}", "Concat along the channels "
                         "(axis 1)")
    geometry = [_geometry(lowering, node, p) for p in inputs]
    pixels = {g[1] for g in geometry}
    if len(pixels) != 1:
        raise node_error(node, f"concatenates maps of {sorted(pixels)} pixels",
                         "Concat of maps of the same height and width")
    pixels = pixels.pop()
    parts = _materialized(lowering, node, inputs)
    for stream, *_ in parts:
        if stream.dtype == "BIPOLAR":
            raise node_error(node, "concatenates a BIPOLAR activation", "Concat of BINARY, "
                             "UINTn or INTn activations")
    channels = [g[0] for g in geometry]
    layer = lowering.add(ConcatLayer(name=lowering.layer_name(node.name), channels=channels,
                                     vectors=pixels,
                                     input_types=[s.dtype for s, *_ in parts]),
                         *[s for s, *_ in parts])
    # every input is affine per channel, and so is their concatenation
    scale = np.concatenate([a.reshape(pixels, -1) for _, a, _, _ in parts], axis=1).ravel()
    offset = np.concatenate([b.reshape(pixels, -1) for _, _, b, _ in parts], axis=1).ravel()

    def values(y):
        return scale * y + offset
    out_shape = lowering.shape(node.output[0], node)
    index = nhwc_index(out_shape) if len(out_shape) in (3, 4) else \
        np.arange(int(np.prod(out_shape))).reshape(out_shape)
    out = Stream(layer.output_type, layer.out_elements, values, layer.name)
    lowering.record(layer.name, node.output[0], out, stream_order(index))
    lowering.pending = Pending("stream", node.output[0], index, stream=out)
