"""hwgen.requant: where multiply_shift finds (M, R, S), the multiply-shift function equals the
reference's staircase on every integer of the range (exhaustively, up to 2**20 values); where
the staircase is no rounded affine function, it finds none. With corrected points
(multiply_shift_with_exceptions, fit_thresholds), the same holds for QDQ chains of awkward
float32 scales, per channel and shared; and the MVAU fuses Requantize where its estimate is
smaller."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from graph.levels import staircase
from hwgen.requant import MAX_EXCEPTIONS, apply_multiply_shift, fit_thresholds, \
    multiply_shift, multiply_shift_with_exceptions


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


# --- corrected points and whole layers (hwgen.requant.multiply_shift_with_exceptions,
# fit_thresholds) -------------------------------------------------------------------------

def dequantized_chain(acc, in_scale, w_scale, bias, out_scale, zero_point, lo, hi):
    """What a QDQ graph computes from an integer accumulator, all in float32: dequantize
    (``acc * (s_in * s_w)``), add the float bias, QuantizeLinear by ``s_out`` (round half to
    even), add the zero point, saturate."""
    f32 = np.float32
    y = acc.astype(f32) * (f32(in_scale) * f32(w_scale)) + f32(bias)
    return np.clip(np.round(y / f32(out_scale)) + zero_point, lo, hi)


def thresholds_of(f, low, high):
    """Thresholds of a non-decreasing integer staircase ``f`` on ``[low, high]`` (levels
    ``f(low) ..``): for each level above the lowest, the first ``x`` reaching it; levels
    never reached sit at ``high + 1``."""
    (starts, values), = staircase(lambda x: f(x).astype(np.float64), np.array([low]),
                                  np.array([high]))
    values = values.astype(np.int64)
    base = int(values[0])
    thresholds = []
    for level, start in zip(values[1:], starts[1:]):
        thresholds += [int(start)] * int(level - base - len(thresholds))
    return thresholds, base


def check_fit_equals_thresholds(thresholds, bias, low, high, *, exhaustive):
    """fit_thresholds, then sim.golden.requantize of the fit against sim.golden.threshold:
    on every integer of every channel's range (``exhaustive``), else at both sides of every
    threshold and of every corrected point, and at the range ends."""
    from sim import golden
    fit = fit_thresholds(thresholds, bias, low, high)
    if fit is None:
        return None
    t = np.asarray(thresholds)
    channels = len(low)
    for c in range(channels):
        row = t[0 if len(t) == 1 else c]
        k = 0 if len(fit["multiplier"]) == 1 else c
        exceptions = fit.get("exceptions", [[]] * len(fit["multiplier"]))[k]
        if exhaustive:
            x = np.arange(low[c], high[c] + 1)
        else:
            points = [low[c], high[c]] + [v + d for v in row for d in (-1, 0)] + \
                [e + d for e, _ in exceptions for d in (-1, 0, 1)]
            x = np.unique(np.clip(points, low[c], high[c]))
        want = golden.threshold(x[:, None], row[None], bias)[:, 0]
        got = golden.requantize(x[:, None], fit["multiplier"][k], fit["offset"][k],
                                fit["shift"][k], fit["low"], fit["high"],
                                exceptions=[exceptions])[:, 0]
        assert np.array_equal(got, want), c
        assert 0 <= fit["multiplier"][k] < 2**32
        assert len(exceptions) <= MAX_EXCEPTIONS
    return fit


scales = st.floats(float(np.float32(1e-3)), float(np.float32(0.7)), width=32)


@settings(max_examples=60, deadline=None)
@given(in_scale=scales, w_scale=scales,
       out_scale=st.floats(float(np.float32(0.01)), 2.0, width=32),
       bias=st.floats(-3, 3, width=32), zero_point=st.integers(-20, 20),
       signed=st.booleans(), low=st.integers(-2**19, 0), width=st.integers(300, 2**20 - 1))
def test_corrected_fit_equals_a_qdq_chain_everywhere(in_scale, w_scale, out_scale, bias,
                                                     zero_point, signed, low, width):
    """Awkward float32 scales through a whole dequantize-add-quantize chain: wherever a fit
    is found (with corrections), it equals the reference on every integer of the range."""
    lo, hi = (-128, 127) if signed else (0, 255)
    high = low + width

    def f(x):
        return dequantized_chain(np.asarray(x), in_scale, w_scale, bias, out_scale,
                                 zero_point, lo, hi)
    thresholds, base = thresholds_of(f, low, high)
    if not thresholds:
        return
    check_fit_equals_thresholds([thresholds], base, [low], [high], exhaustive=True)


def test_corrections_are_found_for_most_qdq_layers():
    """A seeded sample of per-channel QDQ requantizations of 22-bit accumulators: every one
    has a fit (no float ties at exact halves there), most of them with corrections, each
    checked at every threshold and corrected point."""
    rng = np.random.default_rng(7)
    found, corrected = 0, 0
    for _ in range(40):
        in_scale, w_scale = rng.uniform(1e-3, 2e-2, 2)
        out_scale = rng.uniform(0.02, 0.2)
        low, high = -2**21, 2**21

        def f(x):
            return dequantized_chain(np.asarray(x), in_scale, w_scale, rng.uniform(-1, 1) * 0,
                                     out_scale, 0, 0, 255)
        thresholds, base = thresholds_of(f, low, high)
        fit = check_fit_equals_thresholds([thresholds], base, [low], [high], exhaustive=False)
        found += fit is not None
        corrected += fit is not None and bool(fit.get("exceptions"))
    assert found >= 36
    assert corrected >= 1


def test_layer_fit_per_channel_and_shared():
    rng = np.random.default_rng(3)
    channels = 6
    low = rng.integers(-40000, -10000, channels)
    high = rng.integers(10000, 40000, channels)
    rows = []
    for c in range(channels):
        scale = np.float32(rng.uniform(0.004, 0.01))
        thresholds, base = thresholds_of(
            lambda x: quantize_linear(np.asarray(x), scale, 3, -128, 127),  # noqa: B023
            int(low.min()), int(high.max()))
        rows.append(thresholds + [int(high.max()) + 1] * (255 - len(thresholds)))
    fit = check_fit_equals_thresholds(np.array(rows), -128, low, high, exhaustive=True)
    assert fit is not None and len(fit["multiplier"]) == channels
    assert (fit["low"], fit["high"]) == (-128, 127)
    shared = check_fit_equals_thresholds(np.array(rows[:1]), -128, low, high, exhaustive=True)
    assert len(shared["multiplier"]) == 1
    assert fit_thresholds(np.array(rows), -128, low, high) == fit       # kept, and a copy


def test_exact_ties_keep_the_thresholds():
    """Scale 0.25: round half to even makes every other step one wider; far more than
    MAX_EXCEPTIONS steps leave the line, so there is no fit."""
    f = lambda x: quantize_linear(np.asarray(x), 0.25, 0, -128, 127)  # noqa: E731
    thresholds, base = thresholds_of(f, -600, 600)
    assert fit_thresholds([thresholds], base, [-600], [600]) is None
    # a few displaced steps are corrected; one displaced by two is not
    starts = np.arange(0, 1000, 10)
    starts[[20, 50]] += [1, -1]
    m, r, s, exceptions = multiply_shift_with_exceptions(starts, np.arange(100), 999)
    assert exceptions == [(200, -1), (499, 1)]     # one late step, one early
    x = np.arange(0, 1000)
    want = np.searchsorted(starts, x, side="right") - 1
    got = apply_multiply_shift(x, m, r, s)
    for e, d in exceptions:
        got[e] += d
    assert np.array_equal(got, want)
    starts[70] += 2
    assert multiply_shift_with_exceptions(starts, np.arange(100), 999) is None


def test_mvau_chooses_requantize_by_estimate_and_names_errors():
    from amaranth.hdl import signed, unsigned
    from hwgen.kernels.mvau import MVAUPlan
    rng = np.random.default_rng(11)
    weights = rng.integers(-127, 128, (16, 64))
    low = np.minimum(weights * 0, weights * 255).sum(axis=1)
    high = np.maximum(weights * 0, weights * 255).sum(axis=1)
    rows = []
    for c in range(16):
        scale = np.float32(rng.uniform(0.0005, 0.002))
        thresholds, base = thresholds_of(
            lambda x: quantize_linear(np.asarray(x), scale, 0, 0, 255),  # noqa: B023
            int(low.min()), int(high.max()))
        rows.append(thresholds + [int(high.max()) + 1] * (255 - len(thresholds)))
    params = dict(mw=64, mh=16, pe=2, simd=8, weights=weights, input_shape=unsigned(8),
                  weight_shape=signed(8), thresholds=np.array(rows))
    auto = MVAUPlan(**params)
    plans = {a: MVAUPlan(**params, activation=a) for a in ("thresholds", "requantize")}
    costs = {a: p.threshold.estimate().lut_equivalent(ffs=0) for a, p in plans.items()}
    assert auto.activation == min(costs, key=costs.get) == "requantize"
    assert auto.resolved_choices()["activation"] == "requantize"
    assert plans["thresholds"].estimate().bram18 >= 5 * max(1, auto.estimate().bram18)
    with pytest.raises(ValueError, match=r"activation='requantize' needs thresholds"):
        MVAUPlan(**{**params, "thresholds": None}, activation="requantize")
    with pytest.raises(ValueError, match=r"activation must be one of 'auto', 'thresholds', "
                                         r"'requantize', not 'relu'"):
        MVAUPlan(**params, activation="relu")
    ties = thresholds_of(lambda x: quantize_linear(np.asarray(x), 0.25, 0, 0, 255),
                         int(low.min()), int(high.max()))[0]
    with pytest.raises(ValueError, match=r"activation='requantize': no multiply-shift"):
        MVAUPlan(**{**params, "thresholds": np.array([ties])}, activation="requantize")
    assert MVAUPlan(**{**params, "thresholds": np.array([ties])}).activation == "thresholds"
