"""Duplicate: fan one stream out to ``branches`` streams, every beat to every one.

A fork in the network (a residual branch) needs the same feature map twice. Each output
``o0 .. o{N-1}`` gets every input beat, in order, at its own pace: back-pressure on one
branch never loses or repeats a beat on another.

Algorithm: a combinational fork with one *taken* bit per output. The input beat is shown
on every output that has not taken it yet (``o_k.valid = i.valid & ~taken_k``, the payload
is the input's own); an output that takes it sets its bit. The input beat is consumed, and
all bits cleared, in the cycle in which every output has taken it or is taking it
(``i.ready = AND_k (taken_k | o_k.ready)``). So a ready branch is held by a stalled one for
the current beat only (it has taken it and waits for the next), the input's producer holds
the beat until the last branch has it (the stream rules), and with every output ready one
beat passes per cycle with no register in the path (latency 0). ``o_k.valid`` depends on
``i.valid`` and registers only, never on a ready; ``i.ready`` on the outputs' readies.

Cost: ``N`` flip-flops; per output a LUT for its valid and one for its taken bit, and an
AND tree of the ``N`` done terms for ``i.ready``. No payload register: where a branch needs
slack (the short side of a residual block) the elaborator puts a FIFO behind the fork.
"""

from amaranth.hdl import Cat, Module, Signal

from ..checks import check_int, check_shape
from ..featuremap import ChannelFold
from ..kernel import PlannedComponent, StreamFormat, StreamKernel, pipelined_times
from ..resources import Resources

__all__ = ["Duplicate", "DuplicatePlan"]


class DuplicatePlan(ChannelFold, StreamKernel):
    """The analysis of :class:`Duplicate` (same parameters)."""

    def __init__(self, *, channels, pe=1, elem_shape, branches=2, vectors=1):
        self._set_channel_fold(channels, pe, vectors)
        self._elem_shape = check_shape("elem_shape", elem_shape)
        self._branches = check_int("branches", branches, 2)
        super().__init__()

    # -- parameters -------------------------------------------------------------------------
    elem_shape = property(lambda self: self._elem_shape)
    branches = property(lambda self: self._branches)

    @property
    def input_format(self):
        """:class:`~hwgen.kernel.StreamFormat` of the input and of every output."""
        return StreamFormat(self._elem_shape, self._pe)

    output_format = input_format

    @property
    def outputs(self):
        """``{"o0": format, "o1": format, ...}``: one output per branch."""
        return {f"o{k}": self.input_format for k in range(self._branches)}

    # -- timing (beats and cycles per frame: ChannelFold) ----------------------------------
    latency = 0

    def schedule(self, in_times):
        """Every output beat leaves in the cycle its input beat arrives (at most one per
        cycle): ``{"o0": times, "o1": times, ...}`` for ``{"i": times}``."""
        times = pipelined_times(in_times["i"], self.latency)
        return {port: list(times) for port in self.outputs}

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+: per output a taken
        bit (a flip-flop and its next-state LUT) and a LUT for its valid; the AND of the
        ``2 N`` taken-or-ready terms (a LUT6 per five more terms) twice, as synthesis builds
        it: once for ``i.ready`` and once into the consume term that clears the taken bits.
        Against Yosys (``synth_xilinx -family xcup``) within two LUTs for 2 to 16 outputs."""
        n = self._branches
        return Resources(luts=2 * n + 2 * -(-(2 * n - 1) // 5), ffs=n)


class Duplicate(DuplicatePlan, PlannedComponent):
    """Fan-out: every input beat goes to each of ``branches`` output streams.

    Parameters
    ----------
    channels : int
        Channels per pixel.
    pe : int
        Channels per beat; must divide ``channels``.
    elem_shape : ShapeLike
        Shape of every element (passed through unchanged).
    branches : int
        Output streams ``N``, at least 2.
    vectors : int
        Pixels per frame (``H * W``), for the frame properties and ``tlast``.

    Members
    -------
    i : In(stream of ``pe`` x ``elem_shape``)
    o0 .. o{N-1} : Out(stream of ``pe`` x ``elem_shape``)
        Each carries every input beat, in order.

    Examples
    --------
    ::

        fork = Duplicate(channels=64, pe=8, elem_shape=unsigned(4), branches=2, vectors=49)
        # fork.latency == 0, fork.cycles_per_frame == 392
        # fork.schedule({"i": [0, 1, 2]}) == {"o0": [0, 1, 2], "o1": [0, 1, 2]}
    """

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        outputs = [getattr(self, port) for port in self.outputs]
        taken = [Signal(name=f"taken{k}") for k in range(len(outputs))]
        done = [Signal(name=f"done{k}") for k in range(len(outputs))]
        consume = Signal()
        for o, taken_k, done_k in zip(outputs, taken, done):
            m.d.comb += [
                o.valid.eq(self.i.valid & ~taken_k),
                o.payload.eq(self.i.payload),
                done_k.eq(taken_k | o.ready),
            ]
        m.d.comb += [self.i.ready.eq(Cat(*done).all()),
                     consume.eq(self.i.valid & self.i.ready)]
        with m.If(consume):
            m.d.sync += [taken_k.eq(0) for taken_k in taken]
        with m.Else():
            m.d.sync += [taken_k.eq(taken_k | (o.valid & o.ready))
                         for o, taken_k in zip(outputs, taken)]
        return m


DuplicatePlan.component = Duplicate
