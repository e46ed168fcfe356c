# amaranth: UnusedElaboratable=no
"""Requantize in both tiers: the golden model against the formula in Python integers, the
normal form on every input value, exact output ranges, parameter errors, the datapath
choice and DSP packing, the corrections, exact timing, random back-pressure (Amaranth's
simulator with hypothesis, cocotb on Verilator, the compiled harness), the command line and
the estimate against Yosys."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st

from hwgen.kernels.requantize import MEM_STYLES, Requantize, RequantizePlan
from hwgen.resources import Resources
from hwgen.shapes import shape_for_range, shape_range
from multistream_checks import (assert_compiled_harness_agrees, assert_estimate_matches_yosys,
                                draw_channel_fold, hwgen_verilog, random_map)
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test


def reference(unit, x):
    """``sim.golden.requantize`` with the unit's parameters."""
    return golden.requantize(x, unit.multiplier, unit.offset, unit.shift, unit.low, unit.high,
                             unit.bias, unit.zero_point, unit.exceptions)


def vectors(unit, frames, seed):
    """Input beats and expected output beats for ``frames`` frames: random accumulators
    (the extremes first and last) and every corrected accumulator of its channel."""
    rng = np.random.default_rng(seed)
    x = random_map(unit.input_shape, frames * unit.vectors, unit.channels, rng)
    for c, pairs in enumerate(unit.exceptions):
        for row, (value, _) in zip(rng.permutation(len(x)), pairs):
            x[row, c] = value
    return x.reshape(-1, unit.pe), reference(unit, x).reshape(-1, unit.pe)


