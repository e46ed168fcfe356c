# amaranth: UnusedElaboratable=no
"""Concat in both tiers: golden model against ONNX Concat over the channel axis, the output
shape, parameters, exact timing across segment and pixel boundaries, and independent random
back-pressure on every input and the output (Amaranth's simulator with hypothesis, cocotb on
Verilator behind the multi-stream AXI4-Stream shell)."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st
from onnx import helper

from hwgen.kernel import StreamFormat, port_format
from hwgen.plumbing.concat import Concat, ConcatPlan
from hwgen.resources import Resources
from multistream_checks import (assert_compiled_harness_agrees, assert_estimate_matches_yosys,
                                assert_exact_timing,
                                draw_shape, hwgen_verilog, onnx_reference, random_map,
                                run_multistream_test)
from sim import golden
from sim.multistream import run_multistream_sim


def vectors(cat, frames, seed):
    """Every input's beats and the expected output beats for ``frames`` frames."""
    rng = np.random.default_rng(seed)
    maps = [random_map(shape, frames * cat.vectors, channels, rng)
            for shape, channels in zip(cat.elem_shapes, cat.channels)]
    y = golden.concat(maps)
    return ({port: x.reshape(-1, cat.pe) for port, x in zip(cat.inputs, maps)},
            {"o": y.reshape(-1, cat.pe)})


def in_counts(in_beats):
    return {port: len(beats) for port, beats in in_beats.items()}


# --- golden model and parameters ------------------------------------------------------------

