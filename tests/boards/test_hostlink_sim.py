"""HostLinkShell + a thresholding kernel on Verilator, driven at the UART pins (hostlink_tb.py),
and the shell's parameter checks."""

import json
from pathlib import Path

import numpy as np
import pytest

from boards.host import pack_frame
from boards.hostlink import FrameFormat, HostLinkShell
from boards.uart import uart_divisor
from kernels import threshold_kernel
from sim import golden
from sim.runner import run

CHANNELS, PE, VECTORS = 6, 2, 2
DIVISOR = 8
TIMEOUT = 3000


def make_kernel():
    return threshold_kernel(channels=CHANNELS, pe=PE, vectors=VECTORS)


def test_frame_format_of_kernel():
    kernel, _ = make_kernel()
    fmt = FrameFormat.from_component(kernel)
    assert (fmt.in_width, fmt.in_beats, fmt.in_elem, fmt.in_lanes) == (16, 6, (8, True), 2)
    assert (fmt.out_width, fmt.out_beats, fmt.out_elem, fmt.out_lanes) == (4, 6, (2, False), 2)
    assert (fmt.in_len, fmt.out_len) == (12, 6)


def test_shell_checks_parameters():
    kernel, _ = make_kernel()
    with pytest.raises(ValueError, match="divisor must be an integer >= 4"):
        HostLinkShell(kernel, divisor=3, timeout_cycles=1000)
    with pytest.raises(ValueError, match="timeout_cycles must be an integer >= 160"):
        HostLinkShell(kernel, divisor=8, timeout_cycles=100)
    with pytest.raises(ValueError, match=r"window must be an integer in 1\.\.255"):
        HostLinkShell(kernel, divisor=8, timeout_cycles=1000, window=0)
    with pytest.raises(TypeError, match="must be an amaranth wiring.Component"):
        HostLinkShell(object(), divisor=8, timeout_cycles=1000)


def test_uart_divisor():
    assert uart_divisor(12e6, 1_000_000) == 12
    assert uart_divisor(25e6, 115200) == 217
    with pytest.raises(ValueError, match=r"too fast for a 12 MHz clock.*at most 3,000,000 baud"):
        uart_divisor(12e6, 4_000_000)
    with pytest.raises(ValueError, match=r"divider 6 gives 2,000,000 baud, 4.8% off.*nearby: 2,400,000, 2,000,000"):
        uart_divisor(12e6, 2_100_000)


def test_hostlink_on_verilator(tmp_path):
    kernel, thresholds = make_kernel()
    fmt = FrameFormat.from_component(kernel)
    shell = HostLinkShell(kernel, divisor=DIVISOR, timeout_cycles=TIMEOUT, window=2)
    rng = np.random.default_rng(1)
    inputs = rng.integers(-128, 128, size=(6, VECTORS, CHANNELS))
    outputs = golden.threshold(inputs, thresholds)
    vectors = {
        "divisor": DIVISOR,
        "timeout_cycles": TIMEOUT,
        "inputs": [pack_frame(x, fmt).hex() for x in inputs],
        "expected": [_pack_output(y, fmt).hex() for y in outputs],
        "info": shell.info_payload.hex(),
    }
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps(vectors))
    result = run(shell, Path(__file__).with_name("hostlink_tb.py"), toplevel="hostlink",
                 extra_env={"HWGEN_HOSTLINK_VECTORS": path}, seed=1, timeout=300)
    assert result.passed
    assert set(result.tests) >= {"info", "back_to_back_frames", "corrupted_frame",
                                 "framing_error", "truncated_frame", "half_frame_then_whole",
                                 "bad_headers", "overflow"}


def _pack_output(values, fmt):
    from boards.host import _pack
    return _pack(values, fmt.out_beats, fmt.out_lanes, fmt.out_elem, fmt.out_beat_bytes, "output")
