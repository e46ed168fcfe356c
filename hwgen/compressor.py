"""Compressor trees: sum a bit heap with generalized parallel counters, then one adder.

A compressor tree reduces a :class:`~hwgen.bitheap.BitHeap` in *stages*. In each stage,
counters take bits from the heap and put back fewer bits that have the same sum; a greedy
loop places them column by column, LSB first, until every column holds at most ``goal``
bits (2 or 3). A carry-propagate adder then sums the remaining rows (binary for 2 rows,
ternary for 3).

Two architectures are provided, picked by ``target``:

``generic``
    Generalized parallel counters (GPCs) held as data (:data:`GENERIC_COUNTERS`): the full
    adder (3;2), (6;3), (1,5;3) and (2,3;3). Each output bit is a function of at most six
    inputs, so a counter costs one 6-LUT per output bit; the greedy choice maximizes
    ``bits removed / LUTs`` (efficiency 1.0 for (6;3) and (1,5;3)). Counters may be used
    partly filled; their output count shrinks to what the used inputs can sum to.
    The final adder is an Amaranth ``+`` (carry chain after synthesis).

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
(:mod:`hwgen.xilinx`), chosen by ``primitives``.

Pipelining: with ``pipeline_every=K > 0``, every heap bit is registered after stages K,
2K, ... where the final adder counts as the last stage; ``latency`` is exact.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .bitheap import BitHeap
from .xilinx import carry8, is_ultrascale, lut6_2

__all__ = [
    "Counter", "GENERIC_COUNTERS", "GPC", "Chain", "Stage", "Plan", "plan_compression",
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
        Conventional name, e.g. ``"(1,5;3)"`` (heights MSB first, then outputs).
    inputs : tuple of int
        Input bits per column, LSB first.
    """
    name: str
    inputs: tuple

    @property
    def outputs(self):
        return max_sum_bits(self.inputs)

    @property
    def luts(self):
        """Cost in 6-LUTs: one per output bit (every counter here has at most 6 inputs)."""
        return self.outputs

    @property
    def efficiency(self):
        """Bits removed per LUT."""
        return (sum(self.inputs) - self.outputs) / self.luts


def max_sum_bits(inputs):
    """Output bits of a counter with ``inputs[j]`` bits in column ``j``."""
    return sum(count << j for j, count in enumerate(inputs)).bit_length()


