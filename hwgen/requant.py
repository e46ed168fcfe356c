"""Exact multiply-shift requantization: ``floor((x * M + R) / 2**S)`` in place of thresholds
(the constants of :class:`hwgen.kernels.requantize.Requantize`).

A layer's output levels are a staircase of its accumulator (:func:`graph.levels.staircase`):
level ``m[i]`` on ``[starts[i], starts[i+1])``. An 8-bit output needs 255 thresholds per
channel in memory; when the staircase is that of an affine function rounded down, an integer
multiplier, an offset and a shift give the same levels with no memory at all.
:func:`multiply_shift` finds the smallest shift ``S`` (and then the smallest ``M``) for which
``floor((x * M + R) / 2**S)`` equals the staircase on its whole interval, or says there is
none. It is exact by construction: the function is non-decreasing in ``x`` (``M >= 0``), so
it equals the staircase everywhere iff it does at both ends of every step, which are the
constraints solved. No rounding of a float scale is involved.

For every pair of steps ``i, j`` the constraints
``m[i] * 2**S <= s[i] * M + R`` and ``e[j] * M + R <= (m[j] + 1) * 2**S - 1`` (``s``, ``e``:
the first and last ``x`` of a step) leave an ``R`` iff
``M * (e[j] - s[i]) <= (m[j] + 1 - m[i]) * 2**S - 1``: an upper bound on ``M`` where
``e[j] > s[i]``, a lower one where ``e[j] < s[i]``. The feasible ``M`` form an interval.
"""

import numpy as np

__all__ = ["multiply_shift", "multiply_shift_with_exceptions", "apply_multiply_shift",
           "fit_thresholds", "MAX_SHIFT", "MAX_EXCEPTIONS"]

#: The largest shift tried.
MAX_SHIFT = 48
#: The most corrected points per channel (:func:`multiply_shift_with_exceptions`).
MAX_EXCEPTIONS = 8


