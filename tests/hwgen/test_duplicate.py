# amaranth: UnusedElaboratable=no
"""Duplicate (fan-out) in both tiers: golden model against ONNX, parameters, exact timing,
independent random back-pressure per branch (Amaranth's simulator with hypothesis, and cocotb
on Verilator behind the multi-stream AXI4-Stream shell), and a stalled branch that holds the
others for one beat only."""

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, signed, unsigned
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st
from onnx import helper

from hwgen.kernel import StreamFormat, port_format
from hwgen.plumbing.duplicate import Duplicate, DuplicatePlan
from hwgen.resources import Resources
from multistream_checks import (assert_compiled_harness_agrees, assert_estimate_matches_yosys,
                                assert_exact_timing,
                                draw_channel_fold, draw_shape, hwgen_verilog, onnx_reference,
                                random_map, run_multistream_test)
from sim import golden
from sim.multistream import run_multistream_sim


def vectors(fork, frames, seed):
    """Input beats and the expected beats of every branch for ``frames`` frames."""
    rng = np.random.default_rng(seed)
    x = random_map(fork.elem_shape, frames * fork.vectors, fork.channels, rng)
    beats = x.reshape(-1, fork.pe)
    copies = golden.duplicate(beats, fork.branches)
    return {"i": beats}, dict(zip(fork.outputs, copies))


# --- golden model and parameters ------------------------------------------------------------

