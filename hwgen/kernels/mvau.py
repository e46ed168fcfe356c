"""Matrix-vector-activation unit (MVAU): ``y = act(W @ x)``, folded in time.

An ``MH x MW`` weight matrix meets input vectors of ``MW`` elements. Per cycle the unit
multiplies ``SIMD`` input elements by ``PE`` rows of weights, so a vector takes
``NF * SF`` cycles, ``NF = MH / PE`` (neuron fold) and ``SF = MW / SIMD`` (synapse fold).

Data flow, for each vector::

    input stream (SF beats of SIMD) --+--> [input buffer, SF x SIMD]   replayed for folds 1..NF-1
                                      |            |
                                      +--mux-------+--> dot-product engine (PE x SIMD per cycle)
    weight ROM/RAM (NF*SF words of PE x SIMD) -------->   accumulate over SF cycles
                                                          --> [thresholds] --> output (NF beats of PE)

* **Input buffer.** The ``SF`` beats of a vector are taken from the stream during neuron fold 0
  and written to a buffer of ``SF`` words; folds ``1 .. NF-1`` replay them from there, so the
  input is read once per vector. Reads and writes share one address (the synapse fold), so
  a single-port memory is enough; with ``NF = 1`` there is no buffer at all.
* **Weights.** Word ``nf * SF + sf`` holds the ``PE x SIMD`` weights ``W[nf*PE + p][sf*SIMD + s]``
  (lane ``p``, element ``s``; element ``(p, s)`` at bits ``[(p*SIMD + s)*Wb, ...)``), read
  synchronously with a counter as address. ``mem_style``: ``lutram`` (logic or distributed
  RAM), ``bram`` (block RAM, ``ram_style="block"``), or ``auto``: block RAM from 128 words.
  ``runtime_weights`` adds a configuration port, :attr:`wcfg` (one lane's ``SIMD`` weights per
  write, with read-back), of the same :class:`~hwgen.kernels.threshold.ConfigSignature` as the
  thresholding unit's ``cfg``.
* **Datapaths** (``datapath``), all with the same framing (see
  :class:`~hwgen.arith.dot_product.FabricDotProduct` and :class:`~hwgen.arith.packed_mac.PackedDotProduct`):

  - ``xnor``: bipolar weights and inputs, XNOR and a compressor-tree popcount per PE; the
    accumulator counts agreements ``p``, and the dot product is ``2p - MW``;
  - ``binary-weights``: bipolar weights times integer inputs, as ``+-x`` bits in the heap;
  - ``lut``: partial-product bits of each ``w * x`` straight into one bit heap per PE;
  - ``dsp``: DSP48E2 slices with several weights packed per slice on UltraScale(+)
    (``target``), one plain multiplier per product elsewhere, summed by compressor trees;
  - ``auto``: ``xnor`` / ``binary-weights`` for bipolar weights, otherwise the cheaper of
    ``lut`` and ``dsp`` by :meth:`estimate`, counting a DSP48E2 as
    :data:`DSP_LUT_EQUIVALENT` LUTs (about the LUT-to-DSP ratio of UltraScale+ devices).
* **Activation.** With ``thresholds`` (``(MH, T)`` or ``(1, T)``), the accumulators go through
  a fused multi-threshold unit (:func:`~hwgen.kernels.threshold.Threshold`: binary search, or the
  unrolled form where that is cheaper) and the outputs are ``bias + #{t : T[c][t] <= acc}``.
  For ``xnor`` the thresholds move into the popcount's domain
  (``2p - MW >= T`` iff ``p >= ceil((T + MW) / 2)``), so the comparators are narrower.
  Without thresholds the raw dot products come out, in :attr:`acc_shape`, which holds the
  worst case (``MW`` times the extreme products).
* **Offsets.** Without thresholds, ``offsets`` (one integer per output channel) are added to
  the raw dot products: ``y[c] = W[c] @ x + offsets[c]`` (a classifier's bias at the
  accumulator's scale). The adder sits in front of the output register (no extra latency);
  its constant comes from a table of ``NF x PE`` entries indexed by a counter of output
  beats within a vector. For ``xnor`` it shares the adder that maps agreements to dot
  products. (With thresholds, fold offsets into the thresholds instead.)

Timing. One operation (``SIMD`` elements of one fold) per cycle: in steady state exactly
``NF * SF`` cycles per vector, with no bubbles between vectors or frames. The whole pipeline
(counters, memories, engine, output register) advances together when the output register is
empty or read, so back-pressure freezes it without losing, duplicating or reordering data.
An input beat is taken only in fold 0 (``i.ready`` is low while folds 1..NF-1 replay).
Output beat ``nf`` of vector ``v`` (channels ``nf*PE .. nf*PE + PE-1``) leaves
``v * NF * SF + nf * SF + latency`` cycles after the first input beat when nothing stalls.
"""


