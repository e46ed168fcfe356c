"""The network IR: a short list of integer layers that map 1:1 onto hwgen kernels.

Every value on a stream between layers is an integer of a *datatype*, named as qonnx
names them. Each datatype has an *encoding* (the integer a stream element holds, and
the integer arrays that :meth:`Network.execute` takes and returns) and a *decoded value*
(the number the arithmetic uses):

============  ==========================  ============================  ===========================
datatype      decoded values              encoded element               Amaranth shape (:func:`shape_of`)
============  ==========================  ============================  ===========================
``BIPOLAR``   -1, +1                      one bit: 0 means -1, 1 means +1  ``"bipolar"``
``BINARY``    0, 1                        the value                     ``unsigned(1)``
``UINTn``     0 ... 2**n - 1              the value                     ``unsigned(n)``
``INTn``      -2**(n-1) ... 2**(n-1) - 1  the value (two's complement)  ``signed(n)``
============  ==========================  ============================  ===========================

Layers (all integer arithmetic, bit-exact with the hardware):

- :class:`MVAULayer`: ``acc = W @ x`` on decoded inputs, then either the raw accumulator
  (plus optional per-row integer offsets) or ``bias + #{t : thresholds[c][t] <= acc[c]}``;
- :class:`ThresholdLayer`: the same multi-threshold activation on a stream, alone;
- :class:`LabelSelectLayer`: indices of the ``k`` largest values (top-k / argmax).

Every layer class is the IR layer of a kernel registry entry (:data:`hwgen.registry.KERNELS`;
its ``kind`` is the entry's name) and provides what the folder, the elaborator and the
reports ask for, so that none of them switches on a layer's kind:

- ``plan(**options)``: the kernel's plan (:class:`hwgen.kernel.StreamKernel`) at the layer's
  folding, or at the folding and options given; a refused parameter is a
  :class:`~graph.errors.GraphError` naming the layer;
- ``fold_choices()``: per folding parameter, its legal values and the rule they follow
  (``"MH=64"`` for a PE that must divide 64); ``fold_keys``: the folding-JSON keys;
- ``products``: multiply-accumulates per frame (the default folding's yardstick);
- ``execute(x)``: its golden model from :mod:`sim.golden`; ``to_dict()``, ``describe()``.

A :class:`Network` holds the layers in order, the input (shape, datatype, and an optional
:class:`InputQuantizer` for float inputs) and an :class:`OutputSpec` that maps the final
integers back to the ONNX model's output. It executes in numpy and round-trips through JSON.
"""

import json
import re
from dataclasses import dataclass, field

import numpy as np

from hwgen.checks import divisors
from sim import golden

from .errors import GraphError

__all__ = ["dtype_range", "dtype_bits", "smallest_dtype", "shape_of", "decode", "encode",
           "MVAULayer", "ThresholdLayer", "LabelSelectLayer", "InputQuantizer", "OutputSpec",
           "Network"]

_DTYPE = re.compile(r"^(U?INT)([1-9][0-9]*)$")


def _parse(dtype):
    if dtype in ("BIPOLAR", "BINARY"):
        return dtype, 1
    match = _DTYPE.match(dtype) if isinstance(dtype, str) else None
    if match is None:
        raise GraphError(f"datatype {dtype!r} is not supported; supported: BIPOLAR, BINARY, "
                         f"UINTn, INTn")
    return match.group(1), int(match.group(2))


def dtype_bits(dtype):
    """Bits of one stream element of ``dtype`` (1 for ``BIPOLAR`` and ``BINARY``)."""
    return _parse(dtype)[1]


def dtype_range(dtype):
    """``(min, max)`` of the *decoded* values of a datatype name such as ``"INT4"``."""
    kind, bits = _parse(dtype)
    if kind == "BIPOLAR":
        return -1, 1
    if kind in ("BINARY", "UINT"):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def smallest_dtype(low, high):
    """The narrowest ``BINARY``/``UINTn``/``INTn`` name that holds every integer in
    ``[low, high]``."""
    low, high = int(low), int(high)
    if low >= 0:
        bits = max(high, 1).bit_length()
        return "BINARY" if bits == 1 else f"UINT{bits}"
    bits = max(high.bit_length(), (-low - 1).bit_length()) + 1
    return f"INT{bits}"


