"""The UltraScale(+) ``DSP48E2`` slice as an Amaranth component.

:class:`DSP48E2` has the primitive's ports and attributes that packed low-precision MACs use,
and two implementations chosen in ``elaborate()``:

* an ``Instance("DSP48E2")`` (Vivado, Yosys ``synth_xilinx``), every port connected at its
  full width;
* a behavioural Amaranth model with the same ports, attributes and latency, for Amaranth's
  simulator, Verilator and generic Verilog (Yosys has no ``DSP48E2`` simulation model).

Data path of the model (AMD UG579, ch. 2)::

    A[29:0] -> A1 -> A2 --+-----------------------------------------> X = A:B (OPMODE[1:0]=11)
    B[17:0] -> B1 -> B2 --+
                          |  INMODE[0]/[4]: A1 or A2, B1 or B2; INMODE[1]: that operand = 0
    D[26:0] -> D --> pre-adder AD = (INMODE[2] ? D : 0) +/- A[26:0] (or B, PREADDINSEL)
                          |      INMODE[3]: subtract; AD register (ADREG)
                 AMULTSEL/BMULTSEL -> 27 x 18 signed multiplier -> M (MREG)
    W (0, P, RND, C), X (0, M, P, A:B), Y (0, M, all ones, C), Z (0, PCIN, P, C, PCIN>>17,
    P>>17)  ->  ALU (ALUMODE)  ->  P (PREG) = PCOUT

The multiplier's two partial products are modelled as one term: ``X = M`` carries the whole
sign-extended 45-bit product and ``Y = M`` adds 0, so ``X + Y`` equals the product exactly as
it does for the real part's two partial products. UG579 requires X and Y to select M together
(``OPMODE[3:0] = 0101``); selecting M on one of them alone is not meaningful on the part and
the model does not mimic it.

The ALU is the carry-save structure of the slice: ``ALUMODE[0]`` inverts Z, ``ALUMODE[1]``
inverts the result, ``ALUMODE[2]``/``[3]`` select the two-input logic functions; so ``0000``
is ``Z + W + X + Y + CIN``, ``0011`` is ``Z - (W + X + Y + CIN)``, ``0001`` is
``-Z + (W + X + Y + CIN) - 1``, ``0010`` is ``-Z - W - X - Y - CIN - 1``, and ``01xx``/``11xx``
are UG579's XOR/XNOR/AND/OR/NAND/NOR family (with ``W = 0`` and Y = 0 or all ones, as UG579
requires; the carry-in is ignored there). This structure is the one of AMD's unisim simulation
model, so ``10xx`` (undefined in UG579) gives what that model gives.

Carry-in (``CARRYINSEL``): ``000`` CARRYIN, ``001`` ~PCIN[47], ``010`` CARRYCASCIN (not a port
here: tied low on both paths, so 0), ``011`` PCIN[47], ``100`` this slice's registered
CARRYCASCOUT (carry out of the 48-bit sum, inverted when ``ALUMODE[1:0] = 11``; UG579 defines
it for adds and subtracts, not after multiplies or logic operations), ``101`` ~P[47], ``110``
``A[26] XNOR B[17]`` of the multiplier operands (registered with CEM when ``MREG = 1``, reset
by RSTALLCARRYIN), ``111`` P[47].

Registers: each ``*REG`` attribute enables a register with a synchronous reset (priority) and a
clock enable, as listed in the parameter descriptions. They are reset-less as far as the
clock domain is concerned (the primitive has no connection to the domain's reset; its
registers start at 0 after configuration), so only the ``RST*`` ports clear them. As in AMD's
simulation model, the P feedback (W/X/Z = P, ``CARRYINSEL`` 100/101/111) comes from the P
register: with ``PREG = 0`` it reads 0 (UG579 requires ``PREG = 1`` for feedback). ``DREG``/``ADREG`` only
matter when the pre-adder feeds the multiplier (``AMULTSEL`` or ``BMULTSEL`` = "AD").

Not modelled (fixed on the ``Instance`` too): ``A_INPUT``/``B_INPUT`` = "DIRECT" (no ACIN/BCIN
cascade), ``USE_SIMD`` = "ONE48", no pattern detector (``USE_PATTERN_DETECT`` = "NO_PATDET"),
no wide XOR, no MULTSIGNIN/CARRYCASCIN (tied low); outputs other than P and PCOUT (ACOUT,
BCOUT, CARRYOUT, CARRYCASCOUT, MULTSIGNOUT, PATTERN*DETECT, OVERFLOW, UNDERFLOW, XOROUT) are
left unconnected.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...checks import check_int, check_one_of
from .primitives import is_ultrascale

__all__ = ["DSP48E2", "PRIMITIVES", "CLOCK_ENABLES", "RESETS", "OPMODE_MULTIPLY"]

PRIMITIVES = ("auto", "instance", "behavioural")

#: Clock-enable ports (default 1 when left undriven).
CLOCK_ENABLES = ("CEA1", "CEA2", "CEB1", "CEB2", "CEC", "CED", "CEAD", "CEM", "CEP", "CECTRL",
                 "CEINMODE", "CEALUMODE", "CECARRYIN")
#: Synchronous reset ports (default 0).
RESETS = ("RSTA", "RSTB", "RSTC", "RSTD", "RSTM", "RSTP", "RSTCTRL", "RSTINMODE",
          "RSTALLCARRYIN", "RSTALUMODE")

_DATA_PORTS = {"A": 30, "B": 18, "C": 48, "D": 27, "PCIN": 48}
_CONTROL_PORTS = {"OPMODE": 9, "INMODE": 5, "ALUMODE": 4, "CARRYIN": 1, "CARRYINSEL": 3}
#: ``OPMODE`` when left undriven: W = 0, Z = 0, X = Y = M, i.e. ``P = A * B``.
OPMODE_MULTIPLY = 0b00_000_01_01

_REGISTER_ATTRIBUTES = {
    "AREG": (0, 1, 2), "BREG": (0, 1, 2), "CREG": (0, 1), "DREG": (0, 1), "ADREG": (0, 1),
    "MREG": (0, 1), "PREG": (0, 1), "OPMODEREG": (0, 1), "INMODEREG": (0, 1),
    "ALUMODEREG": (0, 1), "CARRYINREG": (0, 1), "CARRYINSELREG": (0, 1),
}
_STRING_ATTRIBUTES = {
    "AMULTSEL": ("A", "AD"), "BMULTSEL": ("B", "AD"), "PREADDINSEL": ("A", "B"),
    "USE_MULT": ("MULTIPLY", "NONE"),
}
_MASK48 = (1 << 48) - 1


class DSP48E2(wiring.Component):
    """A ``DSP48E2`` slice: ``Instance`` on UltraScale(+), bit-accurate model elsewhere.

    See the module documentation for the data path and what the model covers. Attribute names
    and meanings are those of AMD UG579; all are keyword-only, validated at construction, and
    defaults are the primitive's own.

    Parameters
    ----------
    AREG, BREG : 0, 1 or 2
        A/B input pipeline depth. 1 uses the A2/B2 register (``CEA2``/``CEB2``); 2 adds A1/B1
        in front of it (``CEA1``/``CEB1``). ``INMODE[0]``/``INMODE[4]`` pick A1/B1 instead of
        A2/B2 for the multiplier and pre-adder (A1/B1 load every ``CEA1``/``CEB1`` cycle when
        ``AREG``/``BREG`` >= 1 and read 0 when it is 0). Reset by ``RSTA``/``RSTB``.
    CREG : 0 or 1
        C input register (``CEC``, ``RSTC``).
    DREG : 0 or 1
        D input register (``CED``, ``RSTD``); only used when the pre-adder feeds the multiplier.
    ADREG : 0 or 1
        Pre-adder output register (``CEAD``, ``RSTD``); only used with the pre-adder.
    MREG : 0 or 1
        Multiplier output register (``CEM``, ``RSTM``). Must be 0 with ``USE_MULT="NONE"``.
    PREG : 0 or 1
        Output register (``CEP``, ``RSTP``); P feedback requires 1.
    OPMODEREG, CARRYINSELREG : 0 or 1
        ``OPMODE``/``CARRYINSEL`` registers (``CECTRL``, ``RSTCTRL``).
    INMODEREG : 0 or 1
        ``INMODE`` register (``CEINMODE``, ``RSTINMODE``).
    ALUMODEREG : 0 or 1
        ``ALUMODE`` register (``CEALUMODE``, ``RSTALUMODE``).
    CARRYINREG : 0 or 1
        ``CARRYIN`` register (``CECARRYIN``, ``RSTALLCARRYIN``).
    AMULTSEL : "A" or "AD"
        Multiplier's 27-bit operand: ``A[26:0]`` or the pre-adder output.
    BMULTSEL : "B" or "AD"
        Multiplier's 18-bit operand: ``B`` or the pre-adder output's 18 LSBs.
    PREADDINSEL : "A" or "B"
        Pre-adder's second operand: ``A[26:0]`` or ``B`` sign-extended to 27 bits;
        ``INMODE[1]`` forces that operand to 0 (also on its direct way to the multiplier).
    USE_MULT : "MULTIPLY" or "NONE"
        "NONE" ties the multiplier output to 0 ("DYNAMIC" is not supported).
    RND : int
        48-bit rounding constant selected by ``OPMODE[8:7] = 10`` (0 <= RND < 2**48).
    primitives : "auto", "instance" or "behavioural"
        Implementation: "auto" takes the ``Instance`` on UltraScale(+) platforms
        (:func:`hwgen.vendor.xilinx.primitives.is_ultrascale`) and the behavioural model otherwise (also when
        ``platform`` is None, in simulation and for generic Verilog).
    domain : str
        Clock domain of the registers (only its clock is used).

    Members
    -------
    A : In(signed(30))
        The multiplier uses ``A[26:0]`` as a 27-bit signed number; X = A:B uses all 30 bits.
    B : In(signed(18))
    C : In(signed(48))
    D : In(signed(27))
    PCIN : In(signed(48))
        Cascade input (Z = PCIN or PCIN >> 17); connect it to another slice's ``PCOUT``.
    OPMODE : In(9)
        ``{W[8:7], Z[6:4], Y[3:2], X[1:0]}``; left undriven it is :data:`OPMODE_MULTIPLY`.
    INMODE : In(5)
    ALUMODE : In(4)
    CARRYIN : In(1)
    CARRYINSEL : In(3)
    CEA1, CEA2, CEB1, CEB2, CEC, CED, CEAD, CEM, CEP : In(1, init=1)
        Clock enables of the data registers; 1 when left undriven.
    CECTRL, CEINMODE, CEALUMODE, CECARRYIN : In(1, init=1)
        Clock enables of the control registers; 1 when left undriven.
    RSTA, RSTB, RSTC, RSTD, RSTM, RSTP, RSTCTRL, RSTINMODE, RSTALLCARRYIN, RSTALUMODE : In(1)
        Synchronous resets (they win over the clock enables).
    P : Out(signed(48))
    PCOUT : Out(signed(48))
        Equal to ``P``; for the dedicated cascade route to the next slice's ``PCIN``.

    Raises
    ------
    ValueError
        For an attribute value outside the supported ones, naming the attribute, the value
        and the supported values.
    """

    def __init__(self, *, AREG=1, BREG=1, CREG=1, DREG=1, ADREG=1, MREG=1, PREG=1,
                 OPMODEREG=1, INMODEREG=1, ALUMODEREG=1, CARRYINREG=1, CARRYINSELREG=1,
                 AMULTSEL="A", BMULTSEL="B", PREADDINSEL="A", USE_MULT="MULTIPLY", RND=0,
                 primitives="auto", domain="sync"):
        attributes = dict(
            AREG=AREG, BREG=BREG, CREG=CREG, DREG=DREG, ADREG=ADREG, MREG=MREG, PREG=PREG,
            OPMODEREG=OPMODEREG, INMODEREG=INMODEREG, ALUMODEREG=ALUMODEREG,
            CARRYINREG=CARRYINREG, CARRYINSELREG=CARRYINSELREG,
            AMULTSEL=AMULTSEL, BMULTSEL=BMULTSEL, PREADDINSEL=PREADDINSEL, USE_MULT=USE_MULT)
        for name, valid in {**_REGISTER_ATTRIBUTES, **_STRING_ATTRIBUTES}.items():
            check_one_of(name, attributes[name], valid)
        if USE_MULT == "NONE" and MREG != 0:
            raise ValueError(f"MREG must be 0 with USE_MULT='NONE', not {MREG!r}")
        check_int("RND", RND, 0, _MASK48)
        check_one_of("primitives", primitives, PRIMITIVES)
        if not isinstance(domain, str):
            raise TypeError(f"domain must be a clock domain name, not {domain!r}")
        if not domain:
            raise ValueError(f"domain must be a clock domain name, not {domain!r}")
        self._attributes = attributes
        self._rnd = RND
        self._primitives = primitives
        self._domain = domain

        members = {name: In(signed(width)) for name, width in _DATA_PORTS.items()}
        members.update({name: In(width) for name, width in _CONTROL_PORTS.items()})
        members["OPMODE"] = In(9, init=OPMODE_MULTIPLY)
        members.update({name: In(1, init=1) for name in CLOCK_ENABLES})
        members.update({name: In(1) for name in RESETS})
        members["P"] = Out(signed(48))
        members["PCOUT"] = Out(signed(48))
        super().__init__(members)

    # --- description ------------------------------------------------------------------------

    @property
    def attributes(self):
        """The UG579 attributes as a dict (``RND`` included)."""
        return {**self._attributes, "RND": self._rnd}

    @property
    def uses_preadder(self):
        """True when the pre-adder feeds the multiplier (then ``DREG``/``ADREG`` apply)."""
        a = self._attributes
        return (a["USE_MULT"] != "NONE"
                and (a["AMULTSEL"] == "AD" or a["BMULTSEL"] == "AD"))

    @property
    def input_latency(self):
        """Cycles from each data input to ``P``, as a dict.

        ``"A"``, ``"B"``, ``"D"``: through the multiplier (A2/B2 selected, i.e.
        ``INMODE[0] = INMODE[4] = 0``): input registers, plus ``ADREG`` where the operand goes
        through the pre-adder, plus ``MREG + PREG``. Where an operand reaches the multiplier
        both directly and through the pre-adder (e.g. ``AMULTSEL="A"``, ``BMULTSEL="AD"``,
        ``PREADDINSEL="A"``) the longer path counts. ``None`` for an input that does not reach
        the multiplier (D without the pre-adder; A, B, D with ``USE_MULT="NONE"``).
        ``"AB"``: the ``X = A:B`` path, ``max(AREG, BREG) + PREG``; ``"C"``: ``CREG + PREG``;
        ``"PCIN"``: ``PREG``.
        """
        a = self._attributes
        preadd = self.uses_preadder
        adreg = a["ADREG"] if preadd else 0
        dreg = a["DREG"] if preadd else 0
        tail = a["MREG"] + a["PREG"]
        paths = {"A": [], "B": [], "D": []}
        if a["USE_MULT"] != "NONE":
            if a["AMULTSEL"] == "A":
                paths["A"].append(a["AREG"])
            if a["BMULTSEL"] == "B":
                paths["B"].append(a["BREG"])
            if preadd:
                paths["D"].append(dreg + adreg)
                other = "A" if a["PREADDINSEL"] == "A" else "B"
                paths[other].append(a[f"{other}REG"] + adreg)
        latency = {port: (max(stages) + tail if stages else None)
                   for port, stages in paths.items()}
        latency["AB"] = max(a["AREG"], a["BREG"]) + a["PREG"]
        latency["C"] = a["CREG"] + a["PREG"]
        latency["PCIN"] = a["PREG"]
        return latency

    @property
    def latency(self):
        """Cycles from the multiplier's operands (A, B and D where used) to ``P``: the
        largest of their :attr:`input_latency` values, e.g. ``AREG + MREG + PREG`` for
        ``P = A * B`` with ``AREG >= BREG`` and ``AREG + ADREG + MREG + PREG`` with the
        pre-adder on A and D. With ``USE_MULT="NONE"``, the ``X = A:B`` path's latency
        ``max(AREG, BREG) + PREG``.

        Control inputs take effect at the stage after their own register: with
        ``OPMODEREG = 1`` the ``OPMODE`` of cycle ``t`` steers the ALU in cycle ``t + 1``
        (same for ``ALUMODE``, ``CARRYINSEL``, ``CARRYIN``); ``INMODE`` acts on the A2/B2/D
        outputs, so with ``INMODEREG = 1`` it is presented together with A/B when
        ``AREG = BREG = 1``.
        """
        latency = self.input_latency
        operands = [latency[port] for port in ("A", "B", "D") if latency[port] is not None]
        return max(operands) if operands else latency["AB"]

    # --- implementation ---------------------------------------------------------------------

    def _use_instance(self, platform):
        return (self._primitives == "instance"
                or (self._primitives == "auto" and is_ultrascale(platform)))

    def elaborate(self, platform):
        m = Module()
        if self._use_instance(platform):
            self._elaborate_instance(m)
        else:
            self._elaborate_behavioural(m)
        return m

    def _elaborate_instance(self, m):
        a = self._attributes
        parameters = {f"p_{name}": value for name, value in a.items()}
        parameters.update(
            p_ACASCREG=a["AREG"], p_BCASCREG=a["BREG"], p_A_INPUT="DIRECT", p_B_INPUT="DIRECT",
            p_USE_SIMD="ONE48", p_USE_PATTERN_DETECT="NO_PATDET", p_USE_WIDEXOR="FALSE",
            p_AUTORESET_PATDET="NO_RESET", p_RND=Const(self._rnd, 48))
        ports = {f"i_{name}": getattr(self, name)
                 for name in (*_DATA_PORTS, *_CONTROL_PORTS, *CLOCK_ENABLES, *RESETS)}
        ports.update(
            i_CLK=ClockSignal(self._domain),
            i_ACIN=Const(0, 30), i_BCIN=Const(0, 18),
            i_CARRYCASCIN=Const(0, 1), i_MULTSIGNIN=Const(0, 1),
            o_P=self.P, o_PCOUT=self.PCOUT)
        m.submodules.dsp48e2 = Instance("DSP48E2", **parameters, **ports)

    def _elaborate_behavioural(self, m):
        a = self._attributes
        domain = self._domain

        def stage(name, value, enabled, ce, rst):
            """``value`` through a register with clock enable and synchronous reset, or
            unchanged when ``enabled`` is 0."""
            if not enabled:
                return value
            reg = Signal(value.shape(), name=name, reset_less=True)
            with m.If(rst):
                m.d[domain] += reg.eq(0)
            with m.Elif(ce):
                m.d[domain] += reg.eq(value)
            return reg

        def wire(name, shape, value):
            sig = Signal(shape, name=name)
            m.d.comb += sig.eq(value)
            return sig

        # A and B input registers. A1/B1 load whenever AREG/BREG >= 1 (INMODE[0]/[4] may
        # select them); A2/B2 take A1/B1 when the depth is 2, the input when it is 1.
        areg, breg = a["AREG"], a["BREG"]
        a1 = stage("a1", self.A, areg >= 1, self.CEA1, self.RSTA) if areg else Const(0, 30)
        a2 = stage("a2", a1 if areg == 2 else self.A, areg >= 1, self.CEA2, self.RSTA)
        b1 = stage("b1", self.B, breg >= 1, self.CEB1, self.RSTB) if breg else Const(0, 18)
        b2 = stage("b2", b1 if breg == 2 else self.B, breg >= 1, self.CEB2, self.RSTB)

        inmode = stage("inmode", self.INMODE, a["INMODEREG"], self.CEINMODE, self.RSTINMODE)
        a_sel = wire("a2a1", 27, Mux(inmode[0], a1[:27], a2[:27]))
        b_sel = wire("b2b1", 18, Mux(inmode[4], b1[:18], b2[:18]))
        # INMODE[1] zeroes the pre-adder's A/B operand, also where it goes straight on.
        if a["PREADDINSEL"] == "A":
            a_sel = wire("a2a1_gated", 27, Mux(inmode[1], 0, a_sel))
        else:
            b_sel = wire("b2b1_gated", 18, Mux(inmode[1], 0, b_sel))

        preadd = self.uses_preadder
        if preadd:
            d = stage("d", self.D, a["DREG"], self.CED, self.RSTD)
            d_gated = Mux(inmode[2], d, 0).as_signed()
            other = a_sel.as_signed() if a["PREADDINSEL"] == "A" else b_sel.as_signed()
            ad = wire("ad", signed(27), Mux(inmode[3], d_gated - other, d_gated + other))
            ad = stage("ad_reg", ad, a["ADREG"], self.CEAD, self.RSTD)
        a_mult = a_sel.as_signed() if a["AMULTSEL"] == "A" else ad
        b_mult = b_sel.as_signed() if a["BMULTSEL"] == "B" else ad[:18].as_signed()

        if a["USE_MULT"] == "MULTIPLY":
            product = wire("product", signed(45), a_mult * b_mult)
        else:
            product = Const(0, signed(45))
        mult = stage("m", product, a["MREG"], self.CEM, self.RSTM)
        # CARRYINSEL = 110: sign of the product (1 when not negative), registered with CEM.
        mult_sign = wire("mult_sign", 1, ~(a_mult[26] ^ b_mult[17]))
        if a["MREG"]:
            mult_sign_reg = Signal(name="mult_sign_reg", reset_less=True)
            with m.If(self.RSTALLCARRYIN):
                m.d[domain] += mult_sign_reg.eq(0)
            with m.Elif(self.CEM):
                m.d[domain] += mult_sign_reg.eq(mult_sign)
            mult_sign = mult_sign_reg

        c = stage("c", self.C, a["CREG"], self.CEC, self.RSTC)
        opmode = stage("opmode", self.OPMODE, a["OPMODEREG"], self.CECTRL, self.RSTCTRL)
        carryinsel = stage("carryinsel", self.CARRYINSEL, a["CARRYINSELREG"], self.CECTRL,
                           self.RSTCTRL)
        alumode = stage("alumode", self.ALUMODE, a["ALUMODEREG"], self.CEALUMODE,
                        self.RSTALUMODE)
        carryin = stage("carryin", self.CARRYIN, a["CARRYINREG"], self.CECARRYIN,
                        self.RSTALLCARRYIN)

        # P register (and the carry-cascade state that CARRYINSEL = 100 reads).
        p_reg = Signal(48, name="p_reg", reset_less=True)
        carry_reg = Signal(name="carrycascout_reg", reset_less=True)
        p_fdbk = p_reg if a["PREG"] else Const(0, 48)
        pcin = self.PCIN[:48]

        w = Signal(48, name="w")
        x = Signal(48, name="x")
        y = Signal(48, name="y")
        z = Signal(48, name="z")
        with m.Switch(opmode[7:9]):
            with m.Case(0b01):
                m.d.comb += w.eq(p_fdbk)
            with m.Case(0b10):
                m.d.comb += w.eq(self._rnd)
            with m.Case(0b11):
                m.d.comb += w.eq(c)
        with m.Switch(opmode[0:2]):
            with m.Case(0b01):
                m.d.comb += x.eq(mult)  # sign-extended product (both partial products)
            with m.Case(0b10):
                m.d.comb += x.eq(p_fdbk)
            with m.Case(0b11):
                m.d.comb += x.eq(Cat(b2[:18], a2[:30]))
        with m.Switch(opmode[2:4]):
            # 0b01 (M): 0, the product is all in X
            with m.Case(0b10):
                m.d.comb += y.eq(_MASK48)
            with m.Case(0b11):
                m.d.comb += y.eq(c)
        with m.Switch(opmode[4:7]):
            with m.Case(0b001):
                m.d.comb += z.eq(pcin)
            with m.Case(0b010, 0b100):
                m.d.comb += z.eq(p_fdbk)
            with m.Case(0b011):
                m.d.comb += z.eq(c)
            with m.Case(0b101):
                m.d.comb += z.eq(pcin.as_signed() >> 17)
            with m.Case(0b110, 0b111):
                m.d.comb += z.eq(p_fdbk.as_signed() >> 17)

        carry_select = Signal(name="carry_select")
        with m.Switch(carryinsel):
            with m.Case(0b000):
                m.d.comb += carry_select.eq(carryin)
            with m.Case(0b001):
                m.d.comb += carry_select.eq(~pcin[47])
            # 0b010: CARRYCASCIN, tied low
            with m.Case(0b011):
                m.d.comb += carry_select.eq(pcin[47])
            with m.Case(0b100):
                m.d.comb += carry_select.eq(carry_reg)
            with m.Case(0b101):
                m.d.comb += carry_select.eq(~p_fdbk[47])
            with m.Case(0b110):
                m.d.comb += carry_select.eq(mult_sign)
            with m.Case(0b111):
                m.d.comb += carry_select.eq(p_fdbk[47])
        logic = alumode[2] | alumode[3]
        cin = wire("cin", 1, Mux(logic, 0, carry_select))

        # ALU: carry-save stage over X, Y and (inverted) Z, then W and the carry-in. The
        # logic functions take the sum or carry vector alone (ALUMODE[3]) without the carries
        # (ALUMODE[2]).
        z_inv = wire("z_inv", 48, z ^ alumode[0].replicate(48))
        sum_bits = x ^ y ^ z_inv
        carry_bits = (x & y) | (x & z_inv) | (y & z_inv)
        carries = wire("carries", 48, Mux(alumode[2], 0, carry_bits))
        partial = wire("partial", 48, Mux(alumode[3], carry_bits, sum_bits))
        total = wire("total", 50, partial + w + (carries << 1) + cin)
        alu_out = wire("alu_out", 48, total[:48] ^ alumode[1].replicate(48))
        carry_out = wire("carry_out", 1, total[48] ^ (alumode[0] & alumode[1]))

        if a["PREG"]:
            with m.If(self.RSTP):
                m.d[domain] += [p_reg.eq(0), carry_reg.eq(0)]
            with m.Elif(self.CEP):
                m.d[domain] += [p_reg.eq(alu_out), carry_reg.eq(carry_out)]
            p = p_reg
        else:
            p = alu_out
        m.d.comb += [self.P.eq(p), self.PCOUT.eq(p)]
