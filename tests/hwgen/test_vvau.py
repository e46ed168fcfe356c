# amaranth: UnusedElaboratable=no
"""VVAU (depthwise convolution): the golden models against ONNX ``Conv`` with ``group = C``;
the kernel bit-exact against ``sim.golden.vvau`` in both tiers under random back-pressure,
exact cycle counts (``NF * SF`` per pixel, no bubbles across pixels and frames, output beats
at ``out_times``), the engines' per-lane activation mode, the registry entry, errors."""

import numpy as np
import onnx
import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from hwgen.arith.dot_product import FabricDotProductPlan
from hwgen.arith.packed_mac import PackedDotProductPlan, packing
from hwgen.checks import divisors
from hwgen.cli import ERROR_STATUS, main
from hwgen.kernels.mvau import MVAUPlan
from hwgen.kernels.swg import SlidingWindow
from hwgen.kernels.vvau import BIPOLAR, VVAU, VVAUPlan, valid_datapaths
from hwgen.resources import Resources
from hwgen.shapes import shape_range
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.runner import xilinx_cells_sim_source
from sim.streams import run_stream_test


def operand_values(rng, shape, size):
    """Random values of an operand shape (bipolar: -1/+1)."""
    if shape == BIPOLAR:
        return rng.choice([-1, 1], size)
    lo, hi = shape_range(shape)
    return rng.integers(lo, hi + 1, size)


def encode(shape, values):
    """Values as the bits on the stream (bipolar: -1 -> 0)."""
    return (values > 0).astype(np.int64) if shape == BIPOLAR else values


def make_case(*, channels, kernel, pe, simd, weight_shape, input_shape, vectors=3, frames=1,
              thresholds=0, shared=False, offsets=False, seed=0, **kwargs):
    """A VVAU with random ``(C, K_h, K_w)`` weights (with ``thresholds=T``: ``T`` random sorted
    thresholds per channel, or one shared row, and a bias; with ``offsets``: random
    per-channel offsets), the input beats of ``frames`` frames of random windows and the
    golden output beats."""
    rng = np.random.default_rng(seed)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    weights = operand_values(rng, weight_shape, (channels, kh, kw))
    windows = operand_values(rng, input_shape, (vectors * frames, channels, kh * kw))
    threshold_rows, bias, offset_values = None, 0, None
    if thresholds:
        acc = golden.vvau(windows, weights)
        threshold_rows = np.sort(rng.integers(int(acc.min()) - 2, int(acc.max()) + 3,
                                              (1 if shared else channels, thresholds)), axis=1)
        bias = int(rng.integers(-2, 2))
    elif offsets:
        offset_values = rng.integers(-300, 300, channels)
    unit = VVAU(channels=channels, kernel=kernel, pe=pe, simd=simd, weights=weights,
                input_shape=input_shape, weight_shape=weight_shape, thresholds=threshold_rows,
                bias=bias, offsets=offset_values, vectors=vectors, **kwargs)
    expected = golden.vvau(windows, weights, threshold_rows, bias, offsets=offset_values)
    beats = golden.depthwise_beats(encode(input_shape, windows), pe, simd)
    return unit, beats, expected.reshape(-1, pe)


# === golden models ============================================================================

