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
        assert np.array_equal(out.astype(np.float32), ref.reshape(n, -1)), \
            np.abs(out - ref.reshape(n, -1)).max()
    stream_types = {layer.name: layer.output_type for layer in network.layers}
    for name, entry in network.debug.items():
        if name == "input":
            continue
        values = decode(stream_types[name], layers[name])
        if "order" in entry:
            values = values[:, entry["order"]]
        expected = context[entry["tensor"]].reshape(n, -1)
        got = values * np.array(entry["scale"]) + np.array(entry["offset"])
        assert np.array_equal(got.astype(np.float32), expected.astype(np.float32)), name
    return network, out, ref
