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
from amaranth.hdl import Array, Cat, Const, Module, Shape, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out


from ..arith.planner import plan_compression
from ..arith.popcount import Popcount
from ..checks import (check_bool, check_divides, check_int, check_int_array, check_one_of,
                      check_shape)
from ..control import StallPipeline, fold_counter
from ..kernel import PlannedComponent, StreamFormat, StreamKernel
from ..memory import RAM_STYLE, auto_style, read_only_memory
from ..resources import Resources, memory_cost
from ..shapes import shape_for_range, shape_range

__all__ = ["BinarySearchThreshold", "UnrolledThreshold", "Threshold", "threshold_plan",
           "ThresholdPlan", "BinarySearchThresholdPlan", "UnrolledThresholdPlan", "MEM_STYLES",
           "IMPLS", "check_thresholds", "ConfigSignature"]

MEM_STYLES = ("auto", "registers", "lutram", "bram")


def check_thresholds(thresholds, channels, input_shape):
    """Validate a threshold array for ``channels`` channels of ``input_shape`` inputs.

    Returns an ``int64`` array of shape ``(C, T)`` or ``(1, T)``, each entry clamped to
    ``[min, max + 1]`` of the input range (which keeps every comparison exact).
    """
    array = np.asarray(thresholds)
    if array.ndim != 2 or array.shape[1] < 1 or array.shape[0] not in (1, channels):
        raise ValueError(f"thresholds must have shape ({channels}, T) (per channel) or (1, T) "
                         f"(shared) with T >= 1, not {array.shape}")
    array = check_int_array("thresholds", array)
    falls = np.diff(array, axis=1) < 0
    if falls.any():
        channel, index = map(int, np.argwhere(falls)[0])
        raise ValueError(f"thresholds must be non-decreasing along each channel; "
                         f"thresholds[{channel}] falls at index {index + 1}: "
                         f"{array[channel, index]} then {array[channel, index + 1]}")
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


class ThresholdPlan(StreamKernel):
    """Parameters and timing shared by both thresholding units (see
    :class:`BinarySearchThreshold` for the parameters)."""

    def __init__(self, *, channels, pe=1, input_shape, thresholds, bias=0, vectors=1,
                 mem_style="auto", runtime_writable=False):
        self._channels = check_int("channels", channels, 1)
        self._pe = check_divides("pe", check_int("pe", pe, 1), "channels", self._channels)
        self._vectors = check_int("vectors", vectors, 1)
        shape = check_shape("input_shape", input_shape, max_width=32)
        self._input_shape = shape
        self._bias = check_int("bias", bias)
        self._mem_style = check_one_of("mem_style", mem_style, MEM_STYLES)
        self._runtime_writable = check_bool("runtime_writable", runtime_writable)
        self._thresholds = check_thresholds(thresholds, channels, shape)
        self._compare_shape = (signed if shape.signed else unsigned)(shape.width + 1)
        self._output_shape = shape_for_range(self._bias, self._bias + self.num_thresholds)
        super().__init__()

    @property
    def input_format(self):
        return StreamFormat(self._input_shape, self._pe)

    @property
    def output_format(self):
        return StreamFormat(self._output_shape, self._pe)

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
    def input_burst(self):
        """One beat: a beat per cycle, pipelined."""
        return 1

    @property
    def in_beats_per_frame(self):
        return self.fold * self._vectors

    out_beats_per_frame = in_beats_per_frame

    def channel_thresholds(self, channel):
        return self._thresholds[0 if self._thresholds.shape[0] == 1 else channel]

    def _pipeline(self, m, depth):
        """The :class:`~hwgen.control.StallPipeline` of ``depth`` stages, the fold index of
        the input beat, and the fold index registered along the stages."""
        control = StallPipeline(m, depth=depth, i=self.i, o=self.o)
        fold_in, _ = fold_counter(m, self.fold, self.i.valid & control.advance, name="fold_in")
        return control.advance, fold_in, control.carry(fold_in, "fold")

    def _memory_style(self, depth):
        return self._mem_style if self._mem_style != "auto" else auto_style(depth)


