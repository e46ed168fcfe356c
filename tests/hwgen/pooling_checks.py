"""Shared checks of the padding and pooling kernels: random feature maps in any element shape
(bipolar as 0/1 codes), ONNX reference execution of one node, the exact schedule of a
run without stalls held to the plan's own numbers, and Yosys' counts for the estimates."""

import numpy as np
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from hwgen.featuremap import frames_out_times
from hwgen.shapes import BIPOLAR, shape_range
from sim import golden


def random_codes(shape, size, rng):
    """Random element codes of ``shape`` (bipolar: 0/1) of array shape ``size``, the first
    and the last element at the extremes."""
    lo, hi = (0, 1) if shape == BIPOLAR else shape_range(shape)
    codes = rng.integers(lo, hi + 1, size=size, dtype=np.int64)
    codes.flat[0], codes.flat[-1] = lo, hi
    return codes


def decode(codes, shape):
    """Element values of codes (bipolar: 0 -> -1, 1 -> +1)."""
    return golden.bipolar(codes) if shape == BIPOLAR else codes


def encode(values, shape):
    """Codes of element values (bipolar: -1 -> 0, +1 -> 1)."""
    return (np.asarray(values) + 1) // 2 if shape == BIPOLAR else values


def onnx_node(op, inputs, **attributes):
    """Run one ONNX node on double tensors with ``onnx.reference.ReferenceEvaluator``;
    ``inputs`` maps input names (in the op's order) to arrays. Returns the one output."""
    names = list(inputs)
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attributes)], "node",
        [helper.make_tensor_value_info(name, TensorProto.INT64 if value.dtype.kind == "i"
                                       else TensorProto.DOUBLE, list(value.shape))
         for name, value in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    (output,) = ReferenceEvaluator(model).run(None, inputs)
    return output


def stall_free_arrivals(report, beats):
    """Arrival cycles of ``beats`` input beats when the input is offered every cycle: the
    first in cycle 1, each next one in the cycle after the one before was taken (beats the
    run did not get to, after the last output, one per cycle)."""
    arrivals = [1] + [cycle + 1 for cycle in report["in_cycles"]]
    while len(arrivals) < beats:
        arrivals.append(arrivals[-1] + 1)
    return arrivals[:beats]


def assert_exact_schedule(report, kernel, frames):
    """Without stalls: every output beat in the cycle :func:`frames_out_times` gives for the
    arrivals, one frame's outputs ``cycles_per_frame`` cycles after the frame before, and
    the first output ``latency`` cycles after the first arrival."""
    arrivals = stall_free_arrivals(report, frames * kernel.in_beats_per_frame)
    out_cycles = report["out_cycles"]
    assert len(out_cycles) == frames * kernel.out_beats_per_frame
    assert out_cycles == frames_out_times(kernel, arrivals)
    assert out_cycles[0] - arrivals[0] == kernel.latency
    per_frame = kernel.out_beats_per_frame
    first = out_cycles[:per_frame]
    for frame in range(1, frames):
        assert out_cycles[frame * per_frame:(frame + 1) * per_frame] == \
            [t + frame * kernel.cycles_per_frame for t in first]


def synthesized(kernel):
    """Yosys' counts of ``kernel`` (``synth_xilinx -family xcup``, cached) and its estimate."""
    from boards.synth import synthesize
    from hwgen.export.verilog import component_verilog
    report = synthesize(component_verilog(kernel, name="top"), top="top", family="xcup")
    return report, kernel.estimate()
