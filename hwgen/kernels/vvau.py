"""Vector-vector-activation unit (VVAU): a depthwise convolution, folded in time.

A depthwise convolution gives every channel ``c`` of ``C`` its own ``K_h x K_w`` filter: for
each output pixel, ``y[c] = act(W[c] . window[c])``, a dot product of the ``K = K_h * K_w``
window elements of channel ``c`` with that channel's weights. Per cycle the unit computes
``SIMD`` window elements of ``PE`` channels, so a pixel takes exactly ``NF * SF`` cycles,
``NF = C / PE`` (channel fold) and ``SF = K / SIMD`` (window fold).

Input stream (what :mod:`hwgen.kernels.swg`'s depthwise mode puts out, with its ``simd`` =
``PE`` and its ``window_simd`` = ``SIMD``). Per output pixel, for each channel fold ``nf``,
for each window fold ``sf``, one beat of ``PE * SIMD`` elements::

    beat (nf, sf), element p * SIMD + s  =  window element sf * SIMD + s of channel nf * PE + p

window elements in (kernel row, kernel column) order: element ``k`` is row ``k // K_w``,
column ``k % K_w``. That is ``NF * SF`` beats per pixel, each used once (no buffer).
Output stream: per pixel, ``NF`` beats of ``PE`` channels (channel ``nf * PE + p`` in lane
``p``), i.e. NHWC order.

Algorithm. The weights, ``(C, K)`` (or ``(C, K_h, K_w)``), are an MVAU's weight matrix with
``MH = C`` rows and ``MW = K`` columns, in the same memory layout (word ``nf * SF + sf``
holds ``W[nf*PE + p][sf*SIMD + s]``), read with the operation counter as address. The
difference from the MVAU (:mod:`hwgen.kernels.mvau`) is on the activation side: each of the
``PE`` lanes meets its *own* ``SIMD`` activations (channel ``nf*PE + p``'s window elements),
not one vector shared by all lanes. So the input beat is the engine's activation operand
as it stands (``PE x SIMD``, the same bit layout as the weight word), an input beat is taken
in every cycle (no replay, no input buffer), and the engine runs with
``per_lane_activations``: one engine with a tree per lane, as in the MVAU, whose lanes
read their own activations. (``PE`` single-lane engines would compute the same, but repeat
the engine's control pipeline per lane.) Everything after the engine (output register,
offsets, fused thresholds) is the MVAU's (:mod:`hwgen.kernels.dotunit`).

Datapaths, as the MVAU's: ``xnor`` (bipolar weights and inputs: XNOR and a popcount tree
per lane), ``binary-weights`` (bipolar weights, integer inputs), ``lut`` (partial products in
one bit heap per lane) and ``dsp``; ``auto`` picks by the same rules and estimates.

DSP48E2 for depthwise. Packing several weights into one slice needs an activation shared by
them (the MVAU packs the ``PE`` weights of one input element). In a depthwise convolution no
two products share an operand (lane ``p``, element ``s`` multiplies ``W[c][k]`` by
``window[c][k]``, both its own), so ``datapath="dsp"`` uses one slice per product:
``PE * SIMD`` DSP48E2 slices (``target="xilinx"``), each a pipelined multiplier of the same
exact lane format; their fields are summed per lane by a compressor tree. With
``target="generic"`` the products are plain registered multipliers that synthesis maps to
the family's DSP blocks or logic (counted as 0 DSPs by the estimate). ``auto`` weighs a
slice as :data:`~hwgen.resources.DSP_LUT_EQUIVALENT` LUTs, so for the small operands of
depthwise layers it usually chooses ``lut``.

Activation. With ``thresholds`` (``(C, T)`` per channel or ``(1, T)`` shared) the dot
products go through a fused multi-threshold unit and the outputs are
``bias + #{t : T[c][t] <= acc}``; without, the raw dot products come out in
:attr:`~hwgen.kernels.dotunit.DotUnitPlan.acc_shape` (plus ``offsets``, one per channel, a
bias at the accumulator's scale).

Timing. One input beat, one operation per cycle: in steady state exactly ``NF * SF`` cycles
per pixel, with no bubbles between pixels or frames. The pipeline advances when its output
register is empty or read, so back-pressure freezes it without losing, duplicating or
reordering data. Output beat ``nf`` of pixel ``v`` leaves ``latency - (SF - 1)`` cycles after
its fold's last input beat: without stalls, ``v * NF * SF + nf * SF + latency`` cycles after
the first input beat, ``latency = SF + 1 + register_reads + engine latency`` (+ the
thresholding unit's).

Cost: the MVAU's, less the input buffer and the neuron-fold counter: the engine (``PE``
trees of ``SIMD`` products; or ``PE * SIMD`` DSP slices), the weight memory
(``NF * SF`` words of ``PE * SIMD`` weights, :func:`~hwgen.resources.memory_cost`), the
``PE * SIMD`` input register, the window-fold and word counters, the output register and the
thresholding unit (:meth:`~hwgen.kernels.dotunit.DotUnitPlan.estimate`). Against Yosys
(``synth_xilinx -family xcup``, 16 channels 3x3, PE = 4, SIMD = 3, 4-bit operands) the LUT
estimate is within 20% (``lut`` generic -18%, xilinx -1%, with thresholds +7%; ``dsp`` -3%
with exactly 12 DSP48E2); like the MVAU's it is high for ``xnor`` with a short weight table
(32 channels, PE = 8: +80%, the MVAU of the same shape +73%), where synthesis merges the
table's few words into the popcount LUTs.
"""