def test_golden_duplicate_matches_onnx_identity():
    x = np.random.default_rng(0).integers(-8, 8, size=(1, 3, 3, 4))
    nodes = [helper.make_node("Identity", ["x"], [f"y{k}"]) for k in range(3)]
    reference = onnx_reference(nodes, {"x": x}, ["y0", "y1", "y2"])
    copies = golden.duplicate(x, 3)
    assert len(copies) == 3
    for copy, expected in zip(copies, reference):
        np.testing.assert_array_equal(copy, expected)
    assert copies[0] is not copies[1]
    with pytest.raises(ValueError, match=r"branches must be an integer >= 2, not 1"):
        golden.duplicate(x, 1)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"pe": 3}, ValueError, r"pe=3 must divide channels=8; valid pe: \[1, 2, 4, 8\]"),
    ({"channels": 0}, ValueError, r"channels must be an integer >= 1, not 0"),
    ({"branches": 1}, ValueError, r"branches must be an integer >= 2, not 1"),
    ({"branches": "2"}, TypeError, r"branches must be an integer >= 2, not '2'"),
    ({"vectors": 0}, ValueError, r"vectors must be an integer >= 1, not 0"),
    ({"elem_shape": "s4"}, TypeError, r"elem_shape must be an Amaranth shape such as signed\(8\), not 's4'"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(channels=8, pe=2, elem_shape=signed(4), branches=2)
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        DuplicatePlan(**params)


def test_plan_properties_and_ports():
    plan = DuplicatePlan(channels=12, pe=4, elem_shape=unsigned(3), branches=3, vectors=5)
    fmt = StreamFormat(unsigned(3), 4)
    assert plan.inputs == {"i": fmt}
    assert plan.outputs == {"o0": fmt, "o1": fmt, "o2": fmt}
    assert (plan.fold, plan.beats, plan.latency, plan.cycles_per_frame) == (3, 15, 0, 15)
    assert [plan.beats_per_frame(port) for port in ("i", "o0", "o2")] == [15, 15, 15]
    with pytest.raises(ValueError, match=r"DuplicatePlan has no stream port 'o3'"):
        plan.beats_per_frame("o3")
    assert plan.schedule({"i": [0, 0, 3, 4]}) == {port: [0, 1, 3, 4] for port in plan.outputs}
    estimate = plan.estimate()
    assert isinstance(estimate, Resources) and estimate.ffs == 3    # the taken bits
    assert estimate.bram18 == estimate.lutram == estimate.dsp == 0
    fork = plan.build()
    assert {port: port_format(fork, port) for port in ("i", "o0", "o1", "o2")} == \
        {**plan.inputs, **plan.outputs}


def test_estimate_grows_with_branches():
    costs = [DuplicatePlan(channels=4, elem_shape=signed(8), branches=n).estimate()
             for n in (2, 4, 8)]
    assert [c.ffs for c in costs] == [2, 4, 8]
    assert costs[0].luts < costs[1].luts < costs[2].luts
    # no payload register: the width of the beats costs nothing
    wide = DuplicatePlan(channels=64, pe=64, elem_shape=signed(16), branches=2).estimate()
    assert wide == costs[0]


# --- Amaranth tier ----------------------------------------------------------------------------

@st.composite
def forks(draw):
    channels, pe = draw_channel_fold(draw)
    return Duplicate(channels=channels, pe=pe, elem_shape=draw_shape(draw),
                     branches=draw(st.integers(2, 4)), vectors=draw(st.integers(1, 3)))


@settings(max_examples=30, deadline=None)
@given(fork=forks(), frames=st.integers(1, 4), seed=st.integers(0, 2**16),
       valid_prob=st.sampled_from([0.3, 0.7, 1.0]), data=st.data())
def test_amaranth_random_backpressure_per_branch(fork, frames, seed, valid_prob, data):
    ready_prob = {port: data.draw(st.sampled_from([0.1, 0.5, 0.9, 1.0]), label=port)
                  for port in fork.outputs}
    in_beats, expected = vectors(fork, frames, seed)
    run_multistream_sim(fork, in_beats, expected=expected, seed=seed, valid_prob=valid_prob,
                        ready_prob=ready_prob)


@pytest.mark.parametrize("channels, pe, branches, vectors_", [
    (8, 2, 2, 3), (6, 6, 3, 4), (5, 1, 4, 2)])
def test_amaranth_exact_timing(channels, pe, branches, vectors_):
    fork = Duplicate(channels=channels, pe=pe, elem_shape=signed(5), branches=branches,
                     vectors=vectors_)
    in_beats, expected = vectors(fork, 20, seed=channels)
    _, report = run_multistream_sim(fork, in_beats, expected=expected, valid_prob=1.0,
                                    ready_prob=1.0)
    assert report["latency"] == fork.latency == 0
    assert_exact_timing(report, fork, {"i": len(in_beats["i"])})


def test_a_stalled_branch_holds_the_others_for_one_beat_only():
    """Branch o1 is not ready for cycles 1..10: o0 takes beat 0 in cycle 1 and then waits
    (no beat lost, none repeated); in cycle 11 o1 takes beat 0, the input beat is consumed,
    and from then on both take one beat per cycle."""
    fork = Duplicate(channels=4, pe=1, elem_shape=unsigned(8), branches=2)
    beats = list(range(100, 106))
    seen = {"i": [], "o0": [], "o1": []}

    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.submodules.fork = fork
    sim = Simulator(m)
    sim.add_clock(1e-8, domain="sync")

    async def testbench(ctx):
        sent = 0
        for cycle in range(20):
            if cycle >= 1 and sent < len(beats):
                ctx.set(fork.i.valid, 1)
                ctx.set(fork.i.payload, [beats[sent]])
            ctx.set(fork.o0.ready, cycle >= 1)
            ctx.set(fork.o1.ready, cycle >= 11)
            _, _, iv, ir, v0, r0, p0, v1, r1, p1 = await ctx.tick().sample(
                fork.i.valid, fork.i.ready, fork.o0.valid, fork.o0.ready, fork.o0.payload,
                fork.o1.valid, fork.o1.ready, fork.o1.payload)
            if iv and ir:
                seen["i"].append(cycle)
                sent += 1
                ctx.set(fork.i.valid, 0)
            for port, valid, ready, payload in (("o0", v0, r0, p0), ("o1", v1, r1, p1)):
                if valid and ready:
                    seen[port].append((cycle, payload[0]))

    sim.add_testbench(testbench)
    sim.run()
    assert seen["o0"] == [(1, 100)] + [(11 + n, 100 + n) for n in range(1, 6)]
    assert seen["o1"] == [(11 + n, 100 + n) for n in range(6)]
    assert seen["i"] == list(range(11, 17))


# --- cocotb on Verilator, behind the multi-stream AXI4-Stream shell ---------------------------

def test_cocotb_backpressure_per_branch_and_exact_timing():
    fork = Duplicate(channels=16, pe=4, elem_shape=signed(6), branches=3, vectors=9)
    in_beats, expected = vectors(fork, 12, seed=5)
    run_multistream_test(fork, in_beats, expected, seed=5, valid_prob=0.8,
                         ready_prob={"o0": 0.9, "o1": 0.3, "o2": 0.6})
    report = run_multistream_test(fork, in_beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_timing(report, fork, {"i": len(in_beats["i"])})
    assert_compiled_harness_agrees(fork, in_beats, expected, report, seed=5, valid_prob=0.8,
                                   ready_prob={"o0": 0.9, "o1": 0.3, "o2": 0.6})


def test_cocotb_testbench_names_a_wrong_beat():
    fork = Duplicate(channels=16, pe=4, elem_shape=signed(6), branches=3, vectors=9)
    in_beats, expected = vectors(fork, 2, seed=5)
    expected["o1"] = expected["o1"].copy()
    expected["o1"][3, 0] ^= 1
    with pytest.raises(AssertionError, match=r"m_axis_1 beat 3 \(cycle \d+\): expected 0x"):
        run_multistream_test(fork, in_beats, expected, seed=5, valid_prob=0.8, ready_prob=0.8)


def test_hwgen_verilog_duplicate(tmp_path, capsys):
    text = hwgen_verilog(tmp_path, "duplicate", "--channels", "8", "--pe", "2", "--elem-shape",
                         "s4", "--branches", "3")
    for k in range(3):
        for signal in ("tdata", "tvalid", "tlast"):
            assert f"output m_axis_{k}_{signal}" in text or \
                f"output [7:0] m_axis_{k}_{signal}" in text
        assert f"input m_axis_{k}_tready;" in text
    assert "input [7:0] s_axis_tdata;" in text and "output s_axis_tready;" in text
    assert "latency 0 cycles" in capsys.readouterr().err


# --- slow tier ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_slow_ten_thousand_beats_both_tiers():
    fork = Duplicate(channels=32, pe=4, elem_shape=signed(8), branches=3, vectors=16)
    in_beats, expected = vectors(fork, 80, seed=11)             # 10,240 beats per port
    ready = {"o0": 0.95, "o1": 0.4, "o2": 0.7}
    run_multistream_sim(fork, in_beats, expected=expected, seed=11, valid_prob=0.6,
                        ready_prob=ready)
    run_multistream_test(fork, in_beats, expected, seed=12, valid_prob=0.6, ready_prob=ready)


@pytest.mark.slow
@pytest.mark.parametrize("branches", [2, 3, 5, 8])
def test_slow_estimate_against_yosys(branches):
    fork = Duplicate(channels=8, pe=2, elem_shape=signed(4), branches=branches)
    assert_estimate_matches_yosys(fork, luts_rel=0, luts_abs=2)


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(fork=forks(), seed=st.integers(0, 2**16))
def test_slow_cocotb_random_configs(fork, seed):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    in_beats, expected = vectors(fork, 2, seed)
    ready = {port: (0.3, 0.9, 0.6, 0.5)[k] for k, port in enumerate(fork.outputs)}
    run_multistream_test(fork, in_beats, expected, seed=seed, valid_prob=0.8, ready_prob=ready)
