# amaranth: UnusedElaboratable=no
"""PackedMAC: lane counts against FINN's rule, exhaustive single products, long accumulations
with extreme operands (packed and generic targets against sim.golden.packed_mac), framing and
latency, the DSP48E2 Instance path and parameter errors."""

import itertools
import re

import numpy as np
import pytest
from amaranth.sim import Simulator
from amaranth_boards.kcu105 import KCU105Platform

from hwgen.resources import Resources
from hwgen.export.verilog import component_verilog
from hwgen.arith.packed_mac import PackedMAC, max_lanes, packing
from sim.golden import packed_mac

WIDTHS = range(2, 9)
# (weight_signed, act_signed, narrow_range)
SIGNEDNESS = [(True, True, False), (True, False, False), (False, True, False),
              (False, False, False), (True, True, True)]
SIGNEDNESS_IDS = ["ss", "su", "us", "uu", "ss_narrow"]


def finn_lanes(weight_width, act_width):
    return 1 + (26 - weight_width) // (weight_width + act_width - 1)


def make(weight_width, act_width, signedness=(True, True, False), **kwargs):
    weight_signed, act_signed, narrow_range = signedness
    kwargs.setdefault("target", "packed")
    kwargs.setdefault("primitives", "behavioural")
    return PackedMAC(weight_width=weight_width, act_width=act_width, weight_signed=weight_signed,
                     act_signed=act_signed, narrow_range=narrow_range, **kwargs)


# --- simulation driver -----------------------------------------------------------------------

def _to_raw(values, width):
    mask = (1 << width) - 1
    raw = 0
    for k, value in enumerate(values):
        raw |= (int(value) & mask) << (k * width)
    return raw


def _from_raw(raw, shape, count):
    width = shape.width
    values = []
    for k in range(count):
        value = raw >> (k * width) & ((1 << width) - 1)
        if shape.signed and value >> (width - 1):
            value -= 1 << width
        values.append(value)
    return values


def simulate(dut, weights, activations, first, last, *, valid=None, en=None):
    """Drive one cycle per row and return ``[(cycle, sums)]`` for every cycle with ``o_valid``
    high. ``weights[t]`` holds the lanes' weights (``(lanes,)`` for PackedMAC, ``(lanes, simd)``
    for PackedDotProduct; bipolar ones as bits), ``activations[t]`` one or ``simd`` values."""
    cycles = len(activations)
    valid = [1] * cycles if valid is None else list(valid)
    en = [1] * cycles if en is None else list(en)
    weight_width = dut.weight_shape.width
    act_width = dut.act_shape.width
    results = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def testbench(ctx):
        a_port = dut.a.as_value() if hasattr(dut.a, "as_value") else dut.a
        ports = {"w": dut.w.as_value(), "a": a_port, "valid": dut.valid, "first": dut.first,
                 "last": dut.last, "en": dut.en}
        o_port = dut.o.as_value()
        previous = {}
        for t in range(cycles + dut.latency + 2):
            if t < cycles:
                inputs = {"w": _to_raw(np.ravel(weights[t]), weight_width),
                          "a": _to_raw(np.atleast_1d(activations[t]), act_width),
                          "valid": int(valid[t]), "first": int(first[t]),
                          "last": int(last[t]), "en": int(en[t])}
            else:
                inputs = {"valid": 0, "en": 1}
            for name, value in inputs.items():
                if previous.get(name) != value:
                    ctx.set(ports[name], value)
                    previous[name] = value
            if ctx.get(dut.o_valid):
                results.append((t, _from_raw(ctx.get(o_port), dut.acc_shape, dut.lanes)))
            await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    return results


