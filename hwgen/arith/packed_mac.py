"""Packed low-precision multiply-accumulate: several weights in one ``DSP48E2`` multiplier.

:class:`PackedMAC` computes ``L`` dot products at once, ``acc[l] += w[l] * a``: every cycle one
activation ``a`` is shared by ``L`` weights. With ``target="packed"`` the ``L`` weights sit side
by side in the DSP48E2's 27-bit multiplier operand (the pre-adder output ``AD``), the
activation on the 18-bit ``B`` port, and one multiplication gives all ``L`` products at once,
``stride`` bits apart in ``P``.

Packing (one slice, ``L`` lanes, stride ``S``)
---------------------------------------------
Lane ``l`` of the packed operand has weight ``2**(l*S)``::

    Wp = sum(w[l] * 2**(l*S))            P = s * Wp * a + RND = sum((s * p[l] + K) * 2**(l*S))

with the lane products ``p[l] = w[l] * a``, a sign ``s = +-1`` and a per-lane bias ``K`` put in
by the slice's ``RND`` constant (``W = RND`` in OPMODE, no extra cost). ``s`` and ``K`` are
chosen so that every biased lane term ``t[l] = s * p[l] + K`` lies in ``[0, 2**S)``:

* ``K = 0`` when ``s * p`` is never negative (unsigned weights and activations);
* ``K = 2**(S-1)`` when ``s * p`` is an ``S``-bit two's complement number; then
  ``t - K`` is the field with its MSB inverted, read as signed: a free extraction.
  ``s = -1`` is what signed x signed full-range operands need: their product range is
  ``[-2**(W+A-2) + min(2**(W-1), 2**(A-1)), 2**(W+A-2)]``, whose one value ``2**(W+A-2)``
  (``min * min``) does not fit ``W + A - 1`` two's complement bits, but its negative does.
  So the stride is ``S = W + A - 1``, FINN's stride, with no borrow logic at all.

The stride is the smallest ``S`` for which one of those choices fits (:func:`packing`):
``W + A - 1`` for signed x signed (full or narrow range), ``W + A`` when one operand is
unsigned, ``A + 1`` for bipolar weights.

Activation offset (signed weights, unsigned activations). An unsigned ``A``-bit activation
would be a signed ``A + 1``-bit one, one stride bit more. Instead the slice's ``B`` port gets
``a' = a - 2**(A-1)``, which is ``a`` with its MSB inverted read as a signed ``A``-bit number
(free). The lanes then hold the signed x signed products ``p'[l] = w[l] * a'`` with stride
``W + A - 1`` and the same exact extraction as above (the proof below applies with ``p'`` for
``p``), and fabric adds the correction: ``w * a = p' + w * 2**(A-1)``. In :class:`PackedMAC`
each lane's field gets its weight (delayed by the slice's 4 stages) added at bit ``A - 1``,
a ``W + 1``-bit adder (the field's low ``A - 1`` bits pass through; its high ``W`` bits are
``floor(p' / 2**(A-1))``, a signed ``W``-bit number, so the sum of two of them cannot
overflow) in front of the accumulator, which sees exactly ``w * a`` (minus one with a
complemented field, as below); in :class:`PackedDotProduct` the shifted weights are ``W`` more bits per SIMD
position in each lane's compressor heap. :func:`packing` uses it (``Packing.act_offset``)
where it gives more lanes than stride ``W + A``: 15 of the 49 width pairs.

Exactness. The lane terms are in ``[0, 2**S)``, so ``sum(t[l] * 2**(l*S))`` has no carries
between lanes: bits ``[l*S, (l+1)*S)`` of ``P`` *are* ``t[l]``, and ``p[l] = s * (t[l] - K)``.
What must hold for the slice to compute that sum exactly:

1. The packed operand fits the multiplier: ``|Wp| <= 2**26 - 1`` (27-bit signed ``AD``, with
   either sign). Its extremes are ``wmin * G`` and ``wmax * G``, ``G = sum(2**(l*S), l < L)``,
   so ``max(|wmin|, |wmax|) * G <= 2**26 - 1``.
2. ``a`` fits the 18-bit ``B`` port (8 bits do) and the product fits 45 bits (27 x 18).
3. The biased sum fits ``P``: ``0 <= P < 2**(L*S) <= 2**48``; the 48-bit ALU computes it
   modulo ``2**48`` and nothing wraps.

:func:`max_lanes` is the largest ``L`` meeting 1 and 3. For signed full-range weights and
signed activations, ``2**(W-1) * G <= 2**26 - 1`` holds exactly when
``(L-1) * S <= 26 - W`` (``G`` is a little more than ``2**((L-1)*S)``), i.e. FINN's rule
``L = 1 + floor((26 - W) / (W + A - 1))``: 4 lanes for 4x4, 2 for 8x8. Narrow-range weights
(``|w| <= 2**(W-1) - 1``) may gain a lane where ``(L-1) * S = 27 - W`` (ternary 2x4: 6 instead
of 5). Unsigned activations with signed weights reach at least FINN's rule too: with the
activation offset the packed operand and the stride are those of signed x signed (4 lanes
for 4x4 instead of 3), and stride ``W + A`` is kept where the offset gains no lane. Their
lane counts (stride; ``*``: activation offset, the others unchanged)::

    W | A:  2       3       4       5       6       7       8
    2     9 (3)*  7 (4)*  5 (6)   5 (6)*  4 (8)   4 (8)*  3 (10)
    3     6 (4)*  5 (5)*  4 (7)   4 (7)*  3 (9)   3 (10)  3 (11)
    4     5 (5)*  4 (7)   4 (7)*  3 (9)   3 (10)  3 (11)  3 (11)*
    5     4 (7)   4 (7)*  3 (9)   3 (10)  3 (10)* 2 (12)  2 (13)
    6     3 (8)   3 (9)   3 (10)  3 (10)* 2 (12)  2 (13)  2 (14)
    7     3 (9)   3 (9)*  2 (11)  2 (12)  2 (13)  2 (14)  2 (15)
    8     3 (9)*  2 (11)  2 (12)  2 (13)  2 (14)  2 (15)  2 (16)

Forming ``Wp`` needs no fabric adder. The fields are concatenated, each weight sign-extended
to ``S`` bits (the top one to the remaining ``27 - (L-1)*S`` bits); for signed weights that
concatenation is ``Wp + sum(sign[l] * 2**((l+1)*S), l < L-1)`` modulo ``2**27`` (a negative
lane ``l`` is ``2**S`` too large as an ``S``-bit field; the top one is sign-extended to bit
26). The correction vector of sign bits goes to the other pre-adder input, which subtracts:
``AD = D - A`` is ``concat - signs = Wp`` (``D`` = concatenation) or ``signs - concat = -Wp``
(``s = -1``, operands swapped). The pre-adder's 27-bit result does
not wrap by condition 1.

Accumulation. The slice is used as a pipelined packed multiplier (``AREG=1, BREG=2, DREG=1,
ADREG=1, MREG=1, PREG=1``: 4 cycles, ``P = AD * B + RND``); each lane's field is extracted in
fabric (wiring and at most one inverter) and summed in a full-width fabric accumulator of
:attr:`acc_shape` (``max_terms`` times the largest product, either sign). Accumulating in
the slice's own P register is not done: the minimal stride holds the range of one product,
so a second term may already overflow into the next lane; keeping ``k`` terms in P needs
``ceil(log2(k))`` more stride bits (fewer lanes) or a spill-over correction that costs the
same fabric adders as the accumulators. This design is exact for every supported width pair
and any ``max_terms``; in-DSP accumulation is left as a refinement.

With ``s = -1`` the accumulator would subtract the field, and a fabric subtractor costs two
LUTs per bit in synthesis (the inverted operand needs its own LUT). Instead the slice's ALU
complements P (``ALUMODE = 0010``, ``P = ~(M + RND)``): a field becomes
``~t = 2**S - 1 - t = p + K - 1``, read with its MSB inverted it is ``p - 1``, and the
accumulator adds it with a carry-in of one: one LUT per accumulator bit (a 4x4 signed
:class:`PackedMAC` synthesizes to 87 LUTs with Yosys instead of 167).

Lanes beyond :func:`max_lanes` use more slices, ``ceil(lanes / max_lanes)``
(:attr:`dsp_count`).

``target="generic"`` has the same ports, latency and results, with one plain ``w * a``
multiplier per lane (registered before and after, so Yosys maps it to ``MULT18X18D``,
``SB_MAC16`` or ``DSP48E2`` as the family has them). ``"auto"`` picks ``packed`` on
UltraScale(+) platforms and ``generic`` elsewhere (also in simulation).

Framing: a term is taken in each cycle with ``valid`` (and ``en``) high. ``first`` starts a new
sum with that term (otherwise the term adds to the running sum, also after a ``last``);
``last`` ends it: the ``L`` sums appear on ``o`` with ``o_valid`` exactly :attr:`latency`
cycles later, for one (enabled) cycle. Dot products follow each other without bubbles.
"""

