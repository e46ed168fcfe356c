"""Label select: the indices of the ``k`` largest of ``channels`` values (top-k).

The classifier head of a network: for each vector of ``channels`` scores, streamed ``pe`` per
beat (channel ``f * pe + l`` in lane ``l`` of the ``f``-th beat), :class:`LabelSelect` puts out
one beat with the indices of the ``k`` largest scores, largest first. Equal scores rank the
lower index first, as ``numpy.argmax`` and ONNX ``TopK`` do, so the order is total:
``(v, c)`` beats ``(v', c')`` when ``v > v'``, or ``v == v'`` and ``c < c'``.

Algorithm, one input beat per cycle, three register stages:

1. *input*: the beat's ``pe`` values and its fold index ``f`` are registered;
2. *sort the beat*: each lane's rank among the lanes (``pe - 1`` comparisons, the earlier lane
   winning ties) picks the beat's best ``m = min(k, pe)`` candidates in order, with their
   channel indices;
3. *merge*: the candidates are merged into the running list of the vector's best ``k``
   (value, index, valid). Since both lists are sorted and the running list holds only
   earlier channels, ``k * m`` comparisons give every entry its rank in the union (its
   position in its own list plus the entries of the other list that beat it) and each of
   the ``k`` slots takes the entry of its rank. On a vector's first beat the running list
   counts as empty, so back-to-back vectors need no bubble; on its last beat the merged
   indices go to the output register. With one beat per vector (``pe == channels``) the
   beat's candidates are the result and go straight to the output register.

The loop through the running list is one comparison, a count of ``m`` bits and a one-hot
select; everything else is feed-forward. A stalled output freezes all stages.

Cost: ``pe * (pe - 1) / 2 + k * m`` comparators of the input width, their rank counts and
select multiplexers, and registers for the input beat, the candidates, the running list and
the output beat.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned

from ..checks import check_divides, check_int, check_shape
from ..control import StallPipeline, fold_counter
from ..kernel import PlannedComponent, StreamFormat, StreamKernel
from ..resources import Resources

__all__ = ["LabelSelect", "LabelSelectPlan"]


def _or_tree(values):
    """OR of values as a balanced tree."""
    values = list(values)
    while len(values) > 1:
        values = [values[n] | values[n + 1] if n + 1 < len(values) else values[n]
                  for n in range(0, len(values), 2)]
    return values[0]


def _count_ones(bits):
    """Sum of one-bit values as a balanced tree (wide sums trip Python's recursion limit)."""
    bits = list(bits)
    if not bits:
        return Const(0, 1)
    while len(bits) > 1:
        bits = [bits[n] + bits[n + 1] if n + 1 < len(bits) else bits[n]
                for n in range(0, len(bits), 2)]
    return bits[0]


class LabelSelectPlan(StreamKernel):
    """The analysis of :class:`LabelSelect` (same parameters)."""

    def __init__(self, *, channels, pe=1, input_shape, k=1, vectors=1):
        self._channels = check_int("channels", channels, 1)
        self._pe = check_divides("pe", check_int("pe", pe, 1), "channels", self._channels)
        self._input_shape = check_shape("input_shape", input_shape, max_width=64)
        self._k = check_int("k", k, 1)
        if self._k > self._channels:
            raise ValueError(f"k={k} must be at most channels={channels}")
        self._vectors = check_int("vectors", vectors, 1)
        super().__init__()

    @property
    def input_format(self):
        return StreamFormat(self._input_shape, self._pe)

    @property
    def output_format(self):
        return StreamFormat(self.index_shape, self._k)

    # -- parameters -------------------------------------------------------------------------
    channels = property(lambda self: self._channels)
    pe = property(lambda self: self._pe)
    input_shape = property(lambda self: self._input_shape)
    k = property(lambda self: self._k)
    vectors = property(lambda self: self._vectors)

    @property
    def index_shape(self):
        """``unsigned(ceil(log2(channels)))``, at least one bit."""
        return unsigned(max(1, (self._channels - 1).bit_length()))

    @property
    def fold(self):
        """Input beats per vector: ``channels / pe``."""
        return self._channels // self._pe

    @property
    def candidates(self):
        """Candidates a beat contributes to the merge: ``min(k, pe)``."""
        return min(self._k, self._pe)

    # -- timing -----------------------------------------------------------------------------
    @property
    def input_burst(self):
        """One beat: it reads a beat per cycle while it compares."""
        return 1

    @property
    def in_beats_per_frame(self):
        return self.fold * self._vectors

    @property
    def out_beats_per_frame(self):
        return self._vectors

    @property
    def cycles_per_frame(self):
        """One input beat per cycle: ``fold * vectors``."""
        return self.fold * self._vectors

    def output_offset(self, n):
        """Cycles from the first input beat to output beat ``n`` (vector ``n``) without
        stalls: the vector's last beat arrives after ``(n + 1) * fold - 1`` cycles and passes
        three register stages."""
        return (n + 1) * self.fold + 2

    @property
    def latency(self):
        """Cycles from the first input beat to the first output beat: ``fold + 2``."""
        return self.output_offset(0)

    def out_times(self, in_times):
        """Output beat ``v`` leaves three register stages after vector ``v``'s last input
        beat."""
        return [in_times[(v + 1) * self.fold - 1] + 3 for v in range(self._vectors)]

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+, calibrated against Yosys (``synth_xilinx -family xcup``). A ``w``-bit
        comparator is taken as ``ceil(w / 2) + 1`` LUTs on a carry chain; rank counts and
        one-hot selects as one LUT per 3 inputs per bit. With one beat per vector the merge
        and the running list fall away (synthesis removes them)."""
        width, index_width = self._input_shape.width, self.index_shape.width
        pe, k, m, fold = self._pe, self._k, self.candidates, self.fold
        comparator = -(-width // 2) + 1
        entry = width + index_width
        count_bits = max(pe, k).bit_length()
        fold_bits = (fold - 1).bit_length()
        luts, ffs = 0, pe * width + k * index_width + 3      # input, output, valid bits
        if pe > 1:
            luts += comparator * pe * (pe - 1) // 2           # lane against lane
            luts += m * pe * (count_bits + 1)                  # lane ranks, rank == slot
            luts += m * (entry if fold > 1 else index_width) * -(-pe // 3)   # selects
        if fold == 1:
            return Resources(luts=luts, ffs=ffs + m * index_width)
        luts += comparator * k * m                             # candidates against the list
        luts += (k + m) * k * (count_bits + 1)                 # merge ranks, rank == slot
        luts += k * (entry + 1) * -(-(k + m) // 3)             # slot selects
        luts += 2 * fold_bits + 2                               # fold counter, control
        ffs += m * entry + k * (entry + 1) + 2 * fold_bits
        return Resources(luts=luts, ffs=ffs)


class LabelSelect(LabelSelectPlan, PlannedComponent):
    """Indices of the ``k`` largest values of each vector, largest first.

    Parameters
    ----------
    channels : int
        Values per vector ``C``.
    pe : int
        Values per input beat; must divide ``channels``.
    input_shape : ShapeLike
        ``signed(w)`` or ``unsigned(w)``, 1 <= w <= 64.
    k : int
        Indices per output beat, 1 <= k <= channels.
    vectors : int
        Vectors per frame (for the frame properties).

    Members
    -------
    i : stream of ``pe`` x ``input_shape``
    o : stream of ``k`` x :attr:`index_shape`; lane ``r`` holds the index of the
        ``r``-th largest value

    Examples
    --------
    ::

        top = LabelSelect(channels=10, pe=2, input_shape=signed(16), k=3)
        # top.index_shape == unsigned(4), top.cycles_per_frame == 5, top.latency == 7
    """

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        pe, k, fold = self._pe, self._k, self.fold
        index_shape = self.index_shape

        # three stages (input beat, sorted beat, merge into the output register) that
        # advance together; only a vector's last beat reaches the output register
        fold1 = Signal(range(max(2, fold)), name="fold1")
        control = StallPipeline(m, depth=3, i=self.i, o=self.o, emit=fold1 == fold - 1)
        advance = control.advance
        valid1 = control.valid[1]
        fold_in, _ = fold_counter(m, fold, self.i.valid & advance, name="fold_in")
        fold0, fold1_reg, _ = control.carry(fold_in, "fold")
        m.d.comb += fold1.eq(fold1_reg)

        # stage 0: the input beat
        values0 = [Signal(self._input_shape, name=f"x{lane}") for lane in range(pe)]
        with m.If(advance):
            m.d.sync += [values0[lane].eq(self.i.payload[lane]) for lane in range(pe)]

        # stage 1: the beat's best candidates, in order
        cand_values, cand_indices = self._sort_beat(m, values0, fold0, advance)

        # stage 2: merge into the running list; the vector's last beat fills the output
        if fold == 1:
            merged_indices = cand_indices        # one beat per vector: its candidates are the result
        else:
            merged_indices = self._merge(m, cand_values, cand_indices, first=fold1 == 0,
                                         update=advance & valid1)
        out_indices = [Signal(index_shape, name=f"top{r}") for r in range(k)]
        with m.If(advance & valid1 & (fold1 == fold - 1)):
            m.d.sync += [out_indices[r].eq(merged_indices[r]) for r in range(k)]
        m.d.comb += [self.o.payload[r].eq(out_indices[r]) for r in range(k)]
        return m

    def _sort_beat(self, m, values, fold0, advance):
        """Registered ``(values, indices)`` of the beat's best ``min(k, pe)`` lanes, best
        first."""
        pe, count = self._pe, self.candidates
        index_shape = self.index_shape
        indices = [Signal(index_shape, name=f"c{lane}") for lane in range(pe)]
        m.d.comb += [indices[lane].eq(fold0 * pe + lane) for lane in range(pe)]
        ranks = []
        for lane in range(pe):
            # lanes that beat this one: earlier lanes on >=, later lanes on >
            beaten_by = [values[other] >= values[lane] if other < lane
                         else values[other] > values[lane]
                         for other in range(pe) if other != lane]
            rank = Signal(range(pe), name=f"rank{lane}")
            m.d.comb += rank.eq(_count_ones(beaten_by))
            ranks.append(rank)
        cand_values = [Signal(self._input_shape, name=f"cv{s}") for s in range(count)]
        cand_indices = [Signal(index_shape, name=f"ci{s}") for s in range(count)]
        for slot in range(count):
            value, index = self._select(m, [(ranks[lane] == slot, values[lane], indices[lane])
                                             for lane in range(pe)], f"beat{slot}")
            with m.If(advance):
                m.d.sync += [cand_values[slot].eq(value), cand_indices[slot].eq(index)]
        return cand_values, cand_indices

    def _merge(self, m, cand_values, cand_indices, first, update):
        """Merge the candidates into the running list, which takes the result when ``update``;
        returns the merged indices (combinational)."""
        k, count = self._k, self.candidates
        index_shape = self.index_shape
        run_values = [Signal(self._input_shape, name=f"rv{r}") for r in range(k)]
        run_indices = [Signal(index_shape, name=f"ri{r}") for r in range(k)]
        run_valid = [Signal(name=f"rvalid{r}") for r in range(k)]
        live = [Signal(name=f"live{r}") for r in range(k)]   # running entry, not a stale vector
        m.d.comb += [live[r].eq(run_valid[r] & ~first) for r in range(k)]

        # wins[r][j]: candidate j beats running entry r (running entries are earlier channels)
        wins = [[~live[r] | (cand_values[j] > run_values[r]) for j in range(count)]
                for r in range(k)]
        sources = []      # (rank, value, index, valid)
        for r in range(k):
            rank = Signal(range(k + count), name=f"rank_r{r}")
            m.d.comb += rank.eq(r + _count_ones(wins[r]))
            sources.append((rank, run_values[r], run_indices[r], live[r]))
        for j in range(count):
            rank = Signal(range(k + count), name=f"rank_c{j}")
            m.d.comb += rank.eq(j + _count_ones(~wins[r][j] for r in range(k)))
            sources.append((rank, cand_values[j], cand_indices[j], Const(1)))

        merged_values, merged_indices, merged_valid = [], [], []
        for slot in range(k):
            hits = [(rank == slot, value, Cat(index, valid))
                    for rank, value, index, valid in sources]
            value, tagged = self._select(m, hits, f"merge{slot}")
            merged_values.append(value)
            merged_indices.append(tagged[:index_shape.width])
            merged_valid.append(tagged[index_shape.width])

        with m.If(update):
            m.d.sync += [run_values[r].eq(merged_values[r]) for r in range(k)]
            m.d.sync += [run_indices[r].eq(merged_indices[r]) for r in range(k)]
            m.d.sync += [run_valid[r].eq(merged_valid[r]) for r in range(k)]
        return merged_indices

    @staticmethod
    def _select(m, hits, name):
        """One-hot select of ``(value, payload)`` among ``(hit, value, payload)`` (the hits
        are exclusive): an OR of the masked inputs."""
        value_shape = hits[0][1].shape()
        payload_width = len(hits[0][2])
        value_bits = Signal(value_shape.width, name=f"{name}_v")
        payload = Signal(payload_width, name=f"{name}_p")
        m.d.comb += [
            value_bits.eq(_or_tree([Mux(hit, value.as_unsigned(), 0) for hit, value, _ in hits])),
            payload.eq(_or_tree([Mux(hit, data, 0) for hit, _, data in hits])),
        ]
        return value_bits.as_signed() if value_shape.signed else value_bits, payload


LabelSelectPlan.component = LabelSelect