def _comparator_cost(width, constant=False):
    """LUTs and carry cells (CARRY8) of ``a <= b`` on ``width`` bits, as Yosys maps it: about
    two LUTs per three bits, a third of that against a constant."""
    luts = -(-width // 3) if constant else 2 * -(-width // 3)
    return luts, -(-(-(-width // 2)) // 8)


class BinarySearchThresholdPlan(ThresholdPlan):
    """The analysis of :class:`BinarySearchThreshold` (same parameters): timing, memory
    layout, configuration addresses and cost, without hardware."""

    def members(self):
        members = super().members()
        if self._runtime_writable:
            members["cfg"] = In(ConfigSignature(max(1, sum(self._field_widths())),
                                                self._compare_shape))
        return members

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
        """Analytic :class:`~hwgen.resources.Resources`: ``K`` comparators per lane on a
        carry chain, the pipeline registers, and each stage's memory
        (:func:`~hwgen.resources.memory_cost`)."""
        width = Shape.cast(self._compare_shape).width
        in_width, levels, pe = self._input_shape.width, self.levels, self._pe
        ports = "config" if self._runtime_writable else "rom"
        total = Resources(
            luts=(self.fold - 1).bit_length(),                 # the channel-fold counter
            ffs=(pe * (levels * in_width + levels * (levels + 1) // 2)
                 + levels * (self.fold - 1).bit_length() + levels + 1))
        for stage in range(levels):
            style = self.mem_style_of(stage)
            depth = self.rows << stage
            luts, carry = _comparator_cost(width, constant=depth == 1 and style != "bram"
                                           and not self._runtime_writable)
            read_register = width if style != "bram" else 0
            lane = Resources(luts=luts, carry=carry, ffs=read_register)
            total += pe * (lane + memory_cost(depth, width, style, ports=ports))
        return total


class BinarySearchThreshold(BinarySearchThresholdPlan, PlannedComponent):
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

    Members
    -------
    i : stream of ``pe`` lanes of ``input_shape``
    o : stream of ``pe`` lanes of :attr:`output_shape`
    cfg : :class:`ConfigSignature`, flipped (only with ``runtime_writable``)

    Examples
    --------
    ::

        thresholds = np.array([[-3, 0, 5], [1, 1, 2]])      # 2 channels, T = 3
        act = BinarySearchThreshold(channels=2, pe=2, input_shape=signed(8),
                                    thresholds=thresholds, bias=-1)
        m.submodules.act = act                                # act.i, act.o: streams
        # act.output_shape == signed(2), act.latency == 3
    """

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
            return read_only_memory(m, name, init, compare, style, address, advance), None
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
                            attrs={"ram_style": RAM_STYLE[style]})
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


class UnrolledThresholdPlan(ThresholdPlan):
    """The analysis of :class:`UnrolledThreshold` (same parameters)."""

    def __init__(self, *, runtime_writable=False, **params):
        if runtime_writable:
            raise ValueError("runtime_writable=True is supported by BinarySearchThreshold only")
        super().__init__(**params)

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
        """Analytic :class:`~hwgen.resources.Resources`, as
        :meth:`BinarySearchThresholdPlan.estimate`: ``T`` comparators and a ``T``-input
        popcount per lane, and one ``T``-threshold-wide memory word per row."""
        width = Shape.cast(self._compare_shape).width
        count = plan_compression([self.num_thresholds] + [0] * self.num_thresholds.bit_length(),
                                 target="generic").estimate()["luts"]
        word = self.num_thresholds * width
        luts, carry = _comparator_cost(width, constant=self.rows == 1)
        lane = Resources(luts=self.num_thresholds * luts + count,
                         ffs=self._input_shape.width + self.num_thresholds.bit_length() + word,
                         carry=self.num_thresholds * carry)
        lane += memory_cost(self.rows, word, self.mem_style)
        return self._pe * lane + Resources(luts=(self.fold - 1).bit_length(), ffs=2)


class UnrolledThreshold(UnrolledThresholdPlan, PlannedComponent):
    """Multi-threshold activation with all ``T`` comparators in parallel (FINN's classic
    form): the reference :class:`BinarySearchThreshold` beats, and the cheaper choice for
    very few thresholds. Same parameters, ports and results (no ``runtime_writable``).

    Each lane reads all ``T`` thresholds of its channel as one memory word, compares them
    with the input at once, and counts the passes with a compressor-tree
    :class:`~hwgen.arith.popcount.Popcount`. Latency: 2 cycles (memory read, compare and count).
    """

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
            word = read_only_memory(m, f"mem_l{lane}", self.row_words(lane), word_shape,
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


def threshold_plan(*, impl="auto", **params):
    """The plan of a thresholding unit: ``impl="binary"`` (:class:`BinarySearchThresholdPlan`),
    ``"unrolled"`` (:class:`UnrolledThresholdPlan`) or ``"auto"``, the one with the smaller
    analytic estimate of ``luts + lutram + 64 * bram18`` (binary search on ties and whenever
    ``runtime_writable`` is asked for). ``params`` are those of :class:`BinarySearchThreshold`."""
    check_one_of("impl", impl, IMPLS)
    if impl == "binary" or params.get("runtime_writable"):
        return BinarySearchThresholdPlan(**params)
    if impl == "unrolled":
        return UnrolledThresholdPlan(**params)
    binary, unrolled = BinarySearchThresholdPlan(**params), UnrolledThresholdPlan(**params)

    def cost(plan):
        return plan.estimate().lut_equivalent(ffs=0)
    return unrolled if cost(unrolled) < cost(binary) else binary


def Threshold(*, impl="auto", **params):
    """A thresholding unit (a component): :func:`threshold_plan` built."""
    return threshold_plan(impl=impl, **params).build()


BinarySearchThresholdPlan.component = BinarySearchThreshold
UnrolledThresholdPlan.component = UnrolledThreshold