def run_and_check(dut, weights, activations, first, last, *, valid=None, en=None,
                  golden=packed_mac):
    """Simulate, compare with the golden model (``packed_mac``, or ``dot_products`` for a
    PackedDotProduct) and the latency; return the sums."""
    weights = np.asarray(weights, dtype=np.int64)
    activations = np.asarray(activations, dtype=np.int64)
    first, last = np.asarray(first, dtype=bool), np.asarray(last, dtype=bool)
    taken = np.ones(len(activations), dtype=bool)
    if valid is not None:
        taken &= np.asarray(valid, dtype=bool)
    if en is not None:
        taken &= np.asarray(en, dtype=bool)
    bipolar = dut.weight_shape.width == 1
    values = np.where(weights == 0, -1, 1) if bipolar else weights
    expected = golden(values[taken], activations[taken], first[taken], last[taken])
    seen = simulate(dut, weights, activations, first, last, valid=valid, en=en)
    sums = np.array([s for _, s in seen], dtype=np.int64).reshape(-1, dut.lanes)
    assert sums.shape == expected.shape, (sums.shape, expected.shape)
    bad = np.argwhere(sums != expected)
    assert not bad.size, (f"{len(bad)} wrong sums; first: dot product {bad[0][0]}, lane "
                          f"{bad[0][1]}: {sums[tuple(bad[0])]} != {expected[tuple(bad[0])]}")
    if en is None:
        last_cycles = np.flatnonzero(last & taken)
        assert [t for t, _ in seen] == list(last_cycles + dut.latency)
    return sums


def random_operands(rng, packing_, lanes, count, extreme_prob=0.2):
    """Random weights and activations in their ranges (not bipolar bits), each at an extreme
    with some probability."""
    (wlo, whi), (alo, ahi) = packing_.weight_range, packing_.act_range
    weights = rng.integers(wlo, whi + 1, size=(count, lanes))
    weights = np.where(rng.random((count, lanes)) < extreme_prob,
                       rng.choice([wlo, whi], size=(count, lanes)), weights)
    acts = rng.integers(alo, ahi + 1, size=count)
    acts = np.where(rng.random(count) < extreme_prob, rng.choice([alo, ahi], size=count), acts)
    return weights, acts


# --- lane counts -----------------------------------------------------------------------------

@pytest.mark.parametrize("weight_width,act_width", list(itertools.product(WIDTHS, WIDTHS)))
def test_max_lanes_at_least_finn(weight_width, act_width):
    finn = finn_lanes(weight_width, act_width)
    assert max_lanes(weight_width, act_width) >= finn
    assert max_lanes(weight_width, act_width, narrow_range=True) >= finn
    # an unsigned activation enters the slice offset by -2**(A-1) (a signed A-bit one)
    assert max_lanes(weight_width, act_width, act_signed=False) >= finn
    assert packing(weight_width, act_width).stride == weight_width + act_width - 1


def test_max_lanes_known_values():
    assert max_lanes(4, 4) == 4
    assert max_lanes(8, 8) == 2
    assert max_lanes(2, 2) == 9
    assert max_lanes(2, 4, narrow_range=True) == 6  # ternary: one lane more than FINN's 5
    assert max_lanes(4, 4, act_signed=False) == 4  # activation offset: stride 7, not 8
    assert packing(4, 4, act_signed=False).act_offset == 8
    assert packing(8, 8, act_signed=False).act_offset == 0  # 2 lanes either way
    assert max_lanes(1, 4, bipolar=True) == 6


@pytest.mark.parametrize("signedness", SIGNEDNESS, ids=SIGNEDNESS_IDS)
def test_max_lanes_is_largest_exact(signedness):
    """One more lane breaks a condition: the packed operand or P would overflow."""
    weight_signed, act_signed, narrow_range = signedness
    for weight_width, act_width in itertools.product(WIDTHS, WIDTHS):
        pk = packing(weight_width, act_width, weight_signed=weight_signed,
                     act_signed=act_signed, narrow_range=narrow_range)
        assert pk.fits(pk.lanes) and not pk.fits(pk.lanes + 1)
        low, high = pk.lane_range
        assert pk.stride == (high - low).bit_length()  # no smaller stride can separate lanes
        if not pk.act_offset:
            assert pk.lane_range == pk.product_range


# --- exhaustive single products --------------------------------------------------------------

def single_products(rng, pk, lanes):
    """Every (weight, activation) pair in every lane, the other lanes random with extremes;
    then every lane at the same extreme for every activation."""
    (wlo, whi), (alo, ahi) = pk.weight_range, pk.act_range
    weight_values = range(wlo, whi + 1)
    rows, acts = [], []
    for lane in range(lanes):
        for w in weight_values:
            for a in range(alo, ahi + 1):
                others, _ = random_operands(rng, pk, lanes, 1, extreme_prob=0.5)
                row = others[0].copy()
                row[lane] = w
                rows.append(row)
                acts.append(a)
    for w in (wlo, whi):
        for a in range(alo, ahi + 1):
            rows.append(np.full(lanes, w))
            acts.append(a)
    return np.array(rows), np.array(acts)


