"""Counters of a compressor tree: what they take, what they put back and what they cost.

A counter takes bits from a bit heap and puts back fewer bits that have the same sum, as a
binary number. Counters are data here: their inputs per column, their outputs and their
cost in LUTs, hence their *efficiency* (bits removed per LUT). The planner
(:mod:`hwgen.arith.planner`) places them on a heap; the netlist builder
(:mod:`hwgen.arith.netlist`) turns the placements into logic. Each architecture has its own:

``generic``
    Generalized parallel counters (GPCs) held as data (:data:`GENERIC_COUNTERS`), in plain
    Amaranth logic and arithmetic. *LUT counters* — the full adder (3;2), (6;3), (1,5;3) and
    (2,3;3) — cost one 6-LUT per output bit (efficiency at most 1.0). *Carry-chain
    counters* (:func:`carry_layout`) are small adders that synthesis maps to a carry chain
    with one LUT per position: position ``k`` adds a direct bit ``d[k]`` (on the carry mux)
    and bit ``k`` of the sum of up to five other bits, computed inside the position's LUT,
    and position 0 takes one more bit as carry-in. ``(1,1,7;4)c`` thus sums nine bits into
    four with three LUTs (efficiency 5/3), ``(7;3)c`` seven bits of one column into three
    (4/3). A placed counter (:class:`GPC`) may be partly filled, its output count shrinking
    to what the used inputs can sum to.

``xilinx``
    UltraScale(+) ``LUT6_2`` + ``CARRY8`` row compressors (:class:`Chain`): in the style of
    Kumm/Zipf's carry-chain 4:2 compressors and Preusser's row-based atoms. One chain
    position per column takes four bits ``w, x, y, z`` of its column and the carry from the
    position below; the LUT computes ``P = w^x^y^z`` (``O6``) and a second output ``D``
    (``O5``), and the carry mux picks ``z`` (``DI``) when ``P`` is 0. Then
    ``w+x+y+z+cin = S + 2*(D + cout)`` with ``S = P ^ cin``, so each LUT removes two bits
    (efficiency 2.0); the first position takes a fifth bit through ``CI``. Columns of three
    bits use a full adder in one ``LUT6_2`` (a :class:`GPC` of kind ``"lut6_2"``).
"""

import functools
from dataclasses import dataclass

__all__ = ["Counter", "GENERIC_COUNTERS", "CarryLayout", "carry_layout", "MAX_CARRY_GROUP",
           "max_sum_bits", "GPC", "Chain"]


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


@functools.lru_cache(maxsize=4096)
def max_sum_bits(inputs):
    """Output bits of a counter with ``inputs[j]`` bits in column ``j`` (a tuple)."""
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


# --- placed counters: the bits a counter takes from the columns at and above its own -----

@dataclass(frozen=True)
class GPC:
    """A generic counter placed at ``column``, taking ``used[j]`` bits from column
    ``column + j``. Its outputs land in ``column .. column + outputs - 1``."""
    column: int
    used: tuple
    kind: str = "lut"  # "lut": generic logic; "carry": generic logic on a carry chain
                       # (:func:`carry_layout`); "lut6_2": full adder in one LUT6_2

    @functools.cached_property
    def outputs(self):
        return max_sum_bits(self.used)

    @functools.cached_property
    def luts(self):
        if self.kind == "carry":
            return carry_layout(self.used).luts
        return 1 if self.kind == "lut6_2" else self.outputs

    @functools.cached_property
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