def shape_of(dtype):
    """The Amaranth shape of one stream element: ``signed(n)``, ``unsigned(n)``, or the
    string ``"bipolar"`` (one bit, 0 means -1)."""
    from amaranth.hdl import signed, unsigned
    kind, bits = _parse(dtype)
    if kind == "BIPOLAR":
        return "bipolar"
    return signed(bits) if kind == "INT" else unsigned(bits)


def decode(dtype, encoded):
    """Decoded values (int64) of an array of encoded stream elements of ``dtype``."""
    encoded = np.asarray(encoded, dtype=np.int64)
    return 2 * encoded - 1 if dtype == "BIPOLAR" else encoded


def encode(dtype, values):
    """Encoded stream elements (int64) of an array of decoded values of ``dtype``."""
    values = np.asarray(values, dtype=np.int64)
    return (values + 1) // 2 if dtype == "BIPOLAR" else values


def _int_array(where, name, value, ndim):
    """``value`` as a ``ndim``-D int64 array (:func:`hwgen.checks.check_int_array`); a
    :class:`GraphError` naming ``where`` otherwise."""
    from hwgen.checks import check_int_array
    try:
        array = check_int_array(name, np.asarray(value) if np.size(value) else
                                np.zeros(np.shape(value), dtype=np.int64))
    except ValueError as error:
        raise GraphError(f"{where}: {error}") from None
    if array.ndim != ndim:
        raise GraphError(f"{where}: {name} must be a {ndim}-D array, not shape {array.shape}")
    return array


def _check_values(where, what, values, dtype):
    low, high = dtype_range(dtype)
    if values.size and (values.min() < low or values.max() > high):
        raise GraphError(f"{where}: {what} in [{values.min()}, {values.max()}] do not fit "
                         f"{dtype} [{low}, {high}]")
    if dtype == "BIPOLAR" and values.size and np.any(values == 0):
        raise GraphError(f"{where}: {what} of datatype BIPOLAR must be -1 or +1, not 0")


def _check_thresholds(where, thresholds, channels):
    if thresholds.shape[0] not in (1, channels):
        raise GraphError(f"{where}: thresholds of shape {thresholds.shape} need {channels} or 1 "
                         f"rows")
    if thresholds.size and np.any(np.diff(thresholds, axis=1) < 0):
        raise GraphError(f"{where}: thresholds must be sorted ascending in every row")


def _edges(inputs):
    """A layer's input edge names for JSON (a list, or None)."""
    return None if inputs is None else list(inputs)


def element_shape(dtype):
    """The Amaranth shape of one stream element of a datatype (``BIPOLAR``: one bit)."""
    from hwgen.shapes import element_shape as hwgen_element_shape
    return hwgen_element_shape(shape_of(dtype))


def _kernel_plan(layer, params):
    """The registered kernel's plan for ``layer`` with ``params``; a parameter the kernel
    refuses is a :class:`GraphError` naming the layer."""
    from hwgen.registry import kernel
    try:
        return kernel(layer.kind).plan(**params)
    except (TypeError, ValueError) as error:
        raise GraphError(f"{layer.kind} layer {layer.name!r}: {error}") from None


