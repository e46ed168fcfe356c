"""Data-width converter: repack a stream of ``in_lanes`` elements per beat into ``out_lanes``.

Elements keep their order: element ``k`` of a beat sits at bits ``[k*w, (k+1)*w)`` on both
sides, and the ``n``-th element in is the ``n``-th element out. Frames are
``elems_per_frame`` elements, a multiple of both lane counts, so every frame starts and ends
on a beat boundary on both sides and no beat mixes two frames.

Algorithm: a shift buffer of chunks. With ``g = gcd(in_lanes, out_lanes)`` every count of
buffered elements is a multiple of ``g``, so the buffer holds ``in_lanes/g + out_lanes/g - 1``
chunks of ``g`` elements (``I + O - g`` elements) and a count of valid chunks. Each cycle:

* an output beat is offered when the buffer holds ``out_lanes`` elements or more: its first
  ``out_lanes`` elements, straight from registers; when it is taken the buffer shifts down by
  ``out_lanes``;
* an input beat is taken when it fits behind what remains after that shift (fewer than
  ``out_lanes`` elements remain) and written at that position.

This sustains the slower side at full rate with no bubbles in steady state: downsizing
(``in_lanes >= out_lanes``) puts out one beat per cycle, since a new input beat is taken
exactly when fewer than ``out_lanes`` elements would remain; upsizing takes one input beat per
cycle, since the remainder after an output plus a new beat always fits. ``i.ready`` depends on
``o.ready`` (the space freed by a beat leaving in the same cycle); ``o.valid`` depends only on
registers.

Cost: ``(I + O - g) * w`` flip-flops; per buffer bit a multiplexer choosing between holding,
shifting by ``out_lanes`` and one of up to ``min(I, O)/g`` input positions. When one lane count
divides the other there is a single input position (a plain load/shift register).
"""

import math

from amaranth.hdl import Cat, Module, Signal

from ..checks import check_int, check_shape
from ..kernel import PlannedComponent, StreamFormat, StreamKernel
from ..resources import Resources

__all__ = ["WidthConverter", "WidthConverterPlan"]


