"""Shared checks of the kernels with several stream ports (Duplicate, AddStreams, Concat) and
the channel-wise kernel: random feature maps, the cocotb tier through
``multistream_tb.py``, and the exact-timing assertions against a plan's own numbers."""

import json
from pathlib import Path

import numpy as np

from hwgen.export.axis import axis_prefix
from hwgen.export.verilog import kernel_verilog
from hwgen.shapes import shape_range
from sim.multistream import expected_beat_counts, per_port
from sim.runner import new_test_dir, run
from sim.stream_io import default_max_cycles
from sim.streams import beats_to_words

TESTBENCH = Path(__file__).with_name("multistream_tb.py")


def random_map(shape, vectors, channels, rng):
    """``(vectors, channels)`` random elements of ``shape``, the first and last the extremes."""
    lo, hi = shape_range(shape)
    values = rng.integers(lo, hi + 1, size=(vectors, channels), dtype=np.int64)
    values.flat[0], values.flat[-1] = lo, hi
    return values


def run_multistream_test(kernel, in_beats, expected, *, seed=0, valid_prob=0.8, ready_prob=0.8,
                         drain_cycles=8, timeout=300, name="top"):
    """The cocotb tier: ``kernel``'s Verilog behind the AXI4-Stream shell on Verilator,
    every beat checked by ``multistream_tb.py``. ``in_beats``/``expected``:
    ``{port: (beats, lanes) array}``; ``valid_prob``/``ready_prob``: one number or
    ``{port: p}``. Returns the report with ``in_cycles``/``out_cycles`` per kernel port."""
    valid_prob = per_port("valid_prob", valid_prob, list(in_beats))
    ready_prob = per_port("ready_prob", ready_prob, list(expected))
    in_words = {port: beats_to_words(kernel, port, beats) for port, beats in in_beats.items()}
    out_words = {port: beats_to_words(kernel, port, beats) for port, beats in expected.items()}
    vectors = {
        "inputs": {axis_prefix(p): [hex(w) for w in words] for p, words in in_words.items()},
        "outputs": {axis_prefix(p): {"expected": [hex(w) for w in words],
                                     "frame": kernel.beats_per_frame(p)}
                    for p, words in out_words.items()},
        "seed": seed,
        "valid_prob": {axis_prefix(p): v for p, v in valid_prob.items()},
        "ready_prob": {axis_prefix(p): v for p, v in ready_prob.items()},
        "max_cycles": default_max_cycles(max(map(len, in_words.values())),
                                         max(map(len, out_words.values())),
                                         min(valid_prob.values()), min(ready_prob.values())),
        "drain_cycles": drain_cycles,
    }
    test_dir = new_test_dir(name)
    test_dir.mkdir(parents=True, exist_ok=True)
    vectors_path, report_path = test_dir / "vectors.json", test_dir / "report.json"
    vectors_path.write_text(json.dumps(vectors))
    run(kernel_verilog(kernel, name=name), TESTBENCH, toplevel=name, seed=seed, timeout=timeout,
        extra_env={"HWGEN_MULTISTREAM_VECTORS": str(vectors_path.resolve()),
                   "HWGEN_MULTISTREAM_REPORT": str(report_path.resolve())},
        test_dir=test_dir)
    report = json.loads(report_path.read_text())
    ports = {axis_prefix(p): p for p in list(in_beats) + list(expected)}
    for key in ("in_cycles", "out_cycles"):
        report[key] = {ports[prefix]: cycles for prefix, cycles in report[key].items()}
    return report