@pytest.mark.parametrize("signedness", SIGNEDNESS, ids=SIGNEDNESS_IDS)
@pytest.mark.parametrize("weight_width,act_width",
                         list(itertools.product(range(2, 5), range(2, 5))))
def test_exhaustive_single_products(weight_width, act_width, signedness):
    dut = make(weight_width, act_width, signedness, max_terms=1)
    rng = np.random.default_rng(weight_width * 10 + act_width)
    weights, acts = single_products(rng, dut.packing, dut.lanes)
    ones = np.ones(len(acts), dtype=bool)
    sums = run_and_check(dut, weights, acts, ones, ones)
    assert len(sums) == len(acts)


@pytest.mark.parametrize("act_width", [2, 4])
def test_exhaustive_bipolar(act_width):
    dut = make(1, act_width, bipolar=True, max_terms=1)
    assert dut.lanes == max_lanes(1, act_width, bipolar=True)
    alo, ahi = dut.packing.act_range
    rows, acts = [], []
    for lane in range(dut.lanes):
        for bit in (0, 1):
            for a in range(alo, ahi + 1):
                row = [(lane + k + bit) % 2 for k in range(dut.lanes)]
                row[lane] = bit
                rows.append(row)
                acts.append(a)
    ones = np.ones(len(acts), dtype=bool)
    run_and_check(dut, np.array(rows), np.array(acts), ones, ones)
    generic = make(1, act_width, bipolar=True, max_terms=1, target="generic")
    run_and_check(generic, np.array(rows), np.array(acts), ones, ones)


# --- long accumulations ----------------------------------------------------------------------

def extreme_corners(pk):
    """(weight, activation) pairs giving the smallest and the largest product."""
    (wlo, whi), (alo, ahi) = pk.weight_range, pk.act_range
    corners = [(w, a) for w in (wlo, whi) for a in (alo, ahi)]
    return min(corners, key=lambda c: c[0] * c[1]), max(corners, key=lambda c: c[0] * c[1])


def framed(blocks):
    """Concatenate ``(weights, activations)`` blocks, one dot product each: returns the
    weights, the activations and the ``first``/``last`` flags."""
    weights = np.concatenate([b[0] for b in blocks])
    acts = np.concatenate([b[1] for b in blocks])
    first = np.zeros(len(acts), dtype=bool)
    last = np.zeros(len(acts), dtype=bool)
    position = 0
    for w, _ in blocks:
        first[position] = True
        position += len(w)
        last[position - 1] = True
    return weights, acts, first, last


def accumulation_stream(rng, pk, lanes, *, max_terms, lengths, all_corners):
    """Dot products of the given random lengths, then ``max_terms``-term ones at the extreme
    products (all lanes at the smallest, all at the largest; with ``all_corners`` also every
    corner with lanes alternating between the two weight extremes)."""
    (wlo, whi), (alo, ahi) = pk.weight_range, pk.act_range
    blocks = []
    for length in lengths:
        blocks.append(random_operands(rng, pk, lanes, length))
    for w, a in extreme_corners(pk):
        blocks.append((np.full((max_terms, lanes), w), np.full(max_terms, a)))
    if all_corners:
        for a in (alo, ahi):
            pattern = np.array([wlo if k % 2 == 0 else whi for k in range(lanes)])
            for row in (pattern, np.where(np.arange(lanes) % 2 == 0, whi, wlo)):
                blocks.append((np.tile(row, (max_terms, 1)), np.full(max_terms, a)))
    return framed(blocks)


