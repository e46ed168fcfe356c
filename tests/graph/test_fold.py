"""Folding: least parallelism for a target from legal divisors, the default folding,
unreachable targets, and the user folding JSON with its one-line errors."""

import json

import numpy as np
import pytest

from graph import GraphError
from graph.fold import DEFAULT_PARALLELISM, apply_folding_json, divisors, fold, layer_cycles
from graph.ir import LabelSelectLayer, MVAULayer, Network, OutputSpec, ThresholdLayer


def make_net(mw=48, mh=36, classes=12, wtype="INT2", itype="UINT2"):
    rng = np.random.default_rng(0)
    low = -1 if wtype == "BIPOLAR" else -2
    weights = (rng.choice([-1, 1], size=(mh, mw)) if wtype == "BIPOLAR"
               else rng.integers(low, 2, size=(mh, mw)))
    layers = [
        ThresholdLayer(name="quant", channels=mw, thresholds=[[1, 2, 3]], bias=0,
                       input_type="UINT4", output_type=itype),
        MVAULayer(name="fc0", mw=mw, mh=mh, weights=weights, input_type=itype,
                  weight_type=wtype, output_type="UINT2", thresholds=[[-3, 0, 3]]),
        MVAULayer(name="fc1", mw=mh, mh=classes, weights=rng.integers(-2, 2, size=(classes, mh)),
                  input_type="UINT2", weight_type="INT2", output_type="INT9"),
        LabelSelectLayer(name="top", channels=classes, k=1, input_type="INT9"),
    ]
    return Network(name="n", input_shape=(mw,), input_type="UINT4", layers=layers,
                   output=OutputSpec(kind="label", shape=(1,), k=1))


def test_divisors():
    assert divisors(1) == [1]
    assert divisors(36) == [1, 2, 3, 4, 6, 9, 12, 18, 36]


