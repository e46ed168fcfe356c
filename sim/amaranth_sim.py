"""Stream kernels in Amaranth's own simulator: the fast tier for unit and property tests.

:func:`run_stream_sim` drives a kernel's ``i``/``o`` streams directly (no AXI4-Stream shell)
with the same random valid gaps and ready stalls, the same checks and the same cycle report as
the cocotb testbench :mod:`sim.stream_tb`::

    out, report = run_stream_sim(kernel, x, seed=1, valid_prob=0.5, ready_prob=0.5)
    np.testing.assert_array_equal(out, golden(x))

:func:`stream_put` and :func:`stream_get` are the building blocks for hand-written async
testbenches (Amaranth 0.5 ``Simulator.add_testbench``).
"""

import random
import typing

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import data
from amaranth.sim import Simulator

from .stream_io import default_max_cycles, make_report, work_cycles
from .streams import beats_to_words, words_to_beats

__all__ = ["stream_put", "stream_get", "config_write_read", "run_stream_sim", "StreamSimResult", "CLOCK_PERIOD"]

CLOCK_PERIOD = 10e-9


def _payload_value(stream):
    payload = stream.payload
    return payload.as_value() if isinstance(payload, data.View) else payload


def _set_payload(ctx, stream, payload):
    if isinstance(payload, (int, np.integer)):
        ctx.set(_payload_value(stream), int(payload))  # a packed word
    elif isinstance(payload, np.ndarray):
        ctx.set(stream.payload, [int(v) for v in payload.tolist()])
    else:
        ctx.set(stream.payload, payload)


