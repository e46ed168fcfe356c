"""The stream-kernel contract.

Every stream kernel comes in two halves that share one class hierarchy:

* a **plan** (a subclass of :class:`StreamKernel`): plain Python. Its constructor takes the
  kernel's keyword-only parameters and validates them eagerly; its read-only properties
  describe the hardware without building it: :attr:`~StreamKernel.latency`,
  :attr:`~StreamKernel.cycles_per_frame`, beats per frame, the stream formats, the output
  schedule for an input schedule (:meth:`~StreamKernel.out_times`) and an analytic
  :meth:`~StreamKernel.estimate` returning :class:`~hwgen.resources.Resources`. Folding a
  network and sizing its FIFOs ask plans only: nothing is built to be asked a question.
* the **component**: ``class MVAU(MVAUPlan, PlannedComponent)``, the plan plus
  :class:`PlannedComponent` (an ``amaranth.lib.wiring.Component``) and an
  ``elaborate()``. Its constructor takes the same parameters; :meth:`Plan.build` turns a
  plan into its component without validating again. Sub-units (an MVAU's dot-product
  engine and thresholding unit) are plans inside the plan, built in ``elaborate()``.

:class:`Plan` is the same split for cores that are not stream kernels (the dot-product
engines, packed MACs): validation, timing and cost in the plan, ports and logic in the
component.

Timing terms, in cycles of the kernel's clock, without back-pressure:

``latency``
    From the first input beat of a frame to its first output beat.
``cycles_per_frame``
    Steady state: cycles between the starts of consecutive frames when the input is
    offered every cycle and the output always taken.
``out_times(in_times)``
    The cycle of every output beat of one frame, given the cycles at which its input beats
    arrive (the output always ready). The elaborator chains these to compute a pipeline's
    latency and the FIFO depths at forks and joins.
"""

from dataclasses import dataclass

from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .streams import lanes_signature

__all__ = ["Plan", "StreamKernel", "PlannedComponent", "StreamFormat", "pipelined_times",
           "port_format"]


@dataclass(frozen=True)
class StreamFormat:
    """What one beat of a stream carries: ``lanes`` elements of ``elem_shape``."""
    elem_shape: Shape
    lanes: int

    @property
    def width(self):
        """Bits per beat."""
        return Shape.cast(self.elem_shape).width * self.lanes


def port_format(component, port):
    """The :class:`StreamFormat` of a component's stream port ``port`` (``"i"``, ``"o"``)."""
    layout = component.signature.members[port].signature.members["payload"].shape
    return StreamFormat(Shape.cast(layout.elem_shape), layout.length)


def pipelined_times(in_times, latency):
    """Output beat cycles of a kernel that passes one beat per input beat through
    ``latency`` register stages, at most one beat per cycle."""
    times, previous = [], None
    for t in in_times:
        previous = t + latency if previous is None else max(t + latency, previous + 1)
        times.append(previous)
    return times


