"""Train three small W2A2 CNNs on scikit-learn's 8x8 digits in numpy and export them as QONNX.

All three take the float pixels 0..16 as an NCHW image ``pixels`` of shape ``(1, 1, 8, 8)``,
divide them by 16 and quantize them with a 5-bit unsigned ``Quant`` of scale 1/16 (so the
stream carries the pixel values), and output the 10 class scores ``scores`` ``(1, 10)``
(float: the last ``MatMul`` plus a float bias per class). Weights are INT2 (a ``Quant`` on
each weight initializer, one power-of-two scale per tensor), activations UINT2 after
``Relu`` with a power-of-two scale of 1/2; ``BatchNormalization`` carries the learnt scale
and bias and the running mean and variance (recomputed over the whole training set after
training). Nodes are in the default domain (opset 13) and ``qonnx.custom_op.general``.

- ``digits_cnn.onnx``: Conv 3x3 (8 channels, padding 1) -> BN -> Relu -> UINT2 ->
  Conv 3x3 (16 channels, no padding) -> BN -> Relu -> UINT2 -> MaxPool 2x2 -> Flatten ->
  MatMul 144x10 -> Add bias. Feature maps 8x8x8, 6x6x16, 3x3x16.
- ``digits_cnn_residual.onnx``: the first Conv, BN, Relu, UINT2 (``q1``, 8x8x8), then one
  residual block: Conv 3x3 (8, padding 1) -> BN -> Relu -> UINT2 -> Conv 3x3 (8, padding 1)
  -> BN -> INT2 ``Quant`` of the same scale as ``q1`` (no Relu, so the branch can subtract)
  -> ``Add`` with ``q1`` -> Relu -> UINT3 of that scale again -> MaxPool 2x2 -> Flatten ->
  MatMul 128x10 -> Add bias. Both addends share one scale, so the hardware adds the
  integers; the sum of a UINT2 and an INT2 lies in -2..4, 0..4 after the Relu, which UINT3
  holds exactly (the last ``Quant`` only declares the type, it never rounds nor clips).
- ``digits_cnn_dw.onnx``: depthwise-separable: Conv 3x3 (8, padding 1) -> BN -> Relu ->
  UINT2 -> depthwise Conv 3x3 (``group=8``, weights ``(8, 1, 3, 3)``, padding 1) -> BN ->
  Relu -> UINT2 -> pointwise Conv 1x1 (16) -> BN -> Relu -> UINT2 -> GlobalAveragePool ->
  UINT8 ``Quant`` of scale 1/128 -> Flatten -> MatMul 16x10 -> Add bias. The mean of 64
  UINT2 values of scale 1/2 is a multiple of 1/128 below 2, so that ``Quant`` is exact too
  (it declares the sum of the pooling window, 0..192, as the integer the hardware carries):
  training sees the plain average, the same as without a ``Quant`` there.

Training is quantization-aware (straight-through estimators, Adam, batch statistics in the
BatchNormalization layers, a logit gain of 4 in the loss only), vectorised with im2col
convolutions in numpy on one BLAS thread, with fixed seeds; it reuses ``train_digits``'
split, optimizer and training loop. The plain and residual CNNs train for 30 epochs (about
10 s each), the depthwise-separable one, whose 16 pooled features learn more slowly, for
200 (under a minute). The held-out split is ``train_digits``' (``digits_test_x.npy``,
``digits_test_y.npy``: the 360 images ``load_split`` holds out).

Run ``python examples/train_digits_cnn.py`` (add ``--verify`` to run each exported model
through qonnx's ``execute_onnx`` on the held-out split, print its accuracy and check that
it labels every image as the numpy forward pass does).
"""

import argparse
import os
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from onnx import TensorProto, helper, numpy_helper
from threadpoolctl import threadpool_limits

from train_digits import (HERE, QONNX, SEED, W_LEVELS, _save, load_split, power_of_two,
                          softmax_grad, train)

ACT_SCALE = 0.5  # every activation quantizer: UINT2 (or INT2 / UINT3 in the residual block)
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
MODELS = ("digits_cnn", "digits_cnn_residual", "digits_cnn_dw")


