"""Population count and weighted sums as stream kernels, on the compressor tree.

:class:`Popcount` counts the ones among ``n`` bits with a compressor tree
(:mod:`hwgen.arith.compressor`); :class:`PopcountStream` and :class:`WeightedSumStream` wrap a
tree as stream kernels (one vector per beat) for the testbenches and the ``hwgen verilog``
command.
"""

from amaranth.hdl import unsigned
from amaranth.lib import data

from ..arith.popcount import Popcount, Term, WeightedSum
from ..control import StreamedCore

__all__ = ["Popcount", "PopcountStream", "WeightedSum", "WeightedSumStream", "Term"]


class PopcountStream(StreamedCore):
    """Stream kernel: each input beat is ``n`` one-bit lanes, each output beat one lane with
    their count (``unsigned(n.bit_length())``). Parameters as :class:`Popcount`."""

    def __init__(self, n, **kwargs):
        core = Popcount(n, **kwargs)
        super().__init__(core, in_layout=data.ArrayLayout(unsigned(1), n))


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
        As :class:`~hwgen.arith.compressor.CompressorTree`.
    """

    def __init__(self, shape, count, *, shifts=None, negates=None, **kwargs):
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        shifts = [0] * count if shifts is None else list(shifts)
        negates = [False] * count if negates is None else list(negates)
        for name, values in (("shifts", shifts), ("negates", negates)):
            if len(values) != count:
                raise ValueError(f"{name} must have count={count} entries, not {len(values)}")
        core = WeightedSum([Term(shape, shift, negate) for shift, negate in zip(shifts, negates)],
                           **kwargs)
        super().__init__(core, in_layout=data.ArrayLayout(shape, count))
