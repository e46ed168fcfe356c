"""Staircases: the integer thresholds of a monotone function, found by bisection.

Streamlining reduces every activation to one question per output channel: ``f`` maps an
integer (an accumulator, an input stream value, or the bit pattern of a float32 input)
through the reference's own float32 operations to the value the ONNX model computes; at
which integers does ``f`` step up, and to which values? :func:`staircase` answers by
bisection (``f`` is non-decreasing), :func:`fit_grid` then names the values as integers
``m`` on an evenly spaced grid ``a * m + b`` so the next layer can use them.
"""

from dataclasses import dataclass

import numpy as np

from .errors import GraphError
from .ir import dtype_bits, dtype_range, smallest_dtype

__all__ = ["staircase", "Grid", "fit_grid", "float_key", "key_float", "FLOAT_KEY_MAX"]

FLOAT_KEY_MAX = 0x7F7FFFFF  # the key of the largest finite float32


def float_key(x):
    """Order-preserving int64 key of float32 values (-0.0 and 0.0 share key 0)."""
    bits = np.asarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def key_float(key):
    """The float32 value (as float64) of an int64 key from :func:`float_key`."""
    key = np.asarray(key, dtype=np.int64)
    bits = np.where(key < 0, (-key) | 0x80000000, key).astype(np.uint32)
    return bits.view(np.float32).astype(np.float64)


def staircase(f, low, high, max_steps=4096, fanout=16):
    """The steps of a per-channel non-decreasing function on integer intervals.

    All channels and all steps are searched at once: each round evaluates ``f`` once, on a
    batch of points that splits every interval still known to hold a step into ``fanout``
    parts. Since ``f`` is non-decreasing, a part whose ends have equal values has no step,
    and a part of length one ends at a step. A 20-bit range takes 5 rounds.

    Parameters
    ----------
    f : callable
        Maps an int64 array ``(N, C)`` (``N`` points of each of ``C`` channels) to the
        float64 values ``(N, C)``.
    low, high : numpy.ndarray
        int64 ``(C,)``: the interval ``[low, high]`` of each channel.
    max_steps : int
        Give up (``GraphError``) when a channel has more distinct values.
    fanout : int
        Parts each interval is split into per round.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        Per channel: the ``starts`` (int64, ``starts[0] == low``) and the ``values`` (float64,
        increasing) of its steps: ``f(x) == values[i]`` for ``starts[i] <= x < starts[i+1]``.
    """
    low = np.asarray(low, dtype=np.int64)
    high = np.asarray(high, dtype=np.int64)
    channels = len(low)
    ends = f(np.stack([low, high]))
    found_at, found_value, found_channel = [], [], []
    # the intervals that hold a step: ends a < b, their values, their channel
    keep = ends[1] > ends[0]
    a, b = low[keep], high[keep]
    fa, fb, ch = ends[0][keep], ends[1][keep], np.flatnonzero(keep)
    while len(a):
        short = b - a == 1
        found_at.append(b[short])
        found_value.append(fb[short])
        found_channel.append(ch[short])
        a, b, fa, fb, ch = a[~short], b[~short], fa[~short], fb[~short], ch[~short]
        if not len(a):
            break
        inner = np.minimum(fanout - 1, b - a - 1)           # points inside each interval
        owner = np.repeat(np.arange(len(a)), inner)
        rank = np.arange(len(owner)) - np.repeat(np.cumsum(inner) - inner, inner)
        points = a[owner] + (b - a)[owner] * (rank + 1) // (inner[owner] + 1)
        # the batch: column c holds channel c's points, in order; the rest pad with low
        column = ch[owner]
        order = np.argsort(column, kind="stable")
        counts = np.bincount(column, minlength=channels)
        row = np.empty(len(order), dtype=np.int64)
        row[order] = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts,
                                                       counts)
        batch = np.tile(low, (int(counts.max()), 1))
        batch[row, column] = points
        values = f(batch)[row, column]
        # each interval's ends and points in order: consecutive pairs are the new parts
        sizes = inner + 2
        starts = np.cumsum(sizes) - sizes
        at = np.empty(int(sizes.sum()), dtype=np.int64)
        val = np.empty(len(at))
        at[starts], val[starts] = a, fa
        at[starts + sizes - 1], val[starts + sizes - 1] = b, fb
        inside = np.ones(len(at), dtype=bool)
        inside[starts] = inside[starts + sizes - 1] = False
        at[inside], val[inside] = points, values
        left = np.ones(len(at), dtype=bool)
        left[starts + sizes - 1] = False
        pair = np.flatnonzero(left)
        rises = val[pair + 1] > val[pair]
        pair = pair[rises]
        a, b, fa, fb = at[pair], at[pair + 1], val[pair], val[pair + 1]
        ch = np.repeat(ch, sizes)[pair]
        if len(ch) and np.bincount(ch, minlength=channels).max() > max_steps:
            raise GraphError(f"more than {max_steps} distinct output values")
    at = np.concatenate([np.zeros(0, np.int64), *found_at])
    value = np.concatenate([np.zeros(0), *found_value])
    channel = np.concatenate([np.zeros(0, np.int64), *found_channel])
    order = np.lexsort((at, channel))
    at, value, channel = at[order], value[order], channel[order]
    result = []
    for c in range(channels):
        mine = channel == c
        if mine.sum() + 1 > max_steps:
            raise GraphError(f"more than {max_steps} distinct output values")
        result.append((np.concatenate([[low[c]], at[mine]]).astype(np.int64),
                       np.concatenate([[ends[0][c]], value[mine]])))
    return result


