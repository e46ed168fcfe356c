"""Models whose graph input is uint8 or int8, into MatMulInteger, QLinearMatMul, ConvInteger
and QLinearConv with constant weights (issue 15): the IR equals ``onnx.reference``'s
ReferenceEvaluator and onnxruntime (through qonnx, every recorded activation) bit for bit,
and ``hwgen compile`` + ``hwgen verify`` (the compiled Verilator harness) agree with it.

Scales are powers of two and output zero points even: ReferenceEvaluator adds
``y_zero_point`` before rounding, onnxruntime (and the ONNX formula ``saturate(round(x /
y_scale) + y_zero_point)``) after it, so with an odd zero point the two references differ
at exact ties; hwgen follows onnxruntime (:func:`test_odd_output_zero_point`).
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator

import graph
from graph.errors import GraphError
from graph.verify import verify
from hwgen.cli import main

from graph_checks import run_both
from models import (INTEGER_NP_TYPES, Builder, conv_integer_model, integer_inputs,
                    matmul_integer_model, qlinear_cnn_model, qlinear_conv_model,
                    qlinear_matmul_model)

U8, I8 = TensorProto.UINT8, TensorProto.INT8

#: name -> (model builder on a generator, the layer kinds of its IR)
MODELS = {
    "matmulinteger_uint8": (lambda r: matmul_integer_model(r, U8), ["mvau"]),
    "matmulinteger_int8": (lambda r: matmul_integer_model(r, I8), ["mvau"]),
    "qlinearmatmul_uint8": (lambda r: qlinear_matmul_model(r, U8), ["mvau"]),
    "qlinearmatmul_int8": (lambda r: qlinear_matmul_model(r, I8), ["mvau"]),
    "qlinearmatmul_int8_per_column": (lambda r: qlinear_matmul_model(r, I8, per_column=True),
                                      ["mvau"]),
    "convinteger_uint8": (lambda r: conv_integer_model(r, U8),
                          ["pad", "sliding_window", "mvau"]),
    "convinteger_int8": (lambda r: conv_integer_model(r, I8),
                         ["pad", "sliding_window", "mvau"]),
    "qlinearconv_uint8": (lambda r: qlinear_conv_model(r, U8),
                          ["pad", "sliding_window", "mvau"]),
    "qlinearconv_uint8_per_channel": (lambda r: qlinear_conv_model(r, U8, per_channel=True),
                                      ["pad", "sliding_window", "mvau"]),
    "qlinearconv_int8_per_channel": (lambda r: qlinear_conv_model(r, I8, per_channel=True),
                                     ["pad", "sliding_window", "mvau"]),
    "qlinearconv_uint8_no_bias": (lambda r: qlinear_conv_model(r, U8, bias=False),
                                  ["pad", "sliding_window", "mvau"]),
    "qlinearconv_depthwise": (lambda r: qlinear_conv_model(r, U8, depthwise=True),
                              ["pad", "sliding_window", "vvau"]),
    # per-tensor: ReferenceEvaluator's QLinearConv broadcasts per-channel scales as 2-D only
    "qlinearconv_1d_stride2_int8": (lambda r: qlinear_conv_model(r, I8, one_d=True),
                                    ["pad", "sliding_window", "mvau"]),
    "qlinear_cnn": (qlinear_cnn_model, ["pad", "sliding_window", "mvau", "sliding_window",
                                        "vvau", "mvau"]),
}

#: compiled and verified in the default tier (the others: @slow); every op, and int8 inputs
COMPILED = ["matmulinteger_int8", "qlinearmatmul_int8_per_column", "convinteger_uint8",
            "qlinearconv_int8_per_channel", "qlinear_cnn"]
#: folded to this target (PE = SIMD = 1), so the Verilator build of each harness takes about
#: 10-25 s of one core; the default folding, fully parallel, takes minutes (@slow below)
TARGET_FPS = "20000"


def model_inputs(model, r, n):
    """``n`` random inputs over the whole range of the model's integer input type."""
    vi = model.graph.input[0]
    shape = [d.dim_value for d in vi.type.tensor_type.shape.dim][1:]
    return integer_inputs(r, vi.type.tensor_type.elem_type, n, shape)


