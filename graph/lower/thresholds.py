"""Materialization: turning the pending chain into integers, as thresholds.

When a layer or the graph's end needs the pending tensor as integers, the chain's steps are
found by bisection (:func:`graph.levels.staircase`) on the reference's own float32
arithmetic and named as integer levels (:func:`graph.levels.fit_grid`). They become the
thresholds of the MVAU whose accumulator the chain starts from, of a standalone threshold
layer on a stream, or of the host's input quantizer on a float input. An accumulator chain
without a quantizer becomes a raw MVAU (no thresholds); a stream chain of affine steps
stays a stream with new values.
"""

import numpy as np

from ..errors import GraphError, node_error
from ..ir import InputQuantizer, MVAULayer, ThresholdLayer, dtype_range, smallest_dtype
from ..levels import FLOAT_KEY_MAX, fit_grid, key_float, staircase
from .constants import weight_dtype
from .maps import map_channels, per_channel, stream_order
from .pending import Pending, Stream, bipolar_fixed, table_values

__all__ = ["materialize", "materialize_for", "raw_mvau"]


def materialize_for(lowering, node):
    """Make the pending tensor an integer stream for ``node``.

    Returns
    -------
    tuple
        ``(stream, a, b)``: the stream and the per-element affine map
        ``value = a * decoded + b`` of its reference values.

    Raises
    ------
    GraphError
        If the values are not an affine function of the integers.
    """
    stream = materialize(lowering, node)
    a, b = stream.affine()
    if a is None:
        raise node_error(node, f"its input '{lowering.pending.tensor}' is not an affine "
                         f"function of integers", "quantized activations on evenly "
                         "spaced levels")
    return stream, a, b


def materialize(lowering, node):
    """Turn the pending chain into a layer (or nothing) before ``node``.

    Parameters
    ----------
    lowering : graph.lower.walker.Lowering
        The lowering; its ``pending`` becomes the new stream.
    node : onnx.NodeProto
        The node that needs integers (named in errors).

    Returns
    -------
    Stream
        The new stream.

    Raises
    ------
    GraphError
        If a float input has no quantizer, a nonlinear step acts on a raw accumulator, or
        the chain's levels are not evenly spaced.
    """
    pending = lowering.pending
    kinds = {step.kind for step in pending.steps}
    if pending.source == "input":
        if "quantizer" not in kinds:
            raise GraphError(
                f"graph input '{lowering.input_name}': has no integer datatype annotation "
                f"(finn_datatype) and no quantizer before {node.op_type} node "
                f"'{node.name}'; supported: an annotated integer input, or a Quant, "
                f"QuantizeLinear, BipolarQuant or MultiThreshold on it")
        return _input_quantizer(lowering)
    if pending.source == "stream" and "quantizer" not in kinds and "monotone" not in kinds:
        stream = Stream(pending.stream.dtype, pending.stream.channels,
                        bipolar_fixed(pending.evaluate)
                        if pending.stream.dtype == "BIPOLAR" else pending.evaluate,
                        pending.stream.edge)
        lowering.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
        return stream
    if pending.source == "acc" and "quantizer" not in kinds:
        nonlinear = [s.node for s in pending.steps if s.kind != "affine"]
        if nonlinear:
            raise node_error(nonlinear[0], "acts on a raw accumulator without a quantizer "
                             "after it", "Relu/Clip followed by Quant, MultiThreshold or "
                             "QuantizeLinear")
        return raw_mvau(lowering)
    return _thresholded(lowering)


