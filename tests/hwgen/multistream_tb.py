"""cocotb testbench for a kernel with several stream ports behind
:class:`hwgen.export.axis.AXIStreamShell` (one AXI4-Stream interface per port:
``s_axis``/``s_axis_0``... and ``m_axis``/``m_axis_0``...).

The vectors file named by ``$HWGEN_MULTISTREAM_VECTORS`` (written by
:func:`multistream_checks.run_multistream_test`) holds, per interface prefix, the input
words (``inputs``: ``{"s_axis_0": ["0x1f", ...]}``) and the expected output words with the
output's frame length (``outputs``: ``{"m_axis": {"expected": [...], "frame": 12}}``), the
``seed``, ``valid_prob`` and ``ready_prob`` per interface, ``max_cycles`` and
``drain_cycles``.

The testbench holds ``ap_rst_n`` low for 4 cycles (cycle 0 is the first edge after the
release, as in :mod:`sim.stream_tb`), then drives every input with a cocotbext-axi
``AxiStreamSource`` and every output with an ``AxiStreamSink``, each with its own pause
generator and seeded random generator (independent back-pressure per port). A monitor
samples every interface at every rising edge: it records every handshake's cycle, compares
each output beat with the expected word, checks ``tlast`` (high on the last beat of each of
that output's frames) and the stream rules (``tvalid`` not withdrawn, ``tdata`` stable until
taken), fails on extra beats (during ``drain_cycles`` after the last) and on a timeout, and at
the end checks that every input beat was taken. The report (``in_cycles``/``out_cycles`` per
prefix, ``passed``, ``error``) goes to ``$HWGEN_MULTISTREAM_REPORT``, also on failure.
"""

import json
import logging
import os
import random
import warnings

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

# the generic stream testbench's signal helpers: the same sampling rules on every port
from sim.stream_tb import _bit, _pause_generator, _word

ENV_VECTORS = "HWGEN_MULTISTREAM_VECTORS"
ENV_REPORT = "HWGEN_MULTISTREAM_REPORT"
RESET_CYCLES = 4


def _drivers(dut, vectors, seed):
    """A source per input and a sink per output, each with its own pause generator."""
    for prefix in list(vectors["inputs"]) + list(vectors["outputs"]):
        logging.getLogger(f"cocotb.{dut._name}.{prefix}").setLevel(logging.WARNING)
    drivers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for prefix, words in vectors["inputs"].items():
            source = AxiStreamSource(AxiStreamBus.from_prefix(dut, prefix), dut.ap_clk,
                                     byte_lanes=1)
            if words:
                source.send_nowait(AxiStreamFrame([int(word, 16) for word in words]))
            drivers.append((source, "valid", prefix))
        for prefix in vectors["outputs"]:
            sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, prefix), dut.ap_clk, byte_lanes=1)
            drivers.append((sink, "ready", prefix))
    for driver, kind, prefix in drivers:
        prob = vectors[f"{kind}_prob"][prefix]
        if prob < 1.0:
            rng = random.Random(f"hwgen-{kind}-{seed}-{prefix}")
            driver.set_pause_generator(_pause_generator(rng, prob))
    return drivers


