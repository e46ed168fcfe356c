# amaranth: UnusedElaboratable=no
"""DSP48E2: behavioural model against sim.golden.dsp48e2_mac (Amaranth simulator and cocotb on
Verilator), the Instance path, latency and attribute errors."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from amaranth_boards.kcu105 import KCU105Platform

from hwgen.vendor.xilinx.dsp48e2 import CLOCK_ENABLES, DSP48E2, RESETS
from hwgen.export.verilog import component_verilog
from sim.golden import dsp48e2_mac


def opmode(*, w=0, z=0, y=0, x=0):
    """OPMODE from its W/Z/Y/X fields. X: 0, 1 M, 2 P, 3 A:B. Y: 0, 1 M, 2 ones, 3 C.
    Z: 0, 1 PCIN, 2 P, 3 C, 4 P, 5 PCIN>>17, 6 P>>17. W: 0, 1 P, 2 RND, 3 C."""
    return w << 7 | z << 4 | y << 2 | x


MUL = dict(x=1, y=1)
WITHOUT_P = [opmode(**MUL), opmode(z=3, **MUL), opmode(z=1, **MUL), opmode(w=3, **MUL),
             opmode(w=2, z=3, **MUL), opmode(z=5, **MUL), opmode(x=3, z=3), opmode(x=3, y=3),
             opmode(y=2, z=3), opmode(w=3, z=1)]
WITH_P = [opmode(z=2, **MUL), opmode(z=6, **MUL), opmode(w=1, z=3, **MUL), opmode(x=2, z=3),
          opmode(z=4, **MUL), opmode(w=1, x=3, z=1)]
ADDER = [opmode(x=3, z=3), opmode(x=3, y=3), opmode(x=3, z=2), opmode(x=3, z=1), opmode(x=2, z=3),
         opmode(y=2, z=3), opmode(w=3, x=3, z=1), opmode(w=1, y=3, z=2), opmode(x=3, z=6)]
LOGIC = [opmode(x=x, y=y, z=z) for x in (0, 2, 3) for y in (0, 2) for z in (0, 1, 2, 3)]
LOGIC_ALUMODES = (0b0100, 0b0101, 0b0110, 0b0111, 0b1100, 0b1101, 0b1110, 0b1111)

COMB = dict(AREG=0, BREG=0, CREG=0, DREG=0, ADREG=0, MREG=0, PREG=0, OPMODEREG=0, INMODEREG=0,
            ALUMODEREG=0, CARRYINREG=0, CARRYINSELREG=0)

# name -> (attributes, stimulus options)
CONFIGS = {
    "combinational": (COMB, dict(opmodes=WITHOUT_P, inmodes=(0, 0b00001, 0b00010, 0b10000),
                                 alumodes=(0, 1, 2, 3), carryinsels=(0, 1, 2, 3, 6))),
    "combinational_preadder": ({**COMB, "AMULTSEL": "AD"},
                               dict(opmodes=WITHOUT_P, inmodes=range(32), alumodes=(0, 3),
                                    carryinsels=(0, 6))),
    "pipelined_preadder": (dict(AREG=2, BREG=2, AMULTSEL="AD", RND=0x8000_0000_1234),
                           dict(opmodes=WITHOUT_P + WITH_P, inmodes=range(32),
                                alumodes=(0, 1, 2, 3), carryinsels=(0, 1, 3, 5, 6, 7))),
    "mreg_preg_only": ({**COMB, "MREG": 1, "PREG": 1},
                       dict(opmodes=WITHOUT_P + WITH_P, alumodes=(0, 3),
                            carryinsels=(0, 5, 6, 7))),
    "preadder_on_b": (dict(AREG=1, BREG=1, CREG=0, DREG=0, ADREG=1, MREG=0, PREG=1, INMODEREG=0,
                           BMULTSEL="AD", PREADDINSEL="B"),
                      dict(opmodes=WITHOUT_P + WITH_P, inmodes=range(32), carryinsels=(0, 6))),
    "square_of_preadder": (dict(AMULTSEL="AD", BMULTSEL="AD", DREG=0, CARRYINSELREG=0),
                           dict(opmodes=WITHOUT_P + WITH_P, inmodes=range(32))),
    "accumulate": ({}, dict(opmodes=[opmode(z=2, **MUL)] * 12 + [opmode(**MUL)])),
    "subtract": (dict(ALUMODEREG=0), dict(opmodes=[opmode(z=3, **MUL), opmode(z=2, **MUL)],
                                          alumodes=(3,))),
    "adder": (dict(USE_MULT="NONE", MREG=0, CREG=0),
              dict(opmodes=ADDER, alumodes=(0, 1, 2, 3), carryinsels=range(8))),
    "logic": (dict(USE_MULT="NONE", MREG=0, OPMODEREG=0), dict(opmodes=LOGIC,
                                                               alumodes=LOGIC_ALUMODES)),
}

WIDTHS = {"A": 30, "B": 18, "C": 48, "D": 27, "PCIN": 48, "OPMODE": 9, "INMODE": 5,
          "ALUMODE": 4, "CARRYIN": 1, "CARRYINSEL": 3,
          **{name: 1 for name in CLOCK_ENABLES + RESETS}}
# Port values where a cycle leaves them out (the ports' init values, as the golden model assumes).
DEFAULTS = {**{name: 0 for name in WIDTHS}, **{name: 1 for name in CLOCK_ENABLES},
            "OPMODE": 0b000000101}
# Extreme values: the multiplier's ranges (A[26:0], D 27-bit, B 18-bit) and the full ports.
EXTREMES = {"A": (-2**26, 2**26 - 1, -2**29, 2**29 - 1), "B": (-2**17, 2**17 - 1),
            "D": (-2**26, 2**26 - 1), "C": (-2**47, 2**47 - 1, -1),
            "PCIN": (-2**47, 2**47 - 1, -1)}


def random_cycles(rng, n, *, opmodes, inmodes=(0,), alumodes=(0,), carryinsels=(0,),
                  ce_prob=0.9, rst_prob=0.03, extreme_prob=0.25):
    """``n`` cycles of random inputs: data with extremes, controls from the given choices,
    clock enables low with probability ``1 - ce_prob`` and resets high with ``rst_prob``."""
    cycles = []
    for _ in range(n):
        cycle = {}
        for name, extremes in EXTREMES.items():
            bits = WIDTHS[name]
            if rng.random() < extreme_prob:
                cycle[name] = int(rng.choice(extremes))
            else:
                cycle[name] = int(rng.integers(-2**(bits - 1), 2**(bits - 1)))
        cycle["OPMODE"] = int(rng.choice(list(opmodes)))
        cycle["INMODE"] = int(rng.choice(list(inmodes)))
        cycle["ALUMODE"] = int(rng.choice(list(alumodes)))
        cycle["CARRYINSEL"] = int(rng.choice(list(carryinsels)))
        cycle["CARRYIN"] = int(rng.integers(2))
        cycle.update({ce: int(rng.random() < ce_prob) for ce in CLOCK_ENABLES})
        cycle.update({rst: int(rng.random() < rst_prob) for rst in RESETS})
        cycles.append(cycle)
    return cycles


class Harness(Elaboratable):
    """DSP slices side by side; with ``cascade``, each one's PCIN is the previous PCOUT. A
    free-running register keeps the ``sync`` domain present for all-combinational slices."""

    def __init__(self, dsps, *, cascade=False):
        self.dsps = dsps
        self.cascade = cascade

    def elaborate(self, platform):
        m = Module()
        for k, dsp in enumerate(self.dsps):
            m.submodules[f"dsp{k}"] = dsp
            if self.cascade and k:
                m.d.comb += dsp.PCIN.eq(self.dsps[k - 1].PCOUT)
        toggle = Signal()
        m.d.sync += toggle.eq(~toggle)
        return m


def simulate(dsps, stimuli, *, cascade=False):
    """Apply ``stimuli[k][t]`` to ``dsps[k]`` in cycle ``t``; return each slice's P per cycle
    (read before the clock edge) and check PCOUT == P."""
    sim = Simulator(Harness(dsps, cascade=cascade))
    sim.add_clock(1e-8)
    outputs = [[] for _ in dsps]

    async def testbench(ctx):
        previous = [{} for _ in dsps]
        for t in range(len(stimuli[0])):
            for k, (dsp, stimulus) in enumerate(zip(dsps, stimuli)):
                cycle = {**DEFAULTS, **stimulus[t]}
                for name, value in cycle.items():
                    if cascade and k and name == "PCIN":
                        continue
                    if previous[k].get(name) != value:
                        ctx.set(getattr(dsp, name), value)
                previous[k] = cycle
            for k, dsp in enumerate(dsps):
                p = ctx.get(dsp.P)
                assert ctx.get(dsp.PCOUT) == p
                outputs[k].append(p)
            await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    return [np.array(out, dtype=np.int64) for out in outputs]


def assert_same(seen, expected, cycles):
    bad = np.flatnonzero(seen != expected)
    assert not bad.size, (f"{bad.size} mismatches; first at cycle {bad[0]}: P={seen[bad[0]]}, "
                          f"expected {expected[bad[0]]}, inputs {cycles[bad[0]]}")


# --- Amaranth simulator vs. golden model --------------------------------------------------

@pytest.mark.parametrize("name", CONFIGS)
def test_behavioural_matches_golden(name):
    attributes, options = CONFIGS[name]
    rng = np.random.default_rng(sorted(CONFIGS).index(name))
    cycles = random_cycles(rng, 250, **options)
    expected = dsp48e2_mac(cycles, **attributes)
    (seen,) = simulate([DSP48E2(**attributes)], [cycles])
    assert_same(seen, expected, cycles)
    assert np.any(expected != 0)


@pytest.mark.parametrize("attributes", [{}, COMB], ids=["pipelined", "combinational"])
def test_cascade_through_pcin(attributes):
    rng = np.random.default_rng(7)
    first = random_cycles(rng, 200, opmodes=[opmode(z=3, **MUL), opmode(**MUL)])
    second = random_cycles(rng, 200, opmodes=[opmode(z=1, **MUL), opmode(z=5, **MUL)],
                           carryinsels=(0, 1, 3))
    pcout = dsp48e2_mac(first, **attributes)
    for cycle, value in zip(second, pcout):
        cycle["PCIN"] = int(value)
    expected = dsp48e2_mac(second, **attributes)
    seen_first, seen_second = simulate([DSP48E2(**attributes), DSP48E2(**attributes)],
                                       [first, second], cascade=True)
    assert_same(seen_first, pcout, first)
    assert_same(seen_second, expected, second)


def test_accumulator_sums_products():
    """Z = P accumulates A*B every cycle (all enables high, no resets): P is the running sum,
    with the extreme operands."""
    dsp = DSP48E2(AREG=1, BREG=1, MREG=1, PREG=1)
    operands = [(-2**26, -2**17), (2**26 - 1, 2**17 - 1), (-2**26, 2**17 - 1), (5, -3)] * 8
    cycles = [{"A": a, "B": b, "OPMODE": opmode(z=2, **MUL)} for a, b in operands]
    cycles += [{"OPMODE": opmode(z=2, **MUL)}] * dsp.latency
    (seen,) = simulate([dsp], [cycles])
    products = [a * b for a, b in operands]
    # P in cycle t holds the sum of the products of the inputs before cycle t - latency + 1
    for t in range(len(cycles)):
        assert seen[t] == sum(products[:max(0, t - dsp.latency + 1)])
    assert seen[-1] == sum(products)


LATENCY_CONFIGS = [
    (COMB, 0), ({}, 3), (dict(AREG=2, BREG=2), 4), (dict(AMULTSEL="AD"), 4),
    (dict(AMULTSEL="AD", AREG=2, BREG=2, ADREG=1), 5), (dict(AMULTSEL="AD", DREG=0, ADREG=0), 3),
    ({**COMB, "MREG": 1, "PREG": 1}, 2), (dict(BMULTSEL="AD", PREADDINSEL="B"), 4),
    (dict(BMULTSEL="AD", PREADDINSEL="B", BREG=0, AREG=1, DREG=0), 3),
]


@pytest.mark.parametrize("attributes,latency", LATENCY_CONFIGS)
def test_latency_property_matches_simulation(attributes, latency):
    dsp = DSP48E2(**attributes)
    assert dsp.latency == latency
    # A step on every operand at cycle `start`: the product reaches P when the latest
    # operand does.
    start = 4
    cycles = [{"A": 3, "B": -5} if t >= start else {} for t in range(start + latency + 4)]
    (seen,) = simulate([dsp], [cycles])
    assert list(seen) == [0] * (start + latency) + [-15] * 4
    assert list(seen) == list(dsp48e2_mac(cycles, **attributes))


def test_input_latency():
    dsp = DSP48E2(AREG=2, BREG=1, CREG=1, DREG=1, ADREG=1, MREG=1, PREG=1, AMULTSEL="AD")
    assert dsp.input_latency == {"A": 5, "B": 3, "D": 4, "AB": 3, "C": 2, "PCIN": 1}
    assert dsp.latency == 5
    plain = DSP48E2(DREG=1, ADREG=1)  # no pre-adder: D/AD registers do not apply
    assert plain.input_latency["D"] is None and plain.latency == 3
    adder = DSP48E2(USE_MULT="NONE", MREG=0, AREG=2, BREG=1)
    assert adder.input_latency["A"] is None and adder.latency == 3


# --- cocotb on Verilator (one build) --------------------------------------------------------

def test_cocotb_verilator_matches_golden(tmp_path):
    from sim.runner import run

    attributes, options = CONFIGS["pipelined_preadder"]
    rng = np.random.default_rng(11)
    cycles = random_cycles(rng, 400, **options)
    expected = dsp48e2_mac(cycles, **attributes)
    vectors = tmp_path / "vectors.json"
    vectors.write_text(json.dumps({"widths": WIDTHS, "cycles": cycles,
                                   "expected": [int(v) for v in expected]}))
    result = run(DSP48E2(**attributes), Path(__file__).with_name("dsp48e2_tb.py"),
                 extra_env={"HWGEN_DSP48E2_VECTORS": str(vectors)}, test_dir=tmp_path / "run",
                 timeout=300)
    assert result.passed and len(result.tests) == 1


# --- Instance path ---------------------------------------------------------------------------

def instance_count(text):
    return len(re.findall(r"\bDSP48E2 #\(", text))


def test_instance_path_connects_full_widths():
    text = component_verilog(DSP48E2(primitives="instance", AMULTSEL="AD", AREG=2, RND=5))
    assert instance_count(text) == 1
    for parameter in ('.AMULTSEL("AD")', ".AREG(32'd2)", ".ACASCREG(32'd2)",
                      ".RND(48'h000000000005)", '.USE_SIMD("ONE48")', '.A_INPUT("DIRECT")'):
        assert parameter in text
    for tie in (".ACIN(30'h00000000)", ".BCIN(18'h00000)", ".CARRYCASCIN(1'h0)",
                ".MULTSIGNIN(1'h0)"):
        assert tie in text
    for port, width in (("A", 30), ("B", 18), ("C", 48), ("D", 27), ("PCIN", 48), ("P", 48),
                        ("PCOUT", 48), ("OPMODE", 9), ("INMODE", 5), ("ALUMODE", 4),
                        ("CARRYINSEL", 3)):
        assert re.search(rf"(input|output) (signed )?\[{width - 1}:0\] {port};", text), port
        assert f".{port}({port})" in text
    for port in CLOCK_ENABLES + RESETS + ("CARRYIN",):
        assert f".{port}({port})" in text


def test_primitive_choice_follows_platform():
    assert instance_count(component_verilog(DSP48E2(), platform=KCU105Platform())) == 1
    assert instance_count(component_verilog(DSP48E2())) == 0
    assert instance_count(component_verilog(DSP48E2(primitives="behavioural"),
                                            platform=KCU105Platform())) == 0


def test_paths_are_interchangeable():
    behavioural = DSP48E2(primitives="behavioural", AMULTSEL="AD")
    instance = DSP48E2(primitives="instance", AMULTSEL="AD")
    assert behavioural.signature == instance.signature
    assert behavioural.latency == instance.latency == 4


class Cascade(wiring.Component):
    """``stages`` slices, each adding A*B to the previous one's PCOUT."""

    def __init__(self, stages):
        self.stages = stages
        super().__init__({"a": In(signed(27)), "b": In(signed(18)), "p": Out(signed(48))})

    def elaborate(self, platform):
        m = Module()
        previous = None
        for k in range(self.stages):
            dsp = m.submodules[f"dsp{k}"] = DSP48E2(primitives="instance")
            m.d.comb += [dsp.A.eq(self.a + k), dsp.B.eq(self.b - k)]
            if previous is not None:
                m.d.comb += [dsp.PCIN.eq(previous.PCOUT), dsp.OPMODE.eq(opmode(z=1, **MUL))]
            previous = dsp
        m.d.comb += self.p.eq(previous.P)
        return m


