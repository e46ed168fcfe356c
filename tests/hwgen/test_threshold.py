# amaranth: UnusedElaboratable=no
"""Thresholding units in both tiers: Amaranth's simulator (property tests, configuration
writes) and cocotb on Verilator with random back-pressure."""

import random

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from hwgen.shapes import shape_range
from hwgen.kernels.threshold import (
    BinarySearchThreshold, Threshold, UnrolledThreshold, check_thresholds)
from sim import golden
from sim.amaranth_sim import config_write_read, run_stream_sim, stream_get, stream_put
from sim.streams import run_stream_test

UNITS = {"binary": BinarySearchThreshold, "unrolled": UnrolledThreshold}


@st.composite
def configs(draw, max_channels=8, max_t=40):
    channels = draw(st.integers(1, max_channels))
    pe = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    width = draw(st.integers(1, 32))
    shape = signed(width) if draw(st.booleans()) else unsigned(width)
    lo, hi = shape_range(shape)
    count = draw(st.integers(1, max_t))
    rows = 1 if draw(st.booleans()) else channels
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # thresholds around and beyond the input range, with duplicates
    pool = np.unique(np.concatenate([[lo - 5, lo, lo + 1, hi - 1, hi, hi + 1, hi + 7],
                                     rng.integers(lo, hi + 1, size=count)]))
    thresholds = np.sort(rng.choice(pool, size=(rows, count)), axis=1)
    bias = draw(st.integers(-70, 70))
    return dict(channels=channels, pe=pe, input_shape=shape, thresholds=thresholds, bias=bias,
                seed=seed)


def stream_vectors(config, vectors):
    """Input beats and expected output beats for ``vectors`` vectors, extremes included."""
    rng = np.random.default_rng(config["seed"])
    lo, hi = shape_range(config["input_shape"])
    values = rng.integers(lo, hi + 1, size=(vectors, config["channels"]), dtype=np.int64)
    values[0], values[-1] = lo, hi
    thresholds = config["thresholds"]
    points = np.unique(np.clip(thresholds, lo, hi))      # every threshold value itself
    values.flat[:len(points)] = points[:values.size]
    expected = golden.threshold(values, thresholds, config["bias"])
    pe = config["pe"]
    return values.reshape(-1, pe), expected.reshape(-1, pe)


def build(impl, config, **kwargs):
    params = {k: v for k, v in config.items() if k != "seed"}
    return UNITS[impl](**params, **kwargs)


# --- golden model and validation -----------------------------------------------------------------

def test_golden_threshold():
    thresholds = np.array([[-1, 0, 0, 3], [5, 6, 7, 8]])
    values = np.array([[0, 7], [-2, 100]])
    assert golden.threshold(values, thresholds, bias=-2).tolist() == [[1, 1], [-2, 2]]
    assert golden.threshold(values, thresholds[:1]).tolist() == [[3, 4], [0, 4]]


@pytest.mark.parametrize("thresholds, pattern", [
    ([[0, 2, 1]], r"non-decreasing along each channel; thresholds\[0\] falls at index 2: 2 then 1"),
    ([[0, 1], [3, 2]], r"thresholds\[1\] falls at index 1: 3 then 2"),
    ([[0.5, 1.0]], r"thresholds must be integers; thresholds\[0, 0\] is 0\.5"),
    ([[0, np.inf]], r"thresholds must be integers; thresholds\[0, 1\] is inf"),
    ([["a", "b"]], r"thresholds must be an integer array, not dtype <U1"),
    ([[0, 1], [0, 1], [0, 1]], r"thresholds must have shape \(2, T\) .* or \(1, T\) .* not \(3, 2\)"),
    ([1, 2], r"thresholds must have shape \(2, T\) .* not \(2,\)"),
    (np.array([[0, 2**70]], dtype=object), r"within \+-2\*\*62; thresholds\[0, 1\] is 1180591620717411303424"),
])
def test_threshold_errors(thresholds, pattern):
    with pytest.raises(ValueError, match=pattern):
        BinarySearchThreshold(channels=2, input_shape=signed(8), thresholds=thresholds)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"channels": 6, "pe": 4}, ValueError, r"pe=4 must divide channels=6; valid pe: \[1, 2, 3, 6\]"),
    ({"channels": 0}, ValueError, r"channels must be an integer >= 1, not 0"),
    ({"input_shape": signed(33)}, ValueError, r"input_shape must be 1 to 32 bits wide, not 33"),
    ({"input_shape": "int8"}, TypeError, r"input_shape must be an Amaranth shape such as signed\(8\), not 'int8'"),
    ({"bias": 1.5}, TypeError, r"bias must be an integer, not 1\.5"),
    ({"mem_style": "uram"}, ValueError, r"mem_style must be one of 'auto', 'registers', 'lutram', 'bram', not 'uram'"),
    ({"vectors": 0}, ValueError, r"vectors must be an integer >= 1, not 0"),
])
@pytest.mark.parametrize("unit", [BinarySearchThreshold, UnrolledThreshold])
def test_parameter_errors(unit, kwargs, error, pattern):
    params = dict(channels=6, pe=2, input_shape=unsigned(4), thresholds=[[1, 2, 3]])
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        unit(**params)


