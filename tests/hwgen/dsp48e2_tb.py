"""cocotb testbench for :class:`hwgen.vendor.xilinx.dsp48e2.DSP48E2` (exported Verilog, behavioural path).

The vectors file named by ``$HWGEN_DSP48E2_VECTORS`` (written by
``tests/hwgen/test_dsp48e2.py``) holds ``widths`` (port name -> bits), ``cycles`` (one dict of
port values per clock cycle) and ``expected`` (``P`` per cycle, from
:func:`sim.golden.dsp48e2_mac`). Every cycle the testbench applies the inputs after the clock
edge, then compares ``P`` and ``PCOUT`` with the expected value before the next edge.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

ENV_VECTORS = "HWGEN_DSP48E2_VECTORS"


@cocotb.test()
async def dsp48e2_matches_golden(dut):
    with open(os.environ[ENV_VECTORS]) as f:
        vectors = json.load(f)
    widths = vectors["widths"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    if hasattr(dut, "rst"):
        dut.rst.value = 0
    for cycle, (inputs, expected) in enumerate(zip(vectors["cycles"], vectors["expected"])):
        for name, value in inputs.items():
            getattr(dut, name).value = value & ((1 << widths[name]) - 1)
        await ReadOnly()
        p, pcout = dut.P.value.to_signed(), dut.PCOUT.value.to_signed()
        assert p == expected, f"cycle {cycle}: P = {p}, expected {expected} (inputs {inputs})"
        assert pcout == p, f"cycle {cycle}: PCOUT = {pcout} differs from P = {p}"
        await RisingEdge(dut.clk)
    dut._log.info("%d cycles matched", len(vectors["cycles"]))
