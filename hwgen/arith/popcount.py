"""Compressor trees as components: :class:`Popcount` and :class:`WeightedSum` sum a bit heap
with generalized parallel counters, then one adder.

:class:`CompressorTree`, their base, holds a :class:`~hwgen.arith.bitheap.BitHeap` of its
input's bits, plans its compression for each architecture ``target`` may pick
(:func:`~hwgen.arith.planner.plan_compression`, with the counters of
:mod:`hwgen.arith.counters`) and elaborates the plan
(:func:`~hwgen.arith.netlist.build_compressor`). Latency and the resource estimate come
from the plans, without building anything. Two architectures, picked by ``target``:

``generic``
    Generalized parallel counters (LUT counters and carry-chain counters) in plain
    Amaranth logic and arithmetic, then a binary adder.

``xilinx``
    UltraScale(+) ``LUT6_2`` + ``CARRY8`` row compressors in the style of Kumm/Zipf's
    carry-chain 4:2 compressors and Preusser's row-based atoms, then a ternary or binary
    adder; ``Instance`` cells or bit-identical behavioural models, chosen by
    ``primitives``.

Pipelining: with ``pipeline_every=K > 0``, every heap bit is registered after stages K,
2K, ... where the final adder counts as the last stage; :attr:`CompressorTree.latency` is
exact.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..checks import check_int, check_one_of
from .bitheap import BitHeap
from .netlist import PRIMITIVES, TARGETS, build_compressor, resolve_architecture
from .planner import FINAL_ADDERS, plan_compression

__all__ = ["CompressorTree", "Popcount", "Term", "WeightedSum", "TreePlan", "popcount_heap"]


class TreePlan:
    """The plan of a compressor tree over a heap of column ``heights``: its compression
    for each architecture ``target`` may pick, its latency and its cost (parameters as
    :class:`CompressorTree`)."""

    def __init__(self, heights, *, pipeline_every=0, target="auto", final_adder="auto"):
        self._pipeline_every = check_int("pipeline_every", pipeline_every, 0)
        check_one_of("target", target, TARGETS)
        check_one_of("final_adder", final_adder, FINAL_ADDERS)
        self._target = target
        architectures = ("generic", "xilinx") if target == "auto" else (target,)
        self._plans = {arch: plan_compression(heights, target=arch, final_adder=final_adder)
                       for arch in architectures}

    @property
    def pipeline_every(self):
        return self._pipeline_every

    @property
    def target(self):
        return self._target

    @property
    def latency(self):
        """Cycles from input to output (0 when combinational): the longest of the plans."""
        return max(plan.latency(self._pipeline_every) for plan in self._plans.values())

    def plan(self, target=None):
        """The :class:`~hwgen.arith.planner.Plan` for ``target`` (default: this tree's own
        target; for ``auto``, ``generic``)."""
        if target is None:
            target = "generic" if self._target == "auto" else self._target
        return self._plans[target]

    @property
    def stages(self):
        """Compression stages (not counting the final adder)."""
        return len(self.plan().stages)

    def estimate(self, target=None):
        """Analytic estimate of ``luts``, ``ffs`` and ``carry`` cells."""
        return self.plan(target).estimate(self._pipeline_every)


class CompressorTree(wiring.Component):
    """Base of the compressor-tree front ends: holds the heap, its plan(s) and the ports
    ``o`` (the sum) and ``en`` (clock enable of the pipeline registers).

    Subclasses build a heap from the bits of a staging signal, which follows port ``i``.

    Parameters
    ----------
    pipeline_every : int
        A register stage after every K logic stages (compression stages and the final
        adder); 0 for a combinational tree.
    target : ``"auto"``, ``"generic"`` or ``"xilinx"``
        Architecture. ``auto`` uses ``xilinx`` on UltraScale(+) platforms and ``generic``
        otherwise; both plans are made up front, and the shorter pipeline is padded so that
        :attr:`latency` is the same whichever is built.
    primitives : ``"auto"``, ``"instance"`` or ``"behavioural"``
        For the ``xilinx`` architecture: ``Instance`` cells or behavioural models. ``auto``
        uses instances when elaborated for an UltraScale(+) platform, behavioural models
        otherwise (Amaranth's simulator ignores instances).
    final_adder : ``"auto"``, ``"binary"`` or ``"ternary"``
    """

    def __init__(self, signature, heap, staging, *, pipeline_every=0, target="auto",
                 primitives="auto", final_adder="auto"):
        self._tree = TreePlan(heap.heights(), pipeline_every=pipeline_every, target=target,
                              final_adder=final_adder)
        check_one_of("primitives", primitives, PRIMITIVES)
        self._primitives = primitives
        self._heap = heap
        self._staging = staging  # the heap's bits are slices of it; it follows port i
        signature = dict(signature)
        signature["o"] = Out(heap.shape)
        signature["en"] = In(1, init=1)
        super().__init__(signature)

    pipeline_every = property(lambda self: self._tree.pipeline_every)
    target = property(lambda self: self._tree.target)
    latency = property(lambda self: self._tree.latency,
                       doc="Cycles from input to output (0 when combinational).")
    stages = property(lambda self: self._tree.stages,
                      doc="Compression stages (not counting the final adder).")

    def plan(self, target=None):
        """The :class:`~hwgen.arith.planner.Plan` for ``target`` (see :class:`TreePlan`)."""
        return self._tree.plan(target)

    def estimate(self, target=None):
        """Analytic estimate of ``luts``, ``ffs`` and ``carry`` cells."""
        return self._tree.estimate(target)

    def elaborate(self, platform):
        m = Module()
        target, instance = resolve_architecture(self._tree.target, self._primitives, platform)
        plan = self._tree.plan(target)
        result = build_compressor(
            m, self._heap.columns(), plan, pipeline_every=self._tree.pipeline_every, en=self.en,
            instance=instance, name="ct",
            extra_latency=self.latency - plan.latency(self._tree.pipeline_every))
        m.d.comb += [self._staging.eq(self.i), self.o.eq(result)]
        return m


def popcount_heap(n):
    """``(bits, heap)``: ``n`` fresh bits and the heap of their count (the heap a
    :class:`Popcount` sums; ``heap.heights()`` plans it)."""
    bits = Signal(n)
    heap = BitHeap()
    for k in range(n):
        heap.add_bit(bits[k])
    return bits, heap


class Popcount(CompressorTree):
    """Population count of ``n`` bits by a compressor tree.

    Ports: ``i`` (``n`` bits in), ``o`` (``unsigned(n.bit_length())``, the count), ``en``
    (clock enable of the pipeline registers, high by default). See
    :class:`CompressorTree` for the other parameters.
    """

    def __init__(self, n, *, pipeline_every=0, target="auto", primitives="auto", final_adder="auto"):
        self._n = check_int("n", n, 1)
        bits, heap = popcount_heap(n)
        super().__init__({"i": In(n)}, heap, bits, pipeline_every=pipeline_every, target=target,
                         primitives=primitives, final_adder=final_adder)

    @property
    def n(self):
        return self._n


@dataclass(frozen=True)
class Term:
    """One term of a :class:`WeightedSum`: a value of ``shape`` times ``2**shift``,
    subtracted when ``negate``."""
    shape: object
    shift: int = 0
    negate: bool = False


class WeightedSum(CompressorTree):
    """Exact sum of signed/unsigned terms, each shifted and optionally negated.

    ``terms`` is a list of :class:`Term` (or ``(shape, shift, negate)`` tuples, or plain
    shapes). Port ``i`` is a struct with fields ``t0, t1, ...`` of the term shapes; ``o`` has
    the narrowest shape that holds every possible sum.
    """

    def __init__(self, terms, *, pipeline_every=0, target="auto", primitives="auto",
                 final_adder="auto"):
        terms = [self._cast_term(k, term) for k, term in enumerate(terms)]
        if not terms:
            raise ValueError("terms must hold at least one term")
        self._terms = tuple(terms)
        layout = data.StructLayout({f"t{k}": term.shape for k, term in enumerate(terms)})
        staging = Signal(layout)
        heap = BitHeap()
        for k, term in enumerate(terms):
            heap.add_value(staging[f"t{k}"], shift=term.shift, negate=term.negate)
        super().__init__({"i": In(layout)}, heap, staging, pipeline_every=pipeline_every,
                         target=target, primitives=primitives, final_adder=final_adder)

    @staticmethod
    def _cast_term(index, term):
        if isinstance(term, tuple):
            term = Term(*term)
        elif not isinstance(term, Term):
            term = Term(term)
        try:
            shape = Shape.cast(term.shape)
        except TypeError:
            raise TypeError(f"terms[{index}].shape must be an Amaranth shape, not {term.shape!r}") from None
        if shape.width < 1:
            raise ValueError(f"terms[{index}] has zero width")
        check_int(f"terms[{index}].shift", term.shift, 0)
        return Term(shape, term.shift, bool(term.negate))

    @property
    def terms(self):
        return self._terms
