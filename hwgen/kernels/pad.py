"""Padding: a border of constant pixels around a feature map (FINN's FMPadding).

An ``H`` x ``W`` x ``C`` map streams in (NHWC, ``simd`` channels per beat) and leaves as
``(H + top + bottom)`` x ``(W + left + right)`` x ``C``: every pixel of the border carries
``value`` in all its channels (0 by default, or e.g. a quantizer's zero point). The sides
are given as ONNX orders the spatial ``pads`` of ``Pad``, ``Conv`` and ``MaxPool``:
``padding=(top, left, bottom, right)`` (begin of every axis, then end); one integer pads
all four sides alike.

Algorithm: one register stage. Counters walk the *output* map (fold, column, row). At an
inner position the output register takes the input beat; at a border position it takes
the constant beat and ``i.ready`` stays low, so border beats are inserted without reading
the input, one output beat per cycle. A frame's output starts when its first input beat is
offered: the border beats before the first inner pixel (the top rows and the left border
of the first inner row) are sent while that beat waits, so a frame's border never runs
ahead of the frame, and ``latency`` is 1 cycle from the *arrival* of the first input beat
(it is accepted after the border beats before it). The beats of a frame's right and bottom
border follow its last input beat without waiting for anything.

Timing: ``cycles_per_frame`` is the output beats per frame, ``OH * OW * C / simd``, with
the input offered every cycle and the output always ready; :meth:`PadPlan.out_times` gives
every output beat's cycle for the arrival cycles of the input beats (an inner beat leaves
the cycle after its input beat arrives, a border beat the cycle after the beat before it).

Cost: the output register (``simd`` x element width flip-flops and a select per bit between
the input and the constant), the three position counters, and two comparisons per axis
with constants.
"""

from amaranth.hdl import Const, Module, Mux, Signal

from ..checks import check_int
from ..control import StallPipeline
from ..kernel import PlannedComponent, StreamFormat
from ..resources import Resources
from ..shapes import BIPOLAR, cast_operand, element_shape, shape_range
from ..checks import check_per_axis
from ..featuremap import MapKernelPlan, pixel_counters

__all__ = ["Pad", "PadPlan", "PAD_SIDES"]

#: The widest element (any practical width: the pad only moves bits).
MAX_ELEM_WIDTH = 1 << 16

#: The order of ``padding``: the spatial ``pads`` of ONNX (begins, then ends).
PAD_SIDES = ("top", "left", "bottom", "right")


