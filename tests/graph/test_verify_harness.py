"""``hwgen verify`` on the compiled harness: it agrees with the cocotb harness, checks whole
test sets, and localizes a disagreement to the layer, beat and element.

One digits W1A1 MLP is compiled per module. Faults are injected two ways: in the IR (a
``network.json`` whose layer fc1 no longer matches ``top.v``) and in the written Verilog (the
module of fc1 in ``top.v`` replaced by the one of a different fc1)."""

import json
import os
import re
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from graph.compile import load_network
from graph.elaborate import Pipeline
from graph.errors import GraphError
from graph.verify import verify
from hwgen.cli import main
from sim.harness import run_compiled_stream_test
from sim.sources import module_blocks, module_names, module_tree
from sim.streams import run_stream_test

from models import integer_input_model

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
MODEL = os.path.join(EXAMPLES, "digits_w1a1.onnx")
TEST_X = os.path.join(EXAMPLES, "digits_test_x.npy")

pytestmark = pytest.mark.skipif(not os.path.exists(MODEL), reason="examples not built")

LOCALIZED_FC1 = (r"localized: layer fc1 \(mvau, module top_s6_fc1\) differs from the IR: "
                 r"frame (\d+), beat (\d+) of the frame, element (\d+): expected (-?\d+), "
                 r"seen (-?\d+)")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    assert main(["compile", MODEL, "-o", str(out)]) == 0
    return out


def corrupted_fc1(network_json):
    """The network with the weights of fc1 negated."""
    data = json.loads(network_json.read_text())
    layer = next(layer for layer in data["layers"] if layer["name"] == "fc1")
    layer["weights"] = (-np.asarray(layer["weights"])).tolist()
    return data


def test_compiled_and_cocotb_harnesses_agree_on_the_network(compiled):
    network = load_network(compiled)
    x = network.quantize_input(np.load(TEST_X)[:6])
    y = network.execute(x)
    pipeline = Pipeline(network)
    beats_in, beats_out = x.reshape(-1, pipeline.in_lanes), y.reshape(-1, pipeline.out_lanes)
    both = [run(pipeline, beats_in, beats_out, verilog=compiled / "top.v", valid_prob=1.0,
                ready_prob=1.0) for run in (run_compiled_stream_test, run_stream_test)]
    for key in ("cycles", "latency", "in_cycles", "out_cycles"):
        assert np.asarray(both[0][key]).tolist() == np.asarray(both[1][key]).tolist(), key
    assert both[0]["latency"] == pipeline.latency
    # and both check every beat under stalls
    for run in (run_compiled_stream_test, run_stream_test):
        report = run(pipeline, beats_in, beats_out, verilog=compiled / "top.v", seed=4,
                     valid_prob=0.6, ready_prob=0.5)
        assert report["out_beats"] == len(beats_out)


def test_ten_thousand_frames(compiled):
    x = np.load(TEST_X)
    x = np.tile(x, (28, 1))[:10_000]
    seen = []
    result = verify(compiled, x, progress=None, meter=lambda *args: seen.append(args))
    assert result["frames"] == result["rtl_agree"] == result["onnx_agree"] == 10_000
    assert result["harness"] == "compiled" and result["sim_cycles_per_second"] > 1e5
    assert seen[-1][:2] == (10_000, 10_000)
    assert result["sim_cycles_per_frame"] == result["est_cycles_per_frame"]
    assert result["sim_latency"] == result["est_latency"]


