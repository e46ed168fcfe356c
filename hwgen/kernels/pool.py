"""Window pooling: max pooling, window sums (average pooling) and global sums.

One machinery, one reduction chosen by the kernel: :class:`MaxPool` keeps the maximum of
every ``kh`` x ``kw`` window (``kernel=(kh, kw)``, ``stride=(sh, sw)``), :class:`AvgPool`
its exact integer sum (the division by ``kh * kw`` is folded into the next layer's
thresholds by the graph), and :class:`GlobalAccPool` the sum over the whole ``H`` x ``W``
map (a window as large as the map). Windows start every ``stride`` pixels per axis; the
output map is ``OH`` x ``OW`` with ``OH = (H - kh) // sh + 1`` (ONNX's default floor mode:
pixels after the last whole window are read and dropped), ``OW`` likewise, and has the
input's ``C`` channels. Padding is a separate kernel (:class:`~hwgen.kernels.pad.Pad`).

The map streams in NHWC, ``pe`` channels per beat, one beat per cycle. Each input pixel is
folded into every window that covers it, in a buffer of partial results (running maxima or
running sums), and a window's result leaves when its last pixel (bottom right) arrives, so
the output is again in NHWC order. Windows that overlap (``kernel > stride``) are
tracked in ``ceil(kh / sh) * ceil(kw / sw)`` *slots*: window ``(oy, ox)`` lives in slot
``(oy mod ceil(kh/sh), ox mod ceil(kw/sw))``, which no other window uses while it is open,
so every pixel updates each slot at most once. Each slot holds one entry per output
column it serves per channel fold, so all slots together hold ``ceil(kh / sh) * OW * C /
pe`` entries; with ``kernel == stride`` that is one slot of ``OW * C / pe`` entries: a row
buffer of partial results, never a frame. The buffer's entries
are ``pe`` accumulators wide (:attr:`WindowPoolPlan.buffer_shapes`); a slot of one entry is
a register, the rest are memories with one write and one read port (``amaranth.lib.memory``,
LUT RAM or block RAM by depth, costed by :func:`hwgen.resources.memory_cost`).

Pipeline, two register stages that advance together (:class:`~hwgen.control.StallPipeline`):

0. the input register takes the beat with its position flags (from per-axis tables of
   which slots it opens, updates or closes), while every slot's buffer reads the entry of
   the window the beat falls into;
1. as the beat moves on, each slot writes back ``first ? x : reduce(entry, x)`` per lane,
   and the result of the slot whose window the beat closes fills the output register.

An entry is read again ``C / pe`` beats after it was written (the next pixel of its window)
at the soonest, so with two or more beats per pixel the write has landed before the read;
with one beat per pixel the memories read through (``transparent_for`` their write port).

Reductions: ``max`` compares in the element's own domain (signed, unsigned) and is an OR of
the bits for bipolar elements (the maximum of decoded -1/+1 values). Max pooling commutes
with any monotone non-decreasing activation, ``max(act(x)) == act(max(x))``, so the graph
may move it after a threshold activation (FINN's threshold swap) and pool small activation
codes; the kernel is exact on any integer shape. ``sum`` adds decoded values (bipolar:
-1/+1) in accumulators of :attr:`WindowPoolPlan.output_shape`, the narrowest shape of the
exact range ``[kh * kw * min, kh * kw * max]`` (:func:`~hwgen.shapes.shape_for_range`).

Timing: one input beat per cycle (``cycles_per_frame = H * W * C / pe``); the output beat of
window ``(oy, ox)`` and fold ``f`` leaves two cycles after the input beat
``((oy * sh + kh - 1) * W + ox * sw + kw - 1) * C / pe + f`` (:meth:`WindowPoolPlan.out_times`).

Cost: per slot and lane one reducer (a comparator and a select for ``max``, an adder for
``sum``), the slot buffers, the input and output registers, a multiplexer choosing the
closing slot when there are several, the position counters and their flag tables.
"""

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import data, memory

