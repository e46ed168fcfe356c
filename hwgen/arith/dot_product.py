"""Dot products in fabric: ``lanes`` (PE) sums of ``simd`` products per cycle, each reduced by
one compressor tree (bit heap) per lane and accumulated over framed dot products.

:class:`FabricDotProduct` has the ports and framing of
:class:`~hwgen.arith.packed_mac.PackedDotProduct` (``w``, ``a``, ``valid``, ``first``, ``last``,
``en``, ``o``, ``o_valid``), so the MVAU uses either. Three ways to turn the products into
heap bits, chosen by ``mode``:

``xnor``
    Bipolar weights and activations (one bit each, 0 for -1 and 1 for +1). A product is +1
    exactly when the two bits agree, so ``sum(w * a) = 2 * popcount(XNOR) - n``: the heap
    holds the ``simd`` XNOR bits, one per product, and the accumulator counts agreements
    (``o`` is that count, :attr:`FabricDotProduct.acc_shape` unsigned). Whoever reads ``o``
    maps it to the dot product (the MVAU does so for raw outputs, and moves its thresholds
    into the count's domain instead: ``2p - n >= T`` iff ``p >= ceil((T + n) / 2)``). Each
    XNOR fits in the counter LUT that reads it: one bit in, about 0.7 LUT per product.

``binary-weights``
    Bipolar weights times integer activations: ``w * a`` is ``a`` or ``-a``. With ``x`` the
    activation sign-extended by one bit and ``m`` its bits XOR-ed with the inverted weight
    bit, ``-a = m + 1`` for ``w = -1`` and ``a = m`` for ``w = +1`` (two's complement), so a
    product is the signed ``A + 1``-bit ``m`` plus the inverted weight bit in column 0:
    ``A + 2`` heap bits, no multiplier.

``lut``
    Any operands up to 8 bits (bipolar ones as the values -1/+1, ``signed(2)``): the partial
    products ``w_j & a_k`` go straight into the heap at column ``j + k``, negated where one of
    the two bits is a sign bit (two's complement weight ``-2**(W-1)``; the heap's constant
    correction makes that exact), ``W * A`` bits per product. The AND gates merge into the
    counters' LUTs, so a product costs about ``0.7 * W * A`` LUTs, with no separate
    multiplier and adder tree.

The trees are pipelined every ``pipeline_every`` logic stages (see
:func:`~hwgen.arith.netlist.build_compressor`); :attr:`latency` is the tree's registers plus
the accumulator.

The lanes share one activation vector (an MVAU: every output row meets the same input), or
with ``per_lane_activations`` each lane has its own (a VVAU, a depthwise convolution: lane
``l`` is a channel and meets that channel's window). Either way each lane has a tree of its
own, so the cost is the same; only the port ``a`` is ``lanes`` times wider.
"""

import functools
from amaranth.hdl import Cat, Const, Module, Shape, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..checks import check_bool, check_int, check_one_of
from ..kernel import Plan, PlannedComponent
from ..resources import Resources
from ..shapes import BIPOLAR, cast_operand, element_shape
from .bitheap import BitHeap
from .netlist import PRIMITIVES, TARGETS, build_compressor, resolve_architecture
from .planner import plan_compression
from .packed_mac import _accumulate, _delayed_control
from ..vendor.xilinx.primitives import lut6_rom

__all__ = ["FabricDotProduct", "FabricDotProductPlan", "MODES", "lane_heap"]

MODES = ("xnor", "binary-weights", "lut")


def _operand_bits(bits, shape):
    """The value bits of an operand as ``(signal, inverted)`` pairs or constants 0/1, MSB
    last (bipolar: ``signed(2)`` ``Cat(1, ~b)``)."""
    if shape == BIPOLAR:
        return [1, (bits, True)]
    return [(bits[k], False) for k in range(Shape.cast(shape).width)]


def _combine(x, y, table):
    """``table`` (bit ``a | b << 1`` is f(a, b)) applied to two operand bits: a constant, a
    one-signal bit ``(signal, inverted)``, or a two-signal bit ``(x, y, 4-bit table)``."""
    def lookup(a, b):
        return table >> (a | b << 1) & 1
    if isinstance(x, int) and isinstance(y, int):
        return lookup(x, y)
    if isinstance(x, int) or isinstance(y, int):
        const_first = isinstance(x, int)
        (signal, inverted), const = (y, x) if const_first else (x, y)
        values = [lookup(const, v) if const_first else lookup(v, const) for v in (0, 1)]
        if values[0] == values[1]:
            return values[0]
        return (signal, inverted ^ (values[1] == 0))
    (xs, xi), (ys, yi) = x, y
    folded = 0
    for a in (0, 1):
        for b in (0, 1):
            folded |= lookup(a ^ xi, b ^ yi) << (a | b << 1)
    return (xs, ys, folded)


