# amaranth: UnusedElaboratable=no
"""StreamFIFO in both tiers: Amaranth's simulator (property tests, level port, exact cycle
counts) and cocotb on Verilator with random back-pressure."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from hwgen.export.verilog import component_verilog
from hwgen.plumbing.fifo import StreamFIFO
from hwgen.resources import Resources
from hwgen.shapes import shape_range
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test


def random_beats(shape, lanes, beats, seed):
    lo, hi = shape_range(shape)
    values = np.random.default_rng(seed).integers(lo, hi + 1, size=(beats, lanes), dtype=np.int64)
    values[0], values[-1] = lo, hi
    return values


def assert_exact_cycles(report, fifo, beats):
    """Without stalls: a beat accepted every ``cycles_per_beat`` cycles, each leaving
    ``latency`` cycles after it entered."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    first, step = in_cycles[0], fifo.cycles_per_beat
    assert report["latency"] == fifo.latency
    assert in_cycles == list(range(first, first + step * beats, step))
    assert out_cycles == [c + fifo.latency for c in in_cycles]


# --- parameters and estimates ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"depth": 0}, ValueError, r"depth must be an integer in 1\.\.1048576, not 0"),
    ({"depth": 1 << 21}, ValueError, r"depth must be an integer in 1\.\.1048576, not 2097152"),
    ({"depth": 4.0}, TypeError, r"depth must be an integer in 1\.\.1048576, not 4\.0"),
    ({"depth": True}, TypeError, r"depth must be an integer in 1\.\.1048576, not True"),
    ({"lanes": 0}, ValueError, r"lanes must be an integer >= 1, not 0"),
    ({"elem_shape": "int8"}, TypeError, r"elem_shape must be an Amaranth shape such as signed\(8\), not 'int8'"),
    ({"elem_shape": unsigned(0)}, ValueError, r"elem_shape must be 1 bits wide, not 0"),
    ({"mem_style": "uram"}, ValueError, r"mem_style must be one of 'auto', 'registers', 'lutram', 'bram', not 'uram'"),
    ({"beats_per_frame": 0}, ValueError, r"beats_per_frame must be an integer >= 1, not 0"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(elem_shape=signed(8), lanes=2, depth=4)
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        StreamFIFO(**params)


def test_properties():
    fifo = StreamFIFO(elem_shape=signed(3), lanes=5, depth=10, beats_per_frame=7, level=True)
    assert (fifo.width, fifo.storage_depth, fifo.latency, fifo.cycles_per_beat) == (15, 9, 2, 1)
    assert (fifo.cycles_per_frame, fifo.in_beats_per_frame, fifo.out_beats_per_frame) == (7, 7, 7)
    assert fifo.level.shape() == unsigned(4)
    assert [StreamFIFO(elem_shape=1, lanes=1, depth=d).cycles_per_beat for d in (1, 2, 3)] == [2, 2, 1]
    assert [StreamFIFO(elem_shape=1, lanes=1, depth=d).latency for d in (1, 2, 3)] == [1, 2, 2]


@pytest.mark.parametrize("depth, lanes, style", [
    (2, 8, "registers"), (5, 8, "registers"), (6, 8, "lutram"), (65, 8, "lutram"),
    (600, 32, "bram"), (64, 256, "lutram"), (200, 256, "bram")])
def test_auto_style(depth, lanes, style):
    fifo = StreamFIFO(elem_shape=unsigned(4), lanes=lanes, depth=depth)
    assert fifo.mem_style == style
    cost = fifo.estimate()
    assert isinstance(cost, Resources) and cost.dsp == 0
    assert (cost["bram18"] > 0) == (style == "bram") and (cost["lutram"] > 0) == (style == "lutram")


@pytest.mark.parametrize("style, attribute", [
    ("registers", "registers"), ("lutram", "distributed"), ("bram", "block")])
def test_ram_style_attribute(style, attribute):
    fifo = StreamFIFO(elem_shape=unsigned(8), lanes=2, depth=40, mem_style=style)
    assert f'ram_style = "{attribute}"' in component_verilog(fifo, name="fifo")


# --- Amaranth tier ----------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(depth=st.integers(1, 40), lanes=st.integers(1, 4), width=st.integers(1, 12),
       is_signed=st.booleans(), mem_style=st.sampled_from(["auto", "registers", "lutram", "bram"]),
       seed=st.integers(0, 2**16), valid_prob=st.sampled_from([0.3, 0.8, 1.0]),
       ready_prob=st.sampled_from([0.3, 0.8, 1.0]))
def test_amaranth_random(depth, lanes, width, is_signed, mem_style, seed, valid_prob, ready_prob):
    shape = signed(width) if is_signed else unsigned(width)
    fifo = StreamFIFO(elem_shape=shape, lanes=lanes, depth=depth, mem_style=mem_style)
    beats = random_beats(shape, lanes, 50, seed)
    run_stream_sim(fifo, beats, expected=beats, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


@pytest.mark.parametrize("depth", [1, 2, 3, 16, 600])
def test_amaranth_exact_cycles(depth):
    fifo = StreamFIFO(elem_shape=signed(6), lanes=3, depth=depth, beats_per_frame=2)
    frames = 100
    beats = random_beats(signed(6), 3, frames * 2, depth)
    _, report = run_stream_sim(fifo, beats, expected=beats, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, fifo, len(beats))
    if depth >= 3:
        assert report["cycles"] == report["in_cycles"][0] + frames * fifo.cycles_per_frame + fifo.latency


def test_amaranth_level_and_full():
    """With the output stalled the FIFO takes exactly ``depth`` beats, counting them on
    ``level``; then it gives them back in order."""
    depth = 5
    fifo = StreamFIFO(elem_shape=unsigned(8), lanes=1, depth=depth, level=True)
    levels, outputs = [], []

    async def testbench(ctx):
        ctx.set(fifo.i.valid, 1)
        for n in range(depth + 3):
            ctx.set(fifo.i.payload, [n + 1])
            _, _, accepted = await ctx.tick().sample(fifo.i.ready)
            levels.append((accepted, ctx.get(fifo.level)))
            if not accepted:
                break
        ctx.set(fifo.i.valid, 0)
        ctx.set(fifo.o.ready, 1)
        for _ in range(depth + 3):
            _, _, valid, payload = await ctx.tick().sample(fifo.o.valid, fifo.o.payload)
            if valid:
                outputs.append(payload[0])

    sim = Simulator(fifo)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert levels == [(1, n) for n in range(1, depth + 1)] + [(0, depth)]
    assert outputs == list(range(1, depth + 1))


# --- cocotb on Verilator ------------------------------------------------------------------------

@pytest.mark.parametrize("depth, lanes, shape, mem_style", [
    (3, 4, signed(8), "registers"),
    (600, 16, unsigned(5), "bram"),
])
def test_cocotb_backpressure(depth, lanes, shape, mem_style):
    fifo = StreamFIFO(elem_shape=shape, lanes=lanes, depth=depth, mem_style=mem_style)
    beats = random_beats(shape, lanes, 800, depth)
    run_stream_test(fifo, beats, beats, seed=depth, valid_prob=0.7, ready_prob=0.4)
    report = run_stream_test(fifo, beats, beats, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, fifo, len(beats))
