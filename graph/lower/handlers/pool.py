"""Pooling and padding of feature maps.

- ``MaxPool``/``GlobalMaxPool``: the pending map is materialized as a stream whose values
  rise with its integers in every channel (thresholded levels, or a raw accumulator of a
  positive scale), so the maximum of the integers is the integer of the maximum: max
  pooling commutes with the quantization, and a positive scale or bias after it stays in
  the pending chain. ONNX pads max pooling with ``-inf``; the stream's lowest integer does
  the same here.
- ``AveragePool``/``GlobalAveragePool``: the window *sum* of the integers (an affine stream
  ``a * x + b``) in hardware; the values ``(a * sum + n * b) / n`` of the ``n``-element
  average, the division computed as the reference does it (float32), go into the next
  layer's thresholds.
- ``Pad`` (constant mode, spatial axes): a border of the integer the pad value is.
"""

import numpy as np

from ...errors import node_error
from ...maplayers import (AvgPoolLayer, GlobalAccPoolLayer, MaxPoolLayer, PadLayer,
                          window_output)
from ..declared import attributes
from ..maps import map_geometry, map_values, nhwc_index
from ..pending import Pending, Stream
from ..registry import handler
from ..thresholds import materialize, materialize_for
from .conv import pad_value, spatial_attributes

__all__ = ["max_pool", "average_pool", "pad"]