class PadPlan(MapKernelPlan):
    """The analysis of :class:`Pad` (same parameters)."""

    def __init__(self, *, ifm, channels, simd=1, padding, elem_shape, value=0):
        self._set_map(ifm, channels, simd, "simd")
        self._padding = check_per_axis("padding", padding, PAD_SIDES, minimum=0)
        self._elem_shape = cast_operand("elem_shape", elem_shape, max_width=MAX_ELEM_WIDTH)
        if self._elem_shape == BIPOLAR:
            value = check_int("value", value)
            if value not in (-1, 1):
                raise ValueError(f"value must be -1 or +1 for elem_shape='bipolar', not "
                                 f"{value}")
        else:
            lo, hi = shape_range(self._elem_shape)
            value = check_int("value", value, lo, hi)
        self._value = value
        super().__init__()

    # -- parameters -------------------------------------------------------------------------
    simd = property(lambda self: self._lanes)
    padding = property(lambda self: self._padding)
    elem_shape = property(lambda self: self._elem_shape)
    value = property(lambda self: self._value)

    @property
    def ofm(self):
        """Output map ``(top + H + bottom, left + W + right)``."""
        top, left, bottom, right = self._padding
        return top + self._height + bottom, left + self._width + right

    @property
    def input_format(self):
        return StreamFormat(element_shape(self._elem_shape), self.simd)

    output_format = input_format

    @property
    def pad_code(self):
        """The bits of ``value`` in one element (bipolar: 1 for +1, 0 for -1)."""
        if self._elem_shape == BIPOLAR:
            return int(self._value > 0)
        return self._value & ((1 << self._elem_shape.width) - 1)

    # -- timing (MapKernelPlan): one output beat per cycle, latency 1 ------------------------
    def source_beats(self):
        """For every output beat of a frame, the input beat it waits for: its own input beat
        (inner pixels), the first one (the border before the first inner pixel), or the last
        one taken before it (the rest of the border)."""
        top, left, _, _ = self._padding
        sources, taken = [], 0
        for row in range(self.ofm[0]):
            inner_row = top <= row < top + self._height
            for column in range(self.ofm[1]):
                inner = inner_row and left <= column < left + self._width
                for _ in range(self.fold):
                    sources.append(taken if inner else max(taken - 1, 0))
                    taken += inner
        return sources

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+, calibrated against
        Yosys (``synth_xilinx -family xcup``, within ~10%): the output register and its valid
        bit with a select per bit (input or constant), three counters (a LUT per bit on a
        carry chain), and the inner/border decision (a LUT per four counter bits compared,
        two comparisons per axis)."""
        data_bits = self.simd * element_shape(self._elem_shape).width
        counter_bits = [(n - 1).bit_length() for n in (self.fold, self.ofm[1],
                                                       self.ofm[0])]
        compares = 2 * sum(-(-bits // 4) for bits in counter_bits[1:])
        return Resources(luts=data_bits + sum(counter_bits) + compares + 2,
                         ffs=data_bits + 1 + sum(counter_bits))


class Pad(PadPlan, PlannedComponent):
    """Pad an NHWC feature map with a constant border.

    Parameters
    ----------
    ifm : int or (H, W)
        The input map's rows and columns (one value: square).
    channels : int
        Channels ``C``.
    simd : int
        Channels per beat; must divide ``channels``.
    padding : int or (top, left, bottom, right)
        Border pixels per side, in the order of ONNX's spatial ``pads``; one integer for all
        four sides. Each at least 0.
    elem_shape : ShapeLike or ``"bipolar"``
        The element shape (any width).
    value : int
        The border value, in the range of ``elem_shape`` (-1 or +1 for bipolar elements).

    Attributes
    ----------
    ofm : (OH, OW)
        The output map.
    fold : int
        Beats per pixel.

    Members
    -------
    i : In(stream of ``simd`` x ``elem_shape``)
    o : Out(stream of ``simd`` x ``elem_shape``)

    Examples
    --------
    ::

        pad = Pad(ifm=4, channels=8, simd=4, padding=(1, 1, 1, 1), elem_shape=unsigned(4),
                  value=8)
        # pad.ofm == (6, 6), pad.cycles_per_frame == 72, pad.latency == 1
    """

    def elaborate(self, platform):
        m = Module()
        top, left, _, _ = self._padding
        take = Signal()          # a beat enters the output register when advancing
        control = StallPipeline(m, depth=1, take=take, o=self.o)
        row, column, _ = pixel_counters(m, height=self.ofm[0], width=self.ofm[1],
                                        fold=self.fold, step=control.advance & take,
                                        name="out")
        inner, before_data = Signal(), Signal()
        m.d.comb += [
            inner.eq((row >= top) & (row < top + self._height)
                     & (column >= left) & (column < left + self._width)),
            before_data.eq((row < top) | ((row == top) & (column < left))),
            # inner beats and the border before the first one wait for an input beat
            take.eq(Mux(inner | before_data, self.i.valid, 1)),
            self.i.ready.eq(control.advance & inner),
        ]
        width = element_shape(self._elem_shape).width
        border = Const(sum(self.pad_code << (lane * width) for lane in range(self.simd)),
                       width * self.simd)
        with m.If(control.advance):
            m.d.sync += self.o.payload.eq(Mux(inner, self.i.payload.as_value(), border))
        return m


PadPlan.component = Pad