from functools import cached_property

import numpy as np
from amaranth.hdl import Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In

from ..arith.dot_product import FabricDotProductPlan
from ..arith.netlist import resolve_architecture
from ..arith.packed_mac import PackedDotProductPlan
from ..checks import check_bool, check_divides, check_int, check_int_array, check_one_of
from ..control import StallPipeline, fold_counter
from ..kernel import PlannedComponent, StreamFormat, StreamKernel
from ..memory import read_only_memory
from ..resources import DSP_LUT_EQUIVALENT, Resources, memory_cost
from ..shapes import BIPOLAR, cast_operand, element_shape, shape_for_range, shape_range
from .threshold import IMPLS, MEM_STYLES as THRESHOLD_MEM_STYLES, ConfigSignature, \
    check_thresholds, threshold_plan

__all__ = ["MVAU", "MVAUPlan", "BIPOLAR", "DATAPATHS", "MEM_STYLES", "DSP_LUT_EQUIVALENT",
           "valid_datapaths"]

DATAPATHS = ("auto", "xnor", "binary-weights", "lut", "dsp")
MEM_STYLES = ("auto", "lutram", "bram")
TARGETS = ("auto", "generic", "xilinx")
_BRAM_FROM_DEPTH = 128


def _check_weights(weights, mh, mw, shape):
    if shape == BIPOLAR:
        array = check_int_array("weights", weights, (mh, mw), shape_text=f"(MH, MW) = ({mh}, {mw})",
                                low=-1, high=1, valid="-1 or +1 (weight_shape='bipolar')")
        if not array.all():
            row, col = map(int, np.argwhere(array == 0)[0])
            raise ValueError(f"weights[{row}, {col}] = 0 is out of range: must be -1 or +1 "
                             f"(weight_shape='bipolar')")
        return array
    lo, hi = shape_range(shape)
    return check_int_array("weights", weights, (mh, mw), shape_text=f"(MH, MW) = ({mh}, {mw})",
                           low=lo, high=hi, valid=f"in [{lo}, {hi}] (weight_shape={shape!r})")


def _encode(values, shape):
    """Operand values to the bits carried in memory and on streams (bipolar: -1 -> 0)."""
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


