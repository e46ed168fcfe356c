"""Generic cocotb testbench for a stream kernel behind :class:`hwgen.export.axis.AXIStreamShell`.

Runs inside the simulator (cocotb test module ``sim.stream_tb``). The top level must have the
shell's ports ``ap_clk``, ``ap_rst_n``, ``s_axis_tdata/tvalid/tready`` and
``m_axis_tdata/tvalid/tready/tlast``.

Inputs come from the JSON vectors file named by ``$HWGEN_STREAM_VECTORS`` (written by
:func:`sim.streams.run_stream_test` or :func:`sim.streams.write_stream_vectors`; format in
:mod:`sim.stream_io`). The testbench

* holds ``ap_rst_n`` low for 4 cycles, then releases it; cycle 0 is the first clock edge
  after the release;
* drives ``s_axis`` with the input beats, with random gaps in ``tvalid`` (probability
  ``valid_prob`` of offering the next beat in a cycle), and ``m_axis_tready`` high with
  probability ``ready_prob`` per cycle, from seeded random generators;
* compares every output beat with the expected one and fails on the first mismatch, naming the
  beat index, the expected and the seen value (hex); checks ``m_axis_tlast`` on every beat
  (high exactly on the last beat of each ``out_beats_per_frame``-beat frame); checks the stream
  rules on the output (``tvalid`` not withdrawn and ``tdata`` stable until accepted); fails on
  output beats beyond the expected ones (during ``drain_cycles`` after the last) and when the
  outputs have not all arrived after ``max_cycles``;
* with a ``config`` section in the vectors, sends the first ``after_inputs`` beats, waits
  for ``after_outputs`` output beats, writes every ``(address, value)`` pair on the
  configuration port (``{port}_addr/_wdata/_we``), reads each back (``{port}_re``, then
  ``{port}_rvalid``/``_rdata`` one cycle later) and fails on a mismatch, then sends the rest
  (the output side keeps its random stalls throughout);
* writes the cycle report (:func:`sim.stream_io.make_report`: cycle of every input and output
  handshake) to ``$HWGEN_STREAM_REPORT``, also when the test fails.

Drivers: cocotbext-axi's ``AxiStreamSource``/``AxiStreamSink`` with ``byte_lanes=1``, so that a
"byte" is the whole ``tdata`` word and beats of any width (non-multiples of 8, wider than 64
bits) go through as plain Python ints; random stalls come from ``set_pause_generator``.
The input is sent as one frame (``s_axis`` has no ``tlast``; the shell takes none). Checking is
not left to the sink's frame assembly (which only delivers whole ``tlast``-terminated frames,
so a missing ``tlast`` would hang rather than fail): a monitor samples both interfaces at
every clock edge, which also gives exact handshake cycles.
"""

import logging
import os
import random
import warnings

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from sim.stream_io import ENV_REPORT, ENV_VECTORS, make_report, read_vectors, write_report

CLOCK_PERIOD_NS = 10
RESET_CYCLES = 4


def _pause_generator(rng, prob):
    """Pause (True) with probability ``1 - prob`` per clock cycle."""
    while True:
        yield rng.random() >= prob


def _bit(handle):
    """Value of a 1-bit signal as bool; X/Z (Icarus) count as 0."""
    return str(handle.value) == "1"


def _word(handle):
    """``(int_or_None, text)`` of a vector signal; ``None`` when it has X/Z bits."""
    value = handle.value
    if value.is_resolvable:
        return value.to_unsigned(), None
    return None, str(value)