def quantize_weight(w):
    """INT2 weights with one power-of-two scale: ``(quantized, scale, STE pass mask)``."""
    scale = power_of_two(np.abs(w).mean())
    ratio = w / scale
    wq = np.clip(np.round(ratio), *W_LEVELS) * scale
    return wq, scale, (ratio > W_LEVELS[0] - 0.5) & (ratio < W_LEVELS[1] + 0.5)


class Exporter:
    """Collects the ONNX nodes and initializers of one model; every node is named."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name, value):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op, name, inputs, output=None, **attrs):
        output = output or name + "_out"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def quant(self, name, x, scale, bits, signed):
        inputs = [x, self.const(name + "_scale", scale), self.const(name + "_zeropt", 0.0),
                  self.const(name + "_bitwidth", bits)]
        return self.node("Quant", name, inputs, domain=QONNX, signed=int(signed), narrow=0,
                         rounding_mode="ROUND")

    def save(self, path, name):
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 1, 8, 8])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 10])],
            initializer=self.inits)
        _save(graph, path)


# --- layers: forward(x, mode) with mode "train" (batch statistics, keep what backward
# needs), "stats" (batch statistics over the whole set become the running ones) or "eval";
# backward(grad) fills self.grads (aligned with self.params) and returns the input gradient.

class Layer:
    params = ()

    def __init__(self, name):
        self.name = name
        self.grads = []


def conv2d(x, w, pad, depthwise):
    """Stride-1 convolution of ``x`` (N, C, H, W) by ``w`` (O, C or 1, k, k) with zero
    padding ``pad``: ``(output, what the weight gradient needs)`` (im2col columns, or the
    windows of a depthwise convolution)."""
    k = w.shape[-1]
    windows = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))),
                                  (k, k), axis=(2, 3))  # N C OH OW k k
    if depthwise:
        return np.einsum("nchwij,cij->nchw", windows, w[:, 0], optimize=True), windows
    n, _, oh, ow = windows.shape[:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1)
    y = (cols @ w.reshape(len(w), -1).T).reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)
    return y, cols


class Conv(Layer):
    """Square convolution, stride 1, no bias, INT2 weights; ``group`` is 1 or the channel
    count (depthwise)."""

    def __init__(self, name, rng, cin, cout, k, pad, group=1):
        super().__init__(name)
        fan_in = cin // group * k * k
        self.w = rng.normal(0, np.sqrt(2 / fan_in), (cout, cin // group, k, k))
        self.params = [self.w]
        self.k, self.pad, self.group = k, pad, group
        self.depthwise = group > 1
        assert not self.depthwise or group == cin == cout

    def forward(self, x, mode):
        wq, _, pass_w = quantize_weight(self.w)
        y, saved = conv2d(x, wq, self.pad, self.depthwise)
        if mode == "train":
            self.cache = (saved, wq, pass_w)
        return y

    def backward(self, grad):
        saved, wq, pass_w = self.cache
        flipped = wq[:, :, ::-1, ::-1]
        if self.depthwise:
            gw = np.einsum("nchwij,nchw->cij", saved, grad, optimize=True)[:, None]
        else:
            gw = (grad.transpose(0, 2, 3, 1).reshape(len(saved), -1).T @ saved).reshape(wq.shape)
            flipped = flipped.transpose(1, 0, 2, 3)
        self.grads = [gw * pass_w]
        # the input gradient: the output gradient convolved with the flipped kernel
        return conv2d(grad, flipped, self.k - 1 - self.pad, self.depthwise)[0]

    def export(self, ex, x):
        _, scale, _ = quantize_weight(self.w)
        w = ex.quant(self.name + "_weight_quant", ex.const(self.name + "_weight", self.w),
                     scale, 2, True)
        p = self.pad
        return ex.node("Conv", self.name, [x, w], kernel_shape=[self.k, self.k],
                       pads=[p, p, p, p], strides=[1, 1], dilations=[1, 1], group=self.group)


class BatchNorm(Layer):
    def __init__(self, name, channels):
        super().__init__(name)
        self.gamma, self.beta = np.ones(channels), np.zeros(channels)
        self.mean, self.var = np.zeros(channels), np.ones(channels)
        self.params = [self.gamma, self.beta]

    def forward(self, x, mode):
        if mode == "eval":
            mean, var = self.mean, self.var
        else:
            mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
            if mode == "stats":
                self.mean[...], self.var[...] = mean, var
            else:
                self.mean += BN_MOMENTUM * (mean - self.mean)
                self.var += BN_MOMENTUM * (var - self.var)
        inv = 1 / np.sqrt(var + BN_EPS)
        xhat = (x - mean[:, None, None]) * inv[:, None, None]
        if mode == "train":
            self.cache = (xhat, inv)
        return xhat * self.gamma[:, None, None] + self.beta[:, None, None]

    def backward(self, grad):
        xhat, inv = self.cache
        self.grads = [(grad * xhat).sum(axis=(0, 2, 3)), grad.sum(axis=(0, 2, 3))]
        dxhat = grad * self.gamma[:, None, None]
        m = grad.shape[0] * grad.shape[2] * grad.shape[3]
        return inv[:, None, None] / m * (
            m * dxhat - dxhat.sum(axis=(0, 2, 3))[:, None, None]
            - xhat * (dxhat * xhat).sum(axis=(0, 2, 3))[:, None, None])

    def export(self, ex, x):
        n = self.name
        return ex.node("BatchNormalization", n, [
            x, ex.const(n + "_gamma", self.gamma), ex.const(n + "_beta", self.beta),
            ex.const(n + "_mean", self.mean), ex.const(n + "_var", self.var)],
            epsilon=BN_EPS)


class ActQuant(Layer):
    """Optional Relu, then a power-of-two-scaled integer quantizer (straight-through
    gradient inside the range)."""

    def __init__(self, name, bits, signed=False, relu=True, scale=ACT_SCALE):
        super().__init__(name)
        self.bits, self.signed, self.relu, self.scale = bits, signed, relu, scale
        self.lo = -2 ** (bits - 1) if signed else 0
        self.hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1

    def forward(self, x, mode):
        z = np.maximum(x, 0) if self.relu else x
        u = z / self.scale
        if mode == "train":
            self.cache = (u > self.lo - 0.5) & (u < self.hi + 0.5) & ((x > 0) | (not self.relu))
        return np.clip(np.round(u), self.lo, self.hi) * self.scale

    def backward(self, grad):
        return grad * self.cache

    def export(self, ex, x):
        if self.relu:
            x = ex.node("Relu", self.name.replace("quant", "relu"), [x])
        return ex.quant(self.name, x, self.scale, self.bits, self.signed)


class MaxPool(Layer):
    """2x2, stride 2 (the gradient goes to every maximum of a window, shared)."""

    def forward(self, x, mode):
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
        y = blocks.max(axis=(3, 5))
        if mode == "train":
            hit = blocks == y[:, :, :, None, :, None]
            self.cache = hit / hit.sum(axis=(3, 5), keepdims=True)
        return y

    def backward(self, grad):
        share = self.cache
        n, c, h2, _, w2, _ = share.shape
        return (share * grad[:, :, :, None, :, None]).reshape(n, c, 2 * h2, 2 * w2)

    def export(self, ex, x):
        return ex.node("MaxPool", self.name, [x], kernel_shape=[2, 2], strides=[2, 2])


class GlobalAvgPool(Layer):
    """Mean over the feature map, then an exact UINT8 ``Quant`` (scale: the input scale
    divided by the 64 positions) in the exported model."""

    def forward(self, x, mode):
        self.shape = x.shape
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, grad):
        n, c, h, w = self.shape
        return np.broadcast_to(grad / (h * w), self.shape)

    def export(self, ex, x):
        x = ex.node("GlobalAveragePool", self.name, [x])
        return ex.quant(self.name + "_quant", x, ACT_SCALE / 64, 8, False)


class Flatten(Layer):
    def forward(self, x, mode):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad):
        return grad.reshape(self.shape)

    def export(self, ex, x):
        return ex.node("Flatten", self.name, [x], axis=1)


class Dense(Layer):
    """INT2 ``MatMul`` plus a float bias per class: the scores."""

    def __init__(self, name, rng, n_in, n_out):
        super().__init__(name)
        self.w = rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out))
        self.b = np.zeros(n_out)
        self.params = [self.w, self.b]

    def forward(self, x, mode):
        wq, _, pass_w = quantize_weight(self.w)
        if mode == "train":
            self.cache = (x, wq, pass_w)
        return x @ wq + self.b

    def backward(self, grad):
        x, wq, pass_w = self.cache
        self.grads = [(x.T @ grad) * pass_w, grad.sum(axis=0)]
        return grad @ wq.T

    def export(self, ex, x):
        _, scale, _ = quantize_weight(self.w)
        w = ex.quant(self.name + "_weight_quant", ex.const(self.name + "_weight", self.w),
                     scale, 2, True)
        x = ex.node("MatMul", self.name, [x, w])
        return ex.node("Add", self.name + "_bias", [x, ex.const(self.name + "_b", self.b)],
                       output="scores")


class Residual(Layer):
    """``x + branch(x)``: the skip connection is the block's input activation."""

    def __init__(self, name, branch):
        super().__init__(name)
        self.branch = branch
        self.params = [p for layer in branch for p in layer.params]

    def forward(self, x, mode):
        y = x
        for layer in self.branch:
            y = layer.forward(y, mode)
        return x + y

    def backward(self, grad):
        g = grad
        for layer in reversed(self.branch):
            g = layer.backward(g)
        self.grads = [gp for layer in self.branch for gp in layer.grads]
        return grad + g

    def export(self, ex, x):
        y = x
        for layer in self.branch:
            y = layer.export(ex, y)
        return ex.node("Add", self.name, [x, y])


