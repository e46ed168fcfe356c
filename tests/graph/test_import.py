"""Import + streamlining: the IR's numpy execution equals the ONNX reference (qonnx
execute_onnx) bit for bit, for every supported op."""

import itertools

import numpy as np
import pytest
from onnx import TensorProto

import graph
from graph.errors import GraphError
from graph.ir import MVAULayer, ThresholdLayer, LabelSelectLayer

from graph_checks import run_both
from models import (FINN, QONNX, Builder, classifier_with_bias, integer_input_model,
                    qonnx_mlp, random_input)


def rng(seed=0):
    return np.random.default_rng(seed)


def kinds(network):
    return [layer.kind for layer in network.layers]


@pytest.mark.parametrize("options", [
    {},
    {"abits": 3, "wbits": 3},
    {"bias": True},
    {"per_channel": True},
    {"output": "argmax"},
    {"sizes": (12, 10, 8, 6), "in_scale": 0.125},
])
def test_qonnx_mlp(options):
    r = rng(3)
    model = qonnx_mlp(r, **options)
    x = random_input(r, 300, model.graph.input[0].type.tensor_type.shape.dim[1:] and
                     (model.graph.input[0].type.tensor_type.shape.dim[1].dim_value,))
    network, _, _ = run_both(model, x)
    assert network.input_quantizer is not None
    assert all(isinstance(layer, (MVAULayer, LabelSelectLayer)) for layer in network.layers)


def tfc_like(r, domain=FINN, input_dtype="UINT5"):
    """FINN-ONNX W1A1: x/16 binarized by a MultiThreshold, bipolar MatMuls, TopK."""
    b = Builder((1, 16), input_dtype=input_dtype)
    x = b.node("Div", ["x", np.array(16, np.float32)])
    x = b.multithreshold(x, np.array([[0.5]]), "BIPOLAR", 2, -1, domain=domain, name="binarize")
    x = b.matmul(x, r.choice([-1, 1], size=(16, 12)).astype(np.float32), "BIPOLAR", name="fc0")
    b.annotate(x, "INT32")
    x = b.multithreshold(x, np.sort(r.integers(-6, 7, size=(12, 1)), axis=1), "BIPOLAR", 2, -1,
                         domain=domain, name="act0")
    b.annotate(x, "BIPOLAR")
    x = b.matmul(x, r.choice([-1, 1], size=(12, 5)).astype(np.float32), "BIPOLAR", name="fc1")
    x = b.node("Mul", [x, np.array(0.25, np.float32)])
    _, labels = b.node("TopK", [x, b.const([2], np_type=np.int64)], outputs=2, axis=-1)
    return b.build(labels, TensorProto.INT64)