def onnx_depthwise(x_nhwc, w, stride, dilation):
    """ONNX ``Conv`` with ``group = C`` on integer-valued float tensors, back to NHWC."""
    channels, kh, kw = w.shape
    pair = (lambda v: [v, v] if isinstance(v, int) else list(v))
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=channels, kernel_shape=[kh, kw],
                            strides=pair(stride), dilations=pair(dilation))
    x_nchw = x_nhwc.transpose(0, 3, 1, 2).astype(np.float32)
    graph = helper.make_graph(
        [node], "depthwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_nchw.shape)),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [channels, 1, kh, kw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    (y,) = ReferenceEvaluator(model).run(None, {"x": x_nchw,
                                               "w": w[:, None].astype(np.float32)})
    return y.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("n, h, w, c, kernel, stride, dilation", [
    (1, 5, 5, 3, (3, 3), 1, 1),
    (2, 7, 6, 4, (3, 2), (2, 1), 1),
    (1, 9, 8, 2, (3, 3), 2, (2, 3)),
    (1, 4, 4, 5, (1, 1), 1, 1),
    (1, 6, 3, 1, (5, 1), (1, 2), 1),
])
def test_golden_depthwise_conv2d_matches_onnx(n, h, w, c, kernel, stride, dilation):
    rng = np.random.default_rng(h * w + c)
    x = rng.integers(-8, 8, (n, h, w, c))
    weights = rng.integers(-8, 8, (c, *kernel))
    ours = golden.depthwise_conv2d(x, weights, stride, dilation)
    reference = onnx_depthwise(x, weights, stride, dilation)
    assert ours.shape == reference.shape
    np.testing.assert_array_equal(ours, reference.astype(np.int64))
    # the VVAU's golden model on the windows is the same convolution
    windows = golden.depthwise_windows(x, kernel, stride, dilation)
    assert windows.shape == (np.prod(ours.shape[:3]), c, kernel[0] * kernel[1])
    np.testing.assert_array_equal(golden.vvau(windows, weights).reshape(ours.shape), ours)


def test_golden_windows_order():
    """Window element ``k`` of a pixel is kernel row ``k // K_w``, column ``k % K_w``."""
    x = np.arange(2 * 4 * 5 * 3).reshape(2, 4, 5, 3)
    windows = golden.depthwise_windows(x, (2, 3), stride=(2, 1), dilation=(1, 2))
    assert windows.shape == (2 * 2 * 1, 3, 6)
    # image 1, output row 1 (input row 2), column 0; channel 2; kernel row 1, column 2
    assert windows[1 * 2 + 1, 2, 1 * 3 + 2] == x[1, 2 + 1, 0 + 2 * 2, 2]


def test_golden_vvau_activation_and_offsets():
    rng = np.random.default_rng(1)
    windows = rng.integers(-4, 4, (5, 4, 6))
    weights = rng.integers(-4, 4, (4, 2, 3))
    acc = np.array([[windows[v, c] @ weights[c].reshape(-1) for c in range(4)]
                    for v in range(5)])
    np.testing.assert_array_equal(golden.vvau(windows, weights), acc)
    offsets = np.array([3, -1, 0, 7])
    np.testing.assert_array_equal(golden.vvau(windows, weights, offsets=offsets), acc + offsets)
    thresholds = np.sort(rng.integers(-10, 10, (4, 3)), axis=1)
    np.testing.assert_array_equal(golden.vvau(windows, weights, thresholds, bias=-1),
                                  golden.threshold(acc, thresholds, -1))
    wide = np.full((1, 1, 4), 2 ** 40, dtype=object)
    assert golden.vvau(wide, np.full((1, 4), 2 ** 40))[0, 0] == 4 * 2 ** 80


def test_golden_depthwise_beats_order():
    """Beat ``(nf, sf)`` of a pixel, element ``p * SIMD + s``: window element ``sf * SIMD + s``
    of channel ``nf * PE + p``."""
    pixels, channels, window, pe, simd = 2, 6, 4, 3, 2
    windows = np.array([[[1000 * v + 10 * c + k for k in range(window)]
                         for c in range(channels)] for v in range(pixels)])
    beats = golden.depthwise_beats(windows, pe, simd)
    nf_count, sf_count = channels // pe, window // simd
    assert beats.shape == (pixels * nf_count * sf_count, pe * simd)
    for v in range(pixels):
        for nf in range(nf_count):
            for sf in range(sf_count):
                beat = beats[(v * nf_count + nf) * sf_count + sf]
                for p in range(pe):
                    for s in range(simd):
                        assert beat[p * simd + s] == \
                            1000 * v + 10 * (nf * pe + p) + sf * simd + s