@dataclass
class Grid:
    """Integer names ``m`` for the values of a staircase: ``value = scale * m + offset``.

    Attributes
    ----------
    dtype : str
        Datatype of ``m``: ``BIPOLAR`` (values ``-s``/``+s``, ``m`` = -1/+1), else the
        narrowest ``BINARY``/``UINTn``/``INTn`` holding ``[low, high]``.
    scale, offset : numpy.ndarray
        float64 ``(C,)``.
    m : list of numpy.ndarray
        Per channel, the int64 name of each step's value.
    low, high : int
        Range of ``m`` over all channels.
    """
    dtype: str
    scale: np.ndarray
    offset: np.ndarray
    m: list
    low: int
    high: int

    def table(self, values):
        """float64 ``(C, R)``: the value of each ``m`` of the datatype's whole range,
        ``m = dtype_range(dtype)[0] + column`` (exact reference values where a step has
        them, ``scale * m + offset`` elsewhere)."""
        low, high = dtype_range(self.dtype)
        ms = np.arange(low, high + 1)
        table = self.scale[:, None] * ms + self.offset[:, None]
        for c, (m, v) in enumerate(zip(self.m, values)):
            table[c, m - low] = v
        if self.dtype == "BIPOLAR":
            table[:, 1] = table[:, 0]  # m = 0 does not occur; keep the table monotone
        return table

    def thresholds(self, starts, high):
        """int64 thresholds ``(C, T)``: ``low + #{t : T[c][t] <= x} == m(x)`` (for
        ``BIPOLAR``, the count 0/1 is the bit). Levels a channel never reaches get
        ``high[c] + 1``."""
        targets = [1] if self.dtype == "BIPOLAR" else range(self.low + 1, self.high + 1)
        rows = []
        for c, (m, s) in enumerate(zip(self.m, starts)):
            row = []
            for target in targets:
                reached = np.flatnonzero(m >= target)
                row.append(s[reached[0]] if len(reached) else high[c] + 1)
            rows.append(row)
        return np.array(rows, dtype=np.int64).reshape(len(self.m), len(targets))


def _gcd(values, tolerance):
    """Greatest common divisor of positive floats, treating remainders within
    ``tolerance`` of 0 or of the divisor as 0 (float32 rounding of non-power-of-two
    scales)."""
    result = values[0]
    for value in values[1:]:
        a, b = max(result, value), min(result, value)
        while b > tolerance:
            r = np.fmod(a, b)
            if r <= tolerance or b - r <= tolerance:
                break
            a, b = b, r
        result = b
    return result


def _step(v):
    """The grid step of increasing values: the float gcd of their differences."""
    diffs = np.diff(v)
    return _refine(v, _gcd(list(diffs), 1e-4 * diffs.min()))


def _refine(v, step):
    """The step that spans ``v`` in a whole number of steps (averages out rounding)."""
    span = v[-1] - v[0]
    return span / max(1.0, np.round(span / step)) if span > 0 else step


def _integral(x, tolerance=1e-3):
    return np.all(np.abs(x - np.round(x)) <= tolerance)


def fit_grid(values):
    """Name the step values of every channel as integers on an evenly spaced grid.

    Parameters
    ----------
    values : list of numpy.ndarray
        Per channel, increasing float64 values.

    Returns
    -------
    Grid
        Raises ``GraphError`` (without a node name; callers add it) when some channel's
        values are not evenly spaced.
    """
    magnitudes = [np.abs(v).max() for v in values if len(v)]
    if all(len(v) <= 2 and np.all(v != 0) and (len(v) == 1 or v[0] == -v[1]) for v in values):
        scale = np.array([np.abs(v).max() for v in values])
        return Grid("BIPOLAR", scale, np.zeros(len(values)),
                    [np.sign(v).astype(np.int64) for v in values], -1, 1)
    steps = [_step(v) for v in values if len(v) > 1]
    common = min(steps) if steps else (max(magnitudes) or 1.0)
    if all(_integral(np.diff(v) / common) for v in values):
        scales = np.full(len(values), common)
    else:
        scales = np.array([_step(v) if len(v) > 1 else common for v in values])
    for v, step in zip(values, scales):
        if not _integral(np.diff(v) / step):
            raise GraphError(f"output values {np.round(v, 6).tolist()[:8]} are not evenly "
                             f"spaced")
    base = min(v[0] for v in values)
    candidates = [[0.0 if _integral(v / step) else v[0] for v, step in zip(values, scales)]]
    if all(_integral((v - base) / step) for v, step in zip(values, scales)):
        candidates.append([base] * len(values))  # levels counted up from the lowest
    best = None
    for offsets in candidates:
        names = [np.round((v - offset) / step).astype(np.int64)
                 for v, step, offset in zip(values, scales, offsets)]
        low = min(int(m.min()) for m in names)
        high = max(int(m.max()) for m in names)
        dtype = smallest_dtype(low, high)
        if best is None or dtype_bits(dtype) < dtype_bits(best[0]):
            best = (dtype, offsets, names, low, high)
    dtype, offsets, names, low, high = best
    return Grid(dtype, scales, np.array(offsets), names, low, high)
