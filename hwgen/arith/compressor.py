"""Compressor trees: sum a bit heap with generalized parallel counters, then one adder.

A compressor tree reduces a :class:`~hwgen.arith.bitheap.BitHeap` in *stages*. In each stage,
counters take bits from the heap and put back fewer bits that have the same sum; a greedy
loop places them column by column, LSB first, until every column holds at most ``goal``
bits (2 or 3). A carry-propagate adder then sums the remaining rows (binary for 2 rows,
ternary for 3).

Two architectures are provided, picked by ``target``:

``generic``
    Generalized parallel counters (GPCs) held as data (:data:`GENERIC_COUNTERS`), in plain
    Amaranth logic and arithmetic. *LUT counters* — the full adder (3;2), (6;3), (1,5;3) and
    (2,3;3) — cost one 6-LUT per output bit (efficiency at most 1.0). *Carry-chain
    counters* (:func:`carry_layout`) are small adders that synthesis maps to a carry chain
    with one LUT per position: position ``k`` adds a direct bit ``d[k]`` (on the carry mux)
    and bit ``k`` of the sum of up to five other bits, computed inside the position's LUT,
    and position 0 takes one more bit as carry-in. ``(1,1,7;4)c`` thus sums nine bits into
    four with three LUTs (efficiency 5/3), ``(7;3)c`` seven bits of one column into three
    (4/3). The greedy choice maximizes ``bits removed / LUTs``; counters may be used partly
    filled, their output count shrinking to what the used inputs can sum to. Among greedy
    plans that hold back counters below an efficiency threshold in later stages, the one
    with the fewest LUTs and no more stages than the plain greedy is kept. The final adder
    is an Amaranth ``+`` (carry chain after synthesis) with the lowest two-bit column's
    second bit as carry-in.

``xilinx``
    UltraScale(+) ``LUT6_2`` + ``CARRY8`` row compressors: in the style of Kumm/Zipf's
    carry-chain 4:2 compressors and Preusser's row-based atoms. One chain position per
    column takes four bits ``w, x, y, z`` of its column and the carry from the position
    below; the LUT computes ``P = w^x^y^z`` (``O6``) and a second output ``D`` (``O5``), and
    the carry mux picks ``z`` (``DI``) when ``P`` is 0. Then
    ``w+x+y+z+cin = S + 2*(D + cout)`` with ``S = P ^ cin``, so each LUT removes two bits
    (efficiency 2.0); the first position takes a fifth bit through ``CI``. Columns of three
    bits use a full adder in one ``LUT6_2``. The final adder is a ternary adder (3 rows,
    one ``LUT6_2`` per column with the majority passed to the next column) or a binary
    one on ``CARRY8``.

``LUT6_2``/``CARRY8`` are ``Instance`` cells or bit-identical behavioural models
(:mod:`hwgen.vendor.xilinx.primitives`), chosen by ``primitives``.

Pipelining: with ``pipeline_every=K > 0``, every heap bit is registered after stages K,
2K, ... where the final adder counts as the last stage; ``latency`` is exact.
"""

import functools
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .._checks import check_one_of
from .bitheap import BitHeap
from ..vendor.xilinx.primitives import carry8, is_ultrascale, lut6_2

__all__ = [
    "Counter", "GENERIC_COUNTERS", "CarryLayout", "carry_layout", "GPC", "Chain", "Stage", "Plan",
    "plan_compression",
    "CompressorTree", "Popcount", "Term", "WeightedSum", "TARGETS", "PRIMITIVES",
]

TARGETS = ("auto", "generic", "xilinx")
PRIMITIVES = ("auto", "instance", "behavioural")
FINAL_ADDERS = ("auto", "binary", "ternary")


# --- counters as data --------------------------------------------------------------------

@dataclass(frozen=True)
class Counter:
    """A generalized parallel counter: ``inputs[j]`` bits of weight ``2**j`` in, their sum
    out as a binary number.

    Attributes
    ----------
    name : str
        Conventional name, e.g. ``"(1,5;3)"`` (heights MSB first, then outputs); a ``c``
        suffix marks a counter built on a carry chain.
    inputs : tuple of int
        Input bits per column, LSB first.
    carry : bool
        Built on a carry chain (an Amaranth ``-`` that synthesis maps to ``CARRY4``/``CARRY8``)
        as laid out by :func:`carry_layout`, instead of one LUT per output bit.
    """
    name: str
    inputs: tuple
    carry: bool = False

    @property
    def outputs(self):
        return max_sum_bits(self.inputs)

    @property
    def luts(self):
        """Cost in 6-LUTs: one per output bit (every LUT counter here has at most 6 inputs);
        one per chain position that computes something for a carry-chain counter."""
        return carry_layout(self.inputs).luts if self.carry else self.outputs

    @property
    def efficiency(self):
        """Bits removed per LUT."""
        return (sum(self.inputs) - self.outputs) / self.luts


