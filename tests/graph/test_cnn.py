"""CNNs end to end at small sizes: QONNX CNNs (convolutions with padding and batch norm,
depthwise convolutions, residual and concatenating branches, max and global average
pooling) lower to the IR bit-exactly against the ONNX reference on every recorded
activation, and the elaborated pipeline (Amaranth simulator) matches the IR under
back-pressure at the estimated throughput. The join FIFOs of residual branches are sized
from the schedules: a test shows that the sizing is what keeps a long branch from
deadlocking."""

import numpy as np
import pytest

import graph
from graph import GraphError
from graph.elaborate import Accelerator
from graph.fold import apply_folding_json, fold
from graph.ir import Network
from hwgen.plumbing.fifo import StreamFIFOPlan

from graph_checks import run_both
from models import Builder, qonnx_cnn, quant_conv
from test_elaborate import simulate, steady_cycles

VARIANTS = {
    "plain": {},
    "no_pad_argmax": {"pad": 0, "output": "argmax", "bn": False},
    "depthwise": {"depthwise": True},
    "residual": {"residual": True},
    "residual_long": {"residual": True, "res_convs": 3},
    "concat": {"concat": True},
    "global_avg_pool": {"pool": "GlobalAveragePool", "output": "argmax"},
    "avg_pool": {"pool": "AveragePool"},
    "max_pool_then_scale": {"pool_scale": [2.0, 0.5, 1.0, 4.0]},
}


def _model(name, seed=0):
    return qonnx_cnn(np.random.default_rng(seed), **VARIANTS[name])


def _inputs(rng, frames, size=6):
    return rng.integers(0, 16, size=(frames, 1, size, size)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_lowering_matches_reference(name):
    model = _model(name)
    network, _, _ = run_both(model, _inputs(np.random.default_rng(1), 40))
    kinds = {layer.kind for layer in network.layers}
    assert {"sliding_window", "mvau"} <= kinds
    assert ("vvau" in kinds) == (name == "depthwise")
    assert ("addstreams" in kinds) == name.startswith("residual")
    assert ("concat" in kinds) == (name == "concat")
    # the JSON round trip keeps the DAG
    again = Network.from_dict(network.to_dict())
    x = network.quantize_input(_inputs(np.random.default_rng(2), 5))
    assert np.array_equal(again.execute(x), network.execute(x))
    assert [layer.inputs for layer in again.layers] == [layer.inputs for layer in network.layers]


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_rtl_matches_ir_at_the_estimated_rate(name):
    network = fold(graph.import_model(_model(name)))
    accelerator = Accelerator(network)
    rng = np.random.default_rng(3)
    x = network.quantize_input(_inputs(rng, 6))
    simulate(accelerator, x, seed=4, valid_prob=0.6, ready_prob=0.5)
    report = simulate(accelerator, x, valid_prob=1.0, ready_prob=1.0)
    assert steady_cycles(report, accelerator.out_beats_per_frame) == \
        {accelerator.cycles_per_frame}


def test_residual_fifo_is_sized_for_the_long_branch():
    """Three convolutions on the main path, none on the shortcut: the shortcut's FIFO at the
    join must hold what the main path reads before its first output. At the computed depth
    the pipeline runs at its estimate under back-pressure; at depth 3 it deadlocks."""
    network = fold(graph.import_model(_model("residual_long")))
    accelerator = Accelerator(network)
    stages = {stage.name: stage for stage in accelerator.stages}
    short, long = stages["res_add.i0.fifo"], stages["res_add.i1.fifo"]
    assert short.plan.depth > 3 * long.plan.depth
    x = network.quantize_input(_inputs(np.random.default_rng(5), 6))
    simulate(accelerator, x, seed=6, valid_prob=0.5, ready_prob=0.4)
    report = simulate(accelerator, x, valid_prob=1.0, ready_prob=1.0)
    assert steady_cycles(report, accelerator.out_beats_per_frame) == \
        {accelerator.cycles_per_frame}
    plan = short.plan
    short.plan = StreamFIFOPlan(elem_shape=plan.input_format.elem_shape,
                                lanes=plan.input_format.lanes, depth=3,
                                beats_per_frame=plan.in_beats_per_frame)
    with pytest.raises(AssertionError, match="timeout"):
        simulate(accelerator, x, valid_prob=1.0, ready_prob=1.0, max_cycles=20000)


def test_depthwise_window_follows_the_vvau_folding():
    network = graph.import_model(_model("depthwise"))
    folded = apply_folding_json(network, {"dw1": {"pe": 2, "simd": 3}})
    window = folded.layer("dw1_window")
    assert (window.simd, window.window_simd) == (2, 3)
    with pytest.raises(GraphError, match=r"vvau layer 'dw1': its sliding window 'dw1_window' "
                                         r"has simd=1, window_simd=1; it must have simd=pe=2"):
        apply_folding_json(network, {"dw1": {"pe": 2}, "dw1_window": {"simd": 1}})


def _conv_model(**attrs):
    b = Builder((1, 4, 5, 5), "UINT2")
    x = quant_conv(b, "x", np.random.default_rng(0), 4, attrs.pop("out", 4),
                   **attrs)
    return b.build(x)


@pytest.mark.parametrize("build, message", [
    (lambda: _conv_model(group=2, out=4),
     r"^Conv node '\w+': has group=2 .*; supported: group=1, or group=C"),
    (lambda: _transposed_conv(),
     r"^Conv node 'conv': reads a feature map whose stream is not in NHWC order"),
    (lambda: _ceil_pool(),
     r"^MaxPool node 'pool': has ceil_mode=1 with a partial last window"),
])
def test_unsupported_cnn_errors(build, message):
    with pytest.raises(GraphError, match=message) as info:
        graph.import_model(build())
    assert "\n" not in str(info.value)


def _transposed_conv():
    b = Builder((1, 4, 5, 5), "UINT2")
    x = b.node("Transpose", ["x"], perm=[0, 1, 3, 2])
    return b.build(quant_conv(b, x, np.random.default_rng(0), 4, 4, name="conv"))


def _ceil_pool():
    b = Builder((1, 4, 5, 5), "UINT2")
    return b.build(b.node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
                          name="pool"))


