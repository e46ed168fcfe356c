"""FINN's CNV topology (the CIFAR-10 network of ``brevitas_examples.bnn_pynq``) in QONNX, with
random weights and batch-norm statistics, built with ``onnx.helper`` (no torch needed).

Input: ``(1, 3, 32, 32)`` UINT8 pixels (annotated, as FINN's flow does), divided by 255,
mapped to ``[-1, 1)`` and quantized by an 8-bit signed ``Quant`` of scale ``2**-7`` (the
first layer's input quantizer of CNV). Six 3x3 convolutions without padding (64, 64, max
pool 2x2, 128, 128, max pool, 256, 256), then fully-connected 256-512-512-10; every layer
with ``BatchNormalization`` and a ``BipolarQuant`` (sign) activation, weights binarized by
``BipolarQuant`` nodes on the float weights (W1A1), and ``ArgMax`` at the end. The batch-norm
statistics centre every accumulator, so the signs are balanced.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graph.finn_onnx import make_model

QONNX = "qonnx.custom_op.general"
CONVS = (64, 64, "pool", 128, 128, "pool", 256, 256)
FCS = (512, 512, 10)


def cnv_model(path, seed=0):
    """Write a random CNV-W1A1 to ``path``; returns the path."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = [0]

    def const(value, dtype=np.float32):
        count[0] += 1
        name = f"c{count[0]}"
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op, inputs, name, domain="", **attrs):
        out = f"{name}_out"
        nodes.append(helper.make_node(op, inputs, [out], name=name, domain=domain, **attrs))
        return out

    def bipolar(x, name):
        return node("BipolarQuant", [x, const(1.0)], name, domain=QONNX)

    def batchnorm(x, channels, fan_in, name):
        mean = rng.normal(0, 0.3 * np.sqrt(fan_in), channels)
        var = np.full(channels, float(fan_in))
        gamma = rng.uniform(0.5, 1.5, channels)
        beta = rng.normal(0, 0.1, channels)
        return node("BatchNormalization", [x] + [const(v) for v in (gamma, beta, mean, var)],
                    name, epsilon=1e-4)

    x = node("Div", ["pixels", const(255.0)], "scale_input")
    x = node("Mul", [x, const(2.0)], "double")
    x = node("Sub", [x, const(1.0)], "centre")
    x = node("Quant", [x, const(2.0 ** -7), const(0.0), const(8.0)], "input_quant",
             domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND")
    channels = 3
    for index, layer in enumerate(CONVS):
        if layer == "pool":
            x = node("MaxPool", [x], f"pool{index}", kernel_shape=[2, 2], strides=[2, 2])
            continue
        w = rng.choice([-1.0, 1.0], size=(layer, channels, 3, 3))
        x = node("Conv", [x, bipolar(const(w), f"w_conv{index}")], f"conv{index}",
                 kernel_shape=[3, 3])
        x = batchnorm(x, layer, 9 * channels, f"bn_conv{index}")
        x = bipolar(x, f"act_conv{index}")
        channels = layer
    x = node("Flatten", [x], "flatten", axis=1)
    for index, width in enumerate(FCS):
        w = rng.choice([-1.0, 1.0], size=(channels, width))
        x = node("MatMul", [x, bipolar(const(w), f"w_fc{index}")], f"fc{index}")
        if index < len(FCS) - 1:
            x = batchnorm(x, width, channels, f"bn_fc{index}")
            x = bipolar(x, f"act_fc{index}")
        channels = width
    x = node("ArgMax", [x], "argmax", axis=1, keepdims=1)
    graph = helper.make_graph(
        nodes, "cnv_w1a1",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(x, TensorProto.INT64, None)], initializer=inits)
    model = make_model(graph, {"pixels": "UINT8"}, opset=13, producer="hwgen-benchmarks")
    onnx.save(model, str(path))
    return path


def cnv_images(rng, n):
    """Smooth random uint8 images ``(n, 3, 32, 32)`` (low-frequency fields plus noise)."""
    coarse = rng.uniform(0, 255, size=(n, 3, 4, 4))
    images = np.kron(coarse, np.ones((8, 8)))
    images += rng.normal(0, 20, size=images.shape)
    return np.clip(np.round(images), 0, 255).astype(np.float32)
