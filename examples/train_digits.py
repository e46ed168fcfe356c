"""Train two quantized MLPs on scikit-learn's 8x8 digits in numpy and export them as ONNX.

- ``digits_w2a2.onnx``: 2-bit weights, 2-bit activations, QONNX (``Quant`` nodes in the
  ``qonnx.custom_op.general`` domain, as Brevitas exports them). Input: the float pixels
  0..16, divided by 16 and quantized by a 5-bit ``Quant`` (so the stream carries the pixel
  values). Output: the 10 class scores.
- ``digits_w1a1.onnx``: binarized weights and activations in FINN-ONNX style: ``MatMul``
  with ``finn_datatype`` BIPOLAR weights, ``MultiThreshold`` activations, a ``TopK`` label.
  Input: pixels annotated ``UINT5``, binarized by float pre-processing (``x / 16`` then a
  0.5 ``MultiThreshold``) that the importer absorbs into a threshold layer.

Training is quantization-aware (straight-through estimators, Adam) with power-of-two
scales, fixed seeds, and takes a few seconds. The held-out split is written as
``digits_test_x.npy`` (uint8 pixels 0..16, ``(360, 64)``) and ``digits_test_y.npy``.

Run ``python examples/train_digits.py`` (add ``--verify`` to import both models with
``graph.import_model`` and compare the IR with the ONNX reference on the held-out split).
"""

import argparse
import os
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from graph.finn_onnx import FinnOnnxWriter

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
TEST_SIZE = 360
SIZES = (64, 64, 64, 10)
QONNX = "qonnx.custom_op.general"
FINN = "finn.custom_op.general"


def load_split(seed=SEED):
    """``(x_train, y_train, x_test, y_test)``: integer pixels 0..16 and labels."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    x, y = digits.data.astype(np.int64), digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return x[train], y[train], x[test], y[test]


def power_of_two(value):
    """The power of two nearest to ``value`` (in log scale)."""
    return float(2.0 ** np.round(np.log2(value)))


class Adam:
    """Plain Adam over a list of numpy arrays."""

    def __init__(self, params, lr=0.01, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.betas
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= self.lr * (m / (1 - b1 ** self.t)) / (np.sqrt(v / (1 - b2 ** self.t)) + self.eps)


def softmax_grad(logits, labels):
    """Cross-entropy gradient with respect to the logits (mean over the batch)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p / len(labels)


# --- 2-bit weights, 2-bit activations ----------------------------------------------------

W_LEVELS = (-2, 1)  # INT2
A_LEVELS = 3  # UINT2: 0..3


