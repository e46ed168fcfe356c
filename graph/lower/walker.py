"""The lowering's state and its one pass over the nodes.

:class:`Lowering` holds what the pass knows: the model's constants, the layers made so far,
a pending tensor per activation not consumed yet and, once a TopK/ArgMax ran, the label.
For each node it folds constant nodes, takes the pending tensor of its activation input and
calls the node's handler from :data:`graph.lower.registry.HANDLERS` (a node of several
activations, such as a residual ``Add``, calls its :data:`~graph.lower.registry.JOINS`
handler with all of them). A tensor that several nodes read is a fork: it is materialized
into a stream once, and every reader starts from that stream (the IR edge that the
elaborator duplicates). At the end it materializes the scores (or checks the label) and
returns the :class:`graph.ir.Network`.

Feature maps: a graph input of shape ``(1, C, H, W)`` (or ``(1, C, L)``) streams in NHWC
order (:attr:`graph.ir.Network.input_order` permutes the host's NCHW array), so the pending
index of every feature map is the NHWC layout of its NCHW tensor
(:func:`graph.lower.maps.nhwc_index`).
"""

import numpy as np
import onnx

from ..errors import GraphError, node_error
from ..ir import Network, OutputSpec, dtype_range
from . import handlers  # noqa: F401  (fills the registry)
from .constants import Constants
from .declared import annotation, shape
from .pending import Pending, Stream, bipolar_fixed
from .maps import nhwc_index
from .registry import HANDLERS, JOINS, folds_constants, moves_elements_only, supported_text
from .thresholds import materialize

__all__ = ["Lowering", "lower"]


def lower(model):
    """Lower a model to the IR (see :mod:`graph.lower`).

    Parameters
    ----------
    model : qonnx.core.modelwrapper.ModelWrapper
        The shape-inferred model.

    Returns
    -------
    graph.ir.Network
        Its integer layers.

    Raises
    ------
    GraphError
        If the model uses an op, a shape or a quantization that is not supported.
    """
    return Lowering(model).run()