class CNN:
    """A chain of layers on the ``(N, 1, 8, 8)`` image ``pixels / 16``, trained with
    ``train_digits.train`` (``forward`` and ``train_step`` like its MLPs)."""

    logit_gain = 4.0

    def __init__(self, name, layers):
        self.name, self.layers = name, layers
        self.params = [p for layer in layers for p in layer.params]

    def forward(self, pixels, mode="eval", train=False):
        x = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 8, 8) / 16.0
        for layer in self.layers:
            x = layer.forward(x, "train" if train else mode)
        return x, None

    def train_step(self, pixels, labels, optimizer):
        scores, _ = self.forward(pixels, train=True)
        grad = softmax_grad(scores * self.logit_gain, labels) * self.logit_gain
        for index, layer in enumerate(reversed(self.layers)):
            if index < len(self.layers) - 1:  # no gradient into the pixels
                grad = layer.backward(grad)
            else:
                layer.backward(grad)
        optimizer.step([g for layer in self.layers for g in layer.grads])

    def finalize(self, pixels):
        """Round the parameters to float32 (what the ONNX model holds), then set every
        BatchNormalization's running statistics to those of the whole training set."""
        for p in self.params:
            p[...] = p.astype(np.float32)
        self.forward(pixels, mode="stats")
        for bn in self.batchnorms():
            bn.mean[...], bn.var[...] = bn.mean.astype(np.float32), bn.var.astype(np.float32)

    def batchnorms(self):
        todo, found = list(self.layers), []
        while todo:
            layer = todo.pop(0)
            if isinstance(layer, Residual):
                todo[:0] = layer.branch
            elif isinstance(layer, BatchNorm):
                found.append(layer)
        return found

    def export(self, path):
        ex = Exporter()
        x = ex.node("Div", "scale_input", ["pixels", ex.const("pixel_range", 16.0)])
        x = ex.quant("input_quant", x, 1 / 16, 5, False)
        for layer in self.layers:
            x = layer.export(ex, x)
        assert x == "scores"
        ex.save(path, self.name)