def max_sum_bits(inputs):
    """Output bits of a counter with ``inputs[j]`` bits in column ``j``."""
    return sum(count << j for j, count in enumerate(inputs)).bit_length()


@dataclass(frozen=True)
class CarryLayout:
    """How a carry-chain counter uses its bits (see :func:`carry_layout`).

    Attributes
    ----------
    carry_in : bool
        One bit of column 0 enters the chain as its carry-in.
    direct : tuple of int
        Per column (0 or 1): a bit that goes straight to the carry mux (``DI``) of the chain
        position of its column and into that position's LUT.
    group : tuple of int
        Per column: the other bits, summed by the LUTs; bit ``k`` of their sum goes into the
        LUT of position ``k``.
    length : int
        Chain positions.
    luts : int
        Positions whose LUT has two or more inputs (the others are plain wires).
    """
    carry_in: bool
    direct: tuple
    group: tuple
    length: int
    luts: int


#: Most bits the LUTs of a carry-chain counter sum besides the direct bit: a position's LUT
#: sees the direct bit and every group bit in the columns up to its own.
MAX_CARRY_GROUP = 5


@functools.lru_cache(maxsize=None)
def carry_layout(used):
    """Layout of a carry-chain counter taking ``used[j]`` bits of column ``j`` (LSB first).

    Position ``k`` of the chain adds ``d[k] + v[k]`` and the carry from position ``k-1``
    (the carry-in at position 0): ``d[k]`` is a bit of column ``k`` wired to the carry mux,
    ``v[k]`` is bit ``k`` of the sum of the *group* bits, which only exists inside the LUT
    that computes the propagate signal ``d[k] ^ v[k]``. The LUT sees ``d[k]`` and the group
    bits, so the group holds at most :data:`MAX_CARRY_GROUP` bits. With ``cin`` the second bit
    of column 0 and ``d[k]`` one bit of every non-empty column, e.g. ``used=(7, 1, 1)`` sums
    13 bits' worth of 9 inputs into 4 outputs with 3 LUTs (the group: 5 bits of column 0).

    Raises ``ValueError`` when the group would exceed :data:`MAX_CARRY_GROUP` bits.
    """
    used = tuple(used)
    if not used or used[0] < 1 or any(count < 0 for count in used):
        raise ValueError(f"a carry-chain counter needs bits in its first column, not {used!r}")
    carry_in = used[0] >= 2
    direct = tuple(1 if count else 0 for count in used)
    group = tuple(count - direct[j] - (carry_in if j == 0 else 0) for j, count in enumerate(used))
    if sum(group) > MAX_CARRY_GROUP:
        raise ValueError(f"a carry-chain counter sums at most {MAX_CARRY_GROUP} bits in its "
                         f"LUTs besides the direct ones, not {sum(group)} (used={used!r})")
    group_bits = max_sum_bits(group)
    first = next((j for j, count in enumerate(group) if count), group_bits)
    length = max(len(used), group_bits)
    luts = 0
    for k in range(length):
        support = (direct[k] if k < len(direct) else 0)
        if first <= k < group_bits:
            support += sum(group[:k + 1])
        luts += support >= 2
    return CarryLayout(carry_in, direct, group, length, luts)


GENERIC_COUNTERS = (
    # On a carry chain: the LUT of each position adds a bit of the group sum to a direct bit.
    Counter("(1,1,7;4)c", (7, 1, 1), carry=True),
    Counter("(1,2,6;4)c", (6, 2, 1), carry=True),
    Counter("(1,3,5;4)c", (5, 3, 1), carry=True),
    Counter("(1,5;3)c", (5, 1), carry=True),
    Counter("(7;3)c", (7,), carry=True),
    Counter("(2,3;3)c", (3, 2), carry=True),
    Counter("(3;2)c", (3,), carry=True),
    # One LUT per output bit.
    Counter("(6;3)", (6,)),
    Counter("(1,5;3)", (5, 1)),
    Counter("(2,3;3)", (3, 2)),
    Counter("(3;2)", (3,)),
)


# --- a plan: where counters go, computed from column heights alone ----------------------

@dataclass(frozen=True)
class GPC:
    """A generic counter placed at ``column``, taking ``used[j]`` bits from column
    ``column + j``. Its outputs land in ``column .. column + outputs - 1``."""
    column: int
    used: tuple
    kind: str = "lut"  # "lut": generic logic; "carry": generic logic on a carry chain
                       # (:func:`carry_layout`); "lut6_2": full adder in one LUT6_2

    @property
    def outputs(self):
        return max_sum_bits(self.used)

    @property
    def luts(self):
        if self.kind == "carry":
            return carry_layout(self.used).luts
        return 1 if self.kind == "lut6_2" else self.outputs

    @property
    def carry_positions(self):
        """Carry-chain positions of a ``carry`` counter as built: its positions, one below
        them that feeds the carry-in, and one above for the carry-out if that can be 1."""
        if self.kind != "carry":
            return 0
        length = carry_layout(self.used).length
        return 1 + length + (self.outputs > length)

    def output_columns(self):
        return [self.column + k for k in range(self.outputs)]