@cocotb.test()
async def multistream_test(dut):
    """Drive every input, check every output beat and tlast, report handshake cycles."""
    with open(os.environ[ENV_VECTORS]) as f:
        vectors = json.load(f)
    seed = vectors["seed"]
    inputs = {prefix: len(words) for prefix, words in vectors["inputs"].items()}
    expected = {prefix: [int(word, 16) for word in spec["expected"]]
                for prefix, spec in vectors["outputs"].items()}
    frames = {prefix: spec["frame"] for prefix, spec in vectors["outputs"].items()}
    in_cycles = {prefix: [] for prefix in inputs}
    out_cycles = {prefix: [] for prefix in expected}
    status = {"passed": False, "error": None}

    def fail(message):
        status["error"] = message
        raise AssertionError(message)

    Clock(dut.ap_clk, 10, unit="ns").start()
    dut.ap_rst_n.value = 0
    for prefix in inputs:
        getattr(dut, f"{prefix}_tvalid").value = 0
        getattr(dut, f"{prefix}_tdata").value = 0
    for prefix in expected:
        getattr(dut, f"{prefix}_tready").value = 0
    await ClockCycles(dut.ap_clk, RESET_CYCLES)
    dut.ap_rst_n.value = 1
    drivers = _drivers(dut, vectors, seed)     # noqa: F841 (they run in the background)

    pending = {prefix: None for prefix in expected}   # (data, text, cycle) offered, not taken
    cycle, end = 0, (vectors["drain_cycles"] if not any(expected.values()) else None)
    try:
        while end is None or cycle <= end:
            await RisingEdge(dut.ap_clk)
            for prefix in inputs:
                valid, ready = (getattr(dut, f"{prefix}_{name}") for name in ("tvalid", "tready"))
                if _bit(valid) and _bit(ready):
                    in_cycles[prefix].append(cycle)
            for prefix, words in expected.items():
                _check_output(dut, prefix, words, frames[prefix], out_cycles[prefix], pending,
                              cycle, fail)
            if end is None and all(len(out_cycles[p]) == len(w) for p, w in expected.items()):
                end = cycle + vectors["drain_cycles"]
            cycle += 1
            if end is None and cycle > vectors["max_cycles"]:
                fail(f"timeout after {vectors['max_cycles']} cycles: received "
                     f"{ {p: len(c) for p, c in out_cycles.items()} } of "
                     f"{ {p: len(w) for p, w in expected.items()} } output beats, input beats "
                     f"taken { {p: len(c) for p, c in in_cycles.items()} }")
        for prefix, count in inputs.items():
            if len(in_cycles[prefix]) != count:
                fail(f"{prefix}: only {len(in_cycles[prefix])} of {count} input beats were "
                     f"taken")
        status["passed"] = True
    finally:
        report_path = os.environ.get(ENV_REPORT)
        if report_path:
            with open(report_path, "w") as f:
                json.dump({"in_cycles": in_cycles, "out_cycles": out_cycles, "seed": seed,
                           **status}, f)


def _check_output(dut, prefix, words, frame, cycles, pending, cycle, fail):
    """One rising edge on output ``prefix``: handshake, payload, tlast and stream rules."""
    valid = _bit(getattr(dut, f"{prefix}_tvalid"))
    n = len(cycles)
    if not valid:
        if pending[prefix] is not None:
            fail(f"{prefix} beat {n}: tvalid withdrawn at cycle {cycle} before the beat offered "
                 f"at cycle {pending[prefix][2]} was taken")
        return
    data, text = _word(getattr(dut, f"{prefix}_tdata"))
    seen = text or hex(data)
    if pending[prefix] is not None and (data is None or data != pending[prefix][0]):
        fail(f"{prefix} beat {n}: tdata changed from {pending[prefix][1]} to {seen} at cycle "
             f"{cycle} while tvalid was high and tready low (offered at cycle "
             f"{pending[prefix][2]})")
    if not _bit(getattr(dut, f"{prefix}_tready")):
        if pending[prefix] is None:
            pending[prefix] = (data, seen, cycle)
        return
    if n >= len(words):
        fail(f"unexpected {prefix} beat {n} at cycle {cycle}: {seen} (expected only "
             f"{len(words)} beats)")
    if data != words[n]:
        fail(f"{prefix} beat {n} (cycle {cycle}): expected {words[n]:#x}, seen {seen}")
    last, want_last = _bit(getattr(dut, f"{prefix}_tlast")), (n + 1) % frame == 0
    if last != want_last:
        fail(f"{prefix} beat {n} (cycle {cycle}): tlast={int(last)}, expected {int(want_last)} "
             f"(frame length {frame} beats)")
    cycles.append(cycle)
    pending[prefix] = None
