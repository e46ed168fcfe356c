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
  For 8-bit outputs (255 thresholds per channel) the thresholds may instead become an exact
  multiply-shift, :class:`~hwgen.kernels.requantize.Requantize` (``activation``): a DSP
  slice or a LUT multiplier per lane in place of the threshold memories.
  Without thresholds the raw dot products come out, in :attr:`acc_shape`, which holds the
  worst case (``MW`` times the extreme products).
* **Offsets.** Without thresholds, ``offsets`` (one integer per output channel) are added to
  the raw dot products: ``y[c] = W[c] @ x + offsets[c]`` (a classifier's bias at the
  accumulator's scale). The adder sits in front of the output register (no extra latency);
  its constant comes from a table of ``NF x PE`` entries indexed by a counter of output
  beats within a vector. For ``xnor`` it shares the adder that maps agreements to dot
  products. (With thresholds, fold offsets into the thresholds instead.)

The parameter checks, datapath choice, weight memory, output register and fused thresholds
are those of every folded dot-product unit (:mod:`hwgen.kernels.dotunit`, shared with the
VVAU); this module adds the input buffer, the runtime-writable weights and the timing.

Timing. One operation (``SIMD`` elements of one fold) per cycle: in steady state exactly
``NF * SF`` cycles per vector, with no bubbles between vectors or frames. The whole pipeline
(counters, memories, engine, output register) advances together when the output register is
empty or read, so back-pressure freezes it without losing, duplicating or reordering data.
An input beat is taken only in fold 0 (``i.ready`` is low while folds 1..NF-1 replay).
Output beat ``nf`` of vector ``v`` (channels ``nf*PE .. nf*PE + PE-1``) leaves
``v * NF * SF + nf * SF + latency`` cycles after the first input beat when nothing stalls.
"""


from amaranth.hdl import Mux, Shape, Signal, unsigned
from amaranth.lib import data, memory
from amaranth.lib.wiring import In

from ..checks import check_bool, check_int
from ..control import fold_counter
from ..kernel import StreamFormat
from ..resources import DSP_LUT_EQUIVALENT, Resources, memory_cost
from ..shapes import BIPOLAR, element_shape
from .dotunit import DATAPATHS, MEM_STYLES, DotUnit, DotUnitPlan, counter_bits, \
    encode_operands, valid_datapaths
from .threshold import ConfigSignature

__all__ = ["MVAU", "MVAUPlan", "BIPOLAR", "DATAPATHS", "MEM_STYLES", "DSP_LUT_EQUIVALENT",
           "valid_datapaths"]



#: The deepest input buffer kept in LUT RAM (deeper ones go to block RAM).
MAX_LUTRAM_BUFFER = 256

class MVAUPlan(DotUnitPlan):
    """The analysis of :class:`MVAU` (same parameters): validation, datapath choice,
    timing, memory layout and cost."""

    def __init__(self, *, mw, mh, weights, runtime_weights=False, **options):
        self._mw, self._mh = check_int("mw", mw, 1), check_int("mh", mh, 1)
        self._runtime_weights = check_bool("runtime_weights", runtime_weights)
        self._configure(rows=self._mh, terms=self._mw, weights=weights,
                        names=dict(rows="mh", terms="mw", weights=f"(MH, MW) = ({mh}, {mw})",
                                   offsets=f"(MH,) = ({mh},)"),
                        **options)
        self._lane_bits = (self._pe - 1).bit_length()
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

    # --- description ------------------------------------------------------------------------

    mw = property(lambda self: self._mw)
    mh = property(lambda self: self._mh)

    @property
    def in_beats_per_frame(self):
        return self.sf * self._vectors

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
        array = self._check_weights(weights)
        encoded = encode_operands(array, self._weight_shape)
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

    @property
    def input_buffer_style(self):
        """Memory of the input buffer: LUT RAM up to :data:`MAX_LUTRAM_BUFFER` words, block
        RAM above (Yosys cannot map a 512-deep single-port LUT RAM of UltraScale+)."""
        return "lutram" if self.sf <= MAX_LUTRAM_BUFFER else "bram"

    def _issue_estimate(self):
        """The input buffer (single-port LUT RAM, one cell per bit per 64 words, or block
        RAM for deep buffers; plus the fold-0 register and 2:1 multiplexer) and the synapse
        and neuron fold counters."""
        buffer = Resources()
        luts, ffs = 0, 0
        in_width = self.input_format.width
        if self.nf > 1:
            ffs += in_width
            luts += -(-in_width // 2)
            if self.sf > 1:
                buffer = memory_cost(self.sf, in_width, self.input_buffer_style,
                                     ports="single")
        counters = counter_bits(self.sf) + counter_bits(self.nf)
        return buffer + Resources(luts=luts + counters, ffs=ffs + counters)

    def out_times(self, in_times):
        """Output beat cycles (see :class:`~hwgen.kernel.StreamKernel`): fold 0 issues one
        operation per arriving beat, folds 1 .. NF-1 replay one per cycle, and a vector's
        output beat ``nf`` leaves ``latency - (SF - 1)`` cycles after the last operation of
        fold ``nf``."""
        sf = self.sf
        op_times, last_op = [], -1
        for vector in range(self._vectors):
            for s in range(sf):
                last_op = max(in_times[vector * sf + s], last_op + 1)
                op_times.append(last_op)
            for _ in range(sf * (self.nf - 1)):
                last_op += 1
                op_times.append(last_op)
        return self._fold_times(op_times)


class MVAU(MVAUPlan, DotUnit):
    """Folded matrix-vector-activation unit (see the module documentation).

    Parameters
    ----------
    mw, mh : int
        Matrix width (input elements per vector) and height (output channels).
    pe, simd : int, default 1
        Output channels and input elements per cycle; ``pe`` must divide ``mh`` and ``simd``
        must divide ``mw``.
    weights : array-like of int, shape ``(mh, mw)``
        Weight values: in the range of ``weight_shape``, or -1/+1 for bipolar weights.
    input_shape, weight_shape : ``"bipolar"`` or ShapeLike
        ``signed(n)`` / ``unsigned(n)`` with 1 <= n <= 8, or ``"bipolar"`` (one bit, 0 for
        -1 and 1 for +1, on the stream and in memory).
    thresholds : array-like of int, shape ``(mh, T)`` or ``(1, T)``, optional
        Fused multi-threshold activation on the dot products; sorted per channel.
    bias : int, default 0
        Added to the threshold count.
    offsets : array-like of int, shape ``(mh,)``, optional
        Added to the raw dot products (only without ``thresholds``).
    vectors : int, default 1
        Vectors per frame (``N x MW`` inputs, as im2col gives for a convolution).
    datapath : ``"auto"`` (default), ``"xnor"``, ``"binary-weights"``, ``"lut"`` or ``"dsp"``
    mem_style : ``"auto"`` (default), ``"lutram"`` or ``"bram"``
        Weight memory.
    runtime_weights : bool, default False
        Add the weight configuration port :attr:`wcfg` (:class:`~hwgen.kernels.threshold.ConfigSignature`,
        flipped): ``addr`` is :meth:`weight_config_address` (word, lane), ``wdata`` that
        lane's ``SIMD`` weights (element ``s`` at bits ``[s*Wb, (s+1)*Wb)``, encoded as on the
        stream), ``we`` writes, ``re`` reads back (``rdata`` with ``rvalid`` one cycle
        later). A write reaches operations that read the word after it.
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
        Register the weights and activations read from memory once more before the
        datapath (one more cycle of latency, ``weight_width`` + ``SIMD * input bits`` more
        flip-flops): block RAM without an output register (ECP5's DP16KD, iCE40's EBR) then
        has a whole clock period to itself.
    target : ``"auto"`` (default), ``"generic"`` or ``"xilinx"``
        ``xilinx``: packed DSP48E2 slices and LUT6_2/CARRY8 trees; ``generic``: plain logic;
        ``auto``: by the platform at elaboration (UltraScale(+) means ``xilinx``).
    primitives : ``"auto"`` (default), ``"instance"`` or ``"behavioural"``
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

    def _issue(self, m, advance):
        """Fold 0 takes the ``SF`` input beats of a vector from the stream (and writes them to
        the input buffer); folds 1 .. NF-1 replay them from there, one per cycle."""
        nf = Signal(range(max(2, self.nf)), name="nf")
        in_fold0 = Signal()
        m.d.comb += in_fold0.eq(nf == 0)
        take = Signal()
        m.d.comb += [
            take.eq(advance & (~in_fold0 | self.i.valid)),
            self.i.ready.eq(advance & in_fold0),
        ]
        sf, last_sf = fold_counter(m, self.sf, take, name="sf")
        nf_counter, _ = fold_counter(m, self.nf, take & last_sf, name="nf_count")
        m.d.comb += nf.eq(nf_counter)
        acts = self._input_buffer(m, sf, in_fold0, take, advance)
        return take, sf == 0, last_sf, acts

    def _weight_memory(self, m, platform, word, advance):
        if not self._runtime_weights:
            return super()._weight_memory(m, platform, word, advance)
        init = self.weight_words()
        granularity = self._simd * element_shape(self._weight_shape).width
        mem = memory.Memory(shape=unsigned(self.weight_width), depth=len(init), init=init,
                            attrs={"ram_style": "block" if self.mem_style == "bram"
                                   else "distributed"})
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
            if self.input_buffer_style == "bram":
                buffer.attrs["ram_style"] = "block"
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