def evaluator(model, x):
    """ONNX's ReferenceEvaluator on the batch ``x``, outputs ``(N, elements)``."""
    np_type = INTEGER_NP_TYPES[model.graph.input[0].type.tensor_type.elem_type]
    (y,) = ReferenceEvaluator(model).run(None, {"x": np.asarray(x).astype(np_type)})
    return y.reshape(len(x), -1)


def ir_output(network, x):
    return network.output_values(network.execute(network.quantize_input(x)))


@pytest.mark.parametrize("name", MODELS)
def test_ir_equals_both_references(name):
    build, layer_kinds = MODELS[name]
    r = np.random.default_rng(15)
    model = build(r)
    x = model_inputs(model, r, 300)
    network, ours, ort = run_both(model, x.astype(np.float32))  # every activation, vs ORT
    assert [layer.kind for layer in network.layers] == layer_kinds
    elem_type = model.graph.input[0].type.tensor_type.elem_type
    assert network.input_type == {U8: "UINT8", I8: "INT8"}[elem_type]
    ref = evaluator(model, x)
    assert np.array_equal(ours, ref.astype(np.float64))
    # the outputs are the model's integers, and not all one value
    out_type = INTEGER_NP_TYPES[model.graph.output[0].type.tensor_type.elem_type]
    assert np.array_equal(np.asarray(ort).reshape(ref.shape), ref) and ref.dtype == out_type
    assert len(np.unique(ref)) > 10


def compile_and_verify(name, tmp_path, frames=300, options=("--target-fps", TARGET_FPS)):
    """``hwgen compile`` the model, and ``verify`` it on ``frames`` random inputs: the
    reference (onnxruntime) == IR == RTL, and the IR == ReferenceEvaluator."""
    build, _ = MODELS[name]
    r = np.random.default_rng(16)
    model = build(r)
    onnx.save(model, tmp_path / f"{name}.onnx")
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / f"{name}.onnx"), "-o", str(out), *options]) == 0
    x = model_inputs(model, r, frames)
    ref = evaluator(model, x)
    result = verify(out, x.astype(np.float32), expected=ref.astype(np.float32),
                    progress=None)
    assert result["onnx_agree"] == result["rtl_agree"] == frames
    assert result["harness"] == "compiled" and result["accuracy"] == 1.0
    # the compiled IR itself against ReferenceEvaluator, bit for bit
    assert np.array_equal(ir_output(graph.load_network(out), x.astype(np.float32)), ref)


@pytest.mark.parametrize("name", COMPILED)
def test_compiles_and_verifies(name, tmp_path):
    compile_and_verify(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in MODELS if name not in COMPILED])
def test_compiles_and_verifies_slow(name, tmp_path):
    compile_and_verify(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["matmulinteger_uint8", "qlinearconv_uint8_per_channel"])
def test_compiles_and_verifies_at_the_default_folding(name, tmp_path):
    """Fully parallel: every output's thresholds compared at once (a Verilator build of
    minutes)."""
    compile_and_verify(name, tmp_path, options=())


@pytest.mark.parametrize("build", [
    lambda r, z: qlinear_conv_model(r, U8, per_channel=True, y_zero=z),
    lambda r, z: qlinear_matmul_model(r, U8, y_zero=z),
], ids=["qlinearconv", "qlinearmatmul"])
def test_odd_output_zero_point(build):
    """With an odd ``y_zero_point`` the IR still equals onnxruntime, and ReferenceEvaluator
    differs by one where ``acc * scale`` is a tie: it rounds ``acc * scale + 127`` where
    onnxruntime rounds ``acc * scale`` and adds 127, so the IR equals ReferenceEvaluator's
    output of the model with zero point 128, less one, away from saturation."""
    r = np.random.default_rng(17)
    model = build(r, 127)
    x = model_inputs(model, r, 300)
    _, ours, _ = run_both(model, x.astype(np.float32))
    odd = evaluator(model, x).astype(np.int64)
    even = evaluator(build(np.random.default_rng(17), 128), x).astype(np.int64)
    differ = ours != odd
    assert differ.any() and np.all(np.abs(ours - odd)[differ] == 1)
    inside = (even > 0) & (even < 255)
    assert inside.mean() > 0.9
    assert np.array_equal(ours[inside], even[inside] - 1)


