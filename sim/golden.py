"""Numpy golden models, one per kernel. Each takes and returns integer arrays; the
hardware must match them bit for bit."""

import numpy as np

__all__ = ["popcount", "threshold", "weighted_sum"]


def popcount(bits):
    """Ones per row of a ``(vectors, n)`` 0/1 array."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise ValueError(f"bits must be a 2-D (vectors, n) array, not shape {bits.shape}")
    if bits.size and not np.isin(bits, (0, 1)).all():
        raise ValueError("bits must hold only 0 and 1")
    return bits.astype(np.int64).sum(axis=1)


def weighted_sum(values, shifts=None, negates=None):
    """Per row of a ``(vectors, terms)`` integer array: ``sum(+-v[k] * 2**shifts[k])``, term
    ``k`` subtracted where ``negates[k]``. Exact (Python integers) for any widths."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D (vectors, terms) array, not shape {values.shape}")
    terms = values.shape[1]
    shifts = [0] * terms if shifts is None else list(shifts)
    negates = [False] * terms if negates is None else list(negates)
    signs = [-1 if negate else 1 for negate in negates]
    return np.array([sum(sign * int(v) << shift for v, shift, sign in zip(row, shifts, signs))
                     for row in values], dtype=object)


def threshold(values, thresholds, bias=0):
    """Multi-threshold activation: ``bias + #{i : thresholds[c][i] <= values[..., c]}``.

    ``values`` has shape ``(..., C)``; ``thresholds`` shape ``(C, T)`` or ``(1, T)`` (shared).
    """
    values = np.asarray(values, dtype=np.int64)
    thresholds = np.asarray(thresholds, dtype=np.int64)
    if thresholds.ndim != 2 or thresholds.shape[0] not in (1, values.shape[-1]):
        raise ValueError(f"thresholds of shape {thresholds.shape} do not fit values of shape "
                         f"{values.shape}")
    return bias + (thresholds <= values[..., None]).sum(axis=-1)
