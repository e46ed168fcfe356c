"""Xilinx UltraScale/UltraScale+ fabric primitives: ``LUT6_2`` and ``CARRY8``.

Each helper adds one primitive to a module in one of two forms that compute the same
bits:

* ``instance=True``: an ``Instance`` of the unisim cell, for Vivado and for Yosys's
  ``synth_xilinx`` (which keeps it as is);
* ``instance=False``: a behavioural Amaranth model built from the very same ``INIT``
  truth table and carry equations (UG574), for Amaranth's simulator and generic Verilog.

A ``LUT6_2`` is used here in dual-output mode: ``I5`` is tied high, so ``O6`` and ``O5``
are two functions of the same five inputs ``I0..I4``.
"""

from amaranth.hdl import Array, Cat, Const, Instance, Mux, Signal, Value

__all__ = ["lut6_2_init", "lut6_2", "carry8", "is_ultrascale"]


def is_ultrascale(platform):
    """True when ``platform`` is an Amaranth Xilinx platform of the UltraScale or
    UltraScale+ families (the ones with ``LUT6_2``/``CARRY8``/``DSP48E2``)."""
    family = getattr(platform, "family", None)
    return isinstance(family, str) and family.startswith("ultrascale")


def lut6_2_init(o6, o5, n_inputs):
    """64-bit ``INIT`` for dual-output use (``I5`` = 1) from two Python functions of an
    ``n_inputs``-tuple of bits (``I0`` first)."""
    if not 0 <= n_inputs <= 5:
        raise ValueError(f"a dual-output LUT6_2 has at most 5 inputs, not {n_inputs}")
    init = 0
    for index in range(32):
        bits = tuple(index >> k & 1 for k in range(n_inputs))
        if any(index >> k & 1 for k in range(n_inputs, 5)):
            continue  # unused inputs are tied low; those entries are never read
        init |= (int(bool(o5(bits))) << index) | (int(bool(o6(bits))) << (32 + index))
    return init


def lut6_2(m, inputs, o6, o5, *, instance, name):
    """Add a dual-output ``LUT6_2`` computing ``o6(bits)`` and ``o5(bits)`` of ``inputs``.

    Returns the ``(O6, O5)`` signals.
    """
    inputs = [Value.cast(bit) for bit in inputs]
    init = lut6_2_init(o6, o5, len(inputs))
    padded = inputs + [Const(0, 1)] * (5 - len(inputs))
    out6 = Signal(name=f"{name}_o6")
    out5 = Signal(name=f"{name}_o5")
    if instance:
        m.submodules[name] = Instance(
            "LUT6_2", p_INIT=Const(init, 64),
            i_I0=padded[0], i_I1=padded[1], i_I2=padded[2], i_I3=padded[3], i_I4=padded[4],
            i_I5=Const(1, 1), o_O6=out6, o_O5=out5)
    else:
        index = Cat(*padded)
        m.d.comb += [
            out6.eq(Const(init >> 32, 32).bit_select(index, 1)),
            out5.eq(Const(init & 0xFFFF_FFFF, 32).bit_select(index, 1)),
        ]
    return out6, out5


def lut6_rom(m, column, depth, address, *, name):
    """One bit of a ``depth``-word read-only table as ``LUT6`` primitives: bit ``k`` of
    ``column`` is the value at address ``k``. One ``LUT6`` per 64 words, selected by the
    address bits above the low six (synthesis makes MUXF7/MUXF8 of that). Returns the bit."""
    address = Value.cast(address)
    low = [address[k] if k < len(address) else Const(0, 1) for k in range(6)]
    outputs = []
    for chunk in range(-(-depth // 64)):
        out = Signal(name=f"{name}_c{chunk}")
        m.submodules[f"{name}_c{chunk}"] = Instance(
            "LUT6", p_INIT=Const(column >> (64 * chunk) & ((1 << 64) - 1), 64),
            i_I0=low[0], i_I1=low[1], i_I2=low[2], i_I3=low[3], i_I4=low[4], i_I5=low[5],
            o_O=out)
        outputs.append(out)
    if len(outputs) == 1:
        return outputs[0]
    return Array(outputs)[address[6:]]


def carry8(m, ci, di, s, *, instance, name, ci_top=None):
    """Add a ``CARRY8``. ``di`` and ``s`` are lists of 8 one-bit values.

    With ``ci_top`` given, the cell runs as two independent 4-bit chains
    (``CARRY_TYPE="DUAL_CY4"``): positions 0-3 start from ``ci``, 4-7 from ``ci_top``.
    Returns the ``(O, CO)`` 8-bit signals.
    """
    if len(di) != 8 or len(s) != 8:
        raise ValueError("CARRY8 takes exactly 8 DI and 8 S bits")
    dual = ci_top is not None
    out = Signal(8, name=f"{name}_o")
    carry = Signal(8, name=f"{name}_co")
    if instance:
        m.submodules[name] = Instance(
            "CARRY8", p_CARRY_TYPE="DUAL_CY4" if dual else "SINGLE_CY8",
            i_CI=ci, i_CI_TOP=ci_top if dual else Const(0, 1),
            i_DI=Cat(*di), i_S=Cat(*s), o_O=out, o_CO=carry)
    else:
        carry_in = [ci] + [carry[k - 1] for k in range(1, 8)]
        if dual:
            carry_in[4] = ci_top
        for k in range(8):
            m.d.comb += [
                carry[k].eq(Mux(s[k], carry_in[k], di[k])),
                out[k].eq(s[k] ^ carry_in[k]),
            ]
    return out, carry
