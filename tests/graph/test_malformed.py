"""Malformed and unsupported models: each raises GraphError with one line that names the
node, its op type and what is supported."""

import re

import numpy as np
import pytest
from onnx import TensorProto, helper

import graph
from graph import GraphError
from models import Builder, QONNX


def quantized_input(b, bits=4):
    return b.quant("x", 0.25, bits, signed=0, name="inq")


def int_weights(n_in, n_out, value=1.0):
    return np.full((n_in, n_out), value, dtype=np.float32)


def unsupported_op():
    b = Builder((1, 8), "INT4")
    x = b.node("Softmax", ["x"], name="soft", axis=1)
    return b.build(x), r"^Softmax node 'soft': op type Softmax .*not supported; supported: .*MatMul"


def weights_not_integer():
    b = Builder((1, 8), "INT4")
    x = b.matmul("x", int_weights(8, 4, 0.3), name="fc0")
    return b.build(x), r"^MatMul node 'fc0': weights '.*' cannot be made integer.*; supported: "


def weights_scales_not_integer_ratio():
    b = Builder((1, 4))
    x = b.quant("x", np.array([[0.25, 0.3, 0.75, 1.0]]), 4, signed=0, name="inq")
    x = b.quant_matmul(x, np.ones((4, 2)), 0.5, 2, name="fc0")
    return b.build(x), r"^MatMul node 'fc0': weights cannot be made integer.*; supported: "


def dynamic_shape():
    b = Builder((1, "features"), "INT4")
    x = b.matmul("x", int_weights(8, 4), name="fc0")
    return b.build(x), r"^graph input 'x': .*dynamic dimension features.*; supported: static"


def missing_shape():
    b = Builder((1, 8), "INT4")
    b.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    x = b.matmul("x", int_weights(8, 4), name="fc0")
    return b.build(x), r"^graph input 'x': tensor 'x' has no shape.*; supported: static shapes"


def missing_datatype_annotation():
    b = Builder((1, 8))
    x = b.matmul("x", int_weights(8, 4), name="fc0")
    return b.build(x), (r"^graph input 'x': has no integer datatype annotation.* before MatMul "
                        r"node 'fc0'; supported: an annotated integer input")


def unsorted_thresholds():
    b = Builder((1, 4), "INT4")
    x = b.matmul("x", int_weights(4, 2), "INT2", name="fc0")
    x = b.multithreshold(x, np.array([[1.0, 3.0, 2.0]] * 2), "UINT2", name="mt0")
    return b.build(x), r"^MultiThreshold node 'mt0': has unsorted thresholds.*; supported: .*sorted"


def non_constant_mul_operand():
    b = Builder((1, 4), "INT4")
    x = b.node("Mul", ["x", "x"], name="square")
    return b.build(x), r"^Mul node 'square': has 2 non-constant inputs.*; supported: one activation"


def matmul_activation_both_sides():
    b = Builder((1, 4), "INT4")
    x = b.node("MatMul", ["x", "x"], name="mm")
    return b.build(x), r"^MatMul node 'mm': has 2 non-constant inputs.*; supported: "


def topk_not_at_end():
    b = Builder((1, 4), "INT4")
    x = b.matmul("x", np.eye(4, dtype=np.float32), "INT2", name="fc0")
    _, labels = b.node("TopK", [x, b.const([1], np_type=np.int64)], outputs=2, name="top")
    x = b.node("Cast", [labels], to=TensorProto.FLOAT)
    x = b.node("Mul", [x, np.array(2, np.float32)], name="after")
    return b.build(x), (r"^Mul node 'after': follows TopK node 'top', which must be at the end; "
                        r"supported: TopK/ArgMax as the last node")


def quant_non_integer_bit_width():
    b = Builder((1, 4))
    x = b.quant("x", 0.5, 2.5, signed=0, name="q")
    return b.build(x), r"^Quant node 'q': has bit width \[2.5\]; supported: one integer bit width"


def quant_non_integer_zero_point():
    b = Builder((1, 4))
    x = b.quant("x", 0.5, 4, signed=0, zero=0.5, name="q")
    return b.build(x), r"^Quant node 'q': has a non-integer zero point.*; supported: integer zero"


def bipolar_weights_mismatch():
    b = Builder((1, 4), "BIPOLAR")
    w = np.array([[1, -1], [0, 1], [1, 1], [-1, -1]], dtype=np.float32)
    x = b.matmul("x", w, "BIPOLAR", name="fc0")
    return b.build(x), (r"^MatMul node 'fc0': weights '.*' do not match their datatype "
                        r"annotation BIPOLAR; supported: ")


def weights_outside_annotation():
    b = Builder((1, 4), "INT4")
    x = b.matmul("x", int_weights(4, 2, 5.0), "INT2", name="fc0")
    return b.build(x), r"^MatMul node 'fc0': weights .* annotation INT2; supported: "


def constant_divided_by_activation():
    b = Builder((1, 4), "UINT4")
    x = b.node("Div", [np.array(1, np.float32), "x"], name="recip")
    return b.build(x), r"^Div node 'recip': divides a constant by the activation; supported: "


def gemm_trans_a():
    b = Builder((1, 4), "INT4")
    x = b.node("Gemm", ["x", b.const(int_weights(1, 2), "INT2")], transA=1, name="g")
    return b.build(x), r"^Gemm node 'g': .*; supported: "


def relu_on_raw_accumulator():
    b = Builder((1, 4), "INT4")
    x = b.matmul("x", int_weights(4, 3), "INT2", name="fc0")
    x = b.node("Relu", [x], name="relu0")
    x = b.matmul(x, int_weights(3, 2), "INT2", name="fc1")
    return b.build(x), (r"^Relu node 'relu0': acts on a raw accumulator without a quantizer "
                        r"after it; supported: Relu/Clip followed by Quant")


