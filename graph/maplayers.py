"""IR layers of the convolutional kernels: feature maps streamed in NHWC order.

A feature map of ``H x W`` pixels and ``C`` channels is a frame of ``H * W * C`` stream
elements, channels fastest (as FINN streams them). Each layer here is the IR layer of one
kernel registry entry (:data:`hwgen.registry.KERNELS`) and offers what :mod:`graph.ir`'s
layers offer (``plan``, ``fold_choices``, ``fold_keys``, ``products``, ``execute``,
``describe``, ``to_dict``, ``in_elements``, ``out_elements``, ``inputs``):

- :class:`SlidingWindowLayer`: the im2col windows of a map, for an MVAU (convolution) or in
  a VVAU's order (depthwise convolution);
- :class:`VVAULayer`: per channel, the dot product of its window with its weights;
- :class:`PadLayer`: a constant border;
- :class:`MaxPoolLayer`, :class:`AvgPoolLayer` (window *sums*: the division belongs to the
  next layer's thresholds), :class:`GlobalAccPoolLayer` (sums over the whole map);
- :class:`AddLayer`: the element-wise sum of two streams, each shifted left (residuals);
- :class:`ConcatLayer`: channels of two or more maps side by side.

Integers on the streams are *encoded* (see :mod:`graph.ir`); pooling and padding move
encoded elements, so they work on ``BIPOLAR`` maps too (a window sum then counts ``+1``
elements).
"""

from dataclasses import dataclass, fields

import numpy as np

from sim import golden

from .errors import GraphError
from .ir import (DotLayer, _check_values, _kernel_plan, decode, divisors, dtype_range,
                 element_shape, encode, shape_of, smallest_dtype)

__all__ = ["SlidingWindowLayer", "VVAULayer", "PadLayer", "MaxPoolLayer", "AvgPoolLayer",
           "GlobalAccPoolLayer", "AddLayer", "ConcatLayer", "pair", "window_output"]


def pair(where, name, value, minimum=1):
    """``value`` as a ``(height, width)`` pair of integers >= ``minimum`` (one integer: both
    axes)."""
    values = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not
                                   isinstance(v, bool) and v >= minimum for v in values):
        raise GraphError(f"{where}: {name}={value!r} must be one integer or two (height, "
                         f"width), each >= {minimum}")
    return tuple(int(v) for v in values)


def window_output(size, kernel, stride=1, dilation=1):
    """Window positions along an axis of ``size`` (floor, no padding)."""
    return (size - ((kernel - 1) * dilation + 1)) // stride + 1


class _Layer:
    """What the feature-map layers share: JSON, maps of encoded integers, defaults."""

    products = 0
    #: Folding-JSON keys.
    fold_keys = ()

    @property
    def where(self):
        return f"{self.kind} layer {self.name!r}"

    def to_dict(self):
        """A JSON-ready dict."""
        data = {"kind": self.kind}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            data[item.name] = value
        return data

    def _maps(self, x, ifm, channels):
        """Encoded ``(N, H * W * C)`` frames as NHWC maps ``(N, H, W, C)``."""
        return np.asarray(x, dtype=np.int64).reshape(-1, ifm[0], ifm[1], channels)

    def fold_choices(self):
        return {}


