"""hwgen boards / build / program / run, with graph.load_accelerator monkeypatched to return a
small kernel and the serial port replaced by the device model."""

import json

import numpy as np
import pytest

import graph
from boards.host import DeviceModel, ModelPort, _pack, unpack_frame
from boards.hostlink import FrameFormat
from hwgen.cli import main
from kernels import threshold_kernel
from sim import golden


@pytest.fixture
def accelerator(monkeypatch):
    """graph.load_accelerator(out, kernel_options) -> the threshold stand-in; returns its
    thresholds."""
    loaded = []

    def load_accelerator(out_dir, kernel_options=None):
        loaded.append(out_dir)
        kernel, _ = threshold_kernel()
        return kernel

    monkeypatch.setattr(graph, "load_accelerator", load_accelerator, raising=False)
    kernel, thresholds = threshold_kernel()
    return FrameFormat.from_component(kernel), thresholds, loaded


def test_boards_lists_targets(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    assert "icebreaker" in out and "iCE40UP5K" in out and "5,280 LCs" in out
    assert "ulx3s-85f" in out and "kcu105" in out and "Vivado" in out
    assert main(["boards", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["board"] for row in rows} >= {"icebreaker", "ulx3s-85f", "kcu105"}


def test_help_explains_every_option(capsys):
    for command in ("build", "program", "run"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        for option in {"build": ["--board", "--clock-mhz", "--baud"],
                       "program": ["--board", "--dry-run"],
                       "run": ["--port", "--inputs", "--expected", "--baud"]}[command]:
            assert option in text


def test_build_xilinx_without_vivado(tmp_path, accelerator, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["build", str(tmp_path), "--board", "kcu105"]) == 0
    out = capsys.readouterr().out
    assert "Vivado is not on PATH" in out and "vivado -mode batch -source build.tcl" in out
    assert (tmp_path / "board-kcu105" / "hwgen_top.v").is_file()
    assert accelerator[2] == [str(tmp_path)]


def test_build_errors_are_one_line(tmp_path, accelerator, capsys):
    assert main(["build", str(tmp_path), "--board", "icebreaker", "--clock-mhz", "48"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error: clock_mhz=48: icebreaker runs from its 12 MHz")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["build", str(tmp_path), "--board", "nope"]) == 2
    assert "unknown board 'nope'" in capsys.readouterr().err


def test_build_without_graph_loader(tmp_path, capsys, monkeypatch):
    def missing(out_dir, kernel_options=None):
        raise FileNotFoundError(f"{out_dir} has no compiled accelerator")
    monkeypatch.setattr(graph, "load_accelerator", missing, raising=False)
    assert main(["build", str(tmp_path), "--board", "icebreaker"]) == 2
    assert "has no compiled accelerator" in capsys.readouterr().err


def test_program_dry_run(tmp_path, capsys):
    directory = tmp_path / "board-ulx3s-85f"
    (directory / "build").mkdir(parents=True)
    (directory / "report.json").write_text(json.dumps({"board": "ulx3s-85f",
                                                       "bitstream": "build/hwgen_top.bit"}))
    assert main(["program", str(tmp_path), "--board", "ulx3s-85f", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"openFPGALoader -b ulx3s -m {directory / 'build' / 'hwgen_top.bit'}")


def test_program_missing_programmer(tmp_path, capsys, monkeypatch):
    directory = tmp_path / "board-icebreaker"
    (directory / "build").mkdir(parents=True)
    (directory / "build" / "hwgen_top.bin").write_bytes(b"\0")
    (directory / "report.json").write_text(json.dumps({"board": "icebreaker",
                                                       "bitstream": "build/hwgen_top.bin"}))
    monkeypatch.delenv("ICEPROG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["program", str(tmp_path), "--board", "icebreaker"]) == 2
    err = capsys.readouterr().err
    assert "programmer 'iceprog' not found on PATH" in err and len(err.splitlines()) == 1


def _fake_serial(monkeypatch, fmt, thresholds, corrupt_reply=None):
    import serial

    def compute(payload):
        in_fmt = FrameFormat(in_width=1, in_beats=1, out_width=fmt.in_width,
                             out_beats=fmt.in_beats, out_elem=fmt.in_elem,
                             out_lanes=fmt.in_lanes)
        values = unpack_frame(payload, in_fmt).reshape(-1, 6)
        out = golden.threshold(values, thresholds)
        return _pack(out, fmt.out_beats, fmt.out_lanes, fmt.out_elem, fmt.out_beat_bytes, "out")

    opened = []

    def open_port(name, baud, timeout):
        opened.append((name, baud))
        return ModelPort(DeviceModel(fmt, compute), on_reply=corrupt_reply)

    monkeypatch.setattr(serial, "Serial", open_port)
    return opened


def test_run_streams_and_checks(tmp_path, accelerator, capsys, monkeypatch):
    fmt, thresholds, _ = accelerator
    opened = _fake_serial(monkeypatch, fmt, thresholds)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(20, 2, 6))
    y = golden.threshold(x, thresholds)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    argv = ["run", str(tmp_path), "--board", "icebreaker", "--port", "/dev/ttyFAKE",
            "--inputs", str(tmp_path / "x.npy"), "--expected", str(tmp_path / "y.npy"),
            "--output", str(tmp_path / "z.npy")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "20 frames in" in out and "frames/s at 1,000,000 baud" in out
    assert "all 20 outputs match --expected" in out
    assert opened == [("/dev/ttyFAKE", 1_000_000)]
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), y.reshape(20, -1))
    # a wrong expectation fails with a one-line message
    y[5, 0, 0] ^= 1
    np.save(tmp_path / "y.npy", y)
    assert main(argv) == 2
    assert "1 of 20 frames differ from --expected (first: frame 5" in capsys.readouterr().err


def test_run_reports_recovered_errors(tmp_path, accelerator, capsys, monkeypatch):
    fmt, thresholds, _ = accelerator
    replies = []

    def corrupt_third(data):
        replies.append(data)
        if len(replies) == 3:
            data = bytearray(data)
            data[-1] ^= 1
        return bytes(data)

    _fake_serial(monkeypatch, fmt, thresholds, corrupt_third)
    x = np.zeros((4, 12), dtype=np.int64)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path), "--board", "icebreaker", "--port", "p", "--baud",
                 "115200", "--inputs", str(tmp_path / "x.npy")]) == 0
    assert "link errors recovered: 1 (bad_crc 1)" in capsys.readouterr().out


def test_run_bad_inputs(tmp_path, accelerator, capsys, monkeypatch):
    fmt, thresholds, _ = accelerator
    _fake_serial(monkeypatch, fmt, thresholds)
    np.save(tmp_path / "x.npy", np.zeros((3, 5), dtype=np.int64))
    assert main(["run", str(tmp_path), "--board", "icebreaker", "--port", "p",
                 "--inputs", str(tmp_path / "x.npy")]) == 2
    assert "an input frame has 12 elements" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--board", "kcu105", "--port", "p",
                 "--inputs", str(tmp_path / "x.npy")]) == 2
    assert "kcu105 has no UART host link" in capsys.readouterr().err
