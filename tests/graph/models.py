"""Builder of small ONNX/QONNX/FINN-ONNX/QDQ test models (onnx.helper), and random MLPs."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from graph.finn_onnx import make_model

QONNX = "qonnx.custom_op.general"
FINN = "finn.custom_op.general"


class Builder:
    """Builds a one-input graph node by node.

    Parameters
    ----------
    input_shape : tuple
        Shape of the graph input (batch first; a string dimension is symbolic).
    input_dtype : str, optional
        ``finn_datatype`` annotation of the input.
    """

    def __init__(self, input_shape=(1, 8), input_dtype=None, name="net", elem_type=None):
        self.name = name
        self.nodes, self.inits, self.annotations = [], [], {}
        self.input = helper.make_tensor_value_info("x", elem_type or TensorProto.FLOAT,
                                                   list(input_shape))
        if input_dtype:
            self.annotations["x"] = input_dtype
        self._count = 0

    def fresh(self, prefix):
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, value, dtype=None, name=None, np_type=np.float32):
        """An initializer (float32 unless ``np_type``); ``dtype``: its annotation."""
        name = name or self.fresh("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np_type), name))
        if dtype:
            self.annotations[name] = dtype
        return name

    def node(self, op, inputs, outputs=1, domain="", name=None, **attrs):
        """Add a node; constants among ``inputs`` may be numpy arrays. Returns its output
        name (or names when ``outputs > 1``)."""
        names = [self.const(i) if isinstance(i, np.ndarray) else i for i in inputs]
        outs = [self.fresh(op.lower() + "_out") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, names, outs, name=name or self.fresh(op),
                                           domain=domain, **attrs))
        return outs[0] if outputs == 1 else outs

    def quant(self, x, scale, bits, signed=1, zero=0.0, narrow=0, rounding="ROUND",
              domain=QONNX, name=None):
        return self.node("Quant", [x, self.const(scale), self.const(zero), self.const(bits)],
                         domain=domain, signed=signed, narrow=narrow, rounding_mode=rounding,
                         name=name)

    def bipolar_quant(self, x, scale=1.0, domain=QONNX, name=None):
        return self.node("BipolarQuant", [x, self.const(scale)], domain=domain, name=name)

    def multithreshold(self, x, thresholds, out_dtype, out_scale=None, out_bias=None,
                       domain=FINN, name=None):
        attrs = {"out_dtype": out_dtype}
        if out_scale is not None:
            attrs["out_scale"] = float(out_scale)
        if out_bias is not None:
            attrs["out_bias"] = float(out_bias)
        return self.node("MultiThreshold", [x, self.const(thresholds)], domain=domain,
                         name=name, **attrs)

    def matmul(self, x, weights, dtype=None, name=None):
        return self.node("MatMul", [x, self.const(weights, dtype)], name=name)

    def quant_matmul(self, x, weights_int, scale, bits, name=None):
        """MatMul with QONNX-quantized weights ``scale * weights_int``."""
        w = self.quant(self.const(np.asarray(weights_int) * scale), scale, bits)
        return self.node("MatMul", [x, w], name=name)

    def annotate(self, name, dtype):
        self.annotations[name] = dtype

    def build(self, output, out_type=TensorProto.FLOAT, opset=13):
        graph = helper.make_graph(self.nodes, self.name, [self.input],
                                  [helper.make_tensor_value_info(output, out_type, None)],
                                  initializer=self.inits)
        return make_model(graph, self.annotations, opset=opset, producer="")


def qonnx_mlp(rng, sizes=(8, 6, 4), wbits=2, abits=2, in_bits=4, in_scale=0.25,
              w_scale=0.5, a_scale=0.5, bias=False, per_channel=False, output="scores"):
    """A random QONNX MLP: Quant input, Quant weights, Relu + Quant activations."""
    b = Builder((1, sizes[0]))
    x = b.quant("x", in_scale, in_bits, signed=0)
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        high = 2 ** (wbits - 1) - 1
        w = rng.integers(-high - 1, high + 1, size=(n_in, n_out))
        scale = w_scale * (2.0 ** rng.integers(-1, 2, size=(1, n_out)) if per_channel else 1)
        x = b.quant_matmul(x, w, scale, wbits, name=f"fc{layer}")
        if bias:
            x = b.node("Add", [x, (rng.integers(-4, 5, size=n_out) * 0.125).astype(np.float32)])
        if layer < len(sizes) - 2:
            x = b.node("Relu", [x])
            x = b.quant(x, a_scale, abits, signed=0, name=f"act{layer}")
    if output == "argmax":
        x = b.node("ArgMax", [x], axis=1, keepdims=1)
        return b.build(x, TensorProto.INT64)
    return b.build(x)


def classifier_with_bias(r, select="argmax", k=2):
    """QONNX: a hidden Relu + Quant layer, then a final MatMul whose accumulator scale is
    0.5 * 0.5 = 0.25, a per-class bias of integer multiples of 0.25, and ArgMax or TopK."""
    b = Builder((1, 8))
    x = b.quant("x", 0.25, 4, signed=0)
    x = b.quant_matmul(x, r.integers(-2, 2, size=(8, 6)), 0.5, 2, name="fc0")
    x = b.node("Relu", [x])
    x = b.quant(x, 0.5, 2, signed=0, name="act0")
    x = b.quant_matmul(x, r.integers(-2, 2, size=(6, 5)), 0.5, 2, name="fc1")
    x = b.node("Add", [x, (r.integers(-3, 4, size=5) * 0.25).astype(np.float32)], name="bias")
    if select == "argmax":
        x = b.node("ArgMax", [x], axis=1, keepdims=1)
    else:
        _, x = b.node("TopK", [x, b.const([k], np_type=np.int64)], outputs=2, axis=-1)
    return b.build(x, TensorProto.INT64)


def random_input(rng, n, shape, low=-1.0, high=4.0):
    """Float inputs on a grid that includes exact quantizer boundaries."""
    return (rng.integers(int(low * 16), int(high * 16) + 1, size=(n,) + tuple(shape)) / 16
            ).astype(np.float32)


# --- CNNs -----------------------------------------------------------------------------------

def quant_conv(b, x, rng, in_ch, out_ch, kernel=3, bits=2, scale=0.5, name=None, group=1,
               bias=False, per_channel=False, **attrs):
    """A Conv with QONNX-quantized weights ``scale * integers`` (per output channel scales of
    powers of two when ``per_channel``)."""
    high = 2 ** (bits - 1) - 1
    k = (kernel, kernel) if np.ndim(kernel) == 0 else tuple(kernel)
    shape = (out_ch, in_ch // group) + k
    w = rng.integers(-high - 1, high + 1, size=shape)
    s = scale * (2.0 ** rng.integers(-1, 2, size=(out_ch,) + (1,) * len(k) + (1,))
                 if per_channel else 1.0)
    s = np.asarray(s, dtype=np.float32)
    if np.ndim(s):
        s = s.reshape((out_ch, 1) + (1,) * len(k))
    wq = b.quant(b.const(w * s), s, bits)
    inputs = [x, wq]
    if bias:
        inputs.append(b.const((rng.integers(-4, 5, size=out_ch) * 0.125).astype(np.float32)))
    return b.node("Conv", inputs, name=name, group=group, kernel_shape=list(k), **attrs)


def batchnorm(b, x, rng, channels, name=None):
    """An inference BatchNormalization with random (positive and negative) scales."""
    gamma = rng.uniform(0.5, 1.5, channels) * rng.choice([-1, 1], channels, p=[0.2, 0.8])
    return b.node("BatchNormalization",
                  [x, b.const(gamma.astype(np.float32)),
                   b.const(rng.uniform(-0.5, 0.5, channels).astype(np.float32)),
                   b.const(rng.uniform(-0.5, 0.5, channels).astype(np.float32)),
                   b.const(rng.uniform(0.5, 2.0, channels).astype(np.float32))],
                  name=name, epsilon=1e-5)


def qonnx_cnn(rng, size=6, channels=(1, 4, 4), classes=3, pad=1, pool="MaxPool",
              bn=True, depthwise=False, residual=False, output="scores", res_convs=1,
              concat=False, pool_scale=None):
    """A small QONNX CNN on a ``(1, C, size, size)`` UINT4-quantized input: conv (padding
    ``pad``) [+ BN] + Relu + Quant, [a depthwise conv, a residual block], pooling, Flatten,
    MatMul."""
    b = Builder((1, channels[0], size, size))
    x = b.quant("x", 1.0, 4, signed=0)
    c = channels[1]
    x = quant_conv(b, x, rng, channels[0], c, pads=[pad] * 4, name="conv0", bias=True)
    if bn:
        x = batchnorm(b, x, rng, c, name="bn0")
    x = b.node("Relu", [x])
    x = b.quant(x, 0.5, 2, signed=0, name="act0")
    if depthwise:
        x = quant_conv(b, x, rng, c, c, group=c, pads=[1] * 4, name="dw1")
        x = b.node("Relu", [x])
        x = b.quant(x, 0.5, 2, signed=0, name="act_dw")
    if residual:
        skip = x
        y = x
        for k in range(res_convs):
            y = quant_conv(b, y, rng, c, c, pads=[1] * 4, name=f"res_conv{k}")
            y = b.node("Relu", [y])
            y = b.quant(y, 0.5 if k == res_convs - 1 else 0.25, 2, signed=0,
                        name=f"res_act{k}")
        x = b.node("Add", [skip, y], name="res_add")
        x = b.quant(x, 0.5, 3, signed=0, name="res_out")
    if concat:
        y = quant_conv(b, x, rng, c, c, kernel=1, name="branch")
        y = b.node("Relu", [y])
        y = b.quant(y, 0.25, 3, signed=0, name="branch_act")
        x = b.node("Concat", [x, y], axis=1, name="cat")
        c = 2 * c
    c2 = channels[2]
    x = quant_conv(b, x, rng, c, c2, name="conv1", per_channel=True)
    x = b.node("Relu", [x])
    x = b.quant(x, 0.5, 2, signed=0, name="act1")
    if pool == "MaxPool":
        x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], name="pool")
    elif pool == "GlobalAveragePool":
        x = b.node("GlobalAveragePool", [x], name="pool")
        x = b.quant(x, 0.25, 3, signed=0, name="act_pool")
    elif pool == "AveragePool":
        x = b.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2], name="pool")
        x = b.node("Relu", [x])
        x = b.quant(x, 0.25, 3, signed=0, name="act_pool")
    if pool_scale is not None:  # a positive per-channel scale after the pooling
        x = b.node("Mul", [x, np.asarray(pool_scale, np.float32).reshape(1, -1, 1, 1)],
                   name="pool_scale")
    x = b.node("Flatten", [x], axis=1, name="flatten")
    features = int(np.prod(_cnn_out(size, pad, depthwise, residual, pool, c2)))
    x = b.quant_matmul(x, rng.integers(-2, 2, size=(features, classes)), 0.5, 2, name="fc")
    if output == "argmax":
        x = b.node("ArgMax", [x], axis=1, keepdims=1)
        return b.build(x, TensorProto.INT64)
    return b.build(x)


def _cnn_out(size, pad, depthwise, residual, pool, channels):
    side = size + 2 * pad - 2 - 2      # conv0 (3x3, pad), conv1 (3x3, no pad)
    if pool in ("MaxPool", "AveragePool"):
        side //= 2
    elif pool == "GlobalAveragePool":
        side = 1
    return (channels, side, side)


def integer_input_model(r, elem_type):
    """A model whose graph input is integer-typed, with no annotation: ``uint8`` into a
    ``QLinearMatMul`` (uint8 output), or ``int8`` into a ``MatMulInteger`` (cast to float),
    8 inputs, 5 outputs, constant weights."""
    b = Builder((1, 8), elem_type=elem_type)
    if elem_type == TensorProto.UINT8:
        u8 = lambda v: b.const(np.uint8(v), np_type=np.uint8)  # noqa: E731
        weights = b.const(r.integers(0, 4, size=(8, 5)), np_type=np.uint8)
        y = b.node("QLinearMatMul", ["x", b.const(np.float32(1.0)), u8(0), weights,
                                     b.const(np.float32(0.5)), u8(1), b.const(np.float32(64.0)),
                                     u8(7)], name="qlmm")
        return b.build(y, TensorProto.UINT8)
    acc = b.node("MatMulInteger", ["x", b.const(r.integers(-3, 4, size=(8, 5)),
                                                np_type=np.int8)], name="mmi")
    return b.build(b.node("Cast", [acc], to=TensorProto.FLOAT))


# --- integer ONNX ops on integer graph inputs -----------------------------------------------

INTEGER_NP_TYPES = {TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8}


def integer_inputs(r, elem_type, n, shape):
    """``n`` random inputs of an integer graph input over its element type's whole range."""
    info = np.iinfo(INTEGER_NP_TYPES[elem_type])
    return r.integers(info.min, info.max + 1, size=(n,) + tuple(shape))


