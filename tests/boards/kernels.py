"""Stand-in stream kernels for the board tests (the graph's networks are not needed here)."""

import numpy as np
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.arith.packed_mac import PackedMAC
from hwgen.streams import lanes_signature
from hwgen.kernels.threshold import BinarySearchThreshold


def threshold_kernel(channels=6, pe=2, vectors=2, seed=7):
    """A small multi-frame kernel: 8-bit inputs, 2-bit outputs; returns (kernel, thresholds)."""
    rng = np.random.default_rng(seed)
    thresholds = np.sort(rng.integers(-100, 100, size=(channels, 3)), axis=1)
    kernel = BinarySearchThreshold(channels=channels, pe=pe, input_shape=signed(8),
                                   thresholds=thresholds, vectors=vectors)
    return kernel, thresholds


class MacStream(wiring.Component):
    """``lanes`` products ``w[l] * a`` per beat on a packed DSP48E2 MAC (PackedMAC with
    ``first = last = 1``): input lanes 0..lanes-1 are the weights, lane ``lanes`` the
    activation (signed 4-bit each). The whole pipeline advances when the output is free."""

    def __init__(self, lanes=4):
        self._mac = PackedMAC(weight_width=4, act_width=4, lanes=lanes, max_terms=1)
        self._lanes = lanes
        super().__init__({
            "i": In(lanes_signature(signed(4), lanes + 1)),
            "o": Out(lanes_signature(self._mac.acc_shape, lanes)),
        })

    latency = property(lambda self: self._mac.latency)
    cycles_per_frame = 1
    in_beats_per_frame = 1
    out_beats_per_frame = 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = self._mac
        advance = Signal()
        valid = [Signal(name=f"valid{k}") for k in range(self.latency)]
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
            mac.en.eq(advance),
            mac.valid.eq(self.i.valid),
            mac.first.eq(1),
            mac.last.eq(1),
            mac.a.eq(self.i.payload[self._lanes]),
            self.o.payload.eq(mac.o),
        ]
        m.d.comb += [mac.w[lane].eq(self.i.payload[lane]) for lane in range(self._lanes)]
        with m.If(advance):
            m.d.sync += valid[0].eq(self.i.valid)
            m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, self.latency)]
        return m