import numpy as np
from amaranth.hdl import Signal

from ..checks import check_int
from ..control import fold_counter
from ..kernel import StreamFormat
from ..resources import Resources
from ..shapes import BIPOLAR, element_shape
from .dotunit import DATAPATHS, MEM_STYLES, DotUnit, DotUnitPlan, counter_bits, \
    valid_datapaths
from ..checks import check_per_axis

__all__ = ["VVAU", "VVAUPlan", "BIPOLAR", "DATAPATHS", "MEM_STYLES", "valid_datapaths"]


class VVAUPlan(DotUnitPlan):
    """The analysis of :class:`VVAU` (same parameters): validation, datapath choice,
    timing, memory layout and cost."""

    shared_activations = False

    def __init__(self, *, channels, kernel, weights, **options):
        self._channels = check_int("channels", channels, 1)
        self._kernel = check_per_axis("kernel", kernel, ("K_h", "K_w"))
        kh, kw = self._kernel
        window = kh * kw
        array = np.asarray(weights)
        if array.shape == (self._channels, kh, kw):
            array = array.reshape(self._channels, window)
        self._configure(rows=self._channels, terms=window, weights=array,
                        names=dict(rows="channels", terms="K_h*K_w",
                                   weights=f"(C, K_h*K_w) = ({channels}, {window}) or "
                                           f"(C, K_h, K_w) = ({channels}, {kh}, {kw})",
                                   offsets=f"(C,) = ({channels},)"),
                        **options)
        super().__init__()

    @property
    def input_format(self):
        return StreamFormat(element_shape(self._input_shape), self._pe * self._simd)

    # --- description ------------------------------------------------------------------------

    channels = property(lambda self: self._channels)
    kernel = property(lambda self: self._kernel, doc="``(K_h, K_w)``.")

    @property
    def window(self):
        """Window elements per channel, ``K_h * K_w``."""
        return self._terms

    @property
    def in_beats_per_frame(self):
        """``NF * SF`` beats per pixel."""
        return self.cycles_per_vector * self._vectors

    input_burst = 1  # one operation per input beat: it reads steadily

    def out_times(self, in_times):
        """Output beat cycles (see :class:`~hwgen.kernel.StreamKernel`): one operation per
        input beat, at most one per cycle; output beat ``n`` leaves ``latency - (SF - 1)``
        cycles after the operation of input beat ``(n + 1) * SF - 1``."""
        op_times, last_op = [], -1
        for t in in_times:
            last_op = max(t, last_op + 1)
            op_times.append(last_op)
        return self._fold_times(op_times)

    def _issue_estimate(self):
        """The input side of :meth:`~hwgen.kernels.dotunit.DotUnitPlan.estimate`: the
        ``PE * SIMD`` input register and the window-fold counter."""
        counter = counter_bits(self.sf)
        return Resources(luts=counter, ffs=counter + self.input_format.width)