def test_other_errors():
    with pytest.raises(ValueError, match=r"runtime_writable=True is supported by BinarySearchThreshold only"):
        UnrolledThreshold(channels=1, input_shape=unsigned(4), thresholds=[[1]], runtime_writable=True)
    with pytest.raises(ValueError, match=r"impl must be one of 'auto', 'binary', 'unrolled', not 'tree'"):
        Threshold(impl="tree", channels=1, input_shape=unsigned(4), thresholds=[[1]])
    unit = BinarySearchThreshold(channels=4, pe=2, input_shape=unsigned(4), thresholds=[[1, 2, 3]])
    with pytest.raises(ValueError, match=r"channel must be in 0\.\.3, not 4"):
        unit.config_address(4, 0)
    with pytest.raises(ValueError, match=r"index must be in 0\.\.2, not 3"):
        unit.config_address(0, 3)


def test_out_of_range_thresholds_are_clamped():
    clamped = check_thresholds([[-300, -128, 5, 127, 128, 1000]], 1, signed(8))
    assert clamped.tolist() == [[-128, -128, 5, 127, 128, 128]]


def test_shapes_and_counts():
    unit = BinarySearchThreshold(channels=8, pe=4, input_shape=signed(8), thresholds=np.zeros((8, 5)),
                                 bias=-2, vectors=3)
    assert unit.output_shape == signed(3)           # -2 .. 3
    assert (unit.levels, unit.latency, unit.fold, unit.cycles_per_frame) == (3, 4, 2, 6)
    assert BinarySearchThreshold(channels=1, input_shape=unsigned(3), thresholds=[[0] * 7],
                                 bias=1).output_shape == unsigned(4)   # 1 .. 8


def test_tree_positions_cover_every_entry_once():
    for levels in range(1, 9):
        seen = {BinarySearchThreshold.tree_position(index, levels) for index in range((1 << levels) - 1)}
        assert seen == {(s, p) for s in range(levels) for p in range(1 << s)}


def test_auto_picks_binary_for_many_thresholds():
    thresholds = np.sort(np.random.default_rng(0).integers(-2**15, 2**15, size=(64, 255)), axis=1)
    unit = Threshold(channels=64, pe=4, input_shape=signed(16), thresholds=thresholds)
    assert isinstance(unit, BinarySearchThreshold)
    assert unit.estimate()["luts"] * 10 <= UnrolledThreshold(
        channels=64, pe=4, input_shape=signed(16), thresholds=thresholds).estimate()["luts"]


# --- Amaranth tier ----------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(config=configs(), impl=st.sampled_from(sorted(UNITS)),
       mem_style=st.sampled_from(["auto", "registers", "lutram", "bram"]))
def test_amaranth_random(config, impl, mem_style):
    unit = build(impl, config, mem_style=mem_style, vectors=3)
    beats, expected = stream_vectors(config, 6)
    run_stream_sim(unit, beats, expected=expected, seed=config["seed"], valid_prob=0.7, ready_prob=0.6)


@pytest.mark.parametrize("impl", sorted(UNITS))
def test_amaranth_latency_and_throughput(impl):
    config = dict(channels=8, pe=2, input_shape=signed(9),
                  thresholds=np.sort(np.random.default_rng(1).integers(-300, 300, size=(8, 13)), axis=1),
                  bias=3, seed=4)
    unit = build(impl, config, vectors=25)
    beats, expected = stream_vectors(config, 100)        # 4 frames of 25 vectors
    _, report = run_stream_sim(unit, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert report["latency"] == unit.latency
    first = report["in_cycles"][0]
    assert report["in_cycles"] == list(range(first, first + len(beats)))
    assert report["out_cycles"] == [c + unit.latency for c in report["in_cycles"]]
    assert report["cycles"] == first + 4 * unit.cycles_per_frame + unit.latency


def _config_write_sim(unit, writes, beats_before, beats_after, seed):
    """Stream ``beats_before``; once every output is out, write (address, value) pairs on
    ``cfg`` and read each back; stream ``beats_after`` without a reset. Outputs keep random
    ready stalls throughout. Returns the outputs and the read-back values."""
    rng = random.Random(seed)
    outputs, readback = [], []
    total = len(beats_before) + len(beats_after)
    drained = [False]

    async def producer(ctx):
        for beat in beats_before:
            await stream_put(ctx, unit.i, [int(v) for v in beat])
        while len(outputs) < len(beats_before):
            await ctx.tick()
        readback.extend(await config_write_read(ctx, unit.cfg, writes))
        drained[0] = True
        for beat in beats_after:
            await stream_put(ctx, unit.i, [int(v) for v in beat])

    async def consumer(ctx):
        while len(outputs) < total:
            if rng.random() < 0.3:
                await ctx.tick()
                continue
            outputs.append(list(await stream_get(ctx, unit.o)))

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-8 * 20 * (total + len(writes) * 2 + 100))
    assert drained[0] and len(outputs) == total
    return np.array(outputs), readback