@dataclass
class SlidingWindowLayer(_Layer):
    """The sliding-window generator (``hwgen.kernels.swg``): every window of an NHWC map.

    Parameters
    ----------
    name : str
    ifm : tuple
        Input map ``(H, W)`` (already padded: padding is a :class:`PadLayer` before).
    channels : int
    kernel, stride, dilation : tuple
        ``(height, width)`` each.
    input_type : str
        Datatype of the elements (also of the windows).
    depthwise : bool
        The VVAU's order (per pixel: channel folds of ``simd`` channels, window folds of
        ``window_simd`` positions) instead of the MVAU's (per pixel: kernel row, kernel
        column, channel).
    simd, window_simd, parallel, mem_style
        The kernel's folding: channels per beat; window positions per beat (depthwise);
        ``"none"``, ``"row"`` or ``"window"`` per beat (MVAU order); line-buffer memory. A
        depthwise window takes ``simd = pe`` and ``window_simd = simd`` of the VVAU it
        feeds (set by the folder).
    """
    name: str
    ifm: tuple
    channels: int
    kernel: tuple
    input_type: str
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    depthwise: bool = False
    simd: int = 1
    window_simd: int = 1
    parallel: str = "none"
    mem_style: str = "auto"
    inputs: tuple = None

    kind = "sliding_window"

    @property
    def fold_keys(self):
        """Folding-JSON keys: ``simd``, ``window_simd`` (depthwise) or ``parallel``,
        ``mem_style``."""
        return tuple(self.fold_choices())

    def __post_init__(self):
        self.ifm = pair(self.where, "ifm", self.ifm)
        self.kernel = pair(self.where, "kernel", self.kernel)
        self.stride = pair(self.where, "stride", self.stride)
        self.dilation = pair(self.where, "dilation", self.dilation)
        dtype_range(self.input_type)
        if self.ofm[0] < 1 or self.ofm[1] < 1:
            raise GraphError(f"{self.where}: kernel {self.kernel} with dilation "
                             f"{self.dilation} does not fit the {self.ifm} map")

    output_type = property(lambda self: self.input_type)

    @property
    def ofm(self):
        """Output pixels ``(OH, OW)``."""
        return tuple(window_output(*axis) for axis in zip(self.ifm, self.kernel, self.stride,
                                                          self.dilation))

    @property
    def window(self):
        """Elements per window position and channel: ``K_h * K_w``."""
        return self.kernel[0] * self.kernel[1]

    @property
    def in_elements(self):
        return self.ifm[0] * self.ifm[1] * self.channels

    @property
    def out_elements(self):
        return self.ofm[0] * self.ofm[1] * self.window * self.channels

    def execute(self, x):
        """Encoded windows ``(N, out_elements)`` (:func:`sim.golden.sliding_window`)."""
        maps = self._maps(x, self.ifm, self.channels)
        beats = golden.sliding_window(maps, self.kernel, self.stride, self.dilation,
                                      simd=self.simd if self.depthwise else 1,
                                      depthwise=self.depthwise, window_simd=self.window_simd)
        return beats.reshape(len(maps), -1)

    def describe(self):
        return ("{}x{}x{} k{}x{} s{}x{}".format(*self.ifm, self.channels, *self.kernel,
                                                *self.stride)
                + (" depthwise" if self.depthwise else "") + f" {self.input_type}")

    def fold_choices(self):
        from hwgen.kernels.swg import MEM_STYLES, PARALLEL
        if self.depthwise:
            return {"simd": (divisors(self.channels), f"channels={self.channels}"),
                    "window_simd": (divisors(self.window), f"K_h*K_w={self.window}"),
                    "mem_style": (MEM_STYLES, None)}
        return {"simd": (divisors(self.channels), f"channels={self.channels}"),
                "parallel": (PARALLEL, None), "mem_style": (MEM_STYLES, None)}

    def fold_for(self, consumer, budget):
        """The folding that feeds ``consumer`` (the layer reading the windows) within
        ``budget`` cycles per frame, or None. Depthwise: the VVAU's order (``simd = pe``,
        ``window_simd = simd`` of the VVAU). Otherwise the consumer's SIMD lanes per beat
        where the window order allows it (a whole window, a window row, or channels that
        divide both), then more lanes until the budget is met (a width converter repacks
        the difference)."""
        for folding in self.fold_candidates(consumer):
            if self.plan(**folding).cycles_per_frame <= budget:
                return folding
        return None

    def fold_candidates(self, consumer):
        """The foldings :meth:`fold_for` tries, in order (the last is the fastest)."""
        if self.depthwise:
            return [{"simd": consumer.pe, "window_simd": consumer.simd, "parallel": "none"}]
        lanes = getattr(consumer, "simd", 1)
        c, kw = self.channels, self.kernel[1]
        if lanes % (self.window * c) == 0:
            first = {"simd": c, "parallel": "window"}
        elif lanes % (kw * c) == 0:
            first = {"simd": c, "parallel": "row"}
        else:
            first = {"simd": int(np.gcd(lanes, c)), "parallel": "none"}
        candidates = [first] + [{"simd": s, "parallel": "none"} for s in divisors(c)
                                if s > first["simd"]] + \
            [{"simd": c, "parallel": mode} for mode in ("row", "window")]
        unique = []
        for folding in candidates:
            if folding not in unique:
                unique.append(folding)
        return unique

    def plan(self, **options):
        """The :class:`hwgen.kernels.swg.SlidingWindowPlan` at the layer's folding."""
        params = dict(ifm=self.ifm, channels=self.channels, kernel=self.kernel,
                      stride=self.stride, dilation=self.dilation, simd=self.simd,
                      elem_shape=element_shape(self.input_type), depthwise=self.depthwise,
                      window_simd=self.window_simd, parallel=self.parallel,
                      mem_style=self.mem_style)
        return _kernel_plan(self, {**params, **options})