def raw_mvau(lowering):
    """An MVAU (or VVAU) without thresholds for the pending accumulator; returns its output
    stream."""
    pending = lowering.pending
    if pending.conv is not None:
        layer = _dot_layer(lowering, pending.weights, pending.weight_type, "INT2", None, 0)
        low, high = layer.accumulator_range()
        layer.output_type = smallest_dtype(min(low.min(), -1), high.max())
        stream = Stream(layer.output_type, pending.channels, pending.evaluate, layer.name)
        lowering.record(layer.name, pending.tensor, stream, stream_order(pending.index))
        lowering.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
        return stream
    weights = pending.weights[pending.index.ravel()]  # rows in tensor element order
    layer = MVAULayer(name=lowering.layer_name(pending.node.name), mw=weights.shape[1],
                      mh=weights.shape[0], weights=weights,
                      input_type=pending.stream.dtype, weight_type=pending.weight_type,
                      output_type="INT2", thresholds=None)
    low, high = layer.accumulator_range()
    layer.output_type = smallest_dtype(min(low.min(), -1), high.max())
    lowering.add(layer)
    stream = Stream(layer.output_type, layer.mh, pending.by_element(), layer.name)
    lowering.record(layer.name, pending.tensor, stream)
    lowering.pending = Pending("stream", pending.tensor,
                               np.arange(layer.mh).reshape(pending.index.shape), stream=stream)
    return stream


def _dot_layer(lowering, weights, weight_type, output_type, thresholds, bias):
    """The MVAU (or, for a depthwise convolution, the VVAU) of a convolution's pending
    accumulator, appended; ``weights`` ``(OC, K)``."""
    from ..maplayers import VVAULayer
    pending = lowering.pending
    conv = pending.conv
    name = lowering.layer_name(pending.node.name)
    common = dict(name=name, weights=weights, input_type=pending.stream.dtype,
                  weight_type=weight_type, output_type=output_type, thresholds=thresholds,
                  bias=bias, vectors=conv["vectors"])
    if conv["depthwise"]:
        layer = VVAULayer(channels=weights.shape[0], kernel=conv["kernel"], **common)
    else:
        layer = MVAULayer(mw=weights.shape[1], mh=weights.shape[0], **common)
    return lowering.add(layer)


def _thresholded(lowering):
    """Thresholds (MVAU or standalone) for a chain that ends in quantized levels."""
    pending = lowering.pending
    f, low, high = _integer_domain(pending)
    geometry = _pixel_geometry(lowering, pending, low, high)
    result = None
    if geometry is not None:
        # a feature map: one staircase per channel, checked equal on every pixel
        pixels, channels = geometry
        try:
            result = _staircase(pending, _one_pixel(f, pixels, channels), low[:channels],
                                high[:channels])
        except _PixelsDiffer:
            result = None
        if result is not None:
            low, high = low[:channels], high[:channels]
    if result is None:
        geometry = None
        result = _staircase(pending, f, low, high)
    sign, s_high, steps, grid, thresholds, table = result
    identity = pending.source == "stream" and _identity(grid, steps, low, high)
    if geometry is not None:
        pixels = geometry[0]
        sign, s_high, thresholds, table = (np.tile(a, (pixels,) + (1,) * (a.ndim - 1))
                                           for a in (sign, s_high, thresholds, table))
    if identity:
        stream = Stream(pending.stream.dtype, pending.channels,
                        table_values(table, dtype_range(grid.dtype)[0]), pending.stream.edge)
        lowering.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
        return stream
    dtype = grid.dtype
    bias = 0 if dtype == "BIPOLAR" else grid.low
    if thresholds.shape[1] == 0:
        thresholds = (s_high + 1)[:, None]
        dtype = smallest_dtype(grid.low, grid.low + 1)
    layer, index, order = _threshold_layer(lowering, thresholds, bias, dtype, sign)
    stream = Stream(dtype, pending.channels, _level_values(grid, table, dtype), layer.name)
    lowering.record(layer.name, pending.tensor, stream, order)
    lowering.pending = Pending("stream", pending.tensor, index, stream=stream)
    return stream


class _PixelsDiffer(Exception):
    """The pixels of a feature map do not share their channels' functions."""


