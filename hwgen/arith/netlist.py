"""Compressor-tree netlists: the Amaranth logic of a :class:`~hwgen.arith.planner.Plan`.

:func:`build_compressor` adds a plan's counters, stage by stage, and its final adder to a
module, taking the heap's bits in heap order; the components of :mod:`hwgen.arith.popcount`
and the dot products of :mod:`hwgen.arith.dot_product` elaborate through it.

``generic``
    A LUT counter's output bits are truth tables of its (at most six) input bits, one LUT
    each; a carry-chain counter (:func:`~hwgen.arith.counters.carry_layout`) is a
    subtraction that Yosys maps to a carry chain with the direct bits on the carry mux.
    The final adder is an Amaranth ``+`` (carry chain after synthesis) with the lowest
    two-bit column's second bit as carry-in.

``xilinx``
    ``LUT6_2`` + ``CARRY8`` row compressors (:class:`~hwgen.arith.counters.Chain`), two
    short chains per ``CARRY8`` (``DUAL_CY4``), a longer one on a cascade of
    ``SINGLE_CY8`` cells; full adders in one ``LUT6_2``. The final adder is a ternary adder
    (3 rows, one ``LUT6_2`` per column with the majority passed to the next column) or a
    binary one on ``CARRY8``.

``LUT6_2``/``CARRY8`` are ``Instance`` cells or bit-identical behavioural models
(:mod:`hwgen.vendor.xilinx.primitives`), chosen by ``primitives``
(:func:`resolve_architecture`).

Pipelining: with ``pipeline_every=K > 0``, every heap bit is registered after stages K,
2K, ... where the final adder counts as the last stage; ``latency`` is exact
(:meth:`~hwgen.arith.planner.Plan.latency` counts the same registers).
"""

from amaranth.hdl import Cat, Const, Signal

from .counters import Chain, carry_layout, max_sum_bits
from ..vendor.xilinx.primitives import carry8, is_ultrascale, lut6_2

__all__ = ["TARGETS", "PRIMITIVES", "resolve_architecture", "build_compressor"]

TARGETS = ("auto", "generic", "xilinx")
PRIMITIVES = ("auto", "instance", "behavioural")


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
        """A counter on a carry chain (:func:`~hwgen.arith.counters.carry_layout`): position
        ``k`` adds a direct bit ``d[k]`` and bit ``k`` of the group sum ``v[k]``, the first
        position also the carry-in ``e``.

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
    :meth:`~hwgen.arith.bitheap.BitHeap.columns` returns) to module ``m``. Returns the
    ``width``-bit result.

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