def test_fault_in_the_ir_is_localized(compiled, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(compiled, out)
    (out / "network.json").write_text(json.dumps(corrupted_fc1(out / "network.json")))
    (out / "model.onnx").unlink()        # the reference would find the IR wrong first
    lines = []
    with pytest.raises(GraphError) as info:
        verify(out, np.load(TEST_X)[:20], progress=lines.append)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"RTL simulation \(verilator, compiled harness\) disagrees with the IR: "
                     r"output beat \d+ \(frame \d+, beat 0 of the frame", message)
    match = re.search(LOCALIZED_FC1, message)
    assert match, message
    # the stages before fc1 agree; the search stops at fc1
    stages = [line.strip() for line in lines if "module top_s" in line]
    assert stages[:2] == ["layer binarize_input (threshold, module top_s0_binarize_input) "
                          "agrees with the IR",
                          "layer fc0 (mvau, module top_s3_fc0) agrees with the IR"]
    assert len(stages) == 3
    # the named element really differs: fc1's output in the IR against the original IR
    frame, element = int(match[1]), int(match[3])
    good, bad = load_network(compiled), load_network(out)
    x = good.quantize_input(np.load(TEST_X)[:20])
    _, good_edges = good.execute(x, intermediates=True)
    _, bad_edges = bad.execute(x, intermediates=True)
    assert bad_edges["fc1"][frame, element] == int(match[4])
    assert good_edges["fc1"][frame, element] == int(match[5])


def test_fault_in_the_verilog_is_localized(compiled, tmp_path):
    """fc1's module in top.v is swapped for the one compiled from a different fc1."""
    other = tmp_path / "other"
    shutil.copytree(compiled, other)
    (other / "network.json").write_text(json.dumps(corrupted_fc1(other / "network.json")))
    network = load_network(other)
    from graph.elaborate import stitched_verilog
    from graph.elaborate import Accelerator
    bad_text = stitched_verilog(Accelerator(network))
    out = tmp_path / "out"
    shutil.copytree(compiled, out)
    text = (out / "top.v").read_text()
    assert module_tree(text, "top_s6_fc1") != module_tree(bad_text, "top_s6_fc1")
    bad_blocks = dict(module_blocks(bad_text))
    for name, block in module_blocks(text):
        if name == "top_s6_fc1" or name.startswith("top_s6_fc1."):
            text = text.replace(block, bad_blocks[name])
    (out / "top.v").write_text(text)
    assert module_names(text) == module_names((compiled / "top.v").read_text())
    with pytest.raises(GraphError, match=LOCALIZED_FC1):
        verify(out, np.load(TEST_X)[:20], progress=None, waves=True)
    waves = list((out / "waves").iterdir())
    assert [path.stem for path in waves] == ["fc1"] and waves[0].stat().st_size > 1000


