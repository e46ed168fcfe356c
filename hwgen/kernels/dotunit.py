"""Folded dot-product units: what the MVAU and the VVAU share.

Both kernels compute, for each output channel ``c`` of ``R`` (the *rows*), a dot product of
``N`` terms (the *terms*) with that channel's weights ``W[c]``, ``PE`` channels and ``SIMD``
terms per cycle, so one input vector takes ``NF * SF`` operations, ``NF = R / PE`` and
``SF = N / SIMD``. They differ in where the activations come from:

* :class:`~hwgen.kernels.mvau.MVAU` (``y = W @ x``): all channels meet the same ``N``
  inputs, so the ``PE`` lanes of the engine share one ``SIMD``-element activation vector, and
  the ``SF`` input beats of a vector are replayed from a buffer for folds ``1 .. NF-1``;
* :class:`~hwgen.kernels.vvau.VVAU` (depthwise convolution): channel ``c`` meets its own
  ``K*K`` window, so every lane has its own activations and every input beat is used once.

What they share lives here, in :class:`DotUnitPlan` (the analysis) and :class:`DotUnit` (the
hardware); a kernel adds its input side (:meth:`DotUnit._issue`: which operation runs in a
cycle and on which activations), its timing (:meth:`~hwgen.kernel.StreamKernel.out_times`)
and the cost of that input side (:meth:`DotUnitPlan._issue_estimate`):

* **Parameter checks**: operand shapes (``bipolar`` or 1- to 8-bit signed/unsigned), the
  ``(R, N)`` weight array in the range of its shape, datapath, memory style, target,
  thresholds, bias and offsets, each with the one wording of :mod:`hwgen.checks`.
* **Weight memory**: word ``nf * SF + sf`` holds the ``PE x SIMD`` weights
  ``W[nf*PE + p][sf*SIMD + s]`` (element ``(p, s)`` at bits ``[(p*SIMD + s)*Wb, ...)``), read
  with a counter of operations as address (:func:`~hwgen.memory.read_only_memory`; cost
  :func:`~hwgen.resources.memory_cost`). ``mem_style="auto"``: block RAM from 128 words.
* **Datapaths** (:func:`valid_datapaths`): ``xnor``, ``binary-weights``, ``lut`` (the
  :class:`~hwgen.arith.dot_product.FabricDotProduct` modes) and ``dsp``
  (:class:`~hwgen.arith.packed_mac.PackedDotProduct`); ``auto`` takes ``xnor`` /
  ``binary-weights`` for bipolar weights, else the cheaper of ``lut`` and ``dsp`` by the
  engines' estimates, a DSP48E2 counted as :data:`~hwgen.resources.DSP_LUT_EQUIVALENT` LUTs.
  The engine's activations are shared by its lanes or per lane
  (:attr:`DotUnitPlan.shared_activations`).
* **Output stage**: the engine's accumulators go to an output register, through an adder for
  the ``xnor`` mapping ``2p - N`` and the per-channel ``offsets`` where there are any
  (raw outputs, in :attr:`~DotUnitPlan.acc_shape`), or into a fused thresholding unit
  (:func:`~hwgen.kernels.threshold.threshold_plan`; for ``xnor`` the thresholds move into
  the agreement count's domain, ``2p - N >= T`` iff ``p >= ceil((T + N) / 2)``).
  With thresholds, ``activation`` picks the fused unit: the thresholding unit, or a
  :class:`~hwgen.kernels.requantize.RequantizePlan` fitted exactly to the thresholds on the
  reachable accumulators of every channel (:func:`hwgen.requant.fit_thresholds`), ``auto``
  by the two estimates in LUT-equivalents.

Pipeline, one operation per advancing cycle: the input side issues an operation
(``take``) with its activations registered; the weight word is read in the same cycle
(synchronous read); optionally both are registered once more (``register_reads``); the
engine accumulates over the ``SF`` operations of a fold and presents the ``PE`` sums
:attr:`~DotUnitPlan.engine` ``.latency`` cycles after the fold's last operation; the output
register takes them. Everything advances together when the output register is empty or
read (:class:`~hwgen.control.StallPipeline`), so back-pressure freezes the unit without
losing, duplicating or reordering data. :attr:`~DotUnitPlan.latency` (first input beat to
first output beat) is ``SF + 1 + register_reads + engine latency`` plus the thresholding
unit's.

Cost (:meth:`DotUnitPlan.estimate`): the engine's own estimate, the weight memory and its
read register, the ``register_reads`` registers, the word counter and control bits, the
output register, the offset adder and its table, the thresholding unit, and the input side
(:meth:`DotUnitPlan._issue_estimate`).
"""