def assert_exact_timing(report, unit, frames):
    """Input every cycle, output always ready: one beat per cycle each way, the first frame
    as ``out_times`` says, the run ``frames * cycles_per_frame`` cycles plus the latency."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    first = in_cycles[0]
    assert report["latency"] == unit.latency == 4
    assert in_cycles == list(range(first, first + len(in_cycles)))
    assert out_cycles == list(range(first + unit.latency, first + unit.latency + len(out_cycles)))
    beats = unit.out_beats_per_frame
    assert unit.out_times(in_cycles[:beats]) == out_cycles[:beats]
    assert report["cycles"] == first + frames * unit.cycles_per_frame + unit.latency


def formula(x, m, r, s, low, high, b, zp):
    """``clamp(((x + b) * M + R) >> S, low, high) + zp`` in Python integers."""
    return min(max(((int(x) + b) * m + r) >> s, low), high) + zp


# --- golden model ------------------------------------------------------------------------------

@pytest.mark.parametrize("per_channel", [True, False])
def test_golden_requantize_is_the_formula(per_channel):
    rng = np.random.default_rng(per_channel)
    x = rng.integers(-2**20, 2**20, size=(2, 3, 5))
    count = 5 if per_channel else 1
    m, r = rng.integers(0, 2**16, count), rng.integers(-2**20, 2**20, count)
    s, b = rng.integers(0, 20, count), rng.integers(-100, 100, count)
    y = golden.requantize(x, m, r, s, -100, 90, b, 7)
    assert y.dtype == np.int64
    for index in np.ndindex(x.shape):
        c = index[-1] % count
        assert y[index] == formula(x[index], int(m[c]), int(r[c]), int(s[c]), -100, 90,
                                   int(b[c]), 7)


def test_golden_requantize_beyond_int64_and_errors():
    # (2**40 + 3) * 2**31: a 72-bit product, exactly
    y = golden.requantize(np.array([[2**40, -2**40]]), [2**31, 2**31 - 1], [2**70, 1],
                          [40, 41], bias=[3, 0])
    assert y.tolist() == [[((2**40 + 3) * 2**31 + 2**70) >> 40,
                           (-2**40 * (2**31 - 1) + 1) >> 41]]
    assert y.tolist() == [[2**31 + 2**30, -2**30]]                # floor, not truncation
    assert golden.requantize([[-7]], 1, 0, 1)[0, 0] == -4
    # corrections: the delta of the channel's pair, before the clamp
    y = golden.requantize([[3, 3], [4, 4]], [2, 2], shift=1, low=0, high=3,
                          exceptions=[[(3, -1)], [(4, 1)]])
    assert y.tolist() == [[2, 3], [3, 3]]
    with pytest.raises(ValueError, match=r"multiplier of shape \(3,\) does not fit the channels "
                                         r"of x \(1, 2\): need a scalar, \(C,\) or \(1,\)"):
        golden.requantize([[1, 2]], [1, 2, 3])
    with pytest.raises(ValueError, match=r"shift of shape \(2, 1\) does not fit"):
        golden.requantize([[1, 2, 3]], 1, shift=[[1], [2]])
    with pytest.raises(ValueError, match=r"x must hold integers, not dtype float64"):
        golden.requantize([[1.5]], 1)


# --- the normal form and the output range ------------------------------------------------------

@st.composite
def small_plans(draw, exceptions=False):
    """Plans of 1 to 4 channels on inputs of at most 10 bits, every parameter random."""
    channels = draw(st.integers(1, 4))
    width = draw(st.integers(1, 10))
    shape = signed(width) if draw(st.booleans()) else unsigned(width)

    def per_channel(strategy):
        return draw(st.lists(strategy, min_size=channels, max_size=channels)
                    | st.lists(strategy, min_size=1, max_size=1))
    shifts = per_channel(st.integers(0, 12))
    low = draw(st.integers(-300, 300))
    extra = {}
    if exceptions:
        lo, hi = shape_range(shape)
        rows = [draw(st.lists(st.tuples(st.integers(lo, hi), st.sampled_from([-1, 1])),
                              max_size=3, unique_by=lambda pair: pair[0]))
                for _ in range(channels)]
        extra["exceptions"] = rows
    return RequantizePlan(channels=channels, input_shape=shape,
                          multiplier=per_channel(st.integers(0, 2**12)),
                          offset=per_channel(st.integers(-2**14, 2**14)), shift=shifts,
                          bias=per_channel(st.integers(-40, 40)),
                          zero_point=draw(st.integers(-20, 20)), low=low,
                          high=low + draw(st.integers(0, 400)), **extra)


@settings(max_examples=60, deadline=None)
@given(plan=small_plans())
def test_normal_form_on_every_input_value(plan):
    lo_in, hi_in = shape_range(plan.input_shape)
    x = np.repeat(np.arange(lo_in, hi_in + 1)[:, None], plan.channels, axis=1)
    y = reference(plan, x)
    m, r, s, (lo, hi) = plan.normal_form
    assert s == max(plan.shift)
    u = x - lo_in
    for c in range(plan.channels):
        normal = [min(max((int(v) * m[c] + r[c]) >> s, lo), hi) for v in u[:, c]]
        assert normal == y[:, c].tolist()
        assert min(r[c], 0) >= shape_range(plan.offset_shape)[0]
        assert shape_range(plan.sum_shape)[0] <= r[c] <= \
            r[c] + (hi_in - lo_in) * m[c] <= shape_range(plan.sum_shape)[1]
    extremes = (int(y.min()), int(y.max()))
    assert plan.output_range == extremes
    assert plan.output_shape == shape_for_range(*extremes)


@settings(max_examples=30, deadline=None)
@given(plan=small_plans(exceptions=True))
def test_output_range_holds_the_corrected_values(plan):
    lo_in, hi_in = shape_range(plan.input_shape)
    x = np.repeat(np.arange(lo_in, hi_in + 1)[:, None], plan.channels, axis=1)
    y = reference(plan, x)
    low, high = plan.output_range
    extremes = (int(y.min()), int(y.max()))
    assert low <= extremes[0] and extremes[1] <= high
    corrected = [c for c, pairs in enumerate(plan.exceptions)
                 if any(v in (lo_in, hi_in) for v, _ in pairs)]
    if not corrected:                    # exact unless a correction moves an end point
        assert (low, high) == extremes


@pytest.mark.parametrize("shape, kwargs, output_range, output_shape", [
    (signed(16), dict(multiplier=181, offset=1 << 11, shift=12, low=-128, high=127),
     (-128, 127), signed(8)),
    (signed(8), dict(multiplier=1, shift=4, low=-128, high=127), (-8, 7), signed(4)),
    (unsigned(8), dict(multiplier=3, shift=2, low=0, high=255), (0, 191), unsigned(8)),
    (unsigned(8), dict(multiplier=3, shift=2, low=0, high=255, zero_point=-100),
     (-100, 91), signed(8)),
    (signed(12), dict(multiplier=0, offset=5, low=-7, high=7, bias=3), (5, 5), unsigned(3)),
    (unsigned(4), dict(multiplier=[1, 2], low=2, high=20), (2, 20), unsigned(5)),
])
def test_output_shape_is_exact(shape, kwargs, output_range, output_shape):
    plan = RequantizePlan(channels=2, input_shape=shape, **kwargs)
    assert plan.output_range == output_range
    assert plan.output_shape == output_shape
    assert plan.output_format.elem_shape == output_shape and plan.input_format.elem_shape == shape


def test_shifts_share_the_largest_and_bias_and_zero_point_fold_into_the_offset():
    plan = RequantizePlan(channels=3, input_shape=signed(8), multiplier=[3, 5, 7],
                          offset=[1, 2, 3], shift=[2, 4, 3], bias=[10, -1, 0], zero_point=4,
                          low=-50, high=50)
    m, r, s, clamp = plan.normal_form
    assert (m, s, clamp) == ([12, 5, 14], 4, (-46, 54))
    assert r == [(1 + 30) * 4 + (4 << 4) - 128 * 12, (2 - 5) + 64 - 128 * 5,
                 (3 + 0) * 2 + 64 - 128 * 14]
    assert (plan.multiplier_width, plan.product_width) == (4, 12)


# --- parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"multiplier": [3, -1, 2, 1]}, ValueError,
     r"^multiplier\[1\] = -1 is out of range: must be in \[0, 4294967295\]$"),
    ({"multiplier": 2**32}, ValueError,
     r"^multiplier\[0\] = 4294967296 is out of range: must be in \[0, 4294967295\]$"),
    ({"shift": 63}, ValueError, r"^shift\[0\] = 63 is out of range: must be in \[0, 62\]$"),
    ({"shift": [1, 2, -1, 0]}, ValueError, r"^shift\[2\] = -1 is out of range"),
    ({"multiplier": [1, 2, 3]}, ValueError,
     r"^multiplier must be an integer or have shape \(channels,\) = \(4,\) or \(1,\), "
     r"not \(3,\)$"),
    ({"offset": [[1, 2, 3, 4]]}, ValueError,
     r"^offset must be an integer or have shape \(channels,\) = \(4,\) or \(1,\), "
     r"not \(1, 4\)$"),
    ({"bias": np.zeros((2, 2))}, ValueError, r"^bias must be an integer or have shape"),
    ({"offset": 1.5}, ValueError, r"^offset must be integers; offset\[0\] is 1\.5$"),
    ({"multiplier": [1, 2, True, 4]}, ValueError,
     r"^multiplier must be integers; multiplier\[2\] is True$"),
    ({"low": 5, "high": 0}, ValueError, r"^high=0 must be >= low=5$"),
    ({"low": 1.0}, TypeError, r"^low must be an integer, not 1\.0$"),
    ({"pe": 3}, ValueError, r"^pe=3 must divide channels=4; valid pe: \[1, 2, 4\]$"),
    ({"input_shape": signed(65)}, ValueError, r"^input_shape must be 1 to 64 bits wide, not 65$"),
    ({"input_shape": "s8"}, TypeError,
     r"^input_shape must be an Amaranth shape such as signed\(8\), not 's8'$"),
    ({"input_shape": signed(64), "multiplier": 2**31 + 1, "datapath": "dsp"}, ValueError,
     r"^datapath='dsp' cannot take a 64-bit input times a 32-bit multiplier \(6 DSP48E2 "
     r"slices per lane; at most 4\); use 'lut'$"),
    ({"datapath": "fabric"}, ValueError,
     r"^datapath must be one of 'auto', 'dsp', 'lut', not 'fabric'$"),
    ({"mem_style": "uram"}, ValueError,
     r"^mem_style must be one of 'auto', 'registers', 'lutram', 'bram', not 'uram'$"),
    ({"target": "ecp5"}, ValueError,
     r"^target must be one of 'auto', 'generic', 'xilinx', not 'ecp5'$"),
    ({"primitives": "yes"}, ValueError,
     r"^primitives must be one of 'auto', 'instance', 'behavioural', not 'yes'$"),
    ({"vectors": 0}, ValueError, r"^vectors must be an integer >= 1, not 0$"),
    ({"exceptions": [[(1, 1)], [(2, 1)]]}, ValueError,
     r"^exceptions must have one list of \(x, delta\) pairs per channel \(4\) or one for "
     r"all, not 2$"),
    ({"exceptions": [[(1, 2)]]}, ValueError, r"^exceptions\[0\] delta must be an integer in"),
    ({"exceptions": [[(128, 1)]]}, ValueError, r"^exceptions\[0\] x must be an integer in"),
    ({"exceptions": [[(3, 1), (3, -1)]]}, ValueError,
     r"^exceptions\[0\]: an accumulator appears twice$"),
    ({"exceptions": [[(3, 1, 0)]]}, ValueError,
     r"^exceptions\[0\]: \(3, 1, 0\) is not an \(x, delta\) pair$"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(channels=4, pe=2, input_shape=signed(8), multiplier=[3, 5, 7, 9], offset=8,
                  shift=4, low=0, high=15)
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        RequantizePlan(**params)


def test_wide_products_take_several_slices():
    """A 30-bit input times a 21-bit multiplier is over one DSP48E2: ``dsp`` splits it
    (into 4 slices the way Yosys tiles it, the wider operand in 26-bit pieces), while
    ``slices_per_lane`` counts the best tiling."""
    plan = RequantizePlan(channels=2, pe=2, input_shape=signed(30), multiplier=2**20 + 1,
                          shift=20, low=-128, high=127, datapath="dsp")
    assert plan.slices_per_lane == 2
    assert plan.lane_multiplier_cost(0).dsp == 4 and plan.estimate().dsp == 8
    assert RequantizePlan(channels=2, input_shape=signed(30), multiplier=2**20 + 1, shift=20,
                          low=-128, high=127).datapath == "lut"


def test_float_integers_are_accepted():
    plan = RequantizePlan(channels=2, input_shape=signed(8), multiplier=np.array([3.0, 4.0]),
                          offset=2.0, low=0, high=9)
    assert plan.multiplier == [3, 4] and plan.offset == [2, 2]


# --- datapath, packing, table, estimate kinds --------------------------------------------------

_CHOICES = [
    dict(channels=16, pe=4, input_shape=signed(20), multiplier=181, offset=1 << 15, shift=16,
         low=0, high=255),
    dict(channels=16, pe=4, input_shape=unsigned(6), multiplier=37, offset=3, shift=5, low=0,
         high=255),
    dict(channels=8, pe=2, input_shape=signed(16), multiplier=np.arange(8) * 300 + 1000,
         shift=12, low=-128, high=127),
    dict(channels=8, pe=2, input_shape=unsigned(4), multiplier=np.arange(8) + 1, shift=2,
         low=0, high=15),
    dict(channels=4, pe=4, input_shape=signed(24), multiplier=0x2D5, shift=10, low=-128,
         high=127, target="xilinx"),
    dict(channels=64, pe=8, input_shape=signed(22), multiplier=np.arange(64) * 97 + 20000,
         offset=1 << 23, shift=24, low=-128, high=127),
]


@pytest.mark.parametrize("index", range(len(_CHOICES)))
def test_auto_datapath_is_the_cheaper_estimate(index):
    plan = RequantizePlan(**_CHOICES[index])
    costs = {d: plan._estimate(d).lut_equivalent(ffs=0) for d in ("dsp", "lut")}
    assert plan.datapath == ("dsp" if costs["dsp"] < costs["lut"] else "lut")
    assert plan.resolved_choices()["datapath"] == plan.datapath
    assert plan.estimate() == plan._estimate(plan.datapath)
    forced = RequantizePlan(**{**_CHOICES[index], "datapath": "lut"})
    assert forced.datapath == "lut" and "datapath" not in forced.resolved_choices()


def test_auto_datapath_picks_both():
    picks = {RequantizePlan(**case).datapath for case in _CHOICES}
    assert picks == {"dsp", "lut"}


@pytest.mark.parametrize("multiplier", [0, 1, 64, 2**31])
@pytest.mark.parametrize("datapath", ["dsp", "lut"])
def test_power_of_two_multiplier_is_wiring(multiplier, datapath):
    plan = RequantizePlan(channels=4, pe=2, input_shape=signed(16), multiplier=multiplier,
                          shift=10, low=-128, high=127, datapath=datapath)
    assert plan.lane_multiplier_cost(0) == plan.lane_multiplier_cost(1) == Resources()
    assert plan.estimate().dsp == 0
    general = RequantizePlan(channels=4, pe=2, input_shape=signed(16),
                             multiplier=multiplier + 5, shift=10, low=-128, high=127,
                             datapath=datapath)
    assert general.lane_multiplier_cost(0) != Resources()
    assert general.estimate().lut_equivalent(ffs=0) > plan.estimate().lut_equivalent(ffs=0)


def test_lanes_per_dsp():
    def plan(**kwargs):
        return RequantizePlan(**{**dict(channels=8, pe=4, input_shape=unsigned(6),
                                        multiplier=37, shift=5, low=0, high=255,
                                        datapath="dsp"), **kwargs})
    assert plan().lanes_per_dsp == 2                     # 6 + 6 bits: two products in 26
    assert plan(pe=8).lanes_per_dsp == 2
    assert plan(input_shape=unsigned(4), multiplier=5).lanes_per_dsp == 4   # 3 x 7 + 4 bits
    assert plan(input_shape=unsigned(4), multiplier=5, pe=8).lanes_per_dsp == 4
    assert plan(multiplier=np.arange(8) + 30).lanes_per_dsp == 1      # per-channel M
    assert plan(shift=[5, 6] * 4).lanes_per_dsp == 1                # M' differs per channel
    assert plan(input_shape=unsigned(14)).lanes_per_dsp == 1
    assert plan(pe=1).lanes_per_dsp == 1
    # the DSP48E2 instances pack; the generic Verilog (also what target="auto" exports
    # without a platform) has one product per lane
    assert plan(target="xilinx").estimate().dsp == 2
    assert plan(target="generic").estimate().dsp == plan().estimate().dsp == 4
    assert plan(target="xilinx", multiplier=np.arange(8) + 30).estimate().dsp == 4


@pytest.mark.parametrize("kwargs, depth, mem_style", [
    (dict(multiplier=181, offset=3), 1, "registers"),
    (dict(multiplier=[3, 5] * 4, offset=[1, 2] * 4), 1, "registers"),   # same in every fold
    (dict(multiplier=np.arange(8) + 3), 4, "lutram"),
    (dict(multiplier=181, offset=np.arange(8)), 4, "lutram"),
    (dict(multiplier=181, offset=np.arange(8), mem_style="bram"), 4, "bram"),
    (dict(multiplier=181, exceptions=[[(5, 1)]] + [[]] * 7), 4, "lutram"),
])
def test_constants_table(kwargs, depth, mem_style):
    plan = RequantizePlan(channels=8, pe=2, input_shape=signed(12), shift=6, low=-128,
                          high=127, **kwargs)
    assert plan.table_depth == depth and len(plan.table) == depth
    assert all(len(row) == 2 for row in plan.table)
    assert plan.mem_style == mem_style
    assert plan.estimate().bram18 == (mem_style == "bram")


def test_estimate_kinds():
    def estimate(**kwargs):
        params = dict(channels=16, pe=4, input_shape=signed(16), multiplier=181,
                      offset=1 << 11, shift=12, low=-128, high=127, datapath="dsp",
                      target="generic")
        return RequantizePlan(**{**params, **kwargs}).estimate()
    base = estimate()
    assert (base.dsp, base.bram18) == (4, 0)
    assert estimate(datapath="lut").dsp == 0 and estimate(datapath="lut").luts > base.luts
    # DSP48E2 instances hold the input, product and sum registers
    assert estimate(target="xilinx").ffs < base.ffs - 4 * 16
    # a table in logic costs LUTs and read registers; in block RAM a block and fewer FFs
    table = estimate(offset=np.arange(16) * 1000)
    assert table.luts > base.luts and table.ffs > base.ffs
    bram = estimate(offset=np.arange(16) * 1000, mem_style="bram")
    assert bram.bram18 == 1 and bram.ffs < table.ffs
    # no clamp reachable: no comparison LUTs
    assert estimate(low=-10**6, high=10**6).luts < base.luts
    # corrections cost comparators
    assert estimate(exceptions=[[(5, 1)]]).luts > base.luts
    assert isinstance(base, Resources)


# --- Amaranth tier -----------------------------------------------------------------------------

@st.composite
def units(draw):
    channels, pe = draw_channel_fold(draw, max_channels=8)
    width = draw(st.integers(1, 24))
    shape = signed(width) if draw(st.booleans()) else unsigned(width)
    lo_in, hi_in = shape_range(shape)

    def per_channel(strategy):
        count = draw(st.sampled_from([1, channels]))
        return draw(st.lists(strategy, min_size=count, max_size=count))
    shifts = per_channel(st.integers(0, 24))
    s = max(shifts)
    exceptions = None
    if draw(st.integers(0, 3)) == 0:
        values = st.sampled_from([lo_in, hi_in]) | st.integers(lo_in, hi_in)
        exceptions = per_channel(st.lists(st.tuples(values, st.sampled_from([-1, 1])),
                                          max_size=3, unique_by=lambda pair: pair[0]))
    low = draw(st.integers(-2**10, 2**10))
    return Requantize(channels=channels, pe=pe, input_shape=shape,
                      multiplier=per_channel(st.integers(0, 2**17)),
                      offset=per_channel(st.integers(-2**(s + 4), 2**(s + 4))), shift=shifts,
                      bias=per_channel(st.integers(-2**8, 2**8)),
                      zero_point=draw(st.integers(-50, 50)), low=low,
                      high=low + draw(st.integers(0, 2**11)), exceptions=exceptions,
                      vectors=draw(st.integers(1, 3)),
                      datapath=draw(st.sampled_from(["dsp", "lut"])),
                      target=draw(st.sampled_from(["generic", "xilinx"])),
                      mem_style=draw(st.sampled_from(MEM_STYLES)))


@settings(max_examples=40, deadline=None)
@given(unit=units(), frames=st.integers(1, 3), seed=st.integers(0, 2**16),
       valid_prob=st.sampled_from([0.3, 0.7, 1.0]), ready_prob=st.sampled_from([0.3, 0.7, 1.0]))
def test_amaranth_random(unit, frames, seed, valid_prob, ready_prob):
    beats, expected = vectors(unit, frames, seed)
    run_stream_sim(unit, beats, expected=expected, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


@pytest.mark.parametrize("offset", [3, np.arange(8) * 5])
def test_amaranth_packed_dsp48e2(offset):
    """Two lanes per DSP48E2 (a shared ``M``, 6-bit inputs): the packed products do not
    carry into each other, every input value of every lane, under stalls."""
    unit = Requantize(channels=8, pe=4, input_shape=unsigned(6), multiplier=37, offset=offset,
                      shift=5, low=0, high=60, vectors=16, datapath="dsp", target="xilinx")
    assert unit.lanes_per_dsp == 2 and unit.estimate().dsp == 2
    x = np.concatenate([np.tile(np.arange(64)[:, None], (1, 8)),
                        np.tile(np.arange(63, -1, -1)[:, None], (1, 8))])
    run_stream_sim(unit, x.reshape(-1, 4), expected=reference(unit, x).reshape(-1, 4), seed=4,
                   valid_prob=0.7, ready_prob=0.7)


@pytest.mark.parametrize("pe", [1, 2])
def test_amaranth_corrections_at_the_lowest_input(pe):
    """A correction at ``min(input_shape)`` (``u = 0``) in a channel with fewer corrections
    than another: the unused slots (``u = 0`` too) must not hide it."""
    unit = Requantize(channels=2, pe=pe, input_shape=signed(4), multiplier=[3, 5], shift=1,
                      low=-100, high=100, exceptions=[[(-8, 1), (3, -1)], [(-8, 1)]])
    x = np.array([[-8, -8], [3, 3], [0, -8], [-8, 7], [7, 3]])
    y = reference(unit, x)
    assert y[0].tolist() == [(-24 >> 1) + 1, (-40 >> 1) + 1]
    run_stream_sim(unit, x.reshape(-1, pe), expected=y.reshape(-1, pe), seed=pe,
                   valid_prob=0.7, ready_prob=0.7)


@pytest.mark.parametrize("mem_style", MEM_STYLES)
def test_amaranth_every_mem_style(mem_style):
    unit = Requantize(channels=12, pe=2, input_shape=signed(14), multiplier=np.arange(12) * 7 + 3,
                      offset=np.arange(12) * 100 - 600, shift=np.arange(12) % 4 + 6,
                      low=-128, high=127, vectors=3, mem_style=mem_style, datapath="lut")
    beats, expected = vectors(unit, 4, seed=2)
    run_stream_sim(unit, beats, expected=expected, seed=3, valid_prob=0.6, ready_prob=0.6)


_TIMING_CASES = [
    dict(channels=8, pe=2, input_shape=signed(16), multiplier=181, offset=1 << 11, shift=12,
         low=-128, high=127, datapath="dsp"),
    dict(channels=8, pe=2, input_shape=signed(16), multiplier=np.arange(8) * 50 + 100,
         shift=12, low=-128, high=127, datapath="lut"),
    dict(channels=8, pe=4, input_shape=unsigned(6), multiplier=37, offset=np.arange(8), shift=5,
         low=0, high=255, datapath="dsp", target="xilinx"),
    dict(channels=8, pe=8, input_shape=signed(20), multiplier=np.arange(8) + 1000, shift=14,
         low=-128, high=127, datapath="dsp", target="xilinx", exceptions=[[(0, 1)]]),
]


@pytest.mark.parametrize("index", range(len(_TIMING_CASES)))
def test_amaranth_exact_timing(index):
    unit = Requantize(vectors=3, **_TIMING_CASES[index])
    beats, expected = vectors(unit, 20, seed=index)
    _, report = run_stream_sim(unit, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_timing(report, unit, 20)


# --- cocotb on Verilator, the compiled harness -------------------------------------------------

@pytest.mark.parametrize("mem_style", ["auto", "bram"])
def test_cocotb_backpressure_and_exact_timing(mem_style):
    unit = Requantize(channels=16, pe=4, input_shape=signed(18),
                      multiplier=np.arange(16) * 131 + 900, offset=np.arange(16) * 999 - 8000,
                      shift=np.arange(16) % 3 + 12, low=-128, high=127, zero_point=3,
                      vectors=5, mem_style=mem_style)
    assert unit.table_depth == 4 and unit.mem_style == {"auto": "lutram"}.get(mem_style, "bram")
    beats, expected = vectors(unit, 12, seed=8)
    run_stream_test(unit, beats, expected, seed=8, valid_prob=0.7, ready_prob=0.5)
    report = run_stream_test(unit, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_timing(report, unit, 12)
    if mem_style == "auto":     # the compiled harness: same beats under stalls, same cycles
        assert_compiled_harness_agrees(
            unit, {"i": beats}, {"o": expected},
            {"in_cycles": {"i": report["in_cycles"]}, "out_cycles": {"o": report["out_cycles"]}},
            seed=9, valid_prob=0.7, ready_prob=0.5)


def test_hwgen_verilog_requantize(tmp_path, capsys):
    from hwgen.cli import main
    files = {}
    for name, value in (("m", [3, 5, 7, 9]), ("r", [8]), ("s", np.array(4)), ("bad", [1, 2, 3])):
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], np.array(value))
    text = hwgen_verilog(tmp_path, "requantize", "--channels", "4", "--pe", "2",
                         "--input-shape", "s12", "--multiplier", str(files["m"]),
                         "--offset", str(files["r"]), "--shift", str(files["s"]),
                         "--low", "0", "--high", "100", "--zero-point", "2")
    plan = RequantizePlan(channels=4, pe=2, input_shape=signed(12), multiplier=[3, 5, 7, 9],
                          offset=8, shift=4, low=0, high=100, zero_point=2)
    assert plan.output_shape == unsigned(7)
    assert "input [23:0] s_axis_tdata;" in text        # 2 x signed(12)
    assert "output [15:0] m_axis_tdata;" in text       # 2 x unsigned(7), to bytes
    assert "latency 4 cycles" in capsys.readouterr().err
    np.save(tmp_path / "e.npy", np.array([[[5, 1], [-7, -1]]]))
    corrected = hwgen_verilog(tmp_path, "requantize", "--channels", "4", "--pe", "2",
                              "--input-shape", "s12", "--multiplier", str(files["m"]),
                              "--low", "0", "--high", "100", "--exceptions",
                              str(tmp_path / "e.npy"))
    assert "corr3_0" in corrected and "corr3_0" not in text
    assert main(["verilog", "requantize", "--channels", "4", "--input-shape", "s12",
                 "--multiplier", str(files["bad"]), "--low", "0", "--high", "9",
                 "-o", str(tmp_path / "bad.v")]) == 2
    assert "multiplier must be an integer or have shape (channels,) = (4,) or (1,), not (3,)" \
        in capsys.readouterr().err


# --- slow tier ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_slow_ten_thousand_beats_both_tiers():
    unit = Requantize(channels=32, pe=4, input_shape=signed(20),
                      multiplier=np.arange(32) * 1009 + 20000, offset=1 << 23, shift=24,
                      low=-128, high=127, vectors=16)
    beats, expected = vectors(unit, 80, seed=17)                 # 10,240 beats
    run_stream_sim(unit, beats, expected=expected, seed=17, valid_prob=0.6, ready_prob=0.5)
    run_stream_test(unit, beats, expected, seed=18, valid_prob=0.6, ready_prob=0.5)


_RNG = np.random.default_rng(0)
_YOSYS_CASES = {
    "dsp_constant": dict(channels=16, pe=4, input_shape=signed(20), multiplier=181,
                         offset=1 << 15, shift=16, low=0, high=255, datapath="dsp"),
    "lut_constant": dict(channels=16, pe=4, input_shape=signed(20), multiplier=181,
                         offset=1 << 15, shift=16, low=0, high=255, datapath="lut"),
    "dsp_table": dict(channels=16, pe=4, input_shape=signed(16),
                      multiplier=_RNG.integers(100, 4000, 16),
                      offset=_RNG.integers(-1000, 1000, 16), shift=_RNG.integers(10, 14, 16),
                      low=-128, high=127, datapath="dsp"),
    "lut_table": dict(channels=16, pe=2, input_shape=unsigned(10),
                      multiplier=_RNG.integers(1, 64, 16), offset=_RNG.integers(0, 100, 16),
                      shift=6, low=0, high=15, datapath="lut"),
    "bram_table": dict(channels=1024, pe=2, input_shape=signed(16),
                       multiplier=_RNG.integers(1000, 30000, 1024), offset=1 << 17, shift=18,
                       low=-128, high=127, datapath="dsp", mem_style="bram"),
    "power_of_two": dict(channels=16, pe=4, input_shape=signed(16), multiplier=64, shift=10,
                         low=-128, high=127),
    "mlp_layer": dict(channels=64, pe=8, input_shape=signed(22),
                      multiplier=_RNG.integers(20000, 40000, 64), offset=1 << 23, shift=24,
                      low=-128, high=127),
    "lut_bias_zero_point": dict(channels=8, pe=4, input_shape=unsigned(8), multiplier=45,
                                offset=7, shift=[4, 5, 4, 5, 4, 5, 4, 5], bias=-3,
                                zero_point=5, low=0, high=40, datapath="lut"),
    "xilinx_packed": dict(channels=8, pe=4, input_shape=unsigned(6), multiplier=37,
                          offset=_RNG.integers(0, 100, 8), shift=5, low=0, high=255,
                          datapath="dsp", target="xilinx", primitives="instance"),
    "two_slices": dict(channels=2, pe=2, input_shape=signed(24), multiplier=(1 << 20) + 3,
                       offset=1 << 19, shift=20, low=-128, high=127, datapath="dsp"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(_YOSYS_CASES))
def test_slow_estimate_against_yosys(case):
    unit = Requantize(**_YOSYS_CASES[case])
    assert_estimate_matches_yosys(unit, luts_rel=0.25, luts_abs=4, ffs_abs=2)


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(unit=units(), seed=st.integers(0, 2**16))
def test_slow_cocotb_random_configs(unit, seed):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    beats, expected = vectors(unit, 2, seed)
    run_stream_test(unit, beats, expected, seed=seed, valid_prob=0.7, ready_prob=0.5)