def conv_block(name, rng, cin, cout, k=3, pad=1, group=1):
    """Conv -> BatchNormalization -> Relu -> UINT2."""
    return [Conv(name, rng, cin, cout, k, pad, group), BatchNorm(name + "_bn", cout),
            ActQuant(name + "_act_quant", 2)]


def make_model(name, rng):
    if name == "digits_cnn":
        layers = (conv_block("conv0", rng, 1, 8) + conv_block("conv1", rng, 8, 16, pad=0) +
                  [MaxPool("pool"), Flatten("flatten"), Dense("fc", rng, 144, 10)])
    elif name == "digits_cnn_residual":
        branch = (conv_block("res_conv0", rng, 8, 8) +
                  [Conv("res_conv1", rng, 8, 8, 3, 1), BatchNorm("res_conv1_bn", 8),
                   ActQuant("res_conv1_quant", 2, signed=True, relu=False)])
        layers = (conv_block("conv0", rng, 1, 8) + [
            Residual("res_add", branch), ActQuant("res_act_quant", 3), MaxPool("pool"),
            Flatten("flatten"), Dense("fc", rng, 128, 10)])
    elif name == "digits_cnn_dw":
        layers = (conv_block("conv0", rng, 1, 8) + conv_block("dwconv", rng, 8, 8, group=8) +
                  conv_block("pwconv", rng, 8, 16, k=1, pad=0) +
                  [GlobalAvgPool("gap"), Flatten("flatten"), Dense("fc", rng, 16, 10)])
    else:
        raise ValueError(name)
    return CNN(name, layers)