def test_per_layer_on_request(compiled, capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.load(TEST_X)[:4])
    status = main(["verify", str(compiled), "--inputs", str(tmp_path / "x.npy"),
                   "--per-layer"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "per layer: 5 stages of top.v agree with the IR on their own" in out
    assert err.count("agrees with the IR") == 5
    assert "IR == RTL (verilator, compiled harness, random back-pressure): 4/4" in out
    assert re.search(r"\] 4/4 frames, [\d,]+ cycles, [\d.]+ M cycles/s", err)


def test_cocotb_harness_on_request(compiled, capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.load(TEST_X)[:3])
    status = main(["verify", str(compiled), "--inputs", str(tmp_path / "x.npy"),
                   "--harness", "cocotb"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "IR == RTL (verilator, cocotb harness, random back-pressure): 3/3" in out
    assert "compiled harness" not in err


def test_harness_errors(compiled, capsys, monkeypatch, tmp_path):
    np.save(tmp_path / "x.npy", np.load(TEST_X)[:2])
    status = main(["verify", str(compiled), "--inputs", str(tmp_path / "x.npy"), "--sim",
                   "icarus"])
    assert status == 2
    assert re.search(r"^hwgen: error: the compiled harness runs on Verilator, not icarus: use "
                     r"the cocotb harness for icarus \(--harness cocotb\)$",
                     capsys.readouterr().err, re.M)
    # no C++ compiler: one line that says how to install one; no silent fallback to cocotb
    monkeypatch.setenv("CXX", "no-such-c++")
    status = main(["verify", str(compiled), "--inputs", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert status == 2
    errors = [line for line in err.splitlines() if line.startswith("hwgen: error:")]
    assert len(errors) == 1 and re.search(r"no C\+\+ compiler found \(no-such-c\+\+ not on "
                                          r"PATH\).*apt-get install g\+\+.*--harness cocotb",
                                          errors[0])
    assert "RTL simulation" not in err          # nothing was simulated, by no harness


@pytest.mark.slow
def test_fault_on_a_residual_branch_is_localized(tmp_path):
    """The residual digits CNN (a fork, two convolutions on one branch, a join): with the
    weights of the branch's second convolution changed in network.json, the stages before it
    (the duplicate included) agree and it is the one named."""
    model = os.path.join(EXAMPLES, "digits_cnn_residual.onnx")
    out = tmp_path / "out"
    assert main(["compile", model, "-o", str(out)]) == 0
    data = json.loads((out / "network.json").read_text())
    layer = next(layer for layer in data["layers"] if layer["name"] == "res_conv1")
    layer["weights"] = (-1 - np.asarray(layer["weights"])).tolist()   # INT2 stays INT2
    (out / "network.json").write_text(json.dumps(data))
    (out / "model.onnx").unlink()
    lines = []
    with pytest.raises(GraphError, match=r"localized: layer res_conv1 \(mvau, module "
                                         r"top_s20_res_conv1\) differs from the IR: frame \d+"):
        verify(out, np.load(TEST_X)[:6], progress=lines.append)
    assert any("duplicate conv0.fork (duplicate, module top_s6_conv0_fork) agrees" in line
               for line in lines)


def test_localization_needs_the_stage_modules(compiled, tmp_path):
    """A top.v without per-stage modules (an older hwgen's) still gives the disagreement,
    and says why the layers could not be run on their own."""
    from graph.elaborate import Accelerator
    from hwgen.export.verilog import kernel_verilog
    out = tmp_path / "out"
    shutil.copytree(compiled, out)
    (out / "network.json").write_text(json.dumps(corrupted_fc1(out / "network.json")))
    (out / "model.onnx").unlink()
    (out / "top.v").write_text(kernel_verilog(Accelerator(load_network(compiled)), name="top"))
    with pytest.raises(GraphError, match=r"disagrees with the IR: output beat \d+ .*; the "
                                         r"layers could not be simulated on their own \(.*top.v "
                                         r"has no module top_s0_binarize_input for stage "
                                         r"binarize_input: it was written by an older hwgen"):
        verify(out, np.load(TEST_X)[:20], progress=None)


def test_an_integer_typed_input_compiles_and_verifies(tmp_path):
    """A uint8 graph input into a QLinearMatMul: no annotation, compiled, and verified on the
    compiled harness against the ONNX reference."""
    r = np.random.default_rng(31)
    onnx.save(integer_input_model(r, TensorProto.UINT8), tmp_path / "u8.onnx")
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / "u8.onnx"), "-o", str(out)]) == 0
    x = r.integers(0, 256, size=(500, 8)).astype(np.float32)
    result = verify(out, x, progress=None)
    assert result["onnx_agree"] == result["rtl_agree"] == 500


def test_a_reference_disagreement_still_checks_the_rtl(tmp_path):
    """A model.onnx that no longer matches the compiled network (one weight changed): verify
    still simulates the RTL, and the error says the RTL equals the IR, so the disagreement is
    between the model and its import."""
    r = np.random.default_rng(31)
    model = integer_input_model(r, TensorProto.UINT8)
    onnx.save(model, tmp_path / "u8.onnx")
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / "u8.onnx"), "-o", str(out)]) == 0
    weights = next(init for init in model.graph.initializer if init.dims and
                   len(init.dims) == 2)
    array = onnx.numpy_helper.to_array(weights).copy()
    array.flat[0] = array.flat[0] + (1 if array.flat[0] < 3 else -1)
    weights.CopyFrom(onnx.numpy_helper.from_array(array, weights.name))
    onnx.save(model, out / "model.onnx")
    x = r.integers(0, 256, size=(200, 8)).astype(np.float32)
    with pytest.raises(GraphError, match=r"the IR and the ONNX reference disagree on \d+ of "
                                         r"200 frames .*; the RTL equals the IR on 200/200 "
                                         r"frames, so the disagreement is between the model "
                                         r"and its import"):
        verify(out, x, progress=None)
