"""Stream FIFO: elastic buffering between kernels.

:class:`StreamFIFO` is Amaranth's :class:`~amaranth.lib.fifo.SyncFIFOBuffered` behind the
kernel contract's ``i``/``o`` lane streams. That FIFO keeps ``depth - 1`` entries in a memory
with a synchronous read port and one more in its output register, so its output comes from a
register (block-RAM friendly, good timing) and an entry written into an empty FIFO leaves two
cycles later. The memory carries a ``ram_style`` attribute (``registers``, ``distributed`` or
``block``, understood by Vivado and Yosys) chosen by ``mem_style``.

Throughput: with ``depth >= 3`` one beat per cycle in and out. ``depth`` 1 and 2 take one
beat every other cycle (the write side of ``SyncFIFOBuffered`` does not see a read in the
same cycle), so a graph should use them only where that does not matter.

Cost (per the analytic :meth:`StreamFIFO.estimate`): the output register (``W`` flip-flops
for a ``W``-bit beat), two pointers and a level counter of ``log2(depth)`` bits, and the
storage of ``(depth - 1) x W`` bits: flip-flops and a read multiplexer, LUT RAM (RAM32M16/
RAM64M8 sites of 8 LUTs each), or 18 Kbit block RAMs in their best aspect ratio.
"""

from amaranth.hdl import Module
from amaranth.lib import fifo
from amaranth.lib.wiring import Out

from ..checks import check_bool, check_int, check_one_of, check_shape
from ..kernel import PlannedComponent, StreamFormat, StreamKernel, pipelined_times
from ..memory import RAM_STYLE
from ..resources import BRAM18_LUTS, ULTRASCALE_PLUS, Resources, lutram_sdp_luts, memory_cost

__all__ = ["StreamFIFO", "StreamFIFOPlan", "FIFO_MEM_STYLES"]

FIFO_MEM_STYLES = ("auto", "registers", "lutram", "bram")
MAX_DEPTH = 1 << 20


class _StyledSyncFIFOBuffered(fifo.SyncFIFOBuffered):
    """``SyncFIFOBuffered`` whose storage memory carries a ``ram_style`` attribute."""

    def __init__(self, *, width, depth, ram_style):
        super().__init__(width=width, depth=depth)
        self._ram_style = ram_style

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth >= 2:
            m.submodules.storage.attrs["ram_style"] = self._ram_style
        return m