import math
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..checks import check_bool, check_int, check_one_of
from ..kernel import Plan, PlannedComponent
from ..resources import Resources
from ..shapes import shape_range
from .bitheap import BitHeap
from .planner import plan_compression
from .popcount import Term, WeightedSum
from ..vendor.xilinx.dsp48e2 import DSP48E2, PRIMITIVES
from ..vendor.xilinx.primitives import is_ultrascale

__all__ = ["Packing", "packing", "max_lanes", "PackedMAC", "PackedDotProduct", "TARGETS"]

TARGETS = ("auto", "packed", "generic")

MULTIPLIER_WIDTH = 27  # the multiplier's wide operand (A[26:0] or the pre-adder's AD)
ACTIVATION_PORT_WIDTH = 18  # B
P_WIDTH = 48
WIDTHS = range(2, 9)

# The slice as used here: P = (D - A) * B + RND, pipelined for full speed.
_DSP_ATTRIBUTES = dict(
    AREG=1, BREG=2, CREG=0, DREG=1, ADREG=1, MREG=1, PREG=1,
    OPMODEREG=0, INMODEREG=0, ALUMODEREG=0, CARRYINREG=0, CARRYINSELREG=0,
    AMULTSEL="AD", BMULTSEL="B", PREADDINSEL="A", USE_MULT="MULTIPLY")
_DSP_LATENCY = 4  # D/A -> DREG/AREG -> ADREG -> MREG -> PREG; B -> B1 -> B2 -> MREG -> PREG
_INMODE_D_MINUS_A = 0b01100  # INMODE[2]: use D; INMODE[3]: AD = D - A
_OPMODE_M_PLUS_RND = 0b10_000_01_01  # W = RND, Z = 0, Y = X = M
_ALUMODE_SUM = 0b0000  # P = Z + W + X + Y
_ALUMODE_NOT_SUM = 0b0010  # P = ~(Z + W + X + Y): every lane field complemented
_CLOCK_ENABLES = ("CEA1", "CEA2", "CEB1", "CEB2", "CED", "CEAD", "CEM", "CEP")


def _check_width(name, value):
    return check_int(name, value, WIDTHS.start, WIDTHS.stop - 1)


def _check_operands(weight_width, act_width, weight_signed, act_signed, narrow_range, bipolar):
    for name, value in (("weight_signed", weight_signed), ("act_signed", act_signed),
                        ("narrow_range", narrow_range), ("bipolar", bipolar)):
        check_bool(name, value)
    if bipolar:
        if weight_width != 1:
            raise ValueError(f"weight_width={weight_width!r} must be 1 with bipolar=True "
                             f"(one bit per weight: 0 is -1, 1 is +1)")
        if narrow_range:
            raise ValueError("narrow_range=True does not apply to bipolar weights")
        if not weight_signed:
            raise ValueError("weight_signed=False does not apply to bipolar weights (+-1)")
    else:
        _check_width("weight_width", weight_width)
        if narrow_range and not weight_signed:
            raise ValueError("narrow_range=True needs signed weights (weight_signed=True)")
    _check_width("act_width", act_width)


