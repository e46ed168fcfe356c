"""The IR: datatypes, layer semantics, validation, JSON round trip, input checks."""

import os

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

import graph
from graph import GraphError
from graph.ir import (InputQuantizer, LabelSelectLayer, MVAULayer, Network, OutputSpec,
                      ThresholdLayer, decode, dtype_range, encode, shape_of, smallest_dtype)
from models import qonnx_mlp, random_input

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def test_datatypes():
    assert shape_of("INT4") == signed(4)
    assert shape_of("UINT8") == unsigned(8)
    assert shape_of("BINARY") == unsigned(1)
    assert shape_of("BIPOLAR") == "bipolar"
    assert dtype_range("INT3") == (-4, 3) and dtype_range("BIPOLAR") == (-1, 1)
    assert smallest_dtype(0, 1) == "BINARY" and smallest_dtype(-1, 1) == "INT2"
    assert smallest_dtype(0, 16) == "UINT5" and smallest_dtype(-9, 3) == "INT5"
    assert decode("BIPOLAR", [0, 1]).tolist() == [-1, 1]
    assert encode("BIPOLAR", [-1, 1]).tolist() == [0, 1]
    assert decode("INT4", [-3]).tolist() == [-3]
    with pytest.raises(GraphError, match=r"datatype 'FLOAT32' is not supported"):
        shape_of("FLOAT32")


def test_mvau_bipolar_semantics():
    layer = MVAULayer(name="l", mw=3, mh=2, weights=[[1, -1, 1], [-1, -1, -1]],
                      input_type="BIPOLAR", weight_type="BIPOLAR", output_type="BIPOLAR",
                      thresholds=[[1], [-1]])
    # bits 1,0,1 decode to +1,-1,+1: acc = [3, -1]
    assert layer.execute(np.array([[1, 0, 1]])).tolist() == [[1, 1]]
    assert [a.tolist() for a in layer.accumulator_range()] == [[-3, -3], [3, 3]]


def test_mvau_raw_threshold_and_vectors():
    layer = MVAULayer(name="l", mw=2, mh=2, weights=[[1, 2], [-1, 1]], input_type="INT4",
                      weight_type="INT3", output_type="INT7", vectors=2)
    assert layer.execute(np.array([[1, 1, 2, -3]])).tolist() == [[3, 0, -4, -5]]
    act = ThresholdLayer(name="t", channels=2, thresholds=[[0, 2]], bias=-1,
                         input_type="INT4", output_type="INT2")
    assert act.execute(np.array([[-1, 5]])).tolist() == [[-1, 1]]


def test_mvau_offsets_execute_range_and_json(tmp_path):
    layer = MVAULayer(name="l", mw=2, mh=2, weights=[[1, 2], [-1, 1]], input_type="INT4",
                      weight_type="INT3", output_type="INT8", offsets=[5, -7])
    assert layer.execute(np.array([[1, 1]])).tolist() == [[8, -7]]
    assert [a.tolist() for a in layer.accumulator_range()] == [[-19, -22], [26, 8]]
    network = Network("n", (2,), "INT4", [layer], OutputSpec("scores", scale=[1, 1],
                                                             offset=[0, 0]))
    network.to_json(tmp_path / "net.json")
    loaded = Network.from_json(tmp_path / "net.json")
    assert loaded.layers[0].offsets.tolist() == [5, -7]
    assert "offsets" not in MVAULayer(name="r", mw=2, mh=2, weights=[[1, 2], [-1, 1]],
                                      input_type="INT4", weight_type="INT3",
                                      output_type="INT7").to_dict()


def test_label_select_ties_to_lower_index():
    layer = LabelSelectLayer(name="top", channels=4, k=3, input_type="INT4")
    assert layer.execute(np.array([[2, 5, 5, 2]])).tolist() == [[1, 2, 0]]
    assert layer.output_type == "UINT2"


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": [[2, 0]]}, r"MVAU layer 'l': weights in \[0, 2\] do not fit INT2"),
    ({"thresholds": [[2, 1]]}, r"thresholds must be sorted ascending"),
    ({"thresholds": [[1], [2], [3]]}, r"thresholds of shape \(3, 1\) need 1 or 1 rows"),
    ({"weights": [[1, 0, 1]]}, r"weights of shape \(1, 3\) are not \(mh, mw\) = \(1, 2\)"),
    ({"weight_type": "BIPOLAR"}, r"weights of datatype BIPOLAR must be -1 or \+1"),
    ({"offsets": [1, 2]}, r"offsets of shape \(2,\) are not \(mh,\) = \(1,\)"),
    ({"offsets": [0.5]}, r"MVAU layer 'l': offsets must be integers; offsets\[0\] is 0\.5"),
    ({"offsets": [1], "thresholds": [[0]]}, r"offsets need a raw layer \(no thresholds\)"),
])
def test_ir_validation(kwargs, message):
    args = dict(name="l", mw=2, mh=1, weights=[[1, 0]], input_type="INT2", weight_type="INT2",
                output_type="INT4")
    args.update(kwargs)
    with pytest.raises(GraphError, match=message):
        MVAULayer(**args)


