"""Bit heap: the input of a compressor tree.

A bit heap is a set of columns; a bit in column ``c`` is worth ``2**c``. Any sum of
integer terms becomes a heap:

* an unsigned ``w``-bit value shifted by ``k`` puts bit ``i`` into column ``i + k``;
* a term with a negative weight ``-2**j`` (the sign bit of a signed value, or any bit of
  a negated term) uses ``-b * 2**j == (~b) * 2**j - 2**j``: the inverted bit goes into the
  heap and ``-2**j`` into an integer constant (the "constant correction" trick);
* the constant, reduced modulo ``2**width`` of the result, is added as constant one-bits.

The range of the sum is tracked exactly while terms are added, so the result shape
(:attr:`BitHeap.shape`) is the narrowest one that holds every possible sum; columns at or
above its width are dropped, which is exact because the sum is computed modulo
``2**width`` and is known to lie in the range.
"""

from amaranth.hdl import Const, Shape, Value

from ..checks import check_int
from ..shapes import shape_for_range

__all__ = ["BitHeap"]


class BitHeap:
    """Columns of weighted bits plus an integer constant, summing to an exact integer.

    Bits are Amaranth 1-bit values. Use :meth:`add_value`, :meth:`add_bit` and
    :meth:`add_constant` to build the heap, then :meth:`columns` to read the columns
    (constant included) for compression.

    Attributes
    ----------
    min, max : int
        Exact bounds of the sum over all input values.
    """

    def __init__(self):
        self._bits = {}  # column -> list of 1-bit Values
        self._constant = 0
        self.min = 0
        self.max = 0

    def add_bit(self, bit, column=0, *, negate=False):
        """Add one bit worth ``2**column`` (``-2**column`` with ``negate``)."""
        column = check_int("column", column, 0)
        bit = Value.cast(bit)
        if len(bit) != 1:
            raise ValueError(f"add_bit takes a 1-bit value, not {len(bit)} bits wide")
        weight = 1 << column
        if negate:
            self._bits.setdefault(column, []).append(~bit)
            self._constant -= weight
            self.min -= weight
        else:
            self._bits.setdefault(column, []).append(bit)
            self.max += weight
        return self

    def add_value(self, value, *, shift=0, negate=False):
        """Add a signed or unsigned value times ``2**shift`` (subtract it with ``negate``)."""
        shift = check_int("shift", shift, 0)
        value = Value.cast(value)
        shape = value.shape()
        for index in range(shape.width):
            is_sign = shape.signed and index == shape.width - 1
            self.add_bit(value[index], index + shift, negate=negate ^ is_sign)
        return self

    def add_constant(self, constant):
        """Add an integer constant."""
        constant = check_int("constant", constant)
        self._constant += constant
        self.min += constant
        self.max += constant
        return self

    @property
    def shape(self):
        """Narrowest shape holding every possible sum."""
        return shape_for_range(self.min, self.max)

    @property
    def width(self):
        return Shape.cast(self.shape).width

    def columns(self):
        """Columns ``0 .. width-1`` as lists of bits, the constant (mod ``2**width``) included."""
        width = self.width
        constant = self._constant % (1 << width)
        columns = []
        for column in range(width):
            bits = list(self._bits.get(column, []))
            if constant >> column & 1:
                bits.append(Const(1, 1))
            columns.append(bits)
        return columns

    def heights(self):
        """Number of bits in each column (constant included)."""
        return [len(bits) for bits in self.columns()]
