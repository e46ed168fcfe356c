"""The bundled digits CNNs (``examples/train_digits_cnn.py``) compile and verify on the whole
held-out split: ONNX reference == IR == RTL (cocotb on Verilator, random back-pressure), and
the simulated throughput equals the estimate."""

import os

import pytest

from graph import compile_model
from graph.verify import verify

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.mark.parametrize("name, kinds, min_accuracy", [
    ("digits_cnn", {"pad", "sliding_window", "mvau", "maxpool"}, 0.9),
    ("digits_cnn_residual", {"pad", "sliding_window", "mvau", "addstreams", "maxpool"}, 0.9),
    ("digits_cnn_dw", {"pad", "sliding_window", "mvau", "vvau", "globalaccpool"}, 0.85),
])
def test_cnn_example_verifies_on_the_whole_split(tmp_path, name, kinds, min_accuracy):
    out = tmp_path / name
    report = compile_model(os.path.join(EXAMPLES, f"{name}.onnx"), out,
                           progress=lambda *a, **k: None)
    assert kinds <= {row["kind"] for row in report["layers"]}
    result = verify(out, os.path.join(EXAMPLES, "digits_test_x.npy"),
                    os.path.join(EXAMPLES, "digits_test_y.npy"), progress=lambda *a, **k: None)
    assert result["frames"] == result["onnx_agree"] == result["rtl_agree"] == 360
    assert result["accuracy"] >= min_accuracy
    assert result["sim_fps"] == pytest.approx(result["est_fps"], rel=0.01)