from functools import cached_property

import numpy as np
from amaranth.hdl import Const, Module, Shape, Signal, Value, unsigned
from amaranth.lib import data, wiring

from ..arith.dot_product import FabricDotProductPlan
from ..arith.netlist import resolve_architecture
from ..arith.packed_mac import PackedDotProductPlan
from ..checks import check_bool, check_divides, check_int, check_int_array, check_one_of
from ..control import StallPipeline, fold_counter
from ..kernel import PlannedComponent, StreamFormat, StreamKernel
from ..memory import read_only_memory
from ..requant import fit_thresholds
from ..resources import Resources, memory_cost
from ..shapes import BIPOLAR, cast_operand, element_shape, shape_for_range, shape_range
from .requantize import RequantizePlan
from .threshold import IMPLS, MEM_STYLES as THRESHOLD_MEM_STYLES, check_thresholds, \
    threshold_plan

__all__ = ["DotUnitPlan", "DotUnit", "DATAPATHS", "MEM_STYLES", "TARGETS", "ACTIVATIONS",
           "REQUANTIZE_FROM", "valid_datapaths", "encode_operands", "counter_bits"]

DATAPATHS = ("auto", "xnor", "binary-weights", "lut", "dsp")
#: ``activation`` choices: the fused unit that turns accumulators into outputs.
ACTIVATIONS = ("auto", "thresholds", "requantize")
#: ``activation="auto"`` tries a multiply-shift only from this many thresholds per channel
#: (below, a comparator per bit of the search is cheaper than any multiplier).
REQUANTIZE_FROM = 16
MEM_STYLES = ("auto", "lutram", "bram")
TARGETS = ("auto", "generic", "xilinx")
_BRAM_FROM_DEPTH = 128


def encode_operands(values, shape):
    """Operand values to the bits carried in memory and on streams (bipolar: -1 -> 0, +1 ->
    1; otherwise two's complement in the shape's width)."""
    values = np.asarray(values, dtype=np.int64)
    if shape == BIPOLAR:
        return (values > 0).astype(np.int64)
    return values & ((1 << Shape.cast(shape).width) - 1)


def valid_datapaths(weight_shape, input_shape):
    """The ``datapath`` choices these operand shapes allow: ``auto``; ``xnor`` for bipolar
    weights and inputs or ``binary-weights`` for bipolar weights and integer inputs; ``lut``
    always; ``dsp`` for 2- to 8-bit inputs with bipolar or 2- to 8-bit weights."""
    weight_shape = cast_operand("weight_shape", weight_shape)
    input_shape = cast_operand("input_shape", input_shape)
    valid = ["auto"]
    if weight_shape == BIPOLAR:
        valid.append("xnor" if input_shape == BIPOLAR else "binary-weights")
    valid.append("lut")
    if _dsp_supported(weight_shape, input_shape) is None:
        valid.append("dsp")
    return tuple(valid)


def _dsp_supported(weight_shape, input_shape):
    """Why ``datapath='dsp'`` cannot take these operands, or None."""
    if input_shape == BIPOLAR or input_shape.width < 2:
        return f"input_shape={input_shape!r}: the packed DSP datapath needs 2- to 8-bit inputs"
    if weight_shape != BIPOLAR and weight_shape.width < 2:
        return (f"weight_shape={weight_shape!r}: the packed DSP datapath needs 'bipolar' or "
                f"2- to 8-bit weights")
    return None


def counter_bits(count):
    """Bits of a counter over ``count`` values (at least one)."""
    return max(1, (count - 1).bit_length())


