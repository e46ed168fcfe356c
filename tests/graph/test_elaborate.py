"""Elaboration of folded IR networks: bit-exact against Network.execute (Amaranth simulator
with back-pressure, and once cocotb on Verilator), exact throughput and latency, the
compile output round trip."""

import json

import numpy as np
import pytest

import graph
from graph import GraphError
from graph.compile import compile_model
from graph.elaborate import Accelerator, Pipeline, fifo_depth
from graph.fold import apply_folding_json, fold
from graph.ir import (LabelSelectLayer, MVAULayer, Network, OutputSpec, ThresholdLayer,
                      dtype_range)
from sim.amaranth_sim import run_stream_sim

from models import classifier_with_bias, random_input


def _thresholds(rng, rows, count, low, high):
    return np.sort(rng.integers(low, high + 1, size=(rows, count)), axis=1)


def binarized_net(rng):
    """UINT4 input binarized, two xnor layers, a raw layer and a top-2 label select."""
    layers = [
        ThresholdLayer(name="binarize", channels=12, thresholds=[[8]], bias=0,
                       input_type="UINT4", output_type="BIPOLAR"),
        MVAULayer(name="fc0", mw=12, mh=8, weights=rng.choice([-1, 1], size=(8, 12)),
                  input_type="BIPOLAR", weight_type="BIPOLAR", output_type="BIPOLAR",
                  thresholds=_thresholds(rng, 8, 1, -4, 4)),
        MVAULayer(name="fc1", mw=8, mh=6, weights=rng.choice([-1, 1], size=(6, 8)),
                  input_type="BIPOLAR", weight_type="BIPOLAR", output_type="INT5"),
        LabelSelectLayer(name="top", channels=6, k=2, input_type="INT5"),
    ]
    return Network(name="bin", input_shape=(12,), input_type="UINT4", layers=layers,
                   output=OutputSpec(kind="label", shape=(2,), k=2))


def integer_net(rng):
    """Multi-bit layers: thresholds with a negative bias (narrower than the datatype), a
    threshold layer on a BIPOLAR stream, raw accumulators out."""
    layers = [
        MVAULayer(name="fc0", mw=6, mh=12, weights=rng.integers(-2, 2, size=(12, 6)),
                  input_type="UINT2", weight_type="INT2", output_type="INT4",
                  thresholds=_thresholds(rng, 12, 3, -8, 8), bias=-2),
        MVAULayer(name="fc1", mw=12, mh=4, weights=rng.integers(-2, 2, size=(4, 12)),
                  input_type="INT4", weight_type="INT2", output_type="BIPOLAR",
                  thresholds=_thresholds(rng, 4, 1, -6, 6)),
        ThresholdLayer(name="act", channels=4, thresholds=[[-1, 0, 1]], bias=0,
                       input_type="BIPOLAR", output_type="UINT2"),
        MVAULayer(name="fc2", mw=4, mh=6, weights=rng.integers(-2, 2, size=(6, 4)),
                  input_type="UINT2", weight_type="INT2", output_type="INT6"),
    ]
    return Network(name="int", input_shape=(2, 3), input_type="UINT2", layers=layers,
                   output=OutputSpec(kind="scores", shape=(6,), scale=[1.0] * 6,
                                     offset=[0.0] * 6))


def random_inputs(network, rng, frames):
    low, high = dtype_range(network.input_type)
    return rng.integers(low, high + 1, size=(frames, network.input_elements))


def simulate(accelerator, x, **kwargs):
    expected = accelerator.network.execute(x)
    beats, report = run_stream_sim(accelerator, x.reshape(-1, accelerator.in_lanes),
                                   expected=expected.reshape(-1, accelerator.out_lanes),
                                   **kwargs)
    return report