@dataclass(frozen=True)
class Packing:
    """How lanes share one slice (see the module documentation).

    Attributes
    ----------
    lanes : int
        The largest exact lane count per slice (:func:`max_lanes`).
    stride : int
        Bits between lanes, ``S``.
    negate : bool
        The slice computes ``-Wp * a`` (``s = -1``).
    bias : int
        Per-lane bias ``K``: 0 (fields are unsigned) or ``2**(S-1)`` (fields are two's
        complement with their MSB inverted).
    weight_range, act_range, product_range : (int, int)
        Inclusive ranges of a weight, an activation and a lane product ``w * a``.
    act_offset : int
        0, or ``2**(A-1)`` when an unsigned activation enters the slice as
        ``a' = a - act_offset`` (its MSB inverted, read as signed): the lane fields then hold
        ``w * a'`` and ``w * act_offset`` is added in fabric (the activation-offset trick).
    lane_range : (int, int)
        Inclusive range of what a lane field holds (before ``negate`` and ``bias``):
        ``w * (a - act_offset)``.
    """
    lanes: int
    stride: int
    negate: bool
    bias: int
    weight_range: tuple
    act_range: tuple
    product_range: tuple
    act_offset: int = 0
    lane_range: tuple = None

    def operand_limit(self, lanes):
        """``max |Wp|`` for ``lanes`` lanes."""
        spread = sum(1 << (lane * self.stride) for lane in range(lanes))
        return max(abs(bound) for bound in self.weight_range) * spread

    def fits(self, lanes):
        """Conditions 1 and 3 of the module documentation."""
        return (lanes * self.stride <= P_WIDTH
                and self.operand_limit(lanes) <= (1 << (MULTIPLIER_WIDTH - 1)) - 1)


def _lane_format(product_range):
    """Smallest stride and its (negate, bias) so that ``s * p + K`` is in ``[0, 2**S)``."""
    low, high = product_range
    for stride in range(1, P_WIDTH + 1):
        half = 1 << (stride - 1)
        for negate in (False, True):
            lo, hi = (-high, -low) if negate else (low, high)
            if lo >= 0 and hi < (1 << stride):
                return stride, negate, 0
            if lo >= -half and hi < half:
                return stride, negate, half
    raise AssertionError("unreachable for operands of at most 8 bits")


def packing(weight_width, act_width, *, weight_signed=True, act_signed=True, narrow_range=False,
            bipolar=False, act_offset=True):
    """The :class:`Packing` of ``weight_width``-bit weights times ``act_width``-bit
    activations in one DSP48E2 (arguments as for :func:`max_lanes`). ``act_offset=False``
    leaves out the activation-offset trick (a unit whose slices hold one product each, as
    :class:`PackedDotProduct` with ``per_lane_activations``, gains no lane by it)."""
    _check_operands(weight_width, act_width, weight_signed, act_signed, narrow_range, bipolar)
    weight_range = (-1, 1) if bipolar else shape_range(
        (signed if weight_signed else unsigned)(weight_width), narrow=narrow_range)
    act_range = shape_range((signed if act_signed else unsigned)(act_width))

    def candidate(act_offset):
        corners = [w * a for w in weight_range for a in act_range]
        lane_corners = [w * (a - act_offset) for w in weight_range for a in act_range]
        product_range = (min(corners), max(corners))
        lane_range = (min(lane_corners), max(lane_corners))
        stride, negate, bias = _lane_format(lane_range)
        draft = Packing(1, stride, negate, bias, weight_range, act_range, product_range,
                        act_offset, lane_range)
        lanes = 1
        while draft.fits(lanes + 1):
            lanes += 1
        return Packing(lanes, stride, negate, bias, weight_range, act_range, product_range,
                       act_offset, lane_range)

    plain = candidate(0)
    if act_signed or not weight_signed or bipolar or not act_offset:
        return plain
    # Unsigned activations times signed weights: the activation-offset trick, where it gains
    # a lane (it costs a small fabric adder per lane).
    offset = candidate(1 << (act_width - 1))
    return offset if offset.lanes > plain.lanes else plain


def max_lanes(weight_width, act_width, *, weight_signed=True, act_signed=True,
              narrow_range=False, bipolar=False):
    """Largest number of ``weight_width``-bit weights that one DSP48E2 multiplies exactly by
    one shared ``act_width``-bit activation, with separable lane products.

    Parameters
    ----------
    weight_width : int
        2 to 8 (1 with ``bipolar=True``).
    act_width : int
        2 to 8.
    weight_signed, act_signed : bool
        Two's complement (default) or unsigned operands.
    narrow_range : bool
        Signed weights in ``[-2**(W-1) + 1, 2**(W-1) - 1]``.
    bipolar : bool
        Weights are +-1, one bit each (``weight_width=1``).

    At least FINN's ``1 + (26 - W) // (W + A - 1)`` for signed weights and signed or unsigned
    activations (the latter with the activation offset); see the module documentation for the
    derivation.
    """
    return packing(weight_width, act_width, weight_signed=weight_signed, act_signed=act_signed,
                   narrow_range=narrow_range, bipolar=bipolar).lanes


# --- shared implementation (PackedMAC, PackedDotProduct) ------------------------------------

def _resolve_target(target, platform):
    if target == "auto":
        return "packed" if is_ultrascale(platform) else "generic"
    return target


