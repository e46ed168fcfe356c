# amaranth: UnusedElaboratable=no
"""ChannelwiseOp in both tiers: golden model against ONNX Add/Mul/GreaterOrEqual/Greater/
LessOrEqual/Less, exact output shapes, comparisons exact for constants outside the input
range, the constants table in every memory style, exact timing, random back-pressure
(Amaranth's simulator with hypothesis, cocotb on Verilator)."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st
from onnx import helper

from hwgen.kernels.channelwise import MEM_STYLES, OPS, ChannelwiseOp, ChannelwiseOpPlan
from hwgen.resources import Resources
from multistream_checks import (assert_estimate_matches_yosys, draw_channel_fold, draw_shape,
                                hwgen_verilog, onnx_reference, random_map)
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test

ONNX_OPS = {"add": "Add", "mul": "Mul", "ge": "GreaterOrEqual", "gt": "Greater",
            "le": "LessOrEqual", "lt": "Less"}


def vectors(unit, frames, seed):
    """Input beats and expected output beats for ``frames`` frames."""
    rng = np.random.default_rng(seed)
    x = random_map(unit.input_shape, frames * unit.vectors, unit.channels, rng)
    y = golden.channelwise(x, unit.constants, unit.op)
    return x.reshape(-1, unit.pe), y.reshape(-1, unit.pe)


def assert_exact_timing(report, unit, frames):
    """Input every cycle, output always ready: one beat per cycle each way, the first frame
    as ``out_times`` says, the run ``frames * cycles_per_frame`` cycles plus the latency."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    first = in_cycles[0]
    assert report["latency"] == unit.latency
    assert in_cycles == list(range(first, first + len(in_cycles)))
    assert out_cycles == list(range(first + unit.latency, first + unit.latency + len(out_cycles)))
    beats = unit.out_beats_per_frame
    assert unit.out_times(in_cycles[:beats]) == out_cycles[:beats]
    assert report["cycles"] == first + frames * unit.cycles_per_frame + unit.latency


# --- golden model and parameters ------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("per_channel", [True, False])
def test_golden_channelwise_matches_onnx(op, per_channel):
    rng = np.random.default_rng(len(op))
    x = rng.integers(-128, 128, size=(2, 3, 3, 6))
    constants = rng.integers(-50, 50, size=6 if per_channel else 1)
    constants[0] = x[0, 0, 0, 0]                     # an equal pair for the comparisons
    (reference,) = onnx_reference([helper.make_node(ONNX_OPS[op], ["x", "c"], ["y"])],
                                  {"x": x}, ["y"], [("c", constants)])
    np.testing.assert_array_equal(golden.channelwise(x, constants, op), reference)


