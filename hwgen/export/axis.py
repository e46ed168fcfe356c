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

Several streams
---------------
A kernel that forks or joins streams (:class:`~hwgen.plumbing.duplicate.Duplicate`,
:class:`~hwgen.kernels.addstreams.AddStreams`, :class:`~hwgen.plumbing.concat.Concat`) has
stream ports ``i0, i1, ...`` and/or ``o0, o1, ...`` (the kernel contract). Each becomes one
AXI4-Stream interface, named as FINN names the interfaces of its stitched IP, which Vivado's
IP integrator infers the same way (prefix ``s_axis_K`` / ``m_axis_K``, then ``_tdata``,
``_tvalid``, ``_tready``, and ``_tlast`` on outputs):

=================  ====================================================================
kernel port        top-level interface
=================  ====================================================================
``i``              ``s_axis_tdata``, ``s_axis_tvalid``, ``s_axis_tready``
``i0``, ``i1``     ``s_axis_0_tdata``..., ``s_axis_1_tdata``...
``o``              ``m_axis_tdata``, ``m_axis_tvalid``, ``m_axis_tready``, ``m_axis_tlast``
``o0``, ``o1``     ``m_axis_0_tdata``..., ``m_axis_0_tlast``, ``m_axis_1_tdata``...
=================  ====================================================================