# --- errors ---------------------------------------------------------------------------------
# A finn_datatype annotation wider than an integer input's element type, and a float input
# without a quantizer, are tested in test_import.py (test_annotation_on_an_integer_input,
# test_float_input_without_quantizer_is_an_error).

def _qlinear_conv(b, **overrides):
    """QLinearConv inputs of a (1, 3, 6, 6) uint8 input, 4 output channels, with
    ``overrides`` (input name -> array) put in."""
    u8 = lambda v: b.const(np.asarray(v, np.uint8), np_type=np.uint8)  # noqa: E731
    inputs = {"x": "x", "x_scale": b.const(np.float32(0.5)), "x_zero": u8(3),
              "w": b.const(np.ones((4, 3, 3, 3), np.int8), np_type=np.int8),
              "w_scale": b.const(np.float32(0.25)),
              "w_zero": b.const(np.int8(0), np_type=np.int8),
              "y_scale": b.const(np.float32(4.0)), "y_zero": u8(8)}
    for key, value in overrides.items():
        inputs[key] = value if isinstance(value, str) else b.const(
            value, np_type=value.dtype.type)
    return b.node("QLinearConv", list(inputs.values()), name="qlc", kernel_shape=[3, 3])


@pytest.mark.parametrize("overrides, message", [
    ({"x_zero": np.array([1, 2, 3], np.uint8)},
     r"^QLinearConv node 'qlc': has an input zero point of shape \(3,\); supported: one "
     r"\(per-tensor\) zero point of the activation$"),
    ({"w_zero": np.zeros(3, np.int8)},
     r"^QLinearConv node 'qlc': has a weight zero point of shape \(3,\) for weights of shape "
     r"\(4, 3, 3, 3\); supported: one weight zero point, or one per output channel$"),
    ({"w_scale": np.full(3, 0.25, np.float32)},
     r"^QLinearConv node 'qlc': has a weight scale of shape \(3,\) for 4 output channels; "
     r"supported: one weight scale, or one per output channel$"),
    ({"y_scale": np.float32(0.0)},
     r"^QLinearConv node 'qlc': has a scale \[0\.0\] that is not positive; supported: "
     r"positive finite scales$"),
    ({"w": "x"},
     r"^QLinearConv node 'qlc': has 2 non-constant inputs \['x', 'x'\]; supported: one "
     r"activation input, all other inputs constant"),
])
def test_unsupported_quantization_is_named(overrides, message):
    b = Builder((1, 3, 6, 6), elem_type=U8)
    y = _qlinear_conv(b, **overrides)
    with pytest.raises(GraphError, match=message):
        graph.import_model(b.build(y, TensorProto.UINT8))



@pytest.mark.parametrize("x_zero, w_zero, message", [
    (np.array([1, 2], np.uint8), np.int8(0),
     r"^MatMulInteger node 'mmi': has an input zero point of shape \(2,\); supported: one "
     r"\(per-tensor\) zero point of the activation$"),
    (np.uint8(1), np.zeros(8, np.int8),
     r"^MatMulInteger node 'mmi': has a weight zero point of shape \(8,\) for weights of "
     r"shape \(8, 5\); supported: one weight zero point, or one per column$"),
])
def test_unsupported_matmulinteger_zero_points_are_named(x_zero, w_zero, message):
    b = Builder((1, 8), elem_type=U8)
    acc = b.node("MatMulInteger", ["x", b.const(np.ones((8, 5), np.int8), np_type=np.int8),
                                   b.const(x_zero, np_type=x_zero.dtype.type),
                                   b.const(w_zero, np_type=w_zero.dtype.type)], name="mmi")
    with pytest.raises(GraphError, match=message):
        graph.import_model(b.build(b.node("Cast", [acc], to=TensorProto.FLOAT)))
