"""Amaranth-simulator driver for fixed-latency cores (ports ``i``, ``o`` and optional ``en``,
no stream handshake), such as :class:`hwgen.arith.popcount.CompressorTree`."""

from amaranth.sim import Simulator

__all__ = ["simulate_core"]


def simulate_core(dut, inputs):
    """Feed one input per cycle into ``dut.i`` (raw integers: the port's bits) and return the
    outputs, ``dut.o`` read as its shape says (signed where signed).

    The output of input ``t`` is read ``dut.latency`` cycles after it was applied, so a core
    whose ``latency`` property is wrong fails the comparison.
    """
    inputs = list(inputs)
    latency = dut.latency
    outputs = []
    sim = Simulator(dut)
    if latency:
        sim.add_clock(1e-8)

    async def testbench(ctx):
        port = dut.i.as_value() if hasattr(dut.i, "as_value") else dut.i
        for cycle in range(len(inputs) + latency):
            ctx.set(port, inputs[cycle] if cycle < len(inputs) else 0)
            if cycle >= latency:
                outputs.append(ctx.get(dut.o))
            if latency:
                await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    return outputs