def _integer_const(b, value, np_type):
    return b.const(np.asarray(value, dtype=np_type), np_type=np_type)


def _to_uint8(b, x, scale):
    """Cast an int32 accumulator to float, scale it and quantize it to uint8 (zero point
    128)."""
    x = b.node("Cast", [x], to=TensorProto.FLOAT)
    x = b.node("Mul", [x, np.array(scale, np.float32)])
    return b.node("QuantizeLinear", [x, b.const(np.float32(1.0)),
                                     _integer_const(b, 128, np.uint8)], name="requant")


def _flatten_nhwc(b, x):
    """A feature map as a graph output: NHWC (the stream order), flattened."""
    x = b.node("Transpose", [x], perm=[0, 2, 3, 1], name="to_nhwc")
    return b.node("Flatten", [x], axis=1, name="flatten")


def matmul_integer_model(r, elem_type, features=(16, 10)):
    """A ``MatMulInteger`` on a uint8 or int8 graph input (input zero point, int8 weights
    with a zero point per column), cast to float, scaled and quantized to uint8."""
    np_type = INTEGER_NP_TYPES[elem_type]
    b = Builder((1, features[0]), elem_type=elem_type, name="matmulinteger")
    weights = _integer_const(b, r.integers(-8, 8, size=features), np.int8)
    x_zero = _integer_const(b, 128 if np_type == np.uint8 else -3, np_type)
    w_zero = _integer_const(b, r.integers(-2, 3, size=features[1]), np.int8)
    acc = b.node("MatMulInteger", ["x", weights, x_zero, w_zero], name="mmi")
    return b.build(_to_uint8(b, acc, 1 / 64), TensorProto.UINT8)