def check_accumulations(weight_width, act_width, signedness, *, lengths, all_corners,
                        seed=0):
    rng = np.random.default_rng(seed)
    packed = make(weight_width, act_width, signedness)
    stream = accumulation_stream(rng, packed.packing, packed.lanes, max_terms=packed.max_terms,
                                 lengths=lengths, all_corners=all_corners)
    packed_sums = run_and_check(packed, *stream)
    generic = make(weight_width, act_width, signedness, target="generic")
    generic_sums = run_and_check(generic, *stream)
    assert np.array_equal(packed_sums, generic_sums)
    low, high = packed.packing.product_range
    assert packed_sums.min() == low * 4096 and packed_sums.max() == high * 4096


FAST_PAIRS = [(2, 2), (4, 4), (8, 8), (3, 7), (8, 2)]


@pytest.mark.parametrize("signedness", SIGNEDNESS, ids=SIGNEDNESS_IDS)
@pytest.mark.parametrize("weight_width,act_width", FAST_PAIRS)
def test_long_accumulations(weight_width, act_width, signedness):
    check_accumulations(weight_width, act_width, signedness, lengths=[1, 2, 3, 40, 257],
                        all_corners=False, seed=weight_width * 10 + act_width)


@pytest.mark.slow
@pytest.mark.parametrize("signedness", SIGNEDNESS, ids=SIGNEDNESS_IDS)
@pytest.mark.parametrize("weight_width,act_width", list(itertools.product(WIDTHS, WIDTHS)))
def test_long_accumulations_all_pairs(weight_width, act_width, signedness):
    rng = np.random.default_rng(weight_width * 10 + act_width)
    lengths = [1, 2, 3, 4096] + list(rng.integers(1, 4097, size=3))
    check_accumulations(weight_width, act_width, signedness, lengths=lengths, all_corners=True,
                        seed=weight_width * 100 + act_width)


def test_more_lanes_than_one_dsp():
    dut = make(4, 4, lanes=9, max_terms=64)
    assert dut.lanes_per_dsp == 4 and dut.dsp_count == 3
    rng = np.random.default_rng(5)
    stream = accumulation_stream(rng, dut.packing, 9, max_terms=64, lengths=[1, 7, 30],
                                 all_corners=True)
    run_and_check(dut, *stream)


# --- framing, latency, clock enable --------------------------------------------------------

@pytest.mark.parametrize("target", ["packed", "generic"])
def test_back_to_back_dot_products(target):
    """Dot products of lengths 1, 2, 1, 5, ... with no gap between them: every result exactly
    ``latency`` cycles after its last term; a term after a ``last`` without ``first`` keeps
    adding to the previous sum."""
    dut = make(4, 4, target=target, max_terms=16)
    assert dut.latency == 5
    rng = np.random.default_rng(2)
    lengths = [1, 2, 1, 5, 1, 1, 3, 16, 1]
    weights, acts = random_operands(rng, dut.packing, dut.lanes, sum(lengths))
    first = np.zeros(sum(lengths), dtype=bool)
    last = np.zeros(sum(lengths), dtype=bool)
    ends = np.cumsum(lengths)
    first[np.concatenate([[0], ends[:-1]])] = True
    last[ends - 1] = True
    first[ends[4]] = False  # continues the sum closed at ends[4] - 1
    run_and_check(dut, weights, acts, first, last)


@pytest.mark.parametrize("target", ["packed", "generic"])
def test_valid_gaps_and_clock_enable(target):
    dut = make(5, 3, (True, False, False), target=target, max_terms=64)
    rng = np.random.default_rng(3)
    count = 300
    weights, acts = random_operands(rng, dut.packing, dut.lanes, count)
    valid = rng.random(count) < 0.7
    en = rng.random(count) < 0.8
    first = rng.random(count) < 0.1
    last = rng.random(count) < 0.1
    first[0] = True
    sums = run_and_check(dut, weights, acts, first, last, valid=valid, en=en)
    assert len(sums) > 5


def test_latency_and_properties():
    dut = make(8, 8, max_terms=4096)
    assert (dut.lanes, dut.stride, dut.latency, dut.dsp_count) == (2, 15, 5, 1)
    assert dut.acc_shape.signed and dut.acc_shape.width == 28  # up to 2**14 * 4096 = 2**26
    unsigned_dut = make(8, 8, (False, False, False), max_terms=4096)
    assert not unsigned_dut.acc_shape.signed and unsigned_dut.acc_shape.width == 28
    assert make(4, 4, target="generic").dsp_count == 0
    assert make(4, 4, target="auto").dsp_count == 1


