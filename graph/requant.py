"""Exact multiply-shift requantization: ``floor((x * M + R) / 2**S)`` in place of thresholds.

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

__all__ = ["multiply_shift", "apply_multiply_shift", "MAX_SHIFT"]

#: The largest shift tried.
MAX_SHIFT = 48


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
    for shift in range(MAX_SHIFT + 1):
        lo, hi = _bounds(s, e, m, shift, rows, cols)
        if hi is not None and lo > hi:
            continue
        if lo >= limit:
            return None                 # larger shifts only need larger multipliers
        multiplier = lo
        offset = max(int(m[i]) * (1 << shift) - int(s[i]) * multiplier for i in rows)
        top = min((int(m[j]) + 1) * (1 << shift) - 1 - int(e[j]) * multiplier for j in cols)
        if offset <= top:
            return multiplier, offset, shift
    return None


def apply_multiply_shift(x, multiplier, offset, shift, clamp=(None, None)):
    """``clamp(floor((x * M + R) / 2**S))`` exactly, for int64 ``x`` (Python integers
    inside, so no product overflows)."""
    x = np.asarray(x, dtype=np.int64)
    flat = [(int(v) * multiplier + offset) >> shift for v in x.ravel()]
    y = np.array(flat, dtype=np.int64).reshape(x.shape)
    low, high = clamp
    return np.clip(y, low if low is not None else y.min(initial=0),
                   high if high is not None else y.max(initial=0))
