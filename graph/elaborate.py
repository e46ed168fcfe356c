"""Elaboration: one top-level Amaranth component for a folded network.

Every IR layer becomes the hwgen kernel its registry entry names
(:data:`hwgen.registry.KERNELS`): ``layer.plan()`` is the kernel's plan, which the
:class:`Pipeline` asks for timing and cost and the :class:`Accelerator` builds in
``elaborate()``. Flatten and reshape are no-ops on the stream (the IR has no layer for
them). Between two kernels the *link* is::

    producer.o --(element cast)--> [WidthConverter] --> StreamFIFO --> consumer.i

* the element cast resizes each lane from the producer's output shape (for example the
  threshold count ``bias .. bias + T``, or the raw accumulator) to the IR datatype of the
  link, which is what the consumer takes: a wire, exact since the IR datatype holds every
  value;
* a :class:`hwgen.plumbing.width.WidthConverter` repacks the producer's lanes (its PE, or ``k`` for a
  label select) into the consumer's (its SIMD, or PE) when they differ;
* a :class:`hwgen.plumbing.fifo.StreamFIFO` of :func:`fifo_depth` beats.

FIFO sizing. The pipeline is a chain with no forks or joins, and every kernel makes progress
whenever its output is taken, so it cannot deadlock at any FIFO depth; depth matters for
throughput only. A kernel that reads its input in bursts starves or stalls its neighbours:
an MVAU with ``NF > 1`` takes a vector's ``SF`` beats in its first neuron fold only and then
replays them from its buffer for ``(NF - 1) * SF`` cycles while its producer keeps going;
and a producer that is slower than the consumer's reading rate stretches that first fold.
A FIFO holding one whole frame of the consumer's input beats lets the producer run up to a
frame ahead: whatever the two kernels' patterns within a frame, the producer never waits
for a consumer that keeps up on average, and the consumer finds its next frame's beats
waiting when it is ready for them, so every kernel runs at the pace of the slowest
(:attr:`Accelerator.cycles_per_frame`). The depth is that frame plus two beats, which cover
the FIFO's own two-cycle latency; at least 3, the least depth that moves a beat per cycle.

Timing properties are computed, not simulated: :attr:`Pipeline.cycles_per_frame` is the
bottleneck stage's, and :attr:`Pipeline.latency` follows the first frame's beats through
every stage with each kernel's own output schedule (``out_times`` of the kernel contract;
no stalls, FIFOs never full).
"""

import re

from amaranth.hdl import Module
from amaranth.lib import data

from hwgen.kernel import PlannedComponent, StreamFormat, StreamKernel
from hwgen.plumbing.fifo import StreamFIFOPlan
from hwgen.plumbing.width import WidthConverterPlan
from hwgen.registry import kernel
from hwgen.resources import Resources

from .errors import GraphError
from .ir import element_shape

__all__ = ["Accelerator", "Pipeline", "elaborate", "fifo_depth", "Stage"]


def fifo_depth(consumer_in_beats):
    """Beats of the FIFO in front of a consumer that takes ``consumer_in_beats`` beats per
    frame (see the module documentation)."""
    return max(3, consumer_in_beats + 2)


class Stage:
    """One kernel of the pipeline, in stream order: a plan of the kernel contract.

    Attributes
    ----------
    kind : str
        The registered kernel (:data:`hwgen.registry.KERNELS`): ``"mvau"``, ``"width"``,
        ``"fifo"``, ...
    name : str
        The layer's name, or ``"<consumer>.width"`` / ``"<consumer>.fifo"`` for the parts of a
        link.
    plan : hwgen.kernel.StreamKernel
    layer : IR layer or None
    """

    def __init__(self, kind, name, plan, layer=None):
        self.kind, self.name, self.plan, self.layer = kind, name, plan, layer

    @property
    def cycles_per_frame(self):
        return self.plan.cycles_per_frame

    def estimate(self):
        return self.plan.estimate()

    def out_times(self, in_times):
        """Cycles of the first frame's output beats given those of its input beats (no
        stalls at the output): the kernel's own schedule."""
        return self.plan.out_times(in_times)

    def report_row(self):
        """The hardware columns of the report (the registry's report row)."""
        return kernel(self.kind).report(self.plan)


def _options_for(layer, kernel_options):
    """Extra keywords of ``layer``'s kernel: ``kernel_options[kind]``, a dict or a function
    of the layer."""
    options = (kernel_options or {}).get(layer.kind)
    if callable(options):
        options = options(layer)
    return options or {}


