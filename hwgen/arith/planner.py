"""Compression planning: which counters go where in each stage of a compressor tree, and
which final adder sums what is left, from the heap's column heights alone (plain Python,
no hardware).

A compressor tree reduces a :class:`~hwgen.arith.bitheap.BitHeap` in *stages*. In each stage,
counters (:mod:`hwgen.arith.counters`) take bits from the heap and put back fewer bits that
have the same sum; a greedy loop places them column by column, LSB first, until every
column holds at most ``goal`` bits (2 or 3). A carry-propagate adder then sums the
remaining rows (binary for 2 rows, ternary for 3).

:func:`plan_compression` returns a :class:`Plan`: its stages, its final adder, its latency
for a given pipelining and an analytic resource estimate (:meth:`Plan.estimate`), all
known before any hardware exists; :func:`hwgen.arith.netlist.build_compressor` builds it.

``generic``
    The greedy choice maximizes ``bits removed / LUTs`` over
    :data:`~hwgen.arith.counters.GENERIC_COUNTERS`; counters may be used partly filled,
    their output count shrinking to what the used inputs can sum to. Among greedy plans
    that hold back counters below an efficiency threshold in later stages, the one with the
    fewest LUTs and no more stages than the plain greedy is kept. The final adder is binary
    (also when a ternary one is asked for but only two rows are left).

``xilinx``
    A column of three bits (or one at most two bits above the goal) gets a full adder in
    one ``LUT6_2``; a taller one starts a carry-chain row compressor
    (:class:`~hwgen.arith.counters.Chain`) that extends over the next columns while they
    still need compression. The final adder is ternary unless a binary one is asked for.
"""

import functools
from dataclasses import dataclass

from ..checks import check_one_of
from ..resources import Resources
from .counters import GENERIC_COUNTERS, GPC, Chain

__all__ = ["Stage", "Plan", "plan_compression", "FINAL_ADDERS", "GENERIC_THRESHOLDS"]

FINAL_ADDERS = ("auto", "binary", "ternary")


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
        """Analytic :class:`~hwgen.resources.Resources`: ``luts``, ``ffs``, ``carry`` (CARRY8 cells; for
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
        return Resources(luts=luts, ffs=ffs, carry=carry)


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
    check_one_of("target", target, ("generic", "xilinx"))
    check_one_of("final_adder", final_adder, FINAL_ADDERS)
    if final_adder == "auto":
        final_adder = "ternary" if target == "xilinx" else "binary"
    if goal is None:
        goal = 3 if final_adder == "ternary" else 2
    check_one_of("goal", goal, (2, 3))
    if goal == 3 and final_adder != "ternary":
        raise ValueError("goal=3 needs final_adder='ternary'")
    return _planned(tuple(int(h) for h in heights), target, goal, final_adder)


@functools.lru_cache(maxsize=4096)
def _planned(heights, target, goal, final_adder):
    """:func:`plan_compression` once per heap shape (plans are immutable, and folding
    plans the same lane heaps for many candidates)."""
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

