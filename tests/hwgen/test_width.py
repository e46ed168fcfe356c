# amaranth: UnusedElaboratable=no
"""WidthConverter in both tiers: Amaranth's simulator (property tests over lane ratios, exact
cycle counts) and cocotb on Verilator with random back-pressure."""

import math

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st

from hwgen.resources import Resources
from hwgen.shapes import shape_range
from hwgen.plumbing.width import WidthConverter
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test


def frame_elements(shape, elems, frames, seed):
    lo, hi = shape_range(shape)
    values = np.random.default_rng(seed).integers(lo, hi + 1, size=frames * elems, dtype=np.int64)
    values[0], values[-1] = lo, hi
    return values


def vectors(converter, frames, seed):
    """Input beats and the expected output beats for ``frames`` frames."""
    values = frame_elements(converter.elem_shape, converter.elems_per_frame, frames, seed)
    beats = values.reshape(-1, converter.in_lanes)
    return beats, golden.repack(beats, converter.out_lanes)


def assert_exact_cycles(report, converter, frames):
    """Without stalls: the busier side moves one beat per cycle, output beat ``n`` leaves
    ``output_offset(n)`` cycles after the first input beat, and ``frames`` frames take
    ``frames * cycles_per_frame + 1`` cycles from the first input beat."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    first = in_cycles[0]
    assert report["latency"] == converter.latency
    assert out_cycles == [first + converter.output_offset(n) for n in range(len(out_cycles))]
    busy = in_cycles if converter.in_lanes < converter.out_lanes else out_cycles
    assert busy == list(range(busy[0], busy[0] + len(busy)))          # no bubbles
    assert report["cycles"] == first + frames * converter.cycles_per_frame + 1


# --- parameters and golden model ------------------------------------------------------------

def test_golden_repack():
    beats = np.arange(12).reshape(4, 3)
    assert golden.repack(beats, 4).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ValueError, match=r"12 elements do not fill beats of out_lanes=5"):
        golden.repack(beats, 5)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"elems_per_frame": 48}, ValueError,
     r"elems_per_frame=48 must be a multiple of in_lanes=49 and out_lanes=16, i\.e\. of 784"),
    ({"elems_per_frame": 0}, ValueError, r"elems_per_frame must be an integer >= 1, not 0"),
    ({"in_lanes": 0}, ValueError, r"in_lanes must be an integer >= 1, not 0"),
    ({"out_lanes": 2.0}, TypeError, r"out_lanes must be an integer >= 1, not 2\.0"),
    ({"elem_shape": None}, TypeError, r"elem_shape must be an Amaranth shape such as signed\(8\), not None"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(elem_shape=signed(8), in_lanes=49, out_lanes=16, elems_per_frame=784)
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        WidthConverter(**params)


@pytest.mark.parametrize("in_lanes, out_lanes, elems, expected", [
    # in_beats, out_beats, cycles_per_frame, latency, chunk, buffer_elems
    (49, 16, 784, (16, 49, 49, 1, 1, 64)),
    (16, 49, 784, (49, 16, 49, 4, 1, 64)),
    (4, 16, 32, (8, 2, 8, 4, 4, 16)),
    (16, 4, 32, (2, 8, 8, 1, 4, 16)),
    (6, 4, 24, (4, 6, 6, 1, 2, 8)),
    (8, 8, 8, (1, 1, 1, 1, 8, 8)),
])
def test_properties(in_lanes, out_lanes, elems, expected):
    conv = WidthConverter(elem_shape=unsigned(3), in_lanes=in_lanes, out_lanes=out_lanes,
                          elems_per_frame=elems)
    assert (conv.in_beats_per_frame, conv.out_beats_per_frame, conv.cycles_per_frame,
            conv.latency, conv.chunk, conv.buffer_elems) == expected
    assert conv.estimate()["ffs"] >= conv.buffer_elems * 3
    estimate = conv.estimate()
    assert isinstance(estimate, Resources) and estimate.bram18 == estimate.dsp == 0


def test_dividing_ratios_cost_less():
    """One lane count dividing the other needs no barrel shift: a fraction of the LUTs."""
    def luts(i, o):
        return WidthConverter(elem_shape=unsigned(8), in_lanes=i, out_lanes=o,
                              elems_per_frame=math.lcm(i, o)).estimate()["luts"]
    assert luts(48, 16) * 3 < luts(49, 16)
    assert luts(16, 48) * 3 < luts(16, 49)


# --- Amaranth tier ----------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(in_lanes=st.integers(1, 12), out_lanes=st.integers(1, 12), multiple=st.integers(1, 3),
       frames=st.integers(1, 4), width=st.integers(1, 9), is_signed=st.booleans(),
       seed=st.integers(0, 2**16), valid_prob=st.sampled_from([0.3, 0.7, 1.0]),
       ready_prob=st.sampled_from([0.3, 0.7, 1.0]))
def test_amaranth_random(in_lanes, out_lanes, multiple, frames, width, is_signed, seed,
                         valid_prob, ready_prob):
    shape = signed(width) if is_signed else unsigned(width)
    conv = WidthConverter(elem_shape=shape, in_lanes=in_lanes, out_lanes=out_lanes,
                          elems_per_frame=multiple * math.lcm(in_lanes, out_lanes))
    beats, expected = vectors(conv, frames, seed)
    run_stream_sim(conv, beats, expected=expected, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


@pytest.mark.parametrize("in_lanes, out_lanes, elems", [
    (49, 16, 784), (16, 49, 784), (4, 16, 16), (16, 4, 16), (3, 5, 15), (5, 3, 30), (7, 7, 7),
    (1, 6, 6), (6, 1, 6)])
def test_amaranth_exact_cycles(in_lanes, out_lanes, elems):
    conv = WidthConverter(elem_shape=signed(5), in_lanes=in_lanes, out_lanes=out_lanes,
                          elems_per_frame=elems)
    frames = 100
    beats, expected = vectors(conv, frames, seed=in_lanes * out_lanes)
    _, report = run_stream_sim(conv, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, conv, frames)


def test_amaranth_slow_consumer_keeps_frames_apart():
    """A consumer taking one beat in five: every output beat holds the right elements."""
    conv = WidthConverter(elem_shape=unsigned(8), in_lanes=5, out_lanes=3, elems_per_frame=15)
    beats, expected = vectors(conv, 20, seed=1)
    run_stream_sim(conv, beats, expected=expected, seed=2, valid_prob=1.0, ready_prob=0.2)


# --- cocotb on Verilator ------------------------------------------------------------------------

@pytest.mark.parametrize("in_lanes, out_lanes, elems, shape", [
    (49, 16, 784, signed(8)),
    (3, 8, 48, unsigned(4)),
])
def test_cocotb_backpressure(in_lanes, out_lanes, elems, shape):
    conv = WidthConverter(elem_shape=shape, in_lanes=in_lanes, out_lanes=out_lanes,
                          elems_per_frame=elems)
    frames = 100 if elems < 100 else 12
    beats, expected = vectors(conv, frames, seed=in_lanes)
    run_stream_test(conv, beats, expected, seed=in_lanes, valid_prob=0.7, ready_prob=0.5)
    report = run_stream_test(conv, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, conv, frames)