@dataclass
class VVAULayer(DotLayer, _Layer):
    """Vector-vector-activation unit (``hwgen.kernels.vvau``): depthwise convolution.

    Per pixel and channel ``c``: ``acc = weights[c] @ window[c]`` on decoded inputs, then
    the raw accumulator or ``bias + #{t : thresholds[c][t] <= acc}`` (as
    :class:`graph.ir.MVAULayer`). The input is a :class:`SlidingWindowLayer` in depthwise
    order with ``simd = pe`` and ``window_simd = simd`` of this layer.

    Parameters
    ----------
    name : str
    channels : int
    kernel : tuple
        ``(K_h, K_w)``.
    weights : numpy.ndarray
        int64 ``(C, K_h * K_w)``, window positions in (row, column) order.
    input_type, weight_type, output_type : str
    thresholds : numpy.ndarray or None
        ``(C, T)`` or ``(1, T)``.
    bias : int
    vectors : int
        Output pixels per frame.
    pe, simd, datapath, mem_style
        Folding: channels and window positions per cycle; kernel choices.
    offsets : numpy.ndarray or None
        ``(C,)`` added to raw accumulators.
    activation : str
        As :class:`graph.ir.MVAULayer`'s: ``"thresholds"``, ``"requantize"`` or ``"auto"``.
    """
    name: str
    channels: int
    kernel: tuple
    weights: np.ndarray
    input_type: str
    weight_type: str
    output_type: str
    thresholds: np.ndarray = None
    bias: int = 0
    vectors: int = 1
    pe: int = 1
    simd: int = 1
    datapath: str = "auto"
    mem_style: str = "auto"
    offsets: np.ndarray = None
    inputs: tuple = None
    activation: str = "auto"

    kind = "vvau"

    names = ("channels", "K_h*K_w")
    rows = property(lambda self: self.channels)
    terms = property(lambda self: self.window)

    def __post_init__(self):
        self.kernel = pair(self.where, "kernel", self.kernel)
        self._check_dot(self.where)

    @property
    def window(self):
        return self.kernel[0] * self.kernel[1]

    def check_inputs(self, producers):
        """The input must be a depthwise :class:`SlidingWindowLayer` of this kernel, folded
        as this layer (``simd = pe``, ``window_simd = simd``): its stream order depends on
        the folding."""
        (source,) = producers
        if not (isinstance(source, SlidingWindowLayer) and source.depthwise and
                source.kernel == self.kernel and source.channels == self.channels):
            raise GraphError(f"{self.where}: its input must be a depthwise sliding window of "
                             f"{self.channels} channels and kernel {self.kernel}")
        if (source.simd, source.window_simd) != (self.pe, self.simd):
            raise GraphError(f"{self.where}: its sliding window {source.name!r} has simd="
                             f"{source.simd}, window_simd={source.window_simd}; it must have "
                             f"simd=pe={self.pe}, window_simd=simd={self.simd}")

    @property
    def in_elements(self):
        return self.vectors * self.channels * self.window

    @property
    def out_elements(self):
        return self.vectors * self.channels

    @property
    def products(self):
        return self.vectors * self.channels * self.window

    def execute(self, x):
        """Encoded outputs ``(N, vectors * C)`` for the depthwise window stream
        (:func:`sim.golden.vvau`)."""
        pe, simd = self.pe, self.simd
        x = decode(self.input_type, x)
        beats = x.reshape(-1, self.channels // pe, self.window // simd, pe, simd)
        windows = beats.transpose(0, 1, 3, 2, 4).reshape(-1, self.channels, self.window)
        out = golden.vvau(windows, self.weights, self.thresholds, self.bias, self.offsets)
        return np.asarray(out).reshape(-1, self.vectors * self.channels)

    def describe(self):
        return (f"{self.channels}ch {self.kernel[0]}x{self.kernel[1]} x{self.vectors} "
                f"{self.input_type}x{self.weight_type}->{self.output_type}"
                + ("" if self.thresholds is None else f" ({self.thresholds.shape[1]} "
                                                      f"thresholds)"))

    def plan(self, **options):
        """The :class:`hwgen.kernels.vvau.VVAUPlan` at the layer's folding."""
        self._check_widths()
        params = dict(channels=self.channels, kernel=self.kernel, weights=self.weights,
                      pe=self.pe, simd=self.simd, input_shape=shape_of(self.input_type),
                      weight_shape=shape_of(self.weight_type), thresholds=self.thresholds,
                      bias=self.bias, vectors=self.vectors, datapath=self.datapath,
                      mem_style=self.mem_style, offsets=self.offsets,
                      activation=self.activation)
        return _kernel_plan(self, {**params, **options})


class _MapLayer(_Layer):
    """A layer on one NHWC map of ``ifm`` pixels and ``channels`` channels, folded by
    ``pe`` (or ``simd``) channels per beat."""

    lanes_key = "pe"

    @property
    def in_elements(self):
        return self.ifm[0] * self.ifm[1] * self.channels

    @property
    def out_elements(self):
        return self.ofm[0] * self.ofm[1] * self.channels

    @property
    def fold_keys(self):
        return (self.lanes_key,)

    def fold_choices(self):
        return {self.lanes_key: (divisors(self.channels), f"channels={self.channels}")}

    def _check_map(self):
        self.ifm = pair(self.where, "ifm", self.ifm)
        dtype_range(self.input_type)


@dataclass
class PadLayer(_MapLayer):
    """A constant border around an NHWC map (``hwgen.kernels.pad``).

    Parameters
    ----------
    name : str
    ifm : tuple
    channels : int
    padding : tuple
        ``(top, left, bottom, right)`` pixels.
    value : int
        The *decoded* value of the border elements (``-1`` or ``+1`` for ``BIPOLAR``).
    input_type : str
    simd : int
        Channels per beat.
    """
    name: str
    ifm: tuple
    channels: int
    padding: tuple
    value: int
    input_type: str
    simd: int = 1
    inputs: tuple = None

    kind = "pad"
    lanes_key = "simd"

    def __post_init__(self):
        self._check_map()
        pads = tuple(self.padding)
        if len(pads) != 4 or any(int(p) < 0 for p in pads):
            raise GraphError(f"{self.where}: padding={self.padding!r} must be 4 integers >= 0 "
                             f"(top, left, bottom, right)")
        self.padding = tuple(int(p) for p in pads)
        self.value = int(self.value)
        _check_values(self.where, "the pad value", np.array([self.value]), self.input_type)

    output_type = property(lambda self: self.input_type)

    @property
    def ofm(self):
        top, left, bottom, right = self.padding
        return self.ifm[0] + top + bottom, self.ifm[1] + left + right

    def execute(self, x):
        """Encoded padded maps ``(N, out_elements)`` (:func:`sim.golden.pad`)."""
        maps = self._maps(x, self.ifm, self.channels)
        value = int(encode(self.input_type, self.value))
        return golden.pad(maps, self.padding, value).reshape(len(maps), -1)

    def describe(self):
        return ("{}x{}x{} pad {},{},{},{}".format(*self.ifm, self.channels, *self.padding)
                + f" with {self.value} {self.input_type}")

    def plan(self, **options):
        params = dict(ifm=self.ifm, channels=self.channels, simd=self.simd,
                      padding=self.padding, elem_shape=shape_of(self.input_type),
                      value=self.value)
        return _kernel_plan(self, {**params, **options})


@dataclass
class MaxPoolLayer(_MapLayer):
    """Window maxima of an NHWC map (``hwgen.kernels.pool.MaxPool``), on encoded integers
    (the encodings are increasing, so this is the maximum of the decoded values too).

    Parameters
    ----------
    name : str
    ifm : tuple
    channels : int
    kernel, stride : tuple
        ``(height, width)`` each (no padding: a :class:`PadLayer` goes first).
    input_type : str
    pe : int
        Channels per beat.
    """
    name: str
    ifm: tuple
    channels: int
    kernel: tuple
    stride: tuple
    input_type: str
    pe: int = 1
    inputs: tuple = None

    kind = "maxpool"

    def __post_init__(self):
        self._check_map()
        self.kernel = pair(self.where, "kernel", self.kernel)
        self.stride = pair(self.where, "stride", self.stride)
        if any(k > n for k, n in zip(self.kernel, self.ifm)):
            raise GraphError(f"{self.where}: kernel {self.kernel} is larger than the "
                             f"{self.ifm} map")

    output_type = property(lambda self: self.input_type)

    @property
    def ofm(self):
        return tuple(window_output(n, k, s) for n, k, s in zip(self.ifm, self.kernel,
                                                               self.stride))

    def _reduce(self, maps):
        return golden.maxpool(maps, self.kernel, self.stride)

    def execute(self, x):
        """Encoded outputs ``(N, out_elements)``."""
        maps = self._maps(x, self.ifm, self.channels)
        return self._reduce(maps).reshape(len(maps), -1)

    def describe(self):
        return ("{}x{}x{} k{}x{} s{}x{}".format(*self.ifm, self.channels, *self.kernel,
                                                *self.stride) + f" {self.input_type}")

    def plan(self, **options):
        params = dict(ifm=self.ifm, channels=self.channels, pe=self.pe, kernel=self.kernel,
                      stride=self.stride, input_shape=element_shape(self.input_type))
        return _kernel_plan(self, {**params, **options})


def _sum_type(input_type, count):
    """The datatype of sums of ``count`` encoded elements of ``input_type``."""
    low, high = dtype_range("BINARY" if input_type == "BIPOLAR" else input_type)
    return smallest_dtype(count * low, count * high)


@dataclass
class AvgPoolLayer(MaxPoolLayer):
    """Window *sums* of an NHWC map (``hwgen.kernels.pool.AvgPool``; ONNX ``AveragePool``
    times ``K_h * K_w``, the division going into the next layer's thresholds). Sums are of
    encoded elements (for ``BIPOLAR``: the count of ``+1``). Parameters as
    :class:`MaxPoolLayer`."""

    kind = "avgpool"

    @property
    def output_type(self):
        return _sum_type(self.input_type, self.kernel[0] * self.kernel[1])

    def _reduce(self, maps):
        return golden.avgpool_sums(maps, self.kernel, self.stride)


@dataclass
class GlobalAccPoolLayer(_MapLayer):
    """The sum of every channel over the whole map (``hwgen.kernels.pool.GlobalAccPool``;
    ONNX ``GlobalAveragePool`` times ``H * W``), of encoded elements.

    Parameters
    ----------
    name : str
    ifm : tuple
    channels : int
    input_type : str
    pe : int
    """
    name: str
    ifm: tuple
    channels: int
    input_type: str
    pe: int = 1
    inputs: tuple = None

    kind = "globalaccpool"
    ofm = (1, 1)

    def __post_init__(self):
        self._check_map()

    @property
    def output_type(self):
        return _sum_type(self.input_type, self.ifm[0] * self.ifm[1])

    def execute(self, x):
        maps = self._maps(x, self.ifm, self.channels)
        return golden.global_sum(maps).reshape(len(maps), -1)

    def describe(self):
        return "{}x{}x{} sum {}".format(*self.ifm, self.channels, self.input_type)

    def plan(self, **options):
        params = dict(ifm=self.ifm, channels=self.channels, pe=self.pe,
                      input_shape=element_shape(self.input_type))
        return _kernel_plan(self, {**params, **options})


def _no_bipolar(where, types):
    for dtype in types:
        dtype_range(dtype)
        if dtype == "BIPOLAR":
            raise GraphError(f"{where}: BIPOLAR inputs are not supported; supported: "
                             f"BINARY, UINTn, INTn streams")


@dataclass
class AddLayer(_Layer):
    """Element-wise ``(x0 << shift0) + (x1 << shift1)`` of two streams of one layout
    (``hwgen.kernels.addstreams``): a residual join, its two integer domains aligned by the
    shifts.

    Parameters
    ----------
    name : str
    channels : int
        Channels per pixel.
    vectors : int
        Pixels per frame.
    input_types : tuple
        Datatypes of the two inputs (not ``BIPOLAR``).
    shift0, shift1 : int
    pe : int
        Channels per beat.
    """
    name: str
    channels: int
    vectors: int
    input_types: tuple
    shift0: int = 0
    shift1: int = 0
    pe: int = 1
    inputs: tuple = None

    kind = "addstreams"
    fold_keys = ("pe",)

    def __post_init__(self):
        self.input_types = tuple(self.input_types)
        if len(self.input_types) != 2:
            raise GraphError(f"{self.where}: needs 2 input datatypes, not {self.input_types}")
        _no_bipolar(self.where, self.input_types)

    @property
    def output_type(self):
        (lo0, hi0), (lo1, hi1) = (dtype_range(t) for t in self.input_types)
        return smallest_dtype((lo0 << self.shift0) + (lo1 << self.shift1),
                              (hi0 << self.shift0) + (hi1 << self.shift1))

    @property
    def in_elements(self):
        return self.vectors * self.channels

    out_elements = in_elements

    def ports(self):
        """``(elements, datatype)`` per input."""
        return [(self.in_elements, dtype) for dtype in self.input_types]

    def execute(self, x0, x1):
        return golden.add_streams(np.asarray(x0, dtype=np.int64),
                                  np.asarray(x1, dtype=np.int64), self.shift0, self.shift1)

    def describe(self):
        return (f"{self.vectors}x{self.channels} ({self.input_types[0]} << {self.shift0}) + "
                f"({self.input_types[1]} << {self.shift1}) -> {self.output_type}")

    def fold_choices(self):
        return {"pe": (divisors(self.channels), f"channels={self.channels}")}

    def plan(self, **options):
        params = dict(channels=self.channels, pe=self.pe, vectors=self.vectors,
                      input_shape0=shape_of(self.input_types[0]),
                      input_shape1=shape_of(self.input_types[1]),
                      shift0=self.shift0, shift1=self.shift1)
        return _kernel_plan(self, {**params, **options})


@dataclass
class ConcatLayer(_Layer):
    """Channel concatenation of two or more NHWC maps of the same pixels
    (``hwgen.plumbing.concat``): per pixel, the channels of input 0, then of input 1, ...

    Parameters
    ----------
    name : str
    channels : tuple
        Channels per pixel of each input.
    vectors : int
        Pixels per frame.
    input_types : tuple
        Datatypes (not ``BIPOLAR``); the output holds all of them.
    pe : int
        Channels per beat (divides every input's channels).
    """
    name: str
    channels: tuple
    vectors: int
    input_types: tuple
    pe: int = 1
    inputs: tuple = None

    kind = "concat"
    fold_keys = ("pe",)

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        self.input_types = tuple(self.input_types)
        if len(self.channels) < 2 or len(self.channels) != len(self.input_types):
            raise GraphError(f"{self.where}: needs 2 or more inputs, with one datatype each "
                             f"(channels {self.channels}, types {self.input_types})")
        _no_bipolar(self.where, self.input_types)

    @property
    def output_type(self):
        ranges = [dtype_range(t) for t in self.input_types]
        return smallest_dtype(min(lo for lo, _ in ranges), max(hi for _, hi in ranges))

    @property
    def in_elements(self):
        return self.vectors * sum(self.channels)

    out_elements = in_elements

    def ports(self):
        return [(self.vectors * c, dtype) for c, dtype in zip(self.channels, self.input_types)]

    def execute(self, *xs):
        parts = [np.asarray(x, dtype=np.int64).reshape(len(x), self.vectors, c)
                 for x, c in zip(xs, self.channels)]
        return golden.concat(parts, axis=2).reshape(len(parts[0]), -1)

    def describe(self):
        return f"{self.vectors}x{'+'.join(map(str, self.channels))} -> {self.output_type}"

    def fold_choices(self):
        common = [d for d in divisors(self.channels[0])
                  if all(c % d == 0 for c in self.channels)]
        return {"pe": (common, f"channels={self.channels}")}

    def plan(self, **options):
        params = dict(channels=self.channels, pe=self.pe, vectors=self.vectors,
                      elem_shapes=[shape_of(t) for t in self.input_types])
        return _kernel_plan(self, {**params, **options})
