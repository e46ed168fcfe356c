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
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from .._checks import check_one_of
from .._kernel_params import check_elem_shape, check_int
from ..streams import lanes_signature

__all__ = ["StreamFIFO", "FIFO_MEM_STYLES", "bram18_count", "lutram_luts", "lutram_read_mux_luts"]

FIFO_MEM_STYLES = ("auto", "registers", "lutram", "bram")
_RAM_STYLE = {"registers": "registers", "lutram": "distributed", "bram": "block"}
# (depth, width) aspect ratios of an 18 Kbit block RAM in simple dual-port mode
_BRAM18_ASPECTS = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))
MAX_DEPTH = 1 << 20


def bram18_count(depth, width):
    """18 Kbit block RAMs (simple dual port) holding ``depth`` x ``width`` bits: the best of
    the aspect ratios 512x36 .. 16Kx1, side by side for width and stacked for depth."""
    if depth < 1 or width < 1:
        return 0
    return min(-(-width // w) * -(-depth // d) for d, w in _BRAM18_ASPECTS)


def lutram_luts(depth, width):
    """LUTs used as memory for ``depth`` x ``width`` simple dual-port LUT RAM on UltraScale+:
    banks of 64 entries in RAM64M8 sites (8 LUTs, 64 x 7 bits), the last bank in RAM32M16
    sites (8 LUTs, 32 x 14 bits) when it holds 32 entries or fewer."""
    if depth < 1 or width < 1:
        return 0
    full, rest = divmod(depth, 64)
    luts = full * 8 * -(-width // 7)
    if rest:
        luts += 8 * -(-width // (14 if rest <= 32 else 7))
    return luts


def lutram_read_mux_luts(depth, width):
    """Logic LUTs joining the read data of LUT RAM banks (a LUT6 joins four banks: one per bit per
    three banks beyond the first)."""
    banks = -(-depth // 64)
    return width * -(-(banks - 1) // 3) if banks > 1 else 0


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


class StreamFIFO(wiring.Component):
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

    Ports
    -----
    i : stream of ``lanes`` x ``elem_shape``
    o : stream of ``lanes`` x ``elem_shape``
    level : ``unsigned(ceil(log2(depth + 1)))``, out (only with ``level=True``)

    Example
    -------
    ::

        buf = StreamFIFO(elem_shape=unsigned(4), lanes=8, depth=32)
        m.submodules.buf = buf
        wiring.connect(m, producer.o, buf.i)
        wiring.connect(m, buf.o, consumer.i)
    """

    def __init__(self, *, elem_shape, lanes, depth, mem_style="auto", level=False,
                 beats_per_frame=1):
        self._elem_shape = check_elem_shape("elem_shape", elem_shape)
        self._lanes = check_int("lanes", lanes, 1)
        self._depth = check_int("depth", depth, 1, MAX_DEPTH)
        check_one_of("mem_style", mem_style, FIFO_MEM_STYLES)
        self._mem_style = mem_style
        self._has_level = bool(level)
        self._beats_per_frame = check_int("beats_per_frame", beats_per_frame, 1)
        members = {
            "i": In(lanes_signature(self._elem_shape, self._lanes)),
            "o": Out(lanes_signature(self._elem_shape, self._lanes)),
        }
        if self._has_level:
            members["level"] = Out(range(self._depth + 1))
        super().__init__(members)

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
        return "bram" if 64 * bram18_count(entries, width) < lutram_luts(entries, width) \
            else "lutram"

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

    def estimate(self):
        """Analytic resources on UltraScale+: ``luts`` (logic), ``lutram`` (LUTs used as
        memory), ``ffs``, ``bram18`` and ``dsp48e2`` (always 0)."""
        width, entries = self.width, self.storage_depth
        cost = {"luts": 0, "lutram": 0, "ffs": width + 1, "bram18": 0, "dsp48e2": 0}
        if entries == 0:
            return cost
        pointer = max(1, (entries - 1).bit_length())
        count = entries.bit_length()
        cost["ffs"] += 2 * pointer + count
        cost["luts"] += 2 * pointer + 2 * count + 2      # increments, level, full/empty
        style = self.mem_style
        if style == "registers":
            cost["ffs"] += entries * width
            cost["luts"] += width * -(-(entries - 1) // 3) if entries > 1 else 0
        elif style == "lutram":
            cost["lutram"] = lutram_luts(entries, width)
            cost["luts"] += lutram_read_mux_luts(entries, width)
        else:
            cost["bram18"] = bram18_count(entries, width)
            cost["ffs"] -= width                 # the output register is the BRAM's own
        return cost

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buffer = _StyledSyncFIFOBuffered(
            width=self.width, depth=self._depth, ram_style=_RAM_STYLE[self.mem_style])
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