class W2A2:
    """64-64-64-10 MLP, INT2 weights with one power-of-two scale per layer, ReLU + UINT2
    activations with power-of-two scales."""

    def __init__(self, rng):
        self.weights = [rng.normal(0, 1 / np.sqrt(n), (n, m)) for n, m in zip(SIZES, SIZES[1:])]
        self.act_scales = [0.5, 0.5]
        self.logit_gain = 4.0

    def weight_scale(self, w):
        return power_of_two(np.abs(w).mean())

    def forward(self, pixels, train=False):
        a = pixels / 16.0
        cache = []
        for layer, w in enumerate(self.weights):
            s = self.weight_scale(w)
            ratio = w / s
            wq = np.clip(np.round(ratio), *W_LEVELS) * s
            z = a @ wq
            entry = {"a": a, "wq": wq, "pass_w": (ratio > W_LEVELS[0] - 0.5) &
                     (ratio < W_LEVELS[1] + 0.5)}
            if layer < len(self.weights) - 1:
                sa = self.act_scales[layer]
                u = np.maximum(z, 0) / sa
                entry["pass_a"] = (z > 0) & (u < A_LEVELS + 0.5)
                a = np.clip(np.round(u), 0, A_LEVELS) * sa
            else:
                a = z
            cache.append(entry)
        return a, cache

    def calibrate(self, pixels):
        """Power-of-two activation scales that put the 99th percentile at the top level."""
        a = pixels / 16.0
        for layer, w in enumerate(self.weights[:-1]):
            s = self.weight_scale(w)
            z = a @ (np.clip(np.round(w / s), *W_LEVELS) * s)
            top = np.percentile(np.maximum(z, 0), 99)
            self.act_scales[layer] = power_of_two(max(top, 1e-3) / A_LEVELS)
            a = np.clip(np.round(np.maximum(z, 0) / self.act_scales[layer]), 0, A_LEVELS) * \
                self.act_scales[layer]

    def train_step(self, pixels, labels, optimizer):
        scores, cache = self.forward(pixels, train=True)
        grad = softmax_grad(scores * self.logit_gain, labels) * self.logit_gain
        grads = [None] * len(self.weights)
        for layer in reversed(range(len(self.weights))):
            entry = cache[layer]
            if layer < len(self.weights) - 1:
                grad = grad * entry["pass_a"]
            grads[layer] = (entry["a"].T @ grad) * entry["pass_w"]
            grad = grad @ entry["wq"].T
        optimizer.step(grads)

    def export(self, path):
        nodes, inits = [], []

        def const(name, value):
            inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
            return name

        def quant(name, x, scale, bits, signed):
            nodes.append(helper.make_node(
                "Quant", [x, const(name + "_scale", scale), const(name + "_zeropt", 0.0),
                          const(name + "_bitwidth", bits)], [name + "_out"], name=name,
                domain=QONNX, signed=signed, narrow=0, rounding_mode="ROUND"))
            return name + "_out"

        nodes.append(helper.make_node("Div", ["pixels", const("pixel_range", 16.0)],
                                      ["scaled"], name="scale_input"))
        x = quant("input_quant", "scaled", 1 / 16, 5, 0)
        for layer, w in enumerate(self.weights):
            s = self.weight_scale(w)
            wq = quant(f"fc{layer}_weight_quant", const(f"fc{layer}_weight", w), s, 2, 1)
            nodes.append(helper.make_node("MatMul", [x, wq], [f"fc{layer}_out"],
                                          name=f"fc{layer}"))
            x = f"fc{layer}_out"
            if layer < len(self.weights) - 1:
                nodes.append(helper.make_node("Relu", [x], [f"relu{layer}_out"],
                                              name=f"relu{layer}"))
                x = quant(f"act{layer}_quant", f"relu{layer}_out", self.act_scales[layer], 2, 0)
        nodes.append(helper.make_node("Identity", [x], ["scores"], name="output"))
        graph = helper.make_graph(
            nodes, "digits_w2a2",
            [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 64])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10])],
            initializer=inits)
        _save(graph, path)


# --- binarized weights and activations (FINN-ONNX) ----------------------------------------

def bipolar(x):
    return np.where(x >= 0, 1.0, -1.0)


class W1A1:
    """64-H-H-10 binarized MLP: input binarized at pixel >= 8, BIPOLAR weights, sign
    activations with a learned threshold per neuron (batch-norm folded in), output scaled by
    a power of two."""

    output_gain = 0.125

    def __init__(self, rng, hidden=128):
        self.sizes = (64, hidden, hidden, 10)
        self.weights = [rng.uniform(-1, 1, (n, m)) for n, m in zip(self.sizes, self.sizes[1:])]
        self.thresholds = [np.zeros(m) for m in self.sizes[1:-1]]

    def forward(self, pixels):
        a = bipolar(pixels / 16.0 - 0.5)
        cache = []
        for layer, w in enumerate(self.weights):
            wb = bipolar(w)
            z = a @ wb
            entry = {"a": a, "wb": wb, "fan_in": w.shape[0]}
            if layer < len(self.weights) - 1:
                u = (z - self.thresholds[layer]) / np.sqrt(w.shape[0])
                entry["pass"] = np.abs(u) <= 1
                a = bipolar(u)
            else:
                a = z * self.output_gain
            cache.append(entry)
        return a, cache

    def train_step(self, pixels, labels, optimizer):
        scores, cache = self.forward(pixels)
        grad = softmax_grad(scores, labels) * self.output_gain
        grads_w = [None] * len(self.weights)
        grads_t = [None] * len(self.thresholds)
        for layer in reversed(range(len(self.weights))):
            entry = cache[layer]
            if layer < len(self.weights) - 1:
                grad = grad * entry["pass"] / np.sqrt(entry["fan_in"])
                grads_t[layer] = -grad.sum(axis=0)
            grads_w[layer] = (entry["a"].T @ grad) * (np.abs(self.weights[layer]) <= 1)
            grad = grad @ entry["wb"].T
        optimizer.step(grads_w + grads_t)

    def export(self, path):
        writer = FinnOnnxWriter({"pixels": ([1, 64], "UINT5")})
        scaled = writer.node("Div", "scale_input", ["pixels", writer.const("pixel_range", 16.0)])
        x = writer.multithreshold("binarize_input", scaled, [[0.5]])
        for layer, w in enumerate(self.weights):
            x = writer.matmul(f"fc{layer}", x, bipolar(w), "BIPOLAR")
            if layer < len(self.weights) - 1:
                t = np.ceil(self.thresholds[layer]).reshape(-1, 1)
                x = writer.multithreshold(f"act{layer}", x, t)
        scores = writer.node("Mul", "output_scale", [x, writer.const("output_gain",
                                                                     self.output_gain)])
        writer.topk(scores)
        writer.save(path, name="digits_w1a1", producer="hwgen-examples")


