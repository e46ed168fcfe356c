# amaranth: UnusedElaboratable=no
"""SlidingWindow: the golden model against ONNX, parameter errors, the line buffer's bound,
and the kernel in both tiers (Amaranth's simulator: property tests under random
back-pressure, exact cycles, a sliding window feeding an MVAU and a VVAU; cocotb on
Verilator: back-pressure and exact cycles), with long runs in the slow tier."""

import re

import numpy as np
import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from hypothesis import given, settings, strategies as st

from hwgen.cli import main
from hwgen.kernels.mvau import MVAU
from hwgen.kernels.swg import LOOKAHEAD_WORDS, SlidingWindow, SlidingWindowPlan
from hwgen.kernels.vvau import VVAU
from hwgen.resources import ULTRASCALE_PLUS, Resources
from hwgen.shapes import shape_range
from hwgen.streams import lanes_signature
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.harness import run_compiled_stream_test
from sim.streams import run_stream_test


def feature_maps(plan, frames, seed):
    """``frames`` random NHWC maps for ``plan``, with the extremes of the element range."""
    lo, hi = shape_range(plan.elem_shape)
    maps = np.random.default_rng(seed).integers(lo, hi + 1, size=(frames, *plan.ifm,
                                                                  plan.channels))
    maps.reshape(-1)[0], maps.reshape(-1)[-1] = lo, hi
    return maps


def windows_of(plan, maps):
    """The golden output beats of ``plan`` for ``maps``."""
    return golden.sliding_window(maps, plan.kernel, plan.stride, plan.dilation, simd=plan.simd,
                                 depthwise=plan.depthwise, window_simd=plan.window_simd,
                                 parallel=plan.parallel)


def vectors(plan, frames, seed):
    """Input beats and the expected output beats of ``frames`` frames."""
    maps = feature_maps(plan, frames, seed)
    return maps.reshape(-1, plan.simd), windows_of(plan, maps)


def assert_exact_cycles(report, plan, frames, steady=True):
    """Without stalls, every beat moves in the cycle the plan's schedule says: the input
    beats (those taken before the run ended), every output beat of every frame, the first
    frame's :meth:`out_times`, the latency, and (``steady``) ``cycles_per_frame`` between
    the starts of the last frames, once the input has gained its lead."""
    first = report["in_cycles"][0]
    offered = [first + n for n in range(frames * plan.in_beats_per_frame)]
    accepted, out = plan.schedule_frames(offered, frames)
    assert report["out_cycles"] == out
    assert report["in_cycles"] == accepted[:len(report["in_cycles"])]
    assert plan.out_times(offered[:plan.in_beats_per_frame]) == out[:plan.out_beats_per_frame]
    assert report["latency"] == plan.latency
    starts = (accepted[::plan.in_beats_per_frame], out[::plan.out_beats_per_frame])
    for frame_starts in starts if steady else ():
        assert [b - a for a, b in zip(frame_starts[-3:], frame_starts[-2:])] == \
            [plan.cycles_per_frame] * 2


def plan_of(**params):
    params.setdefault("elem_shape", unsigned(4))
    return SlidingWindowPlan(**params)


# --- golden model ---------------------------------------------------------------------------

def test_golden_im2col_by_hand():
    x = np.arange(2 * 3 * 4 * 2).reshape(2, 3, 4, 2)          # N=2, H=3, W=4, C=2
    rows = golden.im2col(x, (2, 3), stride=(1, 1))
    assert rows.shape == (2 * 2 * 2, 2 * 3 * 2)
    # image 1, output pixel (1, 1): rows 1..2, columns 1..3, channels fastest
    expected = x[1, 1:3, 1:4, :].reshape(-1)
    assert rows[4 + 3].tolist() == expected.tolist()
    dilated = golden.im2col(x, (1, 2), stride=(2, 1), dilation=(1, 3))
    assert dilated.shape == (2 * 2 * 1, 4)
    assert dilated[1].tolist() == [*x[0, 2, 0], *x[0, 2, 3]]