# --- Instance path ---------------------------------------------------------------------------

def dsp_instances(text):
    return len(re.findall(r"\bDSP48E2 #\(", text))


@pytest.mark.parametrize("weight_width,act_width,lanes", [(4, 4, None), (8, 8, 5)])
def test_instance_path_elaborates(weight_width, act_width, lanes):
    dut = make(weight_width, act_width, lanes=lanes, primitives="instance")
    text = component_verilog(dut)
    assert dsp_instances(text) == dut.dsp_count
    assert '.AMULTSEL("AD")' in text


def test_target_follows_platform():
    auto = PackedMAC(weight_width=4, act_width=4)
    assert dsp_instances(component_verilog(auto, platform=KCU105Platform())) == 1
    assert dsp_instances(component_verilog(PackedMAC(weight_width=4, act_width=4))) == 0
    generic = PackedMAC(weight_width=4, act_width=4, target="generic")
    assert dsp_instances(component_verilog(generic, platform=KCU105Platform())) == 0


@pytest.mark.slow
@pytest.mark.parametrize("weight_width,act_width,lanes", [(4, 4, None), (8, 8, 5)])
def test_instance_synthesizes_to_dsp48e2(weight_width, act_width, lanes):
    from boards.synth import synthesize

    dut = make(weight_width, act_width, lanes=lanes, primitives="instance")
    report = synthesize(component_verilog(dut, name="top"), top="top", family="xcup")
    assert report["dsp48e2"] == dut.dsp_count


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,message", [
    (dict(weight_width=9), ValueError, r"weight_width must be an integer in 2\.\.8, not 9"),
    (dict(weight_width=1), ValueError, r"weight_width must be an integer in 2\.\.8, not 1"),
    (dict(act_width=1), ValueError, r"act_width must be an integer in 2\.\.8, not 1"),
    (dict(act_width=4.0), TypeError, r"act_width must be an integer in 2\.\.8, not 4\.0"),
    (dict(weight_signed=1), TypeError, r"weight_signed must be True or False, not 1"),
    (dict(weight_signed=False, narrow_range=True), ValueError,
     r"narrow_range=True needs signed weights \(weight_signed=True\)"),
    (dict(bipolar=True), ValueError, r"weight_width=4 must be 1 with bipolar=True"),
    (dict(weight_width=1, bipolar=True, narrow_range=True), ValueError,
     r"narrow_range=True does not apply to bipolar weights"),
    (dict(lanes=0), ValueError, r"lanes must be an integer >= 1, not 0"),
    (dict(max_terms=0), ValueError, r"max_terms must be an integer >= 1, not 0"),
    (dict(target="dsp"), ValueError,
     r"target must be one of 'auto', 'packed', 'generic', not 'dsp'"),
    (dict(primitives="vendor"), ValueError,
     r"primitives must be one of 'auto', 'instance', 'behavioural', not 'vendor'"),
])
def test_errors(kwargs, error, message):
    kwargs = {"weight_width": 4, "act_width": 4, **kwargs}
    with pytest.raises(error, match=message):
        PackedMAC(**kwargs)


def test_max_lanes_errors_and_keyword_only():
    with pytest.raises(ValueError, match=r"act_width must be an integer in 2\.\.8, not 9"):
        max_lanes(4, 9)
    with pytest.raises(TypeError):
        max_lanes(4, 4, True)
    with pytest.raises(TypeError):
        PackedMAC(4, 4)


# === PackedDotProduct ==========================================================================

from hwgen.arith.packed_mac import PackedDotProduct  # noqa: E402
from sim.golden import dot_products  # noqa: E402


def make_dot(weight_width, act_width, signedness=(True, True, False), **kwargs):
    weight_signed, act_signed, narrow_range = signedness
    kwargs.setdefault("target", "packed")
    kwargs.setdefault("primitives", "behavioural")
    return PackedDotProduct(weight_width=weight_width, act_width=act_width,
                            weight_signed=weight_signed, act_signed=act_signed,
                            narrow_range=narrow_range, **kwargs)


def run_and_check_dot(dut, weights, activations, first, last, *, valid=None, en=None):
    return run_and_check(dut, weights, activations, first, last, valid=valid, en=en,
                         golden=dot_products)


