# amaranth: UnusedElaboratable=no
"""MaxPool, AvgPool and GlobalAccPool in both tiers: golden models against ONNX ``MaxPool``,
``AveragePool`` (times K_h*K_w) and ``GlobalAveragePool`` (times H*W), parameter errors,
Amaranth's simulator (property tests under random back-pressure, exact cycles frame after
frame) and cocotb on Verilator; a slow sweep of more than 10,000 beats per kernel."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st

from hwgen.cli import main
from hwgen.kernels.pool import (AvgPool, GlobalAccPool, GlobalAccPoolPlan, MaxPool, MaxPoolPlan,
                                AvgPoolPlan, WindowPoolPlan, axis_roles)
from hwgen.memory import auto_style
from hwgen.resources import Resources, memory_cost
from hwgen.shapes import BIPOLAR
from pooling_checks import (assert_exact_schedule, decode, encode, onnx_node, random_codes,
                            synthesized)
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test


def reference(pool, values):
    """The golden model of ``pool`` on NHWC values."""
    if isinstance(pool, GlobalAccPoolPlan):
        return golden.global_sum(values)
    model = golden.maxpool if isinstance(pool, MaxPoolPlan) else golden.avgpool_sums
    return model(values, pool.kernel, pool.stride)


def vectors(pool, frames, seed):
    """Input beats and expected output beats of ``frames`` random frames."""
    shape = pool.input_shape
    codes = random_codes(shape, (frames, *pool.ifm, pool.channels), np.random.default_rng(seed))
    result = reference(pool, decode(codes, shape))
    if pool.output_shape == BIPOLAR:
        result = encode(result, BIPOLAR)
    return codes.reshape(-1, pool.pe), result.reshape(-1, pool.pe)


def nchw(x):
    return np.transpose(x, (0, 3, 1, 2)).astype(np.float64)


def nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


# --- golden models --------------------------------------------------------------------------------

WINDOWS = [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1), ((1, 4), (3, 1)), (5, 5)]


@pytest.mark.parametrize("kernel, stride", WINDOWS)
def test_golden_against_onnx_pooling(kernel, stride):
    x = np.random.default_rng(5).integers(-50, 50, size=(2, 7, 6, 3))
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    strides = [kh, kw] if stride is None else list(np.broadcast_to(stride, 2))
    attributes = dict(kernel_shape=[kh, kw], strides=strides)
    maxima = nhwc(onnx_node("MaxPool", {"x": nchw(x)}, **attributes))
    np.testing.assert_array_equal(golden.maxpool(x, kernel, stride), maxima)
    means = nhwc(onnx_node("AveragePool", {"x": nchw(x)}, **attributes))
    np.testing.assert_array_equal(golden.avgpool_sums(x, kernel, stride),
                                  np.rint(means * kh * kw))


def test_golden_against_onnx_global_average_pool():
    x = np.random.default_rng(6).integers(-8, 8, size=(3, 5, 4, 6))
    means = nhwc(onnx_node("GlobalAveragePool", {"x": nchw(x)}))
    result = golden.global_sum(x)
    assert result.shape == (3, 1, 1, 6)
    np.testing.assert_array_equal(result, np.rint(means * 20))


def test_golden_errors():
    with pytest.raises(ValueError, match=r"kernel=4 is larger than the 3x5 map"):
        golden.maxpool(np.zeros((1, 3, 5, 2), dtype=int), 4)
    with pytest.raises(ValueError, match=r"x must hold integers, not dtype float64"):
        golden.global_sum(np.zeros((1, 3, 5, 2)))


def test_max_commutes_with_a_monotone_activation():
    """FINN's threshold swap: pooling activation codes equals activating pooled values, so the
    graph may move a max pool after a threshold activation; the kernel pools the codes."""
    x = np.random.default_rng(8).integers(-30, 30, size=(2, 6, 6, 4))
    thresholds = np.array([[-10, 0, 12]] * 4)
    codes = golden.threshold(x, thresholds)
    np.testing.assert_array_equal(golden.maxpool(codes, 2),
                                  golden.threshold(golden.maxpool(x, 2), thresholds))
    pool = MaxPool(ifm=6, channels=4, pe=2, kernel=2, input_shape=unsigned(2))
    run_stream_sim(pool, codes.reshape(-1, 2), expected=golden.maxpool(codes, 2).reshape(-1, 2),
                   seed=2, valid_prob=0.7, ready_prob=0.7)


# --- parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"kernel": (3, 6)}, ValueError,
     r"kernel \(3, 6\) is larger than the 4x5 map: each axis must be at most \(4, 5\)"),
    ({"kernel": 5}, ValueError, r"kernel \(5, 5\) is larger than the 4x5 map"),
    ({"pe": 4}, ValueError, r"pe=4 must divide channels=6; valid pe: \[1, 2, 3, 6\]"),
    ({"stride": (5, 1)}, ValueError,
     r"stride \(5, 1\) skips past the 4x5 map, so no valid output follows the first window "
     r"on that axis: stride must be at most \(4, 5\)"),
    ({"stride": 0}, ValueError,
     r"stride must be an integer >= 1 or 2 of them \(height, width\), not 0"),
    ({"kernel": (2, 2, 2)}, ValueError,
     r"kernel must be an integer >= 1 or 2 of them \(K_h, K_w\), not \(2, 2, 2\)"),
    ({"kernel": 2.0}, TypeError, r"kernel must be an integer >= 1 or 2 of them"),
    ({"ifm": 0}, ValueError, r"ifm must be an integer >= 1 or 2 of them \(H, W\), not 0"),
    ({"channels": -2}, ValueError, r"channels must be an integer >= 1, not -2"),
    ({"input_shape": signed(33)}, ValueError,
     r"input_shape must be 1 to 32 bits wide \(or 'bipolar'\), not 33"),
    ({"input_shape": "int8"}, ValueError,
     r"input_shape must be 'bipolar' or an Amaranth shape such as signed\(4\), not 'int8'"),
])
@pytest.mark.parametrize("plan", [MaxPoolPlan, AvgPoolPlan])
def test_parameter_errors(plan, kwargs, error, pattern):
    params = dict(ifm=(4, 5), channels=6, pe=2, kernel=2, input_shape=signed(4))
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        plan(**params)


def test_global_pool_and_machinery_errors():
    with pytest.raises(ValueError, match=r"pe=3 must divide channels=4"):
        GlobalAccPoolPlan(ifm=3, channels=4, pe=3, input_shape=unsigned(2))
    with pytest.raises(TypeError, match=r"WindowPoolPlan names no reduction: use MaxPool, "
                                        r"AvgPool or GlobalAccPool"):
        WindowPoolPlan(ifm=3, channels=1, kernel=2, input_shape=unsigned(2))


def test_axis_roles():
    # kernel 3, stride 2 on 7 positions: windows 0 (0..2), 1 (2..4), 2 (4..6) in slots 0, 1, 0
    roles = axis_roles(7, 3, 2)
    assert [r[0] for r in roles] == [1, 1, 3, 2, 3, 1, 1]           # slots covering
    assert [r[1] for r in roles] == [1, 0, 2, 0, 1, 0, 0]           # slots opened
    assert [r[2] for r in roles] == [None, None, 0, None, 1, None, 0]
    assert roles[4][3] == (2, 1)
    # kernel 1, stride 3 on 5 positions: positions 1, 2 and 4 belong to no window
    assert [r[0] for r in axis_roles(5, 1, 3)] == [1, 0, 0, 1, 0]


def test_properties():
    pool = MaxPool(ifm=(7, 8), channels=6, pe=2, kernel=3, stride=2, input_shape=signed(5))
    assert (pool.ofm, pool.slots, pool.fold) == ((3, 3), (2, 2), 3)
    assert pool.output_shape == signed(5)
    # window columns 0 and 2 in slot column 0, window column 1 in slot column 1
    assert pool.buffer_shapes == [(6, 10), (3, 10), (6, 10), (3, 10)]
    assert (pool.in_beats_per_frame, pool.out_beats_per_frame, pool.cycles_per_frame) == \
        (168, 27, 168)
    assert pool.latency == (2 * 8 + 2) * 3 + 2
    assert pool.source_beats()[:4] == [54, 55, 56, 60]
    assert pool.out_times(list(range(0, 336, 2)))[:2] == [110, 112]

    sums = AvgPool(ifm=6, channels=4, kernel=3, stride=1, input_shape=unsigned(4))
    assert (sums.output_shape, sums.slots, sums.ofm) == (unsigned(8), (3, 3), (4, 4))
    assert AvgPool(ifm=4, channels=1, kernel=2, input_shape=BIPOLAR).output_shape == signed(4)
    assert AvgPool(ifm=4, channels=1, kernel=(1, 3), stride=(1, 1),
                   input_shape=signed(3)).output_shape == signed(5)
    assert MaxPool(ifm=4, channels=2, kernel=1, stride=2, input_shape=BIPOLAR).buffer_shapes == []

    total = GlobalAccPool(ifm=7, channels=64, pe=8, input_shape=signed(4))
    assert (total.output_shape, total.ofm, total.buffer_shapes) == (signed(10), (1, 1), [(8, 80)])
    assert (total.out_beats_per_frame, total.cycles_per_frame, total.latency) == (8, 392, 386)


@pytest.mark.parametrize("plan", [
    MaxPoolPlan(ifm=64, channels=256, pe=4, kernel=2, input_shape=signed(8)),
    AvgPoolPlan(ifm=32, channels=128, pe=8, kernel=3, stride=2, input_shape=unsigned(4)),
    GlobalAccPoolPlan(ifm=4, channels=8, pe=8, input_shape=signed(8)),
    MaxPoolPlan(ifm=16, channels=4, pe=4, kernel=2, input_shape=unsigned(2)),
])
def test_estimate_costs_the_buffers_with_the_memory_model(plan):
    estimate = plan.estimate()
    assert isinstance(estimate, Resources) and estimate.dsp == estimate.uram == 0
    buffers = [memory_cost(depth, width, auto_style(depth), ports="sdp")
               for depth, width in plan.buffer_shapes if depth > 1]
    assert estimate.bram18 == sum(b.bram18 for b in buffers)
    assert estimate.lutram == sum(b.lutram for b in buffers)
    # never a frame buffer: at most ceil(kh / sh) rows of partial results
    entries = sum(depth for depth, _ in plan.buffer_shapes)
    assert entries <= plan.slots[0] * plan.ofm[1] * plan.fold


def test_estimate_grows_with_the_reduction_width():
    narrow = AvgPoolPlan(ifm=8, channels=8, pe=8, kernel=2, input_shape=unsigned(2)).estimate()
    wide = AvgPoolPlan(ifm=8, channels=8, pe=8, kernel=2, input_shape=unsigned(8)).estimate()
    maxima = MaxPoolPlan(ifm=8, channels=8, pe=8, kernel=2, input_shape=unsigned(8)).estimate()
    assert narrow.luts < wide.luts < maxima.luts
    assert narrow.ffs < wide.ffs


@pytest.mark.parametrize("args, in_bits, out_bits, latency", [
    (["maxpool", "--ifm", "8", "--channels", "4", "--pe", "2", "--kernel", "3", "--stride", "2",
      "--input-shape", "bipolar"], 8, 8, 38),
    (["avgpool", "--ifm", "6,4", "--channels", "2", "--kernel", "2,1", "--input-shape", "u4"],
     8, 8, 10),
    (["globalaccpool", "--ifm", "7", "--channels", "8", "--pe", "4", "--input-shape", "s3"],
     16, 40, 98),
])
def test_command_line(args, in_bits, out_bits, latency, tmp_path, capsys):
    out = tmp_path / "pool.v"
    assert main(["verilog", *args, "-o", str(out)]) == 0
    text = out.read_text()
    assert f"module hwgen_{args[0]}(" in text
    assert f"input [{in_bits - 1}:0] s_axis_tdata;" in text
    assert f"output [{out_bits - 1}:0] m_axis_tdata;" in text
    assert f"latency {latency} cycles" in capsys.readouterr().err


def test_command_line_error(tmp_path, capsys):
    assert main(["verilog", "maxpool", "--ifm", "4", "--channels", "2", "--kernel", "5",
                 "--input-shape", "u2", "-o", str(tmp_path / "x.v")]) == 2
    assert "kernel (5, 5) is larger than the 4x4 map" in capsys.readouterr().err


# --- Amaranth tier ----------------------------------------------------------------------------

def _divisor(draw, n):
    return draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))


def _element_shape(draw, widest=7):
    kind = draw(st.sampled_from(["signed", "unsigned", BIPOLAR]))
    if kind == BIPOLAR:
        return BIPOLAR
    return (signed if kind == "signed" else unsigned)(draw(st.integers(1, widest)))


@st.composite
def window_pools(draw):
    ifm = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    kernel = tuple(draw(st.integers(1, min(n, 4))) for n in ifm)
    stride = tuple(draw(st.integers(1, min(n, 4))) for n in ifm)
    channels = draw(st.integers(1, 4))
    kind = draw(st.sampled_from([MaxPool, AvgPool]))
    return kind(ifm=ifm, channels=channels, pe=_divisor(draw, channels), kernel=kernel,
                stride=stride, input_shape=_element_shape(draw))


@st.composite
def global_pools(draw):
    channels = draw(st.integers(1, 6))
    return GlobalAccPool(ifm=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),
                         channels=channels, pe=_divisor(draw, channels),
                         input_shape=_element_shape(draw, widest=12))


@settings(max_examples=250, deadline=None)
@given(pool=st.one_of(window_pools(), global_pools()), frames=st.integers(1, 3),
       seed=st.integers(0, 2**16), valid_prob=st.sampled_from([0.3, 0.7, 1.0]),
       ready_prob=st.sampled_from([0.3, 0.7, 1.0]))
def test_amaranth_random(pool, frames, seed, valid_prob, ready_prob):
    beats, expected = vectors(pool, frames, seed)
    run_stream_sim(pool, beats, expected=expected, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


EXACT = [
    (MaxPool, dict(ifm=(6, 8), channels=4, pe=2, kernel=2, input_shape=signed(6))),
    (MaxPool, dict(ifm=(7, 7), channels=3, pe=1, kernel=3, stride=2, input_shape=BIPOLAR)),
    (MaxPool, dict(ifm=(5, 6), channels=2, pe=2, kernel=(2, 3), stride=(1, 1),
                   input_shape=unsigned(3))),
    (AvgPool, dict(ifm=(6, 6), channels=4, pe=4, kernel=3, stride=1, input_shape=signed(4))),
    (AvgPool, dict(ifm=(5, 7), channels=6, pe=3, kernel=2, input_shape=BIPOLAR)),
    (AvgPool, dict(ifm=(4, 4), channels=1, pe=1, kernel=1, stride=(2, 3),
                   input_shape=unsigned(5))),
    (GlobalAccPool, dict(ifm=(4, 5), channels=6, pe=2, input_shape=signed(7))),
    (GlobalAccPool, dict(ifm=(3, 3), channels=2, pe=2, input_shape=BIPOLAR)),
]


@pytest.mark.parametrize("kind, params", EXACT)
def test_amaranth_exact_cycles(kind, params):
    pool = kind(**params)
    frames = 4
    beats, expected = vectors(pool, frames, seed=pool.channels)
    _, report = run_stream_sim(pool, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_no_input_bubbles(report, pool, frames)
    assert report["latency"] == pool.latency
    assert_exact_schedule(report, pool, frames)


def assert_no_input_bubbles(report, pool, frames):
    """One input beat per cycle from cycle 1, frame after frame, up to the last window of the
    last frame at least (the run ends with its last output beat, and the pixels after the
    last whole window produce none)."""
    taken = report["in_cycles"]
    assert taken == list(range(1, 1 + len(taken)))
    assert len(taken) > (frames - 1) * pool.in_beats_per_frame + pool.source_beats()[-1]


# --- cocotb on Verilator ------------------------------------------------------------------------

COCOTB = {
    "maxpool-s8": (MaxPool, dict(ifm=(8, 6), channels=8, pe=4, kernel=2, input_shape=signed(8))),
    "maxpool-overlap": (MaxPool, dict(ifm=(7, 9), channels=2, pe=1, kernel=3, stride=2,
                                      input_shape=unsigned(2))),
    "avgpool-u4": (AvgPool, dict(ifm=(6, 6), channels=6, pe=3, kernel=2, input_shape=unsigned(4))),
    "avgpool-bipolar": (AvgPool, dict(ifm=(5, 5), channels=4, pe=4, kernel=3, stride=1,
                                      input_shape=BIPOLAR)),
    "global-s6": (GlobalAccPool, dict(ifm=(4, 4), channels=8, pe=2, input_shape=signed(6))),
    "global-u1": (GlobalAccPool, dict(ifm=(7, 3), channels=3, pe=3, input_shape=unsigned(1))),
}


@pytest.mark.parametrize("name", COCOTB)
def test_cocotb(name):
    kind, params = COCOTB[name]
    pool = kind(**params)
    frames = 6
    beats, expected = vectors(pool, frames, seed=len(name))
    run_stream_test(pool, beats, expected, seed=pool.pe, valid_prob=0.6, ready_prob=0.5)
    report = run_stream_test(pool, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_no_input_bubbles(report, pool, frames)
    assert_exact_schedule(report, pool, frames)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["maxpool-overlap", "avgpool-bipolar", "global-s6"])
def test_slow_many_beats(name):
    """More than 10,000 input beats per kernel under random stalls, in both tiers."""
    kind, params = COCOTB[name]
    pool = kind(**params)
    frames = -(-10_000 // pool.in_beats_per_frame)
    beats, expected = vectors(pool, frames, seed=13)
    run_stream_test(pool, beats, expected, seed=17, valid_prob=0.5, ready_prob=0.5)
    run_stream_sim(pool, beats, expected=expected, seed=17, valid_prob=0.6, ready_prob=0.6)


@pytest.mark.slow
def test_slow_block_ram_buffer():
    """A row buffer deep enough for block RAM (512 entries) under random stalls."""
    pool = MaxPool(ifm=(4, 64), channels=16, pe=1, kernel=2, input_shape=signed(5))
    assert pool.buffer_shapes == [(512, 5)] and pool.estimate().bram18 == 1
    beats, expected = vectors(pool, 3, seed=19)
    run_stream_sim(pool, beats, expected=expected, seed=19, valid_prob=0.7, ready_prob=0.7)


@pytest.mark.slow
@pytest.mark.parametrize("kind, params", [
    (MaxPool, dict(ifm=32, channels=64, pe=8, kernel=2, input_shape=signed(8))),
    (MaxPool, dict(ifm=16, channels=32, pe=2, kernel=3, stride=2, input_shape=signed(6))),
    (MaxPool, dict(ifm=64, channels=256, pe=4, kernel=2, input_shape=signed(8))),
    (AvgPool, dict(ifm=12, channels=8, pe=8, kernel=3, stride=1, input_shape=signed(4))),
    (AvgPool, dict(ifm=32, channels=128, pe=8, kernel=3, stride=2, input_shape=unsigned(4))),
    (GlobalAccPool, dict(ifm=7, channels=64, pe=8, input_shape=unsigned(4))),
    (GlobalAccPool, dict(ifm=4, channels=8, pe=8, input_shape=signed(8))),
])
def test_slow_estimate_against_yosys(kind, params):
    report, estimate = synthesized(kind(**params))
    assert (estimate.bram18, estimate.lutram) == (report["bram18"], report["lutram"])
    assert abs(estimate.luts - report["luts"]) <= max(20, 0.15 * report["luts"])
    assert abs(estimate.ffs - report["ffs"]) <= max(8, 0.1 * report["ffs"])


@pytest.mark.slow
@settings(max_examples=5, deadline=None)
@given(pool=st.one_of(window_pools(), global_pools()), seed=st.integers(0, 2**16))
def test_slow_cocotb_random_configs(pool, seed):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    beats, expected = vectors(pool, 2, seed)
    run_stream_test(pool, beats, expected, seed=seed, valid_prob=0.6, ready_prob=0.5)
