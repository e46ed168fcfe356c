# amaranth: UnusedElaboratable=no
import re

import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.export.axis import AXIStreamShell, axis_prefix, padded_width
from hwgen.export.verilog import component_verilog
from hwgen.streams import lanes_signature


@pytest.mark.parametrize("width, padded", [(1, 8), (8, 8), (9, 16), (84, 88)])
def test_padded_width(width, padded):
    assert padded_width(width) == padded


class NoStreams(wiring.Component):
    a: In(4)

    def elaborate(self, platform):
        return Module()


def test_shell_errors():
    with pytest.raises(TypeError, match=r"kernel must be an amaranth wiring.Component, not 3"):
        AXIStreamShell(3)
    with pytest.raises(ValueError, match=r"component NoStreams has no stream port 'i'; its ports are \['a'\]"):
        AXIStreamShell(NoStreams())


class Pass(wiring.Component):  # noqa: D101 (test kernel)
    def __init__(self):
        super().__init__({"i": In(lanes_signature(unsigned(3), 3)), "o": Out(lanes_signature(unsigned(3), 3))})

    def elaborate(self, platform):
        m = Module()
        wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
        return m


def test_shell_widths_and_frame_length():
    shell = AXIStreamShell(Pass(), out_beats_per_frame=4)
    assert (shell.in_width, shell.out_width, shell.out_beats_per_frame) == (9, 9, 4)
    assert shell.s_axis_tdata.shape() == unsigned(16)
    with pytest.raises(ValueError, match=r"out_beats_per_frame must be an integer >= 1, not 0"):
        AXIStreamShell(Pass(), out_beats_per_frame=0)


# --- several streams: one AXI4-Stream interface per port -------------------------------------

class ForkJoin(wiring.Component):  # noqa: D101 (test kernel: i0 + i1 out on o0 and o1)
    def __init__(self, beats=(3, 5)):
        self.beats = dict(zip(("o0", "o1"), beats))
        super().__init__({"i0": In(lanes_signature(unsigned(3), 2)),
                          "i1": In(lanes_signature(unsigned(3), 2)),
                          "o0": Out(lanes_signature(unsigned(4), 2)),
                          "o1": Out(lanes_signature(unsigned(4), 3)),
                          "level": Out(2)})

    def beats_per_frame(self, port):
        return self.beats[port]

    def elaborate(self, platform):
        return Module()


def _ports(component):
    header = re.search(r"module top\((.*?)\);", component_verilog(component), re.S).group(1)
    return {port.strip() for port in header.split(",")}


def test_one_stream_kernel_keeps_its_ports():
    assert _ports(AXIStreamShell(Pass())) == {
        "ap_clk", "ap_rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
        "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"}


def test_several_streams_get_one_interface_each():
    shell = AXIStreamShell(ForkJoin())
    assert (shell.inputs, shell.outputs) == (["i0", "i1"], ["o0", "o1"])
    assert shell.widths == {"i0": 6, "i1": 6, "o0": 8, "o1": 12}
    assert (shell.in_width, shell.out_width) == (None, None)
    assert shell.frame_lengths == {"o0": 3, "o1": 5} and shell.out_beats_per_frame is None
    assert shell.m_axis_1_tdata.shape() == unsigned(16)
    assert _ports(shell) == {"ap_clk", "ap_rst_n", "level"} | {
        f"s_axis_{k}_{signal}" for k in (0, 1) for signal in ("tdata", "tvalid", "tready")} | {
        f"m_axis_{k}_{signal}" for k in (0, 1)
        for signal in ("tdata", "tvalid", "tready", "tlast")}


def test_several_streams_frame_lengths():
    assert AXIStreamShell(ForkJoin(), out_beats_per_frame=4).frame_lengths == {"o0": 4, "o1": 4}
    shell = AXIStreamShell(ForkJoin(), out_beats_per_frame={"o0": 2, "o1": 2})
    assert shell.out_beats_per_frame == 2
    with pytest.raises(ValueError, match=r"out_beats_per_frame must name the output ports \['o0', 'o1'\], not \['o0'\]"):
        AXIStreamShell(ForkJoin(), out_beats_per_frame={"o0": 2})
    with pytest.raises(ValueError, match=r"out_beats_per_frame\['o1'\] must be an integer >= 1, not 0"):
        AXIStreamShell(ForkJoin(), out_beats_per_frame={"o0": 2, "o1": 0})
    with pytest.raises(ValueError, match=r"beats_per_frame\('o0'\) must be an integer >= 1, not 0"):
        AXIStreamShell(ForkJoin(beats=(0, 1)))


class OutputsOnly(wiring.Component):  # noqa: D101
    o0: Out(lanes_signature(unsigned(3), 1))

    def elaborate(self, platform):
        return Module()


@pytest.mark.parametrize("port, prefix", [("i", "s_axis"), ("i0", "s_axis_0"), ("i12", "s_axis_12"),
                                          ("o", "m_axis"), ("o3", "m_axis_3")])
def test_axis_prefix(port, prefix):
    assert axis_prefix(port) == prefix


def test_stream_port_errors():
    with pytest.raises(ValueError, match=r"port must be a stream port name such as 'i', 'i0', 'o' or 'o1', not 'cfg'"):
        axis_prefix("cfg")
    with pytest.raises(ValueError, match=r"component OutputsOnly has no stream port 'i'; its ports are \['o0'\]"):
        AXIStreamShell(OutputsOnly())