GENERIC_COUNTERS = (
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
    kind: str = "lut"  # "lut": generic logic; "lut6_2": full adder in one LUT6_2

    @property
    def outputs(self):
        return max_sum_bits(self.used)

    @property
    def luts(self):
        return 1 if self.kind == "lut6_2" else self.outputs

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
        return len(last) - first

    def estimate(self, pipeline_every=0):
        """Analytic resource estimate: ``luts``, ``ffs``, ``carry`` (CARRY8 cells)."""
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
        return {"luts": luts, "ffs": ffs, "carry": carry}


def _plan_stage_generic(heights, goal, counters):
    width = len(heights)
    avail = list(heights)
    out = [0] * (width + 8)
    placements = []
    for column in range(width):
        while avail[column] + out[column] > goal:
            best = None
            for counter in counters:
                used = tuple(min(count, avail[column + j]) if column + j < width else 0
                             for j, count in enumerate(counter.inputs))
                while used and used[-1] == 0:
                    used = used[:-1]
                if not used or used[0] == 0:
                    continue
                gpc = GPC(column, used)
                kept = sum(1 for c in gpc.output_columns() if c < width)
                gain = sum(used) - kept
                if gain <= 0:
                    continue
                score = (gain / gpc.luts, gain)
                if best is None or score > best[0]:
                    best = (score, gpc)
            if best is None:
                break
            gpc = best[1]
            placements.append(gpc)
            for j, count in enumerate(gpc.used):
                avail[column + j] -= count
            for c in gpc.output_columns():
                out[c] += 1
    return placements, tuple(avail[c] + out[c] for c in range(width))


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
    if final_adder not in FINAL_ADDERS:
        raise ValueError(f"final_adder must be one of {FINAL_ADDERS}, not {final_adder!r}")
    if final_adder == "auto":
        final_adder = "ternary" if target == "xilinx" else "binary"
    if goal is None:
        goal = 3 if final_adder == "ternary" else 2
    if goal not in (2, 3):
        raise ValueError(f"goal must be 2 or 3, not {goal!r}")
    if goal == 3 and final_adder != "ternary":
        raise ValueError("goal=3 needs final_adder='ternary'")
    heights = tuple(heights)
    stages = []
    current = heights
    while current and max(current) > goal:
        if target == "xilinx":
            placements, after = _plan_stage_xilinx(current, goal)
        else:
            placements, after = _plan_stage_generic(current, goal, GENERIC_COUNTERS)
        if sum(after) >= sum(current):
            raise AssertionError(f"compressor planning made no progress at heights {current}")
        stages.append(Stage(tuple(placements), current, after))
        current = after
    rows = max(current, default=0)
    if rows <= 1:
        final_adder = "none"
    elif rows == 2 and final_adder == "ternary" and target == "generic":
        final_adder = "binary"
    return Plan(heights, tuple(stages), final_adder, target)


# --- building the hardware from a plan ------------------------------------------------------

def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


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
        else:
            # Each output bit is a truth table of the (at most six) input bits, so synthesis
            # maps it to one LUT; an arithmetic "+" here would be mapped to carry chains.
            inputs, weights = [], []
            for j, count in enumerate(placement.used):
                inputs += [pools[placement.column + j].pop() for _ in range(count)]
                weights += [1 << j] * count
            index = Cat(*inputs)
            sums = [sum(w for k, w in enumerate(weights) if entry >> k & 1)
                    for entry in range(1 << len(inputs))]
            out = Signal(placement.outputs, name=self.fresh("gpc"))
            for bit in range(placement.outputs):
                table = sum((total >> bit & 1) << entry for entry, total in enumerate(sums))
                self.m.d.comb += out[bit].eq(Const(table, len(sums)).bit_select(index, 1))
            outputs = list(out)
        for c, bit in zip(placement.output_columns(), outputs):
            if c < width:
                new[c].append(bit)

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

    Subclasses build ``self._heap`` from their input ports and call :meth:`_plan`.

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

    def __init__(self, signature, heap, *, pipeline_every=0, target="auto", primitives="auto",
                 final_adder="auto"):
        _check_pipeline_every(pipeline_every)
        _check_choice("target", target, TARGETS)
        _check_choice("primitives", primitives, PRIMITIVES)
        _check_choice("final_adder", final_adder, FINAL_ADDERS)
        self._pipeline_every = pipeline_every
        self._target = target
        self._primitives = primitives
        self._heap = heap
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
        target = self._target
        if target == "auto":
            target = "xilinx" if is_ultrascale(platform) else "generic"
        instance = (self._primitives == "instance" or
                    (self._primitives == "auto" and is_ultrascale(platform)))
        plan = self._plans[target]
        result = build_compressor(
            m, self._heap.columns(), plan, pipeline_every=self._pipeline_every, en=self.en,
            instance=instance, name="ct",
            extra_latency=self.latency - plan.latency(self._pipeline_every))
        m.d.comb += self.o.eq(result)
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
        super().__init__({"i": In(n)}, heap, pipeline_every=pipeline_every, target=target,
                         primitives=primitives, final_adder=final_adder)
        self._bits = bits

    @property
    def n(self):
        return self._n

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self._bits.eq(self.i)
        return m


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
        super().__init__({"i": In(layout)}, heap, pipeline_every=pipeline_every, target=target,
                         primitives=primitives, final_adder=final_adder)
        self._staging = staging

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

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self._staging.eq(self.i)
        return m