def test_network_checks_stream_types():
    layer = MVAULayer(name="l", mw=2, mh=1, weights=[[1, 0]], input_type="INT2",
                      weight_type="INT2", output_type="INT4")
    with pytest.raises(GraphError, match=r"layer 'l' takes 2 x INT2, but its input stream "
                                         r"'input' is 3 x INT2"):
        Network("n", (3,), "INT2", [layer], OutputSpec("scores", scale=[1], offset=[0]))


@pytest.mark.parametrize("name", ["digits_w2a2.onnx", "digits_w1a1.onnx"])
def test_json_round_trip(tmp_path, name):
    network = graph.import_model(os.path.join(EXAMPLES, name))
    path = tmp_path / "net.json"
    network.to_json(path)
    loaded = Network.from_json(path)
    assert loaded.to_dict() == network.to_dict()
    x = np.load(os.path.join(EXAMPLES, "digits_test_x.npy"))[:50]
    x_int = network.quantize_input(x)
    assert np.array_equal(loaded.quantize_input(x), x_int)
    assert np.array_equal(loaded.execute(x_int), network.execute(x_int))


def test_json_round_trip_with_float_input_quantizer(tmp_path):
    r = np.random.default_rng(0)
    model = qonnx_mlp(r, in_scale=0.3)
    network = graph.import_model(model)
    network.to_json(tmp_path / "net.json")
    loaded = Network.from_json(tmp_path / "net.json")
    x = random_input(r, 100, (8,))
    assert np.array_equal(loaded.quantize_input(x), network.quantize_input(x))
    assert loaded.input_quantizer.thresholds.dtype == np.float32


def test_from_json_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(GraphError, match=r"not valid JSON"):
        Network.from_json(path)
    path.write_text('{"format": "other"}')
    with pytest.raises(GraphError, match=r"not an hwgen network description"):
        Network.from_json(path)


def test_input_quantizer_counts_float32_thresholds():
    quantizer = InputQuantizer([[0.5, 1.5]], bias=-1, output_type="INT2")
    assert quantizer(np.array([[0.4999], [0.5], [2.0]])).tolist() == [[-1], [0], [1]]


@pytest.fixture(scope="module")
def w1a1():
    return graph.import_model(os.path.join(EXAMPLES, "digits_w1a1.onnx"))


@pytest.fixture(scope="module")
def w2a2():
    return graph.import_model(os.path.join(EXAMPLES, "digits_w2a2.onnx"))


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 63)), r"^inputs of shape \(2, 63\) do not fit the network input: expected "
                        r"\(N, 64\) or \(N, 1, 64\)$"),
    (np.full((1, 64), 32), r"^inputs hold 64 values outside UINT5 \(e.g. 32\); allowed: "
                           r"\[0, 31\]$"),
    (np.full((1, 64), -1), r"^inputs hold 64 values outside UINT5"),
    (np.full((1, 64), 1.5), r"^inputs must be integers of UINT5, but some are not$"),
    (np.array([["a"] * 64]), r"^inputs of dtype <U1 are not numbers$"),
])
def test_check_inputs_errors(w1a1, x, message):
    with pytest.raises(GraphError, match=message):
        graph.check_inputs(w1a1, x)


def test_check_inputs_float_network(w2a2):
    x = np.zeros((2, 64), np.float32)
    assert graph.check_inputs(w2a2, x).dtype == np.float32
    x[1, 3] = np.nan
    with pytest.raises(GraphError, match=r"^inputs hold 1 non-finite values"):
        graph.check_inputs(w2a2, x)


def test_execute_rejects_out_of_range_encoded_inputs(w1a1):
    with pytest.raises(GraphError,
                       match=r"network input: values in \[40, 40\] do not fit UINT5 \[0, 31\]"):
        w1a1.execute(np.full((1, 64), 40))


def test_summary_lists_layers(w1a1):
    text = w1a1.summary()
    assert "threshold" in text and "labelselect" in text and "BIPOLAR" in text