_XNOR, _AND = 0b1001, 0b1000


def _product_bits(mode, weight, act, weight_shape, act_shape):
    """The heap bits of ``weight * act`` (see the module documentation) as
    ``(column, bit, negate)``, each bit a constant, a one-signal or a two-signal bit."""
    if mode == "xnor":
        return [(0, _combine((weight, False), (act, False), _XNOR), False)]
    if mode == "binary-weights":
        # (act sign-extended by one bit) XOR ~w, as a signed A + 1-bit value, plus ~w
        width = Shape.cast(act_shape).width
        bits = _operand_bits(act, act_shape)
        bits.append(bits[-1] if Shape.cast(act_shape).signed else 0)
        flipped = [_combine(bit, (weight, False), _XNOR) for bit in bits]
        out = [(k, bit, k == width) for k, bit in enumerate(flipped)]
        return out + [(0, (weight, True), False)]
    w_bits = _operand_bits(weight, weight_shape)
    a_bits = _operand_bits(act, act_shape)
    w_signed = weight_shape == BIPOLAR or Shape.cast(weight_shape).signed
    a_signed = act_shape == BIPOLAR or Shape.cast(act_shape).signed
    out = []
    for j, w_bit in enumerate(w_bits):
        w_sign = w_signed and j == len(w_bits) - 1
        for k, a_bit in enumerate(a_bits):
            a_sign = a_signed and k == len(a_bits) - 1
            out.append((j + k, _combine(w_bit, a_bit, _AND), w_sign != a_sign))
    return out


def _bit_value(bit):
    if isinstance(bit, int):
        return Const(bit, 1)
    if len(bit) == 2:
        signal, inverted = bit
        return ~signal if inverted else signal
    x, y, table = bit
    return Const(table, 4).bit_select(Cat(x, y), 1)


def _full_adder(pairs, lut6=None):
    """Sum and carry of three two-signal bits, each a truth table of their six signals (one
    LUT6 each: the bits' own gates are absorbed). ``lut6(init, inputs)``, if given, builds
    each as a ``LUT6`` primitive: synthesis then cannot re-split the tables, which it does
    where many trees share their inputs (about 30% more LUTs in a PE x SIMD engine)."""
    signals = [s for x, y, _ in pairs for s in (x, y)]
    sums, carries = 0, 0
    for entry in range(64):
        total = sum(table >> (entry >> 2 * k & 3) & 1 for k, (_, _, table) in enumerate(pairs))
        sums |= (total & 1) << entry
        carries |= (total >> 1) << entry
    if lut6 is not None:
        return lut6(sums, signals), lut6(carries, signals)
    index = Cat(*signals)
    return Const(sums, 64).bit_select(index, 1), Const(carries, 64).bit_select(index, 1)


def lane_heap(mode, weights, acts, weight_shape, act_shape, lut6=None):
    """The bit heap of one lane's products ``weights[s] * acts[s]``, and the LUTs of its
    first stage.

    Every product bit is a gate of at most two signals (XNOR, AND, XOR with a weight bit).
    Per column, such bits are taken three at a time into full adders whose sum and carry are
    each one LUT6 of the six signals, so the gates cost nothing; the remaining bits enter
    the heap as their gates (one small LUT each, often merged by synthesis). Negated bits
    (two's complement sign weights) get an inverted truth table and the heap constant
    ``-2**column``, as :meth:`BitHeap.add_bit` does."""
    heap = BitHeap()
    pairs = {}
    for weight, act in zip(weights, acts):
        for column, bit, negate in _product_bits(mode, weight, act, weight_shape, act_shape):
            if negate:
                heap.add_constant(-(1 << column))
                bit = (1 - bit if isinstance(bit, int) else
                       (bit[0], not bit[1]) if len(bit) == 2 else (bit[0], bit[1], bit[2] ^ 0xF))
            if isinstance(bit, int):
                heap.add_constant(bit << column)
            elif len(bit) == 3:
                pairs.setdefault(column, []).append(bit)
            else:
                heap.add_bit(_bit_value(bit), column)
    luts = 0
    for column in sorted(pairs):
        bits = pairs[column]
        while len(bits) >= 3:
            total, carry = _full_adder(bits[:3], lut6)
            heap.add_bit(total, column)
            heap.add_bit(carry, column + 1)
            del bits[:3]
            luts += 2
        for bit in bits:
            heap.add_bit(_bit_value(bit), column)
            luts += 1
    return heap, luts


