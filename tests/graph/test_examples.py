"""The bundled digits models: the IR agrees bit-exactly with the ONNX reference on the whole
held-out split, with the accuracy the example reports."""

import os

import numpy as np
import pytest

import graph

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


@pytest.fixture(scope="module")
def split():
    x = np.load(os.path.join(EXAMPLES, "digits_test_x.npy"))
    y = np.load(os.path.join(EXAMPLES, "digits_test_y.npy"))
    return x.astype(np.float32), y.astype(np.int64)


@pytest.mark.parametrize("name, kinds, min_accuracy", [
    ("digits_w2a2.onnx", ["mvau", "mvau", "mvau"], 0.85),
    ("digits_w1a1.onnx", ["threshold", "mvau", "mvau", "mvau", "labelselect"], 0.75),
])
def test_digits_model_agrees_with_reference(split, name, kinds, min_accuracy):
    x, y = split
    path = os.path.join(EXAMPLES, name)
    network = graph.import_model(path)
    assert [layer.kind for layer in network.layers] == kinds
    context = graph.reference(path, x, intermediates=True)
    y_int, outputs = network.execute(network.quantize_input(x), intermediates=True)
    ours = network.output_values(y_int)
    ref = context[network_output(path)].reshape(len(x), -1)
    agree = int(np.sum(np.all(ours == ref, axis=1)))
    labels = ours[:, 0] if network.output.kind == "label" else ours.argmax(axis=1)
    accuracy = float(np.mean(labels == y))
    print(f"{name}: {agree}/{len(x)} agree with the ONNX reference, accuracy {accuracy:.1%}")
    assert agree == len(x)
    assert accuracy >= min_accuracy
    # every quantized activation, not only the output
    for layer in network.layers:
        entry = network.debug.get(layer.name)
        if entry is None:
            continue
        decoded = graph.ir.decode(layer.output_type, outputs[layer.name])
        expected = context[entry["tensor"]].reshape(len(x), -1)
        assert np.array_equal(decoded * np.array(entry["scale"]) + np.array(entry["offset"]),
                              expected), layer.name


def network_output(path):
    return graph.load_model(path).graph.output[0].name


def test_w1a1_binarization_is_absorbed_into_thresholds():
    network = graph.import_model(os.path.join(EXAMPLES, "digits_w1a1.onnx"))
    first = network.layers[0]
    assert (network.input_type, network.input_quantizer) == ("UINT5", None)
    assert (first.output_type, first.thresholds.tolist()) == ("BIPOLAR", [[8]])


def test_w2a2_input_quantizer_gives_the_pixels(split):
    x, _ = split
    network = graph.import_model(os.path.join(EXAMPLES, "digits_w2a2.onnx"))
    assert network.input_type == "UINT5"
    assert np.array_equal(network.quantize_input(x), x.astype(np.int64))
