"""boards.build and boards.targets: Vivado script generation (fast), report parsing and
does-not-fit errors (fast, canned logs), bitstream builds for icebreaker and ulx3s-85f (slow)."""

import json

import pytest
from amaranth.vendor import LatticeICE40Platform

from boards.build import (BuildError, DoesNotFitError, _raise_build_failure, build,
                          parse_nextpnr_report, parse_utilisation_log)
from boards.targets import TARGETS, get_target
from kernels import MacStream, threshold_kernel


def test_targets_registry():
    assert set(TARGETS) >= {"icebreaker", "ulx3s-85f", "kcu105"}
    ice = get_target("icebreaker")
    assert (ice.device, ice.clock_mhz, ice.luts, ice.host_link) == ("iCE40UP5K", 12.0, 5280,
                                                                    "uart")
    assert get_target("ulx3s-85f").family == "ecp5"
    kcu = get_target("kcu105")
    assert (kcu.family, kcu.host_link, kcu.toolchain) == ("xilinx", "axis", "vivado")
    from hwgen.vendor.xilinx.primitives import is_ultrascale
    assert is_ultrascale(kcu.platform_instance())
    assert is_ultrascale(get_target("rfsoc4x2").platform_instance())
    with pytest.raises(ValueError, match="unknown board 'de0'; known boards: icebreaker"):
        get_target("de0")
    with pytest.raises(TypeError, match="board must be a target name"):
        get_target(42)


def test_own_platform_subclass():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    class MyBoard(ICEBreakerPlatform):
        """My iCE40 board."""

    target = get_target(MyBoard)
    assert (target.name, target.family, target.clock_mhz) == ("MyBoard", "ice40", 12.0)
    assert target.host_link == "uart" and target.luts == 5280
    assert isinstance(target.platform_instance(), LatticeICE40Platform)


def test_xilinx_writes_axis_top_and_vivado_scripts(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no vivado
    messages = []
    report = build(MacStream(), "kcu105", tmp_path, log=messages.append)
    for name in ("hwgen_top.v", "hwgen_top.xdc", "build.tcl", "project.tcl", "report.json"):
        assert (tmp_path / name).is_file(), name
    verilog = (tmp_path / "hwgen_top.v").read_text()
    for port in ("ap_clk", "ap_rst_n", "s_axis_tdata", "m_axis_tlast"):
        assert port in verilog
    assert report["dsp48e2_instances"] == 1 and "DSP48E2 " in verilog
    tcl = (tmp_path / "build.tcl").read_text()
    assert "set part xcku040-ffva1156-2-e" in tcl and "synth_design -top hwgen_top" in tcl
    assert "create_clock -period 8.000" in (tmp_path / "hwgen_top.xdc").read_text()
    assert "ipx::package_project" in (tmp_path / "project.tcl").read_text()
    assert not report["vivado_ran"]
    assert "vivado -mode batch -source build.tcl" in messages[0]
    assert json.loads((tmp_path / "report.json").read_text())["board"] == "kcu105"


def test_xilinx_generic_kernel_has_no_dsp_instance(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    kernel, _ = threshold_kernel()
    report = build(kernel, "rfsoc4x2", tmp_path, clock_mhz=250)
    assert report["part"] == "xczu48dr-ffvg1517-2-e" and report["dsp48e2_instances"] == 0
    assert "create_clock -period 4.000" in (tmp_path / "hwgen_top.xdc").read_text()


def test_open_board_argument_errors(tmp_path):
    kernel, _ = threshold_kernel()
    with pytest.raises(ValueError, match="runs from its 12 MHz oscillator"):
        build(kernel, "icebreaker", tmp_path, clock_mhz=48)
    with pytest.raises(ValueError, match=r"above what ulx3s-85f's USB bridge \(FT231X\) "
                                         r"supports: at most 3,000,000"):
        build(kernel, "ulx3s-85f", tmp_path, baud=4_000_000)
    with pytest.raises(ValueError, match="too fast for a 12 MHz clock"):
        build(kernel, "icebreaker", tmp_path, baud=6_000_000)


NEXTPNR_REPORT = {
    "fmax": {"cd_sync.clk": {"achieved": 41.19, "constraint": 12.0}},
    "utilization": {"ICESTORM_LC": {"available": 5280, "used": 687},
                    "ICESTORM_RAM": {"available": 30, "used": 1},
                    "ICESTORM_DSP": {"available": 8, "used": 0},
                    "SB_GB": {"available": 8, "used": 1}},
}

OVERFULL_LOG = """\
Info: Packing constants..
Info: Device utilisation:
Info: \t         ICESTORM_LC:    7200/   5280   136%
Info: \t        ICESTORM_RAM:       2/     30     6%
Info: \t              SB_IO:       3/     39     7%
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
"""


def test_parse_nextpnr_report():
    used, available, fmax = parse_nextpnr_report(NEXTPNR_REPORT, "ice40")
    assert used == {"luts": 687, "bram": 1, "dsp": 0}
    assert available["luts"] == 5280 and fmax == 41.19


def test_does_not_fit_message(tmp_path):
    assert parse_utilisation_log(OVERFULL_LOG, "ice40")["luts"] == (7200, 5280)
    (tmp_path / "hwgen_top.tim").write_text(OVERFULL_LOG)
    with pytest.raises(DoesNotFitError, match=r"needs 7,200 LCs; iCE40UP5K has 5,280\. Fold "
                                              r"the network further \(smaller PE/SIMD"):
        _raise_build_failure(get_target("icebreaker"), tmp_path)
    (tmp_path / "hwgen_top.tim").write_text("Info: x\nERROR: something else broke\n")
    with pytest.raises(BuildError, match="ERROR: something else broke"):
        _raise_build_failure(get_target("icebreaker"), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("board, suffix", [("icebreaker", "bin"), ("ulx3s-85f", "bit")])
def test_bitstream_build(tmp_path, board, suffix):
    kernel, _ = threshold_kernel()
    report = build(kernel, board, tmp_path)
    bitstream = tmp_path / report["bitstream"]
    assert bitstream.suffix == f".{suffix}" and bitstream.stat().st_size > 1000
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == report
    used = report["utilization"]
    assert 100 < used["luts"] < 3000 and used["ffs"] > 50
    assert report["fmax_mhz"] > report["clock_mhz"] and report["timing_met"]
    assert report["host_link"]["in_len"] == 12 and report["host_link"]["out_len"] == 6


def test_kernel_options_per_family():
    """ECP5: compressor trees registered after every stage and registered memory reads;
    iCE40 and Xilinx: the compiled choices."""
    from boards.build import kernel_options
    assert kernel_options("icebreaker") is None and kernel_options("kcu105") is None
    assert kernel_options("ulx3s-85f") == {"mvau": {"pipeline_every": 1, "register_reads": True}}