@pytest.mark.parametrize("budget", [1, 3, 16, 48, 100, 432, 1728, 5000])
def test_least_parallelism_meeting_the_target(budget):
    network = make_net()
    folded = fold(network, target_fps=100e6 / budget, clock_mhz=100)
    for layer in folded.layers:
        assert layer_cycles(layer) <= budget
        if layer.kind == "mvau":
            assert layer.mh % layer.pe == 0 and layer.mw % layer.simd == 0
            least = min(pe * simd for pe in divisors(layer.mh) for simd in divisors(layer.mw)
                        if layer_cycles(layer, pe=pe, simd=simd) <= budget)
            assert layer.pe * layer.simd == least
        else:
            # the least parallelism, or the producer's lanes (no width converter between)
            assert layer.channels % layer.pe == 0
            least = min(pe for pe in divisors(layer.channels) if layer.channels // pe <= budget)
            source = layer.inputs[0]
            lanes = None if source == "input" else \
                folded.layer(source).plan().output_format.lanes
            assert layer.pe == (lanes if lanes in divisors(layer.channels) and
                                layer.channels // lanes <= budget else least)
    assert all(layer.pe == 1 for layer in network.layers)       # input not modified


def test_default_folding():
    folded = fold(make_net())
    largest = 48 * 36
    budget = -(-largest // DEFAULT_PARALLELISM)
    fc0 = folded.layers[1]
    assert fc0.pe * fc0.simd >= DEFAULT_PARALLELISM
    assert max(layer_cycles(layer) for layer in folded.layers) <= budget
    assert layer_cycles(fc0) == budget


def test_ties_broken_by_estimate():
    # budget 48 cycles for 48x36 needs PE*SIMD = 36: several pairs, the estimate picks one
    folded = fold(make_net(), target_fps=100e6 / 48)
    fc0 = folded.layers[1]
    assert fc0.pe * fc0.simd == 36


def test_unreachable_target():
    with pytest.raises(GraphError, match=r"target of 2e\+08 frames/s at 100 MHz is "
                                         r"unreachable: .* layer 'quant' needs at least 1 "
                                         r"\(fully unfolded\), i.e. at most 1e\+08 frames/s"):
        fold(make_net(), target_fps=2e8)
    network = make_net()
    network.layers[1].vectors = 4
    network.layers[1].inputs = None  # the input of the one-layer network below
    with pytest.raises(GraphError, match=r"layer 'fc0' needs at least 4"):
        fold(Network(name="v", input_shape=(48 * 4,), input_type="UINT2",
                     layers=[network.layers[1]],
                     output=OutputSpec(kind="scores", shape=(144,), scale=[1] * 144,
                                       offset=[0] * 144)), target_fps=50e6)


@pytest.mark.parametrize("kwargs, message", [
    ({"target_fps": 0}, r"target_fps=0 must be a positive number of frames/s"),
    ({"target_fps": -5.0}, r"target_fps=-5.0 must be a positive"),
    ({"clock_mhz": 0}, r"clock_mhz=0 must be a positive number of MHz"),
    ({"target_fps": True}, r"target_fps=True must be"),
])
def test_bad_target_or_clock(kwargs, message):
    with pytest.raises(GraphError, match=message):
        fold(make_net(), **kwargs)


def test_folding_json_applied(tmp_path):
    path = tmp_path / "fold.json"
    path.write_text(json.dumps({"fc0": {"PE": 4, "SIMD": 6, "datapath": "dsp",
                                        "mem_style": "bram"},
                                "top": {"pe": 3}}))
    network = make_net()
    folded = apply_folding_json(network, path)
    fc0 = folded.layers[1]
    assert (fc0.pe, fc0.simd, fc0.datapath, fc0.mem_style) == (4, 6, "dsp", "bram")
    assert folded.layers[3].pe == 3
    assert network.layers[1].pe == 1


@pytest.mark.parametrize("folding, message", [
    ({"fc0": {"pe": 5}},
     r"^folding of mvau layer 'fc0': PE=5 must divide MH=36; valid PE: "
     r"1, 2, 3, 4, 6, 9, 12, 18, 36$"),
    ({"fc0": {"simd": 7}},
     r"^folding of mvau layer 'fc0': SIMD=7 must divide MW=48; valid SIMD: "
     r"1, 2, 3, 4, 6, 8, 12, 16, 24, 48$"),
    ({"fc0": {"pe": 0}}, r"PE=0 must divide MH=36"),
    ({"fc0": {"pe": "2"}}, r"PE='2' must divide MH=36"),
    ({"quant": {"pe": 5}},
     r"^folding of threshold layer 'quant': PE=5 must divide channels=48; valid PE: "),
    ({"top": {"pe": 5}}, r"^folding of labelselect layer 'top': PE=5 must divide channels=12"),
    ({"fc9": {"pe": 1}}, r"^folding: no layer named 'fc9'; layers: quant, fc0, fc1, top$"),
    ({"quant": {"simd": 2}},
     r"^folding of threshold layer 'quant': unknown key 'simd'; valid keys: pe$"),
    ({"fc0": {"speed": 2}}, r"unknown key 'speed'; valid keys: pe, simd, datapath, mem_style"),
    ({"fc0": {"datapath": "xnor"}},
     r"^folding of mvau layer 'fc0': datapath='xnor' is not valid for UINT2 inputs and INT2 "
     r"weights; valid datapath: auto, lut, dsp$"),
    ({"fc0": {"datapath": "fast"}}, r"datapath='fast' is not valid"),
    ({"fc0": {"mem_style": "flash"}},
     r"mem_style='flash' is not valid; valid mem_style: auto, lutram, bram$"),
    ({"fc0": 4}, r"^folding of mvau layer 'fc0': expected an object such as"),
    ([1, 2], r"^folding must be a JSON object"),
])
def test_folding_json_errors(folding, message):
    with pytest.raises(GraphError, match=message):
        apply_folding_json(make_net(), folding)


def test_folding_json_file_errors(tmp_path):
    with pytest.raises(GraphError, match=r"folding file .*missing.json: No such file"):
        apply_folding_json(make_net(), tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{pe: 2")
    with pytest.raises(GraphError, match=r"folding file .*bad.json: not valid JSON"):
        apply_folding_json(make_net(), bad)


def valid_datapaths(layer):
    return layer.fold_choices()["datapath"][0]


def test_valid_datapaths():
    net = make_net(wtype="BIPOLAR")
    assert valid_datapaths(net.layers[1]) == ("auto", "binary-weights", "lut", "dsp")
    bipolar = MVAULayer(name="b", mw=2, mh=2, weights=[[1, -1], [1, 1]], input_type="BIPOLAR",
                        weight_type="BIPOLAR", output_type="INT3")
    assert valid_datapaths(bipolar) == ("auto", "xnor", "lut")
    binary = MVAULayer(name="c", mw=2, mh=2, weights=[[1, 0], [1, 1]], input_type="UINT3",
                       weight_type="BINARY", output_type="UINT4")
    assert valid_datapaths(binary) == ("auto", "lut")


def test_folding_and_analysis_build_no_hardware(monkeypatch):
    """Folding asks plans only: not one component is constructed, whatever the number of
    candidate foldings; the pipeline's analysis neither."""
    from amaranth.lib import wiring

    from graph.elaborate import Pipeline
    built = []
    original = wiring.Component.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)
    monkeypatch.setattr(wiring.Component, "__init__", counting)
    network = make_net()
    for budget in (3, 48, 1728):
        folded = fold(network, target_fps=100e6 / budget)
    pipeline = Pipeline(folded)
    assert pipeline.cycles_per_frame <= 1728 and pipeline.estimate().luts > 0
    assert pipeline.latency > 0
    assert built == []