def _pixel_geometry(lowering, pending, low, high):
    """``(pixels, channels)`` when the pending tensor is a feature map whose elements (in the
    order ``f`` takes them) are pixel-major with uniform ranges per channel, else None."""
    if pending.source == "acc":
        if pending.conv is None:
            return None
        channels = pending.weights.shape[0]
    else:
        channels = map_channels(pending.index)
        if channels is None:
            return None
    pixels = len(low) // channels
    if pixels <= 1 or np.any(np.tile(low[:channels], pixels) != low) or \
            np.any(np.tile(high[:channels], pixels) != high):
        return None
    return pixels, channels


def _one_pixel(f, pixels, channels):
    """``f`` of a feature map as a function of one pixel's channels: every pixel gets the
    same integers, and must give the same values (else :class:`_PixelsDiffer`)."""
    def per_channel_f(x):
        y = np.asarray(f(np.tile(x, (1, pixels))))
        grid = y.reshape(len(x), pixels, channels)
        if not np.array_equal(grid, np.broadcast_to(grid[:, :1], grid.shape)):
            raise _PixelsDiffer()
        return grid[:, 0]
    return per_channel_f


def _staircase(pending, f, low, high):
    """``(sign, s_high, steps, grid, thresholds, table)`` of the chain ``f`` on
    ``[low, high]`` per element (rows where it decreases negated)."""
    down = f(low[None])[0] > f(high[None])[0]
    if pending.source != "acc" and down.any():
        raise node_error(pending.steps[-1].node, "decreases with its integer input stream",
                         "non-decreasing activations of a stream (only MVAU rows can be "
                         "negated)")
    sign = np.where(down, -1, 1)

    def increasing(x):
        return f(x * sign)
    s_low = np.where(down, -high, low)
    s_high = np.where(down, -low, high)
    last = pending.steps[-1].node if pending.steps else pending.node
    steps, grid = _levels(last, increasing, s_low, s_high)
    thresholds = grid.thresholds([s for s, _ in steps], s_high)
    table = grid.table([v for _, v in steps])
    return sign, s_high, steps, grid, thresholds, table


def _integer_domain(pending):
    """``(f, low, high)``: the chain as a function of the integers it starts from, and
    their per-element range (for an accumulator: of the MVAU rows in tensor order; for a
    convolution's: of its elements in stream order)."""
    if pending.source != "acc":
        low, high = pending.stream.range()
        return pending.evaluate, low, high
    if pending.conv is not None:
        w_low, w_high = dtype_range(pending.stream.dtype)
        w = pending.weights
        low = np.minimum(w * w_low, w * w_high).sum(axis=1)
        high = np.maximum(w * w_low, w * w_high).sum(axis=1)
        vectors = pending.conv["vectors"]
        return pending.evaluate, np.tile(low, vectors), np.tile(high, vectors)
    weights = pending.weights[pending.index.ravel()]
    w_low, w_high = dtype_range(pending.stream.dtype)
    low = np.minimum(weights * w_low, weights * w_high).sum(axis=1)
    high = np.maximum(weights * w_low, weights * w_high).sum(axis=1)
    return pending.by_element(), low, high


