# amaranth: UnusedElaboratable=no
"""Xilinx primitive helpers and platform-driven selection of the primitive path."""

import re

import pytest
from amaranth_boards.kcu105 import KCU105Platform
from amaranth_boards.icebreaker import ICEBreakerPlatform

from hwgen.arith.popcount import Popcount
from hwgen.export.verilog import component_verilog
from hwgen.vendor.xilinx.primitives import is_ultrascale, lut6_2_init


def test_lut6_2_init_full_adder():
    init = lut6_2_init(lambda b: sum(b) & 1, lambda b: sum(b) >= 2, 3)
    for index in range(8):
        bits = [index >> k & 1 for k in range(3)]
        assert init >> (32 + index) & 1 == sum(bits) & 1       # O6: I5 = 1 selects INIT[63:32]
        assert init >> index & 1 == (sum(bits) >= 2)           # O5: INIT[31:0]
    with pytest.raises(ValueError, match=r"a dual-output LUT6_2 has at most 5 inputs, not 6"):
        lut6_2_init(lambda b: 0, lambda b: 0, 6)


def test_is_ultrascale():
    assert is_ultrascale(KCU105Platform())
    assert not is_ultrascale(ICEBreakerPlatform())
    assert not is_ultrascale(None)


def primitive_counts(text):
    return len(re.findall(r"\bLUT6_2 #", text)), len(re.findall(r"\bCARRY8 #", text))


def test_auto_target_follows_the_platform():
    luts, carries = primitive_counts(component_verilog(Popcount(100), platform=KCU105Platform()))
    plan = Popcount(100).plan("xilinx")
    assert luts == plan.estimate()["luts"] and carries == plan.estimate()["carry"]
    assert primitive_counts(component_verilog(Popcount(100))) == (0, 0)
    # behavioural models when simulating or writing generic Verilog
    assert primitive_counts(component_verilog(Popcount(100, target="xilinx"))) == (0, 0)
    assert primitive_counts(component_verilog(Popcount(100, target="xilinx", primitives="instance")))[0] == luts
