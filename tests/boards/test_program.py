"""boards.program: the programmer command lines (dry run) and the errors."""

import json

import pytest

from boards.program import ProgramError, board_dir, program, programmer_command


def fake_build(out, board, bitstream):
    """A build directory as `hwgen build` leaves it (report + bitstream file)."""
    directory = board_dir(out, board)
    (directory / "build").mkdir(parents=True)
    (directory / "build" / bitstream).write_bytes(b"\x00" * 16)
    (directory / "report.json").write_text(json.dumps({"board": board,
                                                       "bitstream": f"build/{bitstream}"}))
    return directory


@pytest.fixture(autouse=True)
def no_programmer_overrides(monkeypatch):
    for name in ("ICEPROG", "OPENFPGALOADER", "OPENOCD", "XSDB"):
        monkeypatch.delenv(name, raising=False)


def test_dry_run_icebreaker(tmp_path):
    directory = fake_build(tmp_path, "icebreaker", "hwgen_top.bin")
    command = program(tmp_path, "icebreaker", dry_run=True)
    assert command == ["iceprog", str(directory / "build" / "hwgen_top.bin")]


def test_dry_run_on_a_compile_directory(tmp_path):
    """OUT of `hwgen compile` has its own report.json (no board): the build is in
    OUT/board-NAME."""
    (tmp_path / "report.json").write_text(json.dumps({"cycles_per_frame": 256}))
    directory = fake_build(tmp_path, "icebreaker", "hwgen_top.bin")
    command = program(tmp_path, "icebreaker", dry_run=True)
    assert command == ["iceprog", str(directory / "build" / "hwgen_top.bin")]


def test_dry_run_ulx3s(tmp_path):
    directory = fake_build(tmp_path, "ulx3s-85f", "hwgen_top.bit")
    command = program(tmp_path, "ulx3s-85f", dry_run=True)
    assert command == ["openFPGALoader", "-b", "ulx3s", "-m",
                       str(directory / "build" / "hwgen_top.bit")]


def test_dry_run_xilinx(tmp_path):
    path = board_dir(tmp_path, "kcu105") / "build" / "hwgen_top.bit"
    assert program(tmp_path, "kcu105", dry_run=True) == [
        "openocd", "-c", f"source [find board/kcu105.cfg]; init; pld load 0 {path}; exit"]
    path = board_dir(tmp_path, "rfsoc4x2") / "build" / "hwgen_top.bit"
    assert program(tmp_path, "rfsoc4x2", dry_run=True) == [
        "xsdb", "-eval", f"connect; fpga -file {path}"]


def test_environment_override_is_honoured(tmp_path, monkeypatch):
    fake_build(tmp_path, "icebreaker", "hwgen_top.bin")
    monkeypatch.setenv("ICEPROG", "/opt/icestorm/iceprog")
    assert program(tmp_path, "icebreaker", dry_run=True)[0] == "/opt/icestorm/iceprog"


def test_command_of_own_platform(tmp_path):
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    class MyBoard(ICEBreakerPlatform):
        pass

    assert programmer_command(MyBoard, tmp_path) == ["iceprog",
                                                     str(tmp_path / "hwgen_top.bin")]


def test_missing_programmer(tmp_path, monkeypatch):
    fake_build(tmp_path, "icebreaker", "hwgen_top.bin")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ProgramError, match=r"programmer 'iceprog' not found on PATH; install it "
                                           r"with `apt-get install fpga-icestorm`"):
        program(tmp_path, "icebreaker")


def test_missing_board(tmp_path, monkeypatch):
    """A programmer that finds no board (a stand-in script failing as iceprog does)."""
    fake_build(tmp_path, "icebreaker", "hwgen_top.bin")
    tool = tmp_path / "bin" / "iceprog"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho 'init..'\necho "
                    "\"Can't find iCE FTDI USB device (vendor_id 0x0403, device_id 0x6010).\" "
                    ">&2\nexit 2\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tool.parent))
    with pytest.raises(ProgramError, match=r"failed \(exit 2\): .*Can't find iCE FTDI USB "
                                           r"device.*is the icebreaker plugged in"):
        program(tmp_path, "icebreaker")


def test_no_build(tmp_path):
    with pytest.raises(ProgramError, match="no build for icebreaker .* run `hwgen build"):
        program(tmp_path, "icebreaker", dry_run=True)


def test_build_for_another_board(tmp_path):
    directory = fake_build(tmp_path, "icebreaker", "hwgen_top.bin")
    with pytest.raises(ProgramError, match="holds a build for icebreaker, not ulx3s-85f"):
        program(directory, "ulx3s-85f", dry_run=True)