@pytest.mark.parametrize("domain", [FINN, QONNX])
def test_finn_onnx_w1a1(domain):
    r = rng(1)
    model = tfc_like(r, domain)
    x = r.integers(0, 17, size=(300, 16)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert kinds(network) == ["threshold", "mvau", "mvau", "labelselect"]
    first = network.layers[0]
    assert (first.input_type, first.output_type, first.thresholds.tolist()) == \
        ("UINT5", "BIPOLAR", [[8]])
    fc0 = network.layers[1]
    assert (fc0.weight_type, fc0.output_type, fc0.bias) == ("BIPOLAR", "BIPOLAR", 0)
    assert network.layers[-1].k == 2


def test_bipolar_input_and_bipolar_quant():
    r = rng(2)
    b = Builder((1, 10), input_dtype="BIPOLAR")
    x = b.quant_matmul("x", r.integers(-2, 2, size=(10, 8)), 0.5, 2, name="fc0")
    x = b.bipolar_quant(x, 1.0, name="act0")
    x = b.node("MatMul", [x, b.bipolar_quant(b.const(r.choice([-1.5, 1.5], size=(8, 4))), 1.5)])
    model = b.build(x)
    x = r.choice([-1.0, 1.0], size=(200, 10)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert network.input_type == "BIPOLAR"
    assert network.layers[0].output_type == "BIPOLAR"
    assert network.layers[1].weight_type == "BIPOLAR"


def test_gemm_batchnorm_sandwich_sign():
    r = rng(4)
    b = Builder((1, 8), input_dtype="INT4")
    w = r.integers(-3, 4, size=(6, 8)).astype(np.float32)
    x = b.node("Gemm", ["x", b.const(w, "INT3"), b.const(r.integers(-3, 3, size=6) * 0.5)],
               transB=1, alpha=0.5, name="gemm0")
    x = b.node("Unsqueeze", [x, b.const([2], np_type=np.int64)])
    x = b.node("BatchNormalization", [x] + [b.const(v) for v in (
        r.uniform(-2, 2, 6), r.uniform(-1, 1, 6), r.uniform(-1, 1, 6), r.uniform(0.5, 2, 6))],
        epsilon=1e-5)
    x = b.node("Squeeze", [x, b.const([2], np_type=np.int64)])
    x = b.node("Sign", [x], name="sign0")
    x = b.matmul(x, r.integers(-1, 2, size=(6, 3)).astype(np.float32), "INT2", name="fc1")
    model = b.build(x)
    x = r.integers(-8, 8, size=(400, 8)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert kinds(network) == ["mvau", "mvau"]


def test_clip_sub_div_relu_and_negative_scales():
    r = rng(5)
    b = Builder((1, 8), input_dtype="UINT3")
    x = b.node("Sub", ["x", np.array(2, np.float32)])
    x = b.matmul(x, r.integers(-2, 3, size=(8, 6)).astype(np.float32), name="fc0")
    x = b.node("Mul", [x, (r.choice([-1, 1], size=6) * 0.25).astype(np.float32)])
    x = b.node("Div", [x, np.array(2, np.float32)])
    x = b.node("Relu", [x])
    x = b.node("Clip", [x, b.const(np.float32(0)), b.const(np.float32(1.5))])
    x = b.quant(x, 0.5, 2, signed=0, name="act0")
    x = b.node("Sub", [np.array(1, np.float32), x])
    x = b.matmul(x, r.integers(-2, 3, size=(6, 4)).astype(np.float32), "INT3", name="fc1")
    model = b.build(x)
    x = r.integers(0, 8, size=(400, 8)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert np.any(network.layers[0].weights != _reference_weights(model))


def _reference_weights(model):
    for init in model.graph.initializer:
        from onnx import numpy_helper
        array = numpy_helper.to_array(init)
        if array.shape == (8, 6):
            return array.T
    raise AssertionError


def test_shape_ops_between_layers():
    r = rng(6)
    b = Builder(("N", 2, 4), input_dtype="INT3")
    x = b.node("Transpose", ["x"], perm=[0, 2, 1])
    x = b.node("Flatten", [x], axis=1)
    x = b.quant_matmul(x, r.integers(-2, 2, size=(8, 6)), 0.25, 2, name="fc0")
    x = b.node("Reshape", [x, b.const([1, 2, 3], np_type=np.int64)])
    x = b.quant(x, 0.5, 3, signed=1, name="act0")
    x = b.node("Transpose", [x], perm=[0, 2, 1])
    x = b.node("Reshape", [x, b.const([-1, 6], np_type=np.int64)])
    x = b.quant_matmul(x, r.integers(-2, 2, size=(6, 4)), 0.5, 2, name="fc1")
    x = b.node("ArgMax", [x], axis=-1, keepdims=0)
    model = b.build(x, TensorProto.INT64)
    x = r.integers(-4, 4, size=(300, 2, 4)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert network.input_shape == (2, 4)


def qdq_model(r, scales):
    b = Builder((1, 8))
    u8 = lambda v: b.const(v, np_type=np.uint8)  # noqa: E731
    q = b.node("QuantizeLinear", ["x", b.const(np.float32(scales[0])), u8(0)])
    x = b.node("DequantizeLinear", [q, b.const(np.float32(scales[0])), u8(0)])
    w = b.node("DequantizeLinear", [b.const(r.integers(-20, 20, size=(8, 6)), np_type=np.int8),
                                    b.const(np.float32(scales[1])),
                                    b.const(np.int8(0), np_type=np.int8)])
    x = b.node("MatMul", [x, w], name="fc0")
    q = b.node("QuantizeLinear", [x, b.const(np.float32(scales[2])), u8(10)], name="q1")
    x = b.node("DequantizeLinear", [q, b.const(np.float32(scales[2])), u8(10)])
    return b.build(x)


def test_qdq_quantize_dequantize_linear():
    r = rng(7)
    model = qdq_model(r, (0.0625, 0.03125, 0.125))
    x = random_input(r, 300, (8,), -0.5, 16.0)
    network, _, _ = run_both(model, x)
    assert network.input_type == "UINT8"
    assert network.layers[0].output_type == "UINT8"


def test_qdq_non_power_of_two_scales_agree_except_at_float_ties():
    """With arbitrary scales the reference's float32 MatMul rounds; the IR follows exact
    arithmetic, so the two can differ only where the exact value is a rounding tie."""
    r = rng(7)
    model = qdq_model(r, (0.05, 0.02, 0.1))
    network = graph.import_model(model)
    x = random_input(r, 1000, (8,), -0.5, 8.0)
    ours = network.output_values(network.execute(network.quantize_input(x)))
    ref = graph.reference(model, x)
    assert np.mean(np.isclose(ours, ref, rtol=0, atol=1e-6)) > 0.99


def test_matmulinteger_and_qlinearmatmul():
    r = rng(8)
    b = Builder((1, 8))
    u8 = lambda v: b.const(v, np_type=np.uint8)  # noqa: E731
    q = b.node("QuantizeLinear", ["x", b.const(np.float32(0.5)), u8(3)])
    acc = b.node("MatMulInteger", [q, b.const(r.integers(-5, 5, size=(8, 6)), np_type=np.int8),
                                   u8(3), b.const(np.int8(1), np_type=np.int8)], name="mmi")
    x = b.node("Cast", [acc], to=TensorProto.FLOAT)
    x = b.node("Mul", [x, np.array(0.25, np.float32)])
    q = b.node("QuantizeLinear", [x, b.const(np.float32(1.0)), u8(0)], name="q1")
    y = b.node("QLinearMatMul", [q, b.const(np.float32(1.0)), u8(0),
                                 b.const(r.integers(0, 4, size=(6, 4)), np_type=np.uint8),
                                 b.const(np.float32(0.5)), u8(1), b.const(np.float32(2.0)),
                                 u8(5)], name="qlmm")
    model = b.build(y, TensorProto.UINT8)
    x = random_input(r, 300, (8,), -1, 8)
    network, _, _ = run_both(model, x)
    assert kinds(network) == ["mvau", "mvau"]


def test_legacy_finn_quant_domain_and_trunc_free_chain():
    r = rng(9)
    b = Builder((1, 6), input_dtype="UINT4")
    x = b.quant("x", 1.0, 4, signed=0, domain="finn.custom_op.general")  # identity on UINT4
    x = b.quant_matmul(x, r.integers(-2, 2, size=(6, 5)), 0.5, 2, name="fc0")
    x = b.quant(x, 2.0, 4, signed=1, domain="finn.custom_op.general", name="act0")
    model = b.build(x)
    x = r.integers(0, 16, size=(200, 6)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert kinds(network) == ["mvau"]  # the identity Quant on the input made no layer


def test_input_requantized_to_fewer_bits_is_a_threshold_layer():
    r = rng(10)
    b = Builder((1, 6), input_dtype="UINT8")
    x = b.quant("x", 16.0, 4, signed=0, name="requant")
    x = b.quant_matmul(x, r.integers(-2, 2, size=(6, 5)), 1.0, 2, name="fc0")
    model = b.build(x)
    x = r.integers(0, 256, size=(300, 6)).astype(np.float32)
    network, _, _ = run_both(model, x)
    assert kinds(network) == ["threshold", "mvau"]
    assert network.layers[0].thresholds.shape == (1, 15)


def test_random_inputs_on_bigger_mlp():
    r = rng(11)
    model = qonnx_mlp(r, sizes=(32, 24, 16, 10), wbits=3, abits=3)
    x = random_input(r, 500, (32,))
    run_both(model, x)


def test_trunc_after_accumulator():
    import itertools
    b = Builder((1, 3), "INT4")
    x = b.matmul("x", np.array([[3, 1], [2, -3], [1, 2]], np.float32), "INT3", name="fc0")
    x = b.node("Trunc", [x, b.const(1.0), b.const(0.0), b.const(8.0), b.const(4.0)],
               domain=QONNX, rounding_mode="FLOOR", name="trunc")
    model = b.build(x)
    inputs = np.array(list(itertools.product(range(-8, 8), repeat=3)), np.float32)
    network, _, _ = run_both(model, inputs)
    assert kinds(network) == ["mvau"]


@pytest.mark.parametrize("select", ["argmax", "topk"])
def test_classifier_bias_becomes_mvau_offsets(select):
    r = rng(9)
    model = classifier_with_bias(r, select)
    network, _, _ = run_both(model, random_input(r, 400, (8,)))
    assert kinds(network) == ["mvau", "mvau", "labelselect"]
    fc1, top = network.layers[1:]
    assert fc1.thresholds is None and fc1.offsets is not None
    assert np.any(fc1.offsets != 0) and fc1.offsets[0] == 0
    low, high = fc1.accumulator_range()
    lo, hi = graph.ir.dtype_range(fc1.output_type)
    assert lo <= low.min() and high.max() <= hi
    assert top.input_type == fc1.output_type and top.k == (1 if select == "argmax" else 2)
    again = graph.Network.from_dict(network.to_dict())
    assert np.array_equal(again.layers[1].offsets, fc1.offsets)


def test_classifier_bias_with_integer_weights_and_ties():
    """FINN-ONNX style: INT2 weights on an INT3 input, scale 0.5, bias in steps of 0.5; every
    input, so ties between classes (offset or not) go to the lower index as in TopK."""
    b = Builder((1, 3), "INT3")
    w = np.array([[1, 0, -1, 1], [0, 1, 1, -2], [1, 1, 0, 0]], np.float32)
    x = b.matmul("x", w, "INT2", name="fc0")
    x = b.node("Mul", [x, np.array(0.5, np.float32)])
    x = b.node("Add", [x, np.array([0.0, 1.5, -0.5, 1.0], np.float32)])
    _, labels = b.node("TopK", [x, b.const([3], np_type=np.int64)], outputs=2)
    model = b.build(labels, TensorProto.INT64)
    inputs = np.array(list(itertools.product(range(-4, 4), repeat=3)), np.float32)
    network, _, _ = run_both(model, inputs)
    assert network.layers[0].offsets.tolist() == [0, 3, -1, 2]


@pytest.mark.parametrize("elem_type, low, high", [(TensorProto.UINT8, 0, 256),
                                                  (TensorProto.INT8, -128, 128)])
def test_integer_typed_input_needs_no_annotation(elem_type, low, high):
    """A graph input whose element type is an integer type is that datatype: uint8 into a
    QLinearMatMul, int8 into a MatMulInteger, with constant weights."""
    r = rng(31)
    model = integer_input_model(r, elem_type)
    network = graph.import_model(model)
    assert network.input_type == ("UINT8" if elem_type == TensorProto.UINT8 else "INT8")
    x = r.integers(low, high, size=(300, 8)).astype(np.float32)
    run_both(model, x)


@pytest.mark.parametrize("annotation, accepted", [("UINT4", True), ("UINT8", True),
                                                  ("UINT16", False), ("INT4", False)])
def test_annotation_on_an_integer_input(annotation, accepted):
    r = rng(32)
    b = Builder((1, 8), input_dtype=annotation, elem_type=TensorProto.UINT8)
    acc = b.node("MatMulInteger", ["x", b.const(r.integers(-3, 4, size=(8, 5)),
                                                np_type=np.int8)], name="mmi")
    model = b.build(b.node("Cast", [acc], to=TensorProto.FLOAT))
    if accepted:
        assert graph.import_model(model).input_type == annotation
    else:
        with pytest.raises(GraphError, match=rf"^graph input 'x': finn_datatype {annotation} "
                                             rf"\(-?\d+\.\.\d+\) is wider than its element "
                                             rf"type uint8 \(0\.\.255\); annotate a datatype "
                                             rf"within UINT8, or none"):
            graph.import_model(model)


def test_float_input_without_quantizer_is_an_error():
    b = Builder((1, 8))
    acc = b.node("MatMul", ["x", b.const(np.ones((8, 5), np.float32))], name="mm")
    with pytest.raises(GraphError, match=r"^graph input 'x': has no integer datatype "
                                         r"annotation \(finn_datatype\) and no quantizer"):
        graph.import_model(b.build(acc))