def steady_cycles(report, out_beats_per_frame):
    starts = report["out_cycles"][::out_beats_per_frame]
    return set(np.diff(starts[len(starts) // 2:]).tolist())


FOLDINGS = {
    # lanes that do not divide each other: width converters 2 -> 3, 4 -> 3, 3 -> 2...
    "bin-mixed": ("bin", {"binarize": {"pe": 2}, "fc0": {"pe": 4, "simd": 3},
                          "fc1": {"pe": 3, "simd": 2}, "top": {"pe": 2}}),
    "bin-fold": ("bin", {"fc0": {"pe": 1, "simd": 1}, "fc1": {"pe": 2, "simd": 8}}),
    "int-mixed": ("int", {"fc0": {"pe": 3, "simd": 2}, "fc1": {"pe": 2, "simd": 4},
                          "act": {"pe": 1}, "fc2": {"pe": 6, "simd": 1,
                                                    "datapath": "dsp"}}),
}


def _network(kind, folding, seed=0):
    rng = np.random.default_rng(seed)
    network = (binarized_net if kind == "bin" else integer_net)(rng)
    return apply_folding_json(network, folding)


@pytest.mark.parametrize("case", sorted(FOLDINGS))
def test_bit_exact_with_back_pressure(case):
    kind, folding = FOLDINGS[case]
    network = _network(kind, folding)
    accelerator = Accelerator(network)
    rng = np.random.default_rng(1)
    simulate(accelerator, random_inputs(network, rng, 6), seed=2, valid_prob=0.6,
             ready_prob=0.5)


@pytest.mark.parametrize("case", sorted(FOLDINGS))
def test_exact_throughput_and_latency(case):
    kind, folding = FOLDINGS[case]
    network = _network(kind, folding)
    accelerator = Accelerator(network)
    report = simulate(accelerator, random_inputs(network, np.random.default_rng(3), 8),
                      valid_prob=1.0, ready_prob=1.0)
    assert report["latency"] == accelerator.latency
    assert steady_cycles(report, accelerator.out_beats_per_frame) == \
        {accelerator.cycles_per_frame}


def test_default_folding_simulates_at_the_bottleneck():
    network = fold(binarized_net(np.random.default_rng(4)))
    accelerator = Accelerator(network)
    report = simulate(accelerator, random_inputs(network, np.random.default_rng(5), 6),
                      valid_prob=1.0, ready_prob=1.0)
    assert steady_cycles(report, accelerator.out_beats_per_frame) == \
        {accelerator.cycles_per_frame}
    assert report["latency"] == accelerator.latency


def unelaborated(network):
    """The pipeline's analysis only: its stages and properties, no hardware built."""
    return Pipeline(network)


def test_stages_and_properties():
    network = _network("bin", FOLDINGS["bin-mixed"][1])
    accelerator = unelaborated(network)
    kinds = [(stage.kind, stage.name) for stage in accelerator.stages]
    assert kinds == [("threshold", "binarize"), ("width", "fc0.width"), ("fifo", "fc0.fifo"),
                     ("mvau", "fc0"), ("width", "fc1.width"), ("fifo", "fc1.fifo"),
                     ("mvau", "fc1"), ("width", "top.width"), ("fifo", "top.fifo"),
                     ("labelselect", "top")]
    assert accelerator.in_lanes == 2 and accelerator.in_beats_per_frame == 6
    assert accelerator.out_lanes == 2 and accelerator.out_beats_per_frame == 1
    # fc0: NF = 8/4, SF = 12/3 -> 8 cycles; fc1: NF = 2, SF = 4 -> 8
    assert accelerator.cycles_per_frame == 8
    fifo = accelerator.stages[2].plan
    # fc0 reads a vector's SF = 4 beats in a burst: 4 + 2
    assert accelerator.stages[3].plan.input_burst == 4
    assert fifo.depth == fifo_depth(accelerator.stages[3].plan) == 6
    assert accelerator.estimate()["luts"] > 0


def test_same_lanes_need_no_width_converter():
    network = _network("bin", {"binarize": {"pe": 3}, "fc0": {"pe": 2, "simd": 3},
                               "fc1": {"pe": 2, "simd": 2}, "top": {"pe": 2}})
    kinds = [stage.kind for stage in unelaborated(network).stages]
    assert "width" not in kinds and kinds.count("fifo") == 3


def test_unsupported_layer_is_a_graph_error():
    rng = np.random.default_rng(0)
    layer = MVAULayer(name="wide", mw=2, mh=2, weights=rng.integers(-2, 2, size=(2, 2)),
                      input_type="INT12", weight_type="INT2", output_type="INT16")
    network = Network(name="n", input_shape=(2,), input_type="INT12", layers=[layer],
                      output=OutputSpec(kind="scores", shape=(2,), scale=[1, 1],
                                        offset=[0, 0]))
    with pytest.raises(GraphError, match=r"^mvau layer 'wide': input datatype INT12 is wider "
                                         r"than the MVAU's 8 bits"):
        Pipeline(network)


def test_compile_output_round_trip(tmp_path):
    network = integer_net(np.random.default_rng(6))
    report = compile_model(network, tmp_path, target_fps=2e6, clock_mhz=100, progress=None)
    assert report["cycles_per_frame"] <= 50
    assert report["est_fps"] == pytest.approx(100e6 / report["cycles_per_frame"])
    verilog = (tmp_path / "top.v").read_text()
    for port in ("ap_clk", "ap_rst_n", "s_axis_tdata", "m_axis_tlast", "m_axis_tready"):
        assert port in verilog
    saved = json.loads((tmp_path / "network.json").read_text())
    assert all(layer.get("datapath", "x") != "auto" for layer in saved["layers"])
    rebuilt = Pipeline(graph.load_network(tmp_path))
    assert rebuilt.cycles_per_frame == report["cycles_per_frame"]
    assert rebuilt.latency == report["latency_cycles"]
    assert [s.name for s in rebuilt.stages] == [row["name"] for row in report["layers"]]
    text = (tmp_path / "report.txt").read_text()
    assert "fc0" in text and "frames/s" in text and "latency" in text


def test_load_accelerator_needs_a_compile_output(tmp_path):
    with pytest.raises(GraphError, match=r"not a hwgen compile output \(no network.json\)"):
        graph.load_accelerator(tmp_path)


def test_cocotb_verilator_with_back_pressure():
    from sim.streams import run_stream_test
    network = _network("int", FOLDINGS["int-mixed"][1])
    accelerator = Accelerator(network)
    x = random_inputs(network, np.random.default_rng(7), 12)
    y = network.execute(x)
    report = run_stream_test(accelerator, x.reshape(-1, accelerator.in_lanes),
                             y.reshape(-1, accelerator.out_lanes), seed=3, valid_prob=0.6,
                             ready_prob=0.5)
    assert report["out_beats"] == len(y) * accelerator.out_beats_per_frame


@pytest.mark.parametrize("folding", [None, {"fc1": {"pe": 1, "simd": 3}}],
                         ids=["default", "fc1-nf5"])
def test_classifier_offsets_in_hardware(folding):
    """An imported classifier whose final bias became MVAU offsets: the hardware equals
    Network.execute (and that equals the ONNX reference, see test_import)."""
    r = np.random.default_rng(9)
    network = graph.import_model(classifier_with_bias(r, "topk"))
    assert network.layers[1].offsets is not None
    network = fold(network) if folding is None else apply_folding_json(network, folding)
    accelerator = Accelerator(network)
    x = network.quantize_input(random_input(r, 12, (8,)))
    simulate(accelerator, x, seed=4, valid_prob=0.7, ready_prob=0.6)
