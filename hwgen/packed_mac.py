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
unsigned (an unsigned ``A``-bit activation is an ``A + 1``-bit signed one), ``A + 1`` for
bipolar weights.

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
of 5); an unsigned activation costs one stride bit (it is a signed ``A + 1``-bit one, and
the lane count is at least FINN's rule with ``A + 1``).

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
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .dsp48e2 import DSP48E2, PRIMITIVES
from .xilinx import is_ultrascale

__all__ = ["Packing", "packing", "max_lanes", "PackedMAC", "TARGETS"]

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
_CLOCK_ENABLES = ("CEA1", "CEA2", "CEB1", "CEB2", "CED", "CEAD", "CEM", "CEP")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} must be True or False")


def _check_width(name, value, valid=WIDTHS):
    if not _is_int(value) or value not in valid:
        raise ValueError(f"{name}={value!r} is not supported; valid values: "
                         f"{valid.start} to {valid.stop - 1}")


def _check_choice(name, value, valid):
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name}={value!r} is not supported; valid values: "
                         f"{', '.join(repr(v) for v in valid)}")


def _check_operands(weight_width, act_width, weight_signed, act_signed, narrow_range, bipolar):
    for name, value in (("weight_signed", weight_signed), ("act_signed", act_signed),
                        ("narrow_range", narrow_range), ("bipolar", bipolar)):
        _check_bool(name, value)
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


def _range(width, is_signed, narrow=False):
    if is_signed:
        return -(1 << (width - 1)) + int(narrow), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


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
    """
    lanes: int
    stride: int
    negate: bool
    bias: int
    weight_range: tuple
    act_range: tuple
    product_range: tuple

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
            bipolar=False):
    """The :class:`Packing` of ``weight_width``-bit weights times ``act_width``-bit
    activations in one DSP48E2 (arguments as for :func:`max_lanes`)."""
    _check_operands(weight_width, act_width, weight_signed, act_signed, narrow_range, bipolar)
    weight_range = (-1, 1) if bipolar else _range(weight_width, weight_signed, narrow_range)
    act_range = _range(act_width, act_signed)
    corners = [w * a for w in weight_range for a in act_range]
    product_range = (min(corners), max(corners))
    stride, negate, bias = _lane_format(product_range)
    draft = Packing(1, stride, negate, bias, weight_range, act_range, product_range)
    lanes = 1
    while draft.fits(lanes + 1):
        lanes += 1
    return Packing(lanes, stride, negate, bias, weight_range, act_range, product_range)


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

    At least FINN's ``1 + (26 - W) // (W + A - 1)`` for signed weights and activations; see
    the module documentation for the derivation.
    """
    return packing(weight_width, act_width, weight_signed=weight_signed, act_signed=act_signed,
                   narrow_range=narrow_range, bipolar=bipolar).lanes


