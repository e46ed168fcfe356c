"""Convolutions: a sliding window and an MVAU (or, depthwise, a VVAU) accumulator.

The pending feature map is materialized as an integer stream ``x`` with values
``a_c * x + b_c`` per channel. Padding becomes a :class:`~graph.maplayers.PadLayer` whose
border is the integer ``p`` with ``a_c * p + b_c == 0`` (the zeros ONNX pads with), so every
window, border or not, has the accumulator ``colscale * acc + offset`` that the Conv
computes. The windows come from a :class:`~graph.maplayers.SlidingWindowLayer` in the
order of the weight columns (kernel row, kernel column, channel) -- a 1x1 convolution of
stride 1 reads the map's pixels directly -- and the new pending
tensor is the accumulator of the weights as integers (``(OC, K_h * K_w * C)``, or
``(C, K_h * K_w)`` depthwise), one vector per output pixel. The MVAU or VVAU is made when
that accumulator is materialized (:mod:`graph.lower.thresholds`).

``ConvInteger`` and ``QLinearConv`` are lowered the same way, as ``MatMulInteger`` and
``QLinearMatMul`` are in :mod:`~graph.lower.handlers.matmul`: the input's zero point (one per
tensor) is subtracted from its values, so the border is that zero point; the weights' (one,
or one per output channel) from the weights. The accumulator is the node's int32 output
(``QLinearConv`` adds its int32 bias); a ``QLinearConv``'s requantization to ``y_scale`` and
``y_zero_point`` (weight scales per tensor or per output channel) is the quantizer step that
the MVAU's or VVAU's thresholds take.
"""

import numpy as np

from ...errors import node_error
from ...maplayers import PadLayer, SlidingWindowLayer, window_output
from ..constants import weight_dtype
from ..declared import attributes
from ..maps import map_geometry, nhwc_index
from ..pending import Pending, Stream
from ..registry import handler
from ..thresholds import materialize_for
from .matmul import _integer_weights, input_zero_point, qlinear_requant

__all__ = ["conv", "pad_value", "spatial_attributes"]


def spatial_attributes(node, attrs, rank, kernel):
    """``(stride, dilation, pads)`` of a Conv/pooling node on a map of ``rank`` spatial
    axes, as 2-D ``(height, width)`` pairs and ``(top, left, bottom, right)``.

    Raises
    ------
    GraphError
        For ``auto_pad`` other than ``NOTSET``/``VALID`` or attributes of the wrong length.
    """
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad not in ("NOTSET", "VALID"):
        raise node_error(node, f"has auto_pad={auto_pad}", "auto_pad NOTSET or VALID (explicit "
                         "pads)")
    stride = list(attrs.get("strides", [1] * rank))
    dilation = list(attrs.get("dilations", [1] * rank))
    pads = list(attrs.get("pads", [0] * (2 * rank)))
    if len(stride) != rank or len(dilation) != rank or len(pads) != 2 * rank:
        raise node_error(node, f"has strides {stride}, dilations {dilation}, pads {pads} for "
                         f"{rank} spatial axes", "one stride and dilation per axis, two pads")
    if rank == 1:
        return (1, stride[0]), (1, dilation[0]), (0, pads[0], 0, pads[1])
    return tuple(stride), tuple(dilation), (pads[0], pads[1], pads[2], pads[3])


def pad_value(lowering, node, a, b, channels, value=0.0):
    """The decoded integer ``p`` of a stream with values ``a * p + b == value`` in every
    channel (``a``, ``b`` per element in NHWC order), for padding with ``value``.

    Raises
    ------
    GraphError
        If the channels need different or non-integer borders, or one outside the stream's
        datatype.
    """
    stream = lowering.pending.stream
    a_c, b_c = a[:channels], b[:channels]
    p = (value - b_c) / a_c
    rounded = np.round(p)
    low, high = stream.range()
    if stream.dtype == "BIPOLAR" or np.any(np.abs(p - rounded) > 1e-9 * np.maximum(
            1, np.abs(p))) or np.any(rounded != rounded[0]) or not \
            low[0] <= rounded[0] <= high[0]:
        raise node_error(node, f"pads with {value:g}, which is not one integer of its "
                         f"{stream.dtype} input (a border of {np.unique(p)[:4].tolist()} in "
                         f"its integers)", "padding with a value that every channel's "
                         "integers hold (zero padding of quantized ReLU or pixel inputs)")
    return int(rounded[0])


def _check_per_channel(node, what, values, pixels, channels):
    grid = values.reshape(pixels, channels)
    if not np.all(grid == grid[:1]):
        raise node_error(node, f"reads a map whose {what} differ between pixels",
                         "per-channel or per-tensor input quantization")
    return grid[0]


