"""Kernels with several stream ports in Amaranth's simulator: forks, joins and concats.

:func:`run_multistream_sim` is :func:`sim.amaranth_sim.run_stream_sim` for a kernel with
stream ports ``i``/``i0, i1, ...`` and ``o``/``o0, o1, ...`` (the kernel contract). Each port
has its own testbench: a *producer* per input offers the next beat in a cycle with
probability ``valid_prob[port]`` and holds it until it is taken; a *consumer* per output
raises ``ready`` in a cycle with probability ``ready_prob[port]``; every port has its own
seeded random generator, so the stalls of the ports are independent. A *monitor* samples
every port at every clock edge: it records each handshake's cycle, checks every output beat
against the expected one and the stream rules on every output (``valid`` not withdrawn,
payload stable until taken), fails on beats beyond the expected ones (watching
``drain_cycles`` more cycles with every output ready) and on a timeout, and at the end
checks that every input beat was taken::

    result = run_multistream_sim(fork, {"i": x}, expected={"o0": x, "o1": x}, seed=3,
                                 valid_prob=0.5, ready_prob={"o0": 0.9, "o1": 0.2})
    result.report["out_cycles"]["o1"]

Cycle numbering is that of :func:`sim.amaranth_sim.run_stream_sim` (cycle 0 is the first
clock edge; producers and consumers start in cycle 1), so without stalls the cycles match
the kernel's ``schedule``.
"""

import random
import typing

from amaranth.hdl import ClockDomain, Module
from amaranth.lib import data
from amaranth.sim import Simulator

from hwgen.export.axis import stream_ports

from .stream_io import default_max_cycles, per_port
from .streams import beats_to_words, words_to_beats

__all__ = ["run_multistream_sim", "MultiStreamResult", "per_port", "expected_beat_counts"]

CLOCK_PERIOD = 10e-9


class MultiStreamResult(typing.NamedTuple):
    beats: dict     # output port -> (beats, lanes) array of the elements received
    report: dict    # cycles, latency, in_cycles/out_cycles per port, seed, probabilities