def qlinear_matmul_model(r, elem_type, features=(16, 10), per_column=False, y_zero=None):
    """A ``QLinearMatMul`` on a uint8 graph input (uint8 weights and output) or an int8 one
    (int8 weights and output), with zero points; power-of-two scales (one, or one per
    column when ``per_column``)."""
    np_type = INTEGER_NP_TYPES[elem_type]
    b = Builder((1, features[0]), elem_type=elem_type, name="qlinearmatmul")
    if np_type == np.uint8:
        weights, w_zero, x_zero = r.integers(0, 16, size=features), 8, 100
        y_zero = 128 if y_zero is None else y_zero
    else:
        weights, w_zero, x_zero = r.integers(-8, 8, size=features), 0, -5
        y_zero = -4 if y_zero is None else y_zero
    w_scale = np.float32(0.25)
    if per_column:
        w_scale = (0.25 * 2.0 ** r.integers(-1, 2, size=features[1])).astype(np.float32)
    y = b.node("QLinearMatMul", ["x", b.const(np.float32(0.5)), _integer_const(b, x_zero, np_type),
                                 _integer_const(b, weights, np_type), b.const(w_scale),
                                 _integer_const(b, w_zero, np_type), b.const(np.float32(4.0)),
                                 _integer_const(b, y_zero, np_type)], name="qlmm")
    return b.build(y, elem_type)


