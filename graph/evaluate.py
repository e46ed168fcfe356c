"""Run single ONNX nodes on batches exactly as the reference does.

The ONNX reference (qonnx ``execute_onnx``) runs standard nodes one at a time in
onnxruntime and custom nodes (``Quant``, ``BipolarQuant``, ``Trunc``, ``MultiThreshold``)
with qonnx's numpy code. Streamlining asks "what does this chain of element-wise nodes
make of that integer?" many times; :class:`NodeRunner` answers with the very same code,
so thresholds found through it reproduce the reference's float32 rounding decisions.
"""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["NodeRunner", "CUSTOM_DOMAINS", "is_custom"]

CUSTOM_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas", "finn")


def is_custom(node):
    """Whether qonnx (not onnxruntime) executes ``node``."""
    return node.domain in CUSTOM_DOMAINS


class NodeRunner:
    """Executes one node on a batch of values of its one dynamic input.

    Parameters
    ----------
    model : qonnx.core.modelwrapper.ModelWrapper
        The model the node belongs to (for tensor types and opsets).
    node : onnx.NodeProto
        The node; all inputs but ``dynamic`` are constants.
    dynamic : str
        Name of the input fed by :meth:`__call__`.
    constants : dict
        Name -> numpy array of the node's constant inputs.
    """

    def __init__(self, model, node, dynamic, constants):
        self._model = model
        self._node = node
        self._dynamic = dynamic
        self._constants = {name: constants[name] for name in node.input
                           if name and name != dynamic}
        self._in_type = _elem_type(model, dynamic)
        self._session = None

    def __call__(self, x):
        """Output 0 of the node (float64) for input values ``x`` (any batch size)."""
        x = np.asarray(x).astype(helper.tensor_dtype_to_np_dtype(self._in_type))
        if is_custom(self._node):
            return self._custom(x)
        if self._session is None:
            self._session = self._make_session(x.ndim)
        output, = self._session.run(None, {self._dynamic: x})
        return np.asarray(output, dtype=np.float64)

    def _custom(self, x):
        from qonnx.core.execute_custom_node import execute_custom_node
        context = dict(self._constants)
        context[self._dynamic] = x
        opset = _opset(self._model, self._node.domain)
        execute_custom_node(self._node, context, self._model.graph, onnx_opset_version=opset)
        return np.asarray(context[self._node.output[0]], dtype=np.float64)

    def _make_session(self, rank):
        import onnxruntime as rt
        node = self._node
        out_type = _elem_type(self._model, node.output[0])
        graph = helper.make_graph(
            [node], "node",
            inputs=[helper.make_tensor_value_info(self._dynamic, self._in_type,
                                                  ["batch"] + [None] * (rank - 1))],
            outputs=[helper.make_tensor_value_info(node.output[0], out_type, None)]
            + [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None)
               for name in node.output[1:] if name],
            initializer=[numpy_helper.from_array(np.asarray(value), name)
                         for name, value in self._constants.items()])
        opsets = [helper.make_opsetid(domain, version) for domain, version in
                  _opsets(self._model).items() if domain in ("", "ai.onnx")]
        model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 13)])
        model.ir_version = min(model.ir_version, 10)
        options = rt.SessionOptions()
        options.graph_optimization_level = rt.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        return rt.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])


def _opsets(model):
    return {opset.domain: opset.version for opset in model.model.opset_import}


def _opset(model, domain):
    return _opsets(model).get(domain, 1)


def _elem_type(model, name):
    vi = model.get_tensor_valueinfo(name)
    if vi is not None and vi.type.tensor_type.elem_type:
        return vi.type.tensor_type.elem_type
    init = model.get_initializer(name)
    if init is not None:
        return helper.np_dtype_to_tensor_dtype(init.dtype)
    return onnx.TensorProto.FLOAT