def expected_beat_counts(kernel, in_counts, outputs):
    """Output beats per output port for ``in_counts`` input beats per input port: the same
    whole number of frames on every port (``kernel.beats_per_frame(port)``)."""
    frames = set()
    for port, count in in_counts.items():
        beats = kernel.beats_per_frame(port)
        if count % beats:
            raise ValueError(f"{count} beats on port {port!r} are not a whole number of frames "
                             f"of {beats} beats")
        frames.add(count // beats)
    if len(frames) != 1:
        raise ValueError(f"the input ports carry different numbers of frames: {sorted(frames)}")
    (frames,) = frames
    return {port: frames * kernel.beats_per_frame(port) for port in outputs}


def _word(stream):
    payload = stream.payload
    return payload.as_value() if isinstance(payload, data.View) else payload


def run_multistream_sim(kernel, in_beats, *, expected=None, n_out=None, seed=0, valid_prob=0.8,
                        ready_prob=0.8, max_cycles=None, drain_cycles=8, vcd_file=None):
    """Simulate a kernel with several stream ports under independent random stalls per port.

    Parameters
    ----------
    kernel : wiring.Component
        With stream ports named as the kernel contract names them; its ``sync`` domain gets
        a clock (no reset pulse).
    in_beats : dict
        ``{input port: (beats, lanes) array of element integers}``, one entry per input.
    expected : dict, optional
        ``{output port: (beats, lanes) array}``: every output beat is checked against it
        (``output o1 beat 3 (cycle 9): expected 0x12, seen 0x13``).
    n_out : dict, optional
        Output beats to wait for per output port (default: from ``expected``, else a whole
        number of frames from ``kernel.beats_per_frame``).
    seed : int
    valid_prob, ready_prob : float or dict
        Per cycle, the probability that an input offers its next beat, and that an output
        is ready; one number for every port or ``{port: p}``.
    max_cycles, drain_cycles : int
        Fail when the outputs are not all out after ``max_cycles``; watch ``drain_cycles``
        more cycles for extra output beats.
    vcd_file : path, optional

    Returns
    -------
    MultiStreamResult
        ``(beats, report)``. ``report``: ``in_cycles`` and ``out_cycles`` (per port, the cycle
        of every handshake), ``cycles`` (last output handshake + 1), ``latency`` (first output
        handshake on any output - first input handshake on any input), and the seed and
        probabilities.

    Raises
    ------
    ValueError
        ``in_beats`` or ``expected`` not naming every input or output port, or input beats
        that are not whole frames.
    AssertionError
        A wrong output beat, a broken stream rule on an output, an extra output beat, input
        beats left untaken, or a timeout.
    """
    inputs, outputs = stream_ports(kernel)
    if set(in_beats) != set(inputs):
        raise ValueError(f"in_beats must name the input ports of {type(kernel).__name__}, "
                         f"{inputs}, not {sorted(in_beats)}")
    in_words = {port: beats_to_words(kernel, port, beats) for port, beats in in_beats.items()}
    expected_words = None
    if expected is not None:
        expected_words = {port: beats_to_words(kernel, port, beats)
                          for port, beats in expected.items()}
        n_out = {port: len(words) for port, words in expected_words.items()}
    if n_out is None:
        n_out = expected_beat_counts(kernel, {p: len(w) for p, w in in_words.items()}, outputs)
    if set(n_out) != set(outputs):
        raise ValueError(f"expected/n_out must name the output ports of "
                         f"{type(kernel).__name__}, {outputs}, not {sorted(n_out)}")
    valid_prob = per_port("valid_prob", valid_prob, inputs)
    ready_prob = per_port("ready_prob", ready_prob, outputs)
    if max_cycles is None:
        max_cycles = default_max_cycles(
            max(map(len, in_words.values())), max(n_out.values()),
            min(valid_prob.values()), min(ready_prob.values()))

    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.submodules.dut = kernel
    sim = Simulator(m)
    sim.add_clock(CLOCK_PERIOD, domain="sync")

    state = {"end": None}               # cycle after which every testbench stops
    in_cycles = {port: [] for port in inputs}
    out_cycles = {port: [] for port in outputs}
    out_words = {port: [] for port in outputs}

    def running(cycle):
        return state["end"] is None or cycle <= state["end"]

    def producer(port):
        stream, words = getattr(kernel, port), in_words[port]
        rng = random.Random(f"hwgen-valid-{seed}-{port}")
        p = valid_prob[port]

        async def testbench(ctx):
            ctx.set(stream.valid, 0)
            await ctx.tick()                                 # cycle 0
            cycle, sent = 1, 0
            while sent < len(words) and running(cycle):
                if p >= 1.0 or rng.random() < p:
                    ctx.set(_word(stream), words[sent])
                    ctx.set(stream.valid, 1)
                    while running(cycle):
                        _, _, ready = await ctx.tick().sample(stream.ready)
                        cycle += 1
                        if ready:
                            break
                    ctx.set(stream.valid, 0)
                    sent += 1
                else:
                    await ctx.tick()
                    cycle += 1
        return testbench

    def consumer(port):
        stream = getattr(kernel, port)
        rng = random.Random(f"hwgen-ready-{seed}-{port}")
        p = ready_prob[port]

        async def testbench(ctx):
            ctx.set(stream.ready, 0)
            await ctx.tick()                                 # cycle 0
            cycle = 1
            while running(cycle):
                draining = len(out_cycles[port]) >= n_out[port]
                ctx.set(stream.ready, draining or p >= 1.0 or rng.random() < p)
                await ctx.tick()
                cycle += 1
        return testbench

    def fail(message):
        raise AssertionError(message)

    watched = []
    for port in inputs:
        stream = getattr(kernel, port)
        watched += [stream.valid, stream.ready]
    for port in outputs:
        stream = getattr(kernel, port)
        watched += [stream.valid, stream.ready, _word(stream)]

    async def monitor(ctx):
        pending = {port: None for port in outputs}   # (word, cycle) offered, not yet taken
        cycle = 0
        if not any(n_out.values()):
            state["end"] = drain_cycles
        while running(cycle):
            _, _, *values = await ctx.tick().sample(*watched)
            for port in inputs:
                valid, ready, values = values[0], values[1], values[2:]
                if valid and ready:
                    in_cycles[port].append(cycle)
            for port in outputs:
                valid, ready, word, values = values[0], values[1], values[2], values[3:]
                n = len(out_cycles[port])
                if valid:
                    if pending[port] is not None and word != pending[port][0]:
                        fail(f"output {port} beat {n}: payload changed from "
                             f"{pending[port][0]:#x} to {word:#x} at cycle {cycle} while valid "
                             f"was high and ready low (offered at cycle {pending[port][1]})")
                    if ready:
                        if n >= n_out[port]:
                            fail(f"unexpected output {port} beat {n} at cycle {cycle}: "
                                 f"{word:#x} (expected only {n_out[port]} beats)")
                        if expected_words is not None and word != expected_words[port][n]:
                            fail(f"output {port} beat {n} (cycle {cycle}): expected "
                                 f"{expected_words[port][n]:#x}, seen {word:#x}")
                        out_cycles[port].append(cycle)
                        out_words[port].append(word)
                        pending[port] = None
                    elif pending[port] is None:
                        pending[port] = (word, cycle)
                elif pending[port] is not None:
                    fail(f"output {port} beat {n}: valid withdrawn at cycle {cycle} before the "
                         f"beat offered at cycle {pending[port][1]} was taken")
            if state["end"] is None and all(len(out_cycles[p]) == n_out[p] for p in outputs):
                state["end"] = cycle + drain_cycles
            cycle += 1
            if state["end"] is None and cycle > max_cycles:
                got = {p: len(c) for p, c in out_cycles.items()}
                taken = {p: len(c) for p, c in in_cycles.items()}
                fail(f"timeout after {max_cycles} cycles: received {got} of {n_out} output "
                     f"beats, input beats taken {taken}")
        for port in inputs:
            if len(in_cycles[port]) != len(in_words[port]):
                fail(f"input {port}: only {len(in_cycles[port])} of {len(in_words[port])} beats "
                     f"were taken")

    for port in inputs:
        sim.add_testbench(producer(port))
    for port in outputs:
        sim.add_testbench(consumer(port))
    sim.add_testbench(monitor)
    if vcd_file is not None:
        with sim.write_vcd(str(vcd_file)):
            sim.run()
    else:
        sim.run()

    beats = {port: words_to_beats(kernel, port, words) for port, words in out_words.items()}
    firsts_in = [c[0] for c in in_cycles.values() if c]
    firsts_out = [c[0] for c in out_cycles.values() if c]
    lasts_out = [c[-1] for c in out_cycles.values() if c]
    report = {
        "cycles": max(lasts_out) + 1 if lasts_out else 0,
        "latency": min(firsts_out) - min(firsts_in) if firsts_in and firsts_out else None,
        "in_cycles": in_cycles, "out_cycles": out_cycles,
        "seed": seed, "valid_prob": valid_prob, "ready_prob": ready_prob,
    }
    return MultiStreamResult(beats, report)
