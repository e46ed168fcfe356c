"""Streamline an ONNX/QONNX model to integer layers and lower it to the IR.

One pass over the nodes in order keeps a *pending* tensor: the activation that the next
node consumes, described as "these element-wise reference operations applied to an
integer". The integer is one of

- ``acc``: an MVAU accumulator ``W_int @ x`` of the previous stream, with the float value
  ``A * acc + B`` that the ONNX ``MatMul``/``Gemm`` produces (``A``, ``B`` per row);
- ``stream``: an element of the previous layer's output stream (or an integer network
  input);
- ``input``: a float32 network input, to be quantized on the host.

Element-wise nodes (Mul, Add, BatchNormalization, Relu, Quant, MultiThreshold, ...) are
appended to the pending chain as :class:`~graph.evaluate.NodeRunner` calls; shape nodes
(Reshape, Flatten, Transpose, ...) only permute an index map from the ONNX tensor's
elements to stream elements. When a ``MatMul`` or the graph's end needs the pending
tensor as integers, it is *materialized*: the chain's steps are found by bisection
(:func:`graph.levels.staircase`) using the reference's own float32 arithmetic, and become
the thresholds of the MVAU (or of a standalone threshold layer, or of the host's input
quantizer). Scales, biases, batch-norm, sign and ReLU thereby end up in integer weights
and thresholds, and every quantized activation equals the reference's.

A ``TopK``/``ArgMax`` needs one increasing function of the integers for all classes. A final
raw ``MatMul`` (no activation) whose per-class bias is an integer multiple of the
accumulator's scale, ``a * acc_c + b_c`` with ``d_c = (b_c - b_0) / a`` integers, gets
``d_c`` as the MVAU's offsets (``a * (acc_c + d_c) + b_0``); other per-class offsets are
rejected.

Exactness: the element-wise nodes after a MatMul run on the very arithmetic of the
reference, so the IR reproduces its decisions whenever the MatMul output itself is exact in
float32 -- power-of-two scales (as FINN and Brevitas' POWER_OF_TWO scaling produce) and
integer/bipolar FINN-ONNX weights. With arbitrary float scales the IR follows exact
arithmetic at the MatMul, and can differ from the reference only where the exact value is a
rounding tie that the reference's own float32 summation error decides.
"""

from dataclasses import dataclass, field

import numpy as np
from onnx import helper, numpy_helper

from .errors import GraphError, node_error
from .evaluate import NodeRunner
from .ir import (InputQuantizer, LabelSelectLayer, MVAULayer, Network, OutputSpec,
                 ThresholdLayer, dtype_range, smallest_dtype)
from .levels import FLOAT_KEY_MAX, fit_grid, key_float, staircase

__all__ = ["lower"]

AFFINE_OPS = ("Mul", "Add", "Sub", "Div", "BatchNormalization", "DequantizeLinear", "Cast",
              "Neg")
MONOTONE_OPS = ("Relu", "Clip")
QUANTIZER_OPS = ("Quant", "BipolarQuant", "MultiThreshold", "QuantizeLinear", "Sign", "Trunc")
SHAPE_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout")
LAYER_OPS = ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul")
END_OPS = ("TopK", "ArgMax")
SUPPORTED = AFFINE_OPS + MONOTONE_OPS + QUANTIZER_OPS + SHAPE_OPS + LAYER_OPS + END_OPS
SUPPORTED_TEXT = ", ".join(SUPPORTED)
FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
MAX_AFFINE_SAMPLES = 4097


@dataclass
class Const:
    """A constant tensor, with its integer decomposition ``value == scale * q`` when known."""
    value: np.ndarray
    q: np.ndarray = None
    scale: np.ndarray = None
    dtype: str = None


@dataclass
class Stream:
    """An integer stream between layers: datatype, elements, and the reference's float value
    of each decoded integer (``values``: int64 ``(L, C)`` -> float64 ``(L, C)``)."""
    dtype: str
    channels: int
    values: object

    def range(self):
        """Decoded ``(low, high)`` int64 arrays ``(C,)``."""
        low, high = dtype_range(self.dtype)
        return (np.full(self.channels, low, dtype=np.int64),
                np.full(self.channels, high, dtype=np.int64))


@dataclass
class Step:
    """One element-wise node of a pending chain."""
    node: object
    kind: str  # "affine", "monotone" or "quantizer"
    runner: object
    index: np.ndarray  # ONNX tensor element -> stream element, shape of the tensor

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
    """The activation the next node consumes (see the module docstring)."""
    source: str  # "acc", "stream" or "input"
    tensor: str
    index: np.ndarray
    stream: Stream = None
    weights: np.ndarray = None  # acc: (C, K) int64
    acc_scale: np.ndarray = None
    acc_offset: np.ndarray = None
    acc_float32: bool = True
    node: object = None  # the MatMul of an acc
    weight_type: str = None
    steps: list = field(default_factory=list)

    @property
    def channels(self):
        return self.index.size

    def base(self, x):
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


