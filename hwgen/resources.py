"""Resources: what a kernel costs, and the one memory cost model per FPGA family.

Every kernel's ``estimate()`` returns a :class:`Resources`; totals are plain sums
(``sum(stage.estimate() for stage in stages)``), and :meth:`Resources.lut_equivalent`
weighs the kinds against each other where a choice has to be made (datapaths, threshold
units, FIFO storage, foldings).

Memories are costed by :class:`MemoryFamily`, one per FPGA family:

* :data:`ULTRASCALE_PLUS` (the default of every estimate): RAMB18 block RAMs in their
  simple-dual-port aspect ratios 512x36 .. 16Kx1, URAM288 (4K x 72), and LUT RAM in
  RAM64X1S (single port), RAM64M8 / RAM32M16 (one write and one read port) sites;
* :data:`ECP5`: DP16KD block RAMs (512x36 in pseudo-dual-port mode .. 16Kx1);
* :data:`ICE40`: EBR block RAMs of 4 Kbit (256x16 .. 2Kx2).

Block RAMs are counted in the field ``bram18`` whatever the family's block is called.
"""

from dataclasses import dataclass, fields

__all__ = ["Resources", "MemoryFamily", "ULTRASCALE_PLUS", "ECP5", "ICE40", "FAMILIES",
           "BRAM18_LUTS", "DSP_LUT_EQUIVALENT", "memory_cost"]

#: LUTs an 18 Kbit block RAM is worth when two implementations are compared.
BRAM18_LUTS = 64
#: LUTs a DSP48E2 is worth: about the LUT-to-DSP ratio of mid-size UltraScale+ parts (ZU9EG:
#: 274k LUTs, 2,520 DSP48E2), so that a design using both in that ratio runs out of neither
#: first.
DSP_LUT_EQUIVALENT = 100
#: LUTs a URAM288 is worth (16 RAMB18 of storage).
URAM_LUTS = 16 * BRAM18_LUTS


@dataclass(frozen=True)
class Resources:
    """FPGA resources of a piece of hardware (an analytic estimate or a synthesis count).

    Attributes
    ----------
    luts : int
        LUTs used as logic.
    ffs : int
        Flip-flops.
    carry : int
        Carry-chain cells (CARRY8 on UltraScale+).
    lutram : int
        LUTs used as memory.
    bram18 : int
        Block RAMs: 18 Kbit halves on UltraScale+ (a RAMB36 counts 2), DP16KD on ECP5, EBR
        on iCE40.
    uram : int
        UltraRAM blocks (URAM288).
    dsp : int
        DSP slices (DSP48E2 on UltraScale+).

    Examples
    --------
    >>> Resources(luts=10, ffs=4) + Resources(luts=2, dsp=1)
    Resources(luts=12, ffs=4, carry=0, lutram=0, bram18=0, uram=0, dsp=1)
    >>> sum([Resources(luts=1), Resources(luts=2)], Resources()).luts
    3
    """
    luts: int = 0
    ffs: int = 0
    carry: int = 0
    lutram: int = 0
    bram18: int = 0
    uram: int = 0
    dsp: int = 0

    KEYS = ("luts", "ffs", "carry", "lutram", "bram18", "uram", "dsp")

    def __add__(self, other):
        if not isinstance(other, Resources):
            return NotImplemented
        return Resources(*(getattr(self, k) + getattr(other, k) for k in self.KEYS))

    def __radd__(self, other):
        if other == 0:          # sum() starts from 0
            return self
        return NotImplemented

    def __mul__(self, count):
        if isinstance(count, bool) or not isinstance(count, int):
            return NotImplemented
        return Resources(*(getattr(self, k) * count for k in self.KEYS))

    __rmul__ = __mul__

    def __getitem__(self, key):
        if key not in self.KEYS:
            raise KeyError(f"{key!r} is not a resource; resources: {', '.join(self.KEYS)}")
        return getattr(self, key)

    def replace(self, **changes):
        """A copy with some counts changed (``r.replace(ffs=r.ffs - 8)``)."""
        return Resources(**{**self.to_dict(), **changes})

    def to_dict(self):
        """``{"luts": ..., "ffs": ..., ...}`` in :attr:`KEYS` order."""
        return {key: getattr(self, key) for key in self.KEYS}

    def lut_equivalent(self, *, ffs=0.5, bram18=BRAM18_LUTS, dsp=DSP_LUT_EQUIVALENT,
                       uram=URAM_LUTS):
        """One number to compare implementations by: LUTs and LUT RAM count 1, a flip-flop
        ``ffs``, a block RAM ``bram18``, a DSP slice ``dsp``, a URAM ``uram``; carry cells
        come with their LUTs and count 0."""
        return (self.luts + self.lutram + ffs * self.ffs + bram18 * self.bram18
                + dsp * self.dsp + uram * self.uram)