@dataclass(frozen=True)
class Chain:
    """A carry-chain row compressor starting at ``column``: position ``j`` takes
    ``used[j]`` (<= 4) bits of column ``column + j``; with ``carry_in`` the first position
    also takes one bit through ``CI``."""
    column: int
    used: tuple
    carry_in: bool

    @property
    def luts(self):
        return len(self.used)

    def output_columns(self):
        length = len(self.used)
        columns = [self.column + j for j in range(length)]          # S
        columns += [self.column + j + 1 for j in range(length)]     # D (LUT O5)
        columns.append(self.column + length)                        # final carry out
        return columns


@dataclass(frozen=True)
class Stage:
    placements: tuple
    heights_in: tuple
    heights_out: tuple


@dataclass(frozen=True)
class Plan:
    """How a heap of given column heights is compressed and summed.

    Attributes
    ----------
    stages : tuple of Stage
    final_adder : str
        ``"none"`` (at most one bit per column), ``"binary"`` or ``"ternary"``.
    target : str
    """
    heights: tuple
    stages: tuple
    final_adder: str
    target: str

    @property
    def width(self):
        return len(self.heights)

    @property
    def logic_stages(self):
        """Compression stages plus the final adder (if any)."""
        return len(self.stages) + (self.final_adder != "none")

    def latency(self, pipeline_every):
        return self.logic_stages // pipeline_every if pipeline_every else 0

    def adder_luts(self):
        last = self.stages[-1].heights_out if self.stages else self.heights
        if self.final_adder == "none":
            return 0
        if self.target == "xilinx":
            return len(last)  # one LUT6_2 per column, as built
        first = next(c for c, h in enumerate(last) if h >= 2)
        if self.final_adder == "binary":
            # A carry chain from the first column of two bits: one LUT (a ^ b) per column of
            # two bits but the first, whose second bit is the carry-in; a column of one bit
            # is a plain wire into the chain. With no other column of two bits, Yosys makes
            # the carry-in the second operand (one LUT); it maps sums of at most two bits to
            # LUTs, one per output bit.
            if len(last) - first <= 2:
                return len(last) - first
            return max(sum(1 for h in last if h >= 2) - 1, 1)
        return len(last) - first

    def estimate(self, pipeline_every=0):
        """Analytic resource estimate: ``luts``, ``ffs``, ``carry`` (CARRY8 cells; for
        ``generic``, one or more per carry chain as Vivado would place them, while Yosys maps
        every chain to ``CARRY4`` cells)."""
        luts = sum(p.luts for stage in self.stages for p in stage.placements) + self.adder_luts()
        ffs = 0
        if pipeline_every:
            heights = [self.heights] + [stage.heights_out for stage in self.stages]
            for s in range(1, len(self.stages) + 1):
                if s % pipeline_every == 0:
                    ffs += sum(heights[s])
            if self.logic_stages % pipeline_every == 0 and self.final_adder != "none":
                ffs += self.width
        carry = 0
        if self.target == "xilinx":
            for stage in self.stages:
                chains = [p for p in stage.placements if isinstance(p, Chain)]
                short = sum(1 for c in chains if len(c.used) <= 4)
                carry += (short + 1) // 2 + sum(-(-len(c.used) // 8) for c in chains if len(c.used) > 4)
            if self.final_adder != "none":
                carry += -(-self.adder_luts() // 8)
        else:
            carry = sum(-(-p.carry_positions // 8) for stage in self.stages
                        for p in stage.placements if p.carry_positions)
            if self.final_adder != "none":
                last = self.stages[-1].heights_out if self.stages else self.heights
                first = next(c for c, h in enumerate(last) if h >= 2)
                carry += -(-(len(last) - first) // 8)
        return {"luts": luts, "ffs": ffs, "carry": carry}


@functools.lru_cache(maxsize=1 << 14)
def _best_generic_counter(counters, avail, room, min_efficiency):
    """The counter to place at a column with ``avail[j]`` bits left in column ``j`` above it
    (clipped to what any counter takes) and ``room`` columns up to the top of the heap:
    ``(used, kind)`` of the highest ``bits removed / LUTs`` (then most bits removed), or
    None when nothing reaches ``min_efficiency``."""
    best = None
    for counter in counters:
        used = tuple(min(count, avail[j]) if j < room else 0
                     for j, count in enumerate(counter.inputs))
        while used and used[-1] == 0:
            used = used[:-1]
        if not used or used[0] == 0:
            continue
        gpc = GPC(0, used, kind="carry" if counter.carry else "lut")
        gain = sum(used) - min(gpc.outputs, room)
        if gain <= 0 or gpc.luts == 0:
            continue
        score = (gain / gpc.luts, gain)
        if score[0] >= min_efficiency and (best is None or score > best[0]):
            best = (score, used, gpc.kind)
    return best and best[1:]


def _plan_stage_generic(heights, goal, counters, min_efficiency=0.0):
    """Greedy, LSB first: while a column would keep more than ``goal`` bits, place the most
    efficient counter there. With ``min_efficiency``, counters below it are not placed (the
    column keeps its bits for a later stage)."""
    width = len(heights)
    reach = max(len(counter.inputs) for counter in counters)
    clip = [max(counter.inputs[j] if j < len(counter.inputs) else 0 for counter in counters)
            for j in range(reach)]
    avail = list(heights) + [0] * reach
    out = [0] * (width + 8)
    placements = []
    for column in range(width):
        while avail[column] + out[column] > goal:
            key = tuple(min(avail[column + j], clip[j]) for j in range(reach))
            best = _best_generic_counter(counters, key, min(width - column, 8), min_efficiency)
            if best is None:
                break
            gpc = GPC(column, *best)
            placements.append(gpc)
            for j, count in enumerate(gpc.used):
                avail[column + j] -= count
            for c in gpc.output_columns():
                out[c] += 1
    return placements, tuple(avail[c] + out[c] for c in range(width))


def _plan_generic(heights, goal, schedule=()):
    """Stages of generic counters; stage ``s`` only places counters of efficiency
    ``schedule[s]`` or more, unless that leaves it empty."""
    stages = []
    current = heights
    while current and max(current) > goal:
        min_efficiency = schedule[len(stages)] if len(stages) < len(schedule) else 0.0
        placements, after = _plan_stage_generic(current, goal, GENERIC_COUNTERS, min_efficiency)
        if not placements:
            placements, after = _plan_stage_generic(current, goal, GENERIC_COUNTERS)
        if sum(after) >= sum(current):
            raise AssertionError(f"compressor planning made no progress at heights {current}")
        stages.append(Stage(tuple(placements), current, after))
        current = after
    return tuple(stages)


#: Efficiency thresholds tried by :func:`plan_compression` for ``generic`` (see there).
GENERIC_THRESHOLDS = (1.3, 1.4, 1.5, 1.6)


def _plan_generic_cheapest(heights, goal, final_adder):
    """The plain greedy plan, or the cheapest (in LUTs) of the plans whose stages after the
    first only place counters of at least some efficiency (falling back to any counter when
    none fits), as long as it has no more stages.

    Holding back inefficient counters leaves bits for a later stage, where more columns have
    bits to feed the chains: e.g. popcount(1024) needs 715 instead of 726 LUTs in 7 stages.
    """
    def make(schedule):
        stages = _plan_generic(heights, goal, schedule)
        final = _final_adder(stages, heights, final_adder, "generic")
        return Plan(heights, stages, final, "generic")

    best = make(())
    depth = len(best.stages)
    best_key = (best.estimate()["luts"], depth)
    for threshold in GENERIC_THRESHOLDS:
        for first in (0.0, threshold):
            for k in range(1, depth):
                plan = make((first,) + (threshold,) * k)
                key = (plan.estimate()["luts"], len(plan.stages))
                if key[1] <= depth and key < best_key:
                    best, best_key = plan, key
                if len(plan.stages) <= k + 1:
                    break  # the schedule outlasts the plan: longer ones are the same
    return best


def _plan_stage_xilinx(heights, goal):
    width = len(heights)
    avail = list(heights)
    out = [0] * (width + 8)
    placements = []

    def need(c):
        return avail[c] + out[c] > goal

    for column in range(width):
        while need(column) and avail[column] >= 3:
            if avail[column] == 3 or avail[column] + out[column] - goal <= 2:
                # A full adder takes the column down by two and puts one bit above; a chain
                # position would put two there, which only pays off for taller columns.
                placement = GPC(column, (3,), kind="lut6_2")
                avail[column] -= 3
            else:
                # Extend the chain over the next columns while they still need
                # compression once the D output of the position below lands there.
                carry_in = avail[column] >= 5
                used = [min(4, avail[column] - carry_in)]
                avail[column] -= used[0] + carry_in
                c = column + 1
                while c < width and avail[c] >= 3 and avail[c] + out[c] + 1 > goal:
                    used.append(min(4, avail[c]))
                    avail[c] -= used[-1]
                    c += 1
                placement = Chain(column, tuple(used), carry_in)
            placements.append(placement)
            for c in placement.output_columns():
                out[c] += 1
    return placements, tuple(avail[c] + out[c] for c in range(width))


def plan_compression(heights, *, target="generic", goal=None, final_adder="auto"):
    """Plan the compression of a heap with the given column heights.

    Parameters
    ----------
    heights : sequence of int
        Bits per column, LSB first; the result is computed modulo ``2**len(heights)``.
    target : ``"generic"`` or ``"xilinx"``
    goal : int, optional
        Rows left for the final adder: 2 or 3. Defaults to 2 for ``generic`` (binary
        adder) and 3 for ``xilinx`` (ternary adder).
    """
    if target not in ("generic", "xilinx"):
        raise ValueError(f"target must be 'generic' or 'xilinx', not {target!r}")
    check_one_of("final_adder", final_adder, FINAL_ADDERS)
    if final_adder == "auto":
        final_adder = "ternary" if target == "xilinx" else "binary"
    if goal is None:
        goal = 3 if final_adder == "ternary" else 2
    if goal not in (2, 3):
        raise ValueError(f"goal must be 2 or 3, not {goal!r}")
    if goal == 3 and final_adder != "ternary":
        raise ValueError("goal=3 needs final_adder='ternary'")
    heights = tuple(heights)
    if target == "generic":
        plan = _plan_generic_cheapest(heights, goal, final_adder)
        stages = plan.stages
    else:
        stages = []
        current = heights
        while current and max(current) > goal:
            placements, after = _plan_stage_xilinx(current, goal)
            if sum(after) >= sum(current):
                raise AssertionError(f"compressor planning made no progress at heights {current}")
            stages.append(Stage(tuple(placements), current, after))
            current = after
    return Plan(heights, tuple(stages), _final_adder(stages, heights, final_adder, target), target)


def _final_adder(stages, heights, final_adder, target):
    rows = max(stages[-1].heights_out if stages else heights, default=0)
    if rows <= 1:
        return "none"
    if rows == 2 and final_adder == "ternary" and target == "generic":
        return "binary"
    return final_adder


# --- building the hardware from a plan ------------------------------------------------------

def _check_pipeline_every(pipeline_every):
    if not isinstance(pipeline_every, int) or isinstance(pipeline_every, bool) or pipeline_every < 0:
        raise ValueError(f"pipeline_every must be a non-negative integer (0: combinational), "
                         f"not {pipeline_every!r}")


def _full_adder_outputs(bits):
    count = sum(bits)
    return count & 1, count >> 1


def _chain_d(bits):
    """O5 of a chain position: with ``z`` (the fourth bit, else 0) on the carry mux's DI,
    ``w+x+y+z+cin == S + 2*(D + cout)`` holds for every input."""
    count = sum(bits)
    z = bits[3] if len(bits) == 4 else 0
    return (count == 3) if count & 1 else count // 2 - z


class _Builder:
    def __init__(self, m, *, instance, name):
        self.m = m
        self.instance = instance
        self.name = name
        self.count = 0

    def fresh(self, kind):
        self.count += 1
        return f"{self.name}_{kind}{self.count}"

    def gpc(self, placement, pools, width, new):
        if placement.kind == "lut6_2":
            bits = [pools[placement.column].pop() for _ in range(3)]
            o6, o5 = lut6_2(self.m, bits, lambda b: _full_adder_outputs(b)[0],
                            lambda b: _full_adder_outputs(b)[1],
                            instance=self.instance, name=self.fresh("fa"))
            outputs = [o6, o5]
        elif placement.kind == "carry":
            outputs = self.carry_gpc(placement, pools)
        else:
            # Each output bit is a truth table of the (at most six) input bits, so synthesis
            # maps it to one LUT; an arithmetic "+" here would be mapped to carry chains.
            inputs, weights = [], []
            for j, count in enumerate(placement.used):
                inputs += [pools[placement.column + j].pop() for _ in range(count)]
                weights += [1 << j] * count
            out = Signal(placement.outputs, name=self.fresh("gpc"))
            self.m.d.comb += out.eq(Cat(*self.sum_bits(inputs, weights, placement.outputs)))
            outputs = list(out)
        for c, bit in zip(placement.output_columns(), outputs):
            if c < width:
                new[c].append(bit)

    def sum_bits(self, inputs, weights, count):
        """The low ``count`` bits of ``sum(weights[k] * inputs[k])``, each as a truth table
        of the inputs (one LUT when there are at most six)."""
        index = Cat(*inputs)
        sums = [sum(w for k, w in enumerate(weights) if entry >> k & 1)
                for entry in range(1 << len(inputs))]
        return [Const(sum((total >> bit & 1) << entry for entry, total in enumerate(sums)),
                      len(sums)).bit_select(index, 1)
                for bit in range(count)]

    def carry_gpc(self, placement, pools):
        """A counter on a carry chain (:func:`carry_layout`): position ``k`` adds a direct bit
        ``d[k]`` and bit ``k`` of the group sum ``v[k]``, the first position also the
        carry-in ``e``.

        Written as ``Cat(e, d, 0) - Cat(~e, ~v, 1)``, which is ``2*(d + v + e) + 1`` plus a
        borrow above: Yosys puts the minuend of a subtraction on the carry mux inputs
        (``DI``), so ``d`` goes there and ``v`` only exists inside the position's propagate
        LUT ``d[k] ^ v[k]``. An addition would let Yosys pick either operand for ``DI``
        (and a ``v[k]`` there costs a LUT of its own). The lowest position (propagate 0,
        ``DI = e``, carry-in 1) only hands ``e`` on as the carry.
        """
        layout = carry_layout(placement.used)
        direct, group, weights = [], [], []
        carry_in = Const(0, 1)
        for j, count in enumerate(placement.used):
            bits = [pools[placement.column + j].pop() for _ in range(count)]
            # Direct bits and the carry-in are wired to the chain: take plain signals for
            # them, and leave expressions (inverted bits) to the LUTs.
            bits.sort(key=lambda bit: hasattr(bit, "operator"))
            direct.append(bits.pop(0) if layout.direct[j] else Const(0, 1))
            if j == 0 and layout.carry_in:
                carry_in = bits.pop(0)
            group += bits
            weights += [1 << j] * len(bits)
        length = layout.length
        direct += [Const(0, 1)] * (length - len(direct))
        virtual = self.sum_bits(group, weights, max_sum_bits(layout.group)) if group else []
        virtual += [Const(0, 1)] * (length - len(virtual))
        minuend = Cat(carry_in, *direct, Const(0, 1))
        subtrahend = Cat(~carry_in, *(~bit for bit in virtual), Const(1, 1))
        out = Signal(placement.outputs, name=self.fresh("cgpc"))
        self.m.d.comb += out.eq((minuend - subtrahend)[1:1 + placement.outputs])
        return list(out)

    def chains(self, chains, pools, width, new):
        """Build a stage's chains, two short ones per CARRY8 (DUAL_CY4)."""
        built = []
        for chain in chains:
            ci = pools[chain.column].pop() if chain.carry_in else Const(0, 1)
            positions = []
            for j, count in enumerate(chain.used):
                bits = [pools[chain.column + j].pop() for _ in range(count)]
                o6, o5 = lut6_2(self.m, bits, lambda b: sum(b) & 1, _chain_d,
                                instance=self.instance, name=self.fresh("lut"))
                di = bits[3] if count == 4 else Const(0, 1)
                positions.append((o6, di, o5))
            built.append((chain, ci, positions))
        short = [b for b in built if len(b[2]) <= 4]
        long = [b for b in built if len(b[2]) > 4]
        for k in range(0, len(short), 2):
            self._carry_segment(short[k:k + 2], width, new)
        for b in long:
            self._carry_segment([b], width, new)

    def _carry_segment(self, chains, width, new):
        """One or two chains of at most 4 positions share a CARRY8 in DUAL_CY4 mode; a
        longer chain gets a cascade of SINGLE_CY8 cells."""
        dual = len(chains[0][2]) <= 4
        cells = 1 if dual else -(-len(chains[0][2]) // 8)
        s_bits = [Const(0, 1)] * (8 * cells)
        di_bits = list(s_bits)
        for k, (_, _, positions) in enumerate(chains):
            for j, (o6, di, _) in enumerate(positions):
                s_bits[4 * k + j] = o6
                di_bits[4 * k + j] = di
        ci_top = (chains[1][1] if len(chains) > 1 else Const(0, 1)) if dual else None
        outs, cos = self._carry_cascade(chains[0][1], di_bits, s_bits, ci_top=ci_top)
        for k, (chain, _, positions) in enumerate(chains):
            length = len(positions)
            for j, (_, _, d) in enumerate(positions):
                if chain.column + j < width:
                    new[chain.column + j].append(outs[4 * k + j])
                if chain.column + j + 1 < width:
                    new[chain.column + j + 1].append(d)
            if chain.column + length < width:
                new[chain.column + length].append(cos[4 * k + length - 1])

    def _carry_cascade(self, ci, di_bits, s_bits, *, ci_top=None):
        outs, cos = [], []
        for cell in range(len(s_bits) // 8):
            o, co = carry8(self.m, ci, di_bits[cell * 8:cell * 8 + 8], s_bits[cell * 8:cell * 8 + 8],
                           instance=self.instance, name=self.fresh("carry"), ci_top=ci_top)
            outs += list(o)
            cos += list(co)
            ci = co[7]
        return outs, cos

    def xilinx_adder(self, columns, ternary):
        width = len(columns)
        s_bits, di_bits = [], []
        previous_maj = Const(0, 1)
        for c in range(width):
            bits = list(columns[c])
            if ternary:
                inputs = bits + [previous_maj]
                n = len(bits)
                o6, o5 = lut6_2(self.m, inputs, lambda b: sum(b) & 1,
                                lambda b, n=n: sum(b[:n]) >= 2,
                                instance=self.instance, name=self.fresh("add"))
                s_bits.append(o6)
                di_bits.append(previous_maj)
                previous_maj = o5
            else:
                o6, o5 = lut6_2(self.m, bits, lambda b: sum(b) & 1, lambda b: b[0] if b else 0,
                                instance=self.instance, name=self.fresh("add"))
                s_bits.append(o6)
                di_bits.append(o5)
        padding = [Const(0, 1)] * (-width % 8)
        outs, _ = self._carry_cascade(Const(0, 1), di_bits + padding, s_bits + padding)
        return Cat(*outs[:width])


def resolve_architecture(target, primitives, platform):
    """``(architecture, instance)`` of a tree: ``target="auto"`` is ``xilinx`` on
    UltraScale(+) platforms and ``generic`` otherwise; ``primitives="auto"`` means
    ``Instance`` cells exactly on those platforms (Amaranth's simulator ignores instances)."""
    if target == "auto":
        target = "xilinx" if is_ultrascale(platform) else "generic"
    instance = primitives == "instance" or (primitives == "auto" and is_ultrascale(platform))
    return target, instance


def _register(m, columns, en, name):
    registered = []
    for c, bits in enumerate(columns):
        row = []
        for k, bit in enumerate(bits):
            if isinstance(bit, Const):
                row.append(bit)
                continue
            reg = Signal(name=f"{name}_c{c}_{k}")
            with m.If(en):
                m.d.sync += reg.eq(bit)
            row.append(reg)
        registered.append(row)
    return registered


def build_compressor(m, columns, plan, *, pipeline_every=0, en=1, instance=False, name="ct",
                     extra_latency=0):
    """Add the hardware of ``plan`` for the heap ``columns`` (lists of 1-bit values, as
    :meth:`BitHeap.columns` returns) to module ``m``. Returns the ``width``-bit result.

    Registers are clock-enabled by ``en``; ``extra_latency`` adds output registers.
    """
    width = plan.width
    builder = _Builder(m, instance=instance, name=name)
    columns = [list(bits) for bits in columns]
    for index, stage in enumerate(plan.stages, 1):
        pools = [list(reversed(bits)) for bits in columns]  # pop() takes bits in heap order
        new = [[] for _ in range(width)]
        chains = []
        for placement in stage.placements:
            if isinstance(placement, Chain):
                chains.append(placement)
            else:
                builder.gpc(placement, pools, width, new)
        if chains:
            builder.chains(chains, pools, width, new)
        columns = [list(reversed(pools[c])) + new[c] for c in range(width)]
        if [len(bits) for bits in columns] != list(stage.heights_out):
            raise AssertionError("compressor realization does not match its plan")
        if pipeline_every and index % pipeline_every == 0:
            columns = _register(m, columns, en, f"{name}_s{index}")

    if plan.final_adder == "none":
        result = Cat(*(bits[0] if bits else Const(0, 1) for bits in columns))
    elif plan.target == "xilinx":
        result = builder.xilinx_adder(columns, ternary=plan.final_adder == "ternary")
    elif plan.final_adder == "binary":
        # Columns below the first one of two bits pass through; from there on, an adder
        # whose carry-in is the first column's second bit.
        first = next(c for c, bits in enumerate(columns) if len(bits) >= 2)
        low = [bits[0] if bits else Const(0, 1) for bits in columns[:first]]
        carry_in = columns[first][1]
        rows = [Cat(*(bits[r] if r < len(bits) and (r == 0 or c > first) else Const(0, 1)
                      for c, bits in enumerate(columns) if c >= first))
                for r in range(2)]
        result = Cat(*low, (rows[0] + rows[1] + carry_in)[:width - first])
    else:
        rows = max(len(bits) for bits in columns)
        total = 0
        for r in range(rows):
            row = Cat(*(bits[r] if r < len(bits) else Const(0, 1) for bits in columns))
            total = row if r == 0 else total + row
        result = total[:width]
    out = Signal(width, name=f"{name}_sum")
    m.d.comb += out.eq(result)
    registers = extra_latency
    if pipeline_every and plan.final_adder != "none" and plan.logic_stages % pipeline_every == 0:
        registers += 1
    for k in range(registers):
        reg = Signal(width, name=f"{name}_out{k}")
        with m.If(en):
            m.d.sync += reg.eq(out)
        out = reg
    return out


# --- components -------------------------------------------------------------------------------

class CompressorTree(wiring.Component):
    """Base of the compressor-tree front ends: holds the heap, its plan(s) and the ports
    ``o`` (the sum) and ``en`` (clock enable of the pipeline registers).

    Subclasses build a heap from the bits of a staging signal, which follows port ``i``.

    Parameters
    ----------
    pipeline_every : int
        A register stage after every K logic stages (compression stages and the final
        adder); 0 for a combinational tree.
    target : ``"auto"``, ``"generic"`` or ``"xilinx"``
        Architecture. ``auto`` uses ``xilinx`` on UltraScale(+) platforms and ``generic``
        otherwise; both plans are made up front, and the shorter pipeline is padded so that
        :attr:`latency` is the same whichever is built.
    primitives : ``"auto"``, ``"instance"`` or ``"behavioural"``
        For the ``xilinx`` architecture: ``Instance`` cells or behavioural models. ``auto``
        uses instances when elaborated for an UltraScale(+) platform, behavioural models
        otherwise (Amaranth's simulator ignores instances).
    final_adder : ``"auto"``, ``"binary"`` or ``"ternary"``
    """

    def __init__(self, signature, heap, staging, *, pipeline_every=0, target="auto",
                 primitives="auto", final_adder="auto"):
        _check_pipeline_every(pipeline_every)
        check_one_of("target", target, TARGETS)
        check_one_of("primitives", primitives, PRIMITIVES)
        check_one_of("final_adder", final_adder, FINAL_ADDERS)
        self._pipeline_every = pipeline_every
        self._target = target
        self._primitives = primitives
        self._heap = heap
        self._staging = staging  # the heap's bits are slices of it; it follows port i
        signature = dict(signature)
        signature["o"] = Out(heap.shape)
        signature["en"] = In(1, init=1)
        super().__init__(signature)
        architectures = ("generic", "xilinx") if target == "auto" else (target,)
        self._plans = {arch: plan_compression(heap.heights(), target=arch, final_adder=final_adder)
                       for arch in architectures}

    @property
    def pipeline_every(self):
        return self._pipeline_every

    @property
    def target(self):
        return self._target

    @property
    def latency(self):
        """Cycles from input to output (0 when combinational)."""
        return max(plan.latency(self._pipeline_every) for plan in self._plans.values())

    def plan(self, target=None):
        """The :class:`Plan` for ``target`` (default: this tree's own target; for ``auto``,
        ``generic``)."""
        if target is None:
            target = "generic" if self._target == "auto" else self._target
        return self._plans[target]

    @property
    def stages(self):
        """Compression stages (not counting the final adder)."""
        return len(self.plan().stages)

    def estimate(self, target=None):
        """Analytic estimate of ``luts``, ``ffs`` and ``carry`` cells."""
        return self.plan(target).estimate(self._pipeline_every)

    def elaborate(self, platform):
        m = Module()
        target, instance = resolve_architecture(self._target, self._primitives, platform)
        plan = self._plans[target]
        result = build_compressor(
            m, self._heap.columns(), plan, pipeline_every=self._pipeline_every, en=self.en,
            instance=instance, name="ct",
            extra_latency=self.latency - plan.latency(self._pipeline_every))
        m.d.comb += [self._staging.eq(self.i), self.o.eq(result)]
        return m


class Popcount(CompressorTree):
    """Population count of ``n`` bits by a compressor tree.

    Ports: ``i`` (``n`` bits in), ``o`` (``unsigned(n.bit_length())``, the count), ``en``
    (clock enable of the pipeline registers, high by default). See
    :class:`CompressorTree` for the other parameters.
    """

    def __init__(self, n, *, pipeline_every=0, target="auto", primitives="auto", final_adder="auto"):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer (the number of input bits), not {n!r}")
        self._n = n
        bits = Signal(n)
        heap = BitHeap()
        for k in range(n):
            heap.add_bit(bits[k])
        super().__init__({"i": In(n)}, heap, bits, pipeline_every=pipeline_every, target=target,
                         primitives=primitives, final_adder=final_adder)

    @property
    def n(self):
        return self._n


@dataclass(frozen=True)
class Term:
    """One term of a :class:`WeightedSum`: a value of ``shape`` times ``2**shift``,
    subtracted when ``negate``."""
    shape: object
    shift: int = 0
    negate: bool = False


class WeightedSum(CompressorTree):
    """Exact sum of signed/unsigned terms, each shifted and optionally negated.

    ``terms`` is a list of :class:`Term` (or ``(shape, shift, negate)`` tuples, or plain
    shapes). Port ``i`` is a struct with fields ``t0, t1, ...`` of the term shapes; ``o`` has
    the narrowest shape that holds every possible sum.
    """

    def __init__(self, terms, *, pipeline_every=0, target="auto", primitives="auto",
                 final_adder="auto"):
        terms = [self._cast_term(k, term) for k, term in enumerate(terms)]
        if not terms:
            raise ValueError("terms must hold at least one term")
        self._terms = tuple(terms)
        layout = data.StructLayout({f"t{k}": term.shape for k, term in enumerate(terms)})
        staging = Signal(layout)
        heap = BitHeap()
        for k, term in enumerate(terms):
            heap.add_value(staging[f"t{k}"], shift=term.shift, negate=term.negate)
        super().__init__({"i": In(layout)}, heap, staging, pipeline_every=pipeline_every,
                         target=target, primitives=primitives, final_adder=final_adder)

    @staticmethod
    def _cast_term(index, term):
        if isinstance(term, tuple):
            term = Term(*term)
        elif not isinstance(term, Term):
            term = Term(term)
        try:
            shape = Shape.cast(term.shape)
        except TypeError:
            raise TypeError(f"terms[{index}].shape must be an Amaranth shape, not {term.shape!r}") from None
        if shape.width < 1:
            raise ValueError(f"terms[{index}] has zero width")
        if not isinstance(term.shift, int) or term.shift < 0:
            raise ValueError(f"terms[{index}].shift must be a non-negative integer, not {term.shift!r}")
        return Term(shape, term.shift, bool(term.negate))

    @property
    def terms(self):
        return self._terms