@pytest.mark.slow
@pytest.mark.parametrize("stages", [1, 2])
def test_instance_synthesizes_to_dsp48e2(stages):
    from boards.synth import synthesize

    report = synthesize(component_verilog(Cascade(stages), name="top"), top="top", family="xcup")
    assert report["dsp48e2"] == stages
    assert report["dsp"] == stages


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(AREG=3), r"AREG must be one of 0, 1, 2, not 3"),
    (dict(BREG=-1), r"BREG must be one of 0, 1, 2, not -1"),
    (dict(PREG=2), r"PREG must be one of 0, 1, not 2"),
    (dict(MREG=True), r"MREG must be one of 0, 1, not True"),
    (dict(OPMODEREG="1"), r"OPMODEREG must be one of 0, 1, not '1'"),
    (dict(AMULTSEL="B"), r"AMULTSEL must be one of 'A', 'AD', not 'B'"),
    (dict(BMULTSEL="A"), r"BMULTSEL must be one of 'B', 'AD', not 'A'"),
    (dict(PREADDINSEL="D"), r"PREADDINSEL must be one of 'A', 'B', not 'D'"),
    (dict(USE_MULT="DYNAMIC"),
     r"USE_MULT must be one of 'MULTIPLY', 'NONE', not 'DYNAMIC'"),
    (dict(USE_MULT="NONE"), r"MREG must be 0 with USE_MULT='NONE', not 1"),
    (dict(RND=-1), r"RND must be an integer in 0\.\.281474976710655, not -1"),
    (dict(RND=2**48), r"RND must be an integer in 0\.\.281474976710655, not 281474976710656"),
    (dict(primitives="vendor"),
     r"primitives must be one of 'auto', 'instance', 'behavioural', not 'vendor'"),
    (dict(domain=""), r"domain must be a clock domain name, not ''"),
])
def test_invalid_attributes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DSP48E2(**kwargs)