EPOCHS = {"digits_cnn": 30, "digits_cnn_residual": 30, "digits_cnn_dw": 200}


def accuracy(model, x, y):
    return float(np.mean(model.forward(x)[0].argmax(axis=1) == y))


def build(out_dir=HERE, names=MODELS):
    """Train the models and export them to ``out_dir``; returns ``{name: (path, model,
    test accuracy in numpy, training seconds)}``."""
    x_train, y_train, x_test, y_test = load_split()
    results = {}
    for name in names:
        start = time.perf_counter()
        rng = np.random.default_rng(SEED + 10 + MODELS.index(name))
        model = make_model(name, rng)
        # one BLAS thread: the matrices are small, and threads only contend on a busy machine
        with threadpool_limits(limits=1, user_api="blas"):
            train(model, model.params, x_train, y_train, EPOCHS[name], rng, lr=0.01, batch=32)
            model.finalize(x_train)
        seconds = time.perf_counter() - start
        path = os.path.join(out_dir, name + ".onnx")
        model.export(path)
        results[name] = (path, model, accuracy(model, x_test, y_test), seconds)
    return results


def run_onnx(path, pixels):
    """The scores of ``path`` on ``pixels`` ``(N, 64)`` with qonnx's ``execute_onnx`` (the
    batch size set to ``N``, shapes inferred)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes
    model = ModelWrapper(path).transform(InferShapes())
    missing = [t for n in model.graph.node for t in n.output if model.get_tensor_shape(t) is None]
    assert not missing, f"shapes not inferred: {missing}"
    model = model.transform(ChangeBatchSize(len(pixels))).transform(InferShapes())
    x = np.asarray(pixels, dtype=np.float32).reshape(-1, 1, 8, 8)
    return execute_onnx(model, {"pixels": x})["scores"]


def verify(path, model, x_test, y_test):
    """``(labels agreeing with the numpy model, ONNX accuracy, largest score difference)``."""
    ours = model.forward(x_test)[0]
    ref = run_onnx(path, x_test)
    agree = int(np.sum(ours.argmax(axis=1) == ref.argmax(axis=1)))
    return agree, float(np.mean(ref.argmax(axis=1) == y_test)), float(np.abs(ours - ref).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=HERE, help="output directory (default: examples/)")
    parser.add_argument("--verify", action="store_true",
                        help="run the ONNX models with qonnx and compare with numpy")
    args = parser.parse_args(argv)
    results = build(args.out)
    x_test = np.load(os.path.join(HERE, "digits_test_x.npy"))
    y_test = np.load(os.path.join(HERE, "digits_test_y.npy"))
    failed = False
    for name, (path, model, acc, seconds) in results.items():
        line = (f"{name}: {os.path.basename(path)} ({os.path.getsize(path)} bytes), trained "
                f"in {seconds:.1f} s, test accuracy {acc:.1%} (numpy model)")
        if args.verify:
            agree, onnx_acc, diff = verify(path, model, x_test, y_test)
            failed |= agree != len(x_test)
            line += (f"; qonnx: accuracy {onnx_acc:.1%}, {agree}/{len(x_test)} labels agree "
                     f"with numpy (scores within {diff:.2g})")
        print(line)
    if failed:
        raise SystemExit("the ONNX models and the numpy models disagree")


if __name__ == "__main__":
    main()