def dot_stream(rng, pk, lanes, simd, *, max_terms, lengths):
    """Random dot products of the given lengths (cycles), then ``max_terms // simd``-cycle ones
    at the extremes: every lane and SIMD position at the smallest product, at the largest, and
    at alternating weight extremes for both activation extremes."""
    (wlo, whi), (alo, ahi) = pk.weight_range, pk.act_range
    blocks = []
    for length in lengths:
        weights, acts = random_operands(rng, pk, lanes * simd, length)
        acts = np.where(rng.random((length, simd)) < 0.2, rng.choice([alo, ahi], (length, simd)),
                        rng.integers(alo, ahi + 1, size=(length, simd)))
        blocks.append((weights.reshape(length, lanes, simd), acts))
    cycles = max_terms // simd
    for w, a in extreme_corners(pk):
        blocks.append((np.full((cycles, lanes, simd), w), np.full((cycles, simd), a)))
    pattern = np.where((np.arange(lanes)[:, None] + np.arange(simd)) % 2 == 0, wlo, whi)
    for a in (alo, ahi):
        blocks.append((np.tile(pattern, (cycles, 1, 1)), np.full((cycles, simd), a)))
    return framed(blocks)


# (weight_width, act_width, signedness, lanes, simd)
DOT_CONFIGS = [
    (4, 4, (True, True, False), None, 1),
    (4, 4, (True, True, False), 9, 4),     # 3 slices per SIMD position
    (2, 2, (True, True, True), 5, 3),      # ternary-ish, narrow range
    (8, 8, (True, False, False), 3, 2),
    (3, 5, (False, True, False), 4, 5),
    (6, 2, (False, False, False), 2, 8),
    (4, 4, (True, False, False), None, 1),  # activation offset, simd=1 (PackedMAC's path)
    (2, 3, (True, False, False), 9, 4),     # activation offset in the trees, 2 slices
]
DOT_IDS = [f"w{w}a{a}_{'ss su us uu'.split()[(not s[0]) * 2 + (not s[1])]}"
           f"{'_narrow' if s[2] else ''}_pe{pe}_simd{simd}" for w, a, s, pe, simd in DOT_CONFIGS]


@pytest.mark.parametrize("weight_width,act_width,signedness,lanes,simd", DOT_CONFIGS,
                         ids=DOT_IDS)
