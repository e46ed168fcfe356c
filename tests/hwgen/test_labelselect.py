# amaranth: UnusedElaboratable=no
"""LabelSelect in both tiers: Amaranth's simulator (property tests with many ties, exact
cycle counts for back-to-back vectors) and cocotb on Verilator with random back-pressure."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st

from hwgen.kernels.labelselect import LabelSelect
from hwgen.resources import Resources
from hwgen.shapes import shape_range
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test


def stream_vectors(unit, vectors, seed):
    """Input beats and expected output beats for ``vectors`` vectors, with extremes and
    all-equal vectors (ties everywhere)."""
    lo, hi = shape_range(unit.input_shape)
    rng = np.random.default_rng(seed)
    values = rng.integers(lo, hi + 1, size=(vectors, unit.channels), dtype=np.int64)
    values[0] = lo
    values[-1] = hi
    if vectors > 2:
        values[1] = rng.permutation(np.linspace(lo, hi, unit.channels).astype(np.int64))
    return values.reshape(-1, unit.pe), golden.label_select(values, unit.k)


def assert_exact_cycles(report, unit):
    """Without stalls: one input beat per cycle with no bubble between vectors, and vector
    ``n``'s result ``output_offset(n)`` cycles after the first input beat."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    first = in_cycles[0]
    assert report["latency"] == unit.latency
    assert in_cycles == list(range(first, first + len(in_cycles)))
    assert out_cycles == [first + unit.output_offset(n) for n in range(len(out_cycles))]


# --- golden model and parameters ------------------------------------------------------------

def test_golden_label_select():
    values = np.array([[3, 5, 5, 1], [0, 0, 0, 0], [-7, -2, -9, -2]])
    assert golden.label_select(values, 3).tolist() == [[1, 2, 0], [0, 1, 2], [1, 3, 0]]
    assert golden.label_select(values).tolist() == np.argmax(values, axis=1)[:, None].tolist()
    wide = np.array([[2**70, -2**70, 2**70 + 1]], dtype=object)
    assert golden.label_select(wide, 2).tolist() == [[2, 0]]
    extremes = np.array([[np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0]])
    assert golden.label_select(extremes, 3).tolist() == [[1, 2, 0]]
    with pytest.raises(ValueError, match=r"k=5 must be in 1\.\.C for values of shape \(3, 4\)"):
        golden.label_select(values, 5)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"pe": 4}, ValueError, r"pe=4 must divide channels=10; valid pe: \[1, 2, 5, 10\]"),
    ({"k": 11}, ValueError, r"k=11 must be at most channels=10"),
    ({"k": 0}, ValueError, r"k must be an integer >= 1, not 0"),
    ({"channels": 0}, ValueError, r"channels must be an integer >= 1, not 0"),
    ({"vectors": -1}, ValueError, r"vectors must be an integer >= 1, not -1"),
    ({"input_shape": signed(65)}, ValueError, r"input_shape must be 1 to 64 bits wide, not 65"),
    ({"input_shape": "int8"}, TypeError, r"input_shape must be an Amaranth shape such as signed\(8\), not 'int8'"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(channels=10, pe=2, input_shape=signed(8), k=3)
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        LabelSelect(**params)


def test_properties():
    unit = LabelSelect(channels=10, pe=2, input_shape=signed(16), k=3, vectors=4)
    assert unit.index_shape == unsigned(4)
    assert (unit.fold, unit.candidates, unit.latency) == (5, 2, 7)
    assert (unit.in_beats_per_frame, unit.out_beats_per_frame, unit.cycles_per_frame) == (20, 4, 20)
    assert unit.o.payload.shape().length == 3
    assert [LabelSelect(channels=c, input_shape=unsigned(1)).index_shape.width
            for c in (1, 2, 3, 16, 17)] == [1, 1, 2, 4, 5]
    estimate = unit.estimate()
    assert isinstance(estimate, Resources) and estimate.bram18 == estimate.dsp == 0


# --- Amaranth tier ----------------------------------------------------------------------------

@st.composite
def configs(draw):
    channels = draw(st.integers(1, 16))
    pe = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    k = draw(st.integers(1, min(channels, 6)))
    width = draw(st.integers(1, 10))          # narrow values: many ties
    shape = signed(width) if draw(st.booleans()) else unsigned(width)
    return LabelSelect(channels=channels, pe=pe, input_shape=shape, k=k,
                       vectors=draw(st.integers(1, 3)))


@settings(max_examples=30, deadline=None)
@given(unit=configs(), seed=st.integers(0, 2**16), valid_prob=st.sampled_from([0.4, 1.0]),
       ready_prob=st.sampled_from([0.3, 0.8, 1.0]))
def test_amaranth_random(unit, seed, valid_prob, ready_prob):
    beats, expected = stream_vectors(unit, 6 * unit.vectors, seed)
    run_stream_sim(unit, beats, expected=expected, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


@pytest.mark.parametrize("channels, pe, k, shape", [
    (10, 1, 1, signed(8)), (10, 2, 3, unsigned(3)), (16, 16, 4, signed(5)), (12, 4, 12, unsigned(2)),
    (1, 1, 1, signed(4))])
def test_amaranth_exact_cycles(channels, pe, k, shape):
    unit = LabelSelect(channels=channels, pe=pe, input_shape=shape, k=k, vectors=2)
    frames = 60                                  # 120 back-to-back vectors
    beats, expected = stream_vectors(unit, frames * unit.vectors, seed=channels + pe + k)
    _, report = run_stream_sim(unit, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, unit)
    first = report["in_cycles"][0]
    assert report["cycles"] == first + frames * unit.cycles_per_frame + unit.latency - unit.fold + 1


# --- cocotb on Verilator ------------------------------------------------------------------------

@pytest.mark.parametrize("channels, pe, k, shape", [
    (10, 2, 3, signed(16)),
    (16, 16, 5, unsigned(3)),
])
def test_cocotb_backpressure(channels, pe, k, shape):
    unit = LabelSelect(channels=channels, pe=pe, input_shape=shape, k=k, vectors=3)
    beats, expected = stream_vectors(unit, 300, seed=channels)
    run_stream_test(unit, beats, expected, seed=pe, valid_prob=0.7, ready_prob=0.4)
    report = run_stream_test(unit, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, unit)
