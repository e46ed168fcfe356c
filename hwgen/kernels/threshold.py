"""Multi-threshold activation units: binary search, and the classic unrolled form.

A quantized activation is a staircase: ``y = bias + #{i : T[c][i] <= x}`` for the input
``x`` of channel ``c`` and the sorted thresholds ``T[c]``. FINN's unit compares ``x``
with all ``T`` thresholds at once (:class:`UnrolledThreshold`): ``T`` comparators and a
``T``-wide threshold memory per lane, which grows as ``2**K`` for a ``K``-bit output.

:class:`BinarySearchThreshold` finds the same count with ``K = T.bit_length()``
comparisons, one pipeline stage per output bit, MSB first. The thresholds are padded to
``2**K - 1`` entries with "never" and seen as a complete binary search tree: stage ``s``
compares ``x`` with entry ``(2p + 1) * 2**(K-1-s) - 1``, where ``p`` is the ``s``-bit
prefix of the count decided by the stages before, and appends the result as the next bit.
Since the thresholds are sorted, after ``K`` stages the prefix is the count. Storage is
level-wise: stage ``s`` holds its ``2**s`` candidate entries per channel, and the address
it reads (``fold * 2**s + p``) comes from the comparison of the stage before, registered by
the memory's synchronous read port. Per lane, that is ``K`` comparators instead of
``2**K - 1``, and the same ``2**K - 1`` stored thresholds.

Comparisons run one bit wider than the input, so that thresholds outside the input range
stay exact: they are clamped to ``[min, max + 1]``, where ``min`` always passes and
``max + 1`` never does.

Both units stream ``pe`` values of a ``channels``-long vector per beat (channel
``f * pe + k`` in lane ``k`` of the ``f``-th beat of a vector), ``vectors`` vectors per
frame, one beat per cycle. The pipeline advances when its output register is empty or read,
so a stalled output freezes it without losing, duplicating or reordering a beat.
"""

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .._checks import check_one_of
from ..arith.bitheap import shape_for_range
from ..arith.planner import plan_compression
from ..arith.popcount import Popcount
from ..streams import lanes_signature, shape_range
from ..vendor.xilinx.primitives import lut6_rom

__all__ = ["BinarySearchThreshold", "UnrolledThreshold", "Threshold", "MEM_STYLES", "IMPLS",
           "check_thresholds", "ConfigSignature"]

MEM_STYLES = ("auto", "registers", "lutram", "bram")
_RAM_STYLE = {"lutram": "distributed", "bram": "block"}


def _check_int(name, value, minimum):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def check_thresholds(thresholds, channels, input_shape):
    """Validate a threshold array for ``channels`` channels of ``input_shape`` inputs.

    Returns an ``int64`` array of shape ``(C, T)`` or ``(1, T)``, each entry clamped to
    ``[min, max + 1]`` of the input range (which keeps every comparison exact).
    """
    array = np.asarray(thresholds)
    if array.ndim != 2 or array.shape[1] < 1 or array.shape[0] not in (1, channels):
        raise ValueError(f"thresholds must have shape ({channels}, T) (per channel) or (1, T) "
                         f"(shared) with T >= 1, not {array.shape}")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            channel, index = map(int, np.argwhere(bad)[0])
            raise ValueError(f"thresholds must be integers; channel {channel} index {index} is "
                             f"{float(array[channel, index])!r}")
        if np.abs(array).max() >= 2.0 ** 62:
            raise ValueError("thresholds must be within +-2**62")
        array = array.astype(np.int64)
    elif array.dtype.kind == "O":
        for (channel, index), value in np.ndenumerate(array):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ValueError(f"thresholds must be integers; channel {channel} index {index} "
                                 f"is {value!r}")
            if not -2 ** 62 < value < 2 ** 62:
                raise ValueError(f"thresholds must be within +-2**62; channel {channel} index "
                                 f"{index} is {value}")
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise ValueError(f"thresholds must be an integer array, not dtype {array.dtype}")
    array = array.astype(np.int64)
    falls = np.diff(array, axis=1) < 0
    if falls.any():
        channel, index = map(int, np.argwhere(falls)[0])
        raise ValueError(f"thresholds must be non-decreasing along each channel; channel "
                         f"{channel} falls at index {index + 1}: {array[channel, index]} then "
                         f"{array[channel, index + 1]}")
    lo, hi = shape_range(input_shape)
    return np.clip(array, lo, hi + 1)


