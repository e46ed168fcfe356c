"""ChannelwiseOp: a per-channel integer constant applied to every pixel of a feature map.

``y = x OP c[channel]`` for every element ``x`` of a stream of ``channels`` channels, ``pe``
per beat (channel ``f * pe + l`` in lane ``l`` of a pixel's ``f``-th beat), ``vectors``
pixels per frame. It carries what does not fold into thresholds: a bias or scale that
feeds a join, a per-channel sign test. ``op`` is one of :data:`OPS`:

========  =====================  ===========================  =========================
``op``    ``y``                  output shape                 ONNX operator
========  =====================  ===========================  =========================
``add``   ``x + c``              exact range of the sums      ``Add``
``mul``   ``x * c``              exact range of the products  ``Mul``
``ge``    ``1 if x >= c else 0``  ``unsigned(1)``             ``GreaterOrEqual``
``gt``    ``1 if x > c else 0``   ``unsigned(1)``             ``Greater``
``le``    ``1 if x <= c else 0``  ``unsigned(1)``             ``LessOrEqual``
``lt``    ``1 if x < c else 0``   ``unsigned(1)``             ``Less``
========  =====================  ===========================  =========================

The constants are an integer array of shape ``(channels,)``, or ``(1,)`` for one constant
for every channel. The output shape is exact for the constants given: the
:func:`~hwgen.shapes.shape_for_range` of the smallest and largest ``x OP c`` over the input
range and the constants (the corners of that box, since both operations are monotone in
each operand). Constants of a comparison are clamped to ``[min - 1, max + 1]`` of the
input range, which keeps every comparison exact and the comparator no wider than the input
plus one bit.

Algorithm: each lane sees one constant per fold ``f``, so the constants form a table of
``fold = channels / pe`` words of ``pe`` constants. When every lane's constant is the same
in all folds (one constant, or ``pe == channels``) the table is constants in the logic and
the kernel is one register stage (latency 1). Otherwise the table is a read-only memory
(:func:`hwgen.memory.read_only_memory`, style ``mem_style``) addressed by the fold of the
incoming beat, and the kernel two stages (latency 2): the input beat and its constants are
registered together, then the result. Both advance together under a
:class:`~hwgen.control.StallPipeline`; one beat per cycle.

Cost: per lane one adder, multiplier (a DSP48E2 for products of 9 bits or more, as
synthesis maps them) or comparator of the operand widths and the output register; with a
table, its memory (:func:`hwgen.resources.memory_cost`), the first stage's registers and the
fold counter.
"""

import numpy as np
from amaranth.hdl import Const, Module, Signal, unsigned

from ..checks import check_int_array, check_one_of, check_shape
from ..control import StallPipeline, fold_counter
from ..featuremap import ChannelFold
from ..kernel import PlannedComponent, StreamFormat, StreamKernel, pipelined_times
from .addstreams import adder_cost
from ..memory import auto_style, read_only_memory
from ..resources import Resources, memory_cost
from ..shapes import shape_for_range, shape_range

__all__ = ["ChannelwiseOp", "ChannelwiseOpPlan", "OPS", "COMPARISONS", "MEM_STYLES"]

#: The operations, in the order of the table in the module documentation.
OPS = ("add", "mul", "ge", "gt", "le", "lt")
#: The operations with a one-bit result.
COMPARISONS = ("ge", "gt", "le", "lt")
MEM_STYLES = ("auto", "registers", "lutram", "bram")


def _apply(op, x, c):
    """``x OP c`` for Amaranth values."""
    if op == "add":
        return x + c
    if op == "mul":
        return x * c
    return {"ge": x >= c, "gt": x > c, "le": x <= c, "lt": x < c}[op]


def check_constants(constants, channels):
    """The constants as an ``int64`` array of shape ``(channels,)`` or ``(1,)``."""
    array = np.asarray(constants)
    if array.shape not in ((channels,), (1,)):
        raise ValueError(f"constants must have shape (channels,) = ({channels},) or (1,), not "
                         f"{array.shape}")
    return check_int_array("constants", array)