def test_golden_beat_orders():
    x = feature_maps(plan_of(ifm=(5, 4), channels=4, kernel=(3, 2)), 2, seed=1)
    rows = golden.im2col(x, (3, 2))
    for parallel, lanes in (("none", 2), ("row", 2 * 4), ("window", 3 * 2 * 4)):
        beats = golden.sliding_window(x, (3, 2), simd=2, parallel=parallel)
        assert beats.shape[1] == lanes
        assert beats.reshape(rows.shape).tolist() == rows.tolist()
    beats = golden.sliding_window(x, (3, 2), simd=2, depthwise=True, window_simd=3)
    windows = golden.depthwise_windows(x, (3, 2))                # (pixels, C, K_h*K_w)
    pixel, fold, wfold = 5, 1, 1
    beat = beats[(pixel * 2 + fold) * 2 + wfold]
    assert [beat[p * 3 + s] for p in range(2) for s in range(3)] == \
        [windows[pixel, fold * 2 + p, wfold * 3 + s] for p in range(2) for s in range(3)]
    with pytest.raises(ValueError, match=r"window_simd=3 applies to depthwise windows only"):
        golden.sliding_window(x, 3, window_simd=3)


@pytest.mark.parametrize("shape, kernel, stride, dilation, out_channels", [
    ((1, 6, 6, 3), (3, 3), (1, 1), (1, 1), 4),
    ((2, 7, 9, 2), (2, 3), (2, 1), (1, 2), 3),
    ((1, 8, 5, 4), (3, 1), (1, 2), (2, 1), 2),
    ((1, 5, 5, 1), (1, 1), (2, 2), (1, 1), 5),
])
def test_golden_conv2d_equals_onnx(shape, kernel, stride, dilation, out_channels):
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-8, 8, size=shape)
    w = rng.integers(-4, 4, size=(out_channels, *kernel, shape[3]))           # OHWI
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=list(kernel),
                            strides=list(stride), dilations=list(dilation))
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
                         helper.make_tensor_value_info("w", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (y,) = ReferenceEvaluator(model).run(None, {
        "x": x.transpose(0, 3, 1, 2).astype(np.float32),
        "w": w.transpose(0, 3, 1, 2).astype(np.float32)})
    ours = golden.conv2d(x, w, stride, dilation)
    assert ours.dtype.kind == "i"
    np.testing.assert_array_equal(ours, y.transpose(0, 2, 3, 1))


# --- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"ifm": 4, "kernel": 5}, ValueError,
     r"kernel \(5, 5\) with dilation \(1, 1\) spans 5x5 pixels, larger than the 4x4 map"),
    ({"ifm": (9, 4), "kernel": (3, 2), "dilation": (2, 4)}, ValueError,
     r"kernel \(3, 2\) with dilation \(2, 4\) spans 5x5 pixels, larger than the 9x4 map"),
    ({"simd": 3}, ValueError, r"simd=3 must divide channels=4; valid simd: \[1, 2, 4\]"),
    ({"ifm": (4, 6), "kernel": 1, "stride": (5, 1)}, ValueError,
     r"stride \(5, 1\) skips past the 4x6 map, so no second window position exists on that "
     r"axis: stride must be at most \(4, 6\)"),
    ({"stride": 0}, ValueError, r"stride must be an integer >= 1 or 2 of them"),
    ({"kernel": (3, 0)}, ValueError, r"kernel must be an integer >= 1 or 2 of them \(K_h, K_w\), "
                                     r"not \(3, 0\)"),
    ({"ifm": "8"}, TypeError, r"ifm must be an integer >= 1 or 2 of them \(H, W\), not '8'"),
    ({"channels": 0}, ValueError, r"channels must be an integer >= 1, not 0"),
    ({"window_simd": 3}, ValueError, r"window_simd=3 applies to depthwise windows only"),
    ({"depthwise": True, "window_simd": 4}, ValueError,
     r"window_simd=4 must divide kernel_h\*kernel_w=9; valid window_simd: \[1, 3, 9\]"),
    ({"depthwise": True, "parallel": "row"}, ValueError,
     r"parallel='row' is for the MVAU order; depthwise windows are parallel by simd"),
    ({"parallel": "all"}, ValueError,
     r"parallel must be one of 'none', 'row', 'window', not 'all'"),
    ({"mem_style": "uram"}, ValueError, r"mem_style must be one of 'auto', 'lutram', 'bram', "
                                        r"'registers', not 'uram'"),
    ({"depthwise": 1}, TypeError, r"depthwise must be True or False, not 1"),
    ({"elem_shape": "u4"}, TypeError, r"elem_shape must be an Amaranth shape such as signed\(8\)"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(ifm=8, channels=4, kernel=3, simd=2, elem_shape=unsigned(4))
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        SlidingWindowPlan(**params)


def test_properties():
    plan = plan_of(ifm=(9, 7), channels=6, kernel=(3, 2), stride=(2, 1), dilation=(1, 2),
                   simd=3)
    assert (plan.span, plan.ofm, plan.positions, plan.channel_folds) == ((3, 3), (4, 5), 6, 2)
    assert (plan.in_beats_per_frame, plan.out_beats_per_frame) == (9 * 7 * 2, 4 * 5 * 6 * 2)
    assert (plan.input_format.lanes, plan.output_format.lanes, plan.ports) == (3, 3, 1)
    assert plan.word_offsets() == [0, 4, 14, 18, 28, 32]         # (kh*W + kw*2) * 2 words
    assert plan.pixel_steps() == (2, (2 * 7 - 4) * 2, 9 * 7 * 2 - (3 * 2 * 7 + 4) * 2)
    assert plan.window_words == (2 * 7 + 3) * 2 and plan.buffer_depth == 36
    row = plan_of(ifm=(9, 7), channels=6, kernel=(3, 2), simd=3, parallel="row")
    assert (row.word_beats, row.word_lanes, row.ports, row.output_format.lanes) == (2, 6, 2, 12)
    assert row.out_beats_per_frame == 7 * 6 * 3
    window = plan_of(ifm=(9, 7), channels=6, kernel=(3, 2), simd=6, parallel="window")
    assert (window.ports, window.output_format.lanes, window.out_beats_per_frame) == \
        (6, 36, 7 * 6)
    depthwise = plan_of(ifm=(9, 7), channels=6, kernel=(3, 2), simd=2, depthwise=True,
                        window_simd=3)
    assert (depthwise.ports, depthwise.output_format.lanes) == (3, 6)
    assert depthwise.out_beats_per_frame == 7 * 6 * 3 * 2
    for kernel in (plan, row, window, depthwise):
        assert isinstance(kernel.estimate(), Resources)
        assert kernel.resolved_choices() == {"mem_style": kernel.mem_style}
    assert plan_of(ifm=4, channels=4, kernel=1, simd=4).mem_style == "registers"
    assert plan_of(ifm=64, channels=64, kernel=3, simd=8).mem_style == "bram"
    assert plan_of(ifm=8, channels=8, kernel=3, simd=8).mem_style == "lutram"


def test_a_plan_builds_nothing():
    plan = plan_of(ifm=8, channels=4, kernel=3, simd=2)
    assert not isinstance(plan, wiring.Component)
    assert isinstance(plan.build(), SlidingWindow)


@settings(max_examples=200, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), k_h=st.integers(1, 7), k_w=st.integers(1, 7),
       channels=st.sampled_from([1, 2, 3, 8, 12, 64]), simd_index=st.integers(0, 5),
       parallel=st.sampled_from(["none", "row", "window"]))
