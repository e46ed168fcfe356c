"""Checks shared by the graph tests: IR execution against the ONNX reference."""

import numpy as np

import graph
from graph.ir import decode


def run_both(model, x):
    """Import ``model``, run the IR and the reference on ``x``; check every recorded
    activation and the output bit-exactly. Returns ``(network, ir_output, ref_output)``."""
    network = graph.import_model(model)
    context = graph.reference(model, x, intermediates=True)
    y_int, layers = network.execute(network.quantize_input(x), intermediates=True)
    out_name = model.graph.output[0].name
    ref = context[out_name]
    n = len(x)
    if network.output.kind == "label":
        assert np.array_equal(y_int.reshape(n, -1), ref.reshape(n, -1).astype(np.int64))
        out = y_int
    else:
        out = network.output_values(y_int)
        stream_type = network.layers[-1].output_type
        assert_encodes(decode(stream_type, y_int), ref.reshape(n, -1), network.output.scale,
                       network.output.offset)
    stream_types = {layer.name: layer.output_type for layer in network.layers}
    for name, entry in network.debug.items():
        if name == "input":
            continue
        values = decode(stream_types[name], layers[name])
        if "order" in entry:
            values = values[:, entry["order"]]
        expected = context[entry["tensor"]].reshape(n, -1)
        assert_encodes(values, expected, entry["scale"], entry["offset"])
    return network, out, ref


def assert_encodes(decoded, reference, scale, offset):
    """``reference == scale * decoded + offset``: exactly in float32 for exact (power-of-two)
    scales, otherwise the integers the reference values round to equal ``decoded`` (the
    float32 values themselves differ in the last place)."""
    scale, offset = np.asarray(scale), np.asarray(offset)
    got = decoded * scale + offset
    if np.array_equal(got.astype(np.float32), reference.astype(np.float32)):
        return
    assert np.allclose(got, reference, rtol=1e-5, atol=1e-6 * np.abs(scale).max())
    assert np.array_equal(np.round((reference - offset) / scale).astype(np.int64), decoded)