def _weight_value(bits, bipolar):
    """A weight as a number (a bipolar bit becomes ``signed(2)`` -1 or +1)."""
    if bipolar:
        return Cat(Const(1, 1), ~bits).as_signed()
    return bits


def _weight_value_shape(weight_shape, bipolar):
    return signed(2) if bipolar else weight_shape


def _stage(m, value, en, name):
    reg = Signal(value.shape(), name=name, reset_less=True)
    with m.If(en):
        m.d.sync += reg.eq(value)
    return reg


def _generic_products(m, weights, activation, en, prefix=""):
    """One ``w * a`` per weight with ``_DSP_LATENCY`` register stages (input, product,
    padding)."""
    a = _stage(m, activation, en, f"{prefix}a_reg")
    products = []
    for lane, weight in enumerate(weights):
        w = _stage(m, weight, en, f"{prefix}w{lane}_reg")
        product = _stage(m, w * a, en, f"{prefix}product{lane}")
        for k in range(_DSP_LATENCY - 2):
            product = _stage(m, product, en, f"{prefix}product{lane}_d{k}")
        products.append(product)
    return products


def _field_shape(pk):
    """Shape of a lane field as :func:`_packed_products` returns it."""
    return signed(pk.stride) if pk.bias else unsigned(pk.stride)


def _packed_products(m, pk, weights, activation, en, primitives, prefix="", complement=False):
    """``weights`` times one shared ``activation`` on ``ceil(len(weights) / pk.lanes)`` slices.
    Returns the lane fields of P, ``_DSP_LATENCY`` cycles later: the products, negated when
    ``pk.negate`` (``t - K`` as ``signed(S)`` when ``pk.bias``, else ``t`` as
    ``unsigned(S)``).

    With ``complement`` and ``pk.negate`` (which implies ``K = 2**(S-1)``), the slice's ALU
    outputs ``~P`` instead (``ALUMODE = 0010``, free): each field becomes
    ``~t = 2**S - 1 - t = p + K - 1``, and the returned ``~t - K`` (MSB inverted, signed) is
    ``p - 1``, the product itself minus one rather than its negative. The caller adds the one
    (an adder's carry-in); this spares a subtractor, whose operand inversion costs a second
    LUT per accumulator bit in synthesis."""
    stride = pk.stride
    complement = complement and pk.negate
    if pk.act_offset:  # a' = a - 2**(A-1): the MSB inverted, read as signed (free)
        offset_activation = Cat(activation[:-1], ~activation[-1]).as_signed()
    else:
        offset_activation = activation
    products = []
    for group, start in enumerate(range(0, len(weights), pk.lanes)):
        values = weights[start:start + pk.lanes]
        count = len(values)
        fields = []
        signs = Signal(MULTIPLIER_WIDTH, name=f"{prefix}signs{group}")
        for k, value in enumerate(values):
            top = k == count - 1
            width = MULTIPLIER_WIDTH - k * stride if top else stride
            field = Signal(signed(width) if value.shape().signed else unsigned(width),
                           name=f"{prefix}field{start + k}")
            m.d.comb += field.eq(value)
            fields.append(field)
            if value.shape().signed and not top:
                m.d.comb += signs[(k + 1) * stride].eq(value[-1])
        concat = Cat(*fields)
        minuend, subtrahend = (signs, concat) if pk.negate else (concat, signs)
        spread = sum(1 << (k * stride) for k in range(count))
        dsp = DSP48E2(**_DSP_ATTRIBUTES, RND=pk.bias * spread, primitives=primitives)
        assert dsp.latency == _DSP_LATENCY
        m.submodules[f"{prefix}dsp{group}"] = dsp
        m.d.comb += [
            dsp.D.eq(minuend),
            dsp.A.eq(subtrahend),
            dsp.B.eq(offset_activation),
            dsp.INMODE.eq(_INMODE_D_MINUS_A),
            dsp.OPMODE.eq(_OPMODE_M_PLUS_RND),
            dsp.ALUMODE.eq(_ALUMODE_NOT_SUM if complement else _ALUMODE_SUM),
            *(getattr(dsp, ce).eq(en) for ce in _CLOCK_ENABLES),
        ]
        for k in range(count):
            field = dsp.P[k * stride:(k + 1) * stride]
            if pk.bias:
                products.append(Cat(field[:-1], ~field[-1]).as_signed())
            else:
                products.append(field)
    return products


def _delayed_weights(m, weights, en, prefix=""):
    """``weights`` delayed by the slice's ``_DSP_LATENCY`` enabled cycles (aligned with the
    lane fields of :func:`_packed_products`)."""
    delayed = []
    for lane, weight in enumerate(weights):
        for k in range(_DSP_LATENCY):
            weight = _stage(m, weight, en, f"{prefix}w{lane}_d{k}")
        delayed.append(weight)
    return delayed


def _add_act_offset(field, weight, shift):
    """``field + weight * 2**shift`` (the activation-offset correction): the low ``shift``
    bits of ``field`` pass through, a ``W + 1``-bit adder forms the rest."""
    high = field[shift:].as_signed() + weight
    return Cat(field[:shift], high).as_signed()


def _delayed_control(m, component, stages):
    """``valid``, ``first``, ``last`` of ``component`` delayed by ``stages`` enabled cycles."""
    control = Cat(component.valid, component.first, component.last)
    for k in range(stages):
        stage = Signal(3, name=f"control{k}")
        with m.If(component.en):
            m.d.sync += stage.eq(control)
        control = stage
    return control[0], control[1], control[2]


