"""8-bit QDQ networks end to end with Requantize: the compile fuses an exact multiply-shift
where the estimate says it is cheaper, names the choice in the report and the IR, honours a
folding that asks for thresholds, and the RTL agrees with the ONNX reference on every frame.

The model is written here as onnxruntime's static quantization writes one: QuantizeLinear /
DequantizeLinear pairs around Gemm, int8 weights with per-channel scales, int32 biases
dequantized at ``s_in * s_w``, uint8 activations, awkward float32 scales."""

import json

import numpy as np
import pytest

from graph.compile import compile_model, load_network
from graph.errors import GraphError
from graph.verify import verify
from hwgen.cli import main

from models import Builder


def qdq_mlp(r, sizes=(16, 64, 16), per_channel=True, relu=True):
    """An 8-bit QDQ MLP: uint8 activations, int8 weights (per output channel scales when
    ``per_channel``), int32 biases."""
    b = Builder((1, sizes[0]))
    u8 = lambda v: b.const(v, np_type=np.uint8)  # noqa: E731
    scale = np.float32(r.uniform(0.003, 0.005))
    q = b.node("QuantizeLinear", ["x", b.const(scale), u8(0)], name="q_in")
    x = b.node("DequantizeLinear", [q, b.const(scale), u8(0)])
    for k, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        w = r.integers(-127, 128, size=(fan_out, fan_in))
        w_scale = r.uniform(0.001, 0.003, fan_out if per_channel else 1).astype(np.float32)
        w_dq = b.node("DequantizeLinear", [
            b.const(w, np_type=np.int8), b.const(w_scale if per_channel else w_scale[0]),
            b.const(np.zeros(fan_out, np.int8) if per_channel else np.int8(0), np_type=np.int8)],
            axis=0)
        bias_scale = (scale * w_scale).astype(np.float32)
        bias = r.integers(-2000, 2000, size=fan_out)
        b_dq = b.node("DequantizeLinear", [
            b.const(bias, np_type=np.int32), b.const(bias_scale if per_channel else bias_scale[0]),
            b.const(np.zeros(fan_out, np.int32) if per_channel else np.int32(0),
                    np_type=np.int32)], axis=0)
        x = b.node("Gemm", [x, w_dq, b_dq], transB=1, name=f"fc{k}")
        if relu and k < len(sizes) - 2:
            x = b.node("Relu", [x])
        scale = np.float32(r.uniform(0.004, 0.008))
        q = b.node("QuantizeLinear", [x, b.const(scale), u8(0 if relu else 128)],
                   name=f"q{k}")
        x = b.node("DequantizeLinear", [q, b.const(scale), u8(0 if relu else 128)])
    return b.build(x)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import onnx
    path = tmp_path_factory.mktemp("qdq") / "mlp.onnx"
    onnx.save(qdq_mlp(np.random.default_rng(5)), path)
    return path


def inputs(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1.2, size=(n, 1, 16)).astype(np.float32)


def test_compile_fuses_requantize_and_verifies(model_path, tmp_path):
    out = tmp_path / "out"
    report = compile_model(model_path, out, progress=None)
    rows = {row["name"]: row for row in report["layers"]}
    assert rows["fc0"]["activation"] == "requantize"
    assert rows["fc0"]["bram18"] == 0
    network = load_network(out)
    fc0 = network.layer("fc0")
    assert fc0.activation == "requantize" and fc0.thresholds.shape == (64, 255)
    assert " requantize " in (out / "report.txt").read_text()
    result = verify(out, inputs(400), progress=None)
    assert result["onnx_agree"] == result["rtl_agree"] == 400


def test_folding_can_keep_the_thresholds(model_path, tmp_path):
    """The same layer with ``"activation": "thresholds"`` in the folding JSON: the report says
    so, the threshold memories come back, and the outputs are the same."""
    auto = compile_model(model_path, tmp_path / "auto", progress=None)
    layers = {row["name"]: row for row in auto["layers"]}
    spec = {"fc0": {"pe": layers["fc0"]["pe"], "simd": layers["fc0"]["simd"],
                    "activation": "thresholds"}}
    (tmp_path / "fold.json").write_text(json.dumps(spec))
    assert main(["compile", str(model_path), "-o", str(tmp_path / "thr"), "--folding",
                 str(tmp_path / "fold.json")]) == 0
    kept = json.loads((tmp_path / "thr" / "report.json").read_text())
    row = {r["name"]: r for r in kept["layers"]}["fc0"]
    assert row["activation"] == "thresholds"
    assert row["bram18"] >= 5 * max(1, layers["fc0"]["bram18"])
    network = load_network(tmp_path / "thr")
    x = network.quantize_input(inputs(200, seed=1))
    assert np.array_equal(network.execute(x), load_network(tmp_path / "auto").execute(x))
    result = verify(tmp_path / "thr", inputs(200, seed=1), progress=None)
    assert result["rtl_agree"] == 200


def test_a_folding_with_an_unknown_activation_is_refused(model_path, tmp_path):
    (tmp_path / "fold.json").write_text(json.dumps({"fc0": {"activation": "sigmoid"}}))
    with pytest.raises(GraphError, match=r"folding of mvau layer 'fc0': activation='sigmoid' "
                                         r"is not valid; valid activation: auto, thresholds, "
                                         r"requantize"):
        compile_model(model_path, tmp_path / "bad", folding=tmp_path / "fold.json",
                      progress=None)
