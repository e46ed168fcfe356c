# amaranth: UnusedElaboratable=no
import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.export.axis import AXIStreamShell, padded_width
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