def _geometry_model(rank, stride, dilation, transpose_flatten):
    """A conv (stride, dilation, asymmetric padding) on a 1-D or 2-D map, a max pool, then
    Transpose + Reshape (FINN's NHWC flatten) or Flatten before the classifier."""
    rng = np.random.default_rng(7)
    shape = (1, 2, 9) if rank == 1 else (1, 2, 9, 8)
    b = Builder(shape)
    x = b.quant("x", 1.0, 3, signed=0)
    kernel = 3 if rank == 1 else (3, 2)
    pads = [1, 0] if rank == 1 else [1, 0, 0, 1]
    x = quant_conv(b, x, rng, 2, 4, kernel=(kernel,) if rank == 1 else kernel,
                   strides=[stride] * rank, dilations=[dilation] * rank, pads=pads,
                   name="conv", bias=True)
    x = b.node("Relu", [x])
    x = b.quant(x, 0.5, 2, signed=0, name="act")
    x = b.node("MaxPool", [x], kernel_shape=[2] * rank, strides=[1] * rank, name="pool")
    if transpose_flatten:
        x = b.node("Transpose", [x], perm=[0, 2, 1] if rank == 1 else [0, 2, 3, 1])
        x = b.node("Reshape", [x, b.const([1, -1], np_type=np.int64)])
    else:
        x = b.node("Flatten", [x], axis=1)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    wrapped = ModelWrapper(b.build(x)).transform(InferShapes())
    width = int(np.prod(wrapped.get_tensor_shape(x)[1:]))
    x = b.quant_matmul(x, rng.integers(-2, 2, size=(width, 3)), 0.5, 2, name="fc")
    return b.build(x), shape


@pytest.mark.parametrize("rank, stride, dilation, transpose_flatten", [
    (2, 2, 1, False), (2, 1, 2, True), (1, 2, 1, True), (1, 1, 2, False)])
def test_conv_geometry_end_to_end(rank, stride, dilation, transpose_flatten):
    model, shape = _geometry_model(rank, stride, dilation, transpose_flatten)
    rng = np.random.default_rng(8)
    x = rng.integers(0, 8, size=(30,) + shape[1:]).astype(np.float32)
    network, _, _ = run_both(model, x)
    accelerator = Accelerator(fold(network))
    simulate(accelerator, network.quantize_input(x[:4]), seed=9, valid_prob=0.7,
             ready_prob=0.6)