class Lowering:
    """The state of one lowering (handlers read and update it).

    Parameters
    ----------
    model : qonnx.core.modelwrapper.ModelWrapper
        The shape-inferred model.

    Attributes
    ----------
    constants : graph.lower.constants.Constants
        The constant tensors.
    layers : list
        The IR layers made so far, in stream order.
    pending : graph.lower.pending.Pending
        The activation the next node consumes; ``None`` after a label select.
    label : tuple
        ``(tensor, k, node)`` once a TopK/ArgMax ran, else ``None``.
    input_quantizer : graph.ir.InputQuantizer
        The host's quantizer of a float input, once made.
    debug : dict
        Per layer: the affine map from its output integers to the reference's values.
    consumers : dict
        Tensor name -> the nodes that read it.
    """

    def __init__(self, model):
        self.model = model
        self.graph = model.graph
        self.constants = Constants(model)
        self.layers = []
        self.debug = {}
        self.names = set()
        self.input_quantizer = None
        self.pending = None
        self.label = None
        self.input_name = self.input_shape = self.input_type = None  # set by run()
        self.consumers = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.tensors = {}   # activation tensor -> its Pending, until read
        self.forks = {}     # forked tensor -> its materialized Pending
        self.input_order = None

    def shape(self, name, node=None):
        """Static shape of tensor ``name`` (see :func:`graph.lower.declared.shape`)."""
        return shape(self.model, name, node)

    def layer_name(self, base):
        """A layer name not used yet: ``base`` (the node's name), with ``_`` appended as
        needed."""
        name = base or f"layer{len(self.layers)}"
        while name in self.names:
            name += "_"
        self.names.add(name)
        return name

    def add(self, layer, *sources):
        """Append ``layer``, reading the IR edges of the streams ``sources`` (default: the
        pending tensor's stream); returns it."""
        streams = sources or (self.pending.stream,)
        layer.inputs = tuple(stream.edge for stream in streams)
        self.layers.append(layer)
        return layer

    def record(self, name, tensor, stream, order=None):
        """Note in ``debug`` how layer ``name``'s outputs map to the values of ``tensor``."""
        a, b = stream.affine()
        if a is not None:
            if order is not None:  # scale and offset per element of the tensor, as the values
                a, b = a[order], b[order]
            entry = {"tensor": tensor, "scale": a.tolist(), "offset": b.tolist()}
            if order is not None:
                entry["order"] = order.tolist()
            self.debug[name] = entry

    def run(self):
        """Lower every node; returns the :class:`graph.ir.Network`."""
        self._start()
        for node in self.graph.node:
            self._visit(node)
        spec = self._output()
        input_type = self.input_type
        if self.input_quantizer is not None:
            input_type = self.input_quantizer.output_type
        return Network(name=self.graph.name or "network", input_shape=self.input_shape[1:],
                       input_type=input_type, layers=self.layers, output=spec,
                       input_quantizer=self.input_quantizer, debug=self.debug,
                       input_order=self.input_order)

    def _start(self):
        inputs = [vi for vi in self.graph.input if vi.name not in self.constants]
        if len(inputs) != 1:
            raise GraphError(f"graph '{self.graph.name}': has {len(inputs)} inputs "
                             f"{[vi.name for vi in inputs]}; supported: exactly one input")
        if len(self.graph.output) != 1:
            raise GraphError(f"graph '{self.graph.name}': has {len(self.graph.output)} outputs; "
                             f"supported: exactly one output")
        self.input_name = inputs[0].name
        self.input_shape = self.shape(self.input_name)
        index = np.arange(int(np.prod(self.input_shape))).reshape(self.input_shape)
        if len(self.input_shape) in (3, 4) and self.input_shape[0] == 1:
            index = nhwc_index(self.input_shape)
            if not np.array_equal(index.ravel(), np.arange(index.size)):
                self.input_order = np.argsort(index.ravel()).tolist()
        declared = _input_datatype(self.input_name, inputs[0],
                                   annotation(self.graph, self.input_name))
        if declared is None or declared in ("FLOAT32", "FLOAT16"):
            self.input_type = None
            self.pending = Pending("input", self.input_name, index)
            self.tensors[self.input_name] = self.pending
            return
        try:
            dtype_range(declared)
        except GraphError:
            raise GraphError(f"graph input '{self.input_name}': datatype {declared} is not "
                             f"supported; supported: BIPOLAR, BINARY, UINTn, INTn") from None
        stream = Stream(declared, index.size, lambda x: x.astype(np.float64))
        if declared == "BIPOLAR":
            stream.values = bipolar_fixed(stream.values)
        self.input_type = declared
        self.pending = Pending("stream", self.input_name, index, stream=stream)
        self.tensors[self.input_name] = self.pending

    def _visit(self, node):
        names = [name for name in node.input if name]
        if all(name in self.constants for name in names) and folds_constants(node.op_type):
            self.constants.fold(node)
            return
        dynamic = [name for name in names if name not in self.constants]
        if self.label is not None and self.label[0] in dynamic:
            self._follow_label(node)
            return
        entry = HANDLERS.get(node.op_type)
        if len(dynamic) > 1:
            if node.op_type not in JOINS:
                raise node_error(node, f"has {len(dynamic)} non-constant inputs "
                                 f"{list(dynamic)}", "one activation input, all other inputs "
                                 "constant (weights, scales, thresholds); or Add/Concat of "
                                 "activations")
            inputs = [self._take(name, node) for name in dynamic]
            self.pending = None
            JOINS[node.op_type](self, node, inputs)
        else:
            if entry is None:
                raise node_error(node, f"op type {node.op_type} (domain "
                                 f"'{node.domain or 'ai.onnx'}') is not supported",
                                 supported_text() + ", and Add/Concat of activations")
            self.pending = self._take(dynamic[0], node) if dynamic else None
            if self.pending is None:
                raise node_error(node, "has no activation input", "nodes on the "
                                 "activations of the graph input")
            entry.run(self, node)
        if self.pending is not None:
            self.tensors[self.pending.tensor] = self.pending

    def _take(self, tensor, node):
        """The pending tensor of activation ``tensor`` for ``node`` to consume: a fork (a
        tensor several nodes read) is materialized into a stream once, and each reader
        gets its own pending tensor on that stream."""
        readers = len(self.consumers.get(tensor, []))
        if tensor in self.forks:
            return _reader(self.forks[tensor])
        if tensor not in self.tensors:
            raise node_error(node, f"input '{tensor}' is not an activation computed so far",
                             "nodes in topological order on the graph input's activations")
        pending = self.tensors.pop(tensor)
        if readers <= 1:
            return pending
        self.pending = pending
        materialize(self, node)
        self.forks[tensor] = self.pending
        return _reader(self.pending)

    def _follow_label(self, node):
        # shape nodes and a Cast keep the label's values
        if not (moves_elements_only(node.op_type) or node.op_type == "Cast"):
            raise node_error(node, f"follows {self.label[2].op_type} node "
                             f"'{self.label[2].name}', which must be at the end",
                             "TopK/ArgMax as the last node (shape nodes may follow it)")
        self.label = (node.output[0],) + self.label[1:]

    def _output(self):
        output = self.graph.output[0].name
        if self.label is None:
            self.pending = self.tensors.get(output, self.forks.get(output))
        if self.label is not None:
            if output != self.label[0]:
                raise GraphError(f"graph output '{output}' is not the label of "
                                 f"{self.label[2].op_type} node '{self.label[2].name}'; "
                                 f"supported: the indices output as the graph output")
            return OutputSpec("label", shape=self.shape(output)[1:], k=self.label[1])
        if self.pending is None or self.pending.tensor != output:
            raise GraphError(f"graph output '{output}' is not computed by the layers "
                             f"(supported: one output computed from the graph input)")
        return self._scores(output)

    def _scores(self, output):
        stream = materialize(self, self.graph.node[-1])
        a, b = stream.affine()
        if a is None:
            raise GraphError(f"graph output '{output}': values are not an affine function of "
                             f"integers; supported: quantized or raw integer outputs")
        if not np.all(self.pending.index.ravel() == np.arange(self.pending.channels)):
            raise GraphError(f"graph output '{output}': is a reordering of a thresholded "
                             f"stream; supported: Transpose before the last MatMul")
        return OutputSpec("scores", shape=self.shape(output)[1:], scale=a.tolist(),
                          offset=b.tolist())


