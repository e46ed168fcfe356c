# amaranth: UnusedElaboratable=no
"""Compressor-tree components (Popcount, WeightedSum): latency and estimates from their plans,
both architectures in Amaranth's simulator, errors.

The cocotb/Verilator tier is in test_popcount_stream.py."""

import random

import numpy as np
import pytest
from amaranth.hdl import Shape, signed, unsigned
from hypothesis import given, settings, strategies as st

from hwgen.arith.popcount import CompressorTree, Popcount, Term, WeightedSum
from hwgen.shapes import shape_range
from sim import golden
from sim.cores import simulate_core

ARCHITECTURES = ("generic", "xilinx")


# --- latency and estimates from the plans -------------------------------------------------------

@pytest.mark.parametrize("n, pipeline_every, expected", [
    (1, 1, 0),     # nothing to add: no logic stage, no register
    (256, 0, 0),
    (256, 1, None), (256, 3, None),
])
def test_latency_follows_the_plan(n, pipeline_every, expected):
    for target in ARCHITECTURES:
        dut = Popcount(n, pipeline_every=pipeline_every, target=target)
        stages = dut.plan().logic_stages
        assert dut.latency == (expected if expected is not None else stages // pipeline_every)


def test_auto_target_pads_to_one_latency():
    dut = Popcount(256, pipeline_every=1)
    assert dut.latency == max(dut.plan(t).logic_stages for t in ARCHITECTURES)


def test_xilinx_estimate_is_below_generic():
    dut = Popcount(1024, target="auto")
    assert dut.estimate("xilinx")["luts"] <= 0.6 * 1024
    assert dut.estimate("generic")["luts"] <= 1.1 * 1024


# --- popcount in the Amaranth simulator -------------------------------------------------------

@pytest.mark.parametrize("target", ARCHITECTURES)
@pytest.mark.parametrize("pipeline_every", [0, 1, 2])
def test_popcount_exhaustive_up_to_12(target, pipeline_every):
    for n in range(1, 13):
        dut = Popcount(n, pipeline_every=pipeline_every, target=target)
        words = list(range(1 << n))
        bits = (np.array(words)[:, None] >> np.arange(n)) & 1
        assert simulate_core(dut, words) == list(golden.popcount(bits)), f"n={n}"


@settings(max_examples=12, deadline=None)
@given(n=st.integers(13, 4096), target=st.sampled_from(ARCHITECTURES),
       pipeline_every=st.integers(0, 3), seed=st.integers(0, 2**32 - 1), density=st.floats(0, 1))
def test_popcount_random(n, target, pipeline_every, seed, density):
    rng = np.random.default_rng(seed)
    bits = (rng.random((16, n)) < density).astype(np.int64)
    bits[0] = 0
    bits[1] = 1          # the extremes: all zeros, all ones
    words = [int("".join(map(str, row[::-1])), 2) for row in bits]
    dut = Popcount(n, pipeline_every=pipeline_every, target=target)
    assert simulate_core(dut, words) == list(golden.popcount(bits))


# --- weighted sums --------------------------------------------------------------------------

term_strategy = st.builds(
    Term,
    shape=st.builds(lambda sign, width: signed(width) if sign else unsigned(width),
                    st.booleans(), st.integers(1, 9)),
    shift=st.integers(0, 6), negate=st.booleans())


def pack_struct(values, shapes):
    word, offset = 0, 0
    for value, shape in zip(values, shapes):
        width = Shape.cast(shape).width
        word |= (value & ((1 << width) - 1)) << offset
        offset += width
    return word


@settings(max_examples=40, deadline=None)
@given(terms=st.lists(term_strategy, min_size=1, max_size=24), target=st.sampled_from(ARCHITECTURES),
       pipeline_every=st.integers(0, 2), seed=st.integers(0, 2**32 - 1))
def test_weighted_sum_random(terms, target, pipeline_every, seed):
    rng = random.Random(seed)
    dut = WeightedSum(terms, pipeline_every=pipeline_every, target=target)
    ranges = [shape_range(term.shape) for term in dut.terms]
    rows = [[lo for lo, _ in ranges], [hi for _, hi in ranges]]          # the extremes
    rows += [[rng.randint(lo, hi) for lo, hi in ranges] for _ in range(20)]
    expected = golden.weighted_sum(np.array(rows, dtype=object), [t.shift for t in dut.terms],
                                   [t.negate for t in dut.terms])
    shapes = [term.shape for term in dut.terms]
    got = simulate_core(dut, [pack_struct(row, shapes) for row in rows])
    assert got == list(expected)
    lo, hi = min(expected), max(expected)
    out_lo, out_hi = shape_range(dut.o.shape())
    assert out_lo <= lo and hi <= out_hi


def test_weighted_sum_output_shape_is_exact():
    dut = WeightedSum([Term(signed(8)), Term(signed(8), negate=True)])
    assert dut.o.shape() == signed(9)      # -128 - 127 .. 127 + 128: -255 .. 255
    dut = WeightedSum([unsigned(4)] * 3)
    assert dut.o.shape() == unsigned(6)    # 0 .. 45


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"n": 0}, ValueError, r"n must be an integer >= 1, not 0"),
    ({"n": -3}, ValueError, r"n must be an integer >= 1, not -3"),
    ({"n": 2.5}, TypeError, r"n must be an integer >= 1, not 2\.5"),
    ({"n": 8, "target": "altera"}, ValueError,
     r"target must be one of 'auto', 'generic', 'xilinx', not 'altera'"),
    ({"n": 8, "pipeline_every": -1}, ValueError,
     r"pipeline_every must be an integer >= 0, not -1"),
    ({"n": 8, "primitives": "vhdl"}, ValueError, r"primitives must be one of .*, not 'vhdl'"),
    ({"n": 8, "final_adder": "quaternary"}, ValueError, r"final_adder must be one of .*, not 'quaternary'"),
])
def test_popcount_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Popcount(**kwargs)


def test_weighted_sum_errors():
    with pytest.raises(ValueError, match=r"terms must hold at least one term"):
        WeightedSum([])
    with pytest.raises(ValueError, match=r"terms\[1\]\.shift must be an integer >= 0, not -2"):
        WeightedSum([Term(unsigned(2)), Term(unsigned(2), shift=-2)])
    with pytest.raises(TypeError, match=r"terms\[0\]\.shape must be an Amaranth shape, not 'int8'"):
        WeightedSum([Term("int8")])


def test_is_a_component():
    assert isinstance(Popcount(4), CompressorTree)