def test_buffer_bound(h, w, k_h, k_w, channels, simd_index, parallel):
    """For stride and dilation 1 the line buffer holds at most ``(K_h - 1)*W*C + K_w*C``
    elements plus the two lookahead words and the pixel assembly register, never a whole
    frame when a frame is larger than that; the estimate's memory is that buffer."""
    k_h, k_w = min(k_h, h), min(k_w, w)
    simds = [d for d in range(1, channels + 1) if channels % d == 0]
    simd = simds[simd_index % len(simds)]
    plan = plan_of(ifm=(h, w), channels=channels, kernel=(k_h, k_w), simd=simd,
                   parallel=parallel, mem_style="bram")
    extra = LOOKAHEAD_WORDS * plan.word_lanes + (channels - simd) * (parallel != "none")
    assert plan.buffer_bound == (k_h - 1) * w * channels + k_w * channels + extra
    assert plan.buffer_elements <= plan.buffer_bound
    assert plan.buffer_elements == plan.buffer_depth * plan.word_lanes + \
        (plan.word_beats - 1) * simd
    if h * w * channels > plan.buffer_bound:
        assert plan.buffer_elements < h * w * channels
    assert plan.estimate().bram18 == plan.ports * ULTRASCALE_PLUS.block_count(
        plan.buffer_depth, plan.word_bits)