Every output has its own ``tlast``, high on the last beat of each of its frames; a kernel's
frame length on output port ``oK`` is ``beats_per_frame("oK")`` (the kernel contract). A
one-stream kernel keeps exactly the ports of the table above.
"""

import re
from collections.abc import Mapping

from amaranth.hdl import ClockDomain, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..checks import check_int

__all__ = ["AXIStreamShell", "padded_width", "stream_payload_width", "axis_prefix",
           "stream_ports", "frame_length"]

_STREAM_PORT = re.compile(r"([io])([0-9]*)")


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


def axis_prefix(port):
    """The top-level AXI4-Stream interface of kernel stream port ``port``: ``"i"`` ->
    ``"s_axis"``, ``"i1"`` -> ``"s_axis_1"``, ``"o"`` -> ``"m_axis"``, ``"o0"`` ->
    ``"m_axis_0"`` (see the module documentation)."""
    match = _STREAM_PORT.fullmatch(port) if isinstance(port, str) else None
    if match is None:
        raise ValueError(f"port must be a stream port name such as 'i', 'i0', 'o' or 'o1', "
                         f"not {port!r}")
    side, index = match.groups()
    base = "s_axis" if side == "i" else "m_axis"
    return f"{base}_{index}" if index else base


def _is_stream(member):
    return member.is_signature and {"payload", "valid", "ready"} <= set(member.signature.members)


def stream_ports(component):
    """``(inputs, outputs)``: the names of ``component``'s stream ports ``i``/``i0``... and
    ``o``/``o0``..., in signature order.

    Raises
    ------
    ValueError
        When it has no input or no output stream port
        (``"component X has no stream port 'i'; its ports are [...]"``).
    """
    members = component.signature.members
    streams = [name for name, member in members.items()
               if _STREAM_PORT.fullmatch(name) and _is_stream(member)]
    inputs = [name for name in streams if name[0] == "i"]
    outputs = [name for name in streams if name[0] == "o"]
    for names, port in ((inputs, "i"), (outputs, "o")):
        if not names:
            stream_payload_width(component, port)     # raises, naming the ports there are
    return inputs, outputs


def frame_length(kernel, port):
    """Beats per frame on output ``port``: the kernel contract's ``beats_per_frame(port)``
    for ``o0``, ``o1``..., the ``out_beats_per_frame`` property (or 1) for ``o``."""
    if port != "o" and callable(getattr(kernel, "beats_per_frame", None)):
        return kernel.beats_per_frame(port)
    return getattr(kernel, "out_beats_per_frame", 1)


class AXIStreamShell(wiring.Component):
    """Wrap a stream kernel in an AXI4-Stream top level, one interface per stream port.

    Parameters
    ----------
    kernel : wiring.Component
        Any component whose signature has ``In`` streams ``i`` (or ``i0``, ``i1``...) and
        ``Out`` streams ``o`` (or ``o0``, ``o1``...).
    out_beats_per_frame : int or dict, optional
        Output beats per frame, for each output's ``tlast``: one number for every output, or
        ``{port: beats}`` per output port. Defaults to the kernel's ``out_beats_per_frame``
        property for ``o`` (or 1), and ``beats_per_frame(port)`` for ``o0``, ``o1``...

    Attributes
    ----------
    kernel : wiring.Component
        The wrapped kernel.
    inputs, outputs : list of str
        The kernel's input and output stream ports.
    widths : dict
        Payload width of every stream port.
    frame_lengths : dict
        Beats per frame of every output port.
    in_width, out_width : int or None
        Payload widths of the streams ``i`` and ``o`` (None for a kernel without them).
    out_beats_per_frame : int or None
        The outputs' frame length, when they all have the same one.

    Examples
    --------
    ::

        shell = AXIStreamShell(Duplicate(channels=8, pe=2, elem_shape=signed(4), branches=2))
        # ports ap_clk, ap_rst_n, s_axis_t*, m_axis_0_t*, m_axis_1_t* (with tlast)
    """

    def __init__(self, kernel, *, out_beats_per_frame=None):
        if not isinstance(kernel, wiring.Component):
            raise TypeError(f"kernel must be an amaranth wiring.Component, not {kernel!r}")
        self.kernel = kernel
        self.inputs, self.outputs = stream_ports(kernel)
        self.widths = {port: stream_payload_width(kernel, port)
                       for port in self.inputs + self.outputs}
        self.in_width = self.widths.get("i")
        self.out_width = self.widths.get("o")
        self.frame_lengths = self._frame_lengths(out_beats_per_frame)
        lengths = set(self.frame_lengths.values())
        self.out_beats_per_frame = lengths.pop() if len(lengths) == 1 else None
        streams = set(self.inputs + self.outputs)
        # the kernel's other ports, flattened: name -> (kernel-side value, direction)
        self._extra = {"_".join(map(str, path)): (value, member)
                       for path, member, value in kernel.signature.flatten(kernel)
                       if path[0] not in streams}
        members = {name: (In if member.flow == wiring.In else Out)(member.shape,
                                                                      init=member.init)
                   for name, (_, member) in self._extra.items()}
        members.update({"ap_clk": In(1), "ap_rst_n": In(1)})
        for port in self.inputs:
            prefix = axis_prefix(port)
            members.update({f"{prefix}_tdata": In(padded_width(self.widths[port])),
                            f"{prefix}_tvalid": In(1), f"{prefix}_tready": Out(1)})
        for port in self.outputs:
            prefix = axis_prefix(port)
            members.update({f"{prefix}_tdata": Out(padded_width(self.widths[port])),
                            f"{prefix}_tvalid": Out(1), f"{prefix}_tready": In(1),
                            f"{prefix}_tlast": Out(1)})
        super().__init__(members)

    def _frame_lengths(self, out_beats_per_frame):
        if out_beats_per_frame is None:
            return {port: check_int(f"beats_per_frame({port!r})",
                                    frame_length(self.kernel, port), 1)
                    for port in self.outputs}
        if isinstance(out_beats_per_frame, Mapping):
            if set(out_beats_per_frame) != set(self.outputs):
                raise ValueError(f"out_beats_per_frame must name the output ports "
                                 f"{self.outputs}, not {sorted(out_beats_per_frame)}")
            return {port: check_int(f"out_beats_per_frame[{port!r}]",
                                    out_beats_per_frame[port], 1)
                    for port in self.outputs}
        beats = check_int("out_beats_per_frame", out_beats_per_frame, 1)
        return {port: beats for port in self.outputs}

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += [sync.clk.eq(self.ap_clk), sync.rst.eq(~self.ap_rst_n)]
        m.submodules.kernel = kernel = self.kernel

        for port in self.inputs:
            inner, prefix = getattr(kernel, port), axis_prefix(port)
            m.d.comb += [
                inner.payload.eq(getattr(self, f"{prefix}_tdata")[:self.widths[port]]),
                inner.valid.eq(getattr(self, f"{prefix}_tvalid")),
                getattr(self, f"{prefix}_tready").eq(inner.ready),
            ]
        for port in self.outputs:
            inner, prefix = getattr(kernel, port), axis_prefix(port)
            valid, ready = getattr(self, f"{prefix}_tvalid"), getattr(self, f"{prefix}_tready")
            m.d.comb += [
                getattr(self, f"{prefix}_tdata").eq(inner.payload.as_value()),
                valid.eq(inner.valid),
                inner.ready.eq(ready),
            ]
            self._drive_last(m, getattr(self, f"{prefix}_tlast"), valid & ready,
                             self.frame_lengths[port], prefix)
        for name, (inner, member) in self._extra.items():
            outer = getattr(self, name)
            m.d.comb += inner.eq(outer) if member.flow == wiring.In else outer.eq(inner)
        return m

    @staticmethod
    def _drive_last(m, last, transfer, frame_length, prefix):
        """``tlast`` from a counter of the output's beats within its frame."""
        if frame_length == 1:
            m.d.comb += last.eq(1)
            return
        # "beat" for m_axis keeps a one-stream kernel's Verilog as it was
        beat = Signal(range(frame_length),
                      name="beat" if prefix == "m_axis" else f"{prefix}_beat")
        is_last = beat == frame_length - 1
        m.d.comb += last.eq(is_last)
        with m.If(transfer):
            m.d.sync += beat.eq(Mux(is_last, 0, beat + 1))
