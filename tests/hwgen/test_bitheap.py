# amaranth: UnusedElaboratable=no
import pytest
from amaranth.hdl import Signal, signed, unsigned

from hwgen.arith.bitheap import BitHeap
from hwgen.shapes import shape_for_range


@pytest.mark.parametrize("lo, hi, shape", [
    (0, 0, unsigned(1)), (0, 1, unsigned(1)), (0, 255, unsigned(8)), (0, 256, unsigned(9)),
    (-1, 0, signed(1)), (-128, 127, signed(8)), (-129, 0, signed(9)), (-1, 128, signed(9)),
])
def test_shape_for_range(lo, hi, shape):
    assert shape_for_range(lo, hi) == shape


def test_ranges_and_constant_correction():
    heap = BitHeap()
    heap.add_value(Signal(signed(4)))             # -8 .. 7
    heap.add_value(Signal(unsigned(3)), shift=2, negate=True)   # -28 .. 0
    heap.add_constant(5)
    assert (heap.min, heap.max) == (-8 - 28 + 5, 7 + 5)
    assert heap.shape == signed(6)
    # -2**3 (sign bit) - 7*4 (negated unsigned) + 5, modulo 2**6, lands in the columns
    constant = (-8 - 28 + 5) % 64
    assert len(heap.columns()) == 6
    bits = [1, 1, 2, 2, 1, 0]
    assert heap.heights() == [count + (constant >> c & 1) for c, count in enumerate(bits)]


def test_errors():
    heap = BitHeap()
    with pytest.raises(ValueError, match=r"column must be an integer >= 0, not -1"):
        heap.add_bit(Signal(), -1)
    with pytest.raises(ValueError, match=r"add_bit takes a 1-bit value, not 2 bits wide"):
        heap.add_bit(Signal(2))
    with pytest.raises(TypeError, match=r"shift must be an integer >= 0, not 1\.5"):
        heap.add_value(Signal(2), shift=1.5)
    with pytest.raises(TypeError, match=r"constant must be an integer, not 'x'"):
        heap.add_constant("x")