def test_depthwise_and_dilated_buffers():
    """Dilation widens the window to its span; the depthwise order needs no more."""
    plan = plan_of(ifm=(10, 9), channels=4, kernel=3, dilation=(2, 3), simd=2)
    assert plan.buffer_bound == (5 - 1) * 9 * 4 + 7 * 4 + 2 * 2
    assert plan.buffer_elements <= plan.buffer_bound
    depthwise = plan_of(ifm=(10, 9), channels=4, kernel=3, simd=2, depthwise=True)
    assert depthwise.buffer_elements == plan_of(ifm=(10, 9), channels=4, kernel=3,
                                                simd=2).buffer_elements


def test_schedule_without_stalls():
    """The schedule of the default order: the first beat needs the first word only; with
    the input offered every cycle the output then runs at one beat per cycle within a
    frame (beyond its first rows) and the frames overlap; cycles_per_frame is the output's
    beats plus one."""
    plan = plan_of(ifm=8, channels=3, kernel=3, simd=3)
    assert plan.latency == 2
    assert plan.cycles_per_frame == plan.out_beats_per_frame + 1
    accepted, out = plan.schedule_frames(range(3 * 64), 3)
    second = out[324:648]
    gaps = [b - a for a, b in zip(second, second[1:])]
    assert gaps.count(1) >= len(gaps) - 2
    with pytest.raises(ValueError, match=r"in_times must give 128 input beats \(2 frames of 64\), "
                                         r"not 3"):
        plan.schedule_frames([0, 1, 2], 2)


@pytest.mark.parametrize("params", [
    dict(ifm=(6, 7), channels=4, kernel=(4, 6), stride=2, simd=4),     # a long transient
    dict(ifm=(1, 9), channels=2, kernel=(1, 3), stride=(1, 2), simd=2),
    dict(ifm=(12, 16), channels=8, kernel=3, simd=2),
    dict(ifm=7, channels=4, kernel=3, simd=1, depthwise=True, window_simd=3),
])
def test_cycles_per_frame_is_the_steady_state(params):
    """Once the input has gained its lead over the output (a few frames), every frame takes
    ``cycles_per_frame`` on both streams."""
    plan = plan_of(**params)
    frames = 24
    accepted, out = plan.schedule_frames(range(frames * plan.in_beats_per_frame), frames)
    for starts in (accepted[::plan.in_beats_per_frame], out[::plan.out_beats_per_frame]):
        periods = [b - a for a, b in zip(starts, starts[1:])]
        assert periods[-12:] == [plan.cycles_per_frame] * 12
    assert plan.cycles_per_frame >= max(plan.in_beats_per_frame, plan.out_beats_per_frame)


def test_input_bound_cycles():
    """A pointwise window at stride 2 reads every input beat once: one input beat per cycle."""
    plan = plan_of(ifm=8, channels=4, kernel=1, stride=2, simd=4)
    assert plan.cycles_per_frame == plan.in_beats_per_frame == 64
    window = plan_of(ifm=8, channels=4, kernel=3, simd=4, parallel="window")
    assert window.cycles_per_frame == 64 and window.out_beats_per_frame == 36


# --- Amaranth tier ----------------------------------------------------------------------------