def test_dot_product_exact(weight_width, act_width, signedness, lanes, simd):
    """Random and all-extreme operands, ``max_terms`` = 4096 products at the extremes; packed
    and generic agree with the golden model and each other."""
    packed = make_dot(weight_width, act_width, signedness, lanes=lanes, simd=simd)
    lanes = packed.lanes
    rng = np.random.default_rng(weight_width * 100 + act_width * 10 + simd)
    stream = dot_stream(rng, packed.packing, lanes, simd, max_terms=packed.max_terms,
                        lengths=[1, 2, 3, 37])
    packed_sums = run_and_check_dot(packed, *stream)
    generic = make_dot(weight_width, act_width, signedness, lanes=lanes, simd=simd,
                       target="generic")
    assert generic.latency == packed.latency
    generic_sums = run_and_check_dot(generic, *stream)
    assert np.array_equal(packed_sums, generic_sums)
    low, high = packed.packing.product_range
    cycles = packed.max_terms // simd
    assert packed_sums.min() == low * simd * cycles and packed_sums.max() == high * simd * cycles
    assert packed.dsp_count == simd * -(-lanes // packed.lanes_per_dsp)


def test_dot_product_bipolar():
    dut = make_dot(1, 3, bipolar=True, simd=3, max_terms=60)
    rng = np.random.default_rng(9)
    cycles = 50
    weights = rng.integers(0, 2, size=(cycles, dut.lanes, 3))
    acts = rng.integers(-4, 4, size=(cycles, 3))
    first = rng.random(cycles) < 0.3
    last = rng.random(cycles) < 0.3
    first[0] = True
    run_and_check_dot(dut, weights, acts, first, last)
    generic = make_dot(1, 3, bipolar=True, simd=3, max_terms=60, target="generic")
    run_and_check_dot(generic, weights, acts, first, last)


@pytest.mark.parametrize("target", ["packed", "generic"])
@pytest.mark.parametrize("pipeline_every", [0, 1, 2])
def test_dot_product_back_to_back(target, pipeline_every):
    """Lengths 1, 2, 1, 5, ... with no gaps; each result exactly ``latency`` cycles after its
    last cycle; a cycle after a ``last`` without ``first`` continues the sum."""
    dut = make_dot(4, 4, target=target, simd=6, max_terms=6 * 16,
                   pipeline_every=pipeline_every)
    if pipeline_every == 0:
        assert dut.latency == 5
    rng = np.random.default_rng(12)
    lengths = [1, 2, 1, 5, 1, 1, 3, 16, 1]
    stream = dot_stream(rng, dut.packing, dut.lanes, 6, max_terms=6, lengths=lengths)
    weights, acts = stream[0][:sum(lengths)], stream[1][:sum(lengths)]
    first = np.zeros(sum(lengths), dtype=bool)
    last = np.zeros(sum(lengths), dtype=bool)
    ends = np.cumsum(lengths)
    first[np.concatenate([[0], ends[:-1]])] = True
    last[ends - 1] = True
    first[ends[4]] = False
    run_and_check_dot(dut, weights, acts, first, last)


def test_dot_product_valid_gaps_and_clock_enable():
    dut = make_dot(5, 3, (True, False, False), simd=3, lanes=4, max_terms=3 * 64)
    rng = np.random.default_rng(13)
    count = 200
    weights = rng.integers(-16, 16, size=(count, 4, 3))
    acts = rng.integers(0, 8, size=(count, 3))
    valid = rng.random(count) < 0.7
    en = rng.random(count) < 0.8
    first = rng.random(count) < 0.1
    last = rng.random(count) < 0.1
    first[0] = True
    sums = run_and_check_dot(dut, weights, acts, first, last, valid=valid, en=en)
    assert len(sums) > 5


def test_dot_product_properties():
    dut = make_dot(4, 4, simd=8, lanes=6, max_terms=4096, pipeline_every=0)
    assert (dut.lanes, dut.simd, dut.lanes_per_dsp, dut.stride) == (6, 8, 4, 7)
    assert dut.dsp_count == 16 and dut.latency == 5
    assert dut.acc_shape == make(4, 4, max_terms=4096).acc_shape
    assert make_dot(4, 4, simd=8, target="generic").dsp_count == 0
    assert make_dot(4, 4, simd=1, pipeline_every=2).latency == 5
    assert make_dot(4, 4, simd=64, pipeline_every=1).latency > 6
    assert len(dut.w.as_value()) == 6 * 8 * 4 and len(dut.a.as_value()) == 8 * 4


@pytest.mark.parametrize("lanes,simd", [(None, 1), (6, 3)])
def test_dot_product_instance_path(lanes, simd):
    dut = make_dot(4, 4, lanes=lanes, simd=simd, primitives="instance")
    text = component_verilog(dut)
    assert dsp_instances(text) == dut.dsp_count == simd * -(-dut.lanes // 4)
    auto = PackedDotProduct(weight_width=4, act_width=4, simd=2)
    assert dsp_instances(component_verilog(auto, platform=KCU105Platform())) == 2
    assert dsp_instances(component_verilog(auto)) == 0


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(simd=0), ValueError, r"simd must be an integer >= 1, not 0"),
    (dict(simd=2.0), TypeError, r"simd must be an integer >= 1, not 2\.0"),
    (dict(lanes=-1), ValueError, r"lanes must be an integer >= 1, not -1"),
    (dict(simd=8, max_terms=4), ValueError,
     r"max_terms=4 must be at least simd=8 \(one cycle adds simd products\)"),
    (dict(pipeline_every=-1), ValueError,
     r"pipeline_every must be an integer >= 0, not -1"),
    (dict(weight_width=9), ValueError, r"weight_width must be an integer in 2\.\.8, not 9"),
    (dict(act_signed="yes"), TypeError, r"act_signed must be True or False, not 'yes'"),
    (dict(target="dsp"), ValueError,
     r"target must be one of 'auto', 'packed', 'generic', not 'dsp'"),
])
def test_dot_product_errors(kwargs, error, message):
    kwargs = {"weight_width": 4, "act_width": 4, "simd": 2, **kwargs}
    with pytest.raises(error, match=message):
        PackedDotProduct(**kwargs)
    with pytest.raises(TypeError):
        PackedDotProduct(4, 4, 2)


