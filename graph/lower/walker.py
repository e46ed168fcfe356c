"""The lowering's state and its one pass over the nodes.

:class:`Lowering` holds what the pass knows: the model's constants, the layers made so far,
the pending tensor and, once a TopK/ArgMax ran, the label. For each node it folds constant
nodes, checks that the node continues the single chain, and calls the node's handler from
:data:`graph.lower.registry.HANDLERS`; at the end it materializes the scores (or checks the
label) and returns the :class:`graph.ir.Network`.
"""

import numpy as np

from ..errors import GraphError, node_error
from ..ir import Network, OutputSpec, dtype_range
from . import handlers  # noqa: F401  (fills the registry)
from .constants import Constants
from .declared import annotation, shape
from .pending import Pending, Stream, bipolar_fixed
from .registry import HANDLERS, folds_constants, moves_elements_only, supported_text
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
            for name in set(node.input):
                self.consumers.setdefault(name, []).append(node)

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

    def record(self, name, tensor, stream, order=None):
        """Note in ``debug`` how layer ``name``'s outputs map to the values of ``tensor``."""
        a, b = stream.affine()
        if a is not None:
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
                       input_quantizer=self.input_quantizer, debug=self.debug)

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
        declared = annotation(self.graph, self.input_name)
        if declared is None or declared in ("FLOAT32", "FLOAT16"):
            self.input_type = None
            self.pending = Pending("input", self.input_name, index)
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
        if entry is None:
            raise node_error(node, f"op type {node.op_type} (domain "
                             f"'{node.domain or 'ai.onnx'}') is not supported",
                             supported_text())
        self._check_chain(node, dynamic)
        entry.run(self, node)

    def _check_chain(self, node, dynamic):
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

    def _follow_label(self, node):
        # shape nodes and a Cast keep the label's values
        if not (moves_elements_only(node.op_type) or node.op_type == "Cast"):
            raise node_error(node, f"follows {self.label[2].op_type} node "
                             f"'{self.label[2].name}', which must be at the end",
                             "TopK/ArgMax as the last node (shape nodes may follow it)")
        self.label = (node.output[0],) + self.label[1:]

    def _output(self):
        output = self.graph.output[0].name
        if self.label is not None:
            if output != self.label[0]:
                raise GraphError(f"graph output '{output}' is not the label of "
                                 f"{self.label[2].op_type} node '{self.label[2].name}'; "
                                 f"supported: the indices output as the graph output")
            return OutputSpec("label", shape=self.shape(output)[1:], k=self.label[1])
        if self.pending.tensor != output:
            raise GraphError(f"graph output '{output}' is not computed by the chain of "
                             f"layers (which ends at '{self.pending.tensor}')")
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