class Pipeline(StreamKernel):
    """The analysis of a folded network's pipeline: its stages, timing and cost, without
    hardware (see the module documentation). It keeps the kernel contract
    (:class:`hwgen.kernel.StreamKernel`) for the network as a whole; its component is the
    :class:`Accelerator`.

    Parameters
    ----------
    network : graph.ir.Network
        With its folding (``pe``, ``simd``, ``datapath``, ``mem_style``) set, for example by
        :func:`graph.fold.fold`.
    kernel_options : dict, optional
        Per kernel name (``"mvau"``), extra keyword arguments for every layer of that
        kernel, as a dict or a function of the layer returning one: implementation choices
        that leave the function and the folding alone, for example an MVAU's
        ``pipeline_every`` or ``register_reads`` for a device (see :mod:`boards.build`).

    Attributes
    ----------
    network : graph.ir.Network
    stages : list of :class:`Stage`
        Every kernel in stream order: layers, width converters and FIFOs.
    """

    def __init__(self, network, kernel_options=None):
        if not network.layers:
            raise GraphError(f"network {network.name!r} has no layers to elaborate")
        self.network = network
        self.stages = []
        previous = None
        for layer in network.layers:
            stage = Stage(layer.kind, layer.name,
                          layer.plan(**_options_for(layer, kernel_options)), layer)
            if previous is not None:
                out_lanes = previous.plan.output_format.lanes
                consumer = stage.plan.input_format
                if out_lanes != consumer.lanes:
                    self.stages.append(Stage("width", f"{layer.name}.width", WidthConverterPlan(
                        elem_shape=consumer.elem_shape, in_lanes=out_lanes,
                        out_lanes=consumer.lanes, elems_per_frame=layer.in_elements)))
                beats = stage.plan.in_beats_per_frame
                self.stages.append(Stage("fifo", f"{layer.name}.fifo", StreamFIFOPlan(
                    elem_shape=consumer.elem_shape, lanes=consumer.lanes,
                    depth=fifo_depth(beats), beats_per_frame=beats)))
            self.stages.append(stage)
            previous = stage
        self._in_format = self.stages[0].plan.input_format
        self._out_shape = element_shape(network.layers[-1].output_type)
        self._out_lanes = self.stages[-1].plan.output_format.lanes
        super().__init__()

    # -- description --------------------------------------------------------------------------
    @property
    def input_format(self):
        """:class:`hwgen.kernel.StreamFormat` of the input stream."""
        return self._in_format

    @property
    def output_format(self):
        """:class:`hwgen.kernel.StreamFormat` of the output stream."""
        return StreamFormat(self._out_shape, self._out_lanes)

    @property
    def in_lanes(self):
        return self._in_format.lanes

    @property
    def out_lanes(self):
        return self._out_lanes

    @property
    def in_beats_per_frame(self):
        return self.stages[0].plan.in_beats_per_frame

    @property
    def out_beats_per_frame(self):
        return self.stages[-1].plan.out_beats_per_frame

    @property
    def bottleneck(self):
        """The stage with the most cycles per frame (the first of equals)."""
        return max(self.stages, key=lambda stage: stage.cycles_per_frame)

    @property
    def cycles_per_frame(self):
        """Steady-state cycles per frame: the bottleneck stage's."""
        return self.bottleneck.cycles_per_frame

    @property
    def latency(self):
        """Cycles from the first input beat to the first output beat, input offered every
        cycle and output always ready."""
        return self.out_times(list(range(self.in_beats_per_frame)))[0]

    def out_times(self, in_times):
        """The stages' output schedules, chained."""
        for stage in self.stages:
            in_times = stage.out_times(in_times)
        return in_times

    def fps(self, clock_mhz):
        """Frames per second in steady state at ``clock_mhz``."""
        return clock_mhz * 1e6 / self.cycles_per_frame

    def estimate(self):
        """Sum of the stages' analytic estimates (UltraScale+), a
        :class:`hwgen.resources.Resources`."""
        return sum((stage.estimate() for stage in self.stages), Resources())


class Accelerator(Pipeline, PlannedComponent):
    """The streaming pipeline of a folded network as one component (see the module
    documentation); parameters and attributes as :class:`Pipeline`.

    Members
    -------
    i : In(stream of the first kernel's input lanes of the network input datatype)
        A frame is the network input's elements in C order, ``in_lanes`` per beat.
    o : Out(stream of the last kernel's output lanes of the output datatype)
        A frame is the last layer's output elements, ``out_lanes`` per beat.
    """

    # -- hardware -----------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        used = set()
        kernels = []
        for index, stage in enumerate(self.stages):
            name = f"s{index}_" + re.sub(r"\W", "_", stage.name)
            while name in used:
                name += "_"
            used.add(name)
            m.submodules[name] = built = stage.plan.build()
            kernels.append(built)
        _connect(m, self.i, kernels[0].i)
        for producer, consumer in zip(kernels, kernels[1:]):
            _connect(m, producer.o, consumer.i)
        _connect(m, kernels[-1].o, self.o)
        return m


def _connect(m, source, sink):
    """Connect two streams of the same lane count; each lane is resized (sign- or
    zero-extended, or truncated) to the sink's element shape."""
    m.d.comb += [sink.valid.eq(source.valid), source.ready.eq(sink.ready)]
    source_layout, sink_layout = source.payload.shape(), sink.payload.shape()
    if source_layout == sink_layout:
        m.d.comb += sink.payload.eq(source.payload)
        return
    assert isinstance(source_layout, data.ArrayLayout) and \
        source_layout.length == sink_layout.length
    m.d.comb += [sink.payload[k].eq(source.payload[k]) for k in range(sink_layout.length)]


def elaborate(network, kernel_options=None):
    """The :class:`Accelerator` of a folded network."""
    return Accelerator(network, kernel_options)


Pipeline.component = Accelerator