def _bipolar_fixed(values):
    """``values`` of a BIPOLAR stream also answer for 0 (as -1), keeping them monotone."""
    def fixed(x):
        return values(np.where(x == 0, -1, x))
    return fixed


def _table_values(table, low):
    def values(x):
        index = np.clip(x - low, 0, table.shape[1] - 1)
        return np.take_along_axis(np.broadcast_to(table, (x.shape[0],) + table.shape),
                                  index[..., None], axis=2)[..., 0]
    return values


def _compress(thresholds):
    if len(thresholds) > 1 and np.all(thresholds == thresholds[:1]):
        return thresholds[:1].copy()
    return thresholds


def _weight_dtype(weights, declared):
    if declared is not None:
        low, high = dtype_range(declared)
        if weights.size == 0 or (weights.min() >= low and weights.max() <= high and
                                 (declared != "BIPOLAR" or np.all(weights != 0))):
            return declared
    if weights.size and np.all(np.abs(weights) == 1) and declared == "BIPOLAR":
        return "BIPOLAR"
    return smallest_dtype(min(int(weights.min(initial=0)), -1), int(weights.max(initial=0)))


class _Lowering:
    def __init__(self, model):
        self.model = model
        self.graph = model.graph
        self.consts = {}
        self.layers = []
        self.debug = {}
        self.names = set()
        self.input_quantizer = None
        self.pending = None
        self.label = None  # (tensor, k, node) once a TopK/ArgMax ran
        for init in self.graph.initializer:
            self.consts[init.name] = Const(numpy_helper.to_array(init))
        self.consumers = {}
        for node in self.graph.node:
            for name in set(node.input):
                self.consumers.setdefault(name, []).append(node)

    # --- shapes and annotations -------------------------------------------------------

    def shape(self, name, node=None):
        """Static shape of a tensor with the batch dimension set to 1."""
        vi = self.model.get_tensor_valueinfo(name)
        where = (f"{node.op_type} node '{node.name}'" if node is not None
                 else f"graph input '{name}'")
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            raise GraphError(f"{where}: tensor '{name}' has no shape (shape inference "
                             f"failed); supported: static shapes")
        dims = []
        for axis, dim in enumerate(vi.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and (axis > 0 or dim.dim_value == 1):
                dims.append(dim.dim_value)
            elif axis == 0 and not dim.HasField("dim_value"):
                dims.append(1)
            elif axis == 0:
                raise GraphError(f"{where}: tensor '{name}' has batch size {dim.dim_value}; "
                                 f"supported: batch size 1 or symbolic")
            else:
                raise GraphError(f"{where}: tensor '{name}' has a dynamic dimension "
                                 f"{dim.dim_param or '?'} at axis {axis}; supported: static "
                                 f"shapes (only the batch dimension may be symbolic)")
        if not dims:
            raise GraphError(f"{where}: tensor '{name}' is a scalar; supported: tensors with "
                             f"a batch dimension")
        return tuple(dims)

    def annotation(self, name):
        for annotation in self.graph.quantization_annotation:
            if annotation.tensor_name == name:
                for item in annotation.quant_parameter_tensor_names:
                    if item.key == "finn_datatype":
                        return item.value
        return None

    def elem_type(self, name):
        vi = self.model.get_tensor_valueinfo(name)
        return vi.type.tensor_type.elem_type if vi is not None else 1

    # --- constants --------------------------------------------------------------------

    def is_const(self, name):
        return name in self.consts

    def const(self, node, index, what="parameter"):
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            return None
        if name not in self.consts:
            raise node_error(node, f"{what} '{name}' is not a constant",
                             f"a constant {what}")
        return self.consts[name]

    def fold_constant(self, node):
        from qonnx.core.onnx_exec import execute_node
        context = {name: const.value for name, const in self.consts.items()
                   if name in node.input}
        context[""] = None
        for name in node.output:
            context[name] = np.zeros(0)
        opset = {o.domain: o.version for o in self.model.model.opset_import}
        try:
            execute_node(node, context, self.graph, opset.get(node.domain, 1))
        except GraphError:
            raise
        except Exception as error:
            raise node_error(node, f"cannot evaluate it on its constant inputs "
                             f"({str(error).splitlines()[0][:120]})") from None
        value = np.asarray(context[node.output[0]])
        const = Const(value)
        source = self.consts.get(node.input[0]) if node.input else None
        if node.op_type in ("Quant", "BipolarQuant"):
            self.check_quant(node)
            scale = np.broadcast_to(np.asarray(self.consts[node.input[1]].value,
                                               dtype=np.float64), value.shape)
            if np.any(scale == 0):
                raise node_error(node, "has a zero scale", "positive scales")
            const.scale = scale
            const.q = np.round(value / scale).astype(np.int64)
            if node.op_type == "BipolarQuant":
                const.dtype = "BIPOLAR"
            else:
                bits = int(self.consts[node.input[3]].value)
                signed = _attr_value(node, "signed", 1)
                const.dtype = ("BIPOLAR" if bits == 1 and signed
                               else f"{'INT' if signed else 'UINT'}{bits}")
        elif node.op_type == "DequantizeLinear":
            ints = np.asarray(self.consts[node.input[0]].value, dtype=np.int64)
            zero = self.consts.get(node.input[2]) if len(node.input) > 2 else None
            zero = 0 if zero is None else np.asarray(zero.value, dtype=np.int64)
            axis = _attr_value(node, "axis", 1)
            if np.ndim(zero) == 1 and ints.ndim > 1:
                shape = [1] * ints.ndim
                shape[axis] = -1
                zero = zero.reshape(shape)
            const.q = ints - zero
            with np.errstate(divide="ignore", invalid="ignore"):
                const.scale = np.where(const.q != 0, value / np.where(const.q == 0, 1, const.q),
                                       0.0)
        elif (node.op_type in SHAPE_OPS and source is not None and source.q is not None):
            const.q = self._run_on(node, source.q.astype(np.float64))
            const.q = np.round(const.q).astype(np.int64)
            const.scale = self._run_on(node, source.scale)
            const.dtype = source.dtype
        self.consts[node.output[0]] = const

    def _run_on(self, node, array):
        runner = NodeRunner(self.model, node, node.input[0],
                            {n: c.value for n, c in self.consts.items() if n in node.input})
        return runner(array)

    def check_quant(self, node):
        """Quant/BipolarQuant/Trunc parameters must be constants; bit widths and zero points
        integers."""
        for index in range(1, len(node.input)):
            self.const(node, index)
        if node.op_type == "Quant":
            zero = np.asarray(self.consts[node.input[2]].value)
            bits = np.asarray(self.consts[node.input[3]].value)
            if bits.size != 1 or bits.ravel()[0] != np.round(bits.ravel()[0]) or bits < 1:
                raise node_error(node, f"has bit width {bits.ravel().tolist()}",
                                 "one integer bit width >= 1")
            if np.any(zero != np.round(zero)):
                raise node_error(node, f"has a non-integer zero point "
                                 f"{zero.ravel().tolist()[:4]}", "integer zero points")
            scale = np.asarray(self.consts[node.input[1]].value)
            if np.any(scale <= 0):
                raise node_error(node, "has a scale <= 0", "positive scales")

    def weights(self, node, const, name):
        """``(q, scale, dtype)`` of a weight constant, ``value == scale * q``."""
        value = np.asarray(const.value, dtype=np.float64)
        if const.q is not None:
            return const.q, const.scale, const.dtype
        if const.dtype is None:
            declared = self.annotation(name)
            if declared is not None and declared not in ("FLOAT32", "FLOAT16"):
                low, high = dtype_range(declared)
                if (not np.all(value == np.round(value)) or value.min() < low or
                        value.max() > high or (declared == "BIPOLAR" and np.any(value == 0))):
                    raise node_error(node, f"weights '{name}' do not match their datatype "
                                     f"annotation {declared}",
                                     "weights whose values fit their finn_datatype")
                return value.astype(np.int64), np.ones_like(value), declared
        if np.all(value == np.round(value)):
            return value.astype(np.int64), np.ones_like(value), None
        raise node_error(node, f"weights '{name}' cannot be made integer (no Quant, "
                         f"DequantizeLinear or finn_datatype annotation, and not integer "
                         f"values)", "integer weights, quantized weights (Quant, BipolarQuant, "
                         "DequantizeLinear) or finn_datatype-annotated weights")

    # --- the pass over the nodes --------------------------------------------------------

    def run(self):
        inputs = [vi for vi in self.graph.input if vi.name not in self.consts]
        if len(inputs) != 1:
            raise GraphError(f"graph '{self.graph.name}': has {len(inputs)} inputs "
                             f"{[vi.name for vi in inputs]}; supported: exactly one input")
        if len(self.graph.output) != 1:
            raise GraphError(f"graph '{self.graph.name}': has {len(self.graph.output)} outputs; "
                             f"supported: exactly one output")
        self.input_name = inputs[0].name
        self.input_shape = self.shape(self.input_name)
        index = np.arange(int(np.prod(self.input_shape))).reshape(self.input_shape)
        declared = self.annotation(self.input_name)
        if declared is not None and declared not in ("FLOAT32", "FLOAT16"):
            try:
                dtype_range(declared)
            except GraphError:
                raise GraphError(f"graph input '{self.input_name}': datatype {declared} is not "
                                 f"supported; supported: BIPOLAR, BINARY, UINTn, INTn") from None
            stream = Stream(declared, index.size, lambda x: x.astype(np.float64))
            if declared == "BIPOLAR":
                stream.values = _bipolar_fixed(stream.values)
            self.input_type = declared
            self.pending = Pending("stream", self.input_name, index, stream=stream)
        else:
            self.input_type = None
            self.pending = Pending("input", self.input_name, index)

        for node in self.graph.node:
            names = [name for name in node.input if name]
            if all(self.is_const(name) for name in names) and node.op_type not in END_OPS:
                self.fold_constant(node)
                continue
            dynamic = [name for name in names if not self.is_const(name)]
            if self.label is not None and self.label[0] in dynamic:
                self.after_label(node)
                continue
            if node.op_type not in SUPPORTED:
                raise node_error(node, f"op type {node.op_type} (domain "
                                 f"'{node.domain or 'ai.onnx'}') is not supported",
                                 SUPPORTED_TEXT)
            if self.pending is None or self.pending.tensor not in dynamic:
                raise node_error(node, f"input {dynamic} does not follow the single chain of "
                                 f"layers", "one chain from the graph input to its output "
                                 "(no branches)")
            if len(dynamic) != 1:
                raise node_error(node, f"has {len(dynamic)} non-constant inputs "
                                 f"{sorted(set(dynamic))}", "one activation input, all other "
                                 "inputs constant (weights, scales, thresholds)")
            users = self.consumers.get(self.pending.tensor, [])
            if len(users) > 1:
                raise node_error(node, f"tensor '{self.pending.tensor}' is also used by "
                                 f"{[u.name for u in users if u is not node]}",
                                 "one chain of layers (no branches)")
            self.handle(node)

        output = self.graph.output[0].name
        if self.label is not None:
            if output != self.label[0]:
                raise GraphError(f"graph output '{output}' is not the label of "
                                 f"{self.label[2].op_type} node '{self.label[2].name}'; "
                                 f"supported: the indices output as the graph output")
            spec = OutputSpec("label", shape=self.shape(output)[1:], k=self.label[1])
        else:
            if self.pending.tensor != output:
                raise GraphError(f"graph output '{output}' is not computed by the chain of "
                                 f"layers (which ends at '{self.pending.tensor}')")
            spec = self.finish_scores(output)
        input_type = self.input_type
        if self.input_quantizer is not None:
            input_type = self.input_quantizer.output_type
        return Network(name=self.graph.name or "network", input_shape=self.input_shape[1:],
                       input_type=input_type, layers=self.layers, output=spec,
                       input_quantizer=self.input_quantizer, debug=self.debug)

    def handle(self, node):
        op = node.op_type
        if op in SHAPE_OPS:
            self.reshape(node)
        elif op in LAYER_OPS:
            self.matmul(node)
        elif op in END_OPS:
            self.label_select(node)
        else:
            self.elementwise(node)

    # --- element-wise and shape nodes -------------------------------------------------

    def elementwise(self, node):
        op = node.op_type
        pending = self.pending
        dyn_index = list(node.input).index(pending.tensor)
        if op == "Div" and dyn_index != 0:
            raise node_error(node, "divides a constant by the activation",
                             "Div of the activation by a constant")
        if op in ("BatchNormalization", "Quant", "BipolarQuant", "MultiThreshold",
                  "QuantizeLinear", "DequantizeLinear", "Trunc", "Clip") and dyn_index != 0:
            raise node_error(node, "has the activation as a parameter input",
                             "the activation as input 0")
        if op == "Cast" and helper.get_attribute_value(_attr(node, "to")) not in FLOAT_TYPES:
            raise node_error(node, "casts to a non-float type", "Cast to float types")
        if op in ("Quant", "BipolarQuant", "Trunc"):
            self.check_quant(node)
        if op == "MultiThreshold":
            self.check_multithreshold(node)
        in_shape = self.shape(pending.tensor, node)
        out_shape = self.shape(node.output[0], node)
        if in_shape != out_shape:
            raise node_error(node, f"changes the shape {in_shape} to {out_shape} (a constant "
                             f"operand broadcasts the activation)",
                             "constants that broadcast to the activation's shape")
        if op == "BatchNormalization" and len(node.output) > 1 and any(node.output[1:]):
            raise node_error(node, "is in training mode", "inference BatchNormalization")
        kind = ("affine" if op in AFFINE_OPS else "monotone" if op in MONOTONE_OPS
                else "quantizer")
        runner = NodeRunner(self.model, node, pending.tensor,
                            {name: self.consts[name].value for name in node.input
                             if name in self.consts})
        pending.steps.append(Step(node, kind, runner, pending.index))
        pending.tensor = node.output[0]

    def check_multithreshold(self, node):
        thresholds = np.asarray(self.const(node, 1, "thresholds").value)
        if thresholds.ndim != 2:
            raise node_error(node, f"has thresholds of shape {thresholds.shape}",
                             "thresholds of shape (channels, T) or (1, T)")
        if np.any(np.diff(thresholds, axis=1) < 0):
            row = int(np.flatnonzero(np.any(np.diff(thresholds, axis=1) < 0, axis=1))[0])
            raise node_error(node, f"has unsorted thresholds (row {row}: "
                             f"{thresholds[row].tolist()[:6]})",
                             "thresholds sorted ascending in every row")
        if _attr(node, "out_dtype") is None:
            raise node_error(node, "has no out_dtype attribute",
                             "MultiThreshold with out_dtype")

    def reshape(self, node):
        pending = self.pending
        if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
            raise node_error(node, "has a mask output", "inference Dropout")
        out_shape = self.shape(node.output[0], node)
        if node.op_type == "Transpose":
            perm = _attr(node, "perm")
            perm = (list(helper.get_attribute_value(perm)) if perm is not None
                    else list(range(pending.index.ndim))[::-1])
            if perm[0] != 0:
                raise node_error(node, f"moves the batch axis (perm {perm})",
                                 "transposes that keep axis 0 (batch) first")
            index = pending.index.transpose(perm)
        else:
            index = pending.index.reshape(out_shape)
        if index.shape != out_shape:
            raise node_error(node, f"gives shape {index.shape}, but shape inference says "
                             f"{out_shape}", "shape nodes with consistent shapes")
        pending.index = index
        pending.tensor = node.output[0]

    # --- layers -----------------------------------------------------------------------

    def matmul(self, node):
        op = node.op_type
        pending = self.pending
        if node.input[0] != pending.tensor:
            raise node_error(node, "has the activation as its right operand",
                             "activation @ constant weights")
        shape = self.shape(pending.tensor, node)
        if len(shape) != 2:
            raise node_error(node, f"has an input of shape {shape}",
                             "2-D (batch, features) inputs; Flatten first")
        weight_index = 3 if op == "QLinearMatMul" else 1
        weight_const = self.const(node, weight_index, "weight")
        q, wscale, declared = self.weights(node, weight_const, node.input[weight_index])
        value = np.asarray(weight_const.value, dtype=np.float64)
        alpha, beta, bias = 1.0, 1.0, None
        float_out = True
        if op == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0):
                raise node_error(node, "has transA=1", "Gemm with transA=0")
            alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
            if attrs.get("transB", 0):
                q, wscale, value = q.T, wscale.T, value.T
            if len(node.input) > 2 and node.input[2]:
                bias = np.asarray(self.const(node, 2, "bias").value, dtype=np.float64)
        elif op == "MatMulInteger":
            float_out = False
            if len(node.input) > 3 and node.input[3]:
                zero = np.asarray(self.const(node, 3, "zero point").value, dtype=np.int64)
                q = q - zero
                value = value - zero
                wscale = np.ones_like(value)
        elif op == "QLinearMatMul":
            float_out = False
            zero = np.asarray(self.const(node, 5, "zero point").value, dtype=np.int64)
            q = q - zero
            value = q.astype(np.float64)
            wscale = np.ones_like(value)
        if value.ndim != 2 or value.shape[0] != shape[1]:
            raise node_error(node, f"has weights of shape {value.shape} for inputs of shape "
                             f"{shape}", "2-D weights (in features, out features)")
        stream, a, b = self.materialize_for(node)
        if op in ("MatMulInteger", "QLinearMatMul"):
            zero_index = 2
            zero = self.consts.get(node.input[zero_index]) if len(node.input) > zero_index \
                else None
            if zero is not None:
                b = b - np.broadcast_to(np.asarray(zero.value, dtype=np.float64), b.shape)
        perm = self.pending.index.ravel()  # feature k -> stream element
        a_k, b_k = a[perm], b[perm]
        unit = a_k[:, None] * np.asarray(wscale, dtype=np.float64)
        weights_int, colscale = _integer_weights(node, q, unit)
        acc_weights = np.zeros((q.shape[1], stream.channels), dtype=np.int64)
        acc_weights[:, perm] = weights_int.T
        offset = b_k @ value
        if op == "Gemm":
            colscale = colscale * alpha
            offset = offset * alpha
            if bias is not None:
                offset = offset + beta * np.broadcast_to(bias.reshape(-1), offset.shape)
        out_shape = self.shape(node.output[0], node)
        self.pending = Pending("acc", node.output[0],
                               np.arange(q.shape[1]).reshape(out_shape),
                               stream=stream, weights=acc_weights, acc_scale=colscale,
                               acc_offset=offset, acc_float32=float_out, node=node,
                               weight_type=_weight_dtype(acc_weights, declared))
        if op == "QLinearMatMul":
            self.pending.steps.append(self.qlinear_requant(node))

    def qlinear_requant(self, node):
        a_scale, b_scale, y_scale = (np.float32(self.consts[node.input[i]].value)
                                     for i in (1, 4, 6))
        y_zero = self.consts[node.input[7]].value
        multiplier = np.float32(np.float32(a_scale * b_scale) / y_scale)
        info = np.iinfo(np.asarray(y_zero).dtype)

        def requant(x):
            scaled = np.round(x.astype(np.float32) * multiplier)
            return np.clip(scaled + int(y_zero), info.min, info.max).astype(np.float64)
        return Step(node, "quantizer", requant, np.arange(self.pending.channels)[None])

    def materialize_for(self, node):
        """Make the pending tensor an integer stream for ``node``; returns the stream and the
        per-element affine map ``value = a * decoded + b`` of its reference values."""
        stream = self.materialize(node)
        low, high = stream.range()
        a, b = _fit_affine(stream.values, low, high, stream.dtype)
        if a is None:
            raise node_error(node, f"its input '{self.pending.tensor}' is not an affine "
                             f"function of integers", "quantized activations on evenly "
                             "spaced levels")
        return stream, a, b

    def materialize(self, node):
        """Turn the pending chain into a layer (or nothing) and return the new stream."""
        pending = self.pending
        kinds = {step.kind for step in pending.steps}
        if pending.source == "input":
            if "quantizer" not in kinds:
                raise GraphError(
                    f"graph input '{self.input_name}': has no integer datatype annotation "
                    f"(finn_datatype) and no quantizer before {node.op_type} node "
                    f"'{node.name}'; supported: an annotated integer input, or a Quant, "
                    f"QuantizeLinear, BipolarQuant or MultiThreshold on it")
            return self.materialize_input()
        if pending.source == "stream" and "quantizer" not in kinds and "monotone" not in kinds:
            stream = Stream(pending.stream.dtype, pending.stream.channels,
                            _bipolar_fixed(pending.evaluate)
                            if pending.stream.dtype == "BIPOLAR" else pending.evaluate)
            self.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
            return stream
        if pending.source == "acc" and "quantizer" not in kinds:
            nonlinear = [s.node for s in pending.steps if s.kind != "affine"]
            if nonlinear:
                raise node_error(nonlinear[0], "acts on a raw accumulator without a quantizer "
                                 "after it", "Relu/Clip followed by Quant, MultiThreshold or "
                                 "QuantizeLinear")
            return self.raw_mvau()
        return self.thresholded()

    def _layer_name(self, base):
        name = base or f"layer{len(self.layers)}"
        while name in self.names:
            name += "_"
        self.names.add(name)
        return name

    def raw_mvau(self):
        pending = self.pending
        perm = pending.index.ravel()  # tensor element -> acc row
        weights = pending.weights[perm]
        layer = MVAULayer(name=self._layer_name(pending.node.name), mw=weights.shape[1],
                          mh=weights.shape[0], weights=weights,
                          input_type=pending.stream.dtype, weight_type=pending.weight_type,
                          output_type="INT2", thresholds=None)
        low, high = layer.accumulator_range()
        layer.output_type = smallest_dtype(min(low.min(), -1), high.max())
        self.layers.append(layer)
        inverse = np.argsort(perm)

        def values(x):
            return pending.evaluate(x[:, inverse])[:, perm]
        stream = Stream(layer.output_type, layer.mh, values)
        self._record(layer.name, pending.tensor, stream)
        self.pending = Pending("stream", pending.tensor,
                               np.arange(layer.mh).reshape(pending.index.shape), stream=stream)
        return stream

    def _record(self, name, tensor, stream, order=None):
        low, high = stream.range()
        a, b = _fit_affine(stream.values, low, high, stream.dtype)
        if a is not None:
            entry = {"tensor": tensor, "scale": a.tolist(), "offset": b.tolist()}
            if order is not None:
                entry["order"] = order.tolist()
            self.debug[name] = entry

    def thresholded(self):
        """Thresholds (MVAU or standalone) for a chain that ends in quantized levels."""
        pending = self.pending
        if pending.source == "acc":
            perm = pending.index.ravel()
            weights = pending.weights[perm]
            w_low, w_high = dtype_range(pending.stream.dtype)
            low = np.minimum(weights * w_low, weights * w_high).sum(axis=1)
            high = np.maximum(weights * w_low, weights * w_high).sum(axis=1)
            inverse = np.argsort(perm)

            def f(x):
                return pending.evaluate(x[:, inverse])[:, perm]
        else:
            low, high = pending.stream.range()
            f = pending.evaluate
        down = f(low[None])[0] > f(high[None])[0]
        if pending.source != "acc" and down.any():
            node = pending.steps[-1].node
            raise node_error(node, "decreases with its integer input stream",
                             "non-decreasing activations of a stream (only MVAU rows can be "
                             "negated)")
        sign = np.where(down, -1, 1)

        def g(x):
            return f(x * sign)
        s_low = np.where(down, -high, low)
        s_high = np.where(down, -low, high)
        last = pending.steps[-1].node if pending.steps else pending.node
        try:
            steps = staircase(g, s_low, s_high)
            grid = fit_grid([v for _, v in steps])
        except GraphError as error:
            raise node_error(last, str(error), "quantizers with evenly spaced levels") from None
        thresholds = grid.thresholds([s for s, _ in steps], s_high)
        table = grid.table([v for _, v in steps])
        if pending.source == "stream" and _identity(grid, steps, low, high):
            stream = Stream(pending.stream.dtype, pending.channels,
                            _table_values(table, dtype_range(grid.dtype)[0]))
            self.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
            return stream
        dtype = grid.dtype
        bias = 0 if dtype == "BIPOLAR" else grid.low
        if thresholds.shape[1] == 0:
            thresholds = (s_high + 1)[:, None]
            dtype = smallest_dtype(grid.low, grid.low + 1)
        thresholds = _compress(thresholds)
        values = _table_values(table, dtype_range(grid.dtype)[0])
        if dtype == "BIPOLAR":
            values = _bipolar_fixed(values)
        stream = Stream(dtype, pending.channels, values)
        if pending.source == "acc":
            weights = pending.weights[pending.index.ravel()] * sign[:, None]
            layer = MVAULayer(name=self._layer_name(pending.node.name), mw=weights.shape[1],
                              mh=weights.shape[0], weights=weights,
                              input_type=pending.stream.dtype,
                              weight_type=_weight_dtype(weights, pending.weight_type),
                              output_type=dtype, thresholds=thresholds, bias=bias)
            index = np.arange(layer.mh).reshape(pending.index.shape)
            order = None
        else:
            node = pending.steps[-1].node
            layer = ThresholdLayer(name=self._layer_name(node.name), channels=pending.channels,
                                   thresholds=thresholds, bias=bias,
                                   input_type=pending.stream.dtype, output_type=dtype)
            index = pending.index
            order = None if np.all(index.ravel() == np.arange(index.size)) else index.ravel()
        self.layers.append(layer)
        self._record(layer.name, pending.tensor, stream, order)
        self.pending = Pending("stream", pending.tensor, index, stream=stream)
        return stream

    def materialize_input(self):
        pending = self.pending
        channels = pending.channels
        low = np.full(channels, -FLOAT_KEY_MAX, dtype=np.int64)
        high = np.full(channels, FLOAT_KEY_MAX, dtype=np.int64)

        def f(keys):
            return pending.evaluate(key_float(keys))
        last = pending.steps[-1].node
        down = f(low[None])[0] > f(high[None])[0]
        if down.any():
            raise node_error(last, "decreases with the network input",
                             "input quantization that does not decrease with the input")
        try:
            steps = staircase(f, low, high)
            grid = fit_grid([v for _, v in steps])
        except GraphError as error:
            raise node_error(last, str(error), "quantizers with evenly spaced levels") from None
        keys = grid.thresholds([s for s, _ in steps], high)
        thresholds = np.where(keys > FLOAT_KEY_MAX, np.inf,
                              np.where(keys <= -FLOAT_KEY_MAX, -np.inf, key_float(keys)))
        dtype = grid.dtype
        table = grid.table([v for _, v in steps])
        values = _table_values(table, dtype_range(grid.dtype)[0])
        if dtype == "BIPOLAR":
            values = _bipolar_fixed(values)
        stream = Stream(dtype, channels, values)
        self.input_quantizer = InputQuantizer(_compress(thresholds.astype(np.float32)),
                                              0 if dtype == "BIPOLAR" else grid.low, dtype)
        self.pending = Pending("stream", pending.tensor, pending.index, stream=stream)
        self.debug["input"] = {"tensor": pending.tensor, "scale": grid.scale.tolist(),
                               "offset": grid.offset.tolist()}
        return stream

    # --- the end of the graph -----------------------------------------------------------

    def label_select(self, node):
        op = node.op_type
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        shape = self.shape(self.pending.tensor, node)
        axis = attrs.get("axis", -1 if op == "TopK" else 0)
        if len([d for d in shape[1:] if d != 1]) > 1 or (axis % len(shape)) == 0 or \
                shape[axis % len(shape)] != int(np.prod(shape)):
            raise node_error(node, f"selects along axis {axis} of shape {shape}",
                             "selection along the one feature axis")
        if op == "TopK":
            k = int(np.asarray(self.const(node, 1, "K").value).ravel()[0])
            if not attrs.get("largest", 1) or not attrs.get("sorted", 1):
                raise node_error(node, "selects the smallest or unsorted values",
                                 "largest=1, sorted=1")
            if node.output[0] and (self.consumers.get(node.output[0]) or
                                   node.output[0] in [o.name for o in self.graph.output]):
                raise node_error(node, "uses its values output", "only the indices output")
            label = node.output[1]
        else:
            k = 1
            if attrs.get("select_last_index", 0):
                raise node_error(node, "has select_last_index=1", "select_last_index=0")
            label = node.output[0]
        pending = self.pending
        raw = pending.source == "acc" and all(s.kind == "affine" for s in pending.steps)
        stream = self.materialize(node)
        low, high = stream.range()
        a, b = _fit_affine(stream.values, low, high, stream.dtype)
        offsets = None
        if a is not None and np.all(a == a[0]) and a[0] > 0 and not np.all(b == b[0]):
            offsets = _class_offsets(a[0], b, low, high) if raw else None
            if offsets is not None:
                stream = self.offset_raw_mvau(offsets)
                b = np.full_like(b, b[0])
        if a is None or not (np.all(a == a[0]) and np.all(b == b[0]) and a[0] > 0):
            raise node_error(node, "follows per-element scales or offsets (values are "
                             "not one increasing function of the integers of all classes)",
                             "the same positive scale and offset for every class (per-class "
                             "offsets: integer multiples of the scale, straight after a MatMul)")
        if not np.all(self.pending.index.ravel() == np.arange(self.pending.channels)):
            raise node_error(node, "follows a reordering of a thresholded stream",
                             "Transpose before the last MatMul")
        layer = LabelSelectLayer(name=self._layer_name(node.name), channels=stream.channels,
                                 k=k, input_type=stream.dtype)
        self.layers.append(layer)
        self.label = (label, k, node)
        self.pending = None

    def offset_raw_mvau(self, offsets):
        """Add per-class integer ``offsets`` to the raw MVAU layer just made, so that its
        outputs are one increasing function of the integers for every class; returns the
        new stream."""
        layer = self.layers[-1]
        old = self.pending.stream
        layer.offsets = offsets
        low, high = layer.accumulator_range()
        layer.output_type = smallest_dtype(min(low.min(), -1), high.max())

        def values(x):
            return old.values(x - offsets)
        stream = Stream(layer.output_type, layer.mh, values)
        self._record(layer.name, self.pending.tensor, stream)
        self.pending = Pending("stream", self.pending.tensor, self.pending.index, stream=stream)
        return stream

    def after_label(self, node):
        if node.op_type not in SHAPE_OPS + ("Cast",):
            raise node_error(node, f"follows {self.label[2].op_type} node "
                             f"'{self.label[2].name}', which must be at the end",
                             "TopK/ArgMax as the last node (shape nodes may follow it)")
        self.label = (node.output[0],) + self.label[1:]

    def finish_scores(self, output):
        stream = self.materialize(self.graph.node[-1])
        low, high = stream.range()
        a, b = _fit_affine(stream.values, low, high, stream.dtype)
        if a is None:
            raise GraphError(f"graph output '{output}': values are not an affine function of "
                             f"integers; supported: quantized or raw integer outputs")
        if not np.all(self.pending.index.ravel() == np.arange(self.pending.channels)):
            raise GraphError(f"graph output '{output}': is a reordering of a thresholded "
                             f"stream; supported: Transpose before the last MatMul")
        return OutputSpec("scores", shape=self.shape(output)[1:], scale=a.tolist(),
                          offset=b.tolist())


