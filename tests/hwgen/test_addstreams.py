# amaranth: UnusedElaboratable=no
"""AddStreams in both tiers: golden model against ONNX Add (of Mul by 2**shift), exact output
shapes, parameters, exact timing, and independent random back-pressure on both inputs and the
output (Amaranth's simulator with hypothesis, cocotb on Verilator behind the multi-stream
AXI4-Stream shell)."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st
from onnx import helper

from hwgen.kernel import StreamFormat, port_format
from hwgen.kernels.addstreams import AddStreams, AddStreamsPlan
from hwgen.resources import Resources
from hwgen.shapes import shape_range
from multistream_checks import (assert_compiled_harness_agrees, assert_estimate_matches_yosys,
                                assert_exact_timing,
                                draw_channel_fold, draw_shape, hwgen_verilog, onnx_reference,
                                random_map, run_multistream_test)
from sim import golden
from sim.multistream import run_multistream_sim


def vectors(add, frames, seed):
    """Input beats of both streams and the expected sums for ``frames`` frames."""
    rng = np.random.default_rng(seed)
    a, b = (random_map(shape, frames * add.vectors, add.channels, rng)
            for shape in (add.input_shape0, add.input_shape1))
    b[-1] = shape_range(add.input_shape1)[0]        # the largest a with the smallest b
    y = golden.add_streams(a, b, add.shift0, add.shift1)
    return ({"i0": a.reshape(-1, add.pe), "i1": b.reshape(-1, add.pe)},
            {"o": y.reshape(-1, add.pe)})


# --- golden model and parameters ------------------------------------------------------------

@pytest.mark.parametrize("shift0, shift1", [(0, 0), (3, 1), (0, 7)])
def test_golden_add_streams_matches_onnx(shift0, shift1):
    rng = np.random.default_rng(shift0 + shift1)
    a = rng.integers(-128, 128, size=(2, 3, 3, 8))
    b = rng.integers(0, 16, size=(2, 3, 3, 8))
    nodes = [helper.make_node("Mul", ["a", "scale0"], ["a_scaled"]),
             helper.make_node("Mul", ["b", "scale1"], ["b_scaled"]),
             helper.make_node("Add", ["a_scaled", "b_scaled"], ["y"])]
    (reference,) = onnx_reference(nodes, {"a": a, "b": b}, ["y"],
                                  [("scale0", np.array(2 ** shift0)),
                                   ("scale1", np.array(2 ** shift1))])
    np.testing.assert_array_equal(golden.add_streams(a, b, shift0, shift1), reference)


def test_golden_add_streams_exact_and_errors():
    big = np.array([2 ** 40], dtype=np.int64)
    assert golden.add_streams(big, big, 30, 0)[0] == 2 ** 70 + 2 ** 40
    with pytest.raises(ValueError, match=r"a \(2,\) and b \(3,\) must have the same shape"):
        golden.add_streams([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"shift1 must be an integer >= 0, not -1"):
        golden.add_streams([1], [1], 0, -1)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"pe": 3}, ValueError, r"pe=3 must divide channels=8; valid pe: \[1, 2, 4, 8\]"),
    ({"shift0": -1}, ValueError, r"shift0 must be an integer in 0\.\.32, not -1"),
    ({"shift1": 33}, ValueError, r"shift1 must be an integer in 0\.\.32, not 33"),
    ({"shift1": 1.0}, TypeError, r"shift1 must be an integer in 0\.\.32, not 1\.0"),
    ({"input_shape0": None}, TypeError, r"input_shape0 must be an Amaranth shape such as signed\(8\), not None"),
    ({"input_shape1": signed(65)}, ValueError, r"input_shape1 must be 1 to 64 bits wide, not 65"),
    ({"vectors": 0}, ValueError, r"vectors must be an integer >= 1, not 0"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(channels=8, pe=2, input_shape0=signed(4), input_shape1=unsigned(3))
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        AddStreamsPlan(**params)


@pytest.mark.parametrize("shape0, shift0, shape1, shift1, output_range, output_shape", [
    (signed(8), 0, unsigned(4), 2, (-128, 187), signed(9)),
    (unsigned(4), 0, unsigned(4), 0, (0, 30), unsigned(5)),
    (unsigned(1), 3, unsigned(1), 0, (0, 9), unsigned(4)),
    (signed(2), 1, signed(2), 1, (-8, 4), signed(4)),
    (signed(8), 0, signed(8), 0, (-256, 254), signed(9)),
])
def test_output_shape_is_exact(shape0, shift0, shape1, shift1, output_range, output_shape):
    plan = AddStreamsPlan(channels=4, input_shape0=shape0, input_shape1=shape1, shift0=shift0,
                          shift1=shift1)
    assert plan.output_range == output_range
    assert plan.output_shape == output_shape


def test_plan_properties_and_ports():
    plan = AddStreamsPlan(channels=12, pe=3, input_shape0=signed(5), input_shape1=unsigned(2),
                          shift1=1, vectors=4)
    assert plan.inputs == {"i0": StreamFormat(signed(5), 3), "i1": StreamFormat(unsigned(2), 3)}
    assert plan.outputs == {"o": StreamFormat(signed(6), 3)}
    assert (plan.latency, plan.cycles_per_frame) == (1, 16)
    assert [plan.beats_per_frame(port) for port in ("i0", "i1", "o")] == [16, 16, 16]
    # a beat pair leaves the cycle after its later beat arrives
    assert plan.schedule({"i0": [0, 1, 2, 3], "i1": [5, 5, 6, 9]}) == {"o": [6, 7, 8, 10]}
    with pytest.raises(ValueError):
        plan.schedule({"i0": [0, 1], "i1": [0]})
    estimate = plan.estimate()
    assert isinstance(estimate, Resources) and estimate.ffs == 3 * 6 + 1
    assert estimate.dsp == estimate.bram18 == 0
    add = plan.build()
    assert {port: port_format(add, port) for port in ("i0", "i1", "o")} == \
        {**plan.inputs, **plan.outputs}


def test_shifts_below_both_operands_cost_no_adder_and_no_register():
    """Bits below min(shift0, shift1) are constant zero; between the shifts they are one
    operand's bits: only where both operands have bits is there an adder."""
    plain = AddStreamsPlan(channels=4, input_shape0=unsigned(4), input_shape1=unsigned(4))
    shifted = AddStreamsPlan(channels=4, input_shape0=unsigned(4), input_shape1=unsigned(4),
                             shift0=6, shift1=2)
    assert plain.estimate().luts == 4 + 2
    assert shifted.estimate().luts == 2       # no bit has both operands: control only
    assert shifted.estimate().ffs == shifted.output_shape.width - 2 + 1