from ..control import StallPipeline
from ..kernel import PlannedComponent, StreamFormat
from ..memory import RAM_STYLE, auto_style
from ..resources import Resources, memory_cost
from ..shapes import BIPOLAR, cast_operand, element_shape, shape_for_range, shape_range
from ..checks import check_per_axis
from ..featuremap import MapKernelPlan, pixel_counters

__all__ = ["WindowPoolPlan", "WindowPool", "MaxPool", "MaxPoolPlan", "AvgPool", "AvgPoolPlan",
           "GlobalAccPool", "GlobalAccPoolPlan", "axis_roles", "REDUCTIONS"]

#: The reductions of the window machinery.
REDUCTIONS = ("max", "sum")

#: The widest input element: sums stay exact in 64-bit golden models.
MAX_INPUT_WIDTH = 32


def axis_roles(size, kernel, stride):
    """What every position along one axis does to the windows of that axis.

    Windows ``o = 0 .. (size - kernel) // stride`` cover positions ``o * stride ..
    o * stride + kernel - 1`` and live in slot ``o % ceil(kernel / stride)``.

    Returns
    -------
    list of (active, first, closing, windows)
        Per position: bit masks of the slots whose window covers it (``active``) and of those
        it opens (``first``), the slot whose window it closes (or None), and per slot the
        window it falls into (or None).
    """
    slots = -(-kernel // stride)
    count = (size - kernel) // stride + 1
    roles = []
    for position in range(size):
        active, first, closing, windows = 0, 0, None, [None] * slots
        for window in range(count):
            offset = position - window * stride
            if 0 <= offset < kernel:
                slot = window % slots
                active |= 1 << slot
                first |= (offset == 0) << slot
                windows[slot] = window
                if offset == kernel - 1:
                    closing = slot
        roles.append((active, first, closing, tuple(windows)))
    return roles


class WindowPoolPlan(MapKernelPlan):
    """The analysis of :class:`WindowPool`: the window machinery of :class:`MaxPool`,
    :class:`AvgPool` and :class:`GlobalAccPool`, whose class attribute :attr:`reduction`
    (``"max"`` or ``"sum"``) chooses the reduction. Parameters as :class:`MaxPool`."""

    #: ``"max"`` or ``"sum"`` (set by each kernel).
    reduction = None

    def __init__(self, *, ifm, channels, pe=1, kernel, stride=None, input_shape):
        if self.reduction not in REDUCTIONS:
            raise TypeError(f"{type(self).__name__} names no reduction: use MaxPool, AvgPool "
                            f"or GlobalAccPool")
        self._set_map(ifm, channels, pe, "pe")
        self._kernel = check_per_axis("kernel", kernel, ("K_h", "K_w"))
        self._stride = self._kernel if stride is None else check_per_axis("stride", stride)
        size = self.ifm
        if any(k > n for k, n in zip(self._kernel, size)):
            raise ValueError(f"kernel {self._kernel} is larger than the {size[0]}x{size[1]} "
                             f"map: each axis must be at most {size}")
        if any(s > n for s, n in zip(self._stride, size)):
            raise ValueError(f"stride {self._stride} skips past the {size[0]}x{size[1]} map, "
                             f"so no valid output follows the first window on that axis: "
                             f"stride must be at most {size}")
        self._input_shape = cast_operand("input_shape", input_shape, max_width=MAX_INPUT_WIDTH)
        super().__init__()

    # -- parameters -------------------------------------------------------------------------
    pe = property(lambda self: self._lanes)
    kernel = property(lambda self: self._kernel, doc="The window ``(K_h, K_w)``.")
    stride = property(lambda self: self._stride)
    input_shape = property(lambda self: self._input_shape)

    @property
    def ofm(self):
        """Output map ``(OH, OW)``: ``((H - K_h) // S_h + 1, (W - K_w) // S_w + 1)``."""
        return tuple((n - k) // s + 1 for n, k, s in zip(self.ifm, self._kernel, self._stride))

    @property
    def slots(self):
        """Slots per axis, ``(ceil(kh / sh), ceil(kw / sw))``: the windows of an axis open at
        one position."""
        return tuple(-(-k // s) for k, s in zip(self._kernel, self._stride))

    @property
    def output_shape(self):
        """The result's shape: the input's for ``max``; for ``sum`` the narrowest shape of
        ``[kh * kw * min, kh * kw * max]`` (decoded -1/+1 for bipolar inputs)."""
        if self.reduction == "max":
            return self._input_shape
        lo, hi = shape_range(self._input_shape)
        count = self._kernel[0] * self._kernel[1]
        return shape_for_range(count * lo, count * hi)

    @property
    def input_format(self):
        return StreamFormat(element_shape(self._input_shape), self.pe)

    @property
    def output_format(self):
        return StreamFormat(element_shape(self.output_shape), self.pe)

    def slot_columns(self, slot_column):
        """Output columns served by the slots of column ``slot_column``."""
        return -(-(self.ofm[1] - slot_column) // self.slots[1])

    @property
    def buffer_shapes(self):
        """``(depth, width)`` of every slot's buffer, row slot by column slot: the output
        columns it serves times ``fold`` entries of ``pe`` accumulators. Axes with a window
        of one pixel need no buffer (every pixel opens and closes its window)."""
        if self._kernel == (1, 1):
            return []
        width = self.pe * element_shape(self.output_shape).width
        rows, columns = self.slots
        return [(self.slot_columns(q) * self.fold, width)
                for _ in range(rows) for q in range(columns)]

    # -- timing (MapKernelPlan): one input beat per cycle, an output beat two cycles after
    # the input beat that closes its window
    source_delay = 2

    def source_beats(self):
        """For every output beat of a frame, the input beat that closes its window."""
        (kh, kw), (sh, sw), fold = self._kernel, self._stride, self.fold
        return [((oy * sh + kh - 1) * self._width + ox * sw + kw - 1) * fold + f
                for oy in range(self.ofm[0]) for ox in range(self.ofm[1])
                for f in range(fold)]

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+, calibrated against Yosys
        (``synth_xilinx -family xcup``: within ~10% from about 100 LUTs; smaller kernels up
        to ~16 LUTs high, the control).

        Per slot and lane a reducer of the accumulator width ``w``: for ``sum`` an adder (``w``
        LUTs in front of the carry chain, the mask of an opening pixel folded in), for
        ``max`` a select per bit, plus a comparator on a carry chain (``ceil(w / 2) + 1``
        LUTs) from three bits on, and an OR per bit for bipolar elements. Slot buffers by
        :func:`~hwgen.resources.memory_cost` (``sdp``), LUT RAM with its read register (a
        block RAM registers its read data itself), a one-entry slot as a register, and a
        read-through bypass (a select per bit and an address comparison) for memories with
        one beat per pixel; a ``ceil((slots - 1) / 3)``-LUT per bit multiplexer of the
        closing slot; the input, output, flag and address registers; the position counters
        (a LUT per bit on a carry chain) and the flag tables (a table in logic,
        :func:`~hwgen.resources.memory_cost`).
        """
        pe, (rows, columns) = self.pe, self.slots
        slots = rows * columns
        in_width = element_shape(self._input_shape).width
        width = element_shape(self.output_shape).width
        total = Resources()
        if self.buffer_shapes:
            total += self._reducer(width) * (pe * slots)
        for depth, bits in self.buffer_shapes:
            if depth == 1:
                total += Resources(ffs=bits)
                continue
            style = auto_style(depth)
            total += memory_cost(depth, bits, style, ports="sdp")
            if style != "bram":          # a block RAM registers its read data itself
                total += Resources(ffs=bits)
            if self.fold == 1:
                total += Resources(luts=bits + -(-(depth - 1).bit_length() // 3))
        total += Resources(luts=pe * width * -(-(slots - 1) // 3))
        address_bits = [(depth - 1).bit_length() for depth, _ in self.buffer_shapes[:columns]]
        counters = [(n - 1).bit_length() for n in (self.fold, self._width, self._height)
                    if n > 1]
        flag_bits = [2 * n + 1 + (n - 1).bit_length() for n in (rows, columns)]
        for size, bits in zip((self._height, self._width), flag_bits):
            total += memory_cost(size, bits, "registers")
        total += Resources(
            luts=sum(bits + 1 for bits in counters) + (sum(address_bits) if self.fold > 1
                                                       and columns > 1 else 0) + 2,
            ffs=pe * (in_width + width) + sum(counters) + sum(flag_bits) + sum(address_bits) + 2)
        return total

    def _reducer(self, width):
        """LUTs and carry cells of one lane's reducer (see :meth:`estimate`)."""
        if self.reduction == "sum":
            return Resources(luts=width, carry=-(-width // 8))
        if self._input_shape == BIPOLAR or width <= 2:
            return Resources(luts=width)
        return Resources(luts=-(-width // 2) + 1 + width, carry=-(-width // 8))


class WindowPool(WindowPoolPlan, PlannedComponent):
    """The window machinery as hardware (see the module documentation); built as
    :class:`MaxPool`, :class:`AvgPool` or :class:`GlobalAccPool`."""

    def elaborate(self, platform):
        m = Module()
        pe, (rows, columns) = self.pe, self.slots
        acc_shape = element_shape(self.output_shape)
        closes0 = Signal()
        stage = StallPipeline(m, depth=2, i=self.i, o=self.o, emit=closes0)
        advance = stage.advance
        row, column, fold = pixel_counters(m, height=self._height, width=self._width,
                                           fold=self.fold, step=self.i.valid & advance,
                                           name="in")

        # stage 0: the input beat and its position flags; the slot buffers read its entries
        x_roles = axis_roles(self._width, self._kernel[1], self._stride[1])
        flags = (self._position_flags(m, row, axis_roles(self._height, self._kernel[0],
                                                         self._stride[0]), "y")
                 + self._position_flags(m, column, x_roles, "x"))
        addresses = self._slot_addresses(m, column, fold, x_roles)
        raw0 = Signal(data.ArrayLayout(element_shape(self._input_shape), pe), name="x0")
        flags0 = [Signal.like(flag, name=f"{flag.name}0") for flag in flags]
        addresses0 = [Signal.like(address, name=f"{address.name}0") for address in addresses]
        with m.If(advance):
            m.d.sync += raw0.eq(self.i.payload)
            m.d.sync += [reg.eq(value) for reg, value in zip(flags0 + addresses0,
                                                             flags + addresses)]
        y_active, y_first, y_closes, y_slot, x_active, x_first, x_closes, x_slot = flags0
        m.d.comb += closes0.eq(y_closes & x_closes)
        values = [self._decode(raw0[lane]) for lane in range(pe)]

        # every slot folds the beat into its entry; the closing slot fills the output register
        buffered = bool(self.buffer_shapes)
        results = []
        for r in range(rows):
            for q in range(columns):
                new = Signal(data.ArrayLayout(acc_shape, pe), name=f"new{r}_{q}")
                if buffered:
                    depth = self.buffer_shapes[r * columns + q][0]
                    entry = self._slot_buffer(
                        m, f"slot{r}_{q}", depth, new, read_address=addresses[q],
                        write_address=addresses0[q], read_enable=advance,
                        write_enable=advance & stage.valid[0] & y_active[r] & x_active[q])
                    first = y_first[r] & x_first[q]
                    m.d.comb += [new[lane].eq(self._fold_in(first, entry[lane], values[lane]))
                                 for lane in range(pe)]
                else:
                    m.d.comb += [new[lane].eq(values[lane]) for lane in range(pe)]
                results.append(new)
        result = results[0] if len(results) == 1 else \
            Array(results)[y_slot * columns + x_slot]
        with m.If(advance):
            m.d.sync += self.o.payload.eq(result)
        return m

    @staticmethod
    def _position_flags(m, position, roles, axis):
        """Comb flags of ``position`` along an axis (from :func:`axis_roles`): slots covered,
        slots opened, whether it closes a window and which slot that is."""
        slots = len(roles[0][3])
        active = Signal(slots, name=f"{axis}_active")
        first = Signal(slots, name=f"{axis}_first")
        closes = Signal(name=f"{axis}_closes")
        slot = Signal(range(max(2, slots)), name=f"{axis}_slot")
        with m.Switch(position):
            for index, (mask, opens, closing, _) in enumerate(roles):
                if mask:
                    with m.Case(index):
                        m.d.comb += [active.eq(mask), first.eq(opens)]
                        if closing is not None:
                            m.d.comb += [closes.eq(1), slot.eq(closing)]
        return [active, first, closes, slot]

    def _slot_addresses(self, m, column, fold, x_roles):
        """Per column slot, the buffer entry of the beat at ``column`` and fold ``fold``: the
        window of that slot covering the column, over the column slots, times the beats per
        pixel, plus ``fold`` (``(ox // slots[1]) * C / pe + f``)."""
        columns = self.slots[1]
        addresses = []
        for q in range(columns):
            depth = self.slot_columns(q) * self.fold
            base = Signal(range(max(2, depth)), name=f"base{q}")
            address = Signal(range(max(2, depth)), name=f"address{q}")
            with m.Switch(column):
                for index, (_, _, _, windows) in enumerate(x_roles):
                    if windows[q] is not None and windows[q] // columns:
                        with m.Case(index):
                            m.d.comb += base.eq(windows[q] // columns * self.fold)
            m.d.comb += address.eq(base + fold)
            addresses.append(address)
        return addresses

    def _slot_buffer(self, m, name, depth, write_data, *, read_address, write_address,
                     read_enable, write_enable):
        """The entries of one slot: a register for one entry, else a memory with a
        synchronous read port (reading through its write port when every pixel is one beat,
        so that the next pixel sees the entry just written). Returns the entry read."""
        if depth == 1:
            entry = Signal.like(write_data, name=name)
            with m.If(write_enable):
                m.d.sync += entry.eq(write_data)
            return entry
        mem = memory.Memory(shape=write_data.shape(), depth=depth, init=[],
                            attrs={"ram_style": RAM_STYLE[auto_style(depth)]})
        m.submodules[name] = mem
        write = mem.write_port()
        read = mem.read_port(transparent_for=(write,) if self.fold == 1 else ())
        m.d.comb += [write.addr.eq(write_address), write.data.eq(write_data),
                     write.en.eq(write_enable), read.addr.eq(read_address),
                     read.en.eq(read_enable)]
        return read.data

    def _decode(self, raw):
        """An input element in the reduction's domain: bipolar bits stay bits for ``max``
        (an OR is their maximum) and become -1/+1 for ``sum``."""
        if self._input_shape == BIPOLAR and self.reduction == "sum":
            return Mux(raw, 1, -1)
        return raw

    def _fold_in(self, first, entry, value):
        """``value`` when it opens the window, else ``entry`` reduced with it. A sum masks
        the entry instead of selecting the result, which keeps one LUT per bit in front of
        the carry chain."""
        if self.reduction == "sum":
            return Mux(first, 0, entry) + value
        if self._input_shape == BIPOLAR:
            return value | (entry & ~first)
        return Mux(first | (value > entry), value, entry)


class MaxPoolPlan(WindowPoolPlan):
    """The analysis of :class:`MaxPool` (same parameters)."""
    reduction = "max"


class MaxPool(MaxPoolPlan, WindowPool):
    """Max pooling of an NHWC feature map: the maximum of every window, per channel.

    Parameters
    ----------
    ifm : int or (H, W)
        The input map's rows and columns (one value: square).
    channels : int
        Channels ``C``.
    pe : int
        Channels per beat; must divide ``channels``.
    kernel : int or (K_h, K_w)
        The window, at most the map per axis.
    stride : int or (S_h, S_w), optional
        Window starts per axis (default: ``kernel``, windows side by side); windows overlap
        where ``stride < kernel``. Each at most the map per axis.
    input_shape : ShapeLike or ``"bipolar"``
        Signed or unsigned elements of 1 to 32 bits, or bipolar (the maximum of -1/+1 is an
        OR of the bits).

    Attributes
    ----------
    ofm : (OH, OW)
        ``((H - K_h) // S_h + 1, (W - K_w) // S_w + 1)``.
    fold : int
        Beats per pixel, ``C / pe``.
    output_shape : ShapeLike or ``"bipolar"``
        ``input_shape``.
    buffer_shapes : list of (depth, width)
        The partial-maximum buffers.

    Members
    -------
    i : In(stream of ``pe`` x ``input_shape``)
    o : Out(stream of ``pe`` x ``input_shape``)

    Examples
    --------
    ::

        pool = MaxPool(ifm=8, channels=16, pe=4, kernel=2, input_shape=unsigned(2))
        # pool.ofm == (4, 4), pool.buffer_shapes == [(16, 8)]
        # pool.cycles_per_frame == 256, pool.latency == 38
    """


class AvgPoolPlan(WindowPoolPlan):
    """The analysis of :class:`AvgPool` (same parameters)."""
    reduction = "sum"


class AvgPool(AvgPoolPlan, WindowPool):
    """Window sums of an NHWC feature map (average pooling without its division).

    The sum of every ``kh`` x ``kw`` window per channel, exact: ONNX ``AveragePool`` times
    ``kh * kw``; the graph folds the division into the next layer's thresholds.

    Parameters
    ----------
    ifm, channels, pe, kernel, stride
        As for :class:`MaxPool`.
    input_shape : ShapeLike or ``"bipolar"``
        Signed or unsigned elements of 1 to 32 bits, or bipolar (summed as -1/+1).

    Attributes
    ----------
    output_shape : Shape
        The narrowest shape of ``[K_h * K_w * min, K_h * K_w * max]``.

    Members
    -------
    i : In(stream of ``pe`` x ``input_shape``)
    o : Out(stream of ``pe`` x ``output_shape``)

    Examples
    --------
    ::

        pool = AvgPool(ifm=6, channels=4, kernel=3, stride=1, input_shape=unsigned(4))
        # pool.output_shape == unsigned(8), pool.slots == (3, 3), pool.ofm == (4, 4)
    """


class GlobalAccPoolPlan(WindowPoolPlan):
    """The analysis of :class:`GlobalAccPool` (same parameters)."""
    reduction = "sum"

    def __init__(self, *, ifm, channels, pe=1, input_shape):
        ifm = check_per_axis("ifm", ifm, ("H", "W"))
        super().__init__(ifm=ifm, channels=channels, pe=pe, kernel=ifm, stride=ifm,
                         input_shape=input_shape)


class GlobalAccPool(GlobalAccPoolPlan, WindowPool):
    """The sum of every channel over the whole map: one ``1 x 1 x C`` result per frame (ONNX
    ``GlobalAveragePool`` times ``H * W``).

    Parameters
    ----------
    ifm, channels, pe
        As for :class:`MaxPool`.
    input_shape : ShapeLike or ``"bipolar"``
        Signed or unsigned elements of 1 to 32 bits, or bipolar (summed as -1/+1).

    Attributes
    ----------
    output_shape : Shape
        The narrowest shape of ``[H * W * min, H * W * max]``.
    buffer_shapes : list of (depth, width)
        One accumulator buffer of ``fold`` entries.

    Members
    -------
    i : In(stream of ``pe`` x ``input_shape``)
    o : Out(stream of ``pe`` x ``output_shape``)

    Examples
    --------
    ::

        pool = GlobalAccPool(ifm=7, channels=64, pe=8, input_shape=signed(4))
        # pool.output_shape == signed(10), pool.out_beats_per_frame == 8
        # pool.cycles_per_frame == 392, pool.latency == 386
    """


MaxPoolPlan.component = MaxPool
AvgPoolPlan.component = AvgPool
GlobalAccPoolPlan.component = GlobalAccPool