class DotLayer:
    """What :class:`MVAULayer` and :class:`graph.maplayers.VVAULayer` share: ``rows`` dot
    products of ``terms`` weights each (``weights`` ``(rows, terms)``), then thresholds or
    the raw accumulators (plus ``offsets``). A subclass defines ``rows``, ``terms`` and
    ``names`` (their names in messages, e.g. ``("mh", "mw")``)."""

    #: Folding-JSON keys (see :func:`graph.fold.apply_folding_json`).
    fold_keys = ("pe", "simd", "datapath", "mem_style", "activation")

    def _check_dot(self, where):
        rows, terms = self.rows, self.terms
        row_name, term_name = self.names
        self.weights = _int_array(where, "weights", self.weights, 2)
        if self.weights.shape != (rows, terms):
            raise GraphError(f"{where}: weights of shape {self.weights.shape} are not "
                             f"({row_name}, {term_name}) = ({rows}, {terms})")
        _check_values(where, "weights", self.weights, self.weight_type)
        dtype_range(self.input_type)
        dtype_range(self.output_type)
        if self.thresholds is not None:
            self.thresholds = _int_array(where, "thresholds", self.thresholds, 2)
            _check_thresholds(where, self.thresholds, rows)
        if self.offsets is not None:
            if self.thresholds is not None:
                raise GraphError(f"{where}: offsets need a raw layer (no thresholds)")
            self.offsets = _int_array(where, "offsets", self.offsets, 1)
            if self.offsets.shape != (rows,):
                raise GraphError(f"{where}: offsets of shape {self.offsets.shape} are not "
                                 f"({row_name},) = ({rows},)")
        self.bias = int(self.bias)

    def accumulator_range(self):
        """``(acc_min, acc_max)``: int64 arrays of shape ``(rows,)``, the accumulator bounds
        (offsets included) over every input vector of ``input_type``."""
        low, high = dtype_range(self.input_type)
        w = self.weights
        offsets = 0 if self.offsets is None else self.offsets
        return (np.minimum(w * low, w * high).sum(axis=1) + offsets,
                np.maximum(w * low, w * high).sum(axis=1) + offsets)

    def _check_widths(self):
        where = f"{self.kind} layer {self.name!r}"
        for what, dtype in (("input", self.input_type), ("weight", self.weight_type)):
            if dtype != "BIPOLAR" and not 1 <= dtype_bits(dtype) <= 8:
                raise GraphError(f"{where}: {what} datatype {dtype} is wider than the "
                                 f"{self.kind.upper()}'s 8 bits; supported: BIPOLAR, BINARY, "
                                 f"INT2..INT8, UINT2..UINT8")

    def fold_choices(self):
        """Per folding parameter, ``(legal values, the rule they follow)`` (see the module
        documentation)."""
        from hwgen.kernels.dotunit import ACTIVATIONS
        from hwgen.kernels.mvau import MEM_STYLES, valid_datapaths
        rows, terms = self.names
        return {"pe": (divisors(self.rows), f"{rows.upper()}={self.rows}"),
                "simd": (divisors(self.terms), f"{terms.upper()}={self.terms}"),
                "datapath": (valid_datapaths(shape_of(self.weight_type),
                                             shape_of(self.input_type)),
                             f"for {self.input_type} inputs and {self.weight_type} weights"),
                "mem_style": (MEM_STYLES, None),
                "activation": ((ACTIVATIONS, None) if self.thresholds is not None
                               else (("auto",), "for a layer without thresholds"))}


