"""Board targets: a name -> the amaranth-boards platform and what a network needs around it.

* ``icebreaker``: iCE40UP5K-SG48, 12 MHz, UART host link (FT2232H); 5,280 LCs, 30 BRAM
  (4 Kb), 8 DSP (SB_MAC16); yowasp Yosys/nextpnr; programmed with ``iceprog``.
* ``ulx3s-85f``: LFE5U-85F-BG381, 25 MHz, UART host link (FT231X, up to 3 Mbaud); 83,640 LUTs,
  208 BRAM (18 Kb), 156 DSP (18x18); yowasp Yosys/nextpnr; ``openFPGALoader``.
* ``kcu105``: XCKU040 (Kintex UltraScale), 125 MHz, AXI4-Stream top for the user's own DMA;
  242,400 LUTs, 600 BRAM (36 Kb), 1,920 DSP48E2; Vivado; ``openocd``.
* ``rfsoc4x2``: XCZU48DR (Zynq UltraScale+ RFSoC), 100 MHz, AXI4-Stream top; 425,280 LUTs,
  1,080 BRAM (36 Kb), 4,272 DSP48E2; Vivado; ``xsdb``.

On the Xilinx boards hwgen's kernels are elaborated with the board's platform, so they
instantiate ``DSP48E2`` (packed MACs), ``LUT6_2`` and ``CARRY8``.

:func:`get_target` also takes an amaranth ``Platform`` subclass (or instance) of one's own:
its device family picks the toolchain (iCE40, ECP5: yowasp; Xilinx: Vivado), its
``default_clk`` resource the clock, a ``uart`` resource (if it has one) the host link;
resources are unknown (None) unless the device is one of the above.
"""

import dataclasses
import importlib

__all__ = ["Target", "TARGETS", "get_target", "target_names"]


@dataclasses.dataclass(frozen=True)
class Target:
    """What hwgen knows about a board.

    Attributes
    ----------
    name : str
    platform : type
        The amaranth platform class (``platform_class()`` makes one).
    description : str
    device : str
        Device name, as the vendor writes it.
    family : str
        ``"ice40"``, ``"ecp5"`` or ``"xilinx"``.
    clock_mhz : float
        The board's oscillator.
    host_link : str
        ``"uart"`` (the :mod:`boards.hostlink` shell) or ``"axis"`` (an AXI4-Stream top for the
        user's own DMA).
    uart_bridge, max_baud, default_baud
        The USB-UART bridge and the rates it supports (``uart`` host link only).
    luts, ffs, bram, dsp : int or None
        Logic cells/LUTs, flip-flops, block RAMs (of ``bram_kbit`` each), DSP blocks.
    lut_name : str
        What the vendor calls a logic cell (``"LCs"``, ``"LUTs"``).
    toolchain : str
        ``"yowasp"`` (Yosys + nextpnr from PyPI) or ``"vivado"``.
    programmer : str
        The program the platform's ``toolchain_program`` runs.
    """
    name: str
    platform: type
    description: str
    device: str
    family: str
    clock_mhz: float
    host_link: str
    luts: "int | None"
    ffs: "int | None"
    bram: "int | None"
    bram_kbit: "int | None"
    dsp: "int | None"
    lut_name: str
    toolchain: str
    programmer: str
    uart_bridge: "str | None" = None
    max_baud: "int | None" = None
    default_baud: "int | None" = None

    def platform_instance(self):
        return self.platform() if isinstance(self.platform, type) else self.platform

    @property
    def resources_text(self):
        def count(n):
            return "?" if n is None else f"{n:,}"
        return (f"{count(self.luts)} {self.lut_name}, {count(self.ffs)} FFs, {count(self.bram)} "
                f"BRAM ({self.bram_kbit or '?'} Kb), {count(self.dsp)} DSP")


def _platform(module, name):
    """An amaranth-boards platform class, imported when first asked for."""
    return getattr(importlib.import_module(f"amaranth_boards.{module}"), name)