class VVAU(VVAUPlan, DotUnit):
    """Folded depthwise convolution: per channel, a ``K_h x K_w`` dot product with that
    channel's weights, and an optional fused multi-threshold activation (see the module
    documentation).

    Parameters
    ----------
    channels : int
        Channels ``C`` (in and out).
    kernel : int or (int, int)
        Kernel size ``K`` (square) or ``(K_h, K_w)``.
    pe : int, default 1
        Channels per cycle (and per output beat); must divide ``channels``.
    simd : int, default 1
        Window elements per channel and cycle; must divide ``K_h * K_w``.
    weights : array-like of int, shape ``(C, K_h*K_w)`` or ``(C, K_h, K_w)``
        Per channel its filter, window elements in (kernel row, kernel column) order; in the
        range of ``weight_shape``, or -1/+1 for bipolar weights.
    input_shape, weight_shape : ``"bipolar"`` or ShapeLike
        ``signed(n)`` / ``unsigned(n)`` with 1 <= n <= 8, or ``"bipolar"`` (one bit, 0 for
        -1 and 1 for +1, on the stream and in memory).
    thresholds : array-like of int, shape ``(C, T)`` or ``(1, T)``, optional
        Fused multi-threshold activation on the dot products; sorted per channel.
    bias : int, default 0
        Added to the threshold count.
    offsets : array-like of int, shape ``(C,)``, optional
        Added to the raw dot products (only without ``thresholds``).
    vectors : int, default 1
        Output pixels per frame (``OH * OW`` for one image).
    datapath : ``"auto"`` (default), ``"xnor"``, ``"binary-weights"``, ``"lut"`` or ``"dsp"``
    mem_style : ``"auto"`` (default), ``"lutram"`` or ``"bram"``
        Weight memory.
    threshold_impl : ``"auto"`` (default), ``"binary"`` or ``"unrolled"``
    threshold_mem_style : ``"auto"`` (default), ``"registers"``, ``"lutram"`` or ``"bram"``
    activation : ``"auto"`` (default), ``"thresholds"`` or ``"requantize"``
        With ``thresholds``: the fused unit is a thresholding unit, or a
        :class:`~hwgen.kernels.requantize.Requantize` whose multiply-shift equals the
        thresholds on every reachable accumulator (:func:`hwgen.requant.fit_thresholds`; an
        error where there is none); ``auto``, the one :meth:`estimate` says is cheaper in
        LUT-equivalents (Requantize tried from 16 thresholds per channel). :attr:`activation`
        says which.
    pipeline_every : int, default 2
        Register after every K logic stages of the compressor trees (0: none).
    register_reads : bool, default False
        Register the weights and activations once more before the datapath (one more cycle
        of latency), for block RAM without an output register.
    target : ``"auto"`` (default), ``"generic"`` or ``"xilinx"``
        ``xilinx``: DSP48E2 slices and LUT6_2/CARRY8 trees; ``generic``: plain logic;
        ``auto``: by the platform at elaboration (UltraScale(+) means ``xilinx``).
    primitives : ``"auto"`` (default), ``"instance"`` or ``"behavioural"``
        Vendor cells as ``Instance`` or as their bit-exact models.

    Members
    -------
    i : In(stream of ``pe * simd`` lanes of the input element)
        ``NF * SF`` beats per pixel; lane ``p * SIMD + s`` of beat ``(nf, sf)`` is window
        element ``sf * SIMD + s`` of channel ``nf * PE + p``.
    o : Out(stream of ``pe`` lanes of :attr:`output_shape`)
        ``NF`` beats per pixel, channel ``nf * PE + p`` in lane ``p``.

    Examples
    --------
    A 3x3 depthwise layer of 8 channels, 4 channels and 3 window elements per cycle::

        unit = VVAU(channels=8, kernel=3, pe=4, simd=3, weights=w, input_shape=unsigned(4),
                    weight_shape=signed(4), vectors=28 * 28)
        # unit.nf == 2, unit.sf == 3: 6 cycles and 6 input beats of 12 elements per pixel
    """

    # --- hardware ---------------------------------------------------------------------------

    def _issue(self, m, advance):
        """Every input beat is one operation: it is taken whenever the pipeline advances
        and registered as the engine's ``PE x SIMD`` activations (the same bit layout)."""
        m.d.comb += self.i.ready.eq(advance)
        take = advance & self.i.valid
        sf, last_sf = fold_counter(m, self.sf, take, name="sf")
        acts = Signal(self.i.payload.shape(), name="acts")
        with m.If(advance):
            m.d.sync += acts.eq(self.i.payload)
        return take, sf == 0, last_sf, acts


VVAUPlan.component = VVAU