@dataclass
class MVAULayer(DotLayer):
    """Matrix-vector-activation unit (``hwgen.kernels.mvau``): ``acc = W @ x``, then an activation.

    Parameters
    ----------
    name : str
        Layer name (from the ONNX node that produced it).
    mw, mh : int
        Matrix width (inputs per vector) and height (outputs per vector).
    weights : numpy.ndarray
        int64, shape ``(mh, mw)``: the integer weight values (``-1``/``+1`` for ``BIPOLAR``).
    input_type, weight_type, output_type : str
        Datatype names (see the module docstring).
    thresholds : numpy.ndarray or None
        int64, shape ``(mh, T)`` or ``(1, T)`` (shared by all rows), sorted ascending per
        row; or ``None`` for the raw accumulator output (``output_type`` then holds it).
    bias : int
        Thresholded output: ``bias + #{t : thresholds[c][t] <= acc[c]}``. For a ``BIPOLAR``
        output (``bias`` 0, one threshold) the count 0/1 is the stream bit (0 means -1).
    vectors : int
        Input vectors per frame (1 for fully-connected layers; the im2col pixels of a
        convolution later). A frame is ``vectors * mw`` elements in, ``vectors * mh`` out.
    pe, simd : int
        Folding: output rows and input columns processed per cycle (filled in by folding).
    datapath, mem_style : str
        Folding choices for the kernel (``"auto"`` until folded).
    activation : str
        With thresholds: ``"thresholds"``, ``"requantize"`` (the same function as an exact
        multiply-shift) or ``"auto"`` (the cheaper by estimate, resolved when compiled).
    offsets : numpy.ndarray or None
        int64, shape ``(mh,)``: added to the raw accumulators (raw layers only: thresholds
        absorb offsets), for example a classifier's per-class bias before a label select.

    Notes
    -----
    ``acc[c] = sum_k weights[c][k] * x[k] (+ offsets[c])`` where ``x`` are the *decoded*
    inputs (a ``BIPOLAR`` stream bit 0 is -1). Thresholds lie in ``[acc_min, acc_max + 1]`` of
    :meth:`accumulator_range`: a threshold at ``acc_min`` always counts, one at
    ``acc_max + 1`` never does.
    """
    name: str
    mw: int
    mh: int
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

    kind = "mvau"

    names = ("mh", "mw")
    rows = property(lambda self: self.mh)
    terms = property(lambda self: self.mw)

    def __post_init__(self):
        self._check_dot(f"MVAU layer {self.name!r}")

    def execute(self, x):
        """Encoded outputs ``(N, vectors * mh)`` for encoded inputs ``(N, vectors * mw)``
        (:func:`sim.golden.mvau`)."""
        x = decode(self.input_type, x).reshape(-1, self.mw)
        out = golden.mvau(x, self.weights, self.thresholds, self.bias, self.offsets)
        return np.asarray(out).reshape(-1, self.vectors * self.mh)

    @property
    def products(self):
        """Multiply-accumulates per frame."""
        return self.mh * self.mw * self.vectors

    def describe(self):
        """One line: shape and datatypes (for :meth:`Network.summary`)."""
        return (f"{self.mw}->{self.mh} {self.input_type}x{self.weight_type}->{self.output_type}"
                + ("" if self.thresholds is None else f" ({self.thresholds.shape[1]} thresholds)")
                + ("" if self.offsets is None else " (+ offsets)"))

    def plan(self, **options):
        """The :class:`hwgen.kernels.mvau.MVAUPlan` of this layer at its folding (``options``:
        more MVAU keywords, or folding parameters to try instead)."""
        self._check_widths()
        params = dict(mw=self.mw, mh=self.mh, pe=self.pe, simd=self.simd,
                      weights=self.weights, input_shape=shape_of(self.input_type),
                      weight_shape=shape_of(self.weight_type), thresholds=self.thresholds,
                      bias=self.bias, vectors=self.vectors, datapath=self.datapath,
                      mem_style=self.mem_style, offsets=self.offsets,
                      activation=self.activation)
        return _kernel_plan(self, {**params, **options})

    def to_dict(self):
        """A JSON-ready dict."""
        data = {"kind": self.kind, "name": self.name, "mw": self.mw, "mh": self.mh,
                "weights": self.weights.tolist(), "input_type": self.input_type,
                "weight_type": self.weight_type, "output_type": self.output_type,
                "thresholds": None if self.thresholds is None else self.thresholds.tolist(),
                "bias": self.bias, "vectors": self.vectors, "pe": self.pe, "simd": self.simd,
                "datapath": self.datapath, "mem_style": self.mem_style,
                "activation": self.activation, "inputs": _edges(self.inputs)}
        if self.offsets is not None:
            data["offsets"] = self.offsets.tolist()
        return data

    @property
    def in_elements(self):
        """Stream elements per frame into the layer."""
        return self.vectors * self.mw

    @property
    def out_elements(self):
        """Stream elements per frame out of the layer."""
        return self.vectors * self.mh