@cocotb.test()
async def stream_test(dut):
    """Drive all input beats, check all output beats and tlast, report handshake cycles."""
    vectors = read_vectors(os.environ[ENV_VECTORS])
    report_path = os.environ.get(ENV_REPORT)
    in_beats = vectors["in_beats"]
    expected = vectors["expected"]
    frame_len = vectors["out_beats_per_frame"]
    seed = vectors.get("seed", cocotb.RANDOM_SEED)
    valid_prob = vectors["valid_prob"]
    ready_prob = vectors["ready_prob"]
    max_cycles = vectors["max_cycles"]
    drain_cycles = vectors["drain_cycles"]

    in_cycles, out_cycles = [], []
    status = {"passed": False, "error": None}

    def report():
        if report_path:
            write_report(report_path, make_report(
                in_cycles, out_cycles, seed=seed, valid_prob=valid_prob, ready_prob=ready_prob,
                expected_out_beats=len(expected), passed=status["passed"], error=status["error"]))

    def fail(message):
        status["error"] = message
        raise AssertionError(message)

    in_width = len(dut.s_axis_tdata)
    for n, word in enumerate(in_beats):
        if word >> in_width:
            fail(f"input beat {n}: {word:#x} does not fit s_axis_tdata ({in_width} bits)")

    Clock(dut.ap_clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.ap_rst_n.value = 0
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tdata.value = 0
    dut.m_axis_tready.value = 0
    await ClockCycles(dut.ap_clk, RESET_CYCLES)
    dut.ap_rst_n.value = 1

    # Created after reset: both drivers start at the next edge (cycle 0) and drive from cycle 1.
    # They log their banner and every frame in full at INFO; cocotb 2 deprecates the
    # setimmediatevalue() they call.
    for prefix in ("s_axis", "m_axis"):
        logging.getLogger(f"cocotb.{dut._name}.{prefix}").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.ap_clk,
                                 byte_lanes=1)
        sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.ap_clk, byte_lanes=1)
    if valid_prob < 1.0:
        source.set_pause_generator(_pause_generator(random.Random(f"hwgen-valid-{seed}"),
                                                    valid_prob))
    if ready_prob < 1.0:
        sink.set_pause_generator(_pause_generator(random.Random(f"hwgen-ready-{seed}"),
                                                  ready_prob))
    config = vectors.get("config")
    outputs_reached = Event()
    if config is None:
        if in_beats:
            source.send_nowait(AxiStreamFrame(list(in_beats)))
    else:
        split = config["after_inputs"]
        if split:
            source.send_nowait(AxiStreamFrame(list(in_beats[:split])))
        cocotb.start_soon(_configure(dut, config, outputs_reached, in_beats[split:], source, fail))

    clk = dut.ap_clk
    s_valid, s_ready = dut.s_axis_tvalid, dut.s_axis_tready
    m_valid, m_ready, m_data, m_last = (dut.m_axis_tvalid, dut.m_axis_tready, dut.m_axis_tdata,
                                        dut.m_axis_tlast)
    pending = None  # (data, hex text, cycle) of an offered output beat not yet accepted
    cycle = 0
    end = None      # cycle after which to stop (set once every expected beat has arrived)
    try:
        if not expected:
            end = drain_cycles
        if config is not None and config["after_outputs"] == 0:
            outputs_reached.set()
        while end is None or cycle <= end:
            await RisingEdge(clk)
            if _bit(s_valid) and _bit(s_ready):
                in_cycles.append(cycle)
            if _bit(m_valid):
                data, text = _word(m_data)
                n = len(out_cycles)
                seen = text or hex(data)
                if pending is not None and (data is None or data != pending[0]):
                    fail(f"output beat {n}: m_axis_tdata changed from {pending[1]} to {seen} "
                         f"at cycle {cycle} while m_axis_tvalid was high and m_axis_tready low "
                         f"(offered at cycle {pending[2]})")
                if _bit(m_ready):
                    if n >= len(expected):
                        fail(f"unexpected output beat {n} at cycle {cycle}: "
                             f"{seen} (expected only {len(expected)} beats)")
                    if data is None:
                        fail(f"output beat {n} (cycle {cycle}): expected {expected[n]:#x}, "
                             f"seen X/Z bits {text}")
                    if data != expected[n]:
                        fail(f"output beat {n} (cycle {cycle}): expected {expected[n]:#x}, "
                             f"seen {data:#x}")
                    want_last = (n + 1) % frame_len == 0
                    if _bit(m_last) != want_last:
                        fail(f"output beat {n} (cycle {cycle}): m_axis_tlast={int(_bit(m_last))}, "
                             f"expected {int(want_last)} (frame length {frame_len} beats)")
                    out_cycles.append(cycle)
                    if config is not None and len(out_cycles) == config["after_outputs"]:
                        outputs_reached.set()
                    pending = None
                    if len(out_cycles) == len(expected):
                        end = cycle + drain_cycles
                elif pending is None:
                    pending = (data, seen, cycle)
            elif pending is not None:
                fail(f"output beat {len(out_cycles)}: m_axis_tvalid withdrawn at cycle {cycle} "
                     f"before the beat offered at cycle {pending[2]} was accepted")
            cycle += 1
            if end is None and cycle > max_cycles:
                fail(f"timeout after {max_cycles} cycles: received {len(out_cycles)} of "
                     f"{len(expected)} output beats, {len(in_cycles)} of {len(in_beats)} input "
                     f"beats accepted")
        status["passed"] = True
    finally:
        report()


async def _configure(dut, config, outputs_reached, rest, source, fail):
    """Configuration writes and read-back in the middle of the stream (see the module
    docstring). Signals change on falling edges, so each is sampled at the next rising one."""
    port = config["port"]
    addr, wdata, we = (getattr(dut, f"{port}_{name}") for name in ("addr", "wdata", "we"))
    re, rdata, rvalid = (getattr(dut, f"{port}_{name}") for name in ("re", "rdata", "rvalid"))
    clk = dut.ap_clk
    we.value = 0
    re.value = 0
    await outputs_reached.wait()
    await FallingEdge(clk)
    for address, value in config["writes"]:
        addr.value, wdata.value, we.value = address, value, 1
        await FallingEdge(clk)
    we.value = 0
    mask = (1 << len(rdata)) - 1
    for address, value in config["writes"]:
        addr.value, re.value = address, 1
        await FallingEdge(clk)
        re.value = 0
        if not _bit(rvalid):
            fail(f"{port}_rvalid low the cycle after reading address {address:#x}")
        seen, text = _word(rdata)
        if seen != value & mask:
            fail(f"{port} read-back of address {address:#x}: expected {value & mask:#x}, "
                 f"seen {text or hex(seen)}")
    if rest:
        source.send_nowait(AxiStreamFrame(list(rest)))