def _targets():
    return {
        "icebreaker": Target(
            name="icebreaker", platform=_platform("icebreaker", "ICEBreakerPlatform"),
            description="1BitSquared iCEBreaker", device="iCE40UP5K", family="ice40",
            clock_mhz=12.0, host_link="uart", luts=5280, ffs=5280, bram=30, bram_kbit=4, dsp=8,
            lut_name="LCs", toolchain="yowasp", programmer="iceprog",
            uart_bridge="FT2232H", max_baud=12_000_000, default_baud=1_000_000),
        "ulx3s-85f": Target(
            name="ulx3s-85f", platform=_platform("ulx3s", "ULX3S_85F_Platform"),
            description="Radiona ULX3S (85F)", device="LFE5U-85F", family="ecp5",
            clock_mhz=25.0, host_link="uart", luts=83640, ffs=83640, bram=208, bram_kbit=18,
            dsp=156, lut_name="LUTs", toolchain="yowasp", programmer="openFPGALoader",
            uart_bridge="FT231X", max_baud=3_000_000, default_baud=1_000_000),
        "kcu105": Target(
            name="kcu105", platform=_platform("kcu105", "KCU105Platform"),
            description="AMD Kintex UltraScale KCU105", device="XCKU040", family="xilinx",
            clock_mhz=125.0, host_link="axis", luts=242400, ffs=484800, bram=600, bram_kbit=36,
            dsp=1920, lut_name="LUTs", toolchain="vivado", programmer="openocd"),
        "rfsoc4x2": Target(
            name="rfsoc4x2", platform=_platform("rfsoc4x2", "RFSoC4x2Platform"),
            description="RFSoC 4x2 (Zynq UltraScale+ RFSoC)", device="XCZU48DR",
            family="xilinx", clock_mhz=100.0, host_link="axis", luts=425280, ffs=850560,
            bram=1080, bram_kbit=36, dsp=4272, lut_name="LUTs", toolchain="vivado",
            programmer="xsdb"),
    }


_cache = {}


def _registry():
    if not _cache:
        _cache.update(_targets())
    return _cache


#: Names of the built-in targets.
TARGETS = ("icebreaker", "ulx3s-85f", "kcu105", "rfsoc4x2")


def target_names():
    return TARGETS


def _family_of(platform):
    from amaranth.vendor import LatticeICE40Platform, LatticeECP5Platform, XilinxPlatform
    if isinstance(platform, LatticeICE40Platform):
        return "ice40"
    if isinstance(platform, LatticeECP5Platform):
        return "ecp5"
    if isinstance(platform, XilinxPlatform):
        return "xilinx"
    return None


def _from_platform(platform):
    from amaranth.build import Platform
    instance = platform() if isinstance(platform, type) else platform
    if not isinstance(instance, Platform):
        raise TypeError(f"board must be a target name ({', '.join(TARGETS)}) or an amaranth "
                        f"Platform subclass, not {platform!r}")
    family = _family_of(instance)
    if family is None:
        raise ValueError(f"{type(instance).__name__}: hwgen builds for iCE40, ECP5 and Xilinx "
                         f"platforms only")
    known = {t.device.lower(): t for t in _registry().values()}
    same = known.get(str(instance.device).lower())
    clock_mhz = None
    if instance.default_clk is not None:
        clock_mhz = instance.default_clk_frequency / 1e6
    has_uart = any(r.name == "uart" for r in instance.resources.values()) \
        if isinstance(instance.resources, dict) else False
    host_link = "axis" if family == "xilinx" or not has_uart else "uart"
    return Target(
        name=type(instance).__name__, platform=type(instance), description=type(instance).__doc__
        and type(instance).__doc__.strip().splitlines()[0] or type(instance).__name__,
        device=str(instance.device), family=family, clock_mhz=clock_mhz, host_link=host_link,
        luts=same and same.luts, ffs=same and same.ffs, bram=same and same.bram,
        bram_kbit=same and same.bram_kbit, dsp=same and same.dsp,
        lut_name="LCs" if family == "ice40" else "LUTs",
        toolchain="vivado" if family == "xilinx" else "yowasp",
        programmer=same.programmer if same else "?",
        uart_bridge=None, max_baud=3_000_000 if host_link == "uart" else None,
        default_baud=115_200 if host_link == "uart" else None)


def get_target(board):
    """The :class:`Target` for a name (:data:`TARGETS`), a ``Target``, or an amaranth
    ``Platform`` subclass or instance."""
    if isinstance(board, Target):
        return board
    if isinstance(board, str):
        registry = _registry()
        if board not in registry:
            raise ValueError(f"unknown board {board!r}; known boards: {', '.join(TARGETS)} (or "
                             f"pass an amaranth Platform subclass)")
        return registry[board]
    return _from_platform(board)