def _accumulate(m, component, terms, negate, valid, first, last, acc_shape, plus_one=False):
    """One accumulator per lane (``acc = (first ? 0 : acc) +- term [+ 1]``), driving ``o``
    and, one cycle after a ``valid & last`` term, ``o_valid``."""
    done = Signal()
    with m.If(component.en):
        m.d.sync += done.eq(valid & last)
    m.d.comb += component.o_valid.eq(done & component.en)
    for lane, term in enumerate(terms):
        acc = Signal(acc_shape, name=f"acc{lane}")
        running = Mux(first, 0, acc)
        if negate:
            total = running - term
        elif plus_one:
            # (2r + 1) + (2t + 1) = 2(r + t + 1): the one rides on the carry chain's carry-in
            # (Yosys builds a second adder for ``running + term + 1``).
            doubled = Cat(Const(1, 1), running).as_signed() + Cat(Const(1, 1), term).as_signed()
            total = doubled[1:]
        else:
            total = running + term
        with m.If(component.en & valid):
            m.d.sync += acc.eq(total)
        m.d.comb += component.o[lane].eq(acc)


def _acc_shape(product_range, max_terms):
    low, high = product_range
    return Shape.cast(range(min(0, low * max_terms), high * max_terms + 1))


def _tree_plans(shapes, negate, extra=()):
    """Compressor plans (generic and xilinx) of a sum of ``shapes``, each negated if
    ``negate``, and of the ``extra`` ``(shape, shift)`` terms, as
    :class:`~hwgen.arith.popcount.WeightedSum` makes them."""
    heap = BitHeap()
    for shape in shapes:
        heap.add_value(Signal(shape), negate=negate)
    for shape, shift in extra:
        heap.add_value(Signal(shape), shift=shift)
    return [plan_compression(heap.heights(), target=arch) for arch in ("generic", "xilinx")]


