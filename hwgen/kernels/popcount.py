"""Population count and weighted sums as stream kernels, on the compressor tree.

:class:`~hwgen.arith.popcount.Popcount` counts the ones among ``n`` bits with a compressor
tree (:mod:`hwgen.arith.popcount`); :class:`PopcountStream` and :class:`WeightedSumStream`
wrap a tree as stream kernels (one vector per beat) for the testbenches and the
``hwgen verilog`` command. The whole tree advances with a
:class:`~hwgen.control.StallPipeline`.
"""

from amaranth.hdl import Module, unsigned
from amaranth.lib import data

from ..arith.popcount import Popcount, Term, TreePlan, WeightedSum, popcount_heap
from ..arith.netlist import PRIMITIVES
from ..checks import check_int, check_one_of
from ..control import StreamedCore, stream_core
from ..kernel import PlannedComponent, StreamFormat, StreamKernel
from ..resources import Resources

__all__ = ["Popcount", "PopcountStream", "PopcountStreamPlan", "WeightedSum",
           "WeightedSumStream", "Term"]


class PopcountStreamPlan(StreamKernel):
    """The analysis of :class:`PopcountStream` (same parameters)."""

    def __init__(self, n, *, pipeline_every=0, target="auto", primitives="auto",
                 final_adder="auto"):
        self._n = check_int("n", n, 1)
        self._tree = TreePlan(popcount_heap(self._n)[1].heights(), pipeline_every=pipeline_every, target=target,
                              final_adder=final_adder)
        self._primitives = check_one_of("primitives", primitives, PRIMITIVES)
        self._final_adder = final_adder
        super().__init__()

    n = property(lambda self: self._n)
    tree = property(lambda self: self._tree, doc="The compressor tree's :class:`TreePlan`.")
    latency = property(lambda self: self._tree.latency,
                       doc="Cycles from an input beat to its output beat: the tree's.")
    cycles_per_frame = 1
    in_beats_per_frame = 1
    out_beats_per_frame = 1

    @property
    def input_format(self):
        return StreamFormat(unsigned(1), self._n)

    @property
    def output_format(self):
        return StreamFormat(popcount_heap(self._n)[1].shape, 1)

    def estimate(self):
        """The tree's estimate and the valid bit of every pipeline stage."""
        tree = self._tree.estimate()
        return Resources(luts=tree["luts"], ffs=tree["ffs"] + self.latency,
                         carry=tree["carry"])


class PopcountStream(PopcountStreamPlan, PlannedComponent):
    """Stream kernel: each input beat is ``n`` one-bit lanes, each output beat one lane with
    their count (``unsigned(n.bit_length())``).

    Parameters
    ----------
    n : int
        Bits per input beat.
    pipeline_every, target, primitives, final_adder
        As :class:`~hwgen.arith.popcount.CompressorTree`.
    """

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Popcount(
            self._n, pipeline_every=self._tree.pipeline_every, target=self._tree.target,
            primitives=self._primitives, final_adder=self._final_adder)
        stream_core(m, core, self.i, self.o)
        return m


PopcountStreamPlan.component = PopcountStream


class WeightedSumStream(StreamedCore):
    """Stream kernel: each input beat holds ``count`` lanes of ``shape``; the output beat is
    ``sum(+-lane[k] * 2**shifts[k])``, lane ``k`` subtracted where ``negates[k]``.

    Parameters
    ----------
    shape : ShapeLike
        Shape of every lane.
    count : int
        Lanes per beat.
    shifts, negates : sequence, optional
        Per-lane shift (default 0) and negation (default False).
    **kwargs
        As :class:`~hwgen.arith.popcount.CompressorTree`.
    """

    def __init__(self, shape, count, *, shifts=None, negates=None, **kwargs):
        check_int("count", count, 1)
        shifts = [0] * count if shifts is None else list(shifts)
        negates = [False] * count if negates is None else list(negates)
        for name, values in (("shifts", shifts), ("negates", negates)):
            if len(values) != count:
                raise ValueError(f"{name} must have count={count} entries, not {len(values)}")
        core = WeightedSum([Term(shape, shift, negate) for shift, negate in zip(shifts, negates)],
                           **kwargs)
        super().__init__(core, in_layout=data.ArrayLayout(shape, count))
