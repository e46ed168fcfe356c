# amaranth: UnusedElaboratable=no
"""The compiled stream harness (sim.harness): the cocotb testbench's checks and cycles, at the
speed of the design.

The design is the one the cocotb tests use (AddOne, 12 lanes x signed 7 bits: 84-bit beats in
88-bit tdata, three 32-bit words, so Verilator's wide-port code is exercised), exported once
and built once (cached)."""

import json

import numpy as np
import pytest

from hwgen.export.verilog import kernel_verilog
from sim.amaranth_sim import run_stream_sim
from sim.harness import (CompilerNotFoundError, HarnessError, HarnessFailure, build_harness,
                         memories_to_files,
                         find_cxx, run_compiled_stream_test, run_harness, stream_interfaces)
from sim.streams import pack_beats, pack_words, run_stream_test, words_to_ints
from sim_test_kernels import AddOne, ChangesPayload, DropsValid

FRAME = 3


def add_one():
    return AddOne(width=7, lanes=12, is_signed=True)


def vectors(n, seed=0):
    x = np.random.default_rng(seed).integers(-64, 64, size=(n, 12))
    return x, add_one().golden(x)


@pytest.fixture(scope="module")
def built():
    return build_harness(kernel_verilog(add_one(), out_beats_per_frame=FRAME))


def words(beats):
    return pack_words(beats, 7, 3)


def run(built, x, expected_words, *, frame=FRAME, max_cycles=2000, **kw):
    return run_harness(built, {"s_axis": words(x)}, {"m_axis": expected_words},
                       frame_lengths={"m_axis": frame}, max_cycles=max_cycles, **kw)


def test_interfaces_and_word_layout(built):
    assert built.inputs == ("s_axis",) and built.outputs == ("m_axis",)
    assert built.widths == {"s_axis": 88, "m_axis": 88} and built.words("m_axis") == 3
    x, _ = vectors(5, seed=9)
    assert words_to_ints(words(x)) == pack_beats(x, 7)


def test_backpressure_passes_and_reports_every_handshake(built):
    x, y = vectors(300, seed=1)
    report = run(built, x, words(y), seed=1, valid_prob=0.5, ready_prob=0.4, max_cycles=20000)
    assert report["passed"] and report["error"] is None
    assert report["in_beats"] == report["out_beats"] == 300
    assert report["cycles"] == report["out_cycles"][-1] + 1 > 600     # stalls happened
    assert np.all(report["out_cycles"] > report["in_cycles"])
    assert np.all(np.diff(report["out_cycles"]) > 0)
    again = run(built, x, words(y), seed=1, valid_prob=0.5, ready_prob=0.4, max_cycles=20000)
    np.testing.assert_array_equal(again["out_cycles"], report["out_cycles"])  # seeded
    other = run(built, x, words(y), seed=2, valid_prob=0.5, ready_prob=0.4, max_cycles=20000)
    assert not np.array_equal(other["out_cycles"], report["out_cycles"])


def test_same_cycles_as_cocotb_and_amaranth_without_stalls(built):
    x, y = vectors(10)
    compiled = run(built, x, words(y))
    cocotb = run_stream_test(add_one(), x, y, valid_prob=1.0, ready_prob=1.0,
                             out_beats_per_frame=FRAME)
    _, amaranth = run_stream_sim(add_one(), x, expected=y, valid_prob=1.0, ready_prob=1.0)
    for key in ("cycles", "latency", "in_cycles", "out_cycles"):
        assert np.asarray(compiled[key]).tolist() == cocotb[key] == amaranth[key], key
    assert compiled["out_cycles"].tolist() == list(range(2, 12))


def test_wrong_beat(built):
    x, y = vectors(12, seed=5)
    bad = words(y)
    bad[7, 1] ^= 1 << 4                                   # one bit of beat 7 (frame 2, beat 1)
    want, seen = words_to_ints(bad[7])[0], words_to_ints(words(y[7:8]))[0]
    pattern = (rf"^output beat 7 \(frame 2, beat 1 of the frame, cycle \d+\): "
               rf"expected {want:#x}, seen {seen:#x}$")
    with pytest.raises(HarnessFailure, match=pattern) as info:
        run(built, x, bad, seed=3, valid_prob=0.7, ready_prob=0.7)
    report = info.value.report
    assert not report["passed"] and report["out_beats"] == 7   # stopped at the mismatch
    assert report["mismatch"]["stream"] == "m_axis" and report["mismatch"]["beat"] == 7
    assert int(report["mismatch"]["seen"], 16) == seen


def test_missing_beat(built):
    """The design gives one beat fewer than the expected file holds."""
    x, y = vectors(6)
    expected = words(np.concatenate([y, y[:1]]))
    with pytest.raises(HarnessFailure, match=r"^timeout after 300 cycles: received 6 of 7 "
                                             r"output beats, 6 of 6 input beats accepted$"):
        run(built, x, expected, max_cycles=300)


def test_missing_beat_in_the_middle(built):
    x, y = vectors(6, seed=4)
    expected = words(np.delete(y, 2, axis=0))
    with pytest.raises(HarnessFailure, match=r"^output beat 2 \(frame 0, beat 2 of the frame"):
        run(built, x, expected)