@dataclass
class ThresholdLayer:
    """Standalone multi-threshold activation (``hwgen.kernels.threshold``), for thresholds that
    cannot be fused into an MVAU (for example the binarization of the network input).

    Parameters
    ----------
    name : str
        Layer name.
    channels : int
        Channels per vector (a pixel of a feature map, or the whole frame).
    thresholds : numpy.ndarray
        int64 ``(channels, T)`` or ``(1, T)``, sorted ascending per row; compared with the
        *decoded* input values.
    bias : int
        Output ``bias + #{t : thresholds[c][t] <= x[c]}``; for a ``BIPOLAR`` output the
        count is the stream bit, as in :class:`MVAULayer`.
    input_type, output_type : str
        Datatype names.
    pe : int
        Channels per cycle (folding).
    vectors : int
        Vectors per frame: a frame is ``vectors * channels`` elements, channel fastest.
    """
    name: str
    channels: int
    thresholds: np.ndarray
    bias: int
    input_type: str
    output_type: str
    pe: int = 1
    vectors: int = 1
    inputs: tuple = None

    kind = "threshold"
    fold_keys = ("pe",)

    def __post_init__(self):
        where = f"threshold layer {self.name!r}"
        self.thresholds = _int_array(where, "thresholds", self.thresholds, 2)
        _check_thresholds(where, self.thresholds, self.channels)
        dtype_range(self.input_type)
        dtype_range(self.output_type)
        self.bias = int(self.bias)

    def execute(self, x):
        """Encoded outputs ``(N, channels)`` for encoded inputs ``(N, channels)``
        (:func:`sim.golden.threshold`)."""
        x = decode(self.input_type, x).reshape(-1, self.channels)
        out = golden.threshold(x, self.thresholds, self.bias)
        return np.asarray(out).reshape(-1, self.vectors * self.channels)

    products = 0

    def describe(self):
        return (f"{self.channels}" + (f"x{self.vectors}" if self.vectors > 1 else "") +
                f" {self.input_type}->{self.output_type} "
                f"({self.thresholds.shape[1]} thresholds)")

    def fold_choices(self):
        return {"pe": (divisors(self.channels), f"channels={self.channels}")}

    def plan(self, **options):
        """The thresholding unit's plan (:func:`hwgen.kernels.threshold.threshold_plan`)."""
        thresholds = self.thresholds
        if self.input_type == "BIPOLAR":
            # decoded 2b - 1 >= t  <=>  stream bit b >= ceil((t + 1) / 2)
            thresholds = -((-(thresholds + 1)) // 2)
        params = dict(channels=self.channels, pe=self.pe,
                      input_shape=element_shape(self.input_type), thresholds=thresholds,
                      bias=self.bias, vectors=self.vectors)
        return _kernel_plan(self, {**params, **options})

    def to_dict(self):
        """A JSON-ready dict."""
        return {"kind": self.kind, "name": self.name, "channels": self.channels,
                "thresholds": self.thresholds.tolist(), "bias": self.bias,
                "input_type": self.input_type, "output_type": self.output_type, "pe": self.pe,
                "vectors": self.vectors, "inputs": _edges(self.inputs)}

    @property
    def in_elements(self):
        """Stream elements per frame into the layer."""
        return self.channels * self.vectors

    out_elements = in_elements


@dataclass
class LabelSelectLayer:
    """Top-k label select (``hwgen`` label select kernel): the indices of the ``k`` largest
    decoded inputs, largest first, ties to the lower index (as ONNX TopK and numpy argmax).

    Parameters
    ----------
    name : str
        Layer name.
    channels : int
        Inputs per frame.
    k : int
        Indices out per frame.
    input_type : str
        Datatype name of the inputs.
    pe : int
        Inputs per cycle (folding).
    """
    name: str
    channels: int
    k: int
    input_type: str
    pe: int = 1
    inputs: tuple = None

    kind = "labelselect"
    fold_keys = ("pe",)

    def __post_init__(self):
        if not 1 <= self.k <= self.channels:
            raise GraphError(f"label select layer {self.name!r}: k={self.k} must be in "
                             f"[1, channels={self.channels}]")
        dtype_range(self.input_type)

    @property
    def output_type(self):
        """Datatype of the indices."""
        return smallest_dtype(0, self.channels - 1)

    def execute(self, x):
        """Indices ``(N, k)`` for encoded inputs ``(N, channels)``
        (:func:`sim.golden.label_select`)."""
        return golden.label_select(decode(self.input_type, x), self.k)

    products = 0

    def describe(self):
        return f"top-{self.k} of {self.channels} {self.input_type}"

    def fold_choices(self):
        return {"pe": (divisors(self.channels), f"channels={self.channels}")}

    def plan(self, **options):
        """The label select's plan (:class:`hwgen.kernels.labelselect.LabelSelectPlan`)."""
        params = dict(channels=self.channels, pe=self.pe, k=self.k,
                      input_shape=element_shape(self.input_type))
        return _kernel_plan(self, {**params, **options})

    def to_dict(self):
        """A JSON-ready dict."""
        return {"kind": self.kind, "name": self.name, "channels": self.channels, "k": self.k,
                "input_type": self.input_type, "pe": self.pe, "inputs": _edges(self.inputs)}

    @property
    def in_elements(self):
        """Stream elements per frame into the layer."""
        return self.channels

    @property
    def out_elements(self):
        """Stream elements per frame out of the layer."""
        return self.k


@dataclass
class InputQuantizer:
    """Turns float network inputs into the encoded integer input stream (run on the host,
    not in hardware): ``bias + #{t : thresholds[c][t] <= float32(x[c])}``.

    The thresholds are float32 values found so that this count reproduces the ONNX model's
    own input quantization (for example ``Quant`` or ``x / 255`` followed by a
    ``MultiThreshold``) for every finite float32 input. ``+inf`` marks a level no finite
    input reaches.

    Parameters
    ----------
    thresholds : numpy.ndarray
        float32 ``(C, T)`` or ``(1, T)``, sorted ascending per row (``C`` input elements in
        the C order of the ONNX input tensor).
    bias : int
        Added to the count; for a ``BIPOLAR`` output the count is the stream bit.
    output_type : str
        Datatype of the network's input stream.
    """
    thresholds: np.ndarray
    bias: int
    output_type: str

    def __post_init__(self):
        self.thresholds = np.asarray(self.thresholds, dtype=np.float32)
        if self.thresholds.ndim != 2:
            raise GraphError(f"input quantizer: thresholds must be 2-D, not shape "
                             f"{self.thresholds.shape}")
        if self.thresholds.size and np.any(np.diff(self.thresholds, axis=1) < 0):
            raise GraphError("input quantizer: thresholds must be sorted ascending in every row")
        self.bias = int(self.bias)

    def __call__(self, x):
        """Encoded integers ``(N, C)`` for float inputs ``(N, C)``."""
        x = np.asarray(x, dtype=np.float32)
        return self.bias + (self.thresholds <= x[..., None]).sum(axis=-1, dtype=np.int64)

    def to_dict(self):
        """A JSON-ready dict."""
        return {"thresholds": [[float(t) for t in row] for row in self.thresholds],
                "bias": self.bias, "output_type": self.output_type}


@dataclass
class OutputSpec:
    """How the network's final integers map back to the ONNX model's output.

    Parameters
    ----------
    kind : str
        ``"label"``: the final layer is a :class:`LabelSelectLayer`, the output is the
        ``(N, k)`` class indices. ``"scores"``: the output is ``scale * decoded + offset``
        per element (``scale`` and ``offset`` have one float per output element).
    k : int
        Labels per frame (``"label"`` only).
    scale, offset : list of float
        Per output element (``"scores"`` only).
    shape : tuple
        The ONNX output's shape without the batch dimension.
    """
    kind: str
    shape: tuple = ()
    k: int = 1
    scale: list = field(default_factory=list)
    offset: list = field(default_factory=list)

    def __post_init__(self):
        if self.kind not in ("label", "scores"):
            raise GraphError(f"output kind {self.kind!r} is not supported; supported: label, "
                             f"scores")
        self.shape = tuple(int(d) for d in self.shape)
        self.scale = [float(s) for s in self.scale]
        self.offset = [float(s) for s in self.offset]

    def to_float(self, decoded):
        """Float scores (float64, ``(N, elements)``) of decoded final integers."""
        decoded = np.asarray(decoded, dtype=np.float64)
        if self.kind == "label":
            return decoded
        return decoded * np.asarray(self.scale) + np.asarray(self.offset)

    def to_dict(self):
        """A JSON-ready dict."""
        data = {"kind": self.kind, "shape": list(self.shape)}
        if self.kind == "label":
            data["k"] = self.k
        else:
            data.update(scale=self.scale, offset=self.offset)
        return data


def layer_classes():
    """IR layer class per kind: the layers of the kernel registry
    (:data:`hwgen.registry.KERNELS`)."""
    from hwgen.registry import KERNELS, resolve
    return {name: resolve(entry.layer) for name, entry in KERNELS.items() if entry.layer}


def _layer_from_dict(data):
    data = dict(data)
    kind = data.pop("kind", None)
    layers = layer_classes()
    if kind not in layers:
        raise GraphError(f"layer kind {kind!r} is not supported; supported: "
                         f"{', '.join(layers)}")
    try:
        return layers[kind](**data)
    except TypeError as error:
        raise GraphError(f"{kind} layer {data.get('name')!r}: {error}") from None


@dataclass
class Network:
    """A lowered network: a DAG of integer layers joined by named edges.

    Every layer's output is one edge, named after the layer; the network input is the edge
    ``"input"``. A layer's ``inputs`` names the edges it reads (one for most layers, two or
    more for a join such as :class:`graph.maplayers.AddLayer`); ``None`` means the layer
    before it in the list (or the input), so a chain needs no names. The layers are listed
    in a topological order and the last one is the output. An edge read by several layers
    is a fork (the elaborator duplicates the stream).

    Parameters
    ----------
    name : str
        Network name (the ONNX graph's).
    input_shape : tuple
        Shape of one input frame (the ONNX input's shape without the batch dimension).
    input_type : str
        Datatype of the input stream.
    layers : list
        IR layers (:mod:`graph.ir`, :mod:`graph.maplayers`), in topological order.
    output : OutputSpec
        How the final integers map back to the ONNX output.
    input_quantizer : InputQuantizer or None
        For float model inputs: how the host turns them into the input stream (``None`` when
        the model's input already is an integer datatype).
    debug : dict
        Per layer name: ``{"tensor": ONNX tensor name, "scale": [...], "offset": [...]}``,
        and ``"order"`` where the layer's stream is not in the tensor's C order: the ONNX
        tensor whose values the layer's output encodes as ``scale * decoded + offset`` per
        element (``values[:, order]`` in stream order). Used to check every activation
        against the ONNX reference; not needed by the hardware.
    input_order : list or None
        Stream element ``j`` is element ``input_order[j]`` of the ONNX input in C order
        (for example NCHW images streamed as NHWC); ``None``: the C order itself.
    """
    name: str
    input_shape: tuple
    input_type: str
    layers: list
    output: OutputSpec
    input_quantizer: InputQuantizer = None
    debug: dict = field(default_factory=dict)
    input_order: list = None

    def __post_init__(self):
        self.input_shape = tuple(int(d) for d in self.input_shape)
        dtype_range(self.input_type)
        if self.input_order is not None:
            self.input_order = [int(i) for i in self.input_order]
            if sorted(self.input_order) != list(range(self.input_elements)):
                raise GraphError(f"input_order must be a permutation of the "
                                 f"{self.input_elements} input elements")
        produced = {"input": (self.input_elements, self.input_type)}
        layers = {}
        previous = "input"
        for layer in self.layers:
            if layer.name in produced:
                raise GraphError(f"layer name {layer.name!r} is used twice (or is the input "
                                 f"edge's name)")
            layer.inputs = (previous,) if layer.inputs is None else tuple(layer.inputs)
            ports = layer.ports() if hasattr(layer, "ports") else \
                [(layer.in_elements, layer.input_type)]
            if len(ports) != len(layer.inputs):
                raise GraphError(f"layer {layer.name!r} takes {len(ports)} input stream(s), "
                                 f"but names {len(layer.inputs)}: {list(layer.inputs)}")
            for edge, (elements, dtype) in zip(layer.inputs, ports):
                if edge not in produced:
                    raise GraphError(f"layer {layer.name!r} reads edge {edge!r}, which no "
                                     f"earlier layer produces")
                if produced[edge] != (elements, dtype):
                    raise GraphError(f"layer {layer.name!r} takes {elements} x {dtype}, but "
                                     f"its input stream {edge!r} is {produced[edge][0]} x "
                                     f"{produced[edge][1]}")
            if hasattr(layer, "check_inputs"):
                layer.check_inputs([layers.get(edge) for edge in layer.inputs])
            produced[layer.name] = (layer.out_elements, layer.output_type)
            layers[layer.name] = layer
            previous = layer.name
        used = {edge for layer in self.layers for edge in layer.inputs}
        dangling = [layer.name for layer in self.layers[:-1] if layer.name not in used]
        if dangling:
            raise GraphError(f"the outputs of layers {dangling} are not used (only the last "
                             f"layer is the network output)")

    @property
    def input_elements(self):
        """Stream elements per input frame."""
        return int(np.prod(self.input_shape, dtype=np.int64))

    def consumers(self, edge):
        """The layers that read ``edge`` (a layer name or ``"input"``), in order."""
        return [layer for layer in self.layers if edge in layer.inputs]

    def layer(self, name):
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise GraphError(f"network {self.name!r} has no layer {name!r}")

    def quantize_input(self, x):
        """Encoded input stream ``(N, elements)`` for ONNX model inputs ``x`` of shape
        ``(N, *input_shape)`` (float, through :attr:`input_quantizer`; or values of
        :attr:`input_type`, which are encoded), in stream order (:attr:`input_order`)."""
        from .inputs import check_inputs
        x = check_inputs(self, x)
        if self.input_order is not None:
            x = x[:, self.input_order]
        if self.input_quantizer is not None:
            return self.input_quantizer(x)
        return encode(self.input_type, x)

    def execute(self, x_int, intermediates=False):
        """Run the network in numpy on encoded inputs.

        Parameters
        ----------
        x_int : array_like
            Encoded input stream, shape ``(N, elements)`` in stream order.
        intermediates : bool
            Also return every layer's encoded output.

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, dict)
            The final layer's encoded output ``(N, elements)`` (labels for a label select);
            with ``intermediates``, also a dict layer name -> encoded output.
        """
        x = np.asarray(x_int, dtype=np.int64).reshape(-1, self.input_elements)
        if self.input_type == "BIPOLAR" and x.size and (x.min() < 0 or x.max() > 1):
            raise GraphError("network input: BIPOLAR stream bits must be 0 or 1")
        _check_values("network input", "values", decode(self.input_type, x), self.input_type)
        edges = {"input": x}
        for layer in self.layers:
            edges[layer.name] = layer.execute(*(edges[edge] for edge in layer.inputs))
        out = edges[self.layers[-1].name] if self.layers else x
        if intermediates:
            del edges["input"]
            return out, edges
        return out

    def output_values(self, y_int):
        """The ONNX output's values for the final encoded integers: labels ``(N, k)``, or
        float scores ``(N, elements)``."""
        stream_type = self.layers[-1].output_type if self.layers else self.input_type
        return self.output.to_float(decode(stream_type, y_int))

    def to_dict(self):
        """A JSON-ready dict (see :meth:`from_dict`)."""
        return {"format": "hwgen-network", "version": 2, "name": self.name,
                "input_shape": list(self.input_shape), "input_type": self.input_type,
                "input_quantizer": (None if self.input_quantizer is None
                                    else self.input_quantizer.to_dict()),
                "layers": [layer.to_dict() for layer in self.layers],
                "output": self.output.to_dict(), "debug": self.debug,
                "input_order": self.input_order}

    @classmethod
    def from_dict(cls, data):
        """The network of a :meth:`to_dict` dict."""
        if not isinstance(data, dict) or data.get("format") != "hwgen-network":
            raise GraphError("not an hwgen network description (format 'hwgen-network')")
        quantizer = data.get("input_quantizer")
        return cls(name=data["name"], input_shape=tuple(data["input_shape"]),
                   input_type=data["input_type"],
                   layers=[_layer_from_dict(layer) for layer in data["layers"]],
                   output=OutputSpec(**data["output"]),
                   input_quantizer=None if quantizer is None else InputQuantizer(**quantizer),
                   debug=data.get("debug", {}), input_order=data.get("input_order"))

    def to_json(self, path):
        """Write the network as JSON to ``path``."""
        with open(path, "w") as file:
            json.dump(self.to_dict(), file, indent=1)

    @classmethod
    def from_json(cls, path):
        """Read a network written by :meth:`to_json`."""
        with open(path) as file:
            try:
                data = json.load(file)
            except json.JSONDecodeError as error:
                raise GraphError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(data)

    def summary(self):
        """One line per layer: kind, name, shape and datatypes."""
        lines = [f"input {self.input_shape} {self.input_type}"]
        previous = "input"
        for layer in self.layers:
            reads = "" if layer.inputs == (previous,) else f" <- {', '.join(layer.inputs)}"
            lines.append(f"{layer.kind:<11} {layer.name:<24} {layer.describe()}{reads}")
            previous = layer.name
        return "\n".join(lines)