@st.composite
def configs(draw):
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    k_h, k_w = draw(st.integers(1, min(h, 3))), draw(st.integers(1, min(w, 3)))
    d_h = draw(st.integers(1, max(1, (h - 1) // max(1, k_h - 1)) if k_h > 1 else 1))
    d_w = draw(st.integers(1, max(1, (w - 1) // max(1, k_w - 1)) if k_w > 1 else 1))
    s_h, s_w = draw(st.integers(1, min(h, 3))), draw(st.integers(1, min(w, 3)))
    channels = draw(st.sampled_from([1, 2, 3, 4]))
    simd = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    mode = draw(st.sampled_from(["none", "row", "window", "depthwise"]))
    extra = {}
    if mode == "depthwise":
        positions = k_h * k_w
        extra = dict(depthwise=True, window_simd=draw(st.sampled_from(
            [d for d in range(1, positions + 1) if positions % d == 0])))
    else:
        extra = dict(parallel=mode)
    return SlidingWindow(ifm=(h, w), channels=channels, kernel=(k_h, k_w), stride=(s_h, s_w),
                         dilation=(d_h, d_w), simd=simd,
                         elem_shape=draw(st.sampled_from([unsigned(3), signed(5)])),
                         mem_style=draw(st.sampled_from(["auto", "lutram", "bram",
                                                         "registers"])), **extra)


@settings(max_examples=80, deadline=None)
@given(swg=configs(), frames=st.integers(1, 3), seed=st.integers(0, 2 ** 16),
       valid_prob=st.sampled_from([0.3, 0.7, 1.0]), ready_prob=st.sampled_from([0.2, 0.6, 1.0]))
def test_amaranth_random(swg, frames, seed, valid_prob, ready_prob):
    """Any window, stride, dilation, map, SIMD, order and memory style under random
    back-pressure puts out exactly the golden model's beats."""
    beats, expected = vectors(swg, frames, seed)
    run_stream_sim(swg, beats, expected=expected, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


@settings(max_examples=40, deadline=None)
@given(swg=configs(), seed=st.integers(0, 2 ** 16))
def test_amaranth_random_schedule(swg, seed):
    """Without stalls, the simulated cycle of every beat of three frames is the schedule's."""
    frames = 3
    beats, expected = vectors(swg, frames, seed)
    _, report = run_stream_sim(swg, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    first = report["in_cycles"][0]
    accepted, out = swg.schedule_frames([first + n for n in range(len(beats))], frames)
    assert report["out_cycles"] == out
    assert report["in_cycles"] == accepted[:len(report["in_cycles"])]


EXACT = [
    dict(ifm=6, channels=4, kernel=3, simd=2),
    dict(ifm=(5, 7), channels=2, kernel=(2, 3), dilation=(2, 1), simd=1, mem_style="bram"),
    dict(ifm=(1, 9), channels=2, kernel=(1, 3), stride=(1, 2), simd=2),
    dict(ifm=5, channels=3, kernel=1, simd=3, mem_style="registers"),
    dict(ifm=6, channels=4, kernel=3, simd=2, depthwise=True, window_simd=3),
    dict(ifm=6, channels=4, kernel=3, simd=2, parallel="row"),
    dict(ifm=5, channels=4, kernel=(2, 3), simd=1, stride=(1, 2), parallel="window"),
]


@pytest.mark.parametrize("params", EXACT, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_amaranth_exact_cycles(params):
    swg = SlidingWindow(elem_shape=unsigned(4), **params)
    frames = 6
    beats, expected = vectors(swg, frames, seed=len(params))
    _, report = run_stream_sim(swg, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, swg, frames)


def test_amaranth_stalled_output_keeps_its_beat():
    """A consumer taking one beat in six while the input is offered every cycle: the input
    fills the free space and waits, and no word still needed is overwritten."""
    swg = SlidingWindow(ifm=(4, 6), channels=2, kernel=(2, 3), simd=1, elem_shape=unsigned(8))
    beats, expected = vectors(swg, 3, seed=7)
    run_stream_sim(swg, beats, expected=expected, seed=3, valid_prob=1.0, ready_prob=0.15)


class Chain(wiring.Component):
    """Stream kernels connected in a row, ``i`` of the first to ``o`` of the last."""

    def __init__(self, *stages):
        self._stages = stages
        first, last = stages[0].input_format, stages[-1].output_format
        super().__init__({"i": In(lanes_signature(first.elem_shape, first.lanes)),
                          "o": Out(lanes_signature(last.elem_shape, last.lanes))})
        self.in_beats_per_frame = stages[0].in_beats_per_frame
        self.out_beats_per_frame = stages[-1].out_beats_per_frame

    def elaborate(self, platform):
        m = Module()
        for index, stage in enumerate(self._stages):
            m.submodules[f"stage{index}"] = stage
        wiring.connect(m, wiring.flipped(self.i), self._stages[0].i)
        for producer, consumer in zip(self._stages, self._stages[1:]):
            wiring.connect(m, producer.o, consumer.i)
        wiring.connect(m, self._stages[-1].o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("parallel, simd, mvau_simd", [("none", 2, 2), ("row", 1, 3 * 4)])
def test_amaranth_convolution_through_mvau(parallel, simd, mvau_simd):
    """A sliding window feeding an MVAU (one vector per output pixel) is a convolution."""
    swg = SlidingWindow(ifm=(5, 6), channels=4, kernel=3, stride=(1, 2), simd=simd,
                        elem_shape=unsigned(3), parallel=parallel)
    out_channels = 3
    weights = np.random.default_rng(5).integers(-4, 4, size=(out_channels, 3, 3, 4))   # OHWI
    oh, ow = swg.ofm
    mvau = MVAU(mw=3 * 3 * 4, mh=out_channels, pe=out_channels, simd=mvau_simd,
                weights=weights.reshape(out_channels, -1), input_shape=unsigned(3),
                weight_shape=signed(3), vectors=oh * ow)
    maps = feature_maps(swg, 2, seed=9)
    expected = golden.conv2d(maps, weights, stride=(1, 2)).reshape(-1, out_channels)
    run_stream_sim(Chain(swg, mvau), maps.reshape(-1, simd), expected=expected, seed=4,
                   valid_prob=0.8, ready_prob=0.7)


def test_amaranth_depthwise_convolution_through_vvau():
    """The depthwise order feeding a VVAU with ``pe = simd``, ``simd = window_simd`` is a
    depthwise convolution."""
    swg = SlidingWindow(ifm=(5, 5), channels=4, kernel=3, simd=2, elem_shape=unsigned(3),
                        depthwise=True, window_simd=3)
    weights = np.random.default_rng(6).integers(-4, 4, size=(4, 3, 3))
    oh, ow = swg.ofm
    vvau = VVAU(channels=4, kernel=3, pe=2, simd=3, weights=weights, input_shape=unsigned(3),
                weight_shape=signed(3), vectors=oh * ow)
    maps = feature_maps(swg, 2, seed=8)
    expected = golden.depthwise_conv2d(maps, weights).reshape(-1, 2)
    run_stream_sim(Chain(swg, vvau), maps.reshape(-1, 2), expected=expected, seed=5,
                   valid_prob=0.8, ready_prob=0.7)


def test_hwgen_verilog_command(tmp_path):
    out = tmp_path / "swg.v"
    assert main(["verilog", "sliding_window", "--ifm", "8,8", "--channels", "3", "--kernel",
                 "3,3", "--stride", "1", "--dilation", "1", "--simd", "3", "--elem-shape", "u4",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert re.search(r"input \[15:0\] s_axis_tdata;", text)            # 3 x 4 bits, to bytes
    assert re.search(r"output \[15:0\] m_axis_tdata;", text)
    assert main(["verilog", "sliding_window", "--ifm", "8", "--channels", "4", "--kernel", "3",
                 "--simd", "2", "--elem-shape", "s8", "--depthwise", "--window-simd", "9",
                 "-o", str(out)]) == 0
    assert re.search(r"output \[143:0\] m_axis_tdata;", out.read_text())    # 2 x 9 x 8 bits


# --- cocotb on Verilator ------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    dict(ifm=(6, 7), channels=4, kernel=3, simd=2, mem_style="bram"),
    dict(ifm=6, channels=4, kernel=(3, 2), stride=(2, 1), simd=2, depthwise=True,
         window_simd=3, mem_style="lutram"),
], ids=["bram", "depthwise"])
def test_cocotb_backpressure_and_exact_cycles(params):
    swg = SlidingWindow(elem_shape=signed(5), **params)
    frames = 4
    beats, expected = vectors(swg, frames, seed=11)
    run_stream_test(swg, beats, expected, seed=3, valid_prob=0.6, ready_prob=0.5)
    report = run_stream_test(swg, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, swg, frames)
    # the compiled harness: the same beats under stalls, the same cycles without
    run_compiled_stream_test(swg, beats, expected, seed=3, valid_prob=0.6, ready_prob=0.5)
    compiled = run_compiled_stream_test(swg, beats, expected, valid_prob=1.0, ready_prob=1.0)
    for key in ("in_cycles", "out_cycles"):
        assert compiled[key].tolist() == report[key], key


# --- slow tier: long runs under random stalls, synthesis ----------------------------------------

LONG = [
    dict(ifm=(12, 16), channels=8, kernel=3, simd=2),
    dict(ifm=(10, 12), channels=6, kernel=(3, 2), stride=(1, 2), dilation=(2, 1), simd=3,
         parallel="row", mem_style="registers"),
    dict(ifm=12, channels=4, kernel=3, simd=1, depthwise=True, window_simd=3,
         mem_style="bram"),
]


@pytest.mark.slow
@pytest.mark.parametrize("params", LONG, ids=["mvau-order", "row", "depthwise"])
def test_slow_cocotb_long_run_under_stalls(params):
    swg = SlidingWindow(elem_shape=unsigned(6), **params)
    frames = -(-10_000 // swg.out_beats_per_frame) + 1
    beats, expected = vectors(swg, frames, seed=13)
    assert len(expected) >= 10_000
    run_stream_test(swg, beats, expected, seed=5, valid_prob=0.7, ready_prob=0.4)
    report = run_stream_test(swg, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_cycles(report, swg, frames, steady=False)      # too few frames to settle


@pytest.mark.slow
def test_slow_amaranth_long_run_under_stalls():
    swg = SlidingWindow(ifm=(9, 11), channels=4, kernel=(3, 3), stride=(2, 1), simd=2,
                        elem_shape=signed(4), mem_style="lutram")
    frames = -(-10_000 // swg.out_beats_per_frame)
    beats, expected = vectors(swg, frames, seed=17)
    assert len(expected) >= 10_000
    run_stream_sim(swg, beats, expected=expected, seed=6, valid_prob=0.6, ready_prob=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    dict(ifm=8, channels=3, kernel=3, simd=3),
    dict(ifm=32, channels=16, kernel=3, simd=4),
    dict(ifm=32, channels=16, kernel=3, simd=4, mem_style="lutram"),
    dict(ifm=16, channels=8, kernel=3, simd=8, parallel="window"),
    dict(ifm=16, channels=8, kernel=3, simd=2, depthwise=True, window_simd=3),
])
def test_slow_estimate_against_yosys(params):
    from boards.synth import synthesize
    from hwgen.export.verilog import component_verilog
    swg = SlidingWindow(elem_shape=unsigned(4), **params)
    report = synthesize(component_verilog(swg, name="top"), top="top", family="xcup")
    estimate = swg.estimate()
    assert estimate.bram18 == report["bram18"]
    assert abs(estimate.lutram - report["lutram"]) <= 0.1 * max(8, report["lutram"])
    assert abs(estimate.luts - report["luts"]) <= 0.25 * report["luts"]
    assert abs(estimate.ffs - report["ffs"]) <= 0.1 * report["ffs"]


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(swg=configs(), seed=st.integers(0, 2 ** 16))
def test_slow_cocotb_random_configs(swg, seed):
    """The property test in the cocotb tier: random windows, strides, dilations, maps, SIMD,
    orders and memory styles on Verilator under random back-pressure (each example builds
    its own simulator, so few examples, in the slow tier)."""
    beats, expected = vectors(swg, 2, seed)
    run_stream_test(swg, beats, expected, seed=seed, valid_prob=0.6, ready_prob=0.5)