def test_extra_beat(built):
    """The design gives one beat more than the expected file holds."""
    x, y = vectors(6)
    with pytest.raises(HarnessFailure, match=r"^unexpected output beat 5 at cycle \d+: "
                                             r"0x[0-9a-f]+ \(expected only 5 beats\)$"):
        run(built, x, words(y[:5]))


def test_wrong_tlast(built):
    # the shell ends frames every 3 beats; the harness is told frames are 2 beats long
    x, y = vectors(6)
    with pytest.raises(HarnessFailure, match=r"^output beat 1 \(frame 0, beat 1 of the frame, "
                                             r"cycle \d+\): m_axis_tlast=0, expected 1 "
                                             r"\(frame length 2 beats\)$"):
        run(built, x, words(y), frame=2)


def test_inputs_are_all_taken_before_the_drain(built):
    """The drain starts once every input beat is in: a seventh input, offered rarely, still
    gives a seventh output, beyond the six expected."""
    x, y = vectors(6)
    with pytest.raises(HarnessFailure, match=r"^unexpected output beat 6 at cycle \d+"):
        run(built, np.concatenate([x, x[:1]]), words(y), drain_cycles=2, seed=1,
            valid_prob=0.05)


@pytest.mark.parametrize("kernel,message", [
    (DropsValid, r"^output beat \d+: m_axis_tvalid withdrawn at cycle \d+ before the beat "
                 r"offered at cycle \d+ was accepted$"),
    (ChangesPayload, r"^output beat \d+: m_axis_tdata changed from 0x[0-9a-f]+ to 0x[0-9a-f]+ "
                     r"at cycle \d+ while m_axis_tvalid was high and m_axis_tready low "
                     r"\(offered at cycle \d+\)$"),
])
def test_stream_rules_are_checked(kernel, message):
    k = kernel(width=7, lanes=12, is_signed=True)
    x, y = vectors(20, seed=8)
    with pytest.raises(HarnessFailure, match=message):
        run_compiled_stream_test(k, x, y, seed=2, valid_prob=0.9, ready_prob=0.3)
    # without stalls neither rule is broken
    report = run_compiled_stream_test(k, x, y, valid_prob=1.0, ready_prob=1.0)
    assert report["out_beats"] == 20


def test_written_verilog_and_errors(tmp_path):
    x, y = vectors(8, seed=2)
    path = tmp_path / "top.v"
    path.write_text(kernel_verilog(add_one(), out_beats_per_frame=FRAME))
    report = run_compiled_stream_test(add_one(), x, y, verilog=path, seed=2,
                                      out_beats_per_frame=FRAME, test_dir=tmp_path / "run")
    assert report["out_beats"] == 8 and report["test_dir"] == str(tmp_path / "run")
    assert (tmp_path / "run" / "m_axis.cycles").stat().st_size == 8 * 8
    written = json.loads((tmp_path / "run" / "report.json").read_text())
    assert written["out_cycles"] == report["out_cycles"].tolist()
    assert {"cycles", "in_beats", "out_beats", "latency", "in_cycles", "seed", "valid_prob",
            "ready_prob", "expected_out_beats", "passed", "error"} <= set(written)
    with pytest.raises(HarnessError, match=r"the Verilog has no module 'nope'"):
        stream_interfaces(path.read_text(), "nope")
    with pytest.raises(ValueError, match=r"platform= only applies .* not with verilog="):
        run_compiled_stream_test(add_one(), x, y, verilog=path, platform=object())


def test_build_is_cached(built):
    again = build_harness(kernel_verilog(add_one(), out_beats_per_frame=FRAME))
    assert again.build_seconds is None and again.executable == built.executable


def test_harness_timeout(built):
    # one expected beat more than the design gives: it would wait for 10**9 cycles
    x, y = vectors(6)
    with pytest.raises(HarnessError, match=r"ran for more than 1 s"):
        run(built, x, words(np.concatenate([y, y[:1]])), max_cycles=10**9, timeout=1)


def test_missing_compiler_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(CompilerNotFoundError, match=r"no C\+\+ compiler found .*apt-get install "
                                                    r"g\+\+.*hwgen verify --harness cocotb"):
        find_cxx()
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(CompilerNotFoundError, match=r"\(no-such-compiler not on PATH\)"):
        build_harness(kernel_verilog(add_one(), out_beats_per_frame=FRAME))


def test_memory_initialisers_become_files(tmp_path):
    text = ("module m(clk);\n  reg [3:0] mem [3:0];\n  initial begin\n    mem[0] = 4'ha;\n"
            "    mem[1] = 4'h0;\n    mem[3] = 4'h3;\n  end\n  reg [1:0] \\r$1  [1:0];\n"
            "  initial begin\n    \\r$1 [0] = 2'h1;\n  end\n  initial begin\n    a[0] = 1'h0;\n"
            "    b[0] = 1'h0;\n  end\nendmodule")
    out = memories_to_files(text, tmp_path)
    assert f'  initial $readmemh("{tmp_path / "memory0.hex"}", mem);' in out
    assert f'  initial $readmemh("{tmp_path / "memory1.hex"}", \\r$1 );' in out
    assert (tmp_path / "memory0.hex").read_text() == "@0 a\n0\n@3 3\n"
    assert (tmp_path / "memory1.hex").read_text() == "@0 1\n"
    # a block that sets two memories is left as it is
    assert "    a[0] = 1'h0;\n    b[0] = 1'h0;\n" in out and "mem[0] =" not in out