def _threshold_layer(lowering, thresholds, bias, dtype, sign):
    """``(layer, index, order)``: the MVAU (rows negated where ``sign`` is -1) or the
    standalone threshold layer, the pending index after it, and the debug order."""
    pending = lowering.pending
    if pending.source == "acc" and pending.conv is not None:
        rows = pending.weights.shape[0]
        vectors = pending.conv["vectors"]
        row_thresholds = per_channel(thresholds, vectors, rows)
        row_sign = per_channel(sign, vectors, rows)
        node = pending.steps[-1].node if pending.steps else pending.node
        if row_thresholds is None or row_sign is None:
            raise node_error(node, "quantizes the pixels of a channel differently",
                             "per-channel (or per-tensor) scales, biases and quantizers")
        weights = pending.weights * row_sign[:, None]
        layer = _dot_layer(lowering, weights, weight_dtype(weights, pending.weight_type),
                           dtype, _compress(row_thresholds), bias)
        return layer, pending.index, stream_order(pending.index)
    if pending.source == "acc":
        weights = pending.weights[pending.index.ravel()] * sign[:, None]
        layer = MVAULayer(name=lowering.layer_name(pending.node.name), mw=weights.shape[1],
                          mh=weights.shape[0], weights=weights,
                          input_type=pending.stream.dtype,
                          weight_type=weight_dtype(weights, pending.weight_type),
                          output_type=dtype, thresholds=_compress(thresholds), bias=bias)
        lowering.add(layer)
        return layer, np.arange(layer.mh).reshape(pending.index.shape), None
    node = pending.steps[-1].node
    index = pending.index
    channels, vectors = pending.channels, 1
    geometry = map_channels(pending.index)
    if geometry is not None:
        rows = per_channel(thresholds, index.size // geometry, geometry)
        if rows is not None:
            thresholds, channels, vectors = rows, geometry, index.size // geometry
    layer = ThresholdLayer(name=lowering.layer_name(node.name), channels=channels,
                           thresholds=_compress(thresholds), bias=bias,
                           input_type=pending.stream.dtype, output_type=dtype, vectors=vectors)
    lowering.add(layer)
    return layer, index, stream_order(index)


def _input_quantizer(lowering):
    """The host's input quantizer for a float network input; returns its stream."""
    pending = lowering.pending
    channels = pending.channels
    low = np.full(channels, -FLOAT_KEY_MAX, dtype=np.int64)
    high = np.full(channels, FLOAT_KEY_MAX, dtype=np.int64)

    def f(keys):
        return pending.evaluate(key_float(keys))
    last = pending.steps[-1].node
    down = f(low[None])[0] > f(high[None])[0]
    if down.any():
        raise node_error(last, "decreases with the network input",
                         "input quantization that does not decrease with the input")
    steps, grid = _levels(last, f, low, high)
    keys = grid.thresholds([s for s, _ in steps], high)
    thresholds = np.where(keys > FLOAT_KEY_MAX, np.inf,
                          np.where(keys <= -FLOAT_KEY_MAX, -np.inf, key_float(keys)))
    dtype = grid.dtype
    table = grid.table([v for _, v in steps])
    stream = Stream(dtype, channels, _level_values(grid, table, dtype), "input")
    lowering.input_quantizer = InputQuantizer(_compress(thresholds.astype(np.float32)),
                                              0 if dtype == "BIPOLAR" else grid.low, dtype)
    lowering.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
    lowering.debug["input"] = {"tensor": pending.tensor, "scale": grid.scale.tolist(),
                               "offset": grid.offset.tolist()}
    return stream


def _levels(node, f, low, high):
    """``(steps, grid)`` of the non-decreasing ``f`` on ``[low, high]``; errors name
    ``node``."""
    try:
        steps = staircase(f, low, high)
        grid = fit_grid([v for _, v in steps])
    except GraphError as error:
        raise node_error(node, str(error), "quantizers with evenly spaced levels") from None
    return steps, grid


def _level_values(grid, table, dtype):
    """Stream values of the levels of ``grid`` (``table``: their values per channel)."""
    values = table_values(table, dtype_range(grid.dtype)[0])
    return bipolar_fixed(values) if dtype == "BIPOLAR" else values


def _compress(thresholds):
    if len(thresholds) > 1 and np.all(thresholds == thresholds[:1]):
        return thresholds[:1].copy()
    return thresholds


def _identity(grid, steps, low, high):
    if grid.dtype == "BIPOLAR":
        return (all(len(s) == 2 and s[1] == 1 for s, _ in steps) and np.all(low == -1) and
                all(np.array_equal(m, [-1, 1]) for m in grid.m))
    return (all(len(s) == h - l + 1 for (s, _), l, h in zip(steps, low, high)) and
            all(np.array_equal(m, np.arange(l, h + 1)) for m, l, h in zip(grid.m, low, high)))