class ConfigSignature(wiring.Signature):
    """Threshold configuration port (from the point of view of the controller).

    Members: ``addr``, ``wdata``, ``we`` (write strobe), ``re`` (read strobe), ``rdata`` and
    ``rvalid`` (high the cycle after ``re``, with ``rdata``). The address map is given by
    :meth:`BinarySearchThreshold.config_address`.
    """

    def __init__(self, addr_width, data_shape):
        super().__init__({
            "addr": Out(addr_width), "wdata": Out(data_shape), "we": Out(1), "re": Out(1),
            "rdata": In(data_shape), "rvalid": In(1),
        })


class _ThresholdBase(wiring.Component):
    def __init__(self, *, channels, pe, input_shape, thresholds, bias, vectors, mem_style,
                 runtime_writable):
        self._channels = _check_int("channels", channels, 1)
        self._pe = _check_int("pe", pe, 1)
        if channels % pe:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            raise ValueError(f"pe={pe} must divide channels={channels}; valid pe: {divisors}")
        self._vectors = _check_int("vectors", vectors, 1)
        try:
            shape = Shape.cast(input_shape)
        except TypeError:
            raise TypeError(f"input_shape must be an Amaranth shape such as signed(8), not "
                            f"{input_shape!r}") from None
        if not 1 <= shape.width <= 32:
            raise ValueError(f"input_shape must be 1 to 32 bits wide, not {shape.width}")
        self._input_shape = shape
        if not isinstance(bias, (int, np.integer)) or isinstance(bias, bool):
            raise TypeError(f"bias must be an integer, not {bias!r}")
        self._bias = int(bias)
        check_one_of("mem_style", mem_style, MEM_STYLES)
        self._runtime_writable = bool(runtime_writable)
        self._thresholds = check_thresholds(thresholds, channels, shape)
        self._compare_shape = (signed if shape.signed else unsigned)(shape.width + 1)
        self._output_shape = shape_for_range(self._bias, self._bias + self.num_thresholds)
        self._mem_style = mem_style
        members = {
            "i": In(lanes_signature(shape, pe)),
            "o": Out(lanes_signature(self._output_shape, pe)),
        }
        members.update(self._extra_members())
        super().__init__(members)

    def _extra_members(self):
        return {}

    # -- parameters -------------------------------------------------------------------------
    channels = property(lambda self: self._channels)
    pe = property(lambda self: self._pe)
    vectors = property(lambda self: self._vectors)
    input_shape = property(lambda self: self._input_shape)
    output_shape = property(lambda self: self._output_shape)
    bias = property(lambda self: self._bias)

    @property
    def thresholds(self):
        """The validated, clamped thresholds, shape ``(C, T)`` or ``(1, T)`` (a copy)."""
        return self._thresholds.copy()

    @property
    def num_thresholds(self):
        return self._thresholds.shape[1]

    @property
    def shared(self):
        """True when one row of thresholds serves every channel."""
        return self._thresholds.shape[0] == 1 and self._channels > 1

    @property
    def fold(self):
        """Beats per vector: ``channels / pe``."""
        return self._channels // self._pe

    @property
    def cycles_per_frame(self):
        return self.fold * self._vectors

    @property
    def in_beats_per_frame(self):
        return self.fold * self._vectors

    out_beats_per_frame = in_beats_per_frame

    def channel_thresholds(self, channel):
        return self._thresholds[0 if self._thresholds.shape[0] == 1 else channel]

    def _pipeline(self, m, depth):
        """Valid bits of ``depth`` register stages that all advance together when the last
        one is empty or read. Returns ``advance``, the fold index of the input beat, and the
        fold index registered along the stages."""
        valid = [Signal(name=f"valid{s}") for s in range(depth)]
        advance = Signal()
        m.d.comb += [
            advance.eq(~valid[-1] | self.o.ready),
            self.i.ready.eq(advance),
            self.o.valid.eq(valid[-1]),
        ]
        fold_in = Signal(range(max(2, self.fold)))
        if self.fold > 1:
            with m.If(self.i.valid & advance):
                m.d.sync += fold_in.eq(Mux(fold_in == self.fold - 1, 0, fold_in + 1))
        folds = [Signal.like(fold_in, name=f"fold{s}") for s in range(depth)]
        with m.If(advance):
            m.d.sync += [valid[0].eq(self.i.valid), folds[0].eq(fold_in)]
            m.d.sync += [valid[s].eq(valid[s - 1]) for s in range(1, depth)]
            m.d.sync += [folds[s].eq(folds[s - 1]) for s in range(1, depth)]
        return advance, fold_in, folds

    def _memory_style(self, depth):
        if self._mem_style != "auto":
            return self._mem_style
        return "registers" if depth == 1 else "lutram" if depth <= 256 else "bram"