def _window(lowering, node, height, width, is_global):
    """``(kernel, stride, pads)`` of a pooling node; refuses what is not implemented."""
    if is_global:
        return (height, width), (height, width), (0, 0, 0, 0)
    attrs = attributes(node)
    kernel = list(attrs["kernel_shape"])
    rank = len(kernel)
    if rank == 1:
        kernel = [1] + kernel
    stride, dilation, pads = spatial_attributes(node, attrs, rank, kernel)
    if attrs.get("strides") is None:
        stride = (1, 1)
    if dilation != (1, 1):
        raise node_error(node, f"has dilations {list(dilation)}", "pooling without dilation")
    if attrs.get("storage_order", 0):
        raise node_error(node, "has storage_order=1", "storage_order=0")
    if attrs.get("ceil_mode", 0):
        padded = (height + pads[0] + pads[2], width + pads[1] + pads[3])
        floor = [window_output(n, k, s) for n, k, s in zip(padded, kernel, stride)]
        ceil = [-(-(n - k) // s) + 1 for n, k, s in zip(padded, kernel, stride)]
        if floor != ceil:
            raise node_error(node, f"has ceil_mode=1 with a partial last window (output "
                             f"{ceil} instead of {floor})", "ceil_mode=0, or ceil_mode=1 where "
                             "the windows tile the map")
    return tuple(kernel), tuple(stride), pads


def _map_stream(lowering, node, layer, stream, channels, pixels_in):
    """The pending map after ``layer`` (moving a map's elements): same channel values."""
    out_shape = lowering.shape(node.output[0], node)
    pixels_out = layer.out_elements // channels
    low = int(stream.range()[0][0])
    values = map_values(stream.values, channels, pixels_in, pixels_out, low)
    out = Stream(layer.output_type, layer.out_elements, values, layer.name)
    lowering.record(layer.name, node.output[0], out, nhwc_index(out_shape).ravel())
    lowering.pending = Pending("stream", node.output[0], nhwc_index(out_shape), stream=out)


def _padded(lowering, node, stream, channels, ifm, pads, value):
    """A pad layer before a pooling layer (or the stream itself without pads): ``(source
    stream, padded ifm)``."""
    if not any(pads):
        return stream, ifm
    layer = lowering.add(PadLayer(name=lowering.layer_name(f"{node.name}_pad"), ifm=ifm,
                                  channels=channels, padding=pads, value=value,
                                  input_type=stream.dtype), stream)
    padded = layer.ofm
    values = map_values(stream.values, channels, ifm[0] * ifm[1], padded[0] * padded[1],
                        value)
    return Stream(stream.dtype, layer.out_elements, values, layer.name), padded


@handler("MaxPool", "GlobalMaxPool")
def max_pool(lowering, node):
    """Lower max pooling (see the module documentation).

    Raises
    ------
    GraphError
        For values that fall with the integers, dilation, or ceil mode with a partial
        window.
    """
    channels, (height, width) = map_geometry(lowering, node)
    if len(node.output) > 1 and node.output[1]:
        raise node_error(node, "has an indices output", "MaxPool without indices")
    kernel, stride, pads = _window(lowering, node, height, width,
                                   node.op_type == "GlobalMaxPool")
    stream = materialize(lowering, node)
    a, _ = stream.affine()
    if a is not None and np.any(a < 0):
        raise node_error(node, "follows values that fall as their integers rise (a negative "
                         "scale)", "max pooling of quantized activations or of raw "
                         "accumulators with positive scales")
    low = int(stream.range()[0][0])
    source, ifm = _padded(lowering, node, stream, channels, (height, width), pads, low)
    layer = lowering.add(MaxPoolLayer(name=lowering.layer_name(node.name), ifm=ifm,
                                      channels=channels, kernel=kernel, stride=stride,
                                      input_type=stream.dtype), source)
    _map_stream(lowering, node, layer, source, channels, ifm[0] * ifm[1])


@handler("AveragePool", "GlobalAveragePool")
def average_pool(lowering, node):
    """Lower average pooling to window sums (see the module documentation).

    Raises
    ------
    GraphError
        For padding, dilation, ceil mode with a partial window, or inputs that are not an
        affine function of integers.
    """
    channels, (height, width) = map_geometry(lowering, node)
    is_global = node.op_type == "GlobalAveragePool"
    kernel, stride, pads = _window(lowering, node, height, width, is_global)
    if any(pads):
        raise node_error(node, f"has pads {list(pads)}", "average pooling without padding")
    stream, a, b = materialize_for(lowering, node)
    a_c, b_c = a[:channels], b[:channels]
    count = kernel[0] * kernel[1]
    name = lowering.layer_name(node.name)
    if is_global:
        layer = GlobalAccPoolLayer(name=name, ifm=(height, width), channels=channels,
                                   input_type=stream.dtype)
    else:
        layer = AvgPoolLayer(name=name, ifm=(height, width), channels=channels, kernel=kernel,
                             stride=stride, input_type=stream.dtype)
    lowering.add(layer)
    bipolar = stream.dtype == "BIPOLAR"
    out_shape = lowering.shape(node.output[0], node)
    pixels = layer.out_elements // channels
    scale, offset = np.tile(a_c, pixels), np.tile(b_c, pixels)

    def values(sums):
        total = 2 * sums - count if bipolar else sums
        numerator = (scale * total + count * offset).astype(np.float32)
        return (numerator / np.float32(count)).astype(np.float64)
    out = Stream(layer.output_type, layer.out_elements, values, layer.name)
    lowering.record(layer.name, node.output[0], out, nhwc_index(out_shape).ravel())
    lowering.pending = Pending("stream", node.output[0], nhwc_index(out_shape), stream=out)


@handler("Pad")
def pad(lowering, node):
    """A constant border around a feature map.

    Raises
    ------
    GraphError
        For modes other than constant, pads on the batch or channel axes, negative pads, or
        a pad value that is not an integer of the stream.
    """
    channels, (height, width) = map_geometry(lowering, node)
    attrs = attributes(node)
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise node_error(node, f"has mode={mode}", "constant padding")
    pads = attrs.get("pads")
    if pads is None:
        pads = np.asarray(lowering.constants.parameter(node, 1, "pads").value).tolist()
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        value = float(np.asarray(lowering.constants.parameter(node, 2, "value").value))
    if len(node.input) > 3 and node.input[3]:
        raise node_error(node, "has an axes input", "Pad of all axes")
    rank = len(pads) // 2
    begins, ends = pads[:rank], pads[rank:]
    if begins[:2] != [0, 0] or ends[:2] != [0, 0] or min(pads) < 0:
        raise node_error(node, f"has pads {list(pads)}", "non-negative pads of the spatial "
                         "axes only")
    spatial = (0, begins[2], 0, ends[2]) if rank == 3 else \
        (begins[2], begins[3], ends[2], ends[3])
    stream, a, b = materialize_for(lowering, node)
    border = pad_value(lowering, node, a, b, channels, value)
    source, _ = _padded(lowering, node, stream, channels, (height, width), spatial, border)
    out_shape = lowering.shape(node.output[0], node)
    if source is not stream:
        lowering.record(source.edge, node.output[0], source, nhwc_index(out_shape).ravel())
    lowering.pending = Pending("stream", node.output[0], nhwc_index(out_shape), stream=source)