def _save(graph, path):
    import onnx
    model = helper.make_model(graph, producer_name="hwgen-examples", opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1),
        helper.make_opsetid(FINN, 1)])
    model.ir_version = 8
    onnx.save(model, path)


def train(model, params, x, y, epochs, rng, lr=0.01, batch=32, calibrate=None):
    optimizer = Adam(params, lr=lr)
    for epoch in range(epochs):
        if calibrate is not None and epoch % 5 == 0:
            calibrate(x)
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            chosen = order[start:start + batch]
            model.train_step(x[chosen], y[chosen], optimizer)
        optimizer.lr = lr * (0.5 * (1 + np.cos(np.pi * (epoch + 1) / epochs)))


def accuracy(model, x, y):
    scores, _ = model.forward(x)
    return float(np.mean(scores.argmax(axis=1) == y))


def build(out_dir=HERE, epochs_w2a2=60, epochs_w1a1=60):
    """Train both models, export them and the held-out split to ``out_dir``; returns
    ``{name: (path, test accuracy in numpy)}``."""
    x_train, y_train, x_test, y_test = load_split()
    np.save(os.path.join(out_dir, "digits_test_x.npy"), x_test.astype(np.uint8))
    np.save(os.path.join(out_dir, "digits_test_y.npy"), y_test.astype(np.uint8))
    results = {}
    rng = np.random.default_rng(SEED)
    w2a2 = W2A2(rng)
    train(w2a2, w2a2.weights, x_train, y_train, epochs_w2a2, rng, calibrate=w2a2.calibrate)
    path = os.path.join(out_dir, "digits_w2a2.onnx")
    w2a2.export(path)
    results["w2a2"] = (path, accuracy(w2a2, x_test, y_test))
    rng = np.random.default_rng(SEED + 1)
    w1a1 = W1A1(rng)
    train(w1a1, w1a1.weights + w1a1.thresholds, x_train, y_train, epochs_w1a1, rng, lr=0.005)
    path = os.path.join(out_dir, "digits_w1a1.onnx")
    w1a1.export(path)
    results["w1a1"] = (path, accuracy(w1a1, x_test, y_test))
    return results


def verify(path, x_test, y_test):
    """Import ``path``, run the IR and the ONNX reference on the held-out split; returns
    ``(agreeing samples, IR accuracy)``."""
    import graph
    network = graph.import_model(path)
    x = x_test.astype(np.float32)
    ours = network.output_values(network.execute(network.quantize_input(x)))
    ref = graph.reference(path, x).reshape(len(x), -1)
    agree = int(np.sum(np.all(ours == ref, axis=1)))
    labels = ours[:, 0] if network.output.kind == "label" else ours.argmax(axis=1)
    return agree, float(np.mean(labels == y_test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=HERE, help="output directory (default: examples/)")
    parser.add_argument("--verify", action="store_true",
                        help="import the models and compare the IR with the ONNX reference")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = build(args.out)
    print(f"trained in {time.perf_counter() - start:.1f} s")
    x_test = np.load(os.path.join(args.out, "digits_test_x.npy"))
    y_test = np.load(os.path.join(args.out, "digits_test_y.npy"))
    for name, (path, acc) in results.items():
        line = f"{name}: {os.path.basename(path)}, test accuracy {acc:.1%} (numpy training model)"
        if args.verify:
            agree, ir_acc = verify(path, x_test, y_test)
            line += (f"; IR vs ONNX reference: {agree}/{len(x_test)} agree, IR accuracy "
                     f"{ir_acc:.1%}")
        print(line)


if __name__ == "__main__":
    main()