def unaligned_residual():
    """Two branches whose integer scales differ by 3: no exact integer sum."""
    b = Builder((1, 4), "INT4")
    a = b.matmul("x", int_weights(4, 4), "INT2", name="fc0")
    c = b.matmul("x", int_weights(4, 4), "INT2", name="fc1")
    c = b.node("Mul", [c, np.float32(3.0) * np.ones(4, np.float32)], name="triple")
    x = b.node("Add", [a, c], name="join")
    return b.build(x), (r"^Add node 'join': adds inputs whose integer scales 1 and 3 differ by "
                        r"a factor that is not a power of two.*; supported: residual inputs")


def per_class_offsets_before_topk():
    """Offsets that are not integer multiples of the accumulator's scale (here 1)."""
    b = Builder((1, 4), "INT4")
    x = b.matmul("x", int_weights(4, 3), "INT2", name="fc0")
    x = b.node("Add", [x, np.array([0.0, 1.5, 2.0], np.float32)])
    _, labels = b.node("TopK", [x, b.const([1], np_type=np.int64)], outputs=2, name="top")
    return b.build(labels, TensorProto.INT64), (r"^TopK node 'top': follows per-element "
                                                r"scales or offsets.*; supported: the same.*"
                                                r"integer multiples of the scale")


def per_class_offsets_on_the_input_stream():
    """Integer per-class offsets, but on a stream no MVAU produces (nothing can take them)."""
    b = Builder((1, 3), "INT4")
    x = b.node("Add", ["x", np.array([0.0, 1.0, 2.0], np.float32)])
    x = b.node("ArgMax", [x], axis=1, keepdims=1, name="pick")
    return b.build(x, TensorProto.INT64), (r"^ArgMax node 'pick': follows per-element "
                                           r"scales or offsets.*; supported: the same")


def topk_values_used():
    b = Builder((1, 4), "INT4")
    x = b.matmul("x", np.eye(4, dtype=np.float32), "INT2", name="fc0")
    values, _ = b.node("TopK", [x, b.const([1], np_type=np.int64)], outputs=2, name="top")
    return b.build(values), r"^TopK node 'top': uses its values output; supported: only the"


def two_inputs():
    b = Builder((1, 4), "INT4")
    x = b.node("Add", ["x", "y"], name="add")
    model = b.build(x)
    model.graph.input.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]))
    return model, r"^graph 'net': has 2 inputs \['x', 'y'\]; supported: exactly one input"


def fixed_batch_size():
    b = Builder((4, 8), "INT4")
    x = b.matmul("x", int_weights(8, 2), "INT2", name="fc0")
    return b.build(x), r"^graph input 'x': tensor 'x' has batch size 4; supported: batch size 1"


def decreasing_stream_activation():
    b = Builder((1, 4), "UINT4")
    x = b.node("Mul", ["x", np.array(-1, np.float32)])
    x = b.multithreshold(x, np.array([[-8.0, -4.0]]), "UINT2", name="mt")
    x = b.matmul(x, int_weights(4, 2), "INT2", name="fc0")
    return b.build(x), r"^MultiThreshold node 'mt': decreases with its integer input stream; sup"


def argmax_along_batch():
    b = Builder((1, 4), "INT4")
    x = b.matmul("x", np.eye(4, dtype=np.float32), "INT2", name="fc0")
    x = b.node("ArgMax", [x], axis=0, name="am")
    return b.build(x, TensorProto.INT64), r"^ArgMax node 'am': selects along axis 0 .*; supp"


def cast_to_integer():
    b = Builder((1, 4), "INT4")
    x = b.node("Cast", ["x"], to=TensorProto.INT32, name="toint")
    return b.build(x, TensorProto.INT32), r"^Cast node 'toint': casts to a non-float type; sup"


def broadcast_changes_shape():
    b = Builder((1, 4), "INT4")
    x = b.node("Add", ["x", np.zeros((1, 2, 4), np.float32)], name="grow")
    return b.build(x), r"^Add node 'grow': changes the shape \(1, 4\) to \(1, 2, 4\).*; supported: "


def unsupported_input_datatype():
    b = Builder((1, 4), "TERNARY")
    x = b.matmul("x", int_weights(4, 2), "INT2", name="fc0")
    return b.build(x), r"^graph input 'x': datatype TERNARY is not supported; supported: BIPOLAR"


CASES = [unsupported_op, weights_not_integer, weights_scales_not_integer_ratio, dynamic_shape,
         missing_shape, missing_datatype_annotation, unsorted_thresholds,
         non_constant_mul_operand, matmul_activation_both_sides, topk_not_at_end,
         quant_non_integer_bit_width, quant_non_integer_zero_point, bipolar_weights_mismatch,
         weights_outside_annotation, constant_divided_by_activation, gemm_trans_a,
         relu_on_raw_accumulator, unaligned_residual, per_class_offsets_before_topk,
         per_class_offsets_on_the_input_stream,
         topk_values_used, two_inputs, fixed_batch_size, decreasing_stream_activation,
         argmax_along_batch, cast_to_integer, broadcast_changes_shape,
         unsupported_input_datatype]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
def test_malformed_model_error(case):
    model, pattern = case()
    with pytest.raises(GraphError) as info:
        graph.import_model(model)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    assert "supported" in message


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(GraphError, match=r"bad.onnx: not an ONNX model"):
        graph.import_model(str(path))
    with pytest.raises(GraphError, match=r"no such file"):
        graph.import_model(str(tmp_path / "missing.onnx"))
