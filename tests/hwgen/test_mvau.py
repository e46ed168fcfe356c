# amaranth: UnusedElaboratable=no
"""MVAU: bit-exact against ``sim.golden.mvau`` in both tiers, exact cycle counts, errors."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.resources import Resources
from hwgen.arith.dot_product import FabricDotProduct
from hwgen.kernels.mvau import BIPOLAR, MVAU
from sim import golden
from sim.amaranth_sim import config_write_read, run_stream_sim, stream_get, stream_put
from sim.runner import xilinx_cells_sim_source
from sim.harness import run_compiled_stream_test
from sim.streams import run_stream_test


def operand_values(rng, shape, size):
    if shape == BIPOLAR:
        return rng.choice([-1, 1], size)
    width = shape.width
    lo, hi = (-(1 << width - 1), (1 << width - 1) - 1) if shape.signed else (0, (1 << width) - 1)
    return rng.integers(lo, hi + 1, size)


def encode(shape, values):
    return (values > 0).astype(np.int64) if shape == BIPOLAR else values


def make_case(*, mw, mh, pe, simd, weight_shape, input_shape, vectors=3, thresholds=None,
              offsets=False, seed=0, **kwargs):
    """An MVAU with random weights (and, with ``thresholds=T``, ``T`` random sorted thresholds
    per channel; with ``offsets`` and no thresholds, random per-channel offsets), its input
    beats and the golden output beats."""
    rng = np.random.default_rng(seed)
    weights = operand_values(rng, weight_shape, (mh, mw))
    inputs = operand_values(rng, input_shape, (vectors, mw))
    bias = 0
    shared = kwargs.pop("shared", False)
    if thresholds:
        acc = golden.mvau(inputs, weights)
        rows = 1 if shared else mh
        thresholds = np.sort(rng.integers(int(acc.min()) - 2, int(acc.max()) + 3,
                                          (rows, thresholds)), axis=1)
        bias = int(rng.integers(-2, 2))
    else:
        thresholds = None
        offsets = rng.integers(-300, 300, mh) if offsets else None
    if thresholds is not None:
        offsets = None
    unit = MVAU(mw=mw, mh=mh, pe=pe, simd=simd, weights=weights, input_shape=input_shape,
                weight_shape=weight_shape, thresholds=thresholds, bias=bias, vectors=vectors,
                offsets=offsets, **kwargs)
    expected = golden.mvau(inputs, weights, thresholds, bias, offsets=offsets)
    return unit, encode(input_shape, inputs).reshape(-1, simd), expected.reshape(-1, pe)


SHAPES = [BIPOLAR, signed(1), unsigned(1), signed(2), unsigned(2), signed(3), unsigned(4),
          signed(4), signed(8), unsigned(8)]


def datapaths_for(weight_shape, input_shape):
    paths = ["auto", "lut"]
    if weight_shape == BIPOLAR:
        paths.append("xnor" if input_shape == BIPOLAR else "binary-weights")
    if input_shape != BIPOLAR and input_shape.width >= 2 and \
            (weight_shape == BIPOLAR or weight_shape.width >= 2):
        paths.append("dsp")
    return paths


@st.composite
def configs(draw):
    simd = draw(st.integers(1, 5))
    pe = draw(st.integers(1, 4))
    mw = simd * draw(st.integers(1, 4))
    mh = pe * draw(st.integers(1, 3))
    weight_shape = draw(st.sampled_from(SHAPES))
    input_shape = draw(st.sampled_from(SHAPES))
    datapath = draw(st.sampled_from(datapaths_for(weight_shape, input_shape)))
    return dict(mw=mw, mh=mh, pe=pe, simd=simd, weight_shape=weight_shape,
                input_shape=input_shape, datapath=datapath,
                thresholds=draw(st.sampled_from([0, 1, 3])),
                offsets=draw(st.booleans()),
                shared=draw(st.booleans()),
                target=draw(st.sampled_from(["generic", "xilinx"])),
                pipeline_every=draw(st.integers(0, 2)),
                register_reads=draw(st.booleans()),
                mem_style=draw(st.sampled_from(["auto", "lutram", "bram"])),
                vectors=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2 ** 16)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs())
def test_amaranth_random(config):
    unit, beats, expected = make_case(primitives="behavioural", **config)
    run_stream_sim(unit, beats, expected=expected, seed=config["seed"], valid_prob=0.7,
                   ready_prob=0.6)


THROUGHPUT_CASES = [
    dict(mw=12, mh=8, pe=2, simd=3, weight_shape=BIPOLAR, input_shape=BIPOLAR,
         datapath="xnor", thresholds=1),
    dict(mw=8, mh=6, pe=3, simd=2, weight_shape=BIPOLAR, input_shape=unsigned(3),
         datapath="binary-weights"),
    dict(mw=6, mh=4, pe=2, simd=3, weight_shape=signed(2), input_shape=unsigned(2),
         datapath="lut", thresholds=3),
    dict(mw=4, mh=4, pe=4, simd=2, weight_shape=signed(4), input_shape=signed(4),
         datapath="dsp", target="xilinx", primitives="behavioural"),
    dict(mw=5, mh=3, pe=1, simd=5, weight_shape=signed(3), input_shape=signed(3),
         datapath="lut"),          # NF = 3, SF = 1: a one-word input buffer
    dict(mw=6, mh=2, pe=2, simd=2, weight_shape=signed(3), input_shape=signed(3),
         datapath="lut"),          # NF = 1: no input buffer
    dict(mw=8, mh=4, pe=2, simd=2, weight_shape=BIPOLAR, input_shape=BIPOLAR,
         datapath="xnor", mem_style="bram", register_reads=True, thresholds=1),
    dict(mw=6, mh=6, pe=2, simd=3, weight_shape=signed(3), input_shape=unsigned(2),
         datapath="lut", offsets=True),     # per-class offsets: NF = 3 table entries
    dict(mw=8, mh=4, pe=1, simd=4, weight_shape=BIPOLAR, input_shape=BIPOLAR,
         datapath="xnor", offsets=True),    # offsets share the xnor adder
]


def check_exact_cycles(unit, report):
    """Without stalls, output beat ``nf`` of vector ``v`` leaves exactly
    ``v * NF * SF + nf * SF + latency`` cycles after the first input beat, and fold 0 takes the
    ``SF`` input beats of each vector in consecutive cycles."""
    start = report["in_cycles"][0]
    nf, sf = unit.nf, unit.sf
    vectors = len(report["out_cycles"]) // nf
    out_expected = [start + v * nf * sf + f * sf + unit.latency
                    for v in range(vectors) for f in range(nf)]
    in_expected = [start + v * nf * sf + s for v in range(vectors) for s in range(sf)]
    assert report["out_cycles"] == out_expected
    assert report["in_cycles"] == in_expected
    # the whole run: NF * SF cycles per vector, plus the latency, minus the one fold's input
    # beats that the latency already counts, plus the last output cycle itself
    assert report["out_cycles"][-1] - start + 1 == \
        unit.cycles_per_vector * vectors + unit.latency - sf + 1


@pytest.mark.parametrize("case", THROUGHPUT_CASES,
                         ids=lambda c: f"{c['datapath']}-{c['mw']}x{c['mh']}")
def test_amaranth_throughput_100_vectors(case):
    unit, beats, expected = make_case(vectors=100, **case)
    report = run_stream_sim(unit, beats, expected=expected, valid_prob=1.0,
                            ready_prob=1.0).report
    assert report["latency"] == unit.latency
    check_exact_cycles(unit, report)
    assert unit.cycles_per_frame == unit.nf * unit.sf * 100


COCOTB_CASES = [
    dict(mw=12, mh=8, pe=2, simd=3, weight_shape=BIPOLAR, input_shape=BIPOLAR,
         datapath="xnor", thresholds=1, target="xilinx", primitives="instance"),
    dict(mw=8, mh=6, pe=3, simd=4, weight_shape=BIPOLAR, input_shape=signed(4),
         datapath="binary-weights", thresholds=3, shared=True),
    dict(mw=6, mh=4, pe=2, simd=3, weight_shape=signed(3), input_shape=unsigned(2),
         datapath="lut", mem_style="bram", offsets=True),
    dict(mw=8, mh=8, pe=4, simd=2, weight_shape=signed(4), input_shape=unsigned(4),
         datapath="dsp", target="xilinx", primitives="behavioural", thresholds=2),
    dict(mw=6, mh=4, pe=2, simd=2, weight_shape=signed(8), input_shape=signed(8),
         datapath="dsp", target="generic"),
]


@pytest.mark.parametrize("index", range(len(COCOTB_CASES)))
def test_cocotb_backpressure(index):
    case = COCOTB_CASES[index]
    unit, beats, expected = make_case(vectors=20, seed=index, **case)
    extra = [xilinx_cells_sim_source(("LUT6_2", "CARRY8", "LUT6"))] \
        if case.get("primitives") == "instance" else []
    run_stream_test(unit, beats, expected, seed=index, valid_prob=0.7, ready_prob=0.6,
                    extra_sources=extra)
    report = run_stream_test(unit, beats, expected, valid_prob=1.0, ready_prob=1.0,
                             extra_sources=extra)
    assert report["latency"] == unit.latency
    check_exact_cycles(unit, report)
    if not extra:   # the compiled harness: same beats under stalls, same cycles without
        run_compiled_stream_test(unit, beats, expected, seed=index, valid_prob=0.7,
                                 ready_prob=0.6)
        compiled = run_compiled_stream_test(unit, beats, expected, valid_prob=1.0,
                                            ready_prob=1.0)
        for key in ("in_cycles", "out_cycles"):
            assert compiled[key].tolist() == report[key], key


def runtime_weights_case(mw=6, mh=4, pe=2, simd=3, vectors=2, mem_style="lutram"):
    """An MVAU with runtime weights, two weight sets, and inputs: ``vectors`` vectors for
    each set."""
    rng = np.random.default_rng(3)
    first, second = (rng.integers(-4, 4, (mh, mw)) for _ in range(2))
    inputs = rng.integers(0, 4, (2 * vectors, mw))
    unit = MVAU(mw=mw, mh=mh, pe=pe, simd=simd, weights=first, input_shape=unsigned(2),
                weight_shape=signed(3), datapath="lut", runtime_weights=True,
                mem_style=mem_style, vectors=vectors)
    expected = np.concatenate([golden.mvau(inputs[:vectors], first),
                               golden.mvau(inputs[vectors:], second)])
    return unit, first, second, inputs, expected


@pytest.mark.parametrize("mem_style", ["lutram", "bram"])
def test_amaranth_runtime_weights(mem_style):
    """Weights written through ``wcfg`` between frames are used by the next frame and read
    back."""
    unit, first, second, inputs, expected = runtime_weights_case(vectors=1, mem_style=mem_style)
    outputs, read_back = [], []
    writes = unit.weight_config_writes(second)

    async def testbench(ctx):
        for vector in inputs:
            if len(outputs) == unit.nf:
                read_back.extend(await config_write_read(ctx, unit.wcfg, writes))
            for beat in vector.reshape(-1, unit.simd):
                await stream_put(ctx, unit.i, [int(v) for v in beat])
            for _ in range(unit.nf):
                payload = await stream_get(ctx, unit.o)
                outputs.append([payload[k] for k in range(unit.pe)])

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run_until(1e-5)
    assert read_back == [word for _, word in writes]
    assert np.array_equal(np.array(outputs).reshape(expected.shape), expected)


@pytest.mark.parametrize("mem_style", ["lutram", "bram"])
def test_cocotb_runtime_weights_mid_stream(mem_style):
    """cocotb: a frame with the initial weights, the new weights written and read back on
    ``wcfg`` under random back-pressure, then a frame with them."""
    unit, first, second, inputs, expected = runtime_weights_case(vectors=3, mem_style=mem_style)
    beats = inputs.reshape(-1, unit.simd)
    config = {"after_inputs": unit.in_beats_per_frame, "after_outputs": unit.out_beats_per_frame,
              "writes": unit.weight_config_writes(second), "port": "wcfg"}
    run_stream_test(unit, beats, expected.reshape(-1, unit.pe), seed=4, valid_prob=0.7,
                    ready_prob=0.6, config=config)


def test_properties_and_shapes():
    weights = np.ones((64, 784), dtype=int)
    unit = MVAU(mw=784, mh=64, pe=16, simd=49, weights=weights, input_shape=BIPOLAR,
                weight_shape=BIPOLAR, thresholds=np.zeros((64, 1), dtype=int))
    assert (unit.nf, unit.sf, unit.weight_depth, unit.weight_width) == (4, 16, 64, 784)
    assert unit.datapath == "xnor" and unit.cycles_per_frame == 64
    assert unit.output_shape == unsigned(1) and unit.acc_shape == signed(11)
    assert unit.mem_style == "lutram"
    assert unit.in_beats_per_frame == 16 and unit.out_beats_per_frame == 4
    raw = MVAU(mw=4, mh=2, weights=[[1, -2, 3, -4], [0, 1, 2, 3]], input_shape=unsigned(8),
               weight_shape=signed(4), datapath="lut", vectors=7)
    assert raw.acc_shape == signed(14)             # 4 * (-8 * 255) = -8160
    assert raw.cycles_per_frame == 2 * 4 * 7
    estimate = raw.estimate()
    assert isinstance(estimate, Resources) and estimate.dsp == 0
    shifted = MVAU(mw=4, mh=2, weights=[[1, -2, 3, -4], [0, 1, 2, 3]], input_shape=unsigned(8),
                   weight_shape=signed(4), datapath="lut", vectors=7, offsets=[-200, 9000])
    assert shifted.acc_shape == signed(15)         # -8160 - 200 .. 7140 + 9000
    assert shifted.offsets.tolist() == [-200, 9000] and shifted.latency == raw.latency
    assert shifted.estimate()["luts"] > estimate["luts"]
    assert raw.offsets is None


def test_auto_datapath():
    def unit(weight_shape, input_shape, mw=64, simd=16):
        rng = np.random.default_rng(0)
        return MVAU(mw=mw, mh=16, pe=8, simd=simd, input_shape=input_shape,
                    weight_shape=weight_shape,
                    weights=operand_values(rng, weight_shape, (16, mw)))
    assert unit(BIPOLAR, BIPOLAR).datapath == "xnor"
    assert unit(BIPOLAR, unsigned(4)).datapath == "binary-weights"
    assert unit(signed(2), unsigned(2)).datapath == "lut"
    assert unit(signed(8), signed(8)).datapath == "dsp"
    assert unit(signed(4), unsigned(1)).datapath == "lut"    # 1-bit inputs: no DSP packing


def test_xnor_engine_counts_agreements():
    engine = FabricDotProduct(mode="xnor", weight_shape=BIPOLAR, act_shape=BIPOLAR, simd=8,
                              lanes=2, max_terms=64)
    assert engine.sum_range == (0, 8) and engine.acc_shape == unsigned(7)


W4 = np.zeros((4, 6), dtype=int)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(pe=3), ValueError, r"pe=3 must divide mh=4; valid pe: \[1, 2, 4\]"),
    (dict(simd=4), ValueError, r"simd=4 must divide mw=6; valid simd: \[1, 2, 3, 6\]"),
    (dict(pe=0), ValueError, r"pe must be an integer >= 1, not 0"),
    (dict(weights=np.zeros((6, 4))), ValueError,
     r"weights must have shape \(MH, MW\) = \(4, 6\), not \(6, 4\)"),
    (dict(weights=np.full((4, 6), 8)), ValueError,
     r"weights\[0, 0\] = 8 is out of range: must be in \[-8, 7\] \(weight_shape=signed\(4\)\)"),
    (dict(weights=np.full((4, 6), 0.5)), ValueError,
     r"weights must be integers; weights\[0, 0\] is 0.5"),
    (dict(weight_shape=BIPOLAR), ValueError,
     r"weights\[0, 0\] = 0 is out of range: must be -1 or \+1 \(weight_shape='bipolar'\)"),
    (dict(input_shape=signed(9)), ValueError,
     r"input_shape must be 1 to 8 bits wide \(or 'bipolar'\), not 9"),
    (dict(input_shape="ternary"), ValueError,
     r"input_shape must be 'bipolar' or an Amaranth shape such as signed\(4\), not 'ternary'"),
    (dict(input_shape=3.5), TypeError, r"input_shape must be 'bipolar' or an Amaranth shape"),
    (dict(datapath="xnor"), ValueError, r"datapath='xnor' needs bipolar weights and inputs"),
    (dict(datapath="binary-weights"), ValueError,
     r"datapath='binary-weights' needs bipolar weights and integer inputs"),
    (dict(datapath="dsp", input_shape=unsigned(1)), ValueError,
     r"datapath='dsp' cannot take input_shape=unsigned\(1\).*use 'lut'"),
    (dict(datapath="fpu"), ValueError, r"datapath must be one of 'auto', 'xnor'"),
    (dict(mem_style="uram"), ValueError, r"mem_style must be one of 'auto', 'lutram', 'bram'"),
    (dict(thresholds=np.array([[3, 1]])), ValueError,
     r"thresholds must be non-decreasing along each channel"),
    (dict(thresholds=np.zeros((3, 2))), ValueError, r"thresholds must have shape \(4, T\)"),
    (dict(bias=2), ValueError, r"bias=2 needs thresholds"),
    (dict(vectors=0), ValueError, r"vectors must be an integer >= 1, not 0"),
    (dict(offsets=[1, 2, 3, 4], thresholds=np.zeros((4, 1))), ValueError,
     r"offsets need raw outputs \(no thresholds\)"),
    (dict(offsets=[1, 2, 3]), ValueError,
     r"offsets must have shape \(MH,\) = \(4,\), not \(3,\)"),
    (dict(offsets=[0, 0.5, 1, 2]), ValueError, r"offsets must be integers; offsets\[1\] is 0.5"),
])
def test_errors(kwargs, error, pattern):
    params = dict(mw=6, mh=4, weights=W4, input_shape=unsigned(4), weight_shape=signed(4))
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        MVAU(**params)