def _check_mode(mode, weight_shape, act_shape):
    check_one_of("mode", mode, MODES)
    bipolar_w, bipolar_a = weight_shape == BIPOLAR, act_shape == BIPOLAR
    if mode == "xnor" and not (bipolar_w and bipolar_a):
        raise ValueError(f"mode='xnor' needs bipolar weights and activations, not "
                         f"weight_shape={weight_shape!r}, act_shape={act_shape!r}")
    if mode == "binary-weights" and (not bipolar_w or bipolar_a):
        raise ValueError(f"mode='binary-weights' needs bipolar weights and integer "
                         f"activations, not weight_shape={weight_shape!r}, "
                         f"act_shape={act_shape!r}")


def heap_of(mode, weight_shape, act_shape, simd):
    """:func:`lane_heap` of ``simd`` products of fresh signals (for planning and estimates)."""
    weights = [Signal(element_shape(weight_shape)) for _ in range(simd)]
    acts = [Signal(element_shape(act_shape)) for _ in range(simd)]
    return lane_heap(mode, weights, acts, weight_shape, act_shape)


@functools.lru_cache(maxsize=1024)
def _heap_summary(mode, weight_shape, act_shape, simd):
    """``(heights, (min, max), first-stage LUTs)`` of :func:`heap_of`, once per operand
    shapes and ``simd`` (folding plans the same lanes for many candidates)."""
    heap, luts = heap_of(mode, weight_shape, act_shape, simd)
    return tuple(heap.heights()), (heap.min, heap.max), luts