@pytest.mark.parametrize("call, pattern", [
    (lambda: golden.vvau(np.zeros((2, 3, 4)), np.zeros((3, 5))),
     r"windows \(2, 3, 4\) and weights \(3, 5\) do not fit: need \(pixels, C, K\) and \(C, K\)"),
    (lambda: golden.depthwise_conv2d(np.zeros((1, 4, 4, 2), int), np.zeros((3, 2, 2))),
     r"w must have shape \(C, K_h, K_w\) with C = 2, not \(3, 2, 2\)"),
    (lambda: golden.depthwise_windows(np.zeros((1, 4, 4, 2), int), 3, dilation=2),
     r"kernel=3 with dilation=2 spans 5x5, more than the 4x4 map"),
    (lambda: golden.depthwise_beats(np.zeros((1, 4, 6)), 3, 2),
     r"windows of shape \(1, 4, 6\) do not fold into pe=3 channels and simd=2"),
])
def test_golden_errors(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


# === parameters, plan =========================================================================

def test_properties_and_shapes():
    weights = np.arange(8 * 9).reshape(8, 3, 3) % 16 - 8
    unit = VVAUPlan(channels=8, kernel=3, pe=4, simd=3, weights=weights,
                    input_shape=unsigned(4), weight_shape=signed(4), vectors=10)
    assert (unit.nf, unit.sf, unit.window, unit.kernel) == (2, 3, 9, (3, 3))
    assert (unit.weight_depth, unit.weight_width) == (6, 4 * 3 * 4)
    assert unit.input_format.lanes == 12 and unit.output_format.lanes == 4
    assert (unit.in_beats_per_frame, unit.out_beats_per_frame, unit.cycles_per_frame) == \
        (60, 20, 60)
    assert unit.acc_shape == signed(12)            # 9 * (-8 * 15) = -1080 .. 9 * 7 * 15 = 945
    assert unit.weights.tolist() == weights.reshape(8, 9).tolist()
    assert unit.datapath == "lut" and unit.mem_style == "lutram"
    assert unit.engine.per_lane_activations
    # the weight words are the MVAU's for the (C, K_h*K_w) matrix
    mvau = MVAUPlan(mw=9, mh=8, pe=4, simd=3, weights=weights.reshape(8, 9),
                    input_shape=unsigned(4), weight_shape=signed(4))
    assert unit.weight_words() == mvau.weight_words()
    flat = VVAUPlan(channels=8, kernel=(3, 3), pe=4, simd=3, weights=weights.reshape(8, 9),
                    input_shape=unsigned(4), weight_shape=signed(4), vectors=10)
    assert flat.weight_words() == unit.weight_words() and flat.estimate() == unit.estimate()
    estimate = unit.estimate()
    assert isinstance(estimate, Resources) and estimate.dsp == 0 and estimate.bram18 == 0
    assert unit.resolved_choices() == {"datapath": "lut", "mem_style": "lutram"}
    thresholded = VVAUPlan(channels=8, kernel=3, pe=4, simd=3, weights=weights,
                           input_shape=unsigned(4), weight_shape=signed(4),
                           thresholds=np.zeros((1, 3), dtype=int))
    assert thresholded.output_shape == unsigned(2)
    assert thresholded.latency == unit.latency + thresholded.threshold.latency


def test_dsp_count_is_one_slice_per_product():
    """Depthwise products share no operand: ``PE * SIMD`` slices, where an MVAU of the same
    folding packs ``max_lanes`` weights per slice."""
    params = dict(pe=4, simd=3, input_shape=signed(4), weight_shape=signed(4),
                  datapath="dsp", target="xilinx")
    weights = np.ones((8, 9), dtype=int)
    unit = VVAUPlan(channels=8, kernel=3, weights=weights, **params)
    assert unit.estimate().dsp == unit.engine.dsp_count == 4 * 3
    assert unit.engine.lanes_per_dsp == 1
    mvau = MVAUPlan(mw=9, mh=8, weights=weights, **params)
    assert mvau.estimate().dsp == 3 * 1                  # 4 lanes of 4x4 in one slice
    generic = VVAUPlan(channels=8, kernel=3, weights=weights, **{**params, "target": "generic"})
    assert generic.estimate().dsp == 0                   # multipliers left to synthesis


@pytest.mark.parametrize("weight_shape, input_shape, datapath", [
    (BIPOLAR, BIPOLAR, "xnor"),
    (BIPOLAR, unsigned(4), "binary-weights"),
    (signed(4), unsigned(4), "lut"),
    (signed(8), signed(8), "lut"),
    (signed(4), unsigned(1), "lut"),
])
def test_auto_datapath(weight_shape, input_shape, datapath):
    rng = np.random.default_rng(0)
    unit = VVAUPlan(channels=16, kernel=3, pe=8, simd=9, input_shape=input_shape,
                    weight_shape=weight_shape,
                    weights=operand_values(rng, weight_shape, (16, 9)))
    assert unit.datapath == datapath
    engines = {path: unit._engine_plan(path).estimate().lut_equivalent(ffs=0)
               for path in ("lut", "dsp") if path in valid_datapaths(weight_shape, input_shape)}
    if datapath in engines and len(engines) == 2:     # auto took the cheaper engine
        assert engines[datapath] <= min(engines.values())


W4 = np.zeros((4, 9), dtype=int)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(pe=3), ValueError, r"pe=3 must divide channels=4; valid pe: \[1, 2, 4\]"),
    (dict(simd=2), ValueError, r"simd=2 must divide K_h\*K_w=9; valid simd: \[1, 3, 9\]"),
    (dict(pe=0), ValueError, r"pe must be an integer >= 1, not 0"),
    (dict(channels=0), ValueError, r"channels must be an integer >= 1, not 0"),
    (dict(kernel=(3, 0)), ValueError,
     r"kernel must be an integer >= 1 or 2 of them \(K_h, K_w\), not \(3, 0\)"),
    (dict(kernel="3"), TypeError, r"kernel must be an integer >= 1 or 2 of them"),
    (dict(weights=np.zeros((4, 8))), ValueError,
     r"weights must have shape \(C, K_h\*K_w\) = \(4, 9\) or \(C, K_h, K_w\) = \(4, 3, 3\), "
     r"not \(4, 8\)"),
    (dict(weights=np.zeros((4, 3, 2))), ValueError, r"weights must have shape .* not \(4, 3, 2\)"),
    (dict(weights=np.full((4, 9), 8)), ValueError,
     r"weights\[0, 0\] = 8 is out of range: must be in \[-8, 7\] \(weight_shape=signed\(4\)\)"),
    (dict(weights=np.full((4, 9), 0.5)), ValueError,
     r"weights must be integers; weights\[0, 0\] is 0.5"),
    (dict(weight_shape=BIPOLAR), ValueError,
     r"weights\[0, 0\] = 0 is out of range: must be -1 or \+1 \(weight_shape='bipolar'\)"),
    (dict(input_shape=signed(9)), ValueError,
     r"input_shape must be 1 to 8 bits wide \(or 'bipolar'\), not 9"),
    (dict(input_shape="int4"), ValueError,
     r"input_shape must be 'bipolar' or an Amaranth shape such as signed\(4\), not 'int4'"),
    (dict(datapath="xnor"), ValueError, r"datapath='xnor' needs bipolar weights and inputs"),
    (dict(datapath="dsp", input_shape=unsigned(1)), ValueError,
     r"datapath='dsp' cannot take input_shape=unsigned\(1\).*use 'lut'"),
    (dict(datapath="fpu"), ValueError, r"datapath must be one of 'auto', 'xnor'"),
    (dict(mem_style="uram"), ValueError, r"mem_style must be one of 'auto', 'lutram', 'bram'"),
    (dict(target="intel"), ValueError, r"target must be one of 'auto', 'generic', 'xilinx'"),
    (dict(thresholds=np.array([[3, 1]])), ValueError,
     r"thresholds must be non-decreasing along each channel"),
    (dict(thresholds=np.zeros((3, 2))), ValueError, r"thresholds must have shape \(4, T\)"),
    (dict(bias=2), ValueError, r"bias=2 needs thresholds"),
    (dict(offsets=[1, 2, 3, 4], thresholds=np.zeros((4, 1))), ValueError,
     r"offsets need raw outputs \(no thresholds\)"),
    (dict(offsets=[1, 2, 3]), ValueError, r"offsets must have shape \(C,\) = \(4,\), not \(3,\)"),
    (dict(vectors=0), ValueError, r"vectors must be an integer >= 1, not 0"),
    (dict(register_reads=1), TypeError, r"register_reads must be True or False, not 1"),
])
def test_errors(kwargs, error, pattern):
    params = dict(channels=4, kernel=3, weights=W4, input_shape=unsigned(4),
                  weight_shape=signed(4))
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        VVAU(**params)