def _class_offsets(a, b, low, high):
    """Integers ``d`` with ``b == b[0] + a * d`` (within float rounding), or None."""
    d = (b - b[0]) / a
    rounded = np.round(d)
    scale = max(1.0, float(np.abs(d).max()), float(np.abs(low).max()),
                float(np.abs(high).max()))
    if np.any(np.abs(d - rounded) > 1e-6 * scale):
        return None
    return rounded.astype(np.int64)


def _attr(node, name):
    for attribute in node.attribute:
        if attribute.name == name:
            return attribute
    return None


def _attr_value(node, name, default=None):
    attribute = _attr(node, name)
    return default if attribute is None else helper.get_attribute_value(attribute)


def _identity(grid, steps, low, high):
    if grid.dtype == "BIPOLAR":
        return (all(len(s) == 2 and s[1] == 1 for s, _ in steps) and np.all(low == -1) and
                all(np.array_equal(m, [-1, 1]) for m in grid.m))
    return (all(len(s) == h - l + 1 for (s, _), l, h in zip(steps, low, high)) and
            all(np.array_equal(m, np.arange(l, h + 1)) for m, l, h in zip(grid.m, low, high)))


def _samples(low, high, dtype):
    if dtype == "BIPOLAR":
        return np.array([-1, 1])
    lo, hi = int(low.min()), int(high.max())
    if hi - lo + 1 <= MAX_AFFINE_SAMPLES:
        return np.arange(lo, hi + 1)
    inner = np.linspace(lo, hi, MAX_AFFINE_SAMPLES - 3).round().astype(np.int64)
    return np.unique(np.concatenate([inner, [lo, hi, 0]]))