def conv_integer_model(r, elem_type, channels=(3, 4), size=6):
    """A 3x3 ``ConvInteger`` (padding 1) on a ``(1, 3, 6, 6)`` uint8 or int8 graph input,
    uint8 weights, both zero points; cast, scaled and quantized to uint8, output in NHWC
    order."""
    np_type = INTEGER_NP_TYPES[elem_type]
    b = Builder((1, channels[0], size, size), elem_type=elem_type, name="convinteger")
    weights = _integer_const(b, r.integers(0, 9, size=(channels[1], channels[0], 3, 3)),
                             np.uint8)
    x_zero = _integer_const(b, 3 if np_type == np.uint8 else -2, np_type)
    acc = b.node("ConvInteger", ["x", weights, x_zero, _integer_const(b, 4, np.uint8)],
                 name="convint", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return b.build(_flatten_nhwc(b, _to_uint8(b, acc, 1 / 64)), TensorProto.UINT8)


def _qlinear_conv(b, r, x, np_type, in_ch, out_ch, per_channel, bias, group=1,
                  x_scale=0.5, y_scale=4.0, x_zero=None, y_zero=None, name="qlconv",
                  kernel=(3, 3), **attrs):
    if x_zero is None:
        x_zero = 3 if np_type == np.uint8 else -2
    if y_zero is None:
        y_zero = 128 if np_type == np.uint8 else -6
    weights = r.integers(-4, 5, size=(out_ch, in_ch // group) + tuple(kernel))
    w_scale = np.float32(0.25)
    if per_channel:
        w_scale = (0.25 * 2.0 ** r.integers(-1, 2, size=out_ch)).astype(np.float32)
    inputs = [x, b.const(np.float32(x_scale)), _integer_const(b, x_zero, np_type),
              _integer_const(b, weights, np.int8), b.const(w_scale),
              _integer_const(b, np.zeros(out_ch) if per_channel else 0, np.int8),
              b.const(np.float32(y_scale)), _integer_const(b, y_zero, np_type)]
    if bias:
        inputs.append(b.const(r.integers(-100, 101, size=out_ch), np_type=np.int32))
    return b.node("QLinearConv", inputs, name=name, kernel_shape=list(kernel), group=group,
                  **attrs)


def qlinear_conv_model(r, elem_type, per_channel=False, bias=True, channels=(3, 4), size=6,
                       depthwise=False, y_zero=None, one_d=False):
    """A 3x3 ``QLinearConv`` (padding 1) on a ``(1, 3, 6, 6)`` uint8 or int8 graph input:
    int8 weights with one power-of-two scale or one per output channel, an int32 bias, the
    output of the input's type, in NHWC order. ``depthwise``: group = channels; ``one_d``: a
    1-D convolution (kernel 3, stride 2, padding 1) on ``(1, 3, 4 * size)``."""
    np_type = INTEGER_NP_TYPES[elem_type]
    in_ch = channels[1] if depthwise else channels[0]
    spatial, kernel, attrs = (size, size), (3, 3), {"pads": [1, 1, 1, 1]}
    if one_d:
        spatial, kernel, attrs = (4 * size,), (3,), {"pads": [1, 1], "strides": [2]}
    b = Builder((1, in_ch) + spatial, elem_type=elem_type, name="qlinearconv")
    y = _qlinear_conv(b, r, "x", np_type, in_ch, channels[1], per_channel, bias,
                      group=channels[1] if depthwise else 1, y_zero=y_zero, kernel=kernel,
                      **attrs)
    if one_d:
        y = b.node("Transpose", [y], perm=[0, 2, 1], name="to_nlc")
        return b.build(b.node("Flatten", [y], axis=1, name="flatten"), elem_type)
    return b.build(_flatten_nhwc(b, y), elem_type)


def qlinear_cnn_model(r, size=6):
    """An integer CNN as an ONNX quantizer writes one: uint8 ``(1, 3, 6, 6)`` input,
    QLinearConv (3x3, padding 1, per-channel scales, bias), a depthwise QLinearConv (3x3, no
    padding, stride 1), Transpose to NHWC and Flatten, QLinearMatMul to 5 uint8 outputs."""
    b = Builder((1, 3, size, size), elem_type=TensorProto.UINT8, name="qlinearcnn")
    x = _qlinear_conv(b, r, "x", np.uint8, 3, 4, True, True, pads=[1, 1, 1, 1], name="conv0")
    x = _qlinear_conv(b, r, x, np.uint8, 4, 4, False, True, group=4, x_scale=4.0,
                      x_zero=128, y_scale=8.0, name="dw1")
    x = _flatten_nhwc(b, x)
    features = 4 * (size - 2) ** 2
    u8 = lambda v: _integer_const(b, v, np.uint8)  # noqa: E731
    y = b.node("QLinearMatMul", [x, b.const(np.float32(8.0)), u8(128),
                                 u8(r.integers(0, 16, size=(features, 5))),
                                 b.const(np.float32(0.125)), u8(8), b.const(np.float32(32.0)),
                                 u8(100)], name="fc")
    return b.build(y, TensorProto.UINT8)