# === engines: per-lane activations ============================================================

def test_engines_per_lane_activation_ports_and_cost():
    """Per-lane activations widen ``a`` to ``lanes x simd``; a fabric engine costs the same as
    with shared activations (a tree per lane either way); a packed engine takes one slice per
    product and drops the activation offset, which gains nothing with one lane."""
    common = dict(weight_shape=signed(3), act_shape=unsigned(3), simd=4, lanes=3, max_terms=12,
                  mode="lut")
    shared = FabricDotProductPlan(**common)
    per_lane = FabricDotProductPlan(per_lane_activations=True, **common)
    assert per_lane.estimate() == shared.estimate()
    assert per_lane.build().a.shape().size == 3 * 4 * 3
    assert shared.build().a.shape().size == 4 * 3
    packed = dict(weight_width=4, act_width=4, act_signed=False, simd=3, lanes=5, max_terms=9,
                  target="packed")
    assert packing(4, 4, act_signed=False).act_offset
    assert not packing(4, 4, act_signed=False, act_offset=False).act_offset
    lanes = PackedDotProductPlan(per_lane_activations=True, **packed)
    assert not lanes.packing.act_offset and lanes.dsp_count == 15
    assert PackedDotProductPlan(**packed).dsp_count == 3 * 2
    signed_generic = {**packed, "target": "generic", "act_signed": True}   # no offset either way
    generic = PackedDotProductPlan(per_lane_activations=True, **signed_generic)
    shared_generic = PackedDotProductPlan(**signed_generic)
    assert generic.latency == shared_generic.latency
    # one activation register per product instead of one per SIMD position
    assert generic.estimate().ffs - shared_generic.estimate().ffs == (5 - 1) * 3 * 4


