"""Memory builders shared by the kernels; their costs are :func:`hwgen.resources.memory_cost`.

:func:`read_only_memory` builds a table with a registered read port (weights, thresholds).
Styles:

``registers``
    Constants selected by a multiplexer into a register.
``lutram``
    One truth table per data bit, indexed by the address
    (``Const(column).bit_select(address, 1)``): synthesis maps each to exactly one LUT6 per
    64 words (with MUXF7/MUXF8 above), where Yosys' own ROM mapping of a ``lib.memory``
    memory takes about 3.5 LUTs per bit at 64 words when the address comes from a counter.
    (Yosys also rejects ``ram_style = "distributed"`` on a memory that is never written.)
    With ``instance=True`` (Xilinx) the tables are ``LUT6`` primitives.
``bram``
    A ``lib.memory`` memory without write port, ``ram_style = "block"``.

:func:`auto_style` is the one rule for ``mem_style="auto"`` by depth.
"""

from amaranth.hdl import Array, Cat, Const, Shape, Signal
from amaranth.lib import memory

from .vendor.xilinx.primitives import lut6_rom

__all__ = ["read_only_memory", "auto_style", "RAM_STYLE"]

#: The ``ram_style`` attribute (understood by Vivado and Yosys) of each memory style.
RAM_STYLE = {"registers": "registers", "lutram": "distributed", "bram": "block"}


def auto_style(depth, *, registers_up_to=1, lutram_up_to=256):
    """``mem_style="auto"`` for a table of ``depth`` entries: registers up to
    ``registers_up_to`` entries, LUT RAM (or logic) up to ``lutram_up_to``, block RAM above."""
    if depth <= registers_up_to:
        return "registers"
    return "lutram" if depth <= lutram_up_to else "bram"


def read_only_memory(m, name, init, shape, style, address, enable, instance=False):
    """A constant table read at ``address`` into a register when ``enable`` (see the module
    documentation for the styles). Returns the registered read data."""
    data = Signal(shape, name=f"{name}_data")
    if style == "registers":
        table = Array(Const(value, shape) for value in init)
        with m.If(enable):
            m.d.sync += data.eq(table[address] if len(init) > 1 else table[0])
        return data
    if style == "lutram":
        width = Shape.cast(shape).width
        words = [int(value) & ((1 << width) - 1) for value in init]
        columns = [sum((word >> bit & 1) << index for index, word in enumerate(words))
                   for bit in range(width)]
        if instance and len(words) > 1:
            bits = [lut6_rom(m, column, len(words), address, name=f"{name}_b{bit}")
                    for bit, column in enumerate(columns)]
        else:
            bits = [Const(column, len(words)).bit_select(address, 1) if len(words) > 1
                    else Const(column, 1) for column in columns]
        with m.If(enable):
            m.d.sync += data.eq(Cat(*bits))
        return data
    mem = memory.Memory(shape=shape, depth=len(init), init=init, attrs={"ram_style": "block"})
    m.submodules[name] = mem
    read = mem.read_port()
    m.d.comb += [read.addr.eq(address), read.en.eq(enable), data.eq(read.data)]
    return data