def _reader(fork):
    """A reader's own pending tensor on a forked stream."""
    return Pending("stream", fork.tensor, fork.index.copy(), stream=fork.stream)


#: ONNX integer element types and the datatype each one is.
INTEGER_ELEMENT_TYPES = {
    onnx.TensorProto.BOOL: "BINARY", onnx.TensorProto.UINT8: "UINT8",
    onnx.TensorProto.INT8: "INT8", onnx.TensorProto.UINT16: "UINT16",
    onnx.TensorProto.INT16: "INT16", onnx.TensorProto.UINT32: "UINT32",
    onnx.TensorProto.INT32: "INT32",
}


def _input_datatype(name, value_info, declared):
    """The datatype of the graph input ``name``: its ``finn_datatype`` annotation
    ``declared``, or the datatype its integer element type is. An annotation on an integer
    input must fit the element type (``UINT4`` on ``uint8``); a wider one is an error."""
    elem_type = value_info.type.tensor_type.elem_type
    if elem_type not in INTEGER_ELEMENT_TYPES:
        return declared
    natural = INTEGER_ELEMENT_TYPES[elem_type]
    if declared is None or declared in ("FLOAT32", "FLOAT16"):
        return natural
    try:
        low, high = dtype_range(declared)
    except GraphError:
        return declared                 # named as unsupported by the caller
    lo, hi = dtype_range(natural)
    type_name = onnx.TensorProto.DataType.Name(elem_type).lower()
    if low < lo or high > hi:
        raise GraphError(f"graph input '{name}': finn_datatype {declared} ({low}..{high}) is "
                         f"wider than its element type {type_name} ({lo}..{hi}); annotate a "
                         f"datatype within {natural}, or none (the element type is then the "
                         f"datatype)")
    return declared