def assert_exact_timing(report, plan, in_counts):
    """Inputs offered every cycle and outputs always ready: every output moves one beat per
    cycle from ``latency`` cycles after the first input beat, frame after frame with no
    bubble; the first frame follows the plan's ``schedule``; the run takes
    ``frames * cycles_per_frame`` cycles plus the latency."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    first = min(cycles[0] for cycles in in_cycles.values())
    counts = expected_beat_counts(plan, in_counts, list(out_cycles))
    for port, cycles in out_cycles.items():
        assert len(cycles) == counts[port]
        assert cycles == list(range(first + plan.latency, first + plan.latency + len(cycles))), \
            f"output {port} has bubbles"
    first_frame = {port: cycles[:plan.beats_per_frame(port)] for port, cycles in in_cycles.items()}
    schedule = plan.schedule(first_frame)
    for port, cycles in out_cycles.items():
        assert schedule[port] == cycles[:plan.beats_per_frame(port)]
    frames = next(iter(counts.values())) // plan.beats_per_frame(next(iter(counts)))
    last = max(cycles[-1] for cycles in out_cycles.values())
    assert last + 1 == first + frames * plan.cycles_per_frame + plan.latency


def onnx_reference(nodes, inputs, outputs, initializers=()):
    """Run ONNX ``nodes`` on ``onnx.reference.ReferenceEvaluator``: ``inputs`` maps names to
    integer arrays, fed as integer-valued doubles (exact up to 2**53); ``initializers`` are
    ``(name, array)`` constants. Returns the ``outputs`` as int64 arrays (booleans as 0/1)."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    def info(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.DOUBLE, shape)

    graph = helper.make_graph(
        nodes, "reference", [info(name, array.shape) for name, array in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in outputs],
        initializer=[numpy_helper.from_array(np.asarray(array, dtype=np.float64), name)
                     for name, array in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    results = ReferenceEvaluator(model).run(
        None, {name: np.asarray(array, dtype=np.float64) for name, array in inputs.items()})
    return [np.asarray(result).astype(np.int64) for result in results]


def draw_channel_fold(draw, max_channels=12):
    """``(channels, pe)`` for a hypothesis ``draw``: ``pe`` one of the divisors."""
    from hypothesis import strategies as st
    channels = draw(st.integers(1, max_channels))
    return channels, draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))


def draw_shape(draw, max_width=9):
    """``signed(w)`` or ``unsigned(w)``, 1 <= w <= ``max_width``, for a hypothesis ``draw``."""
    from amaranth.hdl import signed, unsigned
    from hypothesis import strategies as st
    width = draw(st.integers(1, max_width))
    return signed(width) if draw(st.booleans()) else unsigned(width)


def assert_estimate_matches_yosys(kernel, *, luts_rel, luts_abs, ffs_abs=0):
    """``kernel.estimate()`` against Yosys (``synth_xilinx -family xcup``): LUTs within
    ``luts_rel * measured + luts_abs``, flip-flops within ``ffs_abs``, DSP48E2 and block RAMs
    exact."""
    from boards.synth import synthesize
    from hwgen.export.verilog import component_verilog

    report = synthesize(component_verilog(kernel, name="kernel"), top="kernel", family="xcup")
    estimate = kernel.estimate()
    assert (report["dsp48e2"], report["bram18"]) == (estimate.dsp, estimate.bram18)
    assert abs(report["ffs"] - estimate.ffs) <= ffs_abs, (report["ffs"], estimate.ffs)
    assert abs(report["luts"] - estimate.luts) <= luts_rel * report["luts"] + luts_abs, \
        (report["luts"], estimate.luts)


def hwgen_verilog(tmp_path, kernel, *options):
    """``hwgen verilog KERNEL OPTIONS -o FILE``: the Verilog text written (the command must
    succeed)."""
    from hwgen.cli import main
    out = tmp_path / f"{kernel}.v"
    assert main(["verilog", kernel, *options, "-o", str(out)]) == 0
    return out.read_text()


def assert_compiled_harness_agrees(kernel, in_beats, expected, cocotb_report, *, seed=0,
                                   valid_prob=0.8, ready_prob=0.8):
    """The compiled harness (sim.harness) on the same kernel: every beat checked under the
    given stalls, and without stalls exactly the cocotb report's handshake cycles on every
    port (``cocotb_report`` from a run without stalls)."""
    from sim.harness import run_compiled_stream_test
    def by_prefix(name, value, ports):
        values = per_port(name, value, ports)
        return {axis_prefix(port): p for port, p in values.items()}
    run_compiled_stream_test(kernel, in_beats, expected, seed=seed,
                             valid_prob=by_prefix("valid_prob", valid_prob, list(in_beats)),
                             ready_prob=by_prefix("ready_prob", ready_prob, list(expected)))
    free = run_compiled_stream_test(kernel, in_beats, expected, valid_prob=1.0, ready_prob=1.0)
    prefixes = {port: axis_prefix(port) for port in list(in_beats) + list(expected)}
    for key in ("in_cycles", "out_cycles"):
        cycles = free[key]
        for port, want in cocotb_report[key].items():
            seen = cycles[prefixes[port]] if isinstance(cycles, dict) else cycles
            assert np.asarray(seen).tolist() == list(want), (key, port)