class MVAUPlan(StreamKernel):
    """The analysis of :class:`MVAU` (same parameters): validation, datapath choice,
    timing, memory layout and cost."""

    def __init__(self, *, mw, mh, pe=1, simd=1, weights, input_shape, weight_shape,
                 thresholds=None, bias=0, offsets=None, vectors=1, datapath="auto",
                 mem_style="auto", runtime_weights=False, threshold_impl="auto",
                 threshold_mem_style="auto",
                 pipeline_every=2, register_reads=False, target="auto", primitives="auto"):
        self._mw, self._mh = check_int("mw", mw, 1), check_int("mh", mh, 1)
        self._pe = check_divides("pe", check_int("pe", pe, 1), "mh", self._mh)
        self._simd = check_divides("simd", check_int("simd", simd, 1), "mw", self._mw)
        self._vectors = check_int("vectors", vectors, 1)
        self._input_shape = cast_operand("input_shape", input_shape)
        self._weight_shape = cast_operand("weight_shape", weight_shape)
        self._weights = _check_weights(weights, mh, mw, self._weight_shape)
        check_one_of("datapath", datapath, DATAPATHS)
        self._mem_style = check_one_of("mem_style", mem_style, MEM_STYLES)
        self._target = check_one_of("target", target, TARGETS)
        check_one_of("threshold_impl", threshold_impl, IMPLS)
        self._bias = check_int("bias", bias)
        self._pipeline_every = check_int("pipeline_every", pipeline_every, 0)
        self._runtime_weights = check_bool("runtime_weights", runtime_weights)
        self._register_reads = check_bool("register_reads", register_reads)
        self._primitives = primitives
        self._lane_bits = (self._pe - 1).bit_length()

        self._check_datapath(datapath)
        self._datapath_asked = datapath

        # raw dot products: their shape, and how the engine's accumulator maps to them
        lo, hi = self._dot_range()
        self._offsets = None
        if offsets is not None:
            if thresholds is not None:
                raise ValueError("offsets need raw outputs (no thresholds): fold them into "
                                 "the thresholds instead")
            self._offsets = check_int_array("offsets", offsets, (mh,),
                                            shape_text=f"(MH,) = ({mh},)")
            lo += min(0, int(self._offsets.min()))
            hi += max(0, int(self._offsets.max()))
        self._acc_shape = shape_for_range(lo, hi)
        self._thresholds = None
        check_one_of("threshold_mem_style", threshold_mem_style, THRESHOLD_MEM_STYLES)
        self._threshold_options = dict(impl=threshold_impl, mem_style=threshold_mem_style)
        if thresholds is not None:
            self._thresholds = check_thresholds(thresholds, mh, self._acc_shape)
        elif self._bias:
            raise ValueError(f"bias={bias} needs thresholds (raw accumulators have no bias)")
        super().__init__()

    def members(self):
        members = super().members()
        if self._runtime_weights:
            members["wcfg"] = In(ConfigSignature(
                self._lane_bits + max(1, (self.weight_depth - 1).bit_length()),
                unsigned(self._simd * element_shape(self._weight_shape).width)))
        return members

    @property
    def input_format(self):
        return StreamFormat(element_shape(self._input_shape), self._simd)

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

    @cached_property
    def _threshold(self):
        if self._thresholds is None:
            return None
        checked = self._thresholds
        if self._datapath == "xnor":  # compare the agreement count instead
            checked = (checked + self._mw + 1) // 2
        return threshold_plan(channels=self._mh, pe=self._pe,
                              input_shape=self._engine.acc_shape, thresholds=checked,
                              bias=self._bias, vectors=self._vectors, **self._threshold_options)

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
        common = dict(simd=self._simd, lanes=self._pe, max_terms=self._mw,
                      pipeline_every=self._pipeline_every)
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
        return min(0, self._mw * min(corners)), max(0, self._mw * max(corners))

    # --- description ------------------------------------------------------------------------

    mw = property(lambda self: self._mw)
    mh = property(lambda self: self._mh)
    pe = property(lambda self: self._pe)
    simd = property(lambda self: self._simd)
    vectors = property(lambda self: self._vectors)
    input_shape = property(lambda self: self._input_shape)
    weight_shape = property(lambda self: self._weight_shape)
    datapath = property(lambda self: self._datapath, doc="The datapath in use (``auto`` resolved).")
    output_shape = property(lambda self: self._output_shape)
    bias = property(lambda self: self._bias)

    @property
    def offsets(self):
        """The offsets added to the raw dot products, ``(mh,)`` int64 (a copy), or None."""
        return None if self._offsets is None else self._offsets.copy()
    engine = property(lambda self: self._engine,
                      doc="The dot-product engine's plan (built in ``elaborate()``).")
    threshold = property(lambda self: self._threshold,
                         doc="The fused thresholding unit's plan, or None.")

    @property
    def weights(self):
        """The weight values, ``(mh, mw)`` int64 (a copy)."""
        return self._weights.copy()

    @property
    def acc_shape(self):
        """Shape of the raw dot products: holds ``MW`` times the extreme products (plus the
        extreme offsets)."""
        return self._acc_shape

    @property
    def nf(self):
        """Neuron fold, ``MH / PE``: output beats per vector."""
        return self._mh // self._pe

    @property
    def sf(self):
        """Synapse fold, ``MW / SIMD``: input beats per vector."""
        return self._mw // self._simd

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
    def cycles_per_vector(self):
        return self.nf * self.sf

    @property
    def cycles_per_frame(self):
        """Steady-state cycles per frame, ``NF * SF * vectors``."""
        return self.cycles_per_vector * self._vectors

    @property
    def in_beats_per_frame(self):
        return self.sf * self._vectors

    @property
    def out_beats_per_frame(self):
        return self.nf * self._vectors

    @property
    def latency(self):
        """Cycles from the first input beat of a vector to its first output beat: the ``SF``
        beats of fold 0, the memory read (and ``register_reads``), the engine, the output
        register, and the thresholding unit."""
        latency = self.sf + 1 + self._register_reads + self._engine.latency
        if self._threshold is not None:
            latency += self._threshold.latency
        return latency

    def weight_words(self):
        """Initial weight memory contents: ``NF * SF`` packed integers."""
        bits = element_shape(self._weight_shape).width
        encoded = _encode(self._weights, self._weight_shape)
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

    def weight_config_address(self, word, lane):
        """Address on :attr:`wcfg` of lane ``lane``'s weights in word ``word``
        (``nf * SF + sf``): the bit fields ``{word, lane}``, lane in the low
        ``ceil(log2 PE)`` bits."""
        if not 0 <= word < self.weight_depth:
            raise ValueError(f"word must be in 0..{self.weight_depth - 1}, not {word}")
        if not 0 <= lane < self._pe:
            raise ValueError(f"lane must be in 0..{self._pe - 1}, not {lane}")
        return word << self._lane_bits | lane

    def weight_config_writes(self, weights):
        """``(address, data)`` writes on :attr:`wcfg` that load the ``(mh, mw)`` value array
        ``weights`` (validated like the constructor's)."""
        array = _check_weights(weights, self._mh, self._mw, self._weight_shape)
        encoded = _encode(array, self._weight_shape)
        bits = element_shape(self._weight_shape).width
        writes = []
        for nf in range(self.nf):
            for s_fold in range(self.sf):
                for lane in range(self._pe):
                    row = encoded[nf * self._pe + lane,
                                  s_fold * self._simd:(s_fold + 1) * self._simd]
                    word = sum(int(v) << (k * bits) for k, v in enumerate(row))
                    writes.append((self.weight_config_address(nf * self.sf + s_fold, lane),
                                   word))
        return writes

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` for UltraScale+.

        The engine's own estimate (trees, accumulators, DSP slices), the weight memory
        (:func:`~hwgen.resources.memory_cost`: a read-only table in logic is one LUT per
        bit per 64 words, block RAM in 18 Kbit halves), its read register, the input buffer
        (single-port LUT RAM, one cell per bit per 64 words, plus the fold-0 register and
        2:1 multiplexer), the fold counters, the output register, the offset adder (one LUT
        per output bit per lane; ``xnor`` already has one) with its ``NF x PE`` table (one
        LUT per offset bit per lane per 64 folds) and output fold counter, and the
        thresholding unit.
        """
        cost = self._engine.estimate()
        style = self.mem_style
        cost += memory_cost(self.weight_depth, self.weight_width, style,
                            ports="config" if self._runtime_weights else "rom")
        luts, ffs, lutram = 0, 0, 0
        if style != "bram":
            ffs += self.weight_width
        in_width = self._simd * element_shape(self._input_shape).width
        if self._register_reads:
            ffs += self.weight_width + in_width + 3
        if self.nf > 1:
            ffs += in_width
            luts += -(-in_width // 2)
            if self.sf > 1:
                lutram += memory_cost(self.sf, in_width, "lutram", ports="single").lutram
        counters = sum(max(1, (n - 1).bit_length()) for n in (self.sf, self.nf, self.weight_depth))
        luts += counters
        ffs += counters + 4
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
                count = max(1, (self.nf - 1).bit_length())
                luts += self._pe * table_bits * -(-self.nf // 64) + count
                ffs += count
        cost += Resources(luts=luts, ffs=ffs, lutram=lutram)
        if self._threshold is not None:
            cost += self._threshold.estimate()
        return cost

    def _has_offsets(self):
        return self._offsets is not None and bool(np.any(self._offsets))

    def resolved_choices(self):
        return {"datapath": self.datapath, "mem_style": self.mem_style}

    def out_times(self, in_times):
        """Output beat cycles (see :class:`~hwgen.kernel.StreamKernel`): fold 0 issues one
        operation per arriving beat, folds 1 .. NF-1 replay one per cycle, and a vector's
        output beat ``nf`` leaves ``latency - (SF - 1)`` cycles after the last operation of
        fold ``nf``."""
        sf, nf = self.sf, self.nf
        depth = self.latency - (sf - 1)
        times, last_op = [], -1
        for vector in range(self._vectors):
            for s in range(sf):
                last_op = max(in_times[vector * sf + s], last_op + 1)
            for fold in range(nf):
                if fold:
                    last_op += sf
                times.append(last_op + depth)
        return times


class MVAU(MVAUPlan, PlannedComponent):
    """Folded matrix-vector-activation unit (see the module documentation).

    Parameters
    ----------
    mw, mh : int
        Matrix width (input elements per vector) and height (output channels).
    pe, simd : int
        Output channels and input elements per cycle; ``pe`` must divide ``mh`` and ``simd``
        must divide ``mw``.
    weights : array-like of int, shape ``(mh, mw)``
        Weight values: in the range of ``weight_shape``, or -1/+1 for bipolar weights.
    input_shape, weight_shape : ``"bipolar"`` or ShapeLike
        ``signed(n)`` / ``unsigned(n)`` with 1 <= n <= 8, or ``"bipolar"`` (one bit, 0 for
        -1 and 1 for +1, on the stream and in memory).
    thresholds : array-like of int, shape ``(mh, T)`` or ``(1, T)``, optional
        Fused multi-threshold activation on the dot products; sorted per channel.
    bias : int
        Added to the threshold count.
    offsets : array-like of int, shape ``(mh,)``, optional
        Added to the raw dot products (only without ``thresholds``).
    vectors : int
        Vectors per frame (``N x MW`` inputs, as im2col gives for a convolution).
    datapath : ``"auto"``, ``"xnor"``, ``"binary-weights"``, ``"lut"`` or ``"dsp"``
    mem_style : ``"auto"``, ``"lutram"`` or ``"bram"``
        Weight memory.
    runtime_weights : bool
        Add the weight configuration port :attr:`wcfg` (:class:`~hwgen.kernels.threshold.ConfigSignature`,
        flipped): ``addr`` is :meth:`weight_config_address` (word, lane), ``wdata`` that
        lane's ``SIMD`` weights (element ``s`` at bits ``[s*Wb, (s+1)*Wb)``, encoded as on the
        stream), ``we`` writes, ``re`` reads back (``rdata`` with ``rvalid`` one cycle
        later). A write reaches operations that read the word after it.
    threshold_impl : ``"auto"``, ``"binary"`` or ``"unrolled"``
    threshold_mem_style : ``"auto"``, ``"registers"``, ``"lutram"`` or ``"bram"``
    pipeline_every : int
        Register after every K logic stages of the compressor trees (0: none).
    register_reads : bool
        Register the weights and activations read from memory once more before the
        datapath (one more cycle of latency, ``weight_width`` + ``SIMD * input bits`` more
        flip-flops): block RAM without an output register (ECP5's DP16KD, iCE40's EBR) then
        has a whole clock period to itself.
    target : ``"auto"``, ``"generic"`` or ``"xilinx"``
        ``xilinx``: packed DSP48E2 slices and LUT6_2/CARRY8 trees; ``generic``: plain logic;
        ``auto``: by the platform at elaboration (UltraScale(+) means ``xilinx``).
    primitives : ``"auto"``, ``"instance"`` or ``"behavioural"``
        Vendor cells as ``Instance`` or as their bit-exact models.

    Members
    -------
    i : In(stream of ``simd`` lanes of the input element)
        Input vectors, ``SF`` beats each, element ``sf*SIMD + s`` in lane ``s``.
    o : Out(stream of ``pe`` lanes of :attr:`output_shape`)
        ``NF`` beats per vector, channel ``nf*PE + p`` in lane ``p``.
    wcfg : In(:class:`~hwgen.kernels.threshold.ConfigSignature`), only with ``runtime_weights``
    """

    # --- hardware ---------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self._engine.build()
        nf_count, sf_count = self.nf, self.sf

        raw = Signal(data.ArrayLayout(self._raw_shape, self._pe))
        raw_ready = Signal()
        # everything advances with the output register (raw dot products, or the
        # accumulators for the thresholds), whose valid bit is the engine's o_valid
        control = StallPipeline(m, depth=1, take=engine.o_valid, out_ready=raw_ready)
        advance, raw_valid = control.advance, control.out_valid

        # fold counters; an operation is issued in every advancing cycle that has its input
        nf = Signal(range(max(2, nf_count)), name="nf")
        in_fold0 = Signal()
        m.d.comb += in_fold0.eq(nf == 0)
        take = Signal()
        m.d.comb += [
            take.eq(advance & (~in_fold0 | self.i.valid)),
            self.i.ready.eq(advance & in_fold0),
        ]
        sf, last_sf = fold_counter(m, sf_count, take, name="sf")
        nf_counter, _ = fold_counter(m, nf_count, take & last_sf, name="nf_count")
        m.d.comb += nf.eq(nf_counter)
        word, _ = fold_counter(m, self.weight_depth, take, name="word")

        weights = self._weight_memory(m, platform, word, advance)
        acts = self._input_buffer(m, sf, in_fold0, take, advance)

        valid1, first1, last1 = Signal(), Signal(), Signal()
        with m.If(advance):
            m.d.sync += [valid1.eq(take), first1.eq(sf == 0), last1.eq(last_sf)]
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

    def _output_constants(self, m, engine):
        """Per lane, the constant added to the engine's output for the current output fold
        (``-MW`` of the xnor mapping plus the offset), or None when there is none."""
        xnor = self._datapath == "xnor" and self._threshold is None
        if not xnor and not self._has_offsets():
            return None
        table = np.zeros((self.nf, self._pe), dtype=np.int64)
        if self._has_offsets():
            table += self._offsets.reshape(self.nf, self._pe)
        if xnor:
            table -= self._mw
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
        layout = data.ArrayLayout(data.ArrayLayout(element_shape(self._weight_shape),
                                                   self._simd), self._pe)
        init = self.weight_words()
        style = self.mem_style
        if not self._runtime_weights:
            if len(init) == 1:
                return Const(init[0], Shape.cast(layout).width)
            _, instance = resolve_architecture(self._target, self._primitives, platform)
            return read_only_memory(m, "weights", init, unsigned(self.weight_width), style,
                                     word, advance, instance=instance)
        granularity = self._simd * element_shape(self._weight_shape).width
        mem = memory.Memory(shape=unsigned(self.weight_width), depth=len(init), init=init,
                            attrs={"ram_style": "block" if style == "bram" else "distributed"})
        m.submodules.weights = mem
        read = mem.read_port()
        write = mem.write_port(granularity=granularity)
        back = mem.read_port()          # read-back, at the configuration address
        cfg = self.wcfg
        lane, word_addr = cfg.addr[:self._lane_bits], cfg.addr[self._lane_bits:]
        m.d.comb += [read.addr.eq(word), read.en.eq(advance),
                     write.addr.eq(word_addr), write.data.eq(cfg.wdata.replicate(self._pe)),
                     back.addr.eq(word_addr), back.en.eq(cfg.re)]
        for index in range(self._pe):
            m.d.comb += write.en[index].eq(cfg.we & (lane == index if self._lane_bits else 1))
        lane_q = Signal(self._lane_bits, name="wcfg_lane") if self._lane_bits else None
        m.d.sync += cfg.rvalid.eq(cfg.re)
        if lane_q is not None:
            with m.If(cfg.re):
                m.d.sync += lane_q.eq(lane)
            m.d.comb += cfg.rdata.eq(back.data.word_select(lane_q, granularity))
        else:
            m.d.comb += cfg.rdata.eq(back.data)
        return read.data

    def _input_buffer(self, m, sf, in_fold0, take, advance):
        """The activations of the operation issued in the cycle before: from the stream in
        fold 0, from the buffer in the other folds."""
        layout = data.ArrayLayout(element_shape(self._input_shape), self._simd)
        fresh = Signal(layout)
        with m.If(advance):
            m.d.sync += fresh.eq(self.i.payload)
        if self.nf == 1:
            return fresh
        width = Shape.cast(layout).width
        from_stream = Signal()
        with m.If(advance):
            m.d.sync += from_stream.eq(in_fold0)
        replay = Signal(width)
        if self.sf == 1:
            with m.If(take & in_fold0):
                m.d.sync += replay.eq(self.i.payload.as_value())
        else:
            buffer = memory.Memory(shape=unsigned(width), depth=self.sf, init=[])
            m.submodules.input_buffer = buffer
            read, write = buffer.read_port(), buffer.write_port()
            m.d.comb += [
                write.addr.eq(sf), write.data.eq(self.i.payload.as_value()),
                write.en.eq(take & in_fold0),
                read.addr.eq(sf), read.en.eq(advance),
            ]
            m.d.comb += replay.eq(read.data)
        acts = Signal(layout)
        m.d.comb += acts.eq(Mux(from_stream, fresh.as_value(), replay))
        return acts


MVAUPlan.component = MVAU
