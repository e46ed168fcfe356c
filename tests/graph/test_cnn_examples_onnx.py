"""The bundled digits CNNs (``examples/train_digits_cnn.py``) are valid QONNX: qonnx infers
every shape, and its executor classifies the 360 held-out images with the accuracy the
example reports (at least 80%)."""

import os

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.change_batchsize import ChangeBatchSize
from qonnx.transformation.infer_shapes import InferShapes

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
QONNX = "qonnx.custom_op.general"


@pytest.fixture(scope="module")
def split():
    x = np.load(os.path.join(EXAMPLES, "digits_test_x.npy"))
    y = np.load(os.path.join(EXAMPLES, "digits_test_y.npy"))
    return x.astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64)


@pytest.mark.parametrize("name, ops", [
    ("digits_cnn.onnx", ["Conv", "BatchNormalization", "Conv", "BatchNormalization",
                         "MaxPool", "Flatten", "MatMul"]),
    ("digits_cnn_residual.onnx", ["Conv", "BatchNormalization", "Conv", "BatchNormalization",
                                  "Conv", "BatchNormalization", "Add", "MaxPool", "Flatten",
                                  "MatMul"]),
    ("digits_cnn_dw.onnx", ["Conv", "BatchNormalization", "Conv", "BatchNormalization", "Conv",
                            "BatchNormalization", "GlobalAveragePool", "Flatten", "MatMul"]),
])
def test_cnn_example_classifies_the_held_out_split(split, name, ops):
    x, y = split
    model = ModelWrapper(os.path.join(EXAMPLES, name))
    nodes = model.graph.node
    assert all(node.name for node in nodes)
    assert len({node.name for node in nodes}) == len(nodes)
    # the layers in order (Quant, Relu, Div and the bias Add aside)
    layers = [n.op_type for n in nodes if n.op_type not in ("Quant", "Relu", "Div")
              and not n.name.endswith("_bias")]
    assert layers == ops
    # every weight and activation quantizer: power-of-two scale, zero point 0
    quants = [n for n in nodes if n.op_type == "Quant"]
    assert quants and all(n.domain == QONNX for n in quants)
    for node in quants:
        scale, zeropt = model.get_initializer(node.input[1]), model.get_initializer(node.input[2])
        assert float(zeropt) == 0.0
        assert float(np.log2(scale)).is_integer(), node.name
    for node in nodes:
        if node.op_type in ("Conv", "MatMul"):
            assert model.find_producer(node.input[1]).op_type == "Quant", node.name
    model = model.transform(InferShapes())
    for node in nodes:
        for tensor in node.output:
            assert model.get_tensor_shape(tensor) is not None, tensor
    assert model.get_tensor_shape("scores") == [1, 10]
    batched = model.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    scores = execute_onnx(batched, {"pixels": x})["scores"]
    assert scores.shape == (len(x), 10)
    accuracy = float(np.mean(scores.argmax(axis=1) == y))
    print(f"{name}: qonnx accuracy {accuracy:.1%} on {len(x)} held-out images")
    assert accuracy >= 0.80


def test_residual_addends_share_one_scale():
    model = ModelWrapper(os.path.join(EXAMPLES, "digits_cnn_residual.onnx"))
    (add,) = [n for n in model.graph.node if n.op_type == "Add" and n.name == "res_add"]
    producers = [model.find_producer(t) for t in add.input]
    assert [p.op_type for p in producers] == ["Quant", "Quant"]
    scales = [float(model.get_initializer(p.input[1])) for p in producers]
    assert scales[0] == scales[1]
    assert all(model.get_initializer(t) is None for t in add.input)  # activations both
