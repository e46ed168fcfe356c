"""Stream wrapper for fixed-latency cores with a clock enable."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .streams import lanes_signature

__all__ = ["StreamedCore"]


class StreamedCore(wiring.Component):
    """Turn a core with ports ``i`` (value in), ``o`` (value out) and ``en`` (clock enable of
    all its registers) and a fixed ``latency`` into a stream kernel.

    The whole pipeline advances when its output register is empty or being read
    (``advance = ~o.valid | o.ready``); a stalled output freezes every stage, so no beat is
    lost, duplicated or reordered, and with ``o.ready`` high one beat enters per cycle.
    ``o.valid`` comes from a register and never waits for ``o.ready``.

    Parameters
    ----------
    core : wiring.Component
        The core; must have a ``latency`` attribute.
    in_layout : ShapeLike
        Payload layout of the input stream (same width as ``core.i``).
    """

    def __init__(self, core, *, in_layout):
        self._core = core
        super().__init__({
            "i": In(lanes_signature(in_layout.elem_shape, in_layout.length)),
            "o": Out(lanes_signature(core.o.shape(), 1)),
        })

    @property
    def core(self):
        return self._core

    @property
    def latency(self):
        """Cycles from an input beat to its output beat (without back-pressure)."""
        return self._core.latency

    @property
    def cycles_per_frame(self):
        """One vector per beat, one beat per cycle in steady state."""
        return 1

    in_beats_per_frame = 1
    out_beats_per_frame = 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        m.d.comb += [core.i.eq(self.i.payload.as_value()), self.o.payload[0].eq(core.o)]
        if self.latency == 0:
            m.d.comb += [
                self.o.valid.eq(self.i.valid),
                self.i.ready.eq(self.o.ready),
                core.en.eq(0),
            ]
            return m
        valid = [Signal(name=f"valid{k}") for k in range(self.latency)]
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            core.en.eq(advance),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
        ]
        with m.If(advance):
            m.d.sync += valid[0].eq(self.i.valid)
            m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, self.latency)]
        return m