def test_golden_concat_matches_onnx():
    rng = np.random.default_rng(1)
    maps = {"a": rng.integers(-8, 8, size=(2, 3, 3, 4)), "b": rng.integers(0, 32, size=(2, 3, 3, 2)),
            "c": rng.integers(-2, 2, size=(2, 3, 3, 6))}
    (reference,) = onnx_reference([helper.make_node("Concat", list(maps), ["y"], axis=3)], maps,
                                  ["y"])
    np.testing.assert_array_equal(golden.concat(list(maps.values())), reference)
    with pytest.raises(ValueError, match=r"concat needs 2 or more inputs, not 1"):
        golden.concat([maps["a"]])


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"channels": 8}, TypeError, r"channels must be a list or tuple of 2 or more channel counts \(one per input\), not 8"),
    ({"channels": (8,)}, TypeError, r"channels must be a list or tuple of 2 or more channel counts"),
    ({"channels": (8, 6)}, ValueError, r"pe=4 must divide channels\[1\]=6; valid pe: \[1, 2, 3, 6\]"),
    ({"channels": (8, 0)}, ValueError, r"channels\[1\] must be an integer >= 1, not 0"),
    ({"channels": (8, "4")}, TypeError, r"channels\[1\] must be an integer >= 1, not '4'"),
    ({"elem_shapes": (signed(4),) * 3}, ValueError, r"elem_shapes must be one shape or 2 shapes \(one per input\), not 3"),
    ({"elem_shapes": (signed(4), "u3")}, TypeError, r"elem_shapes\[1\] must be an Amaranth shape such as signed\(8\), not 'u3'"),
    ({"elem_shapes": None}, TypeError, r"elem_shapes must be an Amaranth shape such as signed\(8\), not None"),
    ({"vectors": 0}, ValueError, r"vectors must be an integer >= 1, not 0"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(channels=(8, 4), pe=4, elem_shapes=signed(4))
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        ConcatPlan(**params)


@pytest.mark.parametrize("shapes, output_shape", [
    ((unsigned(4), signed(3)), signed(5)),
    ((unsigned(4), unsigned(7), unsigned(1)), unsigned(7)),
    ((signed(8), signed(2)), signed(8)),
    ((unsigned(8), signed(8)), signed(9)),
])
def test_output_shape_holds_every_input(shapes, output_shape):
    plan = ConcatPlan(channels=(2,) * len(shapes), pe=2, elem_shapes=shapes)
    assert plan.output_shape == output_shape


def test_plan_properties_and_ports():
    plan = ConcatPlan(channels=(4, 2, 6), pe=2, elem_shapes=(signed(4), unsigned(5), signed(2)),
                      vectors=3)
    assert plan.inputs == {"i0": StreamFormat(signed(4), 2), "i1": StreamFormat(unsigned(5), 2),
                           "i2": StreamFormat(signed(2), 2)}
    assert plan.outputs == {"o": StreamFormat(signed(6), 2)}
    assert (plan.folds, plan.out_channels, plan.latency, plan.cycles_per_frame) == \
        ((2, 1, 3), 12, 1, 18)
    assert [plan.beats_per_frame(port) for port in ("i0", "i1", "i2", "o")] == [6, 3, 9, 18]
    with pytest.raises(NotImplementedError, match=r"beats_per_frame\('i0'\)"):
        plan.in_beats_per_frame
    assert plan.output_sources()[:7] == [("i0", 0), ("i0", 1), ("i1", 0), ("i2", 0), ("i2", 1),
                                         ("i2", 2), ("i0", 2)]
    # input i1 arrives late: the output waits for it, then catches up one beat per cycle
    times = plan.schedule({"i0": list(range(6)), "i1": [10, 11, 12], "i2": list(range(9))})
    assert times["o"][:8] == [1, 2, 11, 12, 13, 14, 15, 16]
    estimate = plan.estimate()
    assert isinstance(estimate, Resources) and estimate.ffs >= 2 * 6 + 1
    cat = plan.build()
    assert {port: port_format(cat, port) for port in ("i0", "i1", "i2", "o")} == \
        {**plan.inputs, **plan.outputs}


# --- Amaranth tier ----------------------------------------------------------------------------

@st.composite
def concats(draw):
    pe = draw(st.integers(1, 4))
    inputs = draw(st.integers(2, 4))
    channels = tuple(pe * draw(st.integers(1, 3)) for _ in range(inputs))
    return Concat(channels=channels, pe=pe, elem_shapes=[draw_shape(draw) for _ in channels],
                  vectors=draw(st.integers(1, 3)))


@settings(max_examples=30, deadline=None)
@given(cat=concats(), frames=st.integers(1, 3), seed=st.integers(0, 2**16), data=st.data(),
       ready=st.sampled_from([0.2, 0.6, 1.0]))
def test_amaranth_random_backpressure_per_port(cat, frames, seed, data, ready):
    valid = {port: data.draw(st.sampled_from([0.2, 0.6, 1.0]), label=port) for port in cat.inputs}
    in_beats, expected = vectors(cat, frames, seed)
    run_multistream_sim(cat, in_beats, expected=expected, seed=seed, valid_prob=valid,
                        ready_prob=ready)


@pytest.mark.parametrize("channels, pe", [((16, 32), 8), ((4, 2, 6), 2), ((1, 1), 1),
                                          ((3, 9, 3, 6), 3)])
def test_amaranth_exact_timing(channels, pe):
    cat = Concat(channels=channels, pe=pe, elem_shapes=signed(5), vectors=3)
    in_beats, expected = vectors(cat, 10, seed=pe)
    _, report = run_multistream_sim(cat, in_beats, expected=expected, valid_prob=1.0,
                                    ready_prob=1.0)
    assert report["latency"] == cat.latency
    assert_exact_timing(report, cat, in_counts(in_beats))


# --- cocotb on Verilator, behind the multi-stream AXI4-Stream shell ---------------------------

def test_cocotb_backpressure_per_port_and_exact_timing():
    cat = Concat(channels=(8, 4, 12), pe=4, elem_shapes=(unsigned(4), signed(3), signed(8)),
                 vectors=9)
    in_beats, expected = vectors(cat, 10, seed=7)
    run_multistream_test(cat, in_beats, expected, seed=7,
                         valid_prob={"i0": 0.9, "i1": 0.3, "i2": 0.6}, ready_prob=0.5)
    report = run_multistream_test(cat, in_beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_timing(report, cat, in_counts(in_beats))
    assert_compiled_harness_agrees(cat, in_beats, expected, report, seed=7,
                                   valid_prob={"i0": 0.9, "i1": 0.3, "i2": 0.6}, ready_prob=0.5)


def test_hwgen_verilog_concat(tmp_path, capsys):
    from hwgen.cli import main
    text = hwgen_verilog(tmp_path, "concat", "--channels", "4,6", "--pe", "2", "--elem-shapes",
                         "u4", "--vectors", "3")
    for k in range(2):
        assert f"input [7:0] s_axis_{k}_tdata;" in text and f"output s_axis_{k}_tready;" in text
    assert "output [7:0] m_axis_tdata;" in text and "output m_axis_tlast;" in text
    assert "latency 1 cycles" in capsys.readouterr().err
    assert main(["verilog", "concat", "--channels", "4", "--elem-shapes", "u4",
                 "-o", str(tmp_path / "bad.v")]) == 2
    assert "channels must be a list or tuple of 2 or more" in capsys.readouterr().err


# --- slow tier ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_slow_ten_thousand_beats_both_tiers():
    cat = Concat(channels=(16, 8, 8), pe=4, elem_shapes=(signed(8), unsigned(4), signed(3)),
                 vectors=16)
    in_beats, expected = vectors(cat, 160, seed=15)              # 20,480 output beats
    valid = {"i0": 0.8, "i1": 0.4, "i2": 0.6}
    run_multistream_sim(cat, in_beats, expected=expected, seed=15, valid_prob=valid,
                        ready_prob=0.7)
    run_multistream_test(cat, in_beats, expected, seed=16, valid_prob=valid, ready_prob=0.7)


@pytest.mark.slow
@pytest.mark.parametrize("channels, pe, shapes", [
    ((16, 32), 8, (unsigned(4), signed(3))), ((4, 2, 6), 2, (signed(4), unsigned(5), signed(2))),
    ((8,) * 5, 4, signed(8)), ((8, 24), 4, signed(8)), ((2, 4, 6, 8), 2, unsigned(3))])
def test_slow_estimate_against_yosys(channels, pe, shapes):
    cat = Concat(channels=channels, pe=pe, elem_shapes=shapes)
    assert_estimate_matches_yosys(cat, luts_rel=0.15, luts_abs=2)


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(cat=concats(), seed=st.integers(0, 2**16))
def test_slow_cocotb_random_configs(cat, seed):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    in_beats, expected = vectors(cat, 2, seed)
    valid = {port: (0.9, 0.3, 0.6, 0.5)[k] for k, port in enumerate(cat.inputs)}
    run_multistream_test(cat, in_beats, expected, seed=seed, valid_prob=valid, ready_prob=0.5)