# --- cocotb on Verilator (two builds) ----------------------------------------------------------

def _raw_sums(sums, shape):
    return [_to_raw(row, shape.width) for row in sums]


@pytest.mark.parametrize("kind", ["mac", "dot"])
def test_cocotb_verilator_matches_golden(kind, tmp_path):
    """The exported Verilog of the behavioural packed path, on Verilator, with random gaps in
    ``valid``: every dot product's sums and cycle."""
    import json
    from pathlib import Path

    from sim.runner import run

    rng = np.random.default_rng(21)
    if kind == "mac":
        dut = make(4, 4, lanes=5, max_terms=512)  # two slices, the second half full
        stream = accumulation_stream(rng, dut.packing, dut.lanes, max_terms=512,
                                     lengths=[1, 2, 3, 1, 40, 200], all_corners=True)
        weights, acts, first, last = stream
        expected = packed_mac(weights, acts, first, last)
        rows = [(_to_raw(w, 4), int(a) & 0xF) for w, a in zip(weights, acts)]
    else:
        dut = make_dot(4, 4, (True, False, False), lanes=5, simd=3, max_terms=3 * 128,
                       pipeline_every=1)
        stream = dot_stream(rng, dut.packing, dut.lanes, 3, max_terms=dut.max_terms,
                            lengths=[1, 2, 3, 1, 40, 200])
        weights, acts, first, last = stream
        expected = dot_products(weights, acts, first, last)
        rows = [(_to_raw(np.ravel(w), 4), _to_raw(a, 4)) for w, a in zip(weights, acts)]
    vectors = tmp_path / "vectors.json"
    vectors.write_text(json.dumps({
        "terms": [[w, a, int(f), int(l)] for (w, a), f, l in zip(rows, first, last)],
        "expected": _raw_sums(expected, dut.acc_shape), "latency": dut.latency,
        "valid_probability": 0.7, "seed": 5}))
    result = run(dut, Path(__file__).with_name("packed_mac_tb.py"),
                 extra_env={"HWGEN_PACKED_MAC_VECTORS": str(vectors)},
                 test_dir=tmp_path / "run", timeout=300)
    assert result.passed and len(result.tests) == 1


# --- estimates ---------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", [
    lambda: make(4, 4), lambda: make(8, 8, lanes=5), lambda: make(4, 4, target="generic"),
    lambda: make(4, 4, (True, False, False)),
    lambda: make_dot(4, 4, simd=4, lanes=6), lambda: make_dot(2, 2, simd=1),
    lambda: make_dot(3, 5, simd=8, target="generic"),
], ids=["mac44", "mac88x5", "mac_generic", "mac44_su", "dot44", "dot_simd1", "dot_generic"])
def test_estimate(unit):
    unit = unit()
    estimate = unit.estimate()
    assert isinstance(estimate, Resources) and estimate.bram18 == estimate.lutram == 0
    assert estimate.dsp == unit.dsp_count
    assert estimate["luts"] >= unit.lanes * unit.acc_shape.width
    assert estimate["ffs"] >= unit.lanes * unit.acc_shape.width + 3 * (unit.latency - 1) + 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mac_ss", "mac_uu", "dot"])
def test_estimate_against_yosys(kind):
    from boards.synth import synthesize

    if kind == "mac_ss":
        unit = make(4, 4, primitives="instance")
    elif kind == "mac_uu":
        unit = make(4, 4, (False, False, False), primitives="instance")
    else:
        unit = make_dot(4, 4, simd=4, pipeline_every=0, primitives="instance")
    report = synthesize(component_verilog(unit, name="mac"), top="mac", family="xcup")
    estimate = unit.estimate()
    assert report["dsp48e2"] == estimate.dsp
    assert report["ffs"] == estimate["ffs"]
    assert abs(report["luts"] - estimate["luts"]) <= 0.1 * report["luts"]