def test_keyword_only():
    with pytest.raises(TypeError):
        DSP48E2(1)


def test_golden_rejects_undefined_uses():
    with pytest.raises(ValueError, match=r"cycle 0: OPMODE=000000001 selects M on only one"):
        dsp48e2_mac([{"OPMODE": opmode(x=1)}], OPMODEREG=0)
    with pytest.raises(ValueError, match=r"P feedback .* needs PREG=1"):
        dsp48e2_mac([{"OPMODE": opmode(z=2, **MUL)}], PREG=0, OPMODEREG=0)
    with pytest.raises(ValueError, match=r"logic ALUMODE=0100 needs W=0"):
        dsp48e2_mac([{"OPMODE": opmode(w=3, x=3), "ALUMODE": 0b0100}], ALUMODEREG=0,
                    OPMODEREG=0)
    with pytest.raises(ValueError, match=r"ALUMODE=1000 is not defined"):
        dsp48e2_mac([{"OPMODE": opmode(x=3), "ALUMODE": 0b1000}], ALUMODEREG=0, OPMODEREG=0)
    with pytest.raises(ValueError, match=r"CARRYINSEL=100 reads the carry out of a multiply"):
        dsp48e2_mac([{"OPMODE": opmode(**MUL)}, {"OPMODE": opmode(**MUL), "CARRYINSEL": 4}],
                    OPMODEREG=0, CARRYINSELREG=0)