@handler("Conv", "ConvInteger", "QLinearConv")
def conv(lowering, node):
    """Make the pending tensor the accumulator of a convolution (see the module
    documentation). ``ConvInteger`` and ``QLinearConv`` subtract their zero points from the
    input and the weights (the border is the input's zero point, as in ONNX); a
    ``QLinearConv`` adds its int32 bias to the accumulator and ends in its output
    requantization, a quantizer step of the new pending tensor.

    Raises
    ------
    GraphError
        For groups other than 1 or the channel count, non-constant weights, a border that is
        not an integer of the input, weights that cannot be made integer, or zero points and
        scales other than per-tensor (per output channel for the weights).
    """
    attrs = attributes(node)
    channels, (height, width) = map_geometry(lowering, node)
    q, scale, value, declared = _conv_weights(lowering, node)
    rank = value.ndim - 2
    if value.ndim not in (3, 4):
        raise node_error(node, f"has weights of shape {value.shape}", "1-D or 2-D convolutions")
    if rank == 1:
        q, value = q[:, :, None, :], value[:, :, None, :]
        scale = np.asarray(scale)
        scale = scale[:, :, None, :] if scale.ndim == 3 else scale
    out_channels, group_channels, kh, kw = value.shape
    groups = int(attrs.get("group", 1))
    depthwise = groups > 1
    if groups not in (1, channels) or (depthwise and (out_channels != channels or
                                                      group_channels != 1)):
        raise node_error(node, f"has group={groups} ({out_channels} output channels, weights "
                         f"{value.shape}) for {channels} input channels",
                         "group=1, or group=C with C output channels (depthwise)")
    stride, dilation, pads = spatial_attributes(node, attrs, rank, (kh, kw))
    stream, a, b = materialize_for(lowering, node)
    b = b - input_zero_point(lowering, node)
    pixels = height * width
    a_c = _check_per_channel(node, "scales", a, pixels, channels)
    b_c = _check_per_channel(node, "offsets", b, pixels, channels)
    source = stream
    if any(pads):
        value_p = pad_value(lowering, node, a, b, channels)
        pad = lowering.add(PadLayer(name=lowering.layer_name(f"{node.name}_pad"),
                                    ifm=(height, width), channels=channels, padding=pads,
                                    value=value_p, input_type=stream.dtype))
        height += pads[0] + pads[2]
        width += pads[1] + pads[3]
        source = Stream(stream.dtype, height * width * channels, None, pad.name)
    if window_output(height, kh, stride[0], dilation[0]) < 1 or \
            window_output(width, kw, stride[1], dilation[1]) < 1:
        raise node_error(node, f"has a {kh}x{kw} kernel (dilation {dilation}) larger than its "
                         f"{height}x{width} padded map", "kernels that fit the map")
    pointwise = (kh, kw) == (1, 1) and stride == (1, 1) and not depthwise
    if not pointwise:  # a 1x1 convolution reads the pixels as they stream
        window = SlidingWindowLayer(name=lowering.layer_name(f"{node.name}_window"),
                                    ifm=(height, width), channels=channels, kernel=(kh, kw),
                                    stride=stride, dilation=dilation, input_type=stream.dtype,
                                    depthwise=depthwise)
        lowering.add(window, source)
        source = Stream(stream.dtype, window.out_elements, None, window.name)
    w_scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), value.shape)
    if depthwise:
        # per channel c: columns are the K_h * K_w window positions
        qk = q.reshape(channels, kh * kw).T
        unit = (a_c[:, None] * w_scale.reshape(channels, kh * kw)).T
        ints, colscale = _integer_weights(node, qk, unit)
        weights = ints.T
        offset = b_c * value.reshape(channels, -1).sum(axis=1)
    else:
        # columns in the window order (kernel row, kernel column, channel)
        qk = q.transpose(2, 3, 1, 0).reshape(-1, out_channels)
        unit = (a_c[None, None, :, None] * w_scale.transpose(2, 3, 1, 0)).reshape(-1, out_channels)
        ints, colscale = _integer_weights(node, qk, unit)
        weights = ints.T
        offset = np.einsum("ochw,c->o", value, b_c)
    offset = offset + _bias(lowering, node, out_channels)
    out_shape = lowering.shape(node.output[0], node)
    vectors = int(np.prod(out_shape[2:]))
    lowering.pending = Pending(
        "acc", node.output[0], nhwc_index(out_shape), stream=source, weights=weights,
        acc_scale=np.tile(colscale, vectors), acc_offset=np.tile(offset, vectors),
        acc_float32=node.op_type == "Conv", node=node,
        weight_type=weight_dtype(weights, declared),
        conv={"vectors": vectors, "kernel": (kh, kw), "depthwise": depthwise})
    if node.op_type == "QLinearConv":
        lowering.pending.steps.append(qlinear_requant(lowering, node, (1, 4, 6), 7,
                                                      out_shape))


def _conv_weights(lowering, node):
    """``(q, scale, value, declared)`` of the node's weights ``(M, C/group, *kernel)``, with
    ``value == scale * q``; for ``ConvInteger``/``QLinearConv`` the integers less their zero
    point (one, or one per output channel)."""
    index = 3 if node.op_type == "QLinearConv" else 1
    const = lowering.constants.parameter(node, index, "weight")
    q, scale, declared = lowering.constants.weights(node, const, node.input[index])
    value = np.asarray(const.value, dtype=np.float64)
    if node.op_type == "Conv":
        return q, scale, value, declared
    zero_index = 5 if node.op_type == "QLinearConv" else 3
    zero = lowering.constants.parameter(node, zero_index, "zero point")
    if zero is not None:
        zero = np.asarray(zero.value, dtype=np.int64)
        if zero.size != 1 and (zero.ndim != 1 or zero.size != value.shape[0]):
            raise node_error(node, f"has a weight zero point of shape {zero.shape} for "
                             f"weights of shape {value.shape}", "one weight zero point, or "
                             "one per output channel")
        q = q - (zero.reshape(()) if zero.size == 1 else
                 zero.reshape((-1,) + (1,) * (value.ndim - 1)))
    return q, np.ones(q.shape), q.astype(np.float64), declared


def _bias(lowering, node, out_channels):
    """The per-output-channel bias (Conv's float input 2, QLinearConv's int32 input 8 added
    to the accumulator), or 0."""
    index = {"Conv": 2, "QLinearConv": 8}.get(node.op_type)
    if index is None or len(node.input) <= index or not node.input[index]:
        return 0.0
    bias = np.asarray(lowering.constants.parameter(node, index, "bias").value,
                      dtype=np.float64).reshape(-1)
    if bias.size not in (1, out_channels):
        raise node_error(node, f"has a bias of {bias.size} values for {out_channels} output "
                         f"channels", "one bias per output channel")
    return bias
