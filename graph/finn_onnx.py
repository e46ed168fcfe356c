"""A small writer of FINN-ONNX models: float tensors that carry ``finn_datatype``
quantization annotations, and ``MultiThreshold`` activations in the legacy
``finn.custom_op.general`` domain, as FINN's own TFC/SFC/LFC MLPs are stored.

The examples and the benchmarks build their binarized MLPs with it::

    writer = FinnOnnxWriter(inputs={"pixels": ([1, 784], "UINT8")})
    x = writer.multithreshold("binarize_input", "pixels", [[128.0]])
    x = writer.matmul("fc0", x, weights, "BIPOLAR")
    writer.topk(x)
    writer.save("mlp.onnx", name="mlp")
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

__all__ = ["FinnOnnxWriter", "FINN_DOMAIN", "QONNX_DOMAIN", "make_model"]

FINN_DOMAIN = "finn.custom_op.general"
QONNX_DOMAIN = "qonnx.custom_op.general"


def make_model(graph, annotations, *, opset=13, producer="hwgen"):
    """A ``ModelProto`` of ``graph`` with ``finn_datatype`` annotations (``tensor -> datatype
    name``), the ONNX opset ``opset`` and the qonnx and finn domains, IR version 8."""
    for tensor, dtype in annotations.items():
        annotation = graph.quantization_annotation.add()
        annotation.tensor_name = tensor
        entry = annotation.quant_parameter_tensor_names.add()
        entry.key, entry.value = "finn_datatype", dtype
    model = helper.make_model(graph, producer_name=producer, opset_imports=[
        helper.make_opsetid("", opset), helper.make_opsetid(QONNX_DOMAIN, 1),
        helper.make_opsetid(FINN_DOMAIN, 1)])
    model.ir_version = 8
    return model


class FinnOnnxWriter:
    """Collects nodes, initializers and datatype annotations of one FINN-ONNX graph.

    Parameters
    ----------
    inputs : dict
        Graph inputs: ``name -> (shape, finn datatype or None)``; float tensors.
    """

    def __init__(self, inputs):
        self.nodes, self.initializers = [], []
        self.annotations = {}
        self.inputs = []
        for name, (shape, dtype) in inputs.items():
            self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
            if dtype:
                self.annotations[name] = dtype

    def const(self, name, value, dtype=None):
        """Add a float32 initializer (annotated with ``dtype`` if given); returns its name."""
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32),
                                                         name))
        if dtype:
            self.annotations[name] = dtype
        return name

    def node(self, op, name, inputs, **attributes):
        """Add a standard ONNX node with one output, ``NAME_out``; returns the output."""
        output = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attributes))
        return output

    def multithreshold(self, name, x, thresholds, out_dtype="BIPOLAR", out_scale=2.0,
                       out_bias=-1.0):
        """Add a FINN ``MultiThreshold`` (defaults: a sign activation to BIPOLAR, ``2 * count
        - 1``); returns its output."""
        output = f"{name}_out"
        self.nodes.append(helper.make_node(
            "MultiThreshold", [x, self.const(f"{name}_thresholds", thresholds)], [output],
            name=name, domain=FINN_DOMAIN, out_dtype=out_dtype, out_scale=out_scale,
            out_bias=out_bias))
        self.annotations[output] = out_dtype
        return output

    def matmul(self, name, x, weights, dtype):
        """Add ``x @ weights`` with annotated weights; returns its output."""
        return self.node("MatMul", name, [x, self.const(f"{name}_weight", weights, dtype)])

    def topk(self, x, k=1, output="label"):
        """End the graph with ``TopK`` (largest ``k``) whose indices are ``output``."""
        self.initializers.append(numpy_helper.from_array(np.array([k], dtype=np.int64), "k"))
        self.nodes.append(helper.make_node("TopK", [x, "k"], ["top_values", output],
                                           name="topk", axis=-1))
        return output

    def save(self, path, *, name, output="label", output_shape=(1, 1), producer="hwgen"):
        """Write the model (opset 13, qonnx and finn domains, IR version 8) to ``path``."""
        import onnx
        graph = helper.make_graph(
            self.nodes, name, self.inputs,
            [helper.make_tensor_value_info(output, TensorProto.INT64, list(output_shape))],
            initializer=self.initializers)
        onnx.save(make_model(graph, self.annotations, producer=producer), path)
        return path