class StreamFIFOPlan(StreamKernel):
    """The analysis of :class:`StreamFIFO` (same parameters)."""

    def __init__(self, *, elem_shape, lanes, depth, mem_style="auto", level=False,
                 beats_per_frame=1):
        self._elem_shape = check_shape("elem_shape", elem_shape)
        self._lanes = check_int("lanes", lanes, 1)
        self._depth = check_int("depth", depth, 1, MAX_DEPTH)
        self._mem_style = check_one_of("mem_style", mem_style, FIFO_MEM_STYLES)
        self._has_level = check_bool("level", level)
        self._beats_per_frame = check_int("beats_per_frame", beats_per_frame, 1)
        super().__init__()

    def members(self):
        members = super().members()
        if self._has_level:
            members["level"] = Out(range(self._depth + 1))
        return members

    @property
    def input_format(self):
        return StreamFormat(self._elem_shape, self._lanes)

    output_format = input_format

    # -- parameters -------------------------------------------------------------------------
    elem_shape = property(lambda self: self._elem_shape)
    lanes = property(lambda self: self._lanes)
    depth = property(lambda self: self._depth)

    @property
    def width(self):
        """Bits per beat."""
        return self._elem_shape.width * self._lanes

    @property
    def storage_depth(self):
        """Entries in the memory behind the output register: ``depth - 1``."""
        return self._depth - 1

    @property
    def mem_style(self):
        """The storage style used (``auto`` resolved); ``"registers"`` when ``depth`` is 1."""
        if self._mem_style != "auto":
            return self._mem_style
        entries, width = self.storage_depth, self.width
        if entries <= 4:
            return "registers"
        blocks = ULTRASCALE_PLUS.block_count(entries, width)
        return "bram" if BRAM18_LUTS * blocks < lutram_sdp_luts(entries, width) else "lutram"

    # -- timing -----------------------------------------------------------------------------
    @property
    def latency(self):
        """Cycles from a beat entering an empty FIFO to it leaving: 2 (1 for ``depth=1``)."""
        return 1 if self._depth == 1 else 2

    @property
    def cycles_per_beat(self):
        return 1 if self._depth >= 3 else 2

    @property
    def cycles_per_frame(self):
        return self._beats_per_frame * self.cycles_per_beat

    in_beats_per_frame = property(lambda self: self._beats_per_frame)
    out_beats_per_frame = property(lambda self: self._beats_per_frame)

    def out_times(self, in_times):
        """Two cycles through an empty FIFO (one at ``depth=1``), one beat per cycle (every
        other cycle at ``depth`` 1 and 2)."""
        if self.cycles_per_beat == 1:
            return pipelined_times(in_times, self.latency)
        times, previous = [], None
        for t in in_times:
            previous = t + self.latency if previous is None else max(t + self.latency,
                                                                     previous + 2)
            times.append(previous)
        return times

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+: the output register
        (``W`` flip-flops for a ``W``-bit beat), two pointers and a level counter, and the
        storage of ``depth - 1`` entries (:func:`~hwgen.resources.memory_cost` with one
        write and one read port)."""
        width, entries = self.width, self.storage_depth
        cost = Resources(ffs=width + 1)
        if entries == 0:
            return cost
        pointer = max(1, (entries - 1).bit_length())
        count = entries.bit_length()
        cost += Resources(ffs=2 * pointer + count, luts=2 * pointer + 2 * count + 2)
        cost += memory_cost(entries, width, self.mem_style, ports="sdp")
        if self.mem_style == "bram":
            cost = cost.replace(ffs=cost.ffs - width)   # the output register is the BRAM's own
        return cost


class StreamFIFO(StreamFIFOPlan, PlannedComponent):
    """First-in first-out buffer of stream beats.

    Parameters
    ----------
    elem_shape : ShapeLike
        Shape of every lane.
    lanes : int
        Elements per beat.
    depth : int
        Beats held (1 .. 2**20). ``depth >= 3`` sustains one beat per cycle; 1 and 2 one
        beat every other cycle.
    mem_style : ``"auto"``, ``"registers"``, ``"lutram"`` or ``"bram"``
        Storage of the ``depth - 1`` entries behind the output register. ``auto``:
        registers up to 4 entries, else LUT RAM or block RAM, whichever the estimate
        finds cheaper at 64 LUTs per 18 Kbit block RAM.
    level : bool
        Add an output port ``level`` with the number of beats held.
    beats_per_frame : int
        Beats per frame, for the frame properties (a FIFO does not care).

    Members
    -------
    i : stream of ``lanes`` x ``elem_shape``
    o : stream of ``lanes`` x ``elem_shape``
    level : ``unsigned(ceil(log2(depth + 1)))``, out (only with ``level=True``)

    Examples
    --------
    ::

        buf = StreamFIFO(elem_shape=unsigned(4), lanes=8, depth=32)
        m.submodules.buf = buf
        wiring.connect(m, producer.o, buf.i)
        wiring.connect(m, buf.o, consumer.i)
    """

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buffer = _StyledSyncFIFOBuffered(
            width=self.width, depth=self._depth, ram_style=RAM_STYLE[self.mem_style])
        w, r = buffer.w_stream, buffer.r_stream
        m.d.comb += [
            w.payload.eq(self.i.payload),
            w.valid.eq(self.i.valid),
            self.i.ready.eq(w.ready),
            self.o.payload.eq(r.payload),
            self.o.valid.eq(r.valid),
            r.ready.eq(self.o.ready),
        ]
        if self._has_level:
            m.d.comb += self.level.eq(buffer.level)
        return m


StreamFIFOPlan.component = StreamFIFO
