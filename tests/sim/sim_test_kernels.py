"""Tiny stream kernels used by the sim tests (not part of hwgen)."""

import numpy as np
from amaranth.hdl import Cat, Const, Instance, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.streams import lanes_signature


class AddOne(wiring.Component):
    """Add one (wrapping) to every lane, through a 1-deep output register: full throughput,
    latency 1."""

    latency = 1

    def __init__(self, *, width=7, lanes=12, is_signed=True, out_beats_per_frame=None):
        self.elem_shape = signed(width) if is_signed else unsigned(width)
        self.lanes = lanes
        if out_beats_per_frame is not None:
            self.out_beats_per_frame = out_beats_per_frame
        super().__init__({"i": In(lanes_signature(self.elem_shape, lanes)),
                          "o": Out(lanes_signature(self.elem_shape, lanes))})

    def golden(self, x):
        w = self.elem_shape.width
        x = np.asarray(x, dtype=np.int64) + 1
        if self.elem_shape.signed:
            return (x + (1 << (w - 1))) % (1 << w) - (1 << (w - 1))
        return x % (1 << w)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
            for k in range(self.lanes):
                m.d.sync += self.o.payload[k].eq(self.i.payload[k] + 1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class DropsValid(AddOne):
    """Broken: withdraws o.valid after one cycle whether or not the beat was taken."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid)
        m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
            for k in range(self.lanes):
                m.d.sync += self.o.payload[k].eq(self.i.payload[k] + 1)
        return m


class PairSum(wiring.Component):
    """Sum of two frames' worth of beats: every 2 input beats -> 1 output beat (lane-wise sum),
    with ``in_beats_per_frame``/``out_beats_per_frame`` properties."""

    in_beats_per_frame = 2
    out_beats_per_frame = 1

    def __init__(self, *, width=8, lanes=2):
        self.lanes = lanes
        super().__init__({"i": In(lanes_signature(unsigned(width), lanes)),
                          "o": Out(lanes_signature(unsigned(width + 1), lanes))})

    def elaborate(self, platform):
        m = Module()
        first = Signal(self.i.payload.shape())
        have_first = Signal()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(have_first):
                m.d.sync += [have_first.eq(0), self.o.valid.eq(1)]
                for k in range(self.lanes):
                    m.d.sync += self.o.payload[k].eq(first[k] + self.i.payload[k])
            with m.Else():
                m.d.sync += [have_first.eq(1), first.eq(self.i.payload)]
        return m


class CarryAdder(wiring.Component):
    """Registered 8-bit adder built from eight LUT6_2 and one CARRY8 instance (UltraScale
    style): input lanes (a, b), output lane a + b (9 bits). Instances only: needs the
    primitives' simulation models (``sim.runner.xilinx_cells_sim_source``)."""

    # LUT6_2 with I5=1: O6 = I0 ^ I1 (propagate, INIT[63:32]); O5 = I0 (generate, INIT[31:0])
    LUT_INIT = (sum(((n & 1) ^ ((n >> 1) & 1)) << (32 + n) for n in range(32))
                | sum((n & 1) << n for n in range(32)))

    def __init__(self):
        super().__init__({"i": In(lanes_signature(unsigned(8), 2)),
                          "o": Out(lanes_signature(unsigned(9), 1))})

    def elaborate(self, platform):
        m = Module()
        a, b = self.i.payload[0], self.i.payload[1]
        prop, gen = Signal(8), Signal(8)
        for k in range(8):
            m.submodules[f"lut{k}"] = Instance(
                "LUT6_2", p_INIT=Const(self.LUT_INIT, 64),
                i_I0=a[k], i_I1=b[k], i_I2=0, i_I3=0, i_I4=0, i_I5=1,
                o_O6=prop[k], o_O5=gen[k])
        co, o = Signal(8), Signal(8)
        m.submodules.carry = Instance(
            "CARRY8", p_CARRY_TYPE="SINGLE_CY8",
            i_CI=0, i_CI_TOP=0, i_DI=gen, i_S=prop, o_CO=co, o_O=o)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), self.o.payload[0].eq(Cat(o, co[7]))]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class ChangesPayload(AddOne):
    """Broken: keeps o.valid until the beat is taken, but changes the payload while waiting."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.o.valid & ~self.o.ready):
            m.d.sync += self.o.payload[0].eq(self.o.payload[0] + 1)
        return m
