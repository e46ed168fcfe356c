"""hwgen.requant.multiply_shift: where it finds (M, R, S), the multiply-shift function equals
the reference's staircase on every integer of the range (exhaustively, up to 2**20 values);
where the staircase is no rounded affine function, it finds none."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from graph.levels import staircase
from hwgen.requant import apply_multiply_shift, multiply_shift


def quantize_linear(acc, scale, zero_point, lo, hi):
    """ONNX QuantizeLinear of a float32 product ``acc * scale``: round half to even, add the
    zero point, saturate."""
    y = np.round(np.float32(scale) * acc.astype(np.float32)) + zero_point
    return np.clip(y, lo, hi)


@settings(max_examples=80, deadline=None)
@given(scale=st.floats(float(np.float32(1e-4)), float(np.float32(0.9)), width=32),
       zero_point=st.integers(-20, 20), signed=st.booleans(),
       low=st.integers(-2**19, 0), width=st.integers(1, 2**20 - 1))
def test_found_parameters_equal_the_reference_everywhere(scale, zero_point, signed, low,
                                                         width):
    lo, hi = (-128, 127) if signed else (0, 255)
    high = low + width
    f = lambda x: quantize_linear(x, scale, zero_point, lo, hi).astype(np.float64)  # noqa
    (starts, values), = staircase(f, np.array([low]), np.array([high]))
    levels = values.astype(np.int64)
    found = multiply_shift(starts, levels, high, clamp=(lo, hi))
    x = np.arange(low, high + 1)
    want = f(x[:, None])[:, 0].astype(np.int64)
    if found is None:
        return          # float32 rounding made the steps irregular: thresholds stay
    multiplier, offset, shift = found
    assert 0 <= multiplier < 2**32
    got = apply_multiply_shift(x, multiplier, offset, shift, clamp=(lo, hi))
    assert np.array_equal(got, want)


def test_scales_with_and_without_exact_ties():
    """Scales whose float32 products never fall exactly on a half are found; where they do
    (0.25, or 0.1 whose float32 times 5 is exactly 0.5), round-half-to-even makes the step
    widths alternate, which no floor of an affine function follows: thresholds stay."""
    x = np.arange(-5000, 5001)
    for scale, exists in ((1 / 3, True), (0.0173, True), (0.0421, True), (0.25, False),
                          (0.1, False)):
        f = lambda v: quantize_linear(v, scale, 0, -128, 127).astype(np.float64)  # noqa
        (starts, values), = staircase(f, np.array([-5000]), np.array([5000]))
        found = multiply_shift(starts, values.astype(np.int64), 5000, clamp=(-128, 127))
        assert (found is not None) == exists, scale
        if found:
            assert np.array_equal(apply_multiply_shift(x, *found, clamp=(-128, 127)),
                                  f(x[:, None])[:, 0])
    # a floor by a power of two is a pure shift
    (starts, values), = staircase(lambda v: np.floor(v / 8.0), np.array([0]), np.array([999]))
    assert multiply_shift(starts, values.astype(np.int64), 999) == (1, 0, 3)


def test_irregular_steps_have_no_parameters():
    # steps of widths 3, 3, 3, 7, 3: no single slope
    starts = np.array([0, 3, 6, 9, 16, 19])
    assert multiply_shift(starts, np.arange(6), 25) is None
    assert multiply_shift([4], [7], 100) == (0, 7, 0)
    with pytest.raises(ValueError, match="must increase"):
        multiply_shift([0, 0], [0, 1], 5)