# === Amaranth tier ============================================================================

SHAPES = [BIPOLAR, signed(1), unsigned(1), signed(2), unsigned(2), signed(3), unsigned(4),
          signed(4), signed(8), unsigned(8)]


@st.composite
def configs(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    simd = draw(st.sampled_from(divisors(kh * kw)))
    pe = draw(st.integers(1, 4))
    weight_shape = draw(st.sampled_from(SHAPES))
    input_shape = draw(st.sampled_from(SHAPES))
    return dict(channels=pe * draw(st.integers(1, 3)),
                kernel=kh if kh == kw and draw(st.booleans()) else (kh, kw),
                pe=pe, simd=simd, weight_shape=weight_shape, input_shape=input_shape,
                datapath=draw(st.sampled_from(valid_datapaths(weight_shape, input_shape))),
                thresholds=draw(st.sampled_from([0, 1, 3])), offsets=draw(st.booleans()),
                shared=draw(st.booleans()),
                target=draw(st.sampled_from(["generic", "xilinx"])),
                pipeline_every=draw(st.integers(0, 2)), register_reads=draw(st.booleans()),
                mem_style=draw(st.sampled_from(["auto", "lutram", "bram"])),
                vectors=draw(st.integers(1, 3)), frames=draw(st.integers(1, 2)),
                seed=draw(st.integers(0, 2 ** 16)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs(), valid_prob=st.sampled_from([0.5, 0.9]),
       ready_prob=st.sampled_from([0.4, 0.8]))
def test_amaranth_random(config, valid_prob, ready_prob):
    unit, beats, expected = make_case(primitives="behavioural", **config)
    run_stream_sim(unit, beats, expected=expected, seed=config["seed"], valid_prob=valid_prob,
                   ready_prob=ready_prob)


def check_exact_cycles(unit, report, frames):
    """Without stalls: one input beat per cycle from the first to the last, with no bubble
    between pixels or frames; output beat ``nf`` of pixel ``v`` exactly
    ``v * NF * SF + nf * SF + latency`` cycles after the first input beat, as
    :meth:`~hwgen.kernels.vvau.VVAUPlan.out_times` says frame by frame."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    start, per_pixel = in_cycles[0], unit.nf * unit.sf
    assert report["latency"] == unit.latency
    assert in_cycles == list(range(start, start + frames * unit.cycles_per_frame))
    pixels = frames * unit.vectors
    assert out_cycles == [start + v * per_pixel + nf * unit.sf + unit.latency
                          for v in range(pixels) for nf in range(unit.nf)]
    check_out_times(unit, report)
    assert out_cycles[-1] - start + 1 == frames * unit.cycles_per_frame + unit.latency - unit.sf + 1


def check_out_times(unit, report):
    """The output beats leave at ``out_times`` of the cycles their frame's input beats came
    in (the output always ready)."""
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    n_in, n_out = unit.in_beats_per_frame, unit.out_beats_per_frame
    for frame in range(len(in_cycles) // n_in):
        assert out_cycles[frame * n_out:(frame + 1) * n_out] == \
            unit.out_times(in_cycles[frame * n_in:(frame + 1) * n_in])


THROUGHPUT_CASES = [
    dict(channels=8, kernel=3, pe=4, simd=3, weight_shape=signed(4), input_shape=unsigned(4),
         datapath="lut", thresholds=3),
    dict(channels=6, kernel=3, pe=2, simd=9, weight_shape=BIPOLAR, input_shape=BIPOLAR,
         datapath="xnor", thresholds=1),              # SF = 1: an output beat per cycle
    dict(channels=4, kernel=(3, 2), pe=4, simd=1, weight_shape=BIPOLAR, input_shape=signed(3),
         datapath="binary-weights", offsets=True),    # NF = 1
    dict(channels=6, kernel=2, pe=3, simd=2, weight_shape=signed(4), input_shape=signed(4),
         datapath="dsp", target="xilinx", primitives="behavioural"),
    dict(channels=4, kernel=3, pe=2, simd=3, weight_shape=signed(3), input_shape=unsigned(2),
         datapath="lut", mem_style="bram", register_reads=True, offsets=True),
    dict(channels=3, kernel=1, pe=1, simd=1, weight_shape=signed(2), input_shape=unsigned(8),
         datapath="lut"),                             # a 1x1 depthwise scale
]


@pytest.mark.parametrize("case", THROUGHPUT_CASES,
                         ids=lambda c: f"{c['datapath']}-{c['channels']}ch-{c['kernel']}")
def test_amaranth_exact_cycles(case):
    unit, beats, expected = make_case(vectors=12, frames=3, **case)
    report = run_stream_sim(unit, beats, expected=expected, valid_prob=1.0,
                            ready_prob=1.0).report
    check_exact_cycles(unit, report, frames=3)
    assert unit.cycles_per_frame == unit.nf * unit.sf * 12


@pytest.mark.parametrize("case", THROUGHPUT_CASES[:2], ids=["lut", "xnor"])
def test_amaranth_out_times_with_input_gaps(case):
    """With random gaps in the input and the output always ready, every output beat leaves
    exactly when :meth:`out_times` of the actual input cycles says."""
    unit, beats, expected = make_case(vectors=6, frames=2, **case)
    report = run_stream_sim(unit, beats, expected=expected, seed=5, valid_prob=0.4,
                            ready_prob=1.0).report
    check_out_times(unit, report)


def test_amaranth_convolution_layer():
    """A depthwise 3x3 layer with stride 2 on a 9x9 image: the sliding window's depthwise
    beats through the VVAU are the convolution, then thresholded."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 16, (1, 9, 9, 6))
    weights = rng.integers(-8, 8, (6, 3, 3))
    conv = golden.depthwise_conv2d(x, weights, stride=2)
    thresholds = np.sort(rng.integers(int(conv.min()), int(conv.max()) + 1, (6, 3)), axis=1)
    windows = golden.depthwise_windows(x, 3, stride=2)
    unit = VVAU(channels=6, kernel=3, pe=2, simd=3, weights=weights, input_shape=unsigned(4),
                weight_shape=signed(4), thresholds=thresholds, vectors=len(windows))
    out, _ = run_stream_sim(unit, golden.depthwise_beats(windows, 2, 3), seed=2, valid_prob=0.8,
                            ready_prob=0.7)
    np.testing.assert_array_equal(out.reshape(conv.shape), golden.threshold(conv, thresholds))


class Chain(wiring.Component):
    """Two stream kernels back to back: ``first.o`` into ``second.i``."""

    def __init__(self, first, second):
        self._first, self._second = first, second
        self.in_beats_per_frame = first.in_beats_per_frame
        self.out_beats_per_frame = second.out_beats_per_frame
        super().__init__({"i": first.members()["i"], "o": second.members()["o"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.first, m.submodules.second = self._first, self._second
        wiring.connect(m, wiring.flipped(self.i), self._first.i)
        wiring.connect(m, self._first.o, self._second.i)
        wiring.connect(m, self._second.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("ifm, kernel, stride, dilation, pe, simd", [
    (6, 3, 1, 1, 2, 3),
    ((7, 6), (3, 2), (2, 1), 1, 4, 2),
    (7, 2, 1, 2, 1, 4),
])
def test_amaranth_after_sliding_window(ifm, kernel, stride, dilation, pe, simd):
    """The sliding window's depthwise mode (its ``simd`` = PE, ``window_simd`` = SIMD) feeds
    the VVAU directly: the pair is the convolution, bit for bit under back-pressure, and
    without stalls its output beats leave at the chained ``out_times`` of the two plans."""
    rng = np.random.default_rng(pe + simd)
    h, w = (ifm, ifm) if isinstance(ifm, int) else ifm
    x = rng.integers(0, 16, (2, h, w, 4))
    weights = rng.integers(-8, 8, (4, *((kernel, kernel) if isinstance(kernel, int) else kernel)))
    conv = golden.depthwise_conv2d(x, weights, stride, dilation)
    window = SlidingWindow(ifm=ifm, channels=4, kernel=kernel, stride=stride, dilation=dilation,
                           simd=pe, elem_shape=unsigned(4), depthwise=True, window_simd=simd)
    unit = VVAU(channels=4, kernel=kernel, pe=pe, simd=simd, weights=weights,
                input_shape=unsigned(4), weight_shape=signed(4),
                vectors=conv.shape[1] * conv.shape[2])
    assert window.output_format == unit.input_format
    assert window.out_beats_per_frame == unit.in_beats_per_frame
    beats, expected = x.reshape(-1, pe), conv.reshape(-1, pe)
    run_stream_sim(Chain(window, unit), beats, expected=expected, seed=3, valid_prob=0.7,
                   ready_prob=0.6)
    report = run_stream_sim(Chain(window, unit), beats, expected=expected, valid_prob=1.0,
                            ready_prob=1.0).report
    n_in, n_out = window.in_beats_per_frame, unit.out_beats_per_frame
    for frame in range(2):
        in_cycles = report["in_cycles"][frame * n_in:(frame + 1) * n_in]
        assert report["out_cycles"][frame * n_out:(frame + 1) * n_out] == \
            unit.out_times(window.out_times(in_cycles))


# === cocotb on Verilator ======================================================================

COCOTB_CASES = [
    dict(channels=8, kernel=3, pe=4, simd=3, weight_shape=signed(4), input_shape=unsigned(4),
         datapath="dsp", target="xilinx", primitives="behavioural", thresholds=2),
    dict(channels=6, kernel=3, pe=3, simd=3, weight_shape=BIPOLAR, input_shape=BIPOLAR,
         datapath="xnor", thresholds=1, shared=True, target="xilinx", primitives="instance"),
    dict(channels=4, kernel=(3, 2), pe=2, simd=2, weight_shape=signed(3), input_shape=signed(3),
         datapath="lut", mem_style="bram", offsets=True),
]


@pytest.mark.parametrize("index", range(len(COCOTB_CASES)),
                         ids=[c["datapath"] for c in COCOTB_CASES])
def test_cocotb_backpressure(index):
    case = COCOTB_CASES[index]
    unit, beats, expected = make_case(vectors=10, frames=2, seed=index, **case)
    extra = [xilinx_cells_sim_source(("LUT6_2", "CARRY8", "LUT6"))] \
        if case.get("primitives") == "instance" else []
    run_stream_test(unit, beats, expected, seed=index, valid_prob=0.7, ready_prob=0.6,
                    extra_sources=extra)
    report = run_stream_test(unit, beats, expected, valid_prob=1.0, ready_prob=1.0,
                             extra_sources=extra)
    check_exact_cycles(unit, report, frames=2)


# === registry and command line ================================================================

def test_command_line(tmp_path, capsys):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "w.npy", rng.integers(-8, 8, (8, 3, 3)))
    np.save(tmp_path / "t.npy", np.sort(rng.integers(-50, 50, (8, 3)), axis=1))
    out = tmp_path / "vvau.v"
    assert main(["verilog", "vvau", "--weights", str(tmp_path / "w.npy"), "--kernel", "3,3",
                 "--pe", "4", "--simd", "3", "--input-shape", "u4", "--weight-shape", "s4",
                 "--thresholds", str(tmp_path / "t.npy"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "module hwgen_vvau(" in text
    assert "input [47:0] s_axis_tdata;" in text          # 4 x 3 elements of 4 bits
    assert "output [7:0] m_axis_tdata;" in text          # 4 channels of 2 bits
    assert "(VVAU), latency" in capsys.readouterr().err
    assert main(["verilog", "vvau", "--weights", str(tmp_path / "w.npy"), "--kernel", "3",
                 "--pe", "3", "--input-shape", "u4", "--weight-shape", "s4", "-o", "-"]) == \
        ERROR_STATUS
    assert "pe=3 must divide channels=8" in capsys.readouterr().err


# === slow tier: >= 10,000 beats under random stalls ==========================================

SLOW_CASES = [THROUGHPUT_CASES[0], THROUGHPUT_CASES[1], THROUGHPUT_CASES[3]]


def frames_for(case, vectors, beats=10_000):
    """Frames of ``vectors`` pixels that make at least ``beats`` input beats."""
    kernel = case["kernel"]
    window = kernel * kernel if isinstance(kernel, int) else kernel[0] * kernel[1]
    per_pixel = case["channels"] // case["pe"] * window // case["simd"]
    return -(-beats // (vectors * per_pixel))


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=["lut", "xnor", "dsp"])
def test_amaranth_long_random_stalls(case):
    unit, beats, expected = make_case(vectors=100, frames=frames_for(case, 100), seed=11,
                                      **case)
    assert len(beats) >= 10_000
    run_stream_sim(unit, beats, expected=expected, seed=11, valid_prob=0.7, ready_prob=0.6)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(COCOTB_CASES)),
                         ids=[c["datapath"] for c in COCOTB_CASES])
def test_cocotb_long_random_stalls(index):
    case = COCOTB_CASES[index]
    unit, beats, expected = make_case(vectors=100, frames=frames_for(case, 100),
                                      seed=20 + index, **case)
    assert len(beats) >= 10_000
    extra = [xilinx_cells_sim_source(("LUT6_2", "CARRY8", "LUT6"))] \
        if case.get("primitives") == "instance" else []
    run_stream_test(unit, beats, expected, seed=index, valid_prob=0.7, ready_prob=0.5,
                    extra_sources=extra)


@pytest.mark.slow
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs())
def test_slow_cocotb_random_configs(config):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    unit, beats, expected = make_case(primitives="behavioural", **config)
    run_stream_test(unit, beats, expected, seed=config["seed"], valid_prob=0.6, ready_prob=0.5)
