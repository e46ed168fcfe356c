"""Resources arithmetic and the memory cost model of each FPGA family."""

import pytest

from hwgen.resources import (ECP5, ICE40, ULTRASCALE_PLUS, Resources, lutram_read_mux_luts,
                             lutram_sdp_luts, memory_cost)


def test_addition_and_sums():
    a = Resources(luts=10, ffs=4, carry=1)
    b = Resources(luts=2, lutram=8, bram18=1, uram=1, dsp=3)
    assert a + b == Resources(luts=12, ffs=4, carry=1, lutram=8, bram18=1, uram=1, dsp=3)
    assert sum([a, b]) == a + b and sum([], Resources()) == Resources()
    assert 3 * a == a * 3 == Resources(luts=30, ffs=12, carry=3)
    assert a["luts"] == 10 and a.to_dict() == {"luts": 10, "ffs": 4, "carry": 1, "lutram": 0,
                                                "bram18": 0, "uram": 0, "dsp": 0}
    assert a.replace(ffs=0) == Resources(luts=10, carry=1)
    with pytest.raises(KeyError, match=r"'dsp48e2' is not a resource; resources: luts, ffs"):
        a["dsp48e2"]
    with pytest.raises(TypeError):
        a + {"luts": 1}


def test_lut_equivalent():
    r = Resources(luts=100, ffs=40, lutram=8, bram18=2, dsp=1, carry=9)
    assert r.lut_equivalent() == 100 + 8 + 20 + 128 + 100
    assert r.lut_equivalent(ffs=0) == 100 + 8 + 128 + 100


def test_block_ram_count():
    count = ULTRASCALE_PLUS.block_count
    assert count(511, 36) == 1 and count(512, 37) == 2
    assert count(1000, 8) == 1          # 2K x 9
    assert count(2047, 256) == 29       # 29 x (2K x 9), as Yosys maps it
    assert count(16384, 1) == 1 and count(16385, 1) == 2
    assert count(4096, 4) == 1          # one RAMB18 in 4K x 4 (the thresholds once said 4)
    assert count(0, 8) == count(8, 0) == 0


def test_other_families():
    assert ECP5.block_count(4096, 4) == 1 and ECP5.block_count(1024, 36) == 2
    assert ICE40.block_count(256, 16) == 1 and ICE40.block_count(512, 16) == 2
    assert ICE40.block_count(2048, 3) == 2          # 2 x (2K x 2)
    assert memory_cost(4096, 4, "bram", family=ICE40) == Resources(bram18=4)   # 16 Kbit in 4 Kbit


def test_lutram():
    assert lutram_sdp_luts(32, 14) == 8 and lutram_sdp_luts(64, 14) == 16
    assert lutram_sdp_luts(99, 16) == 48
    assert lutram_read_mux_luts(64, 8) == 0 and lutram_read_mux_luts(256, 8) == 8


@pytest.mark.parametrize("depth, width, style, ports, expected", [
    (64, 10, "lutram", "rom", Resources(luts=10)),          # a table in logic
    (65, 10, "registers", "rom", Resources(luts=20)),
    (2, 10, "lutram", "rom", Resources()),                  # folded into the reader
    (64, 10, "lutram", "single", Resources(lutram=10)),
    (64, 10, "lutram", "config", Resources(lutram=20)),
    (9, 4, "registers", "config", Resources(ffs=36, luts=8)),
    (9, 4, "registers", "sdp", Resources(ffs=36, luts=12)),
    (99, 16, "lutram", "sdp", Resources(lutram=48, luts=16)),
    (1024, 1024, "bram", "rom", Resources(bram18=57)),
    (4096, 72, "uram", "rom", Resources(uram=1)),
    (4097, 73, "uram", "rom", Resources(uram=4)),
])
def test_memory_cost(depth, width, style, ports, expected):
    assert memory_cost(depth, width, style, ports=ports) == expected
