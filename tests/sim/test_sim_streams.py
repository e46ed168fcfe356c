# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.streams import beats_to_words, pack_beats, port_format, unpack_beats, words_to_beats
from sim_test_kernels import AddOne, PairSum


def test_pack_places_element_k_at_bits_k_w():
    assert pack_beats([[1, 2, 3]], 4) == [0x321]
    assert pack_beats([[0xAB, 0xCD]], 8) == [0xCDAB]
    assert pack_beats([[-1, 0, 1]], 3) == [0b001_000_111]


@pytest.mark.parametrize("width,signed", [(1, False), (3, True), (7, True), (8, False),
                                          (13, True), (63, False), (64, True), (64, False),
                                          (65, True), (100, False)])
def test_pack_unpack_round_trip(width, signed):
    rng = np.random.default_rng(width)
    lanes = 5
    lo = -(1 << (width - 1)) if signed else 0
    hi = (1 << (width - 1)) if signed else (1 << width)
    if width <= 62:
        x = rng.integers(lo, hi, size=(17, lanes))
    else:  # Python ints: numpy cannot draw these ranges
        x = np.array([[int(rng.integers(0, 1 << 62)) * (1 << (width - 62)) % (hi - lo) + lo
                       for _ in range(lanes)] for _ in range(17)], dtype=object)
        x[0, 0], x[0, 1] = lo, hi - 1
    words = pack_beats(x, width, signed=signed)
    assert all(0 <= w < 1 << (width * lanes) for w in words)
    back = unpack_beats(words, width, lanes, signed=signed)
    assert back.shape == (17, lanes)
    assert [[int(v) for v in row] for row in back] == [[int(v) for v in row] for row in x]


@given(st.data(), st.integers(1, 80), st.integers(1, 9), st.booleans())
def test_pack_unpack_property(data, width, lanes, signed):
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    rows = data.draw(st.lists(st.lists(st.integers(lo, hi), min_size=lanes, max_size=lanes),
                              max_size=6))
    x = np.array(rows, dtype=object).reshape(len(rows), lanes)
    words = pack_beats(x, width, signed=signed)
    for row, word in zip(rows, words):
        assert word == sum((v % (1 << width)) << (k * width) for k, v in enumerate(row))
    assert unpack_beats(words, width, lanes, signed=signed).tolist() == rows


def test_words_wider_than_64_bits():
    x = np.array([[-64, 63] * 6, [5] * 12])
    words = pack_beats(x, 7, signed=True)
    assert words[0].bit_length() > 64
    np.testing.assert_array_equal(unpack_beats(words, 7, 12, signed=True), x)


def test_pack_range_errors():
    with pytest.raises(ValueError, match=r"value 8 at beat 1, lane 0 does not fit signed 4-bit"):
        pack_beats([[0, 0], [8, 0]], 4, signed=True)
    with pytest.raises(ValueError, match="unsigned"):
        pack_beats([[-1]], 4, signed=False)
    with pytest.raises(ValueError, match="does not fit"):
        pack_beats([[16]], 4)
    with pytest.raises(TypeError, match="integers"):
        pack_beats([[0.5]], 4)
    with pytest.raises(ValueError, match="does not fit 2 lanes x 4 bits"):
        unpack_beats([0x100], 4, 2)


def test_port_helpers():
    k = AddOne(width=7, lanes=12, is_signed=True)
    assert port_format(k, "i") == (7, 12, True)
    x = np.arange(-12, 12).reshape(2, 12)
    np.testing.assert_array_equal(words_to_beats(k, "o", beats_to_words(k, "i", x)), x)
    with pytest.raises(ValueError, match=r"shape \(beats, 12\)"):
        beats_to_words(k, "i", np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="signed 7-bit"):
        beats_to_words(k, "i", np.full((1, 12), 64))
    assert port_format(PairSum(), "o") == (9, 2, False)
    with pytest.raises(ValueError, match="no stream port 'x'"):
        port_format(k, "x")