def _qdq_cnn():
    """A CNN as standard QDQ tools write it: QuantizeLinear/DequantizeLinear pairs around
    the activations (uint8, zero point 0 after the Relu), int8 weights dequantized."""
    rng = np.random.default_rng(11)
    b = Builder((1, 2, 6, 6))
    u8 = lambda v: b.const(v, np_type=np.uint8)  # noqa: E731

    def qdq(x, scale, name):
        q = b.node("QuantizeLinear", [x, b.const(np.float32(scale)), u8(0)], name=name)
        return b.node("DequantizeLinear", [q, b.const(np.float32(scale)), u8(0)])

    def weights(shape, scale):
        return b.node("DequantizeLinear", [b.const(rng.integers(-8, 8, size=shape),
                                                   np_type=np.int8),
                                           b.const(np.float32(scale)),
                                           b.const(np.int8(0), np_type=np.int8)])
    x = qdq("x", 0.0625, "q_in")
    x = b.node("Conv", [x, weights((4, 2, 3, 3), 0.03125)], name="conv", pads=[1, 1, 1, 1],
               kernel_shape=[3, 3])
    x = b.node("Relu", [x])
    x = qdq(x, 0.125, "q_conv")
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], name="pool")
    x = b.node("Flatten", [x], axis=1)
    x = b.node("MatMul", [x, weights((36, 3), 0.0625)], name="fc")
    return b.build(x)


def test_qdq_cnn_end_to_end():
    model = _qdq_cnn()
    rng = np.random.default_rng(12)
    x = rng.integers(0, 160, size=(40, 2, 6, 6)).astype(np.float32) / 10
    network, _, _ = run_both(model, x)
    assert network.input_type == "UINT8"
    simulate(Accelerator(fold(network)), network.quantize_input(x[:4]), seed=13,
             valid_prob=0.7, ready_prob=0.6)


@pytest.mark.parametrize("folding, message", [
    ({"conv1_window": {"window_simd": 2}},
     r"^folding of sliding_window layer 'conv1_window': unknown key 'window_simd'; valid "
     r"keys: simd, parallel, mem_style$"),
    ({"dw1_window": {"window_simd": 2}},
     r"^folding of sliding_window layer 'dw1_window': WINDOW_SIMD=2 must divide "
     r"K_h\*K_w=9; valid WINDOW_SIMD: 1, 3, 9$"),
    ({"pool": {"pe": 3}}, r"^folding of maxpool layer 'pool': PE=3 must divide channels=4; "
                          r"valid PE: 1, 2, 4$"),
    ({"conv0_pad": {"pe": 1}}, r"^folding of pad layer 'conv0_pad': unknown key 'pe'; valid "
                               r"keys: simd$"),
])
def test_folding_json_errors_on_cnn_layers(folding, message):
    model = _model("depthwise" if "dw1_window" in folding else "plain")
    with pytest.raises(GraphError, match=message):
        apply_folding_json(graph.import_model(model), folding)


def test_folding_json_overrides_a_cnn_layer():
    network = apply_folding_json(graph.import_model(_model("plain")),
                                 {"conv1_window": {"simd": 2, "parallel": "row"},
                                  "pool": {"pe": 4}})
    assert (network.layer("conv1_window").simd, network.layer("conv1_window").parallel,
            network.layer("pool").pe) == (2, "row", 4)


def _finn_onnx_cnn():
    """A binarized CNN as FINN-ONNX writes it after streamlining: Conv with BIPOLAR-annotated
    weights, per-channel MultiThreshold activations (bipolar out), MaxPool, Transpose +
    Reshape, MatMul, TopK."""
    rng = np.random.default_rng(14)
    b = Builder((1, 3, 6, 6), "UINT4")
    x = b.multithreshold("x", np.array([[8.0]], np.float32), "BIPOLAR", out_scale=2.0,
                         out_bias=-1.0, name="binarize")
    w = b.const(rng.choice([-1.0, 1.0], size=(8, 3, 3, 3)).astype(np.float32), "BIPOLAR")
    x = b.node("Conv", [x, w], name="conv", kernel_shape=[3, 3])
    x = b.multithreshold(x, rng.integers(-5, 6, size=(8, 1)).astype(np.float32), "BIPOLAR",
                         out_scale=2.0, out_bias=-1.0, name="act")
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], name="pool")
    x = b.node("Transpose", [x], perm=[0, 2, 3, 1])
    x = b.node("Reshape", [x, b.const([1, -1], np_type=np.int64)])
    w = b.const(rng.choice([-1.0, 1.0], size=(32, 4)).astype(np.float32), "BIPOLAR")
    x = b.node("MatMul", [x, w], name="fc")
    from onnx import TensorProto
    _, labels = b.node("TopK", [x, b.const([1], np_type=np.int64)], outputs=2, name="top")
    return b.build(labels, TensorProto.INT64)


def test_finn_onnx_cnn_end_to_end():
    model = _finn_onnx_cnn()
    rng = np.random.default_rng(15)
    x = rng.integers(0, 16, size=(40, 3, 6, 6)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert network.input_type == "UINT4" and network.output.kind == "label"
    simulate(Accelerator(fold(network)), network.quantize_input(x[:4]), seed=16,
             valid_prob=0.7, ready_prob=0.6)