def _bounds(s, e, m, shift, rows, cols):
    """``(lo, hi)``: the interval of feasible multipliers at ``shift`` (``lo > hi`` when
    empty), from the lower constraints of steps ``rows`` and the upper ones of ``cols``."""
    span = e[None, cols] - s[rows, None]                  # [i, j]: e[j] - s[i]
    room = (m[None, cols] + 1 - m[rows, None]) * (1 << shift) - 1
    upper = span > 0
    lower = span < 0
    if np.any((span == 0) & (room < 0)):
        return 1, 0
    hi = np.min(room[upper] // span[upper]) if upper.any() else None
    # M * span <= room with span < 0:  M >= ceil(room / span) = -floor(room / -span)
    lo = np.max(-(room[lower] // -span[lower])) if lower.any() else 0
    return max(int(lo), 0), None if hi is None else int(hi)


def multiply_shift(starts, levels, high, max_multiplier_bits=32, clamp=(None, None)):
    """Integers ``(M, R, S)`` with ``clamp(floor((x * M + R) / 2**S)) == level(x)`` on the
    whole interval of a staircase, or None.

    Parameters
    ----------
    starts : array of int
        Increasing: ``starts[0]`` is the interval's low end, ``starts[i]`` the first ``x`` of
        level ``levels[i]``.
    levels : array of int
        Increasing integer levels.
    high : int
        The interval's high end.
    max_multiplier_bits : int
        ``M`` must be below ``2**max_multiplier_bits``.
    clamp : (int or None, int or None)
        The output's saturation ``(lo, hi)``: a first level equal to ``lo`` (a last equal to
        ``hi``) may be reached below (above) its step, so its far end is not constrained.

    Returns
    -------
    tuple or None
        ``(M, R, S)`` as Python ints, the smallest ``S`` and, for it, the smallest ``M``.
    """
    s = np.asarray(starts, dtype=np.int64)
    m = np.asarray(levels, dtype=np.int64)
    if len(s) != len(m) or not len(s):
        raise ValueError("starts and levels must be non-empty and of the same length")
    if np.any(np.diff(s) <= 0) or np.any(np.diff(m) <= 0) or int(high) < int(s[-1]):
        raise ValueError("starts and levels must increase, and high must be >= starts[-1]")
    if int(m[-1] - m[0]) >= 1 << 12 or int(high) - int(s[0]) >= 1 << 40:
        return None
    if len(s) == 1:
        return 0, int(m[0]), 0
    e = np.append(s[1:] - 1, np.int64(high))
    rows = np.arange(1 if clamp[0] is not None and m[0] == clamp[0] else 0, len(s))
    cols = np.arange(0, len(s) - (1 if clamp[1] is not None and m[-1] == clamp[1] else 0))
    limit = 1 << max_multiplier_bits

    def bounds(shift):
        lo, hi = _bounds(s, e, m, shift, rows, cols)
        return (lo, hi) if hi is None or lo <= hi else None
    # feasibility only grows with the shift ((M, R) at S gives (2M, 2R) at S + 1): bisect
    if bounds(MAX_SHIFT) is None:
        return None
    low, high_shift = -1, MAX_SHIFT
    while high_shift - low > 1:
        mid = (low + high_shift) // 2
        if bounds(mid) is None:
            low = mid
        else:
            high_shift = mid
    shift = high_shift
    multiplier = bounds(shift)[0]
    if multiplier >= limit:
        return None                     # larger shifts only need larger multipliers
    offset = max(int(m[i]) * (1 << shift) - int(s[i]) * multiplier for i in rows)
    return multiplier, offset, shift


def multiply_shift_with_exceptions(starts, levels, high, max_multiplier_bits=32,
                                   clamp=(None, None), max_exceptions=MAX_EXCEPTIONS):
    """:func:`multiply_shift` with up to ``max_exceptions`` corrected points, or None.

    A staircase computed in float32 (``round(acc * scale)`` after a few float operations)
    is that of an affine function rounded down except at the rare accumulators where the
    float result lands within its rounding error of a tie: there a step starts one
    accumulator early or late. Such a staircase has no exact multiply-shift, but it is one
    with a correction of ``+1`` or ``-1`` at one accumulator per displaced step.

    The displaced steps are found from the residuals of the step starts against their
    least-squares line: a floor-affine staircase has all of them within a band narrower
    than 1, so the steps outside the densest such band are moved by one into it (a step
    further away means no fit), and :func:`multiply_shift` must then fit the moved
    staircase exactly. The result is exact by the same argument as there: the function
    equals the moved staircase everywhere, and the moved staircase differs from the given
    one exactly at the corrected points.

    Returns
    -------
    tuple or None
        ``(M, R, S, exceptions)``, ``exceptions`` a list of ``(x, delta)`` with ``delta``
        +1 or -1: the staircase is ``clamp(floor((x * M + R) / 2**S)) + delta`` at those
        ``x`` and ``clamp(floor((x * M + R) / 2**S))`` elsewhere.
    """
    fit = multiply_shift(starts, levels, high, max_multiplier_bits, clamp)
    if fit is not None:
        return (*fit, [])
    s = np.asarray(starts, dtype=np.int64)
    m = np.asarray(levels, dtype=np.int64)
    if len(s) < 4 or max_exceptions < 1:
        return None
    inner_s, inner_m = s[1:].astype(np.float64), m[1:].astype(np.float64)
    design = np.vstack([inner_m, np.ones_like(inner_m)]).T
    coefficients = np.linalg.lstsq(design, inner_s, rcond=None)[0]
    residual = inner_s - design @ coefficients
    order = np.sort(residual)
    ends = np.searchsorted(order, order + (1 - 1e-9), side="right")
    best = int(np.argmax(ends - np.arange(len(order))))
    band_low, band_high = order[best], order[ends[best] - 1]
    outside = np.nonzero((residual < band_low) | (residual > band_high))[0]
    deltas = np.where(residual[outside] < band_low, 1, -1)
    after = residual.copy()
    after[outside] += deltas
    if len(outside) > max_exceptions or after.max() - after.min() >= 1:
        return None                     # too many displaced steps, or one by more than one
    moved = s.copy()
    moved[outside + 1] += deltas
    # the true staircase, at the one accumulator where the moved one differs from it
    exceptions = [(int(s[k + 1]), 1) if d > 0 else (int(s[k + 1]) - 1, -1)
                  for k, d in zip(outside, deltas)]
    if np.any(np.diff(moved) <= 0) or int(moved[-1]) > int(high):
        return None
    fit = multiply_shift(moved, m, high, max_multiplier_bits, clamp)
    return None if fit is None else (*fit, sorted(exceptions))


def apply_multiply_shift(x, multiplier, offset, shift, clamp=(None, None)):
    """``clamp(floor((x * M + R) / 2**S))`` exactly, for int64 ``x`` (Python integers
    inside, so no product overflows)."""
    x = np.asarray(x, dtype=np.int64)
    flat = [(int(v) * multiplier + offset) >> shift for v in x.ravel()]
    y = np.array(flat, dtype=np.int64).reshape(x.shape)
    low, high = clamp
    return np.clip(y, low if low is not None else y.min(initial=0),
                   high if high is not None else y.max(initial=0))


def _staircase_of_thresholds(thresholds, bias, low, high):
    """``(starts, levels)`` of ``bias + #{t in thresholds : t <= x}`` on ``[low, high]``."""
    t = np.asarray(thresholds, dtype=np.int64)
    inner = np.unique(t[(t > low) & (t <= high)])
    starts = np.concatenate([[low], inner]).astype(np.int64)
    levels = bias + np.searchsorted(t, starts, side="right")
    return starts, levels


_FITS = {}
#: Layer fits kept (the oldest goes first).
_KEPT_FITS = 256


def fit_thresholds(thresholds, bias, low, high, max_multiplier_bits=32,
                   max_exceptions=MAX_EXCEPTIONS):
    """Multiply-shift constants equal to a multi-threshold activation on the accumulators'
    reachable range, or None.

    Parameters
    ----------
    thresholds : array of int, shape ``(C, T)`` or ``(1, T)``
        Sorted per row; the activation is ``bias + #{t : thresholds[c][t] <= x}``.
    bias : int
    low, high : array of int, shape ``(C,)``
        Per channel, the smallest and largest accumulator that can occur.
    max_multiplier_bits : int

    Returns
    -------
    dict or None
        ``multiplier``, ``offset``, ``shift`` (lists: one entry, or one per channel) and
        ``low``/``high`` (the output levels ``bias`` and ``bias + T``), and where needed
        ``exceptions`` (per channel a list of ``(x, delta)``,
        :func:`multiply_shift_with_exceptions`): the keywords of
        :class:`hwgen.kernels.requantize.Requantize`, with
        ``clamp(floor((x * M + R) / 2**S), low, high)`` (plus ``delta`` at an exception)
        equal to the activation on every ``x`` in ``[low[c], high[c]]`` of every channel
        ``c``. Shared thresholds give one
        fit on the union of the ranges. None where some channel has no fit with
        ``M < 2**max_multiplier_bits``. Results are kept, so a layer is fitted once however
        many foldings are tried.
    """
    t = np.asarray(thresholds, dtype=np.int64)
    low = np.asarray(low, dtype=np.int64).reshape(-1)
    high = np.asarray(high, dtype=np.int64).reshape(-1)
    key = (t.shape, t.tobytes(), int(bias), low.tobytes(), high.tobytes(), max_multiplier_bits,
           max_exceptions)
    if key not in _FITS:
        if len(_FITS) >= _KEPT_FITS:
            del _FITS[next(iter(_FITS))]            # the oldest
        _FITS[key] = _fit(t, int(bias), low, high, max_multiplier_bits, max_exceptions)
    result = _FITS[key]
    return None if result is None else {k: list(v) if isinstance(v, list) else v
                                        for k, v in result.items()}


def _fit(t, bias, low, high, max_multiplier_bits, max_exceptions):
    count = t.shape[1]
    clamp = (bias, bias + count)
    if t.shape[0] == 1:
        rows = [(t[0], int(low.min()), int(high.max()))]
    else:
        rows = [(t[c], int(low[c]), int(high[c])) for c in range(t.shape[0])]
    found = []
    for row, lo, hi in rows:
        starts, levels = _staircase_of_thresholds(row, bias, lo, hi)
        fit = multiply_shift_with_exceptions(starts, levels, hi, max_multiplier_bits,
                                             clamp=clamp, max_exceptions=max_exceptions)
        if fit is None:
            return None
        found.append(fit)
    result = {"multiplier": [f[0] for f in found], "offset": [f[1] for f in found],
              "shift": [f[2] for f in found], "low": clamp[0], "high": clamp[1]}
    if any(f[3] for f in found):
        result["exceptions"] = [f[3] for f in found]
    return result

