# amaranth: UnusedElaboratable=no
"""Pad in both tiers: its golden model against ONNX ``Pad``, parameter errors, Amaranth's
simulator (property tests under random back-pressure, exact cycles frame after frame) and
cocotb on Verilator; a slow sweep of more than 10,000 beats under random stalls."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from hypothesis import given, settings, strategies as st

from hwgen.cli import main
from hwgen.kernels.pad import Pad, PadPlan
from hwgen.resources import Resources
from hwgen.shapes import BIPOLAR, shape_range
from pooling_checks import (assert_exact_schedule, decode, encode, onnx_node, random_codes,
                            synthesized)
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.streams import run_stream_test


def vectors(pad, frames, seed):
    """Input beats and expected output beats of ``frames`` random frames."""
    shape = pad.elem_shape
    codes = random_codes(shape, (frames, *pad.ifm, pad.channels), np.random.default_rng(seed))
    expected = encode(golden.pad(decode(codes, shape), pad.padding, pad.value), shape)
    return codes.reshape(-1, pad.simd), expected.reshape(-1, pad.simd)


# --- golden model ------------------------------------------------------------------------------

@pytest.mark.parametrize("padding, value", [(1, 0), ((2, 0, 1, 3), -5), ((0, 0, 0, 0), 7),
                                            ((0, 4, 0, 1), 1)])
def test_golden_against_onnx_pad(padding, value):
    x = np.random.default_rng(3).integers(-8, 8, size=(2, 3, 4, 5))
    top, left, bottom, right = (padding,) * 4 if isinstance(padding, int) else padding
    reference = onnx_node("Pad", {"x": x.astype(np.float64),
                                  "pads": np.array([0, top, left, 0, 0, bottom, right, 0]),
                                  "value": np.array(float(value))}, mode="constant")
    result = golden.pad(x, padding, value)
    np.testing.assert_array_equal(result, reference)
    assert result.dtype.kind == "i"


def test_golden_rejects_a_map_that_is_not_nhwc():
    with pytest.raises(ValueError, match=r"x must be an NHWC \(N, H, W, C\) array, not shape "
                                         r"\(3, 4\)"):
        golden.pad(np.zeros((3, 4), dtype=int), 1)


# --- parameters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"simd": 3}, ValueError, r"simd=3 must divide channels=8; valid simd: \[1, 2, 4, 8\]"),
    ({"padding": -1}, ValueError,
     r"padding must be an integer >= 0 or 4 of them \(top, left, bottom, right\), not -1"),
    ({"padding": (1, 2)}, ValueError, r"padding must be .* 4 of them .*, not \(1, 2\)"),
    ({"padding": "1"}, TypeError, r"padding must be an integer >= 0 or 4 of them"),
    ({"ifm": (4, 0)}, ValueError, r"ifm must be an integer >= 1 or 2 of them \(H, W\), not "
                                  r"\(4, 0\)"),
    ({"channels": 0}, ValueError, r"channels must be an integer >= 1, not 0"),
    ({"value": 8}, ValueError, r"value must be an integer in -8\.\.7, not 8"),
    ({"value": 1.0}, TypeError, r"value must be an integer in -8\.\.7, not 1\.0"),
    ({"elem_shape": BIPOLAR}, ValueError,
     r"value must be -1 or \+1 for elem_shape='bipolar', not 0"),
    ({"elem_shape": "int4"}, ValueError,
     r"elem_shape must be 'bipolar' or an Amaranth shape such as signed\(4\), not 'int4'"),
    ({"elem_shape": None}, TypeError, r"elem_shape must be 'bipolar' or an Amaranth shape"),
])
def test_parameter_errors(kwargs, error, pattern):
    params = dict(ifm=(4, 5), channels=8, simd=2, padding=1, elem_shape=signed(4))
    params.update(kwargs)
    with pytest.raises(error, match=pattern):
        PadPlan(**params)


def test_properties():
    pad = PadPlan(ifm=(2, 3), channels=4, simd=2, padding=(1, 2, 0, 1), elem_shape=unsigned(3),
                  value=5)
    assert pad.ofm == (3, 6) and pad.fold == 2
    assert (pad.in_beats_per_frame, pad.out_beats_per_frame) == (12, 36)
    assert pad.cycles_per_frame == 36 and pad.latency == 1
    # the top row and the left border of the first inner row wait for input beat 0
    sources = pad.source_beats()
    assert sources[:16] == [0] * 16 and sources[16:22] == [0, 1, 2, 3, 4, 5]
    assert sources[22:24] == [5, 5]                      # the right border follows beat 5
    # input beat 1 arrives late: the inner beats wait for it, the right border follows
    late = [0] + [40 + k for k in range(11)]
    assert pad.out_times(late)[:24] == list(range(1, 18)) + list(range(41, 48))
    assert pad.pad_code == 5
    assert PadPlan(ifm=1, channels=1, padding=1, elem_shape=BIPOLAR, value=-1).pad_code == 0
    assert PadPlan(ifm=1, channels=1, padding=1, elem_shape=signed(4), value=-3).pad_code == 13
    estimate = pad.estimate()
    assert isinstance(estimate, Resources) and estimate.ffs == 6 + 1 + 1 + 3 + 2
    assert estimate.bram18 == estimate.lutram == estimate.dsp == 0


def test_any_element_width():
    """Elements wider than 64 bits pass through and pad like any other."""
    pad = Pad(ifm=(1, 2), channels=1, padding=(0, 1, 0, 0), elem_shape=unsigned(70),
              value=2**69 + 1)
    x = np.array([[2**70 - 1], [12345]], dtype=object)
    run_stream_sim(pad, x, expected=np.array([[2**69 + 1], [2**70 - 1], [12345]], dtype=object),
                   valid_prob=1.0, ready_prob=1.0)


def test_command_line(tmp_path, capsys):
    out = tmp_path / "pad.v"
    assert main(["verilog", "pad", "--ifm", "4,5", "--channels", "6", "--simd", "3",
                 "--padding", "1,0,1,2", "--elem-shape", "s4", "--value", "-3",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert "module hwgen_pad(" in text and "input [15:0] s_axis_tdata;" in text
    assert "latency 1 cycles" in capsys.readouterr().err
    assert main(["verilog", "pad", "--ifm", "4", "--channels", "2", "--padding", "1",
                 "--elem-shape", "bipolar", "-o", str(out)]) == 2
    assert "value must be -1 or +1 for elem_shape='bipolar', not 0" in capsys.readouterr().err


# --- Amaranth tier ----------------------------------------------------------------------------

@st.composite
def pads(draw):
    channels = draw(st.integers(1, 6))
    simd = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
    kind = draw(st.sampled_from(["signed", "unsigned", BIPOLAR]))
    if kind == BIPOLAR:
        shape, value = BIPOLAR, draw(st.sampled_from([-1, 1]))
    else:
        shape = (signed if kind == "signed" else unsigned)(draw(st.integers(1, 9)))
        value = draw(st.integers(*shape_range(shape)))
    return Pad(ifm=(draw(st.integers(1, 4)), draw(st.integers(1, 4))), channels=channels,
               simd=simd, padding=padding, elem_shape=shape, value=value)


@settings(max_examples=100, deadline=None)
@given(pad=pads(), frames=st.integers(1, 3), seed=st.integers(0, 2**16),
       valid_prob=st.sampled_from([0.3, 0.7, 1.0]), ready_prob=st.sampled_from([0.3, 0.7, 1.0]))
def test_amaranth_random(pad, frames, seed, valid_prob, ready_prob):
    beats, expected = vectors(pad, frames, seed)
    run_stream_sim(pad, beats, expected=expected, seed=seed, valid_prob=valid_prob,
                   ready_prob=ready_prob)


@pytest.mark.parametrize("ifm, channels, simd, padding, shape, value", [
    ((4, 4), 4, 2, 1, unsigned(4), 0),
    ((3, 5), 3, 1, (2, 0, 1, 3), signed(6), -17),
    ((2, 2), 8, 8, (0, 0, 0, 0), BIPOLAR, 1),
    ((3, 2), 2, 1, (0, 2, 0, 0), BIPOLAR, -1),
    ((1, 1), 1, 1, (3, 3, 3, 3), signed(2), 1),
])
def test_amaranth_exact_cycles(ifm, channels, simd, padding, shape, value):
    pad = Pad(ifm=ifm, channels=channels, simd=simd, padding=padding, elem_shape=shape,
              value=value)
    frames = 6
    beats, expected = vectors(pad, frames, seed=channels + simd)
    _, report = run_stream_sim(pad, beats, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_schedule(report, pad, frames)
    # one output beat per cycle with no bubble between frames
    total = frames * pad.cycles_per_frame
    assert report["out_cycles"] == list(range(2, 2 + total))
    # inner beats are taken the cycle before they leave, border beats take nothing
    per_frame = pad.out_beats_per_frame
    assert report["in_cycles"] == [t - 1 for n, t in enumerate(report["out_cycles"])
                                   if _is_inner(pad, n % per_frame)]


def _is_inner(pad, n):
    """Whether output beat ``n`` of a frame carries an input beat."""
    top, left, _, _ = pad.padding
    row, column = divmod(n // pad.fold, pad.ofm[1])
    return top <= row < top + pad.ifm[0] and left <= column < left + pad.ifm[1]


# --- cocotb on Verilator ------------------------------------------------------------------------

COCOTB_CONFIGS = [
    dict(ifm=(5, 4), channels=6, simd=3, padding=(1, 2, 0, 1), elem_shape=signed(5), value=-3),
    dict(ifm=(3, 3), channels=4, simd=4, padding=2, elem_shape=BIPOLAR, value=1),
]


@pytest.mark.parametrize("params", COCOTB_CONFIGS, ids=["s5", "bipolar"])
def test_cocotb(params):
    pad = Pad(**params)
    frames = 8
    beats, expected = vectors(pad, frames, seed=pad.simd)
    run_stream_test(pad, beats, expected, seed=pad.simd, valid_prob=0.6, ready_prob=0.5)
    report = run_stream_test(pad, beats, expected, valid_prob=1.0, ready_prob=1.0)
    assert_exact_schedule(report, pad, frames)
    assert report["cycles"] == 2 + frames * pad.cycles_per_frame


@pytest.mark.slow
@pytest.mark.parametrize("params", COCOTB_CONFIGS, ids=["s5", "bipolar"])
def test_slow_many_beats(params):
    """More than 10,000 output beats under random stalls, in both tiers."""
    pad = Pad(**params)
    frames = -(-10_000 // pad.out_beats_per_frame)
    beats, expected = vectors(pad, frames, seed=7)
    run_stream_test(pad, beats, expected, seed=11, valid_prob=0.5, ready_prob=0.5)
    run_stream_sim(pad, beats, expected=expected, seed=11, valid_prob=0.6, ready_prob=0.6)


@pytest.mark.slow
@pytest.mark.parametrize("params", [
    dict(ifm=8, channels=16, simd=4, padding=1, elem_shape=unsigned(4)),
    dict(ifm=32, channels=64, simd=8, padding=(1, 2, 1, 2), elem_shape=signed(8), value=5),
])
def test_slow_estimate_against_yosys(params):
    report, estimate = synthesized(Pad(**params))
    assert abs(estimate.luts - report["luts"]) <= 0.15 * report["luts"]
    assert estimate.ffs == report["ffs"]
    assert report["bram18"] == report["lutram"] == 0


@pytest.mark.slow
@settings(max_examples=5, deadline=None)
@given(pad=pads(), seed=st.integers(0, 2**16))
def test_slow_cocotb_random_configs(pad, seed):
    """The property test in the cocotb tier (each example builds its own simulator)."""
    beats, expected = vectors(pad, 2, seed)
    run_stream_test(pad, beats, expected, seed=seed, valid_prob=0.6, ready_prob=0.5)