async def stream_put(ctx, stream, payload):
    """Offer one beat on ``stream`` (a kernel's input, seen from the testbench) and wait until it
    is accepted. ``payload``: a packed word (int), a sequence/array of element values, or
    anything ``ctx.set`` takes for the payload (e.g. a ``data.Const``). Leaves ``valid`` low."""
    ctx.set(stream.valid, 1)
    _set_payload(ctx, stream, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, *, raw=False):
    """Accept one beat from ``stream`` (a kernel's output) and return its payload: the value
    Amaranth samples (``data.Const`` for layouts, int for plain shapes), or the packed word if
    ``raw``. Leaves ``ready`` low."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(_payload_value(stream) if raw else stream.payload) \
        .until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def config_write_read(ctx, port, writes):
    """Write every ``(address, value)`` pair on a configuration port
    (:class:`hwgen.kernels.threshold.ConfigSignature`: ``addr``, ``wdata``, ``we``, ``re``, ``rdata``,
    ``rvalid``), one per cycle, then read each back; returns the values read. Fails when
    ``rvalid`` is not high the cycle after ``re`` (the Amaranth-tier twin of the cocotb
    testbench's ``config`` step)."""
    for address, value in writes:
        ctx.set(port.addr, address)
        ctx.set(port.wdata, int(value))
        ctx.set(port.we, 1)
        await ctx.tick()
    ctx.set(port.we, 0)
    values = []
    for address, _ in writes:
        ctx.set(port.addr, address)
        ctx.set(port.re, 1)
        await ctx.tick()
        ctx.set(port.re, 0)
        assert ctx.get(port.rvalid), f"rvalid low the cycle after reading address {address:#x}"
        values.append(ctx.get(port.rdata))
    return values


class StreamSimResult(typing.NamedTuple):
    beats: np.ndarray   # (beats, lanes) output elements
    report: dict        # sim.stream_io.make_report: cycles, latency, in_cycles, out_cycles...


def _expected_out_beats(kernel, n_in):
    in_bpf = getattr(kernel, "in_beats_per_frame", None)
    out_bpf = getattr(kernel, "out_beats_per_frame", None)
    if in_bpf and out_bpf:
        if n_in % in_bpf:
            raise ValueError(f"{n_in} input beats are not a whole number of frames of "
                             f"{in_bpf} beats (kernel.in_beats_per_frame)")
        return n_in // in_bpf * out_bpf
    return n_in


def run_stream_sim(kernel, in_beats, *, expected=None, n_out=None, seed=0, valid_prob=0.8,
                   ready_prob=0.8, max_cycles=None, drain_cycles=8, vcd_file=None):
    """Simulate a stream kernel in Amaranth's simulator with random stalls.

    Parameters
    ----------
    kernel : wiring.Component
        With stream ports ``i`` and ``o``; its ``sync`` domain gets a clock (no reset pulse:
        registers start at their init values).
    in_beats : array-like, shape ``(beats, lanes)``
        Input element integers.
    expected : array-like, optional
        Expected output elements; checked beat by beat, failing with the same message as the
        cocotb testbench (``output beat N (cycle C): expected 0x.., seen 0x..``).
    n_out : int, optional
        Output beats to wait for (default: ``len(expected)``; else from the kernel's
        ``in_beats_per_frame``/``out_beats_per_frame``; else as many as input beats).
    seed, valid_prob, ready_prob
        In each cycle the next input beat is offered with probability ``valid_prob`` (and then
        held until accepted) and ``o.ready`` is high with probability ``ready_prob``.
    max_cycles : int, optional
        Fail if the outputs have not all arrived by then (default: generous).
    drain_cycles : int
        Cycles (with ``o.ready`` high) watched after the last output for unexpected beats.
    vcd_file : path, optional
        Write waves.

    Returns
    -------
    StreamSimResult
        ``(beats, report)``: output elements as a ``(beats, lanes)`` array and the cycle report
        (cycle 0 is the first clock edge; the drivers start in cycle 1, as in the cocotb
        testbench, so without stalls both tiers report the same cycles; the random stall
        patterns of the two tiers differ).

    Raises
    ------
    AssertionError
        Wrong output (with ``expected``), stream rule broken on ``o`` (valid withdrawn or
        payload changed before ``ready``), extra output beats, or timeout.
    """
    for name, p in (("valid_prob", valid_prob), ("ready_prob", ready_prob)):
        if not 0.0 < float(p) <= 1.0:
            raise ValueError(f"{name}={p!r} must be in (0, 1]")
    in_words = beats_to_words(kernel, "i", in_beats)
    expected_words = None
    if expected is not None:
        expected_words = beats_to_words(kernel, "o", expected)
        if n_out is not None and n_out != len(expected_words):
            raise ValueError(f"n_out={n_out} contradicts len(expected)={len(expected_words)}")
        n_out = len(expected_words)
    if n_out is None:
        n_out = _expected_out_beats(kernel, len(in_words))
    if max_cycles is None:
        max_cycles = default_max_cycles(len(in_words), n_out, valid_prob, ready_prob,
                                        work_cycles(kernel, n_out))

    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.submodules.dut = kernel
    sim = Simulator(m)
    sim.add_clock(CLOCK_PERIOD, domain="sync")

    i, o = kernel.i, kernel.o
    i_word, o_word = _payload_value(i), _payload_value(o)
    rng_valid = random.Random(f"hwgen-valid-{seed}")
    rng_ready = random.Random(f"hwgen-ready-{seed}")
    in_cycles, out_cycles, out_words = [], [], []

    def fail(message):
        raise AssertionError(message)

    async def testbench(ctx):
        ctx.set(i.valid, 0)
        ctx.set(o.ready, 0)
        n_in = 0
        holding = False
        pending = None          # (word, cycle) offered on o, not yet accepted
        end = None if n_out else drain_cycles
        cycle = 0
        while end is None or cycle <= end:
            if cycle >= 1:
                if not holding:
                    if n_in < len(in_words) and (valid_prob >= 1.0
                                                 or rng_valid.random() < valid_prob):
                        ctx.set(i_word, in_words[n_in])
                        ctx.set(i.valid, 1)
                        holding = True
                    else:
                        ctx.set(i.valid, 0)
                draining = end is not None
                ctx.set(o.ready, draining or ready_prob >= 1.0 or rng_ready.random() < ready_prob)
            _, _, iv, ir, ov, ordy, word = await ctx.tick().sample(
                i.valid, i.ready, o.valid, o.ready, o_word)
            if iv and ir:
                in_cycles.append(cycle)
                n_in += 1
                holding = False
            if ov:
                n = len(out_cycles)
                if pending is not None and word != pending[0]:
                    fail(f"output beat {n}: o.payload changed from {pending[0]:#x} to {word:#x} "
                         f"at cycle {cycle} while o.valid was high and o.ready low (offered at "
                         f"cycle {pending[1]})")
                if ordy:
                    if n >= n_out:
                        fail(f"unexpected output beat {n} at cycle {cycle}: {word:#x} (expected "
                             f"only {n_out} beats)")
                    if expected_words is not None and word != expected_words[n]:
                        fail(f"output beat {n} (cycle {cycle}): expected "
                             f"{expected_words[n]:#x}, seen {word:#x}")
                    out_cycles.append(cycle)
                    out_words.append(word)
                    pending = None
                    if len(out_cycles) == n_out:
                        end = cycle + drain_cycles
                elif pending is None:
                    pending = (word, cycle)
            elif pending is not None:
                fail(f"output beat {len(out_cycles)}: o.valid withdrawn at cycle {cycle} before "
                     f"the beat offered at cycle {pending[1]} was accepted")
            cycle += 1
            if end is None and cycle > max_cycles:
                fail(f"timeout after {max_cycles} cycles: received {len(out_cycles)} of {n_out} "
                     f"output beats, {len(in_cycles)} of {len(in_words)} input beats accepted")

    sim.add_testbench(testbench)
    if vcd_file is not None:
        with sim.write_vcd(str(vcd_file)):
            sim.run()
    else:
        sim.run()
    beats = words_to_beats(kernel, "o", out_words)
    report = make_report(in_cycles, out_cycles, seed=seed, valid_prob=valid_prob,
                         ready_prob=ready_prob, expected_out_beats=n_out)
    return StreamSimResult(beats, report)