class ChannelwiseOpPlan(ChannelFold, StreamKernel):
    """The analysis of :class:`ChannelwiseOp` (same parameters)."""

    def __init__(self, *, channels, pe=1, input_shape, op, constants, vectors=1,
                 mem_style="auto"):
        self._set_channel_fold(channels, pe, vectors)
        self._input_shape = check_shape("input_shape", input_shape, max_width=64)
        self._op = check_one_of("op", op, OPS)
        self._constants = check_constants(constants, self._channels)
        self._mem_style = check_one_of("mem_style", mem_style, MEM_STYLES)
        super().__init__()

    @property
    def input_format(self):
        return StreamFormat(self._input_shape, self._pe)

    @property
    def output_format(self):
        return StreamFormat(self.output_shape, self._pe)

    # -- parameters -------------------------------------------------------------------------
    input_shape = property(lambda self: self._input_shape)
    op = property(lambda self: self._op)

    @property
    def constants(self):
        """The constants as given: ``(channels,)`` or ``(1,)``."""
        return self._constants.copy()

    @property
    def channel_constants(self):
        """One constant per channel as the hardware holds it (broadcast, and for a
        comparison clamped to ``[min - 1, max + 1]`` of the input range)."""
        values = np.broadcast_to(self._constants, (self._channels,))
        if self._op in COMPARISONS:
            lo, hi = shape_range(self._input_shape)
            values = np.clip(values, lo - 1, hi + 1)
        return np.array(values, dtype=np.int64)

    @property
    def constant_shape(self):
        """The narrowest shape holding every constant of :attr:`channel_constants`."""
        values = self.channel_constants
        return shape_for_range(int(values.min()), int(values.max()))

    @property
    def output_range(self):
        """``(lo, hi)`` of ``x OP c`` over the input range and the constants."""
        if self._op in COMPARISONS:
            return 0, 1
        lo, hi = shape_range(self._input_shape)
        cmin, cmax = int(self._constants.min()), int(self._constants.max())
        if self._op == "add":
            return lo + cmin, hi + cmax
        corners = [x * c for x in (lo, hi) for c in (cmin, cmax)]
        return min(corners), max(corners)

    @property
    def output_shape(self):
        """The narrowest shape holding every result (``unsigned(1)`` for a comparison)."""
        return shape_for_range(*self.output_range)

    @property
    def table(self):
        """The constants per fold: a ``(depth, pe)`` array, ``depth`` being :attr:`fold`, or 1
        when every lane's constant is the same in all folds."""
        table = self.channel_constants.reshape(self.fold, self._pe)
        return table[:1] if (table == table[0]).all() else table

    @property
    def table_depth(self):
        """Words of the constants table (1: constants in the logic, no memory)."""
        return len(self.table)

    @property
    def mem_style(self):
        """The table's memory style: ``mem_style``, with ``"auto"`` resolved by
        :func:`hwgen.memory.auto_style` (``"registers"`` for a one-word table, which is no
        memory at all)."""
        if self.table_depth == 1:
            return "registers"
        return auto_style(self.table_depth) if self._mem_style == "auto" else self._mem_style

    def resolved_choices(self):
        return {"mem_style": self.mem_style} if self._mem_style == "auto" else {}

    # -- timing (beats and cycles per frame: ChannelFold) ----------------------------------
    @property
    def latency(self):
        """1 with the constants in the logic, 2 with a constants table."""
        return 1 if self.table_depth == 1 else 2

    def out_times(self, in_times):
        return pipelined_times(in_times, self.latency)

    @property
    def table_columns(self):
        """Bit columns of the constants table that need storage: the distinct ones that are
        not constant over the table's words (synthesis keeps one of identical columns and
        none of a constant one)."""
        width = self.constant_shape.width
        mask = (1 << width) - 1
        columns = set()
        for lane in self.table.T:
            for bit in range(width):
                column = tuple((int(c) & mask) >> bit & 1 for c in lane)
                if len(set(column)) > 1:
                    columns.add(column)
        return len(columns)

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+, modelled on what Yosys
        (``synth_xilinx -family xcup``) builds. Per lane (:meth:`lane_cost`) the adder,
        multiplier or comparator; the output register and its valid bit. With a constants
        table: its memory (:func:`~hwgen.resources.memory_cost`; in logic only the
        :attr:`table_columns` that need storage, in block RAM every bit), the registers of
        the first stage (the input, and the constants read unless in block RAM), the fold
        counter (on the carry chain) and the second valid bit. Against Yosys within 25% + 4
        LUTs and two flip-flops, DSP48E2 and block RAMs exact, except for tables of 32 to 64
        words in logic, which Yosys builds from smaller LUTs than the one LUT6 per 64 words
        of the memory model (about 2x the table's LUTs)."""
        pe, out_width = self._pe, self.output_shape.width
        total = self.lane_cost() * pe + Resources(ffs=pe * out_width + 1, luts=1)
        if self.table_depth == 1:
            return total
        in_block_ram = self.mem_style == "bram"
        stored = pe * self.constant_shape.width if in_block_ram else self.table_columns
        fold_bits = (self.fold - 1).bit_length()
        return (total + memory_cost(self.table_depth, stored, self.mem_style)
                + Resources(ffs=pe * self._input_shape.width + (not in_block_ram) * stored
                            + fold_bits + 1, luts=-(-fold_bits // 2) + 1))

    def lane_cost(self):
        """:class:`~hwgen.resources.Resources` of one lane's operator. ``add``: an adder
        (:func:`~hwgen.kernels.addstreams.adder_cost`; with a constant in the logic only its
        carry chain). ``mul``: products of 9 bits or more in DSP48E2 slices (27 x 18 bits
        each), smaller ones about ``w_x * w_c`` LUTs. Comparisons: against a table constant a
        ``w``-bit compare on the carry chain (``ceil(w / 2) + 1`` LUTs), against a constant
        in the logic a LUT6 tree over the input bits."""
        x, c = self._input_shape, self.constant_shape
        out_width = self.output_shape.width
        from_table = self.table_depth > 1
        if self._op == "add":
            if from_table:
                return adder_cost(x, 0, c, 0, out_width)
            return Resources(carry=-(-out_width // 8))
        if self._op == "mul":
            if out_width < 9:
                return Resources(luts=x.width * c.width)
            wide, narrow = sorted((x.width + (not x.signed), c.width + (not c.signed)),
                                  reverse=True)
            return Resources(dsp=-(-wide // 27) * -(-narrow // 18))
        if from_table:
            width = max(x.width + (not x.signed), c.width + (not c.signed)) + 1
            return Resources(luts=-(-width // 2) + 1, carry=-(-width // 8))
        return Resources(luts=-(-(x.width - 1) // 5) + 1)


class ChannelwiseOp(ChannelwiseOpPlan, PlannedComponent):
    """``y = x OP c[channel]`` per element, for a per-channel integer constant ``c``.

    Parameters
    ----------
    channels : int
        Channels per pixel ``C``.
    pe : int
        Channels per beat; must divide ``channels``.
    input_shape : ShapeLike
        ``signed(w)`` or ``unsigned(w)``, 1 to 64 bits.
    op : str
        One of :data:`OPS`: ``"add"``, ``"mul"``, ``"ge"``, ``"gt"``, ``"le"``, ``"lt"``.
    constants : array-like of int
        Shape ``(C,)``, or ``(1,)`` for one constant for every channel.
    vectors : int
        Pixels per frame (``H * W``).
    mem_style : str
        Storage of a constants table: ``"auto"``, ``"registers"``, ``"lutram"`` or
        ``"bram"`` (unused when the constants need no table).

    Members
    -------
    i : In(stream of ``pe`` x ``input_shape``)
    o : Out(stream of ``pe`` x :attr:`output_shape`)

    Examples
    --------
    ::

        bias = ChannelwiseOp(channels=4, pe=2, input_shape=signed(8), op="add",
                             constants=[3, -1, 0, 5])
        # bias.output_shape == signed(9), bias.table_depth == 2, bias.latency == 2
        sign = ChannelwiseOp(channels=4, input_shape=signed(8), op="ge", constants=[0])
        # sign.output_shape == unsigned(1), sign.latency == 1
    """

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        pe, op = self._pe, self._op
        const_shape = self.constant_shape
        table = self.table
        if len(table) == 1:
            control = StallPipeline(m, depth=1, i=self.i, o=self.o)
            operands = [self.i.payload[lane] for lane in range(pe)]
            constants = [Const(int(c), const_shape) for c in table[0]]
        else:
            control = StallPipeline(m, depth=2, i=self.i, o=self.o)
            fold, _ = fold_counter(m, self.fold, self.i.valid & control.advance)
            operands = [Signal(self._input_shape, name=f"x{lane}") for lane in range(pe)]
            with m.If(control.advance):
                m.d.sync += [operands[lane].eq(self.i.payload[lane]) for lane in range(pe)]
            constants = self._read_table(m, table, fold, control.advance)
        with m.If(control.advance):
            m.d.sync += [self.o.payload[lane].eq(_apply(op, operands[lane], constants[lane]))
                         for lane in range(pe)]
        return m

    def _read_table(self, m, table, address, enable):
        """The ``pe`` constants of the fold at ``address``, registered when ``enable``."""
        const_shape = self.constant_shape
        width = const_shape.width
        mask = (1 << width) - 1
        words = [sum((int(c) & mask) << (lane * width) for lane, c in enumerate(row))
                 for row in table]
        data = read_only_memory(m, "constants", words, unsigned(len(table[0]) * width),
                                self.mem_style, address, enable)
        lanes = [data[lane * width:(lane + 1) * width] for lane in range(len(table[0]))]
        return [lane.as_signed() if const_shape.signed else lane for lane in lanes]


ChannelwiseOpPlan.component = ChannelwiseOp
