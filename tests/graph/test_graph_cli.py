"""``hwgen compile|verify|report`` end to end on the bundled digits model, and their
one-line errors (bad folding, unreachable target, bad .npy inputs)."""

import json
import os

import numpy as np
import pytest

from hwgen.cli import main

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
MODEL = os.path.join(EXAMPLES, "digits_w1a1.onnx")
TEST_X = os.path.join(EXAMPLES, "digits_test_x.npy")
TEST_Y = os.path.join(EXAMPLES, "digits_test_y.npy")

pytestmark = pytest.mark.skipif(not os.path.exists(MODEL), reason="examples not built")


def run(capsys, *argv):
    status = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err):
    lines = [line for line in err.splitlines() if line.startswith("hwgen: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    status = main(["compile", MODEL, "-o", str(out), "--clock-mhz", "200"])
    assert status == 0
    return out


def test_compile_writes_verilog_and_reports(compiled, capsys):
    names = {path.name for path in compiled.iterdir()}
    assert {"top.v", "network.json", "model.onnx", "report.json", "report.txt"} <= names
    verilog = (compiled / "top.v").read_text()
    assert "module top" in verilog and "m_axis_tlast" in verilog and "s_axis_tready" in verilog
    report = json.loads((compiled / "report.json").read_text())
    assert report["clock_mhz"] == 200
    assert report["est_fps"] == pytest.approx(200e6 / report["cycles_per_frame"])
    assert [row["name"] for row in report["layers"] if row["kind"] != "width"
            and row["kind"] != "fifo"] == ["binarize_input", "fc0", "fc1", "fc2", "topk"]
    status, out, _ = run(capsys, "report", compiled)
    assert status == 0
    assert out == (compiled / "report.txt").read_text()
    for heading in ("PE", "SIMD", "datapath", "cycles", "LUT", "FF", "BRAM18", "DSP", "total",
                    "frames/s", "latency"):
        assert heading in out


def test_verify_three_executions_agree(compiled, capsys, tmp_path):
    x, y = np.load(TEST_X)[:10], np.load(TEST_Y)[:10]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    status, out, err = run(capsys, "verify", compiled, "--inputs", tmp_path / "x.npy",
                           "--expected", tmp_path / "y.npy")
    assert status == 0, err
    assert "ONNX reference == IR: 10/10" in out and "IR == RTL (verilator" in out
    assert "accuracy against" in out
    report = json.loads((compiled / "report.json").read_text())
    cycles = report["cycles_per_frame"]
    assert f"({cycles:g} cycles per frame), " in out
    assert f"latency {report['latency_cycles']} cycles simulated, " \
           f"{report['latency_cycles']} estimated" in out


@pytest.mark.parametrize("array, message", [
    (np.zeros((3, 10)), r"inputs of shape \(3, 10\) do not fit the network input"),
    (np.full((2, 64), 40), r"2 \* 64|values outside|outside"),
    (np.full((2, 64), -1), r"outside"),
    (np.full((2, 64), 0.5), r"integers"),
])
def test_verify_bad_inputs(compiled, capsys, tmp_path, array, message):
    import re
    path = tmp_path / "bad.npy"
    np.save(path, array)
    status, _, err = run(capsys, "verify", compiled, "--inputs", path)
    assert status == 2
    line = one_line_error(err)
    assert re.search(message, line), line
    assert str(path) in line


def test_verify_input_file_errors(compiled, capsys, tmp_path):
    status, _, err = run(capsys, "verify", compiled, "--inputs", tmp_path / "none.npy")
    assert status == 2 and "no such file" in one_line_error(err)
    (tmp_path / "junk.npy").write_text("not numpy")
    status, _, err = run(capsys, "verify", compiled, "--inputs", tmp_path / "junk.npy")
    assert status == 2 and "not a .npy array" in one_line_error(err)
    status, _, err = run(capsys, "verify", tmp_path, "--inputs", TEST_X)
    assert status == 2 and "not a hwgen compile output" in one_line_error(err)


def test_compile_errors(capsys, tmp_path):
    folding = tmp_path / "fold.json"
    folding.write_text(json.dumps({"fc0": {"pe": 3}}))
    status, _, err = run(capsys, "compile", MODEL, "-o", tmp_path / "a", "--folding", folding)
    assert status == 2
    assert one_line_error(err) == (
        "hwgen: error: folding of mvau layer 'fc0': PE=3 must divide MH=128; valid PE: "
        "1, 2, 4, 8, 16, 32, 64, 128")
    folding.write_text(json.dumps({"fc0": {"datapath": "dsp"}}))
    status, _, err = run(capsys, "compile", MODEL, "-o", tmp_path / "a", "--folding", folding)
    assert status == 2 and "valid datapath: auto, xnor, lut" in one_line_error(err)
    status, _, err = run(capsys, "compile", MODEL, "-o", tmp_path / "a", "--target-fps", "5e8")
    assert status == 2 and "unreachable" in one_line_error(err)
    status, _, err = run(capsys, "compile", tmp_path / "none.onnx", "-o", tmp_path / "a")
    assert status == 2 and "no such file" in one_line_error(err)
    assert not (tmp_path / "a").exists()


def test_bad_option_values(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", MODEL, "-o", str(tmp_path), "--target-fps", "fast"])
    assert exit_info.value.code != 0
    assert "expected a number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", str(tmp_path), "--inputs", TEST_X, "--sim", "modelsim"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command, options", [
    ("compile", ["--target-fps", "--clock-mhz", "--folding", "-o"]),
    ("verify", ["--inputs", "--expected", "--sim", "--seed", "--harness", "--per-layer",
                "--waves"]),
    ("report", ["OUT"]),
])
def test_help(capsys, command, options):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out


def test_report_html_page(compiled, capsys, tmp_path):
    """``hwgen report OUT --html``: one dataflow box per stage with the bottleneck marked,
    per-layer bars, every stage in the table, and a measurement found in OUT next to the
    estimate."""
    import shutil
    out = tmp_path / "c"
    shutil.copytree(compiled, out)
    (out / "synth-xcup.json").write_text(json.dumps({"luts": 1234, "ffs": 2345, "bram18": 3,
                                                     "dsp": 0, "fmax_mhz": None}))
    status, text, _ = run(capsys, "report", out, "--html")
    assert status == 0 and text.strip() == f"wrote {out / 'report.html'}"
    page = (out / "report.html").read_text()
    report = json.loads((out / "report.json").read_text())
    stages = report["layers"]
    dataflow = page.split("<h2>Dataflow</h2>")[1].split("<h2>")[0]
    assert dataflow.count("<rect") == len(stages)
    assert dataflow.count("(bottleneck)") == 1
    assert f"{report['bottleneck']} (" in dataflow and "stroke='#c0392b'" in dataflow
    for row in stages:
        assert f"<td>{row['name']}</td>" in page
    bars = page.split("<h2>Per layer</h2>")[1]
    assert bars.count("<title>cycles per frame:") == len(stages)
    assert "<td>measured: xcup</td><td>1234</td><td>2345</td><td>3</td>" in page
    status, _, _ = run(capsys, "report", out, "--html", tmp_path / "page.html")
    assert status == 0 and (tmp_path / "page.html").read_text() == page
    # a chain: every stage reads the one before it, and the diagram is drawn as one
    assert [row["inputs"] for row in stages] == \
        [["input"]] + [[row["name"]] for row in stages[:-1]]
    assert dataflow.count("<line") == len(stages) - 1 and "<path d='M0" in dataflow


def test_dataflow_diagram_of_a_fork_and_a_join():
    """Forks and joins are drawn by depth from the input: a box per stage, one arrow per
    stream (a skip over several depths is a curve), boxes apart, the join below both
    branches."""
    import re
    from graph.html import dataflow_svg
    layers = [{"name": "conv0", "kind": "mvau", "inputs": ["input"], "cycles": 10},
              {"name": "conv0.fork", "kind": "duplicate", "inputs": ["conv0"], "cycles": 10},
              {"name": "res0", "kind": "mvau", "inputs": ["conv0.fork"], "cycles": 40},
              {"name": "res1", "kind": "mvau", "inputs": ["res0"], "cycles": 30},
              {"name": "add.i0.fifo", "kind": "fifo", "inputs": ["conv0.fork"],
               "shape": "depth 96", "cycles": 10},
              {"name": "add", "kind": "add", "inputs": ["add.i0.fifo", "res1"], "cycles": 10}]
    svg = dataflow_svg(layers, "res0")
    boxes = re.findall(r"<rect x='([\d.]+)' y='([\d.]+)' width", svg)
    assert len(boxes) == len(set(boxes)) == len(layers)
    where = {row["name"]: tuple(map(float, box)) for row, box in zip(layers, boxes)}
    assert where["res0"][1] == where["add.i0.fifo"][1] > where["conv0.fork"][1]
    assert where["add"][1] > where["res1"][1] > where["res0"][1]
    curves = re.findall(r"<path d='M([\d.]+),([\d.]+) C", svg)
    assert svg.count("<line") == 5 and len(curves) == 1         # add.i0.fifo -> add skips
    assert "depth 96" in svg and svg.count("(bottleneck)") == 1