class PackedMAC(wiring.Component):
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

    def __init__(self, *, weight_width, act_width, weight_signed=True, act_signed=True,
                 narrow_range=False, bipolar=False, lanes=None, max_terms=4096, target="auto",
                 primitives="auto"):
        self._packing = packing(weight_width, act_width, weight_signed=weight_signed,
                                act_signed=act_signed, narrow_range=narrow_range,
                                bipolar=bipolar)
        if lanes is None:
            lanes = self._packing.lanes
        if not _is_int(lanes) or lanes < 1:
            raise ValueError(f"lanes={lanes!r} must be a positive integer")
        if not _is_int(max_terms) or max_terms < 1:
            raise ValueError(f"max_terms={max_terms!r} must be a positive integer")
        _check_choice("target", target, TARGETS)
        _check_choice("primitives", primitives, PRIMITIVES)
        self._lanes = lanes
        self._max_terms = max_terms
        self._target = target
        self._primitives = primitives
        self._bipolar = bipolar
        if bipolar:
            self._weight_shape = unsigned(1)
        else:
            self._weight_shape = (signed if weight_signed else unsigned)(weight_width)
        self._weight_signed = weight_signed
        self._act_shape = (signed if act_signed else unsigned)(act_width)
        low, high = self._packing.product_range
        self._acc_shape = Shape.cast(range(min(0, low * max_terms), high * max_terms + 1))
        super().__init__({
            "w": In(data.ArrayLayout(self._weight_shape, lanes)),
            "a": In(self._act_shape),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "en": In(1, init=1),
            "o": Out(data.ArrayLayout(self._acc_shape, lanes)),
            "o_valid": Out(1),
        })

    # --- description ------------------------------------------------------------------------

    @property
    def packing(self):
        """The :class:`Packing` of one slice."""
        return self._packing

    @property
    def lanes(self):
        return self._lanes

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

    # --- implementation ---------------------------------------------------------------------

    def _weight_value(self, lane):
        """Lane ``lane``'s weight as a number (bipolar bits become signed(2) +-1)."""
        if self._bipolar:
            return Cat(Const(1, 1), ~self.w[lane]).as_signed()
        return self.w[lane]

    def _stage(self, m, value, name):
        reg = Signal(value.shape(), name=name, reset_less=True)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg

    def _generic_products(self, m):
        """One ``w * a`` per lane with ``_DSP_LATENCY`` register stages (input, product,
        padding)."""
        a = self._stage(m, self.a, "a_reg")
        products = []
        for lane in range(self._lanes):
            w = self._stage(m, self._weight_value(lane), f"w{lane}_reg")
            product = self._stage(m, w * a, f"product{lane}")
            for k in range(_DSP_LATENCY - 2):
                product = self._stage(m, product, f"product{lane}_d{k}")
            products.append(product)
        return products

    def _packed_products(self, m, platform):
        """One slice per group of up to ``lanes_per_dsp`` lanes; the lane products (negated
        when ``packing.negate``) are fields of P."""
        pk = self._packing
        stride = pk.stride
        products = []
        for group, start in enumerate(range(0, self._lanes, pk.lanes)):
            lanes = range(start, min(start + pk.lanes, self._lanes))
            count = len(lanes)
            fields = []
            signs = Signal(MULTIPLIER_WIDTH, name=f"signs{group}")
            for k, lane in enumerate(lanes):
                top = k == count - 1
                width = MULTIPLIER_WIDTH - k * stride if top else stride
                value = self._weight_value(lane)
                field = Signal(signed(width) if value.shape().signed else unsigned(width),
                               name=f"field{lane}")
                m.d.comb += field.eq(value)
                fields.append(field)
                if value.shape().signed and not top:
                    m.d.comb += signs[(k + 1) * stride].eq(value[-1])
            concat = Cat(*fields)
            minuend, subtrahend = (signs, concat) if pk.negate else (concat, signs)
            spread = sum(1 << (k * stride) for k in range(count))
            dsp = DSP48E2(**_DSP_ATTRIBUTES, RND=pk.bias * spread, primitives=self._primitives)
            assert dsp.latency == _DSP_LATENCY
            m.submodules[f"dsp{group}"] = dsp
            m.d.comb += [
                dsp.D.eq(minuend),
                dsp.A.eq(subtrahend),
                dsp.B.eq(self.a),
                dsp.INMODE.eq(_INMODE_D_MINUS_A),
                dsp.OPMODE.eq(_OPMODE_M_PLUS_RND),
                *(getattr(dsp, ce).eq(self.en) for ce in _CLOCK_ENABLES),
            ]
            for k in range(count):
                field = dsp.P[k * stride:(k + 1) * stride]
                if pk.bias:
                    products.append(Cat(field[:-1], ~field[-1]).as_signed())
                else:
                    products.append(field)
        return products

    def elaborate(self, platform):
        m = Module()
        target = self._target
        if target == "auto":
            target = "packed" if is_ultrascale(platform) else "generic"
        if target == "packed":
            products = self._packed_products(m, platform)
            negate = self._packing.negate
        else:
            products = self._generic_products(m)
            negate = False

        control = Cat(self.valid, self.first, self.last)
        for k in range(_DSP_LATENCY):
            stage = Signal(3, name=f"control{k}")
            with m.If(self.en):
                m.d.sync += stage.eq(control)
            control = stage
        valid, first, last = control[0], control[1], control[2]

        done = Signal()
        with m.If(self.en):
            m.d.sync += done.eq(valid & last)
        m.d.comb += self.o_valid.eq(done & self.en)
        for lane, product in enumerate(products):
            acc = Signal(self._acc_shape, name=f"acc{lane}")
            running = Mux(first, 0, acc)
            with m.If(self.en & valid):
                m.d.sync += acc.eq(running - product if negate else running + product)
            m.d.comb += self.o[lane].eq(acc)
        return m
