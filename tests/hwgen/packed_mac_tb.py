"""cocotb testbench for :class:`hwgen.arith.packed_mac.PackedMAC` and
:class:`hwgen.arith.packed_mac.PackedDotProduct` (exported Verilog; the behavioural packed path).

The vectors file named by ``$HWGEN_PACKED_MAC_VECTORS`` (written by
``tests/hwgen/test_packed_mac.py``) holds ``terms`` (one ``[w, a, first, last]`` per term,
``w`` and ``a`` as raw port values), ``expected`` (the raw ``o`` of every dot product, from
:mod:`sim.golden`), ``latency``, ``valid_probability`` and ``seed``. The testbench presents
one term per cycle with ``valid`` high, inserting cycles with ``valid`` low and random payload
at random; it checks every ``o_valid`` cycle: ``o`` against the next expected sums and the
cycle against the term's ``last`` cycle plus ``latency``.
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

ENV_VECTORS = "HWGEN_PACKED_MAC_VECTORS"


@cocotb.test()
async def packed_mac_matches_golden(dut):
    with open(os.environ[ENV_VECTORS]) as f:
        vectors = json.load(f)
    rng = random.Random(vectors["seed"])
    latency = vectors["latency"]
    expected = vectors["expected"]
    w_bits, a_bits = len(dut.w), len(dut.a)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    dut.rst.value = 1
    dut.en.value = 1
    dut.valid.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0

    terms = list(vectors["terms"])
    due = []  # cycles in which an o_valid is expected
    seen = 0
    cycle = 0
    while terms or due:
        if terms and rng.random() < vectors["valid_probability"]:
            w, a, first, last = terms.pop(0)
            dut.w.value, dut.a.value = w, a
            dut.valid.value, dut.first.value, dut.last.value = 1, first, last
            if last:
                due.append(cycle + latency)
        else:
            dut.w.value = rng.getrandbits(w_bits)
            dut.a.value = rng.getrandbits(a_bits)
            dut.valid.value = 0
            dut.first.value, dut.last.value = rng.getrandbits(1), rng.getrandbits(1)
        await ReadOnly()
        if dut.o_valid.value:
            assert due and due[0] == cycle, (f"cycle {cycle}: o_valid, but results are due in "
                                             f"cycles {due[:3]}")
            o = int(dut.o.value)
            assert o == expected[seen], (f"dot product {seen} (cycle {cycle}): o = {o:#x}, "
                                         f"expected {expected[seen]:#x}")
            due.pop(0)
            seen += 1
        else:
            assert not due or due[0] != cycle, f"cycle {cycle}: o_valid missing"
        await RisingEdge(dut.clk)
        cycle += 1
    assert seen == len(expected), f"{seen} results, expected {len(expected)}"
    dut._log.info("%d dot products matched in %d cycles", seen, cycle)