class DotUnitPlan(StreamKernel):
    """The analysis shared by the folded dot-product units (see the module documentation).

    A subclass validates its own parameters, calls :meth:`_configure` with the rest (its
    constructor takes them as ``**options``, so that their defaults live here, once), and
    defines :attr:`input_format`, :attr:`in_beats_per_frame`, :meth:`out_times` and
    :meth:`_issue_estimate`.

    Attributes
    ----------
    shared_activations : bool
        Class attribute: True when the engine's lanes share one activation vector (MVAU),
        False when every lane has its own (VVAU).
    """

    shared_activations = True
    _runtime_weights = False

    def _configure(self, *, rows, terms, names, weights, input_shape, weight_shape, pe=1,
                   simd=1, thresholds=None, bias=0, offsets=None, vectors=1, datapath="auto",
                   mem_style="auto", threshold_impl="auto", threshold_mem_style="auto",
                   activation="auto", pipeline_every=2, register_reads=False, target="auto",
                   primitives="auto"):
        """Validate and record the shared parameters (see :class:`~hwgen.kernels.mvau.MVAU`
        and :class:`~hwgen.kernels.vvau.VVAU` for their meaning; the defaults are theirs).

        ``rows`` (output channels) and ``terms`` (products per dot product) are already
        checked integers; ``names`` gives their wording in messages: ``rows`` and ``terms``
        (``"mh"``, ``"mw"``), ``weights`` (the weight array's shape as text, e.g.
        ``"(MH, MW) = (4, 6)"``) and ``offsets`` (``"(MH,) = (4,)"``).
        """
        self._rows, self._terms, self._names = rows, terms, names
        self._pe = check_divides("pe", check_int("pe", pe, 1), names["rows"], rows)
        self._simd = check_divides("simd", check_int("simd", simd, 1), names["terms"], terms)
        self._vectors = check_int("vectors", vectors, 1)
        self._input_shape = cast_operand("input_shape", input_shape)
        self._weight_shape = cast_operand("weight_shape", weight_shape)
        self._weights = self._check_weights(weights)
        check_one_of("datapath", datapath, DATAPATHS)
        self._mem_style = check_one_of("mem_style", mem_style, MEM_STYLES)
        self._target = check_one_of("target", target, TARGETS)
        check_one_of("threshold_impl", threshold_impl, IMPLS)
        self._bias = check_int("bias", bias)
        self._pipeline_every = check_int("pipeline_every", pipeline_every, 0)
        self._register_reads = check_bool("register_reads", register_reads)
        self._primitives = primitives

        self._check_datapath(datapath)
        self._datapath_asked = datapath

        # raw dot products: their shape, and how the engine's accumulator maps to them
        lo, hi = self._dot_range()
        self._offsets = None
        if offsets is not None:
            if thresholds is not None:
                raise ValueError("offsets need raw outputs (no thresholds): fold them into "
                                 "the thresholds instead")
            self._offsets = check_int_array("offsets", offsets, (rows,),
                                            shape_text=names["offsets"])
            lo += min(0, int(self._offsets.min()))
            hi += max(0, int(self._offsets.max()))
        self._acc_shape = shape_for_range(lo, hi)
        self._thresholds = None
        check_one_of("threshold_mem_style", threshold_mem_style, THRESHOLD_MEM_STYLES)
        self._threshold_options = dict(impl=threshold_impl, mem_style=threshold_mem_style)
        if thresholds is not None:
            self._thresholds = check_thresholds(thresholds, rows, self._acc_shape)
        elif self._bias:
            raise ValueError(f"bias={bias} needs thresholds (raw accumulators have no bias)")
        self._activation_asked = check_one_of("activation", activation, ACTIVATIONS)
        if activation != "auto" and thresholds is None:
            raise ValueError(f"activation={activation!r} needs thresholds (without them the raw "
                             f"dot products come out)")
        if activation == "requantize":
            self._activation                # no exact fit is an error here, not later

    def _check_weights(self, weights):
        """``weights`` validated: shape ``(rows, terms)``, values in the weight shape's range
        (-1 or +1 for bipolar weights)."""
        shape, text = (self._rows, self._terms), self._names["weights"]
        if self._weight_shape == BIPOLAR:
            array = check_int_array("weights", weights, shape, shape_text=text, low=-1, high=1,
                                    valid="-1 or +1 (weight_shape='bipolar')")
            if not array.all():
                row, col = map(int, np.argwhere(array == 0)[0])
                raise ValueError(f"weights[{row}, {col}] = 0 is out of range: must be -1 or +1 "
                                 f"(weight_shape='bipolar')")
            return array
        lo, hi = shape_range(self._weight_shape)
        return check_int_array("weights", weights, shape, shape_text=text, low=lo, high=hi,
                               valid=f"in [{lo}, {hi}] (weight_shape={self._weight_shape!r})")

    @property
    def output_format(self):
        return StreamFormat(self._output_shape, self._pe)

    # --- choices (made when first asked: folding builds many plans and asks for cycles) ------

    @cached_property
    def _datapath(self):
        return self._choose_datapath(self._datapath_asked)

    @cached_property
    def _engine(self):
        return self._engine_plan(self._datapath)

    def _threshold_domain(self):
        """``(thresholds, low, high)`` in the engine's accumulator domain (for ``xnor`` the
        agreement count), with the per-channel range of the accumulators that can occur."""
        checked = self._thresholds
        if self._datapath == "xnor":  # compare the agreement count instead
            checked = (checked + self._terms + 1) // 2
            return checked, np.zeros(self._rows, np.int64), np.full(self._rows, self._terms)
        xl, xh = shape_range(self._input_shape)
        w = self._weights
        return (checked, np.minimum(w * xl, w * xh).sum(axis=1),
                np.maximum(w * xl, w * xh).sum(axis=1))

    @cached_property
    def _threshold_unit(self):
        if self._thresholds is None:
            return None
        checked = self._threshold_domain()[0]
        return threshold_plan(channels=self._rows, pe=self._pe,
                              input_shape=self._engine.acc_shape, thresholds=checked,
                              bias=self._bias, vectors=self._vectors, **self._threshold_options)

    @cached_property
    def _requantize_unit(self):
        """The :class:`~hwgen.kernels.requantize.RequantizePlan` equal to the thresholds on
        every accumulator that can occur (:func:`hwgen.requant.fit_thresholds`), or None."""
        if self._thresholds is None:
            return None
        thresholds, low, high = self._threshold_domain()
        fit = fit_thresholds(thresholds, self._bias, low, high)
        if fit is None:
            return None
        return RequantizePlan(channels=self._rows, pe=self._pe,
                              input_shape=self._engine.acc_shape, vectors=self._vectors,
                              target=self._target, primitives=self._primitives, **fit)

    @cached_property
    def _activation(self):
        """``"thresholds"``, ``"requantize"`` or None (raw outputs): ``activation``, with
        ``auto`` resolved by the estimates in LUT-equivalents (``requantize`` only where
        it is exact, and tried from :data:`REQUANTIZE_FROM` thresholds per channel)."""
        if self._thresholds is None:
            return None
        asked = self._activation_asked
        if asked == "requantize":
            if self._requantize_unit is None:
                raise ValueError("activation='requantize': no multiply-shift with a multiplier "
                                 "below 2**32 equals these thresholds on every reachable "
                                 "accumulator; use 'thresholds' or 'auto'")
            return "requantize"
        if asked == "thresholds" or self._thresholds.shape[1] < REQUANTIZE_FROM \
                or self._requantize_unit is None:
            return "thresholds"

        def cost(plan):
            return plan.estimate().lut_equivalent(ffs=0)
        cheaper = cost(self._requantize_unit) < cost(self._threshold_unit)
        return "requantize" if cheaper else "thresholds"

    @cached_property
    def _threshold(self):
        """The fused activation unit's plan (thresholds or requantize), or None."""
        if self._activation is None:
            return None
        return self._requantize_unit if self._activation == "requantize" \
            else self._threshold_unit

    @cached_property
    def _output_shape(self):
        return self._acc_shape if self._threshold is None else self._threshold.output_shape

    @cached_property
    def _raw_shape(self):
        """What the output register holds: the raw dot products, or the engine's
        accumulators for the thresholds."""
        return self._acc_shape if self._threshold is None else self._engine.acc_shape

    def _check_datapath(self, datapath):
        w, x = self._weight_shape, self._input_shape
        if datapath == "xnor" and not (w == BIPOLAR and x == BIPOLAR):
            raise ValueError(f"datapath='xnor' needs bipolar weights and inputs, not "
                             f"weight_shape={w!r}, input_shape={x!r}; use 'lut'")
        if datapath == "binary-weights" and not (w == BIPOLAR and x != BIPOLAR):
            raise ValueError(f"datapath='binary-weights' needs bipolar weights and integer "
                             f"inputs, not weight_shape={w!r}, input_shape={x!r}")
        if datapath == "dsp":
            reason = _dsp_supported(w, x)
            if reason:
                raise ValueError(f"datapath='dsp' cannot take {reason}; use 'lut'")

    def _choose_datapath(self, datapath):
        w, x = self._weight_shape, self._input_shape
        if datapath != "auto":
            return datapath
        if w == BIPOLAR:
            return "xnor" if x == BIPOLAR else "binary-weights"
        if _dsp_supported(w, x):
            return "lut"
        costs = {candidate: self._engine_plan(candidate).estimate().lut_equivalent(ffs=0)
                 for candidate in ("lut", "dsp")}
        return "dsp" if costs["dsp"] < costs["lut"] else "lut"

    def _engine_plan(self, datapath):
        common = dict(simd=self._simd, lanes=self._pe, max_terms=self._terms,
                      pipeline_every=self._pipeline_every,
                      per_lane_activations=not self.shared_activations)
        if datapath == "dsp":
            w = self._weight_shape
            bipolar = w == BIPOLAR
            target = {"auto": "auto", "xilinx": "packed", "generic": "generic"}[self._target]
            return PackedDotProductPlan(
                weight_width=1 if bipolar else w.width, act_width=self._input_shape.width,
                weight_signed=bipolar or w.signed, act_signed=self._input_shape.signed,
                bipolar=bipolar, target=target, primitives=self._primitives, **common)
        return FabricDotProductPlan(mode=datapath, weight_shape=self._weight_shape,
                                    act_shape=self._input_shape, target=self._target,
                                    primitives=self._primitives, **common)

    def _dot_range(self):
        wl, wh = shape_range(self._weight_shape)
        xl, xh = shape_range(self._input_shape)
        corners = [a * b for a in (wl, wh) for b in (xl, xh)]
        return min(0, self._terms * min(corners)), max(0, self._terms * max(corners))

    # --- description ------------------------------------------------------------------------

    pe = property(lambda self: self._pe)
    simd = property(lambda self: self._simd)
    vectors = property(lambda self: self._vectors)
    input_shape = property(lambda self: self._input_shape)
    weight_shape = property(lambda self: self._weight_shape)
    datapath = property(lambda self: self._datapath, doc="The datapath in use (``auto`` resolved).")
    output_shape = property(lambda self: self._output_shape)
    bias = property(lambda self: self._bias)
    engine = property(lambda self: self._engine,
                      doc="The dot-product engine's plan (built in ``elaborate()``).")
    threshold = property(lambda self: self._threshold,
                         doc="The fused activation unit's plan (a thresholding unit or a "
                             ":class:`~hwgen.kernels.requantize.RequantizePlan`), or None.")
    activation = property(lambda self: self._activation,
                          doc="The fused activation: ``\"thresholds\"``, ``\"requantize\"`` "
                              "(``auto`` resolved), or None for raw outputs.")

    @property
    def offsets(self):
        """The offsets added to the raw dot products, ``(rows,)`` int64 (a copy), or None."""
        return None if self._offsets is None else self._offsets.copy()

    @property
    def weights(self):
        """The weight values, ``(rows, terms)`` int64 (a copy)."""
        return self._weights.copy()

    @property
    def acc_shape(self):
        """Shape of the raw dot products: holds ``terms`` times the extreme products (plus the
        extreme offsets)."""
        return self._acc_shape

    @property
    def nf(self):
        """Neuron (channel) fold, ``rows / PE``: output beats per vector."""
        return self._rows // self._pe

    @property
    def sf(self):
        """Synapse fold, ``terms / SIMD``: operations per output beat."""
        return self._terms // self._simd

    @property
    def weight_depth(self):
        """Words of the weight memory, ``NF * SF``."""
        return self.nf * self.sf

    @property
    def weight_width(self):
        """Bits per weight memory word, ``PE * SIMD * weight bits``."""
        return self._pe * self._simd * element_shape(self._weight_shape).width

    @property
    def mem_style(self):
        """The weight memory style in use (``auto`` resolved)."""
        if self._mem_style != "auto":
            return self._mem_style
        return "bram" if self.weight_depth >= _BRAM_FROM_DEPTH else "lutram"

    @property
    def input_burst(self):
        """One vector's ``SF`` input beats (read in the first neuron fold, replayed in the
        others)."""
        return self.in_beats_per_frame // self._vectors

    @property
    def cycles_per_vector(self):
        """Operations per vector, ``NF * SF``: one per cycle."""
        return self.nf * self.sf

    @property
    def cycles_per_frame(self):
        """Steady-state cycles per frame, ``NF * SF * vectors``."""
        return self.cycles_per_vector * self._vectors

    @property
    def out_beats_per_frame(self):
        return self.nf * self._vectors

    @property
    def latency(self):
        """Cycles from the first input beat of a vector to its first output beat: the ``SF``
        beats of the first fold, the memory read (and ``register_reads``), the engine, the
        output register, and the thresholding unit."""
        latency = self.sf + 1 + self._register_reads + self._engine.latency
        if self._threshold is not None:
            latency += self._threshold.latency
        return latency

    def weight_words(self):
        """Initial weight memory contents: ``NF * SF`` packed integers."""
        bits = element_shape(self._weight_shape).width
        encoded = encode_operands(self._weights, self._weight_shape)
        pe, simd, sf = self._pe, self._simd, self.sf
        words = []
        for nf in range(self.nf):
            for s_fold in range(sf):
                block = encoded[nf * pe:(nf + 1) * pe, s_fold * simd:(s_fold + 1) * simd]
                word = 0
                for index, value in enumerate(block.reshape(-1)):
                    word |= int(value) << (index * bits)
                words.append(word)
        return words

    def _fold_times(self, op_times):
        """Output beat cycles for the cycles of every operation of a frame (``NF * SF`` per
        vector, in order): output beat ``n`` leaves ``latency - (SF - 1)`` cycles after the
        last operation of its fold."""
        depth = self.latency - (self.sf - 1)
        return [t + depth for t in op_times[self.sf - 1::self.sf]]

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` for UltraScale+.

        The engine's own estimate (trees, accumulators, DSP slices), the weight memory
        (:func:`~hwgen.resources.memory_cost`: a read-only table in logic is one LUT per
        bit per 64 words, block RAM in 18 Kbit halves), its read register, the
        ``register_reads`` registers, the word counter and four control bits, the output
        register, the offset adder (one LUT per output bit per lane; ``xnor`` already has
        one) with its ``NF x PE`` table (one LUT per offset bit per lane per 64 folds) and
        output fold counter, the thresholding unit, and the kernel's input side
        (:meth:`_issue_estimate`).
        """
        cost = self._engine.estimate()
        style = self.mem_style
        cost += memory_cost(self.weight_depth, self.weight_width, style,
                            ports="config" if self._runtime_weights else "rom")
        luts, ffs = 0, 0
        if style != "bram":
            ffs += self.weight_width
        if self._register_reads:
            ffs += self.weight_width + self.input_format.width + 3
        word_bits = counter_bits(self.weight_depth)
        luts += word_bits
        ffs += word_bits + 4
        out_width = self._raw_shape.width if self._threshold else self._acc_shape.width
        ffs += self._pe * out_width + 1
        if self._datapath == "xnor" and self._threshold is None:
            luts += self._pe * out_width
        if self._has_offsets():
            if self._datapath != "xnor":
                luts += self._pe * out_width
            if self.nf > 1:
                table_bits = shape_for_range(min(0, int(self._offsets.min())),
                                             max(0, int(self._offsets.max()))).width
                count = counter_bits(self.nf)
                luts += self._pe * table_bits * -(-self.nf // 64) + count
                ffs += count
        cost += Resources(luts=luts, ffs=ffs) + self._issue_estimate()
        if self._threshold is not None:
            cost += self._threshold.estimate()
        return cost

    def _issue_estimate(self):
        """:class:`~hwgen.resources.Resources` of the kernel's input side (its fold counters,
        input registers and buffers)."""
        raise NotImplementedError

    def _has_offsets(self):
        return self._offsets is not None and bool(np.any(self._offsets))

    def resolved_choices(self):
        choices = {"datapath": self.datapath, "mem_style": self.mem_style}
        if self._activation is not None:
            choices["activation"] = self._activation
        return choices


class DotUnit(PlannedComponent):
    """The hardware shared by the folded dot-product units (see the module documentation):
    the component half of a :class:`DotUnitPlan` subclass, ``class VVAU(VVAUPlan, DotUnit)``.

    A subclass defines :meth:`_issue`; :meth:`_weight_memory` may be extended (the MVAU's
    runtime-writable weights).

    Members
    -------
    i, o : streams
        As the plan's :meth:`~hwgen.kernel.StreamKernel.members` says.
    """

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self._engine.build()

        raw = Signal(data.ArrayLayout(self._raw_shape, self._pe))
        raw_ready = Signal()
        # everything advances with the output register (raw dot products, or the
        # accumulators for the thresholds), whose valid bit is the engine's o_valid
        control = StallPipeline(m, depth=1, take=engine.o_valid, out_ready=raw_ready)
        advance, raw_valid = control.advance, control.out_valid

        # an operation is issued in every advancing cycle that has its input (``take``)
        take, first, last, acts = self._issue(m, advance)
        word, _ = fold_counter(m, self.weight_depth, take, name="word")
        weights = self._weight_memory(m, platform, word, advance)

        valid1, first1, last1 = Signal(), Signal(), Signal()
        with m.If(advance):
            m.d.sync += [valid1.eq(take), first1.eq(first), last1.eq(last)]
        if self._register_reads:
            read = [Value.cast(v) for v in (weights, acts, valid1, first1, last1)]
            stage = [Signal(v.shape(), name=f"read{k}_r") for k, v in enumerate(read)]
            with m.If(advance):
                m.d.sync += [r.eq(v) for r, v in zip(stage, read)]
            weights, acts, valid1, first1, last1 = stage
        m.d.comb += [
            engine.w.eq(weights), engine.a.eq(acts), engine.valid.eq(valid1),
            engine.first.eq(first1), engine.last.eq(last1), engine.en.eq(advance),
        ]

        # output register (raw dot products, or the agreement counts for fused thresholds)
        constants = self._output_constants(m, engine)
        with m.If(engine.o_valid):
            for lane in range(self._pe):
                value = engine.o[lane]
                if self._datapath == "xnor" and self._threshold is None:
                    value = value << 1                     # agreements -> dot product
                if constants is not None:
                    value = value + constants[lane]
                m.d.sync += raw[lane].eq(value)

        if self._threshold is None:
            m.d.comb += [self.o.valid.eq(raw_valid), self.o.payload.eq(raw),
                         raw_ready.eq(self.o.ready)]
        else:
            m.submodules.threshold = threshold = self._threshold.build()
            m.d.comb += [threshold.i.valid.eq(raw_valid), threshold.i.payload.eq(raw),
                         raw_ready.eq(threshold.i.ready)]
            wiring.connect(m, threshold.o, wiring.flipped(self.o))
        return m

    def _issue(self, m, advance):
        """The kernel's input side. Drives ``i.ready``; returns ``(take, first, last,
        acts)``: ``take`` is high in the cycles that issue an operation (``advance`` and
        its input there), ``first``/``last`` mark the first and last operation of a fold
        (combinational, for the issued operation) and ``acts`` is the registered activations
        of the operation issued in the cycle before, in the engine's ``a`` layout."""
        raise NotImplementedError

    def _output_constants(self, m, engine):
        """Per lane, the constant added to the engine's output for the current output fold
        (``-N`` of the xnor mapping plus the offset), or None when there is none."""
        xnor = self._datapath == "xnor" and self._threshold is None
        if not xnor and not self._has_offsets():
            return None
        table = np.zeros((self.nf, self._pe), dtype=np.int64)
        if self._has_offsets():
            table += self._offsets.reshape(self.nf, self._pe)
        if xnor:
            table -= self._terms
        shape = shape_for_range(min(0, int(table.min())), max(0, int(table.max())))
        if self.nf == 1 or np.all(table == table[0]):
            return [Const(int(v), shape) for v in table[0]]
        # output beats within a vector: the engine's results come out in fold order
        out_fold, _ = fold_counter(m, self.nf, engine.o_valid, name="out_fold")
        constants = [Signal(shape, name=f"offset{lane}") for lane in range(self._pe)]
        with m.Switch(out_fold):
            for fold in range(self.nf):
                with m.Case(fold):
                    m.d.comb += [c.eq(int(v)) for c, v in zip(constants, table[fold])]
        return constants

    def _weight_memory(self, m, platform, word, advance):
        """The weight word of the operation issued in the cycle before (a read-only table
        read at ``word`` when ``advance``)."""
        init = self.weight_words()
        if len(init) == 1:
            return Const(init[0], self.weight_width)
        _, instance = resolve_architecture(self._target, self._primitives, platform)
        return read_only_memory(m, "weights", init, unsigned(self.weight_width), self.mem_style,
                                word, advance, instance=instance)