class WidthConverterPlan(StreamKernel):
    """The analysis of :class:`WidthConverter` (same parameters)."""

    def __init__(self, *, elem_shape, in_lanes, out_lanes, elems_per_frame):
        self._elem_shape = check_shape("elem_shape", elem_shape)
        self._in_lanes = check_int("in_lanes", in_lanes, 1)
        self._out_lanes = check_int("out_lanes", out_lanes, 1)
        self._elems_per_frame = check_int("elems_per_frame", elems_per_frame, 1)
        step = math.lcm(self._in_lanes, self._out_lanes)
        if self._elems_per_frame % step:
            raise ValueError(
                f"elems_per_frame={elems_per_frame} must be a multiple of in_lanes={in_lanes} "
                f"and out_lanes={out_lanes}, i.e. of {step}")
        super().__init__()

    @property
    def input_format(self):
        return StreamFormat(self._elem_shape, self._in_lanes)

    @property
    def output_format(self):
        return StreamFormat(self._elem_shape, self._out_lanes)

    # -- parameters -------------------------------------------------------------------------
    elem_shape = property(lambda self: self._elem_shape)
    in_lanes = property(lambda self: self._in_lanes)
    out_lanes = property(lambda self: self._out_lanes)
    elems_per_frame = property(lambda self: self._elems_per_frame)

    @property
    def chunk(self):
        """Elements moved as one unit: ``gcd(in_lanes, out_lanes)``."""
        return math.gcd(self._in_lanes, self._out_lanes)

    @property
    def buffer_elems(self):
        """Elements the shift buffer holds: ``in_lanes + out_lanes - chunk``."""
        return self._in_lanes + self._out_lanes - self.chunk

    # -- timing -----------------------------------------------------------------------------
    @property
    def in_beats_per_frame(self):
        return self._elems_per_frame // self._in_lanes

    @property
    def out_beats_per_frame(self):
        return self._elems_per_frame // self._out_lanes

    @property
    def cycles_per_frame(self):
        """Beats of the busier side per frame: ``max(in_beats_per_frame, out_beats_per_frame)``."""
        return max(self.in_beats_per_frame, self.out_beats_per_frame)

    @property
    def latency(self):
        """Cycles from the first input beat to the first output beat: 1 when downsizing,
        ``ceil(out_lanes / in_lanes)`` when upsizing."""
        return max(1, -(-self._out_lanes // self._in_lanes))

    def output_offset(self, n):
        """Cycles from the first input beat to output beat ``n`` (from 0) when the input is
        offered every cycle and the output always ready: beat ``n`` leaves the cycle after
        its last element arrives, and no earlier than one beat per cycle."""
        return max(n + 1, -(-(n + 1) * self._out_lanes // self._in_lanes))

    def out_times(self, in_times):
        """Output beat ``n`` leaves the cycle after its last element arrives, and no
        earlier than one beat per cycle."""
        times, previous = [], None
        for n in range(self.out_beats_per_frame):
            ready = in_times[((n + 1) * self._out_lanes - 1) // self._in_lanes] + 1
            previous = ready if previous is None else max(ready, previous + 1)
            times.append(previous)
        return times

    @property
    def _gathers(self):
        """Whether an output beat is a whole number (more than one) of input beats: the
        converter is then a shift register."""
        return self._out_lanes > self._in_lanes and self._out_lanes % self._in_lanes == 0

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+. When an output beat
        is a whole number of input beats, a shift register and the beat counter. Otherwise
        the buffer's registers, the chunk counter, and per buffer bit a multiplexer of its
        sources (hold, shift, input positions): none for two sources (the flip-flop's
        enable does it), else ``ceil(log2(sources))`` LUTs. Against Yosys
        (``synth_xilinx -family xcup``) this is exact for dividing ratios and up to ~1.8x
        high for wide barrel shifts (e.g. 16 -> 49)."""
        chunk_bits = self.chunk * self._elem_shape.width
        in_chunks, out_chunks = self._in_lanes // self.chunk, self._out_lanes // self.chunk
        if self._gathers:
            # a shift register: every bit's flip-flop takes its neighbour, enabled by the
            # input handshake; only the beat counter needs LUTs (Yosys: 5 LUTs for 2 and 3
            # bits, 7 for 7 bits)
            beats = self._out_lanes // self._in_lanes
            count_bits = beats.bit_length()
            return Resources(luts=count_bits + 2,
                             ffs=beats * self._in_lanes * self._elem_shape.width + count_bits)
        slots = in_chunks + out_chunks - 1
        count_bits = slots.bit_length()
        luts = 3 * count_bits + 2
        for slot in range(slots):
            positions = sum(1 for base in range(out_chunks) if 0 <= slot - base < in_chunks)
            sources = 1 + (slot + out_chunks < slots) + positions
            if sources > 2:
                luts += chunk_bits * (sources - 1).bit_length()
        return Resources(luts=luts, ffs=slots * chunk_bits + count_bits)


class WidthConverter(WidthConverterPlan, PlannedComponent):
    """Repack ``in_lanes`` elements per beat into ``out_lanes`` elements per beat.

    Parameters
    ----------
    elem_shape : ShapeLike
        Shape of every element.
    in_lanes, out_lanes : int
        Elements per input and per output beat (any ratio, e.g. 49 -> 16).
    elems_per_frame : int
        Elements per frame; must be a multiple of both ``in_lanes`` and ``out_lanes``.

    Members
    -------
    i : stream of ``in_lanes`` x ``elem_shape``
    o : stream of ``out_lanes`` x ``elem_shape``

    Examples
    --------
    ::

        conv = WidthConverter(elem_shape=signed(8), in_lanes=49, out_lanes=16,
                              elems_per_frame=784)
        # conv.in_beats_per_frame == 16, conv.out_beats_per_frame == 49
        # conv.cycles_per_frame == 49, conv.latency == 1
    """

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        if self._gathers:
            return self._elaborate_shift()
        m = Module()
        chunk = self.chunk
        chunk_bits = chunk * self._elem_shape.width
        in_chunks, out_chunks = self._in_lanes // chunk, self._out_lanes // chunk
        slots = in_chunks + out_chunks - 1
        buffer = [Signal(chunk_bits, name=f"chunk{j}") for j in range(slots)]
        count = Signal(range(slots + 1))
        base = Signal(range(slots + 1))     # chunks left after this cycle's output
        take_out = Signal()
        take_in = Signal()

        in_word = self.i.payload.as_value()
        in_parts = [in_word.word_select(k, chunk_bits) for k in range(in_chunks)]
        m.d.comb += [
            self.o.valid.eq(count >= out_chunks),
            self.o.payload.eq(Cat(buffer[:out_chunks])),
            take_out.eq(self.o.valid & self.o.ready),
            base.eq(count - (take_out * out_chunks)),
            self.i.ready.eq(base < out_chunks),
            take_in.eq(self.i.valid & self.i.ready),
        ]
        m.d.sync += count.eq(base + (take_in * in_chunks))
        with m.If(take_out):
            m.d.sync += [buffer[j].eq(buffer[j + out_chunks]) for j in range(slots - out_chunks)]
        # later assignments win: the input beat lands behind what remains
        with m.If(take_in):
            with m.Switch(base):
                for position in range(out_chunks):
                    with m.Case(position):
                        m.d.sync += [buffer[position + k].eq(in_parts[k])
                                     for k in range(in_chunks)]
        return m

    def _elaborate_shift(self):
        """An output beat of ``n`` input beats: each input beat shifts into the top of one
        register of the output's width, so after ``n`` of them the first is at the bottom
        (the same handshakes and cycles as the general buffer, with no position
        multiplexers; and one wide shift per beat in a simulator)."""
        m = Module()
        beats = self._out_lanes // self._in_lanes
        in_bits = self._in_lanes * self._elem_shape.width
        buffer = Signal(beats * in_bits)
        count = Signal(range(beats + 1))
        base = Signal(range(beats + 1))
        take_out, take_in = Signal(), Signal()
        m.d.comb += [
            self.o.valid.eq(count == beats),
            self.o.payload.eq(buffer),
            take_out.eq(self.o.valid & self.o.ready),
            base.eq(count - (take_out * beats)),
            self.i.ready.eq(base < beats),
            take_in.eq(self.i.valid & self.i.ready),
        ]
        m.d.sync += count.eq(base + take_in)
        with m.If(take_in):
            m.d.sync += buffer.eq(Cat(buffer[in_bits:], self.i.payload.as_value()))
        return m


WidthConverterPlan.component = WidthConverter
