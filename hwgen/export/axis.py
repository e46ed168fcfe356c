"""AXI4-Stream shell: the one way a kernel (or a whole network) leaves hwgen as Verilog.

Inside hwgen, kernels talk through ``amaranth.lib.stream`` ports named ``i`` and ``o``
with no ``last`` signal. Users of other HDLs, Vivado's IP integrator and the cocotb
testbenches see instead the names Vivado infers for an AXI4-Stream IP:

======================  ======  ==========================================================
port                    dir     meaning
======================  ======  ==========================================================
``ap_clk``              in      clock
``ap_rst_n``            in      synchronous reset, active low
``s_axis_tdata``        in      input beat; the kernel's payload in the low bits, the rest
                                of the whole-byte width ignored
``s_axis_tvalid``       in
``s_axis_tready``       out
``m_axis_tdata``        out     output beat; the kernel's payload zero-padded to whole bytes
``m_axis_tvalid``       out
``m_axis_tready``       in
``m_axis_tlast``        out     high on the last beat of each output frame
======================  ======  ==========================================================

A kernel's output frame length is its ``out_beats_per_frame`` property (1 when the
kernel has none). Any other ports of the kernel (for example a configuration port ``cfg``
with members ``addr``, ``we``...) appear at the top level under their flattened names
(``cfg_addr``, ``cfg_we``...), in the same direction.
"""

from amaranth.hdl import ClockDomain, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..checks import check_int

__all__ = ["AXIStreamShell", "padded_width", "stream_payload_width"]


def padded_width(width):
    """Round a bit width up to whole bytes (at least one byte), as AXI4-Stream tdata needs."""
    return max(8, (width + 7) // 8 * 8)


def stream_payload_width(component, port):
    """Bit width of the payload of stream port ``port`` of ``component``."""
    if port not in component.signature.members:
        raise ValueError(f"component {type(component).__name__} has no stream port {port!r}; "
                         f"its ports are {sorted(component.signature.members.keys())}")
    member = component.signature.members[port]
    return Shape.cast(member.signature.members["payload"].shape).width


class AXIStreamShell(wiring.Component):
    """Wrap a stream kernel with ``i``/``o`` ports in an AXI4-Stream top level.

    Parameters
    ----------
    kernel : wiring.Component
        Any component whose signature has an ``In`` stream ``i`` and an ``Out`` stream ``o``.
    out_beats_per_frame : int, optional
        Output beats per frame, for ``m_axis_tlast``. Defaults to the kernel's
        ``out_beats_per_frame`` property, or 1.

    Attributes
    ----------
    kernel : wiring.Component
        The wrapped kernel.
    in_width, out_width : int
        Payload widths of the kernel's input and output streams.
    """

    def __init__(self, kernel, *, out_beats_per_frame=None):
        if not isinstance(kernel, wiring.Component):
            raise TypeError(f"kernel must be an amaranth wiring.Component, not {kernel!r}")
        self.kernel = kernel
        self.in_width = stream_payload_width(kernel, "i")
        self.out_width = stream_payload_width(kernel, "o")
        if out_beats_per_frame is None:
            out_beats_per_frame = getattr(kernel, "out_beats_per_frame", 1)
        self.out_beats_per_frame = check_int("out_beats_per_frame", out_beats_per_frame, 1)
        # the kernel's other ports, flattened: name -> (kernel-side value, direction)
        self._extra = {"_".join(map(str, path)): (value, member)
                       for path, member, value in kernel.signature.flatten(kernel)
                       if path[0] not in ("i", "o")}
        super().__init__({
            **{name: (In if member.flow == wiring.In else Out)(member.shape, init=member.init)
               for name, (_, member) in self._extra.items()},
            "ap_clk": In(1),
            "ap_rst_n": In(1),
            "s_axis_tdata": In(padded_width(self.in_width)),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "m_axis_tdata": Out(padded_width(self.out_width)),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += [sync.clk.eq(self.ap_clk), sync.rst.eq(~self.ap_rst_n)]
        m.submodules.kernel = kernel = self.kernel

        m.d.comb += [
            kernel.i.payload.eq(self.s_axis_tdata[:self.in_width]),
            kernel.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(kernel.i.ready),
            self.m_axis_tdata.eq(kernel.o.payload.as_value()),
            self.m_axis_tvalid.eq(kernel.o.valid),
            kernel.o.ready.eq(self.m_axis_tready),
        ]
        for name, (inner, member) in self._extra.items():
            outer = getattr(self, name)
            m.d.comb += inner.eq(outer) if member.flow == wiring.In else outer.eq(inner)
        if self.out_beats_per_frame == 1:
            m.d.comb += self.m_axis_tlast.eq(1)
        else:
            beat = Signal(range(self.out_beats_per_frame))
            last = beat == self.out_beats_per_frame - 1
            m.d.comb += self.m_axis_tlast.eq(last)
            with m.If(self.m_axis_tvalid & self.m_axis_tready):
                m.d.sync += beat.eq(Mux(last, 0, beat + 1))
        return m
