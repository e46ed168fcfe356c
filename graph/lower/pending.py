"""The pending tensor: integers plus the chain of reference operations that gives their
values (see :mod:`graph.lower`), and the integer streams between layers."""

from dataclasses import dataclass, field

import numpy as np

from ..ir import dtype_range

__all__ = ["Stream", "Step", "Pending", "bipolar_fixed", "table_values"]

MAX_AFFINE_SAMPLES = 4097


@dataclass
class Stream:
    """An integer stream between layers.

    Parameters
    ----------
    dtype : str
        The datatype of its elements.
    channels : int
        Elements per frame.
    values : callable
        The reference's float value of each decoded integer: int64 ``(L, C)`` -> float64
        ``(L, C)``.
    edge : str
        The IR edge that carries it: the producing layer's name, or ``"input"``.
    """
    dtype: str
    channels: int
    values: object
    edge: str = "input"

    def range(self):
        """Decoded ``(low, high)`` int64 arrays ``(C,)``."""
        low, high = dtype_range(self.dtype)
        return (np.full(self.channels, low, dtype=np.int64),
                np.full(self.channels, high, dtype=np.int64))

    def affine(self):
        """``(a, b)`` float64 ``(C,)`` with ``values(x) == a * x + b`` on the stream's
        integers, or ``(None, None)`` when the values are not affine."""
        low, high = self.range()
        return _fit_affine(self.values, low, high, self.dtype)


@dataclass
class Step:
    """One element-wise node of a pending chain.

    Parameters
    ----------
    node : onnx.NodeProto
        The node.
    kind : str
        ``"affine"``, ``"monotone"`` or ``"quantizer"``.
    runner : callable
        Runs the node on a batch of its input tensor.
    index : numpy.ndarray
        ONNX tensor element -> stream element, in the shape of the tensor.
    """
    node: object
    kind: str
    runner: object
    index: np.ndarray

    def __call__(self, values):
        flat = self.index.ravel()
        batch = values.shape[0]
        x = values[:, flat].reshape((batch,) + self.index.shape[1:])
        y = self.runner(x).reshape(batch, -1)
        out = np.empty_like(values)
        out[:, flat] = y
        return out


@dataclass
class Pending:
    """The activation the next node consumes (see :mod:`graph.lower`).

    Parameters
    ----------
    source : str
        ``"acc"`` (an MVAU accumulator), ``"stream"`` (a layer's output stream or an integer
        network input) or ``"input"`` (a float network input).
    tensor : str
        The ONNX tensor it is.
    index : numpy.ndarray
        ONNX tensor element -> stream element (or accumulator row).
    stream : Stream
        The stream (for ``acc``: the MVAU's input stream); ``None`` for ``input``.
    weights, acc_scale, acc_offset, acc_float32, node, weight_type
        For ``acc``: the integer weights ``(C, K)``, the float value ``acc_scale * acc +
        acc_offset`` that the ONNX MatMul computes (rounded to float32 when
        ``acc_float32``), the MatMul node and the declared weight datatype.
    steps : list of Step
        The element-wise nodes applied since.
    conv : dict
        For the accumulator of a convolution: ``{"vectors": output pixels, "kernel":
        (K_h, K_w), "depthwise": bool}``; ``weights`` is then ``(OC, K)`` (one row per
        output channel) and the accumulator's elements, like ``acc_scale`` and
        ``acc_offset``, are in stream (NHWC) order. ``None`` for a MatMul.
    """
    source: str
    tensor: str
    index: np.ndarray
    stream: Stream = None
    weights: np.ndarray = None
    acc_scale: np.ndarray = None
    acc_offset: np.ndarray = None
    acc_float32: bool = True
    node: object = None
    weight_type: str = None
    steps: list = field(default_factory=list)
    conv: dict = None

    @property
    def channels(self):
        return self.index.size

    def base(self, x):
        """Reference values of the integers ``x`` before the steps."""
        if self.source == "acc":
            y = self.acc_scale * x + self.acc_offset
            return y.astype(np.float32).astype(np.float64) if self.acc_float32 else y
        if self.source == "stream":
            return self.stream.values(x)
        return x

    def evaluate(self, x):
        """Reference values ``(L, C)`` (float64) of the integers ``x`` ``(L, C)``."""
        y = self.base(x)
        for step in self.steps:
            y = step(y)
        return y

    def by_element(self):
        """:meth:`evaluate` for integers (and values) in tensor element order: the row order
        of the MVAU that materializes an accumulator (the index as it is now)."""
        perm = self.index.ravel()
        inverse = np.argsort(perm)

        def evaluate(x):
            return self.evaluate(x[:, inverse])[:, perm]
        return evaluate


def bipolar_fixed(values):
    """``values`` of a BIPOLAR stream that also answer for 0 (as -1), keeping them
    monotone."""
    def fixed(x):
        return values(np.where(x == 0, -1, x))
    return fixed


def table_values(table, low):
    """Stream values from a per-channel ``table`` of the values of ``low, low + 1, ...``."""
    def values(x):
        index = np.clip(x - low, 0, table.shape[1] - 1)
        return np.take_along_axis(np.broadcast_to(table, (x.shape[0],) + table.shape),
                                  index[..., None], axis=2)[..., 0]
    return values


def _samples(low, high, dtype):
    if dtype == "BIPOLAR":
        return np.array([-1, 1])
    lo, hi = int(low.min()), int(high.max())
    if hi - lo + 1 <= MAX_AFFINE_SAMPLES:
        return np.arange(lo, hi + 1)
    inner = np.linspace(lo, hi, MAX_AFFINE_SAMPLES - 3).round().astype(np.int64)
    return np.unique(np.concatenate([inner, [lo, hi, 0]]))


def _fit_affine(values, low, high, dtype):
    xs = _samples(low, high, dtype)
    channels = len(low)
    grid = np.broadcast_to(xs[:, None], (len(xs), channels))
    y = values(grid)
    span = xs[-1] - xs[0]
    a = (y[-1] - y[0]) / span if span else np.zeros(channels)
    b = y[0] - a * xs[0]
    error = np.abs(a * grid + b - y)
    if np.any(error > 1e-6 * np.maximum(np.abs(y), 1e-30).max(axis=0)):
        return None, None
    # exact values when they are exact (power-of-two scales, integers)
    if dtype == "BIPOLAR" or xs[0] > 0 or xs[-1] < 0:
        return a, b
    exact_b = values(np.zeros((1, channels), dtype=np.int64))[0]
    b = np.where(np.abs(exact_b - b) <= 1e-9 * np.maximum(np.abs(y).max(axis=0), 1), exact_b, b)
    return a, b