def test_golden_channelwise_errors_and_wide_values():
    assert golden.channelwise(np.array([[2 ** 40]]), [2 ** 40], "mul")[0, 0] == 2 ** 80
    with pytest.raises(ValueError, match=r"op must be one of 'add', 'mul', .*, not 'sub'"):
        golden.channelwise([[1, 2]], [1], "sub")
    with pytest.raises(ValueError, match=r"constants of shape \(3,\) do not fit the channels of x \(1, 2\)"):
        golden.channelwise([[1, 2]], [1, 2, 3], "add")


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"op": "sub"}, ValueError, r"op must be one of 'add', 'mul', 'ge', 'gt', 'le', 'lt', not 'sub'"),
    ({"constants": [1, 2, 3]}, ValueError, r"constants must have shape \(channels,\) = \(4,\) or \(1,\), not \(3,\)"),
    ({"constants": [[1, 2, 3, 4]]}, ValueError, r"constants must have shape \(channels,\) = \(4,\) or \(1,\), not \(1, 4\)"),
    ({"constants": [1.5]}, ValueError, r"constants must be integers; constants\[0\] is 1\.5"),
    ({"pe": 3}, ValueError, r"pe=3 must divide channels=4; valid pe: \[1, 2, 4\]"),
    ({"mem_style": "uram"}, ValueError, r"mem_style must be one of 'auto', 'registers', 'lutram', 'bram', not 'uram'"),
    ({"input_shape": "s8"}, TypeError, r"input_shape must be an Amaranth shape such as signed\(8\), not 's8'"),
    ({"vectors": 0}, ValueError, r"vectors must be an integer >= 1, not 0"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(channels=4, pe=2, input_shape=signed(8), op="add", constants=[1, 2, 3, 4])
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        ChannelwiseOpPlan(**params)


@pytest.mark.parametrize("shape, op, constants, output_range, output_shape", [
    (signed(8), "add", [3, -1, 0, 5], (-129, 132), signed(9)),
    (unsigned(4), "add", [1], (1, 16), unsigned(5)),
    (unsigned(4), "mul", [-2, 3], (-30, 45), signed(7)),
    (signed(4), "mul", [-3, 2], (-21, 24), signed(6)),
    (signed(8), "mul", [0], (0, 0), unsigned(1)),
    (signed(8), "ge", [-300, 4], (0, 1), unsigned(1)),
    (unsigned(2), "lt", [1], (0, 1), unsigned(1)),
])
def test_output_shape_is_exact(shape, op, constants, output_range, output_shape):
    plan = ChannelwiseOpPlan(channels=len(constants) if len(constants) > 1 else 3,
                             input_shape=shape, op=op, constants=constants)
    assert plan.output_range == output_range
    assert plan.output_shape == output_shape


@pytest.mark.parametrize("constants, pe, depth, latency", [
    ([5], 2, 1, 1),                             # one constant for every channel
    ([1, 2, 3, 4, 5, 6, 7, 8], 8, 1, 1),        # one beat per pixel
    ([1, 2, 1, 2, 1, 2, 1, 2], 2, 1, 1),        # every lane's constant the same in all folds
    ([1, 2, 3, 4, 5, 6, 7, 8], 2, 4, 2),
    ([1, 2, 3, 4, 5, 6, 7, 8], 1, 8, 2),
])
def test_constants_table(constants, pe, depth, latency):
    plan = ChannelwiseOpPlan(channels=8, pe=pe, input_shape=signed(8), op="add",
                             constants=constants)
    assert (plan.table_depth, plan.latency) == (depth, latency)
    assert plan.table.shape == (depth, pe)
    if depth == 1:
        assert plan.mem_style == "registers"
        assert plan.estimate().ffs == pe * plan.output_shape.width + 1
    else:
        assert plan.mem_style == "lutram" and plan.resolved_choices() == {"mem_style": "lutram"}


def test_comparison_constants_are_clamped_to_the_input_range():
    plan = ChannelwiseOpPlan(channels=4, input_shape=unsigned(3), op="ge",
                             constants=[-100, 100, 3, 0])
    assert plan.channel_constants.tolist() == [-1, 8, 3, 0]
    assert plan.constant_shape == signed(5)
    assert plan.constants.tolist() == [-100, 100, 3, 0]


def test_estimate_kinds():
    def estimate(**kwargs):
        params = dict(channels=16, pe=4, input_shape=signed(8), op="add",
                      constants=np.arange(16) - 8)
        return ChannelwiseOpPlan(**{**params, **kwargs}).estimate()
    assert estimate(op="mul").dsp == 4                   # 8 x 5-bit products: 13 bits
    assert estimate(op="mul", input_shape=unsigned(2), constants=np.arange(16) % 4).dsp == 0
    assert estimate(mem_style="bram").bram18 == 1
    assert estimate(constants=[3]).luts < estimate().luts   # no table, no adder LUTs
    assert isinstance(estimate(op="le"), Resources)


# --- Amaranth tier ----------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_amaranth_every_input_value_against_out_of_range_constants(op):
    """Every value of a 3-bit input against constants below, inside and above its range."""
    shape = unsigned(3)
    constants = np.array([-100, -1, 0, 3, 7, 8, 100, 5])
    unit = ChannelwiseOp(channels=8, pe=2, input_shape=shape, op=op, constants=constants,
                         vectors=8)
    x = np.repeat(np.arange(8), 8).reshape(8, 8)
    expected = golden.channelwise(x, constants, op)
    run_stream_sim(unit, x.reshape(-1, 2), expected=expected.reshape(-1, 2), seed=1,
                   valid_prob=0.7, ready_prob=0.7)


@pytest.mark.parametrize("mem_style", MEM_STYLES)
def test_amaranth_every_mem_style(mem_style):
    unit = ChannelwiseOp(channels=12, pe=2, input_shape=signed(6), op="mul",
                         constants=np.arange(12) * 7 - 40, vectors=3, mem_style=mem_style)
    beats, expected = vectors(unit, 5, seed=2)
    run_stream_sim(unit, beats, expected=expected, seed=3, valid_prob=0.6, ready_prob=0.6)


@st.composite
def units(draw):
    channels, pe = draw_channel_fold(draw, max_channels=10)
    count = draw(st.sampled_from([1, channels]))
    constants = draw(st.lists(st.integers(-300, 300), min_size=count, max_size=count))
    return ChannelwiseOp(channels=channels, pe=pe, input_shape=draw_shape(draw),
                         op=draw(st.sampled_from(OPS)), constants=constants,
                         vectors=draw(st.integers(1, 3)),
                         mem_style=draw(st.sampled_from(MEM_STYLES)))


@settings(max_examples=40, deadline=None)
@given(unit=units(), frames=st.integers(1, 3), seed=st.integers(0, 2**16),
       valid_prob=st.sampled_from([0.3, 0.7, 1.0]), ready_prob=st.sampled_from([0.3, 0.7, 1.0]))
def test_amaranth_random(unit, frames, seed, valid_prob, ready_prob):
    beats, expected = vectors(unit, frames, seed)
    run_stream_sim(unit, beats, expected=expected, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


@pytest.mark.parametrize("op, constants, pe", [
    ("add", [3], 2), ("mul", np.arange(8) - 3, 2), ("ge", np.arange(8) * 9 - 30, 1),
    ("lt", np.arange(8), 8)])
def test_amaranth_exact_timing(op, constants, pe):
    unit = ChannelwiseOp(channels=8, pe=pe, input_shape=signed(7), op=op, constants=constants,
                         vectors=3)
    beats, expected = vectors(unit, 20, seed=pe)
    _, report = run_stream_sim(unit, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_timing(report, unit, 20)


# --- cocotb on Verilator -----------------------------------------------------------------------

@pytest.mark.parametrize("op, constants, mem_style", [
    ("mul", np.arange(16) * 11 - 80, "auto"), ("ge", np.arange(16) * 9 - 70, "bram")])
def test_cocotb_backpressure_and_exact_timing(op, constants, mem_style):
    unit = ChannelwiseOp(channels=16, pe=4, input_shape=signed(8), op=op, constants=constants,
                         vectors=9, mem_style=mem_style)
    beats, expected = vectors(unit, 12, seed=8)
    run_stream_test(unit, beats, expected, seed=8, valid_prob=0.7, ready_prob=0.5)
    report = run_stream_test(unit, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_timing(report, unit, 12)


def test_hwgen_verilog_channelwise(tmp_path, capsys):
    from hwgen.cli import main
    constants = tmp_path / "c.npy"
    np.save(constants, np.array([1, -2, 3, 4]))
    text = hwgen_verilog(tmp_path, "channelwise", "--channels", "4", "--pe", "2",
                         "--input-shape", "s8", "--op", "mul", "--constants", str(constants))
    assert "input [15:0] s_axis_tdata;" in text
    assert "output [23:0] m_axis_tdata;" in text        # 2 x signed(10), to bytes
    assert "latency 2 cycles" in capsys.readouterr().err
    assert main(["verilog", "channelwise", "--channels", "3", "--input-shape", "s8", "--op",
                 "add", "--constants", str(constants), "-o", str(tmp_path / "bad.v")]) == 2
    assert "constants must have shape (channels,) = (3,) or (1,), not (4,)" in \
        capsys.readouterr().err


# --- slow tier ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_slow_ten_thousand_beats_both_tiers():
    unit = ChannelwiseOp(channels=32, pe=4, input_shape=signed(8), op="add",
                         constants=np.arange(32) * 5 - 77, vectors=16)
    beats, expected = vectors(unit, 80, seed=17)                 # 10,240 beats
    run_stream_sim(unit, beats, expected=expected, seed=17, valid_prob=0.6, ready_prob=0.5)
    run_stream_test(unit, beats, expected, seed=18, valid_prob=0.6, ready_prob=0.5)


_RNG = np.random.default_rng(0)
_YOSYS_CASES = {
    "add_table": dict(channels=16, pe=4, input_shape=signed(8), op="add",
                      constants=_RNG.integers(-100, 100, 16)),
    "add_constant": dict(channels=16, pe=4, input_shape=signed(8), op="add", constants=[37]),
    "add_registers": dict(channels=32, pe=4, input_shape=unsigned(6), op="add",
                          constants=_RNG.integers(-30, 30, 32), mem_style="registers"),
    "mul_table": dict(channels=16, pe=4, input_shape=signed(8), op="mul",
                      constants=_RNG.integers(-100, 100, 16)),
    "mul_small": dict(channels=16, pe=2, input_shape=unsigned(4), op="mul",
                      constants=_RNG.integers(0, 15, 16)),
    "mul_constant": dict(channels=16, pe=4, input_shape=signed(8), op="mul", constants=[37]),
    "ge_table": dict(channels=16, pe=4, input_shape=signed(8), op="ge",
                     constants=_RNG.integers(-100, 100, 16)),
    "le_table": dict(channels=64, pe=4, input_shape=unsigned(12), op="le",
                     constants=_RNG.integers(0, 4000, 64)),
    "gt_constant": dict(channels=16, pe=8, input_shape=signed(12), op="gt", constants=[-5]),
    "lt_bram": dict(channels=1024, pe=2, input_shape=signed(8), op="lt",
                    constants=_RNG.integers(-100, 100, 1024)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(_YOSYS_CASES))
def test_slow_estimate_against_yosys(case):
    unit = ChannelwiseOp(**_YOSYS_CASES[case])
    assert_estimate_matches_yosys(unit, luts_rel=0.25, luts_abs=4, ffs_abs=2)


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(unit=units(), seed=st.integers(0, 2**16))
def test_slow_cocotb_random_configs(unit, seed):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    beats, expected = vectors(unit, 2, seed)
    run_stream_test(unit, beats, expected, seed=seed, valid_prob=0.7, ready_prob=0.5)