class FabricDotProductPlan(Plan):
    """The analysis of :class:`FabricDotProduct` (same parameters): tree plans, latency and
    cost."""

    def __init__(self, *, mode, weight_shape, act_shape, simd, lanes, max_terms,
                 pipeline_every=2, target="auto", primitives="auto", per_lane_activations=False):
        weight_shape = cast_operand("weight_shape", weight_shape)
        act_shape = cast_operand("act_shape", act_shape)
        _check_mode(mode, weight_shape, act_shape)
        simd = check_int("simd", simd, 1)
        lanes = check_int("lanes", lanes, 1)
        max_terms = check_int("max_terms", max_terms, simd)
        pipeline_every = check_int("pipeline_every", pipeline_every, 0)
        check_one_of("target", target, TARGETS)
        check_one_of("primitives", primitives, PRIMITIVES)
        self._per_lane = check_bool("per_lane_activations", per_lane_activations)
        self._mode = mode
        self._weight_shape, self._act_shape = weight_shape, act_shape
        self._simd, self._lanes, self._max_terms = simd, lanes, max_terms
        self._pipeline_every, self._target, self._primitives = pipeline_every, target, primitives
        heights, self._sum_range, self._first_stage_luts = _heap_summary(
            mode, weight_shape, act_shape, simd)
        architectures = ("generic", "xilinx") if target == "auto" else (target,)
        self._plans = {arch: plan_compression(heights, target=arch)
                       for arch in architectures}
        self._tree_latency = max(plan.latency(pipeline_every) for plan in self._plans.values())
        lo, hi = self._sum_range
        self._acc_shape = Shape.cast(range(min(0, lo * (max_terms // simd)),
                                           hi * (max_terms // simd) + 1))
        super().__init__()

    def members(self):
        acts = data.ArrayLayout(element_shape(self._act_shape), self._simd)
        return {
            "w": In(data.ArrayLayout(data.ArrayLayout(element_shape(self._weight_shape),
                                                      self._simd), self._lanes)),
            "a": In(data.ArrayLayout(acts, self._lanes) if self._per_lane else acts),
            "valid": In(1), "first": In(1), "last": In(1), "en": In(1, init=1),
            "o": Out(data.ArrayLayout(self._acc_shape, self._lanes)),
            "o_valid": Out(1),
        }

    mode = property(lambda self: self._mode)
    simd = property(lambda self: self._simd)
    lanes = property(lambda self: self._lanes)
    weight_shape = property(lambda self: self._weight_shape)
    act_shape = property(lambda self: self._act_shape)
    acc_shape = property(lambda self: self._acc_shape)
    per_lane_activations = property(lambda self: self._per_lane,
                                    doc="Each lane has its own ``simd`` activations.")
    dsp_count = 0

    @property
    def sum_range(self):
        """``(min, max)`` of one cycle's sum per lane (for ``xnor``: ``(0, simd)``)."""
        return self._sum_range

    @property
    def latency(self):
        """Cycles from a ``last`` term to its ``o_valid``: the trees' registers and the
        accumulator."""
        return self._tree_latency + 1

    def plan(self, target=None):
        if target is None:
            target = "generic" if self._target == "auto" else self._target
        return self._plans[target]

    def estimate(self, target=None):
        """Analytic ``luts``, ``ffs``, ``carry``: the trees' plans (their input logic merged
        into the first counters), padding registers, accumulators (one LUT and FF per bit)
        and the control pipeline."""
        plan = self.plan(target)
        cost = plan.estimate(self._pipeline_every)
        acc = self._acc_shape.width
        pad = self._tree_latency - plan.latency(self._pipeline_every)
        return Resources(
            luts=self._lanes * (self._first_stage_luts + cost["luts"] + acc),
            ffs=self._lanes * (cost["ffs"] + pad * plan.width + acc) + 3 * self._tree_latency + 1,
            carry=self._lanes * (cost["carry"] + -(-acc // 8)))


class FabricDotProduct(FabricDotProductPlan, PlannedComponent):
    """``lanes`` dot products of ``simd`` terms per cycle, reduced by compressor trees in
    fabric (see the module documentation for the three ``mode`` s).

    Parameters
    ----------
    mode : ``"xnor"``, ``"binary-weights"`` or ``"lut"``
    weight_shape, act_shape : ``"bipolar"`` or ShapeLike
        Operands: bipolar (one bit, 0 for -1, 1 for +1), or signed/unsigned 1 to 8 bits.
    simd : int
        Products per cycle and lane.
    lanes : int
        Output rows (PE).
    max_terms : int
        Most products in one dot product (``simd`` times its cycles); sizes the accumulators.
        At least ``simd``.
    pipeline_every : int
        A register after every K logic stages of the trees (0: combinational).
    target, primitives
        The compressor trees' architecture and cells (see
        :class:`~hwgen.arith.popcount.CompressorTree`).
    per_lane_activations : bool
        Each lane multiplies its own activations (default False: one vector for all lanes).

    Members
    -------
    w : In(ArrayLayout(ArrayLayout(weight element, simd), lanes))
    a : In(ArrayLayout(activation element, simd))
        With ``per_lane_activations``: In(ArrayLayout(ArrayLayout(activation element, simd),
        lanes)), laid out as ``w``.
    valid, first, last, en : In(1)
        Framing as for :class:`~hwgen.arith.packed_mac.PackedMAC`: a cycle's ``simd`` terms are taken
        with ``valid`` and ``en``; ``first`` starts a new sum, ``last`` closes it.
    o : Out(ArrayLayout(acc_shape, lanes))
        The sums (for ``xnor``: the number of agreeing bits).
    o_valid : Out(1)
        High in the one enabled cycle, :attr:`latency` cycles after a ``last`` term.
    """

    def elaborate(self, platform):
        m = Module()
        target, instance = resolve_architecture(self._target, self._primitives, platform)
        plan = self._plans[target]
        lut6 = None
        if instance:
            cells = iter(range(1 << 30))

            def lut6(init, inputs):
                return lut6_rom(m, init, 64, Cat(*inputs), name=f"fa{next(cells)}")
        sums = []
        for lane in range(self._lanes):
            acts = self.a[lane] if self._per_lane else self.a
            heap, _ = lane_heap(self._mode, [self.w[lane][s] for s in range(self._simd)],
                                [acts[s] for s in range(self._simd)], self._weight_shape,
                                self._act_shape, lut6=lut6)
            total = build_compressor(
                m, heap.columns(), plan, pipeline_every=self._pipeline_every, en=self.en,
                instance=instance, name=f"l{lane}",
                extra_latency=self._tree_latency - plan.latency(self._pipeline_every))
            sums.append(total.as_signed() if heap.shape.signed else total)
        valid, first, last = _delayed_control(m, self, self._tree_latency)
        _accumulate(m, self, sums, False, valid, first, last, self._acc_shape)
        return m


FabricDotProductPlan.component = FabricDotProduct
