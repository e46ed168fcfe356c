"""Shared control blocks: the stall pipeline (through a small kernel built on it), the fold
counter and the skid buffer, in both tiers."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.control import SkidBuffer, SkidBufferPlan, StallPipeline, fold_counter
from hwgen.resources import Resources
from hwgen.streams import lanes_signature
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test


class DelayAndIndex(wiring.Component):
    """A test kernel on the shared blocks: each beat ``x`` leaves ``depth`` cycles later as
    ``x + fold index`` (the beat's position within a fold of ``fold`` beats); with
    ``keep_last_only`` only the last beat of each fold comes out."""

    def __init__(self, depth, fold, keep_last_only=False):
        self.depth, self.fold, self.keep_last_only = depth, fold, keep_last_only
        super().__init__({"i": In(lanes_signature(unsigned(8), 1)),
                          "o": Out(lanes_signature(unsigned(9), 1))})

    def elaborate(self, platform):
        m = Module()
        index = Signal(range(max(2, self.fold)), name="index_q")
        emit = (index == self.fold - 1) if self.keep_last_only else None
        control = StallPipeline(m, depth=self.depth, i=self.i, o=self.o, emit=emit)
        counter, _ = fold_counter(m, self.fold, self.i.valid & control.advance)
        values = control.carry(self.i.payload[0] + counter, "value")
        indices = control.carry(counter, "index")
        if self.depth > 1:
            m.d.comb += index.eq(indices[-2])
        m.d.comb += self.o.payload[0].eq(values[-1])
        return m


def _expected(x, fold, keep_last_only):
    index = np.arange(len(x)) % fold
    y = x + index
    return y[index == fold - 1] if keep_last_only else y


@pytest.mark.parametrize("depth, fold, keep_last_only", [
    (1, 1, False), (3, 4, False), (2, 3, True), (4, 1, True)])
def test_stall_pipeline_never_loses_a_beat(depth, fold, keep_last_only):
    x = np.random.default_rng(depth).integers(0, 200, size=(4 * fold * 3, 1))
    expected = _expected(x[:, 0], fold, keep_last_only).reshape(-1, 1)
    unit = DelayAndIndex(depth, fold, keep_last_only)
    out, report = run_stream_sim(unit, x, expected=expected, n_out=len(expected), seed=depth,
                                 valid_prob=0.6, ready_prob=0.5)
    np.testing.assert_array_equal(out, expected)


def test_stall_pipeline_full_rate_and_latency():
    x = np.arange(40).reshape(-1, 1)
    unit = DelayAndIndex(3, 5)
    _, report = run_stream_sim(unit, x, expected=_expected(x[:, 0], 5, False).reshape(-1, 1),
                               valid_prob=1.0, ready_prob=1.0)
    first = report["in_cycles"][0]
    assert report["in_cycles"] == list(range(first, first + 40))
    assert report["out_cycles"] == [c + 3 for c in report["in_cycles"]]


def test_stall_pipeline_errors():
    stream = lanes_signature(unsigned(1), 1).create()
    with pytest.raises(ValueError, match=r"depth must be an integer >= 1, not 0"):
        StallPipeline(None, depth=0, i=stream, o=stream)
    with pytest.raises(TypeError, match=r"exactly one of o and out_ready"):
        StallPipeline(None, depth=1, i=stream)
    with pytest.raises(TypeError, match=r"needs i or take"):
        StallPipeline(None, depth=1, out_ready=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skid_buffer_amaranth(seed):
    x = np.random.default_rng(seed).integers(-8, 8, size=(60, 3))
    buffer = SkidBuffer(elem_shape=signed(4), lanes=3)
    out, _ = run_stream_sim(buffer, x, expected=x, seed=seed, valid_prob=0.7, ready_prob=0.4)
    np.testing.assert_array_equal(out, x)


def test_skid_buffer_full_rate():
    x = np.arange(30).reshape(-1, 1)
    _, report = run_stream_sim(SkidBuffer(elem_shape=unsigned(5)), x, expected=x,
                               valid_prob=1.0, ready_prob=1.0)
    first = report["in_cycles"][0]
    assert report["in_cycles"] == list(range(first, first + 30))
    assert report["out_cycles"] == [c + SkidBuffer.latency for c in report["in_cycles"]]
    assert SkidBufferPlan(elem_shape=unsigned(5), lanes=2).estimate() == Resources(luts=12, ffs=22)


def test_skid_buffer_cocotb():
    x = np.random.default_rng(5).integers(0, 16, size=(50, 2))
    report = run_stream_test(SkidBuffer(elem_shape=unsigned(4), lanes=2), x, x, seed=5,
                             valid_prob=0.7, ready_prob=0.5)
    assert report["out_beats"] == 50