def _fit_affine(values, low, high, dtype):
    """``(a, b)`` float64 ``(C,)`` with ``values(x) == a * x + b`` on the stream's integers,
    or ``(None, None)`` when the values are not affine."""
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


def _integer_weights(node, q, unit):
    """Integer weights ``(K, N)`` and per-column scales ``(N,)`` with
    ``unit * q == colscale * weights`` (``unit``: input scale times weight scale)."""
    magnitude = np.where(q != 0, np.abs(unit), np.inf)
    colscale = magnitude.min(axis=0)
    colscale = np.where(np.isfinite(colscale) & (colscale > 0), colscale, 1.0)
    ratio = unit / colscale
    rounded = np.round(ratio)
    bad = (q != 0) & (np.abs(ratio - rounded) > 1e-6 * np.maximum(np.abs(ratio), 1))
    if bad.any():
        k, n = np.argwhere(bad)[0]
        raise node_error(node, f"weights cannot be made integer: the scale of input {k} times "
                         f"the weight scale of output {n} is {ratio[k, n]:.6g} times the "
                         f"column's smallest", "per-tensor activation scales, or scales in "
                         "integer ratios")
    return (rounded * q).astype(np.int64), colscale


def lower(model):
    """Lower a shape-inferred :class:`qonnx.core.modelwrapper.ModelWrapper` to a
    :class:`graph.ir.Network` (see the module docstring). Raises :class:`GraphError`."""
    return _Lowering(model).run()