def _memory_cost(depth, width, style, writable):
    """Resources of a ``depth`` x ``width`` table on UltraScale+ (calibrated with Yosys).

    Read-only tables other than block RAM are logic: ``width`` LUTs per 64 entries, and
    nothing for one or two entries (synthesis folds them into the comparator). Writable LUT
    RAM takes two ports' worth of RAM64 sites (stream read, configuration write/read-back);
    writable registers are flip-flops and a 4:1-per-LUT read multiplexer. Block RAM comes in
    18 Kbit halves, at most 36 bits wide per half at depth 512.
    """
    cost = {"luts": 0, "ffs": 0, "bram18": 0, "lutram": 0}
    if style == "bram":
        cost["bram18"] = max(-(-width // 36), -(-depth * width // 18432)) if depth <= 512 \
            else -(-width // 18) * -(-depth // 1024)
    elif writable and style == "lutram":
        cost["lutram"] = 2 * width * -(-depth // 64)
    elif writable:
        cost["ffs"] = depth * width
        cost["luts"] = width * -(-(depth - 1) // 4)
    elif depth > 2:
        cost["luts"] = width * -(-depth // 64)
    return cost


def _comparator_cost(width, constant=False):
    """LUTs and carry cells (CARRY8) of ``a <= b`` on ``width`` bits, as Yosys maps it: about
    two LUTs per three bits, a third of that against a constant."""
    luts = -(-width // 3) if constant else 2 * -(-width // 3)
    return luts, -(-(-(-width // 2)) // 8)


def _read_only_memory(m, name, init, shape, style, address, enable, instance=False):
    """Registered read of a constant table: block RAM (``bram``: a ``lib.memory`` memory
    without write port, ``ram_style = "block"``), logic (``lutram``) or constants selected by
    a multiplexer into a register (``registers``).

    A ``lutram`` table is built as one truth table per data bit, indexed by the address
    (``Const(column).bit_select(address, 1)``): synthesis maps each to exactly one LUT6 per 64
    words (with MUXF7/MUXF8 above), where Yosys' own ROM mapping of a ``lib.memory`` memory
    takes about 3.5 LUTs per bit at 64 words. (Yosys also rejects
    ``ram_style = "distributed"`` on a memory that is never written.)"""
    data = Signal(shape, name=f"{name}_data")
    if style == "registers":
        table = Array(Const(value, shape) for value in init)
        with m.If(enable):
            m.d.sync += data.eq(table[address] if len(init) > 1 else table[0])
        return data
    if style == "lutram":
        width = Shape.cast(shape).width
        words = [int(value) & ((1 << width) - 1) for value in init]
        columns = [sum((word >> bit & 1) << index for index, word in enumerate(words))
                   for bit in range(width)]
        if instance and len(words) > 1:
            bits = [lut6_rom(m, column, len(words), address, name=f"{name}_b{bit}")
                    for bit, column in enumerate(columns)]
        else:
            bits = [Const(column, len(words)).bit_select(address, 1) if len(words) > 1
                    else Const(column, 1) for column in columns]
        with m.If(enable):
            m.d.sync += data.eq(Cat(*bits))
        return data
    mem = memory.Memory(shape=shape, depth=len(init), init=init, attrs={"ram_style": "block"})
    m.submodules[name] = mem
    read = mem.read_port()
    m.d.comb += [read.addr.eq(address), read.en.eq(enable), data.eq(read.data)]
    return data


class BinarySearchThreshold(_ThresholdBase):
    """Multi-threshold activation by binary search: ``y = bias + #{i : T[c][i] <= x}``.

    Parameters
    ----------
    channels : int
        Channels ``C`` per vector.
    pe : int
        Values per beat (lanes); must divide ``channels``.
    input_shape : ShapeLike
        ``signed(w)`` or ``unsigned(w)``, 1 <= w <= 32.
    thresholds : array-like of int, shape ``(C, T)`` or ``(1, T)``
        Non-decreasing along each channel; equal neighbours are fine; values outside the
        input range are clamped (exactly).
    bias : int
        Added to the count; the output shape is the narrowest holding ``bias .. bias + T``.
    vectors : int
        Vectors per frame (for ``cycles_per_frame``).
    mem_style : ``"auto"``, ``"registers"``, ``"lutram"`` or ``"bram"``
        Storage of each stage's thresholds. ``auto``: registers for stages with one entry
        per lane, LUT RAM up to 256 entries, block RAM above.
    runtime_writable : bool
        Add the configuration port ``cfg`` (:class:`ConfigSignature`) to write and read back
        any threshold while the stream flows. A write reaches the beats that read the entry
        after it; beats already in the pipeline may see either value.

    Ports
    -----
    i : stream of ``pe`` lanes of ``input_shape``
    o : stream of ``pe`` lanes of :attr:`output_shape`
    cfg : :class:`ConfigSignature`, flipped (only with ``runtime_writable``)

    Example
    -------
    ::

        thresholds = np.array([[-3, 0, 5], [1, 1, 2]])      # 2 channels, T = 3
        act = BinarySearchThreshold(channels=2, pe=2, input_shape=signed(8),
                                    thresholds=thresholds, bias=-1)
        m.submodules.act = act                                # act.i, act.o: streams
        # act.output_shape == signed(2), act.latency == 3
    """

    def __init__(self, *, channels, pe=1, input_shape, thresholds, bias=0, vectors=1,
                 mem_style="auto", runtime_writable=False):
        super().__init__(channels=channels, pe=pe, input_shape=input_shape,
                         thresholds=thresholds, bias=bias, vectors=vectors, mem_style=mem_style,
                         runtime_writable=runtime_writable)

    def _extra_members(self):
        if not self._runtime_writable:
            return {}
        return {"cfg": In(ConfigSignature(max(1, sum(self._field_widths())), self._compare_shape))}

    @property
    def levels(self):
        """Pipeline stages of the search, ``K = T.bit_length()``: also the output bits of the
        count."""
        return self.num_thresholds.bit_length()

    @property
    def latency(self):
        """Input register, then one cycle per level."""
        return self.levels + 1

    @property
    def rows(self):
        """Threshold rows stored per lane: the fold, or 1 for shared thresholds."""
        return 1 if self._thresholds.shape[0] == 1 else self.fold

    def padded(self, channel):
        """Channel ``channel``'s thresholds padded to ``2**K - 1`` with "never"."""
        never = shape_range(self._input_shape)[1] + 1
        row = self.channel_thresholds(channel)
        return np.concatenate([row, np.full((1 << self.levels) - 1 - len(row), never)])

    @staticmethod
    def tree_position(index, levels):
        """``(stage, prefix)`` where padded entry ``index`` sits in the search tree."""
        below = (index + 1 & -(index + 1)).bit_length() - 1    # trailing zeros of index + 1
        stage = levels - 1 - below
        return stage, (index + 1) >> (below + 1)

    def stage_init(self, lane, stage):
        """Initial contents of the memory of ``stage`` for ``lane``: ``rows * 2**stage``
        entries, ``fold * 2**stage + prefix`` for the fold's channel."""
        entries = 1 << stage
        init = []
        for row in range(self.rows):
            padded = self.padded(row * self._pe + lane)
            for prefix in range(entries):
                init.append(int(padded[(2 * prefix + 1) * (1 << (self.levels - 1 - stage)) - 1]))
        return init

    def mem_style_of(self, stage):
        """The memory style used for ``stage`` (resolving ``auto``: registers for one entry
        per lane, LUT RAM up to 256 entries, block RAM above)."""
        return self._memory_style(self.rows << stage)

    # -- configuration address map --------------------------------------------------------
    def _field_widths(self):
        return ((self.levels - 1).bit_length(), (self._pe - 1).bit_length(),
                (self.rows - 1).bit_length(), self.levels - 1)

    def config_address(self, channel, index):
        """Address of threshold ``index`` of ``channel`` on the ``cfg`` port.

        The address is the bit fields ``{stage, lane, row, prefix}`` (MSB first) with
        widths ``ceil(log2 K)``, ``ceil(log2 pe)``, ``ceil(log2 rows)`` and ``K - 1``;
        ``(stage, prefix)`` is the entry's place in the search tree (see
        :meth:`tree_position`), ``lane = channel % pe`` and ``row = channel // pe``
        (``row = 0`` and channel ``0 .. pe-1`` for shared thresholds, one copy per lane).
        Padded entries ``T .. 2**K - 2`` (value "never") are addressable too.
        """
        if not 0 <= channel < self._channels:
            raise ValueError(f"channel must be in 0..{self._channels - 1}, not {channel}")
        if not 0 <= index < (1 << self.levels) - 1:
            raise ValueError(f"index must be in 0..{(1 << self.levels) - 2}, not {index}")
        stage, prefix = self.tree_position(index, self.levels)
        lane, row = channel % self._pe, (0 if self.rows == 1 else channel // self._pe)
        _, lane_w, row_w, prefix_w = self._field_widths()
        return (((stage << lane_w | lane) << row_w | row) << prefix_w) | prefix

    def estimate(self):
        """Analytic estimate (``luts``, ``ffs``, ``carry``, ``bram18``, ``lutram``): ``K``
        comparators per lane on a carry chain, the pipeline registers, and each stage's
        memory."""
        width = Shape.cast(self._compare_shape).width
        in_width, levels, pe = self._input_shape.width, self.levels, self._pe
        cost = {"luts": 0, "carry": 0, "bram18": 0, "lutram": 0,
                "ffs": (pe * (levels * in_width + levels * (levels + 1) // 2) +
                        levels * (self.fold - 1).bit_length() + levels + 1)}
        for stage in range(levels):
            style = self.mem_style_of(stage)
            depth = self.rows << stage
            luts, carry = _comparator_cost(width, constant=depth == 1 and style != "bram"
                                           and not self._runtime_writable)
            cost["luts"] += pe * luts
            cost["carry"] += pe * carry
            if style != "bram":
                cost["ffs"] += pe * width      # the registered read of a stage's table
            for key, value in _memory_cost(depth, width, style, self._runtime_writable).items():
                cost[key] += pe * value
        cost["luts"] += (self.fold - 1).bit_length()       # the channel-fold counter
        return cost

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        pe, levels = self._pe, self.levels
        compare = self._compare_shape
        advance, fold_in, fold = self._pipeline(m, levels + 1)

        cfg_reads = []
        for lane in range(pe):
            values = [Signal(self._input_shape, name=f"x{s}_l{lane}") for s in range(levels + 1)]
            prefixes = [Signal(max(1, s), name=f"p{s}_l{lane}") for s in range(levels + 1)]
            with m.If(advance):
                m.d.sync += values[0].eq(self.i.payload[lane])
                m.d.sync += [values[s + 1].eq(values[s]) for s in range(levels)]
            for stage in range(levels):
                # the address this stage reads is issued one cycle earlier, from the stage
                # before: its fold and its prefix extended by its comparison result
                if stage == 0:
                    address = 0 if self.rows == 1 else fold_in
                else:
                    row = 0 if self.rows == 1 else fold[stage - 1]
                    address = (row << stage) | next_prefix
                data, cfg_read = self._stage_memory(m, lane, stage, address, advance, compare)
                cfg_reads.append(cfg_read)
                passed = data <= values[stage]
                next_prefix = Signal(stage + 1, name=f"np{stage}_l{lane}")
                m.d.comb += next_prefix.eq((prefixes[stage] << 1 | passed) if stage else passed)
                with m.If(advance):
                    m.d.sync += prefixes[stage + 1].eq(next_prefix)
            m.d.comb += self.o.payload[lane].eq(prefixes[levels] + self._bias)
        if self._runtime_writable:
            self._config_readback(m, cfg_reads)
        return m

    def _stage_memory(self, m, lane, stage, address, advance, compare):
        """Memory of ``stage`` for ``lane``, read at ``address`` (registered, enabled by
        ``advance``). Returns the read data and, when runtime-writable, ``(select, data)``
        for the configuration read-back."""
        init = self.stage_init(lane, stage)
        style = self.mem_style_of(stage)
        name = f"mem_s{stage}_l{lane}"
        if not self._runtime_writable:
            return _read_only_memory(m, name, init, compare, style, address, advance), None
        stage_w, lane_w, row_w, prefix_w = self._field_widths()
        cfg = self.cfg
        hit = Signal(name=f"{name}_hit")
        m.d.comb += hit.eq((cfg.addr[prefix_w + row_w + lane_w:] == stage if stage_w else 1) &
                           (cfg.addr[prefix_w + row_w:prefix_w + row_w + lane_w] == lane if lane_w else 1))
        # this stage's entry: the row field above the low ``stage`` bits of the prefix field
        local = Signal(max(1, (len(init) - 1).bit_length()), name=f"{name}_caddr")
        row_field = cfg.addr[prefix_w:prefix_w + row_w] if row_w else Const(0, 1)
        m.d.comb += local.eq((row_field << stage) | cfg.addr[:stage] if stage else row_field)
        data = Signal(compare, name=f"{name}_data")
        if style == "registers":
            table = Array(Signal(compare, init=value, name=f"{name}_{k}") for k, value in enumerate(init))
            with m.If(cfg.we & hit):
                m.d.sync += table[local].eq(cfg.wdata)
            with m.If(advance):
                m.d.sync += data.eq(table[address] if len(init) > 1 else table[0])
            return data, (hit, table[local], False)
        mem = memory.Memory(shape=compare, depth=len(init), init=init,
                            attrs={"ram_style": _RAM_STYLE[style]})
        m.submodules[name] = mem
        read, write = mem.read_port(), mem.write_port()
        # read-back: asynchronous from LUT RAM, synchronous (a cycle later) from block RAM
        back = mem.read_port(domain="comb") if style == "lutram" else mem.read_port()
        m.d.comb += [read.addr.eq(address), read.en.eq(advance), data.eq(read.data),
                     write.addr.eq(local), write.data.eq(cfg.wdata), write.en.eq(cfg.we & hit),
                     back.addr.eq(local)]
        return data, (hit, back.data, style == "bram")

    def _config_readback(self, m, cfg_reads):
        """``rdata`` and ``rvalid`` a cycle after ``re``: block RAM read-back ports are
        synchronous already; asynchronous reads are captured to arrive at the same time."""
        cfg = self.cfg
        m.d.sync += cfg.rvalid.eq(cfg.re)
        for hit, data, synchronous in cfg_reads:
            if not synchronous:
                captured = Signal.like(cfg.rdata)
                with m.If(cfg.re & hit):
                    m.d.sync += captured.eq(data)
                data = captured
            hit_q = Signal()
            m.d.sync += hit_q.eq(hit)
            with m.If(hit_q):
                m.d.comb += cfg.rdata.eq(data)


class UnrolledThreshold(_ThresholdBase):
    """Multi-threshold activation with all ``T`` comparators in parallel (FINN's classic
    form): the reference :class:`BinarySearchThreshold` beats, and the cheaper choice for
    very few thresholds. Same parameters, ports and results (no ``runtime_writable``).

    Each lane reads all ``T`` thresholds of its channel as one memory word, compares them
    with the input at once, and counts the passes with a compressor-tree
    :class:`~hwgen.arith.compressor.Popcount`. Latency: 2 cycles (memory read, compare and count).
    """

    def __init__(self, *, channels, pe=1, input_shape, thresholds, bias=0, vectors=1,
                 mem_style="auto", runtime_writable=False):
        if runtime_writable:
            raise ValueError("runtime_writable=True is supported by BinarySearchThreshold only")
        super().__init__(channels=channels, pe=pe, input_shape=input_shape,
                         thresholds=thresholds, bias=bias, vectors=vectors, mem_style=mem_style,
                         runtime_writable=False)

    latency = 2

    @property
    def rows(self):
        return 1 if self._thresholds.shape[0] == 1 else self.fold

    @property
    def mem_style(self):
        return self._memory_style(self.rows)

    def row_words(self, lane):
        """Memory words of ``lane``: all thresholds of a channel, threshold ``i`` at bits
        ``[i*w, (i+1)*w)`` with ``w`` the comparison width."""
        width = Shape.cast(self._compare_shape).width
        mask = (1 << width) - 1
        return [sum((int(t) & mask) << (k * width)
                    for k, t in enumerate(self.channel_thresholds(row * self._pe + lane)))
                for row in range(self.rows)]

    def estimate(self):
        """Analytic estimate, as :meth:`BinarySearchThreshold.estimate`: ``T`` comparators
        and a ``T``-input popcount per lane, and one ``T``-threshold-wide memory word per
        row."""
        width = Shape.cast(self._compare_shape).width
        count = plan_compression([self.num_thresholds] + [0] * self.num_thresholds.bit_length(),
                                 target="generic").estimate()["luts"]
        word = self.num_thresholds * width
        luts, carry = _comparator_cost(width, constant=self.rows == 1)
        cost = {"luts": self._pe * (self.num_thresholds * luts + count) + (self.fold - 1).bit_length(),
                "ffs": self._pe * (self._input_shape.width + self.num_thresholds.bit_length() + word) + 2,
                "carry": self._pe * self.num_thresholds * carry, "bram18": 0, "lutram": 0}
        for key, value in _memory_cost(self.rows, word, self.mem_style, False).items():
            cost[key] += self._pe * value
        return cost

    def elaborate(self, platform):
        m = Module()
        compare = self._compare_shape
        width = Shape.cast(compare).width
        advance, fold_in, _ = self._pipeline(m, 2)
        word_shape = unsigned(self.num_thresholds * width)
        address = 0 if self.rows == 1 else fold_in
        for lane in range(self._pe):
            value = Signal(self._input_shape, name=f"x_l{lane}")
            with m.If(advance):
                m.d.sync += value.eq(self.i.payload[lane])
            word = _read_only_memory(m, f"mem_l{lane}", self.row_words(lane), word_shape,
                                     self.mem_style, address, advance)
            m.submodules[f"count_l{lane}"] = count = Popcount(self.num_thresholds)
            m.d.comb += count.i.eq(Cat(
                word.word_select(k, width).as_signed() <= value if compare.signed
                else word.word_select(k, width) <= value
                for k in range(self.num_thresholds)))
            result = Signal(self._output_shape, name=f"y_l{lane}")
            with m.If(advance):
                m.d.sync += result.eq(count.o + self._bias)
            m.d.comb += self.o.payload[lane].eq(result)
        return m


IMPLS = ("auto", "binary", "unrolled")


def Threshold(*, impl="auto", **kwargs):
    """Build a thresholding unit: ``impl="binary"`` (:class:`BinarySearchThreshold`),
    ``"unrolled"`` (:class:`UnrolledThreshold`) or ``"auto"``, the one with the smaller
    analytic estimate of ``luts + lutram + 64 * bram18`` (binary search on ties and whenever
    ``runtime_writable`` is asked for)."""
    check_one_of("impl", impl, IMPLS)
    if impl == "binary" or kwargs.get("runtime_writable"):
        return BinarySearchThreshold(**kwargs)
    if impl == "unrolled":
        return UnrolledThreshold(**kwargs)
    binary, unrolled = BinarySearchThreshold(**kwargs), UnrolledThreshold(**kwargs)

    def cost(unit):
        estimate = unit.estimate()
        return estimate["luts"] + estimate["lutram"] + 64 * estimate["bram18"]
    chosen, dropped = (unrolled, binary) if cost(unrolled) < cost(binary) else (binary, unrolled)
    dropped._MustUse__silence = True      # built only for its estimate
    return chosen
