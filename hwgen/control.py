"""Stream control blocks shared by the kernels: the stall pipeline, fold counters and a skid
buffer.

**Stall pipeline.** A kernel whose registers all advance together when its output
register is empty or being read (``advance = ~o.valid | o.ready``) never loses, duplicates
or reorders a beat: a stalled output freezes every stage, and with ``o.ready`` high one
beat enters per cycle. ``o.valid`` comes from a register and never waits for ``o.ready``
(the rule of ``amaranth.lib.stream``). :class:`StallPipeline` builds that control:
``advance``, the valid bit of every stage, and stage registers for values that travel
with a beat (a fold index, a channel number).

**Fold counters.** :func:`fold_counter` counts beats (or operations) modulo a fold,
advancing when told: the channel fold of a thresholding unit, the synapse and neuron
folds of an MVAU.

**Skid buffer.** :class:`SkidBuffer` registers ``ready`` towards its producer (a second
entry holds the beat that arrives while the consumer stalls), so long combinational
``ready`` paths can be cut between kernels.

**Streamed cores.** :class:`StreamedCore` turns a fixed-latency core with a clock enable
(a compressor tree) into a stream kernel with a :class:`StallPipeline`.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .checks import check_int, check_shape
from .kernel import PlannedComponent, StreamFormat, StreamKernel
from .resources import Resources
from .streams import lanes_signature

__all__ = ["StallPipeline", "fold_counter", "SkidBuffer", "SkidBufferPlan", "StreamedCore",
           "stream_core"]


class StallPipeline:
    """The control of ``depth`` register stages that advance together.

    Parameters
    ----------
    m : Module
    depth : int
        Register stages from the input beat to the output register (at least 1).
    i : stream interface, optional
        The kernel's input stream: ``i.ready`` is driven with :attr:`advance`, and a beat
        enters stage 0 with ``i.valid``. Without ``i``, ``take`` says when one enters (and
        the kernel drives its input's ``ready`` itself).
    o : stream interface, optional
        The kernel's output stream: ``o.valid`` is the last stage's valid bit. Without
        ``o``, ``out_ready`` is the downstream ready (for a last stage that feeds an inner
        unit, such as an MVAU's thresholds).
    out_ready : Value, optional
        Downstream ready when ``o`` is None.
    take : Value, optional
        The valid bit entering stage 0 (default ``i.valid``).
    emit : Value, optional
        The last stage takes a beat from the stage before only where ``emit`` is high (a
        kernel that puts out fewer beats than it takes, such as a label select).

    Attributes
    ----------
    advance : Signal
        High when every stage moves one step.
    valid : list of Signal
        Valid bit of each stage; ``valid[-1]`` is the output register's.
    """

    def __init__(self, m, *, depth, i=None, o=None, out_ready=None, take=None, emit=None):
        depth = check_int("depth", depth, 1)
        if (o is None) == (out_ready is None):
            raise TypeError("StallPipeline needs exactly one of o and out_ready")
        if i is None and take is None:
            raise TypeError("StallPipeline needs i or take")
        self._m = m
        self.advance = Signal(name="advance")
        self.valid = [Signal(name=f"valid{s}") for s in range(depth)]
        m.d.comb += self.advance.eq(~self.valid[-1] | (o.ready if o is not None else out_ready))
        if i is not None:
            m.d.comb += i.ready.eq(self.advance)
        if o is not None:
            m.d.comb += o.valid.eq(self.valid[-1])
        entering = [i.valid if take is None else take] + self.valid[:-1]
        if emit is not None:
            entering[-1] = entering[-1] & emit
        with m.If(self.advance):
            m.d.sync += [valid.eq(value) for valid, value in zip(self.valid, entering)]

    @property
    def out_valid(self):
        return self.valid[-1]

    def carry(self, value, name):
        """Registers of ``value`` along the stages (entry ``s`` is stage ``s``'s copy)."""
        stages = [Signal.like(value, name=f"{name}{s}") for s in range(len(self.valid))]
        with self._m.If(self.advance):
            self._m.d.sync += stages[0].eq(value)
            self._m.d.sync += [stages[s].eq(stages[s - 1]) for s in range(1, len(stages))]
        return stages


def fold_counter(m, fold, step, name="fold"):
    """A counter ``0 .. fold - 1`` that steps (and wraps) in cycles where ``step`` is high.

    Returns the counter (``Signal(range(max(2, fold)))``, constant 0 when ``fold`` is 1) and
    ``last``, high while it holds ``fold - 1``.
    """
    counter = Signal(range(max(2, fold)), name=name)
    last = Signal(name=f"{name}_last")
    m.d.comb += last.eq(counter == fold - 1)
    if fold > 1:
        with m.If(step):
            m.d.sync += counter.eq(Mux(last, 0, counter + 1))
    return counter, last


class SkidBufferPlan(StreamKernel):
    """The analysis of :class:`SkidBuffer` (same parameters)."""

    def __init__(self, *, elem_shape, lanes=1):
        self._elem_shape = check_shape("elem_shape", elem_shape)
        self._lanes = check_int("lanes", lanes, 1)
        super().__init__()

    latency = 1
    cycles_per_frame = in_beats_per_frame = out_beats_per_frame = 1

    @property
    def input_format(self):
        return StreamFormat(self._elem_shape, self._lanes)

    output_format = input_format

    def estimate(self):
        """Two beat registers, a 2:1 multiplexer per bit and two control flip-flops."""
        width = self._elem_shape.width * self._lanes
        return Resources(luts=width + 2, ffs=2 * width + 2)


class SkidBuffer(SkidBufferPlan, PlannedComponent):
    """A two-entry stream buffer with registered ``i.ready`` and ``o.valid``.

    One beat per cycle passes through with one cycle of latency; when the consumer stalls,
    the beat that was already on its way is held in the second (skid) entry, so ``i.ready``
    can be a register: no combinational path runs from ``o.ready`` to ``i.ready``.

    Parameters
    ----------
    elem_shape : ShapeLike
        Shape of every lane.
    lanes : int
        Elements per beat.

    Members
    -------
    i : In(stream of ``lanes`` x ``elem_shape``)
    o : Out(stream of ``lanes`` x ``elem_shape``)
    """

    def elaborate(self, platform):
        m = Module()
        skid = Signal.like(self.i.payload)
        skid_valid = Signal()
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(self.o.ready | ~self.o.valid):
            # the output register takes the skid entry first, else the input
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & self.i.ready):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m


class StreamedCore(wiring.Component):
    """Turn a core with ports ``i`` (value in), ``o`` (value out) and ``en`` (clock enable of
    all its registers) and a fixed ``latency`` into a stream kernel, with the control of a
    :class:`StallPipeline`.

    Parameters
    ----------
    core : wiring.Component
        The core; must have a ``latency`` attribute.
    in_layout : ShapeLike
        Payload layout of the input stream (same width as ``core.i``).
    """

    def __init__(self, core, *, in_layout):
        self._core = core
        super().__init__({
            "i": In(lanes_signature(in_layout.elem_shape, in_layout.length)),
            "o": Out(lanes_signature(core.o.shape(), 1)),
        })

    @property
    def core(self):
        return self._core

    @property
    def latency(self):
        """Cycles from an input beat to its output beat (without back-pressure)."""
        return self._core.latency

    @property
    def cycles_per_frame(self):
        """One vector per beat, one beat per cycle in steady state."""
        return 1

    in_beats_per_frame = 1
    out_beats_per_frame = 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self._core
        stream_core(m, self._core, self.i, self.o)
        return m


def stream_core(m, core, i, o):
    """Drive a fixed-latency core (ports ``i``, ``o``, ``en``; attribute ``latency``) from
    stream ``i`` into the one-lane stream ``o``: its clock enable is the
    :class:`StallPipeline`'s ``advance`` (a wire when the core is combinational)."""
    m.d.comb += [core.i.eq(i.payload.as_value()), o.payload[0].eq(core.o)]
    if core.latency == 0:
        m.d.comb += [o.valid.eq(i.valid), i.ready.eq(o.ready), core.en.eq(0)]
        return
    control = StallPipeline(m, depth=core.latency, i=i, o=o)
    m.d.comb += core.en.eq(control.advance)


SkidBufferPlan.component = SkidBuffer