# --- Amaranth tier ----------------------------------------------------------------------------

@st.composite
def adders(draw):
    channels, pe = draw_channel_fold(draw)
    return AddStreams(channels=channels, pe=pe, input_shape0=draw_shape(draw),
                      input_shape1=draw_shape(draw),
                      shift0=draw(st.integers(0, 4)), shift1=draw(st.integers(0, 4)),
                      vectors=draw(st.integers(1, 3)))


PROBABILITIES = st.sampled_from([0.2, 0.6, 1.0])


@settings(max_examples=30, deadline=None)
@given(add=adders(), frames=st.integers(1, 4), seed=st.integers(0, 2**16),
       valid0=PROBABILITIES, valid1=PROBABILITIES, ready=PROBABILITIES)
def test_amaranth_random_backpressure_per_port(add, frames, seed, valid0, valid1, ready):
    in_beats, expected = vectors(add, frames, seed)
    run_multistream_sim(add, in_beats, expected=expected, seed=seed,
                        valid_prob={"i0": valid0, "i1": valid1}, ready_prob=ready)


@pytest.mark.parametrize("channels, pe, shape0, shape1, shift0, shift1", [
    (8, 2, signed(8), unsigned(4), 0, 2), (6, 6, unsigned(3), unsigned(3), 1, 1),
    (5, 1, signed(16), signed(3), 0, 9)])
