# amaranth: UnusedElaboratable=no
import re

import pytest

from hwgen.cli import main


def test_verilog_popcount_writes_an_axi_stream_top(tmp_path, capsys):
    out = tmp_path / "popcount.v"
    assert main(["verilog", "popcount", "--n", "40", "--pipeline-every", "1", "-o", str(out)]) == 0
    text = out.read_text()
    header = re.search(r"module hwgen_popcount\((.*?)\);", text).group(1)
    ports = {p.strip() for p in header.split(",")}
    assert ports == {"ap_clk", "ap_rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
                     "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"}
    assert re.search(r"input \[39:0\] s_axis_tdata;", text)
    assert re.search(r"output \[7:0\] m_axis_tdata;", text)      # 6-bit count, padded to a byte
    assert "latency" in capsys.readouterr().err
    assert "LUT6_2" not in text


def test_verilog_popcount_xilinx_instantiates_primitives(tmp_path):
    out = tmp_path / "popcount.v"
    assert main(["verilog", "popcount", "--n", "64", "--target", "xilinx", "--name", "pc",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert "module pc(" in text
    assert re.search(r"\bLUT6_2 #", text) and re.search(r"\bCARRY8 #", text)


@pytest.mark.parametrize("argv, pattern", [
    (["verilog", "popcount", "--n", "0", "-o", "x.v"], r"argument --n: must be at least 1, not 0"),
    (["verilog", "popcount", "--n", "8", "--pipeline-every", "-1", "-o", "x.v"],
     r"argument --pipeline-every: must be 0 or more, not -1"),
    (["verilog", "popcount", "--n", "8", "--target", "ecp5", "-o", "x.v"],
     r"argument --target: invalid choice: 'ecp5'"),
    (["verilog", "softmax", "-o", "x.v"], r"invalid choice: 'softmax'"),
])
def test_bad_arguments(argv, pattern, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert re.search(pattern, capsys.readouterr().err)


def test_verilog_threshold(tmp_path, capsys):
    import numpy as np
    thresholds = tmp_path / "t.npy"
    np.save(thresholds, np.sort(np.random.default_rng(0).integers(-100, 100, size=(8, 15)), axis=1))
    out = tmp_path / "thr.v"
    assert main(["verilog", "threshold", "--channels", "8", "--pe", "2", "--input-shape", "s8",
                 "--thresholds", str(thresholds), "--impl", "binary", "--runtime-writable",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert "module hwgen_threshold(" in text and "cfg_addr" in text
    assert re.search(r"input \[15:0\] s_axis_tdata;", text)
    assert "BinarySearchThreshold" in capsys.readouterr().err


def test_threshold_errors_are_reported(tmp_path, capsys):
    import numpy as np
    thresholds = tmp_path / "t.npy"
    np.save(thresholds, np.array([[3, 2, 1]]))
    assert main(["verilog", "threshold", "--channels", "4", "--input-shape", "u8",
                 "--thresholds", str(thresholds), "-o", str(tmp_path / "x.v")]) == 2
    assert re.search(r"hwgen: error: thresholds must be non-decreasing along each channel; "
                     r"thresholds\[0\] falls at index 1: 3 then 2", capsys.readouterr().err)
    assert main(["verilog", "threshold", "--channels", "4", "--input-shape", "u8",
                 "--thresholds", str(tmp_path / "missing.npy"), "-o", str(tmp_path / "x.v")]) == 2
    assert "--thresholds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verilog", "threshold", "--channels", "4", "--input-shape", "int8",
              "--thresholds", str(thresholds), "-o", "x.v"])
    assert "expected a shape such as s8 (signed) or u4 (unsigned), not 'int8'" in capsys.readouterr().err


def test_verilog_mvau(tmp_path, capsys):
    import numpy as np
    weights = tmp_path / "w.npy"
    np.save(weights, np.random.default_rng(0).choice([-1, 1], size=(8, 12)))
    thresholds = tmp_path / "t.npy"
    np.save(thresholds, np.zeros((8, 1), dtype=int))
    out = tmp_path / "mvau.v"
    assert main(["verilog", "mvau", "--weights", str(weights), "--pe", "4", "--simd", "6",
                 "--input-shape", "bipolar", "--weight-shape", "bipolar", "--thresholds",
                 str(thresholds), "-o", str(out)]) == 0
    text = out.read_text()
    assert "module hwgen_mvau(" in text
    assert re.search(r"input \[7:0\] s_axis_tdata;", text)      # 6 bits, padded to a byte
    assert re.search(r"output \[7:0\] m_axis_tdata;", text)     # 4 one-bit outputs
    assert "MVAU" in capsys.readouterr().err


def test_mvau_errors_are_reported(tmp_path, capsys):
    import numpy as np
    weights = tmp_path / "w.npy"
    np.save(weights, np.zeros((6, 4), dtype=int))
    assert main(["verilog", "mvau", "--weights", str(weights), "--pe", "4", "--input-shape",
                 "u2", "--weight-shape", "s2", "-o", str(tmp_path / "x.v")]) == 2
    assert re.search(r"hwgen: error: pe=4 must divide mh=6; valid pe: \[1, 2, 3, 6\]",
                     capsys.readouterr().err)
    np.save(weights, np.zeros(4, dtype=int))
    assert main(["verilog", "mvau", "--weights", str(weights), "--input-shape", "u2",
                 "--weight-shape", "s2", "-o", str(tmp_path / "x.v")]) == 2
    assert "expected a 2-D (MH, MW) array, not shape (4,)" in capsys.readouterr().err


@pytest.mark.parametrize("argv, tdata_in, tdata_out", [
    (["fifo", "--elem-shape", "u4", "--lanes", "3", "--depth", "8"], 16, 16),
    (["width", "--elem-shape", "s3", "--in-lanes", "4", "--out-lanes", "6",
      "--elems-per-frame", "12"], 16, 24),
    (["labelselect", "--channels", "10", "--pe", "2", "--input-shape", "s9", "--k", "2"], 24, 8),
])
def test_verilog_stream_plumbing(argv, tdata_in, tdata_out, tmp_path):
    out = tmp_path / "k.v"
    assert main(["verilog", *argv, "-o", str(out)]) == 0
    text = out.read_text()
    assert f"module hwgen_{argv[0]}(" in text
    assert re.search(rf"input \[{tdata_in - 1}:0\] s_axis_tdata;", text)
    assert re.search(rf"output \[{tdata_out - 1}:0\] m_axis_tdata;", text)


def test_verilog_width_error(tmp_path, capsys):
    assert main(["verilog", "width", "--elem-shape", "u2", "--in-lanes", "4", "--out-lanes", "6",
                 "--elems-per-frame", "8", "-o", str(tmp_path / "x.v")]) == 2
    assert re.search(r"hwgen: error: elems_per_frame=8 must be a multiple of in_lanes=4 and "
                     r"out_lanes=6, i.e. of 12", capsys.readouterr().err)