@pytest.mark.parametrize("mem_style", ["registers", "lutram", "bram"])
@pytest.mark.parametrize("shared", [False, True])
def test_amaranth_config_writes_between_frames(mem_style, shared):
    rng = np.random.default_rng(7)
    channels, pe = 6, 3
    old = np.sort(rng.integers(-40, 40, size=(1 if shared else channels, 11)), axis=1)
    new = np.sort(rng.integers(-40, 40, size=old.shape), axis=1)
    unit = BinarySearchThreshold(channels=channels, pe=pe, input_shape=signed(7), thresholds=old,
                                 bias=-4, mem_style=mem_style, runtime_writable=True)
    writes = []
    for row in range(old.shape[0]):
        for lane_channel in ([row] if not shared else range(pe)):     # one copy per lane
            for index in range(old.shape[1]):
                writes.append((unit.config_address(lane_channel, index), new[row, index]))
    values = rng.integers(-64, 64, size=(16, channels))
    before, after = values[:8], values[8:]
    outputs, readback = _config_write_sim(unit, writes, before.reshape(-1, pe), after.reshape(-1, pe), seed=3)
    assert readback == [value for _, value in writes]
    expected = np.concatenate([golden.threshold(before, old, -4), golden.threshold(after, new, -4)])
    assert outputs.tolist() == expected.reshape(-1, pe).tolist()


# --- cocotb on Verilator ------------------------------------------------------------------------

COCOTB_CONFIGS = [
    dict(channels=8, pe=2, input_shape=signed(16), rows=8, count=15, bias=-3, mem_style="auto"),
    dict(channels=4, pe=4, input_shape=unsigned(5), rows=1, count=40, bias=0, mem_style="registers"),
    dict(channels=12, pe=3, input_shape=signed(32), rows=12, count=3, bias=100, mem_style="bram"),
]


def cocotb_config(spec, seed):
    spec = dict(spec)
    rows, count = spec.pop("rows"), spec.pop("count")
    lo, hi = shape_range(spec["input_shape"])
    rng = np.random.default_rng(seed)
    thresholds = np.sort(rng.integers(max(lo, -2**40) - 2, min(hi, 2**40) + 3, size=(rows, count)), axis=1)
    mem_style = spec.pop("mem_style")
    return dict(spec, thresholds=thresholds, seed=seed), mem_style


@pytest.mark.parametrize("impl", sorted(UNITS))
@pytest.mark.parametrize("index", range(len(COCOTB_CONFIGS)))
def test_cocotb_backpressure(impl, index):
    config, mem_style = cocotb_config(COCOTB_CONFIGS[index], seed=index)
    unit = build(impl, config, mem_style=mem_style, vectors=5)
    beats, expected = stream_vectors(config, 120)
    run_stream_test(unit, beats, expected, seed=index, valid_prob=0.7, ready_prob=0.6)
    report = run_stream_test(unit, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert report["latency"] == unit.latency
    assert report["out_cycles"] == [c + unit.latency for c in report["in_cycles"]]


@pytest.mark.slow
@pytest.mark.parametrize("impl", sorted(UNITS))
@pytest.mark.parametrize("index", range(len(COCOTB_CONFIGS)))
def test_cocotb_10000_beats(impl, index):
    config, mem_style = cocotb_config(COCOTB_CONFIGS[index], seed=100 + index)
    unit = build(impl, config, mem_style=mem_style)
    vectors = -(-10_000 * config["pe"] // config["channels"])
    beats, expected = stream_vectors(config, vectors)
    assert len(beats) >= 10_000
    run_stream_test(unit, beats, expected, seed=index, valid_prob=0.8, ready_prob=0.7, timeout=1800)


@pytest.mark.parametrize("mem_style", ["registers", "lutram", "bram"])
def test_cocotb_config_writes_mid_stream(mem_style):
    rng = np.random.default_rng(11)
    channels, pe = 8, 4
    old = np.sort(rng.integers(-3000, 3000, size=(channels, 20)), axis=1)
    new = np.sort(rng.integers(-3000, 3000, size=old.shape), axis=1)
    unit = BinarySearchThreshold(channels=channels, pe=pe, input_shape=signed(12), thresholds=old,
                                 bias=1, mem_style=mem_style, runtime_writable=True)
    width = unit.cfg.wdata.shape().width
    writes = [(unit.config_address(c, i), int(new[c, i]) & ((1 << width) - 1))
              for c in range(channels) for i in range(old.shape[1])]
    values = rng.integers(-2048, 2048, size=(60, channels))
    before, after = values[:30], values[30:]
    expected = np.concatenate([golden.threshold(before, old, 1), golden.threshold(after, new, 1)])
    split = before.size // pe
    run_stream_test(unit, values.reshape(-1, pe), expected.reshape(-1, pe), seed=5,
                    valid_prob=0.8, ready_prob=0.6,
                    config={"after_inputs": split, "after_outputs": split, "writes": writes})