def _mac_estimate(*, target, lanes, simd, acc_width, dsp_count, weight_width, act_width,
                  product_width, control_stages, plus_one=False, tree_costs=(),
                  tree_registers=0, sum_width=0, offset_adders=0, offset_registers=0,
                  act_registers=None):
    """Resources of a PackedMAC / PackedDotProduct (see their ``estimate``);
    ``act_registers`` is the number of activation operands (default ``simd``, shared by
    the lanes)."""
    # Accumulators: one LUT per bit (the ``first`` mux, the lane's field bit or its inverted
    # MSB and the sum's XOR fit one 6-LUT in front of the carry chain), one FF per bit; one
    # more LUT for the carry-in of a complemented field.
    luts = lanes * (acc_width + plus_one)
    ffs = lanes * acc_width + 3 * control_stages + 1
    # activation offset: the delayed weights, and per lane a W + 1-bit correction adder
    # (PackedMAC, simd=1) or W more heap bits per SIMD position (counted by the tree plans)
    luts += offset_adders * (weight_width + 1)
    ffs += offset_registers * weight_width * _DSP_LATENCY
    carry = lanes * -(-acc_width // 8)
    if target == "generic":
        # operand registers, then three product stages (multipliers left to synthesis)
        act_registers = simd if act_registers is None else act_registers
        ffs += act_registers * act_width + simd * lanes * (weight_width + 3 * product_width)
    for cost in tree_costs:
        luts, ffs, carry = luts + cost["luts"], ffs + cost["ffs"], carry + cost["carry"]
    ffs += tree_registers * sum_width * lanes
    return Resources(luts=luts, ffs=ffs, carry=carry, dsp=dsp_count)


class _PackedUnitPlan(Plan):
    """Read-only description shared by :class:`PackedMAC` and :class:`PackedDotProduct`."""

    def _configure(self, weight_width, act_width, weight_signed, act_signed, narrow_range,
                   bipolar, lanes, max_terms, target, primitives, act_offset=True):
        """Validate and record the parameters both units share."""
        self._packing = packing(weight_width, act_width, weight_signed=weight_signed,
                                act_signed=act_signed, narrow_range=narrow_range,
                                bipolar=bipolar, act_offset=act_offset)
        if lanes is None:
            lanes = self._packing.lanes
        lanes = check_int("lanes", lanes, 1)
        max_terms = check_int("max_terms", max_terms, 1)
        check_one_of("target", target, TARGETS)
        check_one_of("primitives", primitives, PRIMITIVES)
        self._lanes = lanes
        self._max_terms = max_terms
        self._target = target
        self._primitives = primitives
        self._bipolar = bipolar
        if bipolar:
            self._weight_shape = unsigned(1)
        else:
            self._weight_shape = (signed if weight_signed else unsigned)(weight_width)
        self._act_shape = (signed if act_signed else unsigned)(act_width)
        self._acc_shape = _acc_shape(self._packing.product_range, max_terms)

    def _ports(self, weights_layout, activations_layout):
        """The ports both units share: operands ``w`` and ``a``, framing, the sums ``o``."""
        return {
            "w": In(weights_layout),
            "a": In(activations_layout),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "en": In(1, init=1),
            "o": Out(data.ArrayLayout(self._acc_shape, self._lanes)),
            "o_valid": Out(1),
        }

    @property
    def packing(self):
        """The :class:`Packing` of one slice."""
        return self._packing

    @property
    def lanes_per_dsp(self):
        return self._packing.lanes

    @property
    def stride(self):
        return self._packing.stride

    @property
    def max_terms(self):
        return self._max_terms

    @property
    def target(self):
        return self._target

    @property
    def weight_shape(self):
        return self._weight_shape

    @property
    def act_shape(self):
        return self._act_shape

    @property
    def acc_shape(self):
        """Accumulator shape: holds ``max_terms`` times the smallest and the largest product."""
        return self._acc_shape


class PackedMACPlan(_PackedUnitPlan):
    """The analysis of :class:`PackedMAC` (same parameters)."""

    def __init__(self, *, weight_width, act_width, weight_signed=True, act_signed=True,
                 narrow_range=False, bipolar=False, lanes=None, max_terms=4096, target="auto",
                 primitives="auto"):
        self._configure(weight_width, act_width, weight_signed, act_signed, narrow_range,
                        bipolar, lanes, max_terms, target, primitives)
        super().__init__()

    def members(self):
        return self._ports(data.ArrayLayout(self._weight_shape, self._lanes), self._act_shape)

    # --- description ------------------------------------------------------------------------

    @property
    def lanes(self):
        return self._lanes

    @property
    def latency(self):
        """Cycles from a ``last`` term to its ``o_valid``: the slice's 4 pipeline stages and
        the accumulator register (the generic target is padded to the same)."""
        return _DSP_LATENCY + 1

    @property
    def dsp_count(self):
        """DSP48E2 slices of the packed target, ``ceil(lanes / lanes_per_dsp)``; 0 with
        ``target="generic"`` (its multipliers are left to synthesis)."""
        if self._target == "generic":
            return 0
        return math.ceil(self._lanes / self._packing.lanes)


    def estimate(self):
        """Analytic resource estimate: ``luts``, ``ffs``, ``carry`` (CARRY8) and ``dsp48e2``
        (exact: :attr:`dsp_count`). See :func:`_mac_estimate`; the generic target's
        multipliers are left to synthesis and not counted."""
        value_shape = _weight_value_shape(self._weight_shape, self._bipolar)
        product = (Signal(value_shape) * Signal(self._act_shape)).shape().width
        offset = self._target != "generic" and bool(self._packing.act_offset)
        return _mac_estimate(target=self._target, lanes=self._lanes, simd=1,
                             acc_width=self._acc_shape.width, dsp_count=self.dsp_count,
                             plus_one=self._target != "generic" and self._packing.negate,
                             offset_adders=self._lanes * offset,
                             offset_registers=self._lanes * offset,
                             weight_width=self._weight_shape.width,
                             act_width=self._act_shape.width, product_width=product,
                             control_stages=_DSP_LATENCY)


class PackedMAC(PackedMACPlan, PlannedComponent):
    """``lanes`` multiply-accumulates sharing one activation per cycle:
    ``o[l] = sum(w[l] * a)`` over each framed dot product (see the module documentation).

    Parameters
    ----------
    weight_width, act_width : int
        Operand widths, 2 to 8 (``weight_width=1`` with ``bipolar=True``).
    weight_signed, act_signed : bool
        Signed (default) or unsigned operands.
    narrow_range : bool
        Signed weights never take ``-2**(W-1)`` (the packed target relies on it, which may buy
        a lane; the result for that value is unspecified).
    bipolar : bool
        One-bit weights, 0 for -1 and 1 for +1.
    lanes : int or None
        Number of lanes; default :func:`max_lanes` (one slice). More lanes use more slices.
    max_terms : int
        Longest dot product; sizes the accumulators (default 4096). Longer sums wrap.
    target : ``"auto"``, ``"packed"`` or ``"generic"``
        DSP48E2 packing or one plain multiplier per lane; ``auto`` packs on UltraScale(+)
        platforms. Ports, :attr:`latency` and results are the same for all.
    primitives : ``"auto"``, ``"instance"`` or ``"behavioural"``
        For the packed target: the ``DSP48E2`` ``Instance`` or its bit-accurate model
        (``auto``: the instance on UltraScale(+) platforms).

    Members
    -------
    w : In(ArrayLayout(weight shape, lanes))
        Weights; element ``l`` at bits ``[l*W, (l+1)*W)``.
    a : In(signed(act_width) or unsigned(act_width))
    valid, first, last : In(1)
        A term is taken when ``valid`` (and ``en``); ``first`` starts a new sum with it,
        ``last`` closes the sum.
    en : In(1, init=1)
        Clock enable of the whole pipeline (the slice's CE ports included).
    o : Out(ArrayLayout(acc_shape, lanes))
        The sums, held until the next term of the following dot product is accumulated.
    o_valid : Out(1)
        High in the one enabled cycle, :attr:`latency` cycles after a ``last`` term, in which
        ``o`` holds that dot product's sums.
    """

    # --- implementation ---------------------------------------------------------------------

    def _weight_value(self, lane):
        """Lane ``lane``'s weight as a number (bipolar bits become signed(2) +-1)."""
        return _weight_value(self.w[lane], self._bipolar)

    def elaborate(self, platform):
        m = Module()
        weights = [self._weight_value(lane) for lane in range(self._lanes)]
        packed = _resolve_target(self._target, platform) == "packed"
        if packed:
            products = _packed_products(m, self._packing, weights, self.a, self.en,
                                        self._primitives, complement=True)
            if self._packing.act_offset:
                shift = self._act_shape.width - 1
                products = [_add_act_offset(p, w, shift) for p, w in
                            zip(products, _delayed_weights(m, weights, self.en))]
        else:
            products = _generic_products(m, weights, self.a, self.en)
        valid, first, last = _delayed_control(m, self, _DSP_LATENCY)
        _accumulate(m, self, products, False, valid, first, last, self._acc_shape,
                    plus_one=packed and self._packing.negate)
        return m

class PackedDotProductPlan(_PackedUnitPlan):
    """The analysis of :class:`PackedDotProduct` (same parameters)."""

    def __init__(self, *, weight_width, act_width, simd, weight_signed=True, act_signed=True,
                 narrow_range=False, bipolar=False, lanes=None, max_terms=4096,
                 pipeline_every=2, target="auto", primitives="auto",
                 per_lane_activations=False):
        per_lane = check_bool("per_lane_activations", per_lane_activations)
        self._configure(weight_width, act_width, weight_signed, act_signed, narrow_range,
                        bipolar, lanes, max_terms, target, primitives, act_offset=not per_lane)
        self._per_lane = per_lane
        simd = check_int("simd", simd, 1)
        if max_terms < simd:
            raise ValueError(f"max_terms={max_terms!r} must be at least simd={simd!r} (one cycle "
                             f"adds simd products)")
        pipeline_every = check_int("pipeline_every", pipeline_every, 0)
        self._simd = simd
        self._pipeline_every = pipeline_every
        value_shape = _weight_value_shape(self._weight_shape, bipolar)
        self._product_shape = (Signal(value_shape) * Signal(self._act_shape)).shape()
        # Tree plans of both targets (the trees' generic and xilinx architectures): the
        # latency is their longest pipeline, the others are padded to it.
        if simd == 1:
            self._plans = {}
        else:
            extra = ()
            if self._packing.act_offset:
                extra = [(self._weight_shape, act_width - 1)] * simd
            self._plans = {
                "packed": _tree_plans([_field_shape(self._packing)] * simd,
                                      self._packing.negate, extra),
                "generic": _tree_plans([self._product_shape] * simd, False),
            }
        self._tree_latency = max((plan.latency(pipeline_every)
                                  for plans in self._plans.values() for plan in plans),
                                 default=0)
        super().__init__()

    def members(self):
        acts = data.ArrayLayout(self._act_shape, self._simd)
        return self._ports(
            data.ArrayLayout(data.ArrayLayout(self._weight_shape, self._simd), self._lanes),
            data.ArrayLayout(acts, self._lanes) if self._per_lane else acts)

    # --- description ------------------------------------------------------------------------

    @property
    def lanes(self):
        """Output rows (PE)."""
        return self._lanes

    @property
    def simd(self):
        return self._simd

    @property
    def pipeline_every(self):
        return self._pipeline_every

    @property
    def per_lane_activations(self):
        """Each lane has its own ``simd`` activations (``a`` is ``lanes x simd``)."""
        return self._per_lane

    @property
    def lanes_per_dsp(self):
        """Lanes that share a slice: the packing's, or 1 with :attr:`per_lane_activations`
        (the lanes share no operand)."""
        return 1 if self._per_lane else self._packing.lanes

    @property
    def latency(self):
        """Cycles from a ``last`` term to its ``o_valid``: the slices' 4 stages, the
        compressor trees' registers and the accumulator register."""
        return _DSP_LATENCY + self._tree_latency + 1

    @property
    def dsp_count(self):
        """DSP48E2 slices of the packed target, ``simd * ceil(lanes / lanes_per_dsp)``
        (``simd * lanes`` with :attr:`per_lane_activations`); 0 with ``target="generic"``."""
        if self._target == "generic":
            return 0
        return self._simd * math.ceil(self._lanes / self.lanes_per_dsp)

    def estimate(self):
        """Analytic resource estimate: ``luts``, ``ffs``, ``carry`` (CARRY8) and ``dsp48e2``
        (exact: :attr:`dsp_count`): the accumulators (one LUT and one FF per bit), the
        compressor trees' own estimates (generic counters) and their padding registers, the
        control pipeline, and for the generic target its operand and product registers (the
        multipliers are left to synthesis and not counted)."""
        costs, registers, sum_width = (), 0, 0
        if self._simd > 1:
            key = "generic" if self._target == "generic" else "packed"
            plan = self._plans[key][0]
            costs = [plan.estimate(self._pipeline_every)] * self._lanes
            registers = self._tree_latency - plan.latency(self._pipeline_every)
            sum_width = plan.width
        offset = self._target != "generic" and bool(self._packing.act_offset)
        return _mac_estimate(target=self._target, lanes=self._lanes, simd=self._simd,
                             acc_width=self._acc_shape.width, dsp_count=self.dsp_count,
                             offset_adders=self._lanes * offset * (self._simd == 1),
                             offset_registers=self._lanes * self._simd * offset,
                             weight_width=self._weight_shape.width,
                             act_width=self._act_shape.width,
                             product_width=self._product_shape.width,
                             plus_one=(self._simd == 1 and self._target != "generic"
                                       and self._packing.negate),
                             control_stages=_DSP_LATENCY + self._tree_latency,
                             tree_costs=costs, tree_registers=registers, sum_width=sum_width,
                             act_registers=self._simd * (self._lanes if self._per_lane else 1))


class PackedDotProduct(PackedDotProductPlan, PlannedComponent):
    """``lanes`` (PE) dot products of ``simd`` terms per cycle, accumulated over framed dot
    products: ``o[l] = sum over cycles of sum(w[l][s] * a[s], s < simd)``.

    The SIMD reduction
    ------------------
    Each SIMD position ``s`` has its own packed slices, ``ceil(lanes / lanes_per_dsp)`` of
    them, multiplying the ``lanes`` weights ``w[:, s]`` by the one activation ``a[s]`` exactly
    as :class:`PackedMAC` does (same :class:`Packing`, same per-lane bias, so every lane
    product is a bit field of its slice's P). The ``simd`` fields of lane ``l`` are then summed
    in fabric by a :class:`~hwgen.arith.popcount.WeightedSum` compressor tree per lane (each
    field enters as ``t - K``, negated when ``packing.negate``; the bias correction is the heap's
    constant, so it costs nothing), optionally pipelined (``pipeline_every``), and the tree's
    sum goes to the same full-width fabric accumulator as in :class:`PackedMAC`.

    The alternative is to chain the ``simd`` slices of a lane group through the ``PCIN``
    cascade (``Z = PCIN``), so that the DSPs add the packed products and only the last slice's
    lanes are extracted. It needs no fabric for the reduction, but a lane field must then hold
    the sum of ``simd`` products: ``ceil(log2(simd))`` more stride bits per lane, which costs
    lanes (4x4 signed: stride 7 -> 10 for ``simd=8``, 4 -> 3 lanes per slice, i.e. a third
    more slices), the cascade adds one cycle of latency per slice (the operands must be
    skewed by delay lines in fabric, ``simd * (simd - 1) / 2`` operand registers), and P
    still overflows beyond ``simd`` terms, so accumulation stays in fabric. The compressor
    tree keeps :func:`max_lanes` lanes per slice and costs roughly one LUT per bit removed
    (about ``simd * stride`` LUTs per lane), exact for any ``simd``; it is what is built.

    :attr:`dsp_count` is ``simd * ceil(lanes / lanes_per_dsp)``. :attr:`latency` is the
    slices' 4 stages, the tree's pipeline registers and the accumulator (5 with
    ``simd=1`` or a combinational tree); it is the same for every ``target``.

    Per-lane activations
    --------------------
    With ``per_lane_activations`` every lane has its own ``simd`` activations (a depthwise
    convolution: lane ``l`` is channel ``l``, ``a[l][s]`` its window element), so no two
    products share an operand and packing does not apply: each product gets a slice of its
    own (one lane of the same :class:`Packing`, without the activation offset, which gains
    nothing with one lane), ``lanes_per_dsp`` is 1 and :attr:`dsp_count` is
    ``simd * lanes``. The field extraction, the trees and the accumulators are as above.

    Parameters
    ----------
    weight_width, act_width, weight_signed, act_signed, narrow_range, bipolar
        As for :class:`PackedMAC`.
    lanes : int or None
        Output rows (PE); default :func:`max_lanes` (one slice per SIMD position).
    simd : int
        Products summed per cycle and lane (SIMD), at least 1.
    max_terms : int
        Most products in one dot product, ``simd`` times its cycles; sizes the accumulators
        (default 4096). Longer sums wrap. At least ``simd``.
    pipeline_every : int
        A register stage after every K logic stages of the compressor trees (0: combinational,
        from the slices' P registers to the accumulators). Default 2.
    target : ``"auto"``, ``"packed"`` or ``"generic"``
        As for :class:`PackedMAC`; the compressor trees use ``xilinx`` counters on
        UltraScale(+) platforms with the packed target, generic ones otherwise.
    primitives : ``"auto"``, ``"instance"`` or ``"behavioural"``
        For the ``DSP48E2`` slices and the trees' ``LUT6_2``/``CARRY8`` cells.
    per_lane_activations : bool
        Each lane multiplies its own activations (see above); default False (shared).

    Members
    -------
    w : In(ArrayLayout(ArrayLayout(weight shape, simd), lanes))
        Weights; ``w[l][s]`` at bits ``[(l*simd + s)*W, (l*simd + s + 1)*W)``.
    a : In(ArrayLayout(activation shape, simd))
        Activations; ``a[s]`` at bits ``[s*A, (s+1)*A)``. With ``per_lane_activations``
        ``In(ArrayLayout(ArrayLayout(activation shape, simd), lanes))``, ``a[l][s]`` at bits
        ``[(l*simd + s)*A, ...)`` as ``w``.
    valid, first, last, en : In(1)
        As for :class:`PackedMAC`, per cycle of ``simd`` terms.
    o : Out(ArrayLayout(acc_shape, lanes))
    o_valid : Out(1)
        As for :class:`PackedMAC`.
    """

    # --- implementation ---------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        target = _resolve_target(self._target, platform)
        by_lane = [[] for _ in range(self._lanes)]
        offsets = [[] for _ in range(self._lanes)]  # delayed weights (activation offset)
        shift = self._act_shape.width - 1

        def packed(values, activation, prefix):
            return _packed_products(m, self._packing, values, activation, self.en,
                                    self._primitives, prefix=prefix, complement=self._simd == 1)

        def generic(values, activation, prefix):
            return _generic_products(m, values, activation, self.en, prefix=prefix)

        for s in range(self._simd):
            weights = [_weight_value(self.w[lane][s], self._bipolar)
                       for lane in range(self._lanes)]
            if target == "packed":
                products = self._products(packed, weights, s)
                if self._packing.act_offset:
                    delayed = _delayed_weights(m, weights, self.en, prefix=f"s{s}_")
                    if self._simd == 1:
                        products = [_add_act_offset(p, w, shift)
                                    for p, w in zip(products, delayed)]
                    else:
                        for lane, weight in enumerate(delayed):
                            offsets[lane].append(weight)
            else:
                products = self._products(generic, weights, s)
            for lane, product in enumerate(products):
                by_lane[lane].append(product)
        negate = target == "packed" and self._packing.negate

        plus_one = False
        if self._simd == 1:  # as PackedMAC: complemented fields, the one as carry-in
            sums = [products[0] for products in by_lane]
            plus_one, negate = negate, False
        else:
            tree_target = "auto" if target == "packed" else "generic"
            sums = []
            for lane, products in enumerate(by_lane):
                terms = [Term(p.shape(), 0, negate) for p in products]
                terms += [Term(w.shape(), shift, False) for w in offsets[lane]]
                tree = WeightedSum(terms, pipeline_every=self._pipeline_every,
                                   target=tree_target, primitives=self._primitives)
                m.submodules[f"tree{lane}"] = tree
                m.d.comb += tree.en.eq(self.en)
                m.d.comb += [tree.i[f"t{k}"].eq(p)
                             for k, p in enumerate(products + offsets[lane])]
                total = tree.o
                for k in range(self._tree_latency - tree.latency):
                    total = _stage(m, total, self.en, f"sum{lane}_pad{k}")
                sums.append(total)
            negate = False

        valid, first, last = _delayed_control(m, self, _DSP_LATENCY + self._tree_latency)
        _accumulate(m, self, sums, negate, valid, first, last, self._acc_shape, plus_one)
        return m

    def _products(self, multiply, weights, s):
        """The lane products of SIMD position ``s`` from ``multiply(weights, activation,
        prefix)``: all lanes' weights on the shared activation ``a[s]`` at once, or with
        :attr:`per_lane_activations` each lane's weight on its own ``a[lane][s]``."""
        if not self._per_lane:
            return multiply(weights, self.a[s], f"s{s}_")
        return [multiply([weight], self.a[lane][s], f"s{s}_l{lane}_")[0]
                for lane, weight in enumerate(weights)]


PackedMACPlan.component = PackedMAC
PackedDotProductPlan.component = PackedDotProduct