class Plan:
    """The analysis half of a component: validated parameters, timing and cost.

    A subclass's constructor validates its keyword-only parameters and ends with
    ``super().__init__()``; it sets :attr:`component` to its component class (a subclass of
    the plan and of :class:`PlannedComponent`) and defines :meth:`members`.
    """

    #: The component class this plan builds (set by each module).
    component = None

    def __init__(self):
        super().__init__()

    def members(self):
        """The component's signature members (``{"i": In(...), "o": Out(...)}``)."""
        raise NotImplementedError

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` (UltraScale+)."""
        raise NotImplementedError

    def build(self):
        """The component of this plan (the parameters are not validated again)."""
        cls = self.component
        if cls is None:
            raise TypeError(f"{type(self).__name__} names no component class")
        if isinstance(self, cls):
            return self
        built = cls.__new__(cls, src_loc_at=1)
        built.__dict__.update(self.__dict__)
        PlannedComponent.__init__(built)
        return built


class StreamKernel(Plan):
    """The analysis half of a stream kernel: the kernel contract (see the module
    documentation).

    Subclasses implement the properties below; :meth:`out_times` defaults to
    :func:`pipelined_times` (one output beat per input beat) and :meth:`members` to the
    streams of :attr:`inputs` and :attr:`outputs` (``i`` and ``o``: :attr:`input_format`
    and :attr:`output_format`). A kernel with several input or output streams (fork, join,
    concat) overrides :attr:`inputs`/:attr:`outputs`, :meth:`beats_per_frame` and
    :meth:`schedule`; its ``input_format``/``output_format`` may then raise.
    """

    # -- the contract ---------------------------------------------------------------------
    @property
    def latency(self):
        """Cycles from the first input beat of a frame to its first output beat."""
        raise NotImplementedError

    @property
    def cycles_per_frame(self):
        """Steady-state cycles per frame."""
        raise NotImplementedError

    @property
    def in_beats_per_frame(self):
        raise NotImplementedError

    @property
    def out_beats_per_frame(self):
        raise NotImplementedError

    @property
    def input_format(self):
        """:class:`StreamFormat` of the input stream ``i``."""
        raise NotImplementedError

    @property
    def output_format(self):
        """:class:`StreamFormat` of the output stream ``o``."""
        raise NotImplementedError

    @property
    def input_burst(self):
        """Input beats a producer may have to hold for this kernel so that neither waits
        for the other more than their rates require: the most beats the kernel reads in a
        burst after a pause in reading. The elaborator sizes the FIFO in front of the kernel
        from it. Default: a whole frame (always enough); kernels that read steadily or in
        short bursts say less."""
        return self.in_beats_per_frame

    def out_times(self, in_times):
        """Cycles of one frame's output beats for its input beats arriving at ``in_times``
        (no stalls at the output)."""
        return pipelined_times(in_times, self.latency)

    # -- several streams (forks and joins); one-stream kernels keep these defaults ---------
    @property
    def inputs(self):
        """Input stream port names and their :class:`StreamFormat`: ``{"i": ...}``, or
        ``{"i0": ..., "i1": ...}`` for a kernel that joins streams."""
        return {"i": self.input_format}

    @property
    def outputs(self):
        """Output stream port names and their :class:`StreamFormat`: ``{"o": ...}``, or
        ``{"o0": ..., "o1": ...}`` for a kernel that forks its stream."""
        return {"o": self.output_format}

    def beats_per_frame(self, port):
        """Beats per frame on stream port ``port``."""
        if port in self.inputs:
            return self.in_beats_per_frame
        if port in self.outputs:
            return self.out_beats_per_frame
        raise ValueError(f"{type(self).__name__} has no stream port {port!r}; its ports are "
                         f"{sorted({**self.inputs, **self.outputs})}")

    def schedule(self, in_times):
        """Cycles of one frame's output beats per output port, for the cycles of its input
        beats per input port (``{"i": [...]}`` -> ``{"o": [...]}``); the elaborator chains
        these through forks and joins. Defaults to :meth:`out_times` of the one stream."""
        (port,) = self.inputs
        return {name: self.out_times(in_times[port]) for name in self.outputs}

    def resolved_choices(self):
        """The parameters given as ``"auto"`` and what they resolved to (``{}`` by
        default), so that a compiled network records what was built."""
        return {}

    def members(self):
        members = {name: In(lanes_signature(f.elem_shape, f.lanes))
                   for name, f in self.inputs.items()}
        members.update({name: Out(lanes_signature(f.elem_shape, f.lanes))
                        for name, f in self.outputs.items()})
        return members


class PlannedComponent(wiring.Component):
    """The component half: ``class MVAU(MVAUPlan, PlannedComponent)``.

    The plan's constructor validates the parameters and ends with ``super().__init__()``,
    which reaches this constructor: it creates the ports from the plan's
    :meth:`Plan.members`.
    """

    def __init__(self):
        wiring.Component.__init__(self, self.members())