assert tuple(f.name for f in fields(Resources)) == Resources.KEYS


@dataclass(frozen=True)
class MemoryFamily:
    """How one FPGA family stores a ``depth`` x ``width`` memory.

    Attributes
    ----------
    name : str
    block_aspects : tuple of (depth, width)
        The aspect ratios of one block RAM with one write and one read port.
    lutram_depth : int
        Entries of one LUT RAM cell (64 on UltraScale+; 0 where the family has no LUT RAM
        that hwgen uses).
    """
    name: str
    block_aspects: tuple
    lutram_depth: int = 0

    def block_count(self, depth, width):
        """Block RAMs holding ``depth`` x ``width`` bits: the best aspect ratio, blocks side
        by side for width and stacked for depth."""
        if depth < 1 or width < 1:
            return 0
        return min(-(-width // w) * -(-depth // d) for d, w in self.block_aspects)


ULTRASCALE_PLUS = MemoryFamily("ultrascale+", ((512, 36), (1024, 18), (2048, 9), (4096, 4),
                                               (8192, 2), (16384, 1)), lutram_depth=64)
ECP5 = MemoryFamily("ecp5", ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2),
                             (16384, 1)), lutram_depth=16)
ICE40 = MemoryFamily("ice40", ((256, 16), (512, 8), (1024, 4), (2048, 2)))
FAMILIES = {family.name: family for family in (ULTRASCALE_PLUS, ECP5, ICE40)}

_URAM_DEPTH, _URAM_WIDTH = 4096, 72


def lutram_sdp_luts(depth, width):
    """LUTs used as memory for ``depth`` x ``width`` LUT RAM with one write and one read
    port on UltraScale+: banks of 64 entries in RAM64M8 sites (8 LUTs, 64 x 7 bits), the
    last bank in RAM32M16 sites (8 LUTs, 32 x 14 bits) when it holds 32 entries or fewer."""
    if depth < 1 or width < 1:
        return 0
    full, rest = divmod(depth, 64)
    luts = full * 8 * -(-width // 7)
    if rest:
        luts += 8 * -(-width // (14 if rest <= 32 else 7))
    return luts


def lutram_read_mux_luts(depth, width):
    """Logic LUTs joining the read data of LUT RAM banks of 64 entries (a LUT6 joins four
    banks: one per bit per three banks beyond the first)."""
    banks = -(-depth // 64)
    return width * -(-(banks - 1) // 3) if banks > 1 else 0


def memory_cost(depth, width, style, *, ports="rom", family=ULTRASCALE_PLUS):
    """Resources of a ``depth`` x ``width`` memory (calibrated with Yosys on UltraScale+).

    Parameters
    ----------
    style : ``"registers"``, ``"lutram"``, ``"bram"`` or ``"uram"``
    ports : ``"rom"``, ``"single"``, ``"sdp"`` or ``"config"``
        ``rom``: read-only, one registered read port (a table in logic unless in block
        RAM: ``width`` LUTs per 64 entries, nothing for one or two entries, which synthesis
        folds into what reads them); ``single``: one port that writes and reads at one
        address (RAM64X1S: one LUT per bit per 64 entries); ``sdp``: one write and one
        read port (RAM64M8/RAM32M16 sites, plus the multiplexer joining the banks);
        ``config``: a stream read port plus a configuration write and read-back port
        (two ports' worth of RAM64 sites; registers with a 4:1-per-LUT read multiplexer).
    family : MemoryFamily
        Block RAMs are counted in its aspect ratios.
    """
    if depth < 1 or width < 1:
        return Resources()
    if style == "bram":
        return Resources(bram18=family.block_count(depth, width))
    if style == "uram":
        return Resources(uram=-(-width // _URAM_WIDTH) * -(-depth // _URAM_DEPTH))
    if style == "lutram":
        if ports == "config":
            return Resources(lutram=2 * width * -(-depth // 64))
        if ports == "single":
            return Resources(lutram=width * -(-depth // 64))
        if ports == "sdp":
            return Resources(lutram=lutram_sdp_luts(depth, width),
                             luts=lutram_read_mux_luts(depth, width))
    if style == "registers" and ports == "config":
        return Resources(ffs=depth * width, luts=width * -(-(depth - 1) // 4))
    if style == "registers" and ports == "sdp":
        return Resources(ffs=depth * width,
                         luts=width * -(-(depth - 1) // 3) if depth > 1 else 0)
    # a read-only table in logic
    return Resources(luts=width * -(-depth // 64)) if depth > 2 else Resources()
