"""Requantize: exact multiply-shift requantization of accumulators, per channel.

``y = clamp((((acc + b) * M + R) >> S) + e(acc), lo, hi) + zero_point`` for every element
``acc`` of a stream of ``channels`` channels, ``pe`` per beat, ``vectors`` pixels per frame,
with integer ``M >= 0`` (``multiplier``), ``R`` (``offset``), ``S >= 0`` (``shift``) and ``b``
(``bias``) per channel or shared, ``>>`` the arithmetic shift (``floor`` of the division by
``2**S``), and ``e(acc)`` a correction of +1 or -1 at a few accumulators per channel
(``exceptions``, 0 elsewhere): a staircase computed in float32 is floor-affine except at the
odd accumulator where the float result lands within rounding error of a tie.
It replaces the 255 thresholds per channel of an 8-bit output by a handful of constants; the
graph (:mod:`graph.requant`) derives them so that the function equals the thresholds exactly
on the whole accumulator range.

Normal form. The hardware computes one product and one sum per element::

    u = acc - min(input_shape)               # unsigned: a signed input's sign bit flipped
    t = u * M' + R'                          # M' = M << (S - S_c)   (S: the largest shift)
    y = clamp(t >> S, lo + zero_point, hi + zero_point)

with ``R' = (R + b * M) << (S - S_c) + zero_point << S + min(input_shape) * M'``, which is
the same function exactly (``floor(z / 2**s) == floor(z * 2**k / 2**(s + k))``). So channels
with different shifts share one shift, and the bias and zero point cost nothing.

Datapaths (``datapath``):

- ``dsp``: one multiplier per lane. On UltraScale(+) (``target="xilinx"``, or ``"auto"``
  on such a platform) it is a :class:`~hwgen.vendor.xilinx.dsp48e2.DSP48E2` computing
  ``P = A * B + C`` with its A, M, C and P registers; where every channel has the same
  ``M'`` and the lanes are narrow, several lanes share one slice (``A = u0 + u1 << k``,
  ``k`` = the product width: unsigned products cannot carry into each other), and their
  offsets are added in the fabric. Elsewhere a plain ``*``, which Yosys maps to a DSP48E2
  (``synth_xilinx``), a MULT18X18D (``synth_ecp5``) or an SB_MAC16 (``synth_ice40 -dsp``).
- ``lut``: the product in the fabric: for a lane whose ``M'`` is one constant, the
  shift-and-add of its canonical signed digits; for multipliers read from a table, the sum
  of ``u << j`` over the set bits ``j`` of ``M'``.
- ``auto``: the one whose :meth:`~RequantizePlan.estimate` is smaller in LUT-equivalents
  (a DSP slice counting :data:`~hwgen.resources.DSP_LUT_EQUIVALENT` LUTs).

Constants table: each lane sees one ``(M', R')`` per fold ``f`` (channel ``f * pe + l``);
when every lane's pair is the same in all folds the constants are in the logic, otherwise
they form a read-only table of ``channels / pe`` words (:func:`hwgen.memory.read_only_memory`,
style ``mem_style``), addressed by the fold of the incoming beat.

Timing: four register stages that advance together (a
:class:`~hwgen.control.StallPipeline`): the input and the constants read, the product, the
sum, the clamped result. Latency 4, one beat per cycle, no bubbles; back-pressure freezes
every stage.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned

from ..arith.netlist import resolve_architecture
from ..checks import check_int, check_one_of, check_shape
from ..control import StallPipeline, fold_counter
from ..featuremap import ChannelFold
from ..kernel import PlannedComponent, StreamFormat, StreamKernel, pipelined_times
from ..memory import auto_style, read_only_memory
from ..resources import Resources, memory_cost
from ..shapes import shape_for_range, shape_range

__all__ = ["Requantize", "RequantizePlan", "DATAPATHS", "MEM_STYLES", "TARGETS",
           "MAX_MULTIPLIER_BITS", "MAX_SHIFT", "LATENCY"]

DATAPATHS = ("auto", "dsp", "lut")
MEM_STYLES = ("auto", "registers", "lutram", "bram")
TARGETS = ("auto", "generic", "xilinx")
PRIMITIVES = ("auto", "instance", "behavioural")
#: ``multiplier`` values are below ``2**MAX_MULTIPLIER_BITS``.
MAX_MULTIPLIER_BITS = 32
#: The largest ``shift``.
MAX_SHIFT = 62
#: Register stages from input to output.
LATENCY = 4
#: Unsigned operand widths of one DSP48E2 multiplier (27 x 18 signed).
_DSP_A, _DSP_B, _DSP_P = 26, 17, 47


def _per_channel(name, value, channels, *, low=None, high=None):
    """``value`` (an int, or an array of shape ``(channels,)`` or ``(1,)``) as a list of
    ``channels`` Python ints."""
    array = np.asarray(value, dtype=object)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.shape not in ((channels,), (1,)):
        raise ValueError(f"{name} must be an integer or have shape (channels,) = ({channels},) "
                         f"or (1,), not {array.shape}")
    values = []
    for index, item in enumerate(array.tolist()):
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            if isinstance(item, float) and item.is_integer():
                item = int(item)
            else:
                raise ValueError(f"{name} must be integers; {name}[{index}] is {item!r}")
        item = int(item)
        if (low is not None and item < low) or (high is not None and item > high):
            raise ValueError(f"{name}[{index}] = {item} is out of range: must be in "
                             f"[{low}, {high}]")
        values.append(item)
    return values * channels if len(values) == 1 else values


def _csd(value):
    """Canonical signed digits of ``value >= 0``: ``[(bit, +1 or -1), ...]``."""
    digits, bit = [], 0
    while value:
        if value & 1:
            digit = 2 - (value & 3)          # +1 when value % 4 == 1, -1 when 3
            digits.append((bit, digit))
            value -= digit
        value >>= 1
        bit += 1
    return digits


class RequantizePlan(ChannelFold, StreamKernel):
    """The analysis of :class:`Requantize` (same parameters): validation, the normal form,
    widths, datapath choice, timing and cost."""

    def __init__(self, *, channels, pe=1, input_shape, multiplier, offset=0, shift=0,
                 low, high, bias=0, zero_point=0, exceptions=None, vectors=1,
                 datapath="auto", mem_style="auto", target="auto", primitives="auto"):
        self._set_channel_fold(channels, pe, vectors)
        self._input_shape = check_shape("input_shape", input_shape, max_width=64)
        c = self._channels
        self._multiplier = _per_channel("multiplier", multiplier, c, low=0,
                                        high=(1 << MAX_MULTIPLIER_BITS) - 1)
        self._offset = _per_channel("offset", offset, c, low=-(1 << 96), high=1 << 96)
        self._shift = _per_channel("shift", shift, c, low=0, high=MAX_SHIFT)
        self._bias = _per_channel("bias", bias, c, low=-(1 << 64), high=1 << 64)
        self._low = check_int("low", low)
        self._high = check_int("high", high)
        if self._high < self._low:
            raise ValueError(f"high={high} must be >= low={low}")
        self._zero_point = check_int("zero_point", zero_point)
        self._exceptions = self._check_exceptions(exceptions)
        self._datapath_asked = check_one_of("datapath", datapath, DATAPATHS)
        self._mem_style_asked = check_one_of("mem_style", mem_style, MEM_STYLES)
        self._target = check_one_of("target", target, TARGETS)
        self._primitives = check_one_of("primitives", primitives, PRIMITIVES)
        self._normalize()
        if self._datapath_asked == "dsp":
            reason = self._dsp_unfit()
            if reason:
                raise ValueError(f"datapath='dsp' cannot take {reason}; use 'lut'")
        self._datapath = (self._datapath_asked if self._datapath_asked != "auto"
                          else self._choose_datapath())
        super().__init__()

    def _check_exceptions(self, exceptions):
        """Per channel a sorted list of ``(x, delta)``: ``exceptions`` given per channel (a
        sequence of ``channels`` lists) or shared (a sequence of one list)."""
        if exceptions is None:
            return [[] for _ in range(self._channels)]
        rows = list(exceptions)
        if len(rows) not in (1, self._channels):
            raise ValueError(f"exceptions must have one list of (x, delta) pairs per channel "
                             f"({self._channels}) or one for all, not {len(rows)}")
        lo, hi = shape_range(self._input_shape)
        checked = []
        for c, row in enumerate(rows):
            pairs = []
            for pair in row:
                pair = tuple(pair)
                if len(pair) != 2:
                    raise ValueError(f"exceptions[{c}]: {pair!r} is not an (x, delta) pair")
                x = check_int(f"exceptions[{c}] x", pair[0], lo, hi)
                delta = check_int(f"exceptions[{c}] delta", pair[1], -1, 1)
                if delta == 0:
                    continue
                pairs.append((x, delta))
            if len({x for x, _ in pairs}) != len(pairs):
                raise ValueError(f"exceptions[{c}]: an accumulator appears twice")
            checked.append(sorted(pairs))
        return checked * self._channels if len(checked) == 1 else checked

    # -- the normal form ----------------------------------------------------------------------
    def _normalize(self):
        shift = max(self._shift)
        in_low = shape_range(self._input_shape)[0]
        zp = self._zero_point
        self._common_shift = shift
        self._m = [mul << (shift - s) for mul, s in zip(self._multiplier, self._shift)]
        self._r = [((r + b * mul) << (shift - s)) + (zp << shift) + in_low * m
                   for r, b, mul, s, m in zip(self._offset, self._bias, self._multiplier,
                                              self._shift, self._m)]
        self._clamp = (self._low + zp, self._high + zp)
        span = (1 << self._input_shape.width) - 1
        self._t_range = (min(self._r), max(r + span * m for r, m in zip(self._r, self._m)))
        lo, hi = self._clamp
        q_low = [min(max(r >> shift, lo), hi) for r in self._r]
        q_high = [min(max((r + span * m) >> shift, lo), hi) for r, m in zip(self._r, self._m)]
        for c, pairs in enumerate(self._exceptions):
            for x, delta in pairs:
                value = min(max((((x - in_low) * self._m[c] + self._r[c]) >> shift) + delta,
                                lo), hi)
                q_low.append(value)
                q_high.append(value)
        self._output_range = (min(q_low), max(q_high))

    # -- parameters ---------------------------------------------------------------------------
    input_shape = property(lambda self: self._input_shape)
    low = property(lambda self: self._low)
    high = property(lambda self: self._high)
    zero_point = property(lambda self: self._zero_point)
    datapath = property(lambda self: self._datapath, doc="The datapath in use (``auto`` "
                        "resolved).")
    multiplier = property(lambda self: list(self._multiplier), doc="``M`` per channel.")
    offset = property(lambda self: list(self._offset), doc="``R`` per channel.")
    shift = property(lambda self: list(self._shift), doc="``S`` per channel.")
    bias = property(lambda self: list(self._bias), doc="``b`` per channel.")
    exceptions = property(lambda self: [list(p) for p in self._exceptions],
                          doc="Per channel the ``(x, delta)`` corrections.")

    @property
    def exception_slots(self):
        """Corrections compared per lane: the most any channel has."""
        return max(len(pairs) for pairs in self._exceptions)

    @property
    def normal_form(self):
        """``(M', R', S, (lo, hi))``: per channel multipliers and offsets on the unsigned
        input ``u = acc - min(input_shape)``, the common shift and the output clamp, with
        ``y = clamp((u * M' + R') >> S, lo, hi)``."""
        return list(self._m), list(self._r), self._common_shift, self._clamp

    @property
    def output_range(self):
        """``(lo, hi)``: the smallest and largest output over the input range (the clamp,
        narrowed to what the constants reach)."""
        return self._output_range

    @property
    def output_shape(self):
        """The narrowest shape holding every output."""
        return shape_for_range(*self._output_range)

    @property
    def input_format(self):
        return StreamFormat(self._input_shape, self._pe)

    @property
    def output_format(self):
        return StreamFormat(self.output_shape, self._pe)

    @property
    def multiplier_width(self):
        """Bits of the largest ``M'`` (at least 1)."""
        return max(1, max(self._m).bit_length())

    @property
    def product_width(self):
        """Bits of ``u * M'``."""
        return self._input_shape.width + self.multiplier_width

    @property
    def sum_shape(self):
        """Shape of ``t = u * M' + R'``."""
        return shape_for_range(*self._t_range)

    @property
    def offset_shape(self):
        """Shape of the ``R'`` constants."""
        return shape_for_range(min(min(self._r), 0), max(max(self._r), 0))

    @property
    def table(self):
        """The constants per fold: ``depth`` rows of ``pe`` entries ``(M', R', corrections)``
        (``corrections``: :attr:`exception_slots` pairs ``(u, delta)`` on the unsigned input,
        the unused slots ``(0, 0)`` first), ``depth`` being :attr:`fold`, or 1 when every
        lane's entry is the same in all folds."""
        in_low = shape_range(self._input_shape)[0]
        slots = self.exception_slots

        def entry(c):
            pairs = [(x - in_low, d) for x, d in self._exceptions[c]]
            # unused slots first: a later slot wins where inputs match (u = 0 of an unused one)
            return (self._m[c], self._r[c], tuple([(0, 0)] * (slots - len(pairs)) + pairs))
        rows = [[entry(f * self._pe + lane) for lane in range(self._pe)]
                for f in range(self.fold)]
        return rows[:1] if all(row == rows[0] for row in rows) else rows

    @property
    def table_depth(self):
        return len(self.table)

    @property
    def mem_style(self):
        """The table's memory: ``mem_style``, with ``"auto"`` resolved by
        :func:`hwgen.memory.auto_style` (``"registers"`` without a table)."""
        if self.table_depth == 1:
            return "registers"
        if self._mem_style_asked == "auto":
            return auto_style(self.table_depth)
        return self._mem_style_asked

    @property
    def lanes_per_dsp(self):
        """Lanes that share one DSP48E2 on the ``dsp`` datapath for UltraScale(+): more than
        one only when every channel has the same ``M'`` and the packed products fit the
        slice's 27 x 18 multiplier and 48-bit result."""
        w, mw = self._input_shape.width, self.multiplier_width
        if len(set(self._m)) > 1 or mw > _DSP_B:
            return 1
        k = w + mw
        lanes = 1
        while lanes < self._pe and lanes * k + w <= _DSP_A and (lanes + 1) * k <= _DSP_P:
            lanes += 1
        return lanes

    def resolved_choices(self):
        choices = {}
        if self._datapath_asked == "auto":
            choices["datapath"] = self._datapath
        if self._mem_style_asked == "auto":
            choices["mem_style"] = self.mem_style
        return choices

    # -- datapath choice ----------------------------------------------------------------------
    @property
    def slices_per_lane(self):
        """DSP48E2 slices of one lane's product on the ``dsp`` datapath: 1 when it fits
        one 26 x 17 unsigned multiplier (either way round), else the tiles of 26 x 17 bits
        that synthesis splits it into."""
        w, mw = self._input_shape.width, self.multiplier_width
        return min(-(-w // _DSP_A) * -(-mw // _DSP_B), -(-w // _DSP_B) * -(-mw // _DSP_A))

    def _one_slice(self):
        """True when one DSP48E2 computes a lane's ``u * M' + R'`` (the ``Instance`` path;
        wider products go to synthesis as a plain ``*``)."""
        return self.slices_per_lane == 1 and \
            max(self.sum_shape.width, self.offset_shape.width) <= _DSP_P + 1

    def _dsp_unfit(self):
        """Why the ``dsp`` datapath cannot take this product, or None."""
        if self.slices_per_lane > 4:
            return (f"a {self._input_shape.width}-bit input times a {self.multiplier_width}-"
                    f"bit multiplier ({self.slices_per_lane} DSP48E2 slices per lane; at "
                    f"most 4)")
        return None

    def _choose_datapath(self):
        if self._dsp_unfit():
            return "lut"
        costs = {d: self._estimate(d).lut_equivalent(ffs=0) for d in ("dsp", "lut")}
        return "dsp" if costs["dsp"] < costs["lut"] else "lut"

    # -- timing -------------------------------------------------------------------------------
    @property
    def latency(self):
        """Four register stages: input and constants, product, sum, clamped result."""
        return LATENCY

    def out_times(self, in_times):
        return pipelined_times(in_times, LATENCY)

    # -- cost ---------------------------------------------------------------------------------
    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+, modelled bit by bit on
        what Yosys (``synth_xilinx -family xcup``) builds from the exported Verilog: DSP48E2
        instances for ``target="xilinx"`` on the ``dsp`` datapath, else the generic Verilog
        (``target="auto"`` included: what a design exported without a platform has).

        - Flip-flops: the register bits that vary and are used. Per lane the input ``u`` (the
          bits a power-of-two ``M'`` moves into the used product bits, else all), the
          product from the lowest bit the kept sum bits depend on (where synthesis sees the
          constants before it builds the adder, in the logic, a table in registers or in
          block RAM: the offset's trailing zeros, capped by the shift, and ``M'``'s trailing
          zeros; from a LUT ROM, bit 0), the sum from the shift up, the output (a lane with
          ``M' = 0`` is a constant); with a table, the constants read (one per distinct
          column of the table that is not all zeros; none in block RAM), the offsets delayed
          a stage and the fold counter; four valid bits. A DSP48E2 instance holds the lane's
          input, product and sum (packed slices: the inputs and the products).
        - LUTs: the product (:meth:`lane_multiplier_cost`); the offset adder on the carry
          chain, one LUT per sum bit whose offsets are not all zeros (none for constants,
          which the chain takes as they are); the clamp, a LUT per output bit and, per
          reachable bound, a LUT6 tree over the shifted sum (none for a bound at a power of
          two, folded into the output LUTs while the sum has at most 4 bits more than the
          output); a signed input's flipped sign bit; a table in logic,
          ``max(1, (depth - 16) / 16)`` LUTs per distinct varying column (what Yosys makes
          of a ROM), and the fold counter; the handshake.
        - DSP48E2 slices and block RAMs (holding the table's columns that vary) exactly.

        Checked against Yosys (``tests/hwgen/test_requantize.py``): LUTs within 25% + 4,
        flip-flops within 2 (products below about 9 bits are rougher); the corrections
        (``exceptions``) are added as :meth:`_correction_cost` says."""
        return self._estimate(self._datapath)

    def _estimate(self, datapath):
        pe, w, shift = self._pe, self._input_shape.width, self._common_shift
        t_width, r_width = self.sum_shape.width, self.offset_shape.width
        out_width, mw = self.output_shape.width, self.multiplier_width
        table = self.table
        depth = len(table)
        in_bram = depth > 1 and self.mem_style == "bram"
        # where synthesis sees the constants before it builds the adder (not a LUT ROM's)
        known = depth == 1 or self.mem_style in ("registers", "bram")
        instance = datapath == "dsp" and self._target == "xilinx" and self._one_slice()
        packed = instance and self.lanes_per_dsp > 1
        q_width = max(t_width - shift, int(self.sum_shape.signed))
        lo, hi = self._clamp

        def trailing_zeros(value):
            return (value & -value).bit_length() - 1 if value else t_width

        def columns(values, width):
            """The table's bit columns (a tuple over the folds each) of ``values``."""
            mask = (1 << width) - 1
            return [tuple((v & mask) >> bit & 1 for v in values) for bit in range(width)]

        def bound_cost(power_of_two):
            excess = q_width - out_width
            if power_of_two:
                return 0 if excess <= 4 else -(-excess // 5)
            return -(-(q_width - 1) // 5)
        # (reached, at a power of two) of each bound of the clamp
        bounds = [((self._t_range[0] >> shift) < lo, lo == 0 or (lo < 0 and -lo & (-lo - 1) == 0)),
                  ((self._t_range[1] >> shift) > hi, hi >= -1 and (hi + 1) & hi == 0)]
        clamp = sum(bound_cost(nice) for reached, nice in bounds if reached)
        clamp += out_width if any(reached for reached, _ in bounds) else 0

        luts, ffs = 1, LATENCY                  # the handshake; the valid bits
        cost = Resources()
        m_columns, r_columns = [], []
        for lane in range(pe):
            mults = [row[lane][0] for row in table]
            offsets = [row[lane][1] for row in table]
            m_columns += columns(mults, mw)
            r_columns += columns(offsets, r_width)
            cost += self.lane_multiplier_cost(lane, datapath)
            if depth == 1 and mults[0] == 0 and not instance:
                constant = min(max(offsets[0] >> shift, lo), hi)
                ffs += bin(constant & ((1 << out_width) - 1)).count("1")
                continue
            ffs += out_width
            luts += clamp
            if instance and not packed:
                continue                        # input, product, offset and sum in the slice
            ffs += q_width
            if depth > 1:                       # the adder's LUTs: offset bits not all 0
                live = [any(column) for column in columns(offsets, r_width)]
                luts += sum(live) + (t_width - r_width) * (self.offset_shape.signed and live[-1])
            if instance:
                continue                        # packed: input and product in the slice
            luts += self._input_shape.signed   # the flipped sign bit before its register
            m_or = r_or = 0
            for mul, r in zip(mults, offsets):
                m_or, r_or = m_or | mul, r_or | r & ((1 << r_width) - 1)
            low = min(trailing_zeros(r_or), shift) if known else 0
            if depth == 1 and m_or & (m_or - 1) == 0:       # a power of two: wiring
                k = trailing_zeros(m_or)
                ffs += max(0, min(k + w, t_width) - max(low, k)) + w - max(0, min(w, low - k))
                continue
            top = w + m_or.bit_length() if depth == 1 and datapath == "dsp" else \
                self.product_width
            ffs += w + max(0, min(top, t_width) - max(low, trailing_zeros(m_or) if known else 0))
        if depth > 1:
            fold_bits = (self.fold - 1).bit_length()
            ffs += fold_bits
            luts += -(-fold_bits // 2) + 1
            slots = [[column for k in range(self.exception_slots)
                      for column in columns([row[lane][2][k][0] | (row[lane][2][k][1] & 3) << w
                                             for row in table], w + 2)]
                     for lane in range(pe)]
            slot_columns = [column for lane in slots for column in lane]
            if in_bram:                         # only the columns that vary
                stored = sum(len(set(c)) > 1 for c in m_columns + r_columns + slot_columns)
                cost += memory_cost(depth, stored, "bram")
                ffs += 0 if instance and not packed else \
                    sum(len(set(c)) > 1 for c in r_columns)
            else:
                read = {c for c in m_columns + r_columns if any(c)}
                ffs += len(read)
                if not instance or packed:
                    ffs += len({c for c in r_columns if any(c)})    # the delayed offsets
                address = {tuple(f >> bit & 1 for f in range(depth)) for bit in range(fold_bits)}
                logic = {c for c in read | set(slot_columns) if len(set(c)) > 1} - address
                if depth > 2:
                    luts += -(-len(logic) * max(16, depth - 16) // 16)
        if packed:
            cost = Resources(dsp=-(-pe // self.lanes_per_dsp))
        return cost + Resources(luts=luts, ffs=ffs) + self._correction_cost()

    def _correction_cost(self):
        """The corrections: per lane the input register, an equality compare per slot
        (one LUT per 3 input bits against a table value, per 6 against a constant), the
        selection and the two 2-bit stage registers, and one more adder bit per output bit;
        their table bits."""
        slots = self.exception_slots
        if not slots:
            return Resources()
        pe, w = self._pe, self._input_shape.width
        per_bit = 3 if self.table_depth > 1 else 6
        luts = pe * (slots * (-(-w // per_bit) + 1) + self.output_shape.width + 1)
        cost = Resources(luts=luts, ffs=pe * (w + 4))
        if self.table_depth > 1 and self.mem_style != "bram":
            cost += Resources(ffs=pe * slots * (w + 2))
        return cost

    def lane_multiplier_cost(self, lane, datapath=None):
        """:class:`~hwgen.resources.Resources` of lane ``lane``'s product ``u * M'`` as
        synthesis builds it. A constant ``M'`` that is 0 or a power of two is wiring (but
        for a DSP48E2 instance). ``dsp``: with ``target="xilinx"`` one DSP48E2 instance
        where one slice holds the lane (packing is counted by :meth:`estimate`); else the
        plain ``*``, which Yosys puts in DSP48E2 slices from 9 product bits on: the wider
        operand in 26-bit, the other in 17-bit tiles (one slice each), the tiles' partial
        products summed in the fabric (one LUT per adder bit), and in LUTs below 9 bits, as
        the ``lut`` datapath's table multiplier. ``lut``: for a constant ``M'`` with ``n``
        canonical signed digits an adder tree of ``(n - 1) * (w + 1) + (n - 2) * w / 4``
        LUTs; for ``M'`` from a table, ``j`` bits of which are set in some fold, an array
        of ``2 * w * (j - 2) + product_width`` LUTs (``w * j`` at most for products below 9
        bits), or where the table holds one ``M'`` for the lane, the adder tree of its
        ``j`` set bits plus ``product_width`` LUTs gating them (none in block RAM, where
        synthesis sees the constant); each at most what the used product bits cost as
        functions of all the operand bits (``2**(inputs - 6)`` LUT6 each)."""
        datapath = datapath or self._datapath
        w, shift = self._input_shape.width, self._common_shift
        table = self.table
        mults = [row[lane][0] for row in table]
        offsets = [row[lane][1] for row in table]
        constant = len(table) == 1
        m_or = 0
        for mul in mults:
            m_or |= mul
        if datapath == "dsp" and self._target == "xilinx" and self._one_slice():
            return Resources(dsp=1)
        if constant and m_or & (m_or - 1) == 0:
            return Resources()
        bits = m_or.bit_length() if constant else self.multiplier_width
        # the product bits the kept sum bits depend on, when synthesis knows the offset
        known = constant or self.mem_style in ("registers", "bram")
        r_or = 0
        for r in offsets:
            r_or |= r & ((1 << self.offset_shape.width) - 1)
        low = min((r_or & -r_or).bit_length() - 1 if r_or else shift, shift) if known else 0
        needed = max(1, min(self.product_width, self.sum_shape.width) - low)

        def as_functions(inputs):
            return needed * (1 << max(0, inputs - 6))

        def array(j):
            tree = w if j <= 1 else 2 * w * (j - 2) + self.product_width
            if self.product_width < 9:
                tree = min(tree, w * j)     # small: the adders fold into the AND terms' LUTs
            return min(tree, as_functions(w + j))
        if datapath == "dsp":
            if min(w, bits) >= 2 and w + bits >= 9:
                def tiles(a, b):
                    """``(slices, adder bits)`` of an ``a`` x ``b``-bit product."""
                    if a > _DSP_A or b > _DSP_B:
                        cut = _DSP_A if a > _DSP_A else _DSP_B
                        parts = [tiles(cut, b), tiles(a - cut, b)] if a > _DSP_A else \
                            [tiles(a, cut), tiles(a, b - cut)]
                        return (sum(p[0] for p in parts),
                                sum(p[1] for p in parts) + a + b - cut)
                    return 1, 0
                slices, adders = tiles(max(w, bits), min(w, bits))
                return Resources(dsp=slices, luts=adders)
            return Resources(luts=array(bin(m_or).count("1") if constant else bits))

        def tree(terms):
            return (terms - 1) * (w + 1) + (terms - 2) * w // 4 if terms > 1 else 0
        if constant:
            return Resources(luts=min(tree(len(_csd(m_or))), as_functions(w)))
        if len(set(mults)) == 1:
            # one M' in every fold, read with the table: the sum of its bits' shifted inputs,
            # each gated by its read bit (a constant in block RAM)
            gates = 0 if self.mem_style == "bram" else self.product_width
            return Resources(luts=min(tree(bin(m_or).count("1")) + gates, as_functions(w + 1)))
        return Resources(luts=array(bin(m_or).count("1")))


class Requantize(RequantizePlan, PlannedComponent):
    """``y = clamp(((acc + b) * M + R) >> S, lo, hi) + zero_point`` per element (see the
    module documentation).

    Parameters
    ----------
    channels : int
        Channels per pixel ``C``.
    pe : int
        Channels per beat; must divide ``channels``.
    input_shape : ShapeLike
        The accumulators: ``signed(w)`` or ``unsigned(w)``, 1 to 64 bits.
    multiplier : int or array-like of int
        ``M``: shape ``(C,)``, ``(1,)`` or a scalar; ``0 <= M < 2**32``.
    offset : int or array-like of int, default 0
        ``R``, per channel or shared.
    shift : int or array-like of int, default 0
        ``S``, per channel or shared; ``0 <= S <= 62``.
    low, high : int
        The clamp, before ``zero_point`` is added.
    bias : int or array-like of int, default 0
        ``b``, added to the accumulator before the product.
    zero_point : int, default 0
        Added after the clamp.
    exceptions : sequence of sequences of ``(x, delta)``, optional
        Per channel (or one list for all) the accumulators ``x`` where ``delta`` (+1 or -1)
        is added after the shift; each slot costs a comparator per lane.
    vectors : int, default 1
        Pixels per frame.
    datapath : ``"auto"`` (default), ``"dsp"`` or ``"lut"``
    mem_style : ``"auto"`` (default), ``"registers"``, ``"lutram"`` or ``"bram"``
        Storage of the constants table (unused when the constants need none).
    target : ``"auto"`` (default), ``"generic"`` or ``"xilinx"``
        ``xilinx``: DSP48E2 slices (packed where they can be); ``generic``: plain
        multipliers; ``auto``: by the platform at elaboration.
    primitives : ``"auto"`` (default), ``"instance"`` or ``"behavioural"``
        The DSP48E2 as an ``Instance`` or as its bit-exact model.

    Members
    -------
    i : In(stream of ``pe`` x ``input_shape``)
    o : Out(stream of ``pe`` x :attr:`output_shape`)

    Examples
    --------
    ::

        # uint8 output of a 20-bit accumulator with one scale for every channel:
        # y = clamp((acc * 181 + 2**15) >> 16, 0, 255)
        unit = Requantize(channels=64, pe=8, input_shape=signed(20), multiplier=181,
                          offset=1 << 15, shift=16, low=0, high=255)
    """

    def elaborate(self, platform):
        m = Module()
        pe = self._pe
        control = StallPipeline(m, depth=LATENCY, i=self.i, o=self.o)
        advance = control.advance
        w = self._input_shape.width
        table = self.table
        m_shape = unsigned(self.multiplier_width)
        r_shape = self.offset_shape
        w_slot = w
        if len(table) == 1:
            mults = [Const(mul, m_shape) for mul, _, _ in table[0]]
            offsets = [Const(r, r_shape) for _, r, _ in table[0]]
            slots = [[(Const(x, w_slot), Const(d, signed(2))) for x, d in pairs]
                     for _, _, pairs in table[0]]
            offsets2 = offsets
        else:
            fold, _ = fold_counter(m, self.fold, self.i.valid & advance)
            mults, offsets, slots = self._read_table(m, table, fold, advance)
            offsets2 = [Signal(r_shape, name=f"offset2_{lane}") for lane in range(pe)]
            with m.If(advance):
                m.d.sync += [o2.eq(o1) for o2, o1 in zip(offsets2, offsets)]
        # u: the input made unsigned (a signed input's sign bit flipped)
        raw = [Value.cast(self.i.payload[lane]).as_unsigned() for lane in range(pe)]
        if self._input_shape.signed:
            raw = [Cat(v[:w - 1], ~v[w - 1]) if w > 1 else ~v for v in raw]
        target, instance = resolve_architecture(self._target, self._primitives, platform)
        t_shape = self.sum_shape
        if self._datapath == "dsp" and target == "xilinx" and self._one_slice():
            sums = self._dsp48e2_sums(m, raw, mults, offsets, offsets2, advance, instance)
        else:
            sums = self._fabric_sums(m, raw, mults, offsets2, advance)
        corrections = self._corrections(m, raw, slots, advance)
        lo, hi = self._clamp
        out_shape = self.output_shape
        shift = self._common_shift
        for lane in range(pe):
            t = Signal(t_shape, name=f"t{lane}")
            m.d.comb += t.eq(sums[lane])
            q = t.as_signed() >> shift if t_shape.signed else t >> shift
            if corrections is not None:
                q = q + corrections[lane]
            clamped = Mux(q < lo, Const(lo, out_shape),
                          Mux(q > hi, Const(hi, out_shape), q))
            with m.If(advance):
                m.d.sync += self.o.payload[lane].eq(clamped)
        return m

    def _read_table(self, m, table, address, enable):
        """The registered ``(M', R', corrections)`` of every lane for the fold at
        ``address``: each lane's word is ``M'``, then ``R'``, then per correction slot the
        input (``w`` bits) and its delta (2 bits, signed)."""
        mw, rw, w = self.multiplier_width, self.offset_shape.width, self._input_shape.width
        slots = self.exception_slots
        width = mw + rw + slots * (w + 2)

        def lane_word(mul, r, pairs):
            word = mul | (r & ((1 << rw) - 1)) << mw
            for k, (x, d) in enumerate(pairs):
                word |= ((d & 3) << w | x) << (mw + rw + k * (w + 2))
            return word
        words = [sum(lane_word(*item) << (lane * width) for lane, item in enumerate(row))
                 for row in table]
        data = read_only_memory(m, "constants", words, unsigned(self._pe * width),
                                self.mem_style, address, enable)
        lanes = [data[lane * width:(lane + 1) * width] for lane in range(self._pe)]
        mults = [lane[:mw] for lane in lanes]
        offsets = [lane[mw:mw + rw] for lane in lanes]
        if self.offset_shape.signed:
            offsets = [o.as_signed() for o in offsets]
        corrections = [[(lane[mw + rw + k * (w + 2):mw + rw + k * (w + 2) + w],
                         lane[mw + rw + k * (w + 2) + w:mw + rw + (k + 1) * (w + 2)].as_signed())
                        for k in range(slots)] for lane in lanes]
        return mults, offsets, corrections

    def _corrections(self, m, raw, slots, advance):
        """Per lane the correction of the beat at stage 3 (a signed 2-bit value: the delta
        of the correction slot whose input equals the beat's, else 0), or None without
        corrections. The input is registered with the constants (stage 1), compared, and the
        result carried along stages 2 and 3."""
        if not self.exception_slots:
            return None
        out = []
        for lane, value in enumerate(raw):
            u = Signal(self._input_shape.width, name=f"xu{lane}")
            with m.If(advance):
                m.d.sync += u.eq(value)
            hit = Const(0, signed(2))
            for x, d in slots[lane]:
                hit = Mux(u == x, d, hit)
            stage2 = Signal(signed(2), name=f"corr2_{lane}")
            stage3 = Signal(signed(2), name=f"corr3_{lane}")
            with m.If(advance):
                m.d.sync += [stage2.eq(hit), stage3.eq(stage2)]
            out.append(stage3)
        return out

    def _fabric_sums(self, m, raw, mults, offsets2, advance):
        """Per lane the registered sum ``u * M' + R'`` (stage 3): the input register, the
        product register (a plain ``*``, or the LUT shift-and-add), the sum register."""
        w = self._input_shape.width
        constant_m = len(self.table) == 1
        sums = []
        for lane, value in enumerate(raw):
            u = Signal(w, name=f"u{lane}")
            product = Signal(self.product_width, name=f"p{lane}")
            total = Signal(self.sum_shape, name=f"s{lane}")
            with m.If(advance):
                m.d.sync += u.eq(value)
            if self._datapath == "lut":
                if constant_m:
                    expression = self._csd_product(u, self.table[0][lane][0])
                else:
                    expression = sum((Mux(mults[lane][j], u << j, 0)
                                      for j in range(self.multiplier_width)), Const(0, 1))
            else:
                expression = u * mults[lane]
            with m.If(advance):
                m.d.sync += [product.eq(expression), total.eq(product + offsets2[lane])]
            sums.append(total)
        return sums

    def _csd_product(self, u, constant):
        """``u * constant`` as a shift-and-add of the constant's canonical signed digits."""
        digits = _csd(constant)
        if not digits:
            return Const(0, 1)
        plus = [u << bit for bit, digit in digits if digit > 0]
        minus = [u << bit for bit, digit in digits if digit < 0]
        result = sum(plus[1:], plus[0])
        return result - sum(minus[1:], minus[0]) if minus else result

    def _dsp48e2_sums(self, m, raw, mults, offsets, offsets2, advance, instance):
        """Per lane the sum ``u * M' + R'`` at stage 3 from DSP48E2 slices: one per lane
        (``P = A * B + C``: A register, multiplier register, C register, P register), or
        :attr:`lanes_per_dsp` lanes per slice (their products packed in A, the offsets added
        in the fabric after the P output)."""
        from ..vendor.xilinx.dsp48e2 import DSP48E2
        w, pe = self._input_shape.width, self._pe
        primitives = "instance" if instance else "behavioural"
        group = self.lanes_per_dsp
        controls = dict(OPMODEREG=0, INMODEREG=0, ALUMODEREG=0, CARRYINREG=0,
                        CARRYINSELREG=0, BREG=0, AREG=1, MREG=1, CREG=1,
                        primitives=primitives)
        sums = []
        if group == 1:
            for lane, value in enumerate(raw):
                swap = w > _DSP_A or self.multiplier_width > _DSP_B
                # the input goes through the slice's A (or, swapped, B) register; the
                # multiplier read with the table arrives a stage later, unregistered
                regs = dict(AREG=0, BREG=1) if swap else dict(AREG=1, BREG=0)
                dsp = DSP48E2(PREG=1, **{**controls, **regs})
                m.submodules[f"dsp{lane}"] = dsp
                a, b = (mults[lane], value) if swap else (value, mults[lane])
                m.d.comb += [dsp.A.eq(a), dsp.B.eq(b), dsp.C.eq(offsets[lane]),
                             dsp.OPMODE.eq(0b11_000_01_01), dsp.CEA2.eq(advance),
                             dsp.CEB2.eq(advance), dsp.CEM.eq(advance), dsp.CEC.eq(advance),
                             dsp.CEP.eq(advance)]
                sums.append(dsp.P[:self.sum_shape.width])
            return sums
        k = self.product_width
        for first in range(0, pe, group):
            lanes = list(range(first, min(first + group, pe)))
            dsp = DSP48E2(PREG=0, **controls)
            m.submodules[f"dsp{first}"] = dsp
            packed = Cat(*[Cat(raw[lane], Const(0, k - w)) for lane in lanes])
            m.d.comb += [dsp.A.eq(packed), dsp.B.eq(mults[lanes[0]]),
                         dsp.OPMODE.eq(0b00_000_01_01), dsp.CEA2.eq(advance),
                         dsp.CEM.eq(advance)]
            for index, lane in enumerate(lanes):
                total = Signal(self.sum_shape, name=f"s{lane}")
                product = dsp.P.as_unsigned()[index * k:(index + 1) * k]
                with m.If(advance):
                    m.d.sync += total.eq(product + offsets2[lane])
                sums.append(total)
        return sums


RequantizePlan.component = Requantize
