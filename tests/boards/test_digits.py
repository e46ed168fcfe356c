"""The bundled binarized digits MLP on the board layer (slow tier): behind the UART host link
on Verilator (frames through the UART model, labels against ``Network.execute``), and built
for the iCEBreaker (bitstream, fits, meets the 12 MHz clock)."""

import json
from pathlib import Path

import numpy as np
import pytest

from boards.host import _pack, pack_frame
from boards.hostlink import FrameFormat, HostLinkShell
from sim.runner import run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FRAMES = 6
DIVISOR = 4          # the fastest UART the shell allows: 4 clock cycles per bit
TIMEOUT = 3000


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """``(out_dir, network)``: examples/digits_w1a1.onnx compiled with the default folding."""
    from graph import compile_model
    from graph.compile import load_network
    out = tmp_path_factory.mktemp("digits_w1a1")
    compile_model(EXAMPLES / "digits_w1a1.onnx", out, progress=lambda *a, **k: None)
    return out, load_network(out)


@pytest.mark.slow   # the Verilator build of the network takes ~40 s of CPU (4 s once cached)
def test_digits_behind_hostlink_on_verilator(digits, tmp_path):
    from graph import load_accelerator, quantize_input
    out, network = digits
    accelerator = load_accelerator(out)
    fmt = FrameFormat.from_component(accelerator)
    assert (fmt.in_len, fmt.out_len) == (64, 1)      # 64 UINT5 pixels in, a UINT4 label out
    shell = HostLinkShell(accelerator, divisor=DIVISOR, timeout_cycles=TIMEOUT, window=2)
    x = quantize_input(network, np.load(EXAMPLES / "digits_test_x.npy")[:FRAMES])
    labels = network.execute(x).reshape(FRAMES, -1)
    assert labels.shape == (FRAMES, 1)
    # the network is right on these images, so a wrong label is a wrong link, not a bad model
    assert (labels[:, 0] == np.load(EXAMPLES / "digits_test_y.npy")[:FRAMES]).sum() >= FRAMES - 1
    vectors = {
        "divisor": DIVISOR,
        "timeout_cycles": TIMEOUT,
        "inputs": [pack_frame(row, fmt).hex() for row in x],
        "expected": [_pack(row, fmt.out_beats, fmt.out_lanes, fmt.out_elem,
                           fmt.out_beat_bytes, "output").hex() for row in labels],
        "info": shell.info_payload.hex(),
    }
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps(vectors))
    result = run(shell, Path(__file__).with_name("hostlink_tb.py"), toplevel="hostlink",
                 extra_env={"HWGEN_HOSTLINK_VECTORS": path}, seed=1, timeout=300,
                 testcase=["info", "back_to_back_frames", "corrupted_frame"])
    assert result.passed
    assert set(result.tests) == {"info", "back_to_back_frames", "corrupted_frame"}


@pytest.mark.slow
def test_digits_w1a1_on_icebreaker(digits, tmp_path):
    """The binarized digits MLP, as compiled (default folding), fits the iCE40UP5K and closes
    timing at the iCEBreaker's 12 MHz clock."""
    from boards.build import build, kernel_options
    from graph import load_accelerator
    out, _ = digits
    report = build(load_accelerator(out, kernel_options=kernel_options("icebreaker")),
                   "icebreaker", tmp_path)
    assert (tmp_path / report["bitstream"]).is_file()
    assert report["bitstream"].endswith(".bin")
    used, available = report["utilization"], report["available"]
    assert 0 < used["luts"] <= available["luts"] == 5280
    assert used["bram"] <= available["bram"] == 30 and used["dsp"] <= 8
    assert report["fmax_mhz"] >= 12.0 and report["timing_met"]
    assert report["cycles_per_frame"] == 256
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["fmax_mhz"] == report["fmax_mhz"]