def test_amaranth_exact_timing(channels, pe, shape0, shape1, shift0, shift1):
    add = AddStreams(channels=channels, pe=pe, input_shape0=shape0, input_shape1=shape1,
                     shift0=shift0, shift1=shift1, vectors=3)
    in_beats, expected = vectors(add, 20, seed=channels)
    _, report = run_multistream_sim(add, in_beats, expected=expected, valid_prob=1.0,
                                    ready_prob=1.0)
    assert report["latency"] == add.latency
    assert_exact_timing(report, add, {port: len(b) for port, b in in_beats.items()})


def test_amaranth_one_input_waits_for_the_other():
    """i1 offers a beat only once in ten cycles: i0 is taken at i1's pace, beat for beat."""
    add = AddStreams(channels=4, pe=2, input_shape0=unsigned(4), input_shape1=unsigned(4))
    in_beats, expected = vectors(add, 10, seed=3)
    _, report = run_multistream_sim(add, in_beats, expected=expected, seed=4,
                                    valid_prob={"i0": 1.0, "i1": 0.1}, ready_prob=1.0)
    assert report["in_cycles"]["i0"] == report["in_cycles"]["i1"]
    assert report["out_cycles"]["o"] == [c + 1 for c in report["in_cycles"]["i0"]]


# --- cocotb on Verilator, behind the multi-stream AXI4-Stream shell ---------------------------

def test_cocotb_backpressure_per_port_and_exact_timing():
    add = AddStreams(channels=16, pe=4, input_shape0=signed(8), input_shape1=unsigned(5),
                     shift1=3, vectors=9)
    in_beats, expected = vectors(add, 12, seed=6)
    run_multistream_test(add, in_beats, expected, seed=6, valid_prob={"i0": 0.9, "i1": 0.4},
                         ready_prob=0.6)
    report = run_multistream_test(add, in_beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_timing(report, add, {port: len(b) for port, b in in_beats.items()})
    assert_compiled_harness_agrees(add, in_beats, expected, report, seed=6,
                                   valid_prob={"i0": 0.9, "i1": 0.4}, ready_prob=0.6)


def test_hwgen_verilog_addstreams(tmp_path, capsys):
    text = hwgen_verilog(tmp_path, "addstreams", "--channels", "8", "--pe", "2",
                         "--input-shape0", "s8", "--input-shape1", "u4", "--shift1", "2")
    assert "input [15:0] s_axis_0_tdata;" in text and "input [7:0] s_axis_1_tdata;" in text
    for k in range(2):
        assert f"output s_axis_{k}_tready;" in text and f"input s_axis_{k}_tvalid;" in text
    assert "output [23:0] m_axis_tdata;" in text          # 2 x signed(9), to bytes
    assert "output m_axis_tlast;" in text
    assert "latency 1 cycles" in capsys.readouterr().err


# --- slow tier ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_slow_ten_thousand_beats_both_tiers():
    add = AddStreams(channels=32, pe=4, input_shape0=signed(8), input_shape1=signed(6),
                     shift0=1, vectors=16)
    in_beats, expected = vectors(add, 80, seed=13)               # 10,240 beats per port
    valid = {"i0": 0.7, "i1": 0.5}
    run_multistream_sim(add, in_beats, expected=expected, seed=13, valid_prob=valid,
                        ready_prob=0.6)
    run_multistream_test(add, in_beats, expected, seed=14, valid_prob=valid, ready_prob=0.6)


@pytest.mark.slow
@pytest.mark.parametrize("shape0, shift0, shape1, shift1, pe", [
    (signed(8), 0, unsigned(4), 2, 4), (signed(8), 0, signed(8), 0, 8),
    (unsigned(4), 3, unsigned(4), 1, 2), (signed(4), 2, signed(6), 0, 4)])
def test_slow_estimate_against_yosys(shape0, shift0, shape1, shift1, pe):
    add = AddStreams(channels=16, pe=pe, input_shape0=shape0, input_shape1=shape1,
                     shift0=shift0, shift1=shift1)
    assert_estimate_matches_yosys(add, luts_rel=0.1, luts_abs=2)


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(add=adders(), seed=st.integers(0, 2**16))
def test_slow_cocotb_random_configs(add, seed):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    in_beats, expected = vectors(add, 2, seed)
    run_multistream_test(add, in_beats, expected, seed=seed, valid_prob={"i0": 0.8, "i1": 0.4},
                         ready_prob=0.6)
