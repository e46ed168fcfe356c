"""Elaboration: one top-level Amaranth component for a folded network.

Every IR layer becomes the hwgen kernel its registry entry names
(:data:`hwgen.registry.KERNELS`): ``layer.plan()`` is the kernel's plan, which the
:class:`Pipeline` asks for timing and cost and the :class:`Accelerator` builds in
``elaborate()``. Flatten and reshape are no-ops on the stream (the IR has no layer for
them). The network is a DAG (:class:`graph.ir.Network`): an edge read by ``n > 1`` layers
gets a :class:`hwgen.plumbing.duplicate.Duplicate` of ``n`` branches, and a layer with
several inputs (:class:`~graph.maplayers.AddLayer`, :class:`~graph.maplayers.ConcatLayer`)
is a join. Between a producer (a kernel or a duplicate's branch) and a consumer's input
port the *link* is::

    producer.o --(element cast)--> [WidthConverter] --> StreamFIFO --> consumer.i

* the element cast resizes each lane from the producer's output shape (for example the
  threshold count ``bias .. bias + T``, or the raw accumulator) to the IR datatype of the
  link, which is what the consumer takes: a wire, exact since the IR datatype holds every
  value;
* a :class:`hwgen.plumbing.width.WidthConverter` repacks the producer's lanes into the
  consumer's when they differ;
* a :class:`hwgen.plumbing.fifo.StreamFIFO` of :func:`fifo_depth` beats.

FIFO sizing, from the kernels' contract (no trial simulation).

*Rate.* Every kernel states its :attr:`~hwgen.kernel.StreamKernel.input_burst`: the most
input beats it reads in one go after a pause in reading (an MVAU reads a vector's ``SF``
beats in its first neuron fold and replays them for ``(NF - 1) * SF`` cycles; a sliding
window or a pooling kernel can stop reading for about a row of its map; a threshold reads a
beat per cycle). A FIFO of ``input_burst + 2`` beats in front of a kernel lets its producer
keep going through such a pause (the two beats cover the FIFO's own latency), so a producer
that is the bottleneck never waits for a consumer that keeps up on average, and every kernel
runs at the pace of the slowest (:attr:`Accelerator.cycles_per_frame`). A chain of kernels
cannot deadlock at any depth, since each makes progress whenever its output is taken.

*Forks and joins (deadlock freedom).* A duplicate hands every beat to all its branches in
the same cycle, and a join (:meth:`take_times` of its plan: AddStreams takes beat ``n`` of
both inputs together, Concat takes them in its output order) needs the branches' beats in
step. A branch that needs many input beats before its first output (a convolution's
sliding window fills rows of its line buffer) makes the other branch's beats wait at the
join. Let ``m(n)`` be the duplicate's beats a branch has read when the join takes its beat
``n``; the join's FIFO on the other branch then holds ``m(n) - n`` beats (and the beats
that branch's own kernels hold less). If that FIFO is full the duplicate stops, both
branches starve, and the pipeline deadlocks, unless its depth is at least
``max_n (m(n) - n)``. The elaborator computes exactly that from the schedules: it runs the
kernels' output schedules (:meth:`~hwgen.kernel.StreamKernel.schedule`) through the DAG for
three frames (the first offered every cycle, the next ones a bottleneck period later) with
every FIFO unbounded, and sizes each join FIFO to the most beats that wait in it, plus two.
Unbounded FIFOs make every branch read its input as early as it can, so these ``m(n)`` are
upper bounds of the real ones (a branch slowed by a full FIFO, or a throttled input, only
reads later, and the duplicate then hands fewer beats to the waiting branch). With these
depths no FIFO of the free-running schedule ever fills, which is therefore the pipeline's
schedule: it cannot deadlock, and runs at its bottleneck's rate under any back-pressure
(FINN sizes these FIFOs by simulation, and its users meet deadlocks on long residual paths;
here the depth is a property of the kernels' schedules).

Timing properties are computed, not simulated: :attr:`Pipeline.cycles_per_frame` is the
bottleneck stage's, and :attr:`Pipeline.latency` follows the first frame's beats through
every stage with each kernel's own output schedule (no stalls, FIFOs never full).
"""

import multiprocessing
import os
import re
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import data, wiring

from hwgen.kernel import PlannedComponent, StreamFormat, StreamKernel
from hwgen.plumbing.fifo import StreamFIFOPlan
from hwgen.plumbing.width import WidthConverterPlan
from hwgen.registry import kernel
from hwgen.resources import Resources

from .errors import GraphError
from .ir import element_shape

__all__ = ["Accelerator", "Pipeline", "elaborate", "fifo_depth", "Stage", "StageInstance",
           "stage_names", "stage_module", "stitched_verilog"]


def fifo_depth(consumer, waiting=0):
    """Beats of the FIFO in front of a consumer plan: its ``input_burst`` (capped at a
    frame) and the beats ``waiting`` there at a join, plus two; at least 3, the least depth
    that moves a beat per cycle (see the module documentation)."""
    beats = consumer.in_beats_per_frame if len(consumer.inputs) == 1 else 1
    burst = min(consumer.input_burst, beats) if len(consumer.inputs) == 1 else 1
    return max(3, burst + 2, waiting + 2)


#: Frames of the schedule that sizes the join FIFOs.
SIZING_FRAMES = 3


class Stage:
    """One kernel of the pipeline: a plan of the kernel contract and where its inputs come
    from.

    Attributes
    ----------
    kind : str
        The registered kernel (:data:`hwgen.registry.KERNELS`): ``"mvau"``, ``"width"``,
        ``"fifo"``, ``"duplicate"``, ...
    name : str
        The layer's name, or ``"<consumer>.width"`` / ``"<consumer>.fifo"`` for the parts of a
        link, ``"<edge>.fork"`` for a duplicate.
    plan : hwgen.kernel.StreamKernel
    layer : IR layer or None
    sources : dict
        Input port -> ``(stage, output port)``; ``(None, "i")`` is the network input.
    """

    def __init__(self, kind, name, plan, layer=None):
        self.kind, self.name, self.plan, self.layer = kind, name, plan, layer
        self.sources = {}
        self.link = None  # a FIFO's (consumer stage, port)

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
        Every kernel in a topological order: layers, duplicates, width converters and
        FIFOs.
    """

    def __init__(self, network, kernel_options=None):
        if not network.layers:
            raise GraphError(f"network {network.name!r} has no layers to elaborate")
        self.network = network
        self.stages = []
        self._edges = {"input": (network.input_elements, network.input_type)}
        self._producers = {"input": (None, "i")}
        self._readers = {}
        for layer in network.layers:
            for edge in layer.inputs:
                self._readers[edge] = self._readers.get(edge, 0) + 1
        self._forks = {}
        self._in_format = None
        for layer in network.layers:
            stage = Stage(layer.kind, layer.name,
                          layer.plan(**_options_for(layer, kernel_options)), layer)
            for port, edge in zip(stage.plan.inputs, layer.inputs):
                source = self._branch(edge, stage.plan.inputs[port])
                stage.sources[port] = self._link(source, edge, stage, port)
            self.stages.append(stage)
            self._producers[layer.name] = (stage, "o")
            self._edges[layer.name] = (layer.out_elements, layer.output_type)
        self._out_shape = element_shape(network.layers[-1].output_type)
        self._out_lanes = self.stages[-1].plan.output_format.lanes
        super().__init__()
        self._size_fifos()

    # -- structure ----------------------------------------------------------------------------
    def _format(self, source, wanted):
        """The :class:`StreamFormat` of a source (the network input takes ``wanted``)."""
        stage, port = source
        if stage is None:
            if self._in_format is None:
                self._in_format = wanted
            return self._in_format
        return stage.plan.outputs[port]

    def _branch(self, edge, wanted):
        """The source of the next reader of ``edge``: its producer, or the next branch of
        the edge's duplicate when several layers read it."""
        source = self._producers[edge]
        if self._readers[edge] == 1:
            return source
        if edge not in self._forks:
            elements, dtype = self._edges[edge]
            lanes = self._format(source, wanted).lanes
            plan = kernel("duplicate").plan(channels=lanes, pe=lanes,
                                            elem_shape=element_shape(dtype),
                                            branches=self._readers[edge],
                                            vectors=elements // lanes)
            fork = Stage("duplicate", f"{edge}.fork", plan)
            fork.sources["i"] = source
            self.stages.append(fork)
            self._forks[edge] = [fork, 0]
        fork = self._forks[edge]
        fork[1] += 1
        return fork[0], f"o{fork[1] - 1}"

    def _link(self, source, edge, consumer, port):
        """Append the width converter and FIFO between ``source`` and ``consumer.port``;
        returns the consumer's source."""
        wanted = consumer.plan.inputs[port]
        if source[0] is None and self._in_format is None:
            self._in_format = wanted
            return source
        lanes = self._format(source, wanted).lanes
        elements = self._edges[edge][0]
        name = consumer.name + ("" if port == "i" else f".{port}")
        if lanes != wanted.lanes:
            width = Stage("width", f"{name}.width", WidthConverterPlan(
                elem_shape=wanted.elem_shape, in_lanes=lanes, out_lanes=wanted.lanes,
                elems_per_frame=elements))
            width.sources["i"] = source
            self.stages.append(width)
            source = (width, "o")
        beats = elements // wanted.lanes
        fifo = Stage("fifo", f"{name}.fifo", StreamFIFOPlan(
            elem_shape=wanted.elem_shape, lanes=wanted.lanes, depth=3,
            beats_per_frame=beats))
        fifo.sources["i"] = source
        fifo.link = (consumer, port)
        self.stages.append(fifo)
        return fifo, "o"

    def _size_fifos(self):
        """Set every FIFO's depth (see the module documentation)."""
        period = self.cycles_per_frame
        times = self._schedule(list(range(self.in_beats_per_frame)))
        for fifo in self.stages:
            if fifo.link is None:
                continue
            consumer, port = fifo.link
            waiting = 0
            if len(consumer.plan.inputs) > 1:
                arrivals = self._times(times, fifo.sources["i"])
                taken = consumer.plan.take_times(
                    {p: self._times(times, source)
                     for p, source in consumer.sources.items()})[port]
                waiting = _most_waiting(arrivals, taken, period)
            plan = fifo.plan
            fifo.plan = StreamFIFOPlan(elem_shape=plan.input_format.elem_shape,
                                       lanes=plan.input_format.lanes,
                                       depth=fifo_depth(consumer.plan, waiting),
                                       beats_per_frame=plan.in_beats_per_frame)

    def _schedule(self, in_times):
        """Output beat cycles per ``(stage, port)`` for the network input at ``in_times``."""
        times = {}
        for stage in self.stages:
            ports = {port: self._times(times, source, in_times)
                     for port, source in stage.sources.items()}
            for port, out in stage.plan.schedule(ports).items():
                times[(id(stage), port)] = out
        return times

    @staticmethod
    def _times(times, source, in_times=None):
        stage, port = source
        if stage is None:
            return list(in_times) if in_times is not None else times["input"]
        return times[(id(stage), port)]

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
        return self.network.input_elements // self._in_format.lanes

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
        """The stages' output schedules through the DAG."""
        return self._schedule(in_times)[(id(self.stages[-1]), "o")]

    def fps(self, clock_mhz):
        """Frames per second in steady state at ``clock_mhz``."""
        return clock_mhz * 1e6 / self.cycles_per_frame

    def estimate(self):
        """Sum of the stages' analytic estimates (UltraScale+), a
        :class:`hwgen.resources.Resources`."""
        return sum((stage.estimate() for stage in self.stages), Resources())


def _most_waiting(arrivals, taken, period, frames=SIZING_FRAMES):
    """The most beats waiting in a FIFO whose beats arrive at ``arrivals`` and leave at
    ``taken`` (one frame each), over ``frames`` frames ``period`` cycles apart."""
    arrivals = np.sort(np.concatenate([np.asarray(arrivals) + f * period
                                       for f in range(frames)]))
    taken = np.concatenate([np.asarray(taken) + f * period for f in range(frames)])
    taken = np.maximum.accumulate(taken)
    arrived = np.searchsorted(arrivals, taken, side="right")
    return int(max(0, (arrived - np.arange(len(taken))).max(initial=0)))


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

    #: When set (by :func:`stitched_verilog`): ``id(stage) -> (module, ports)``, and every
    #: stage is an instance of its own Verilog module instead of its component.
    stage_modules = None

    # -- hardware -----------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        built = {}
        for name, stage in zip(stage_names(self.stages), self.stages):
            if self.stage_modules is None:
                part = stage.plan.build()
            else:
                part = StageInstance(stage.plan, *self.stage_modules[id(stage)])
            m.submodules[name] = built[id(stage)] = part
        for stage in self.stages:
            for port, (source, source_port) in stage.sources.items():
                stream = self.i if source is None else getattr(built[id(source)], source_port)
                _connect(m, stream, getattr(built[id(stage)], port))
        _connect(m, built[id(self.stages[-1])].o, self.o)
        return m


def stage_names(stages):
    """The submodule name of every stage, in order: ``s{index}_{name}`` (non-word characters
    as ``_``)."""
    names, used = [], set()
    for index, stage in enumerate(stages):
        name = f"s{index}_" + re.sub(r"\W", "_", stage.name)
        while name in used:
            name += "_"
        used.add(name)
        names.append(name)
    return names


def stage_module(top, stage_name):
    """The Verilog module of a stage in a stitched ``top.v`` (:func:`stitched_verilog`)."""
    return f"{top}_{stage_name}"


class StageInstance(wiring.Component):
    """A stage of a stitched accelerator: an instance of the stage's own Verilog module
    (written by :func:`stitched_verilog`), with the ports of the stage's plan. The same
    wrapper, behind :class:`hwgen.export.axis.AXIStreamShell`, lets one stage of a written
    ``top.v`` be simulated on its own (:mod:`graph.localize`).

    Parameters
    ----------
    plan : hwgen.kernel.StreamKernel
    module : str
        The Verilog module's name.
    ports : dict
        Its ports, ``{name: (direction, width)}`` (:func:`sim.sources.module_ports`): the
        plan's members flattened with ``__`` (``i__payload``...), and ``clk``/``rst`` when it
        has registers.
    """

    def __init__(self, plan, module, ports):
        self.plan, self.module, self.ports = plan, module, dict(ports)
        super().__init__(plan.members())

    def elaborate(self, platform):
        m = Module()
        connections = {}
        for path, member, value in self.signature.flatten(self):
            name = "__".join(map(str, path))
            if name not in self.ports:
                if member.flow == wiring.Out:
                    raise GraphError(f"module {self.module} has no port {name} for the "
                                     f"output {'.'.join(map(str, path))} of its stage")
                continue        # an input the module does not read
            connections[("i_" if member.flow == wiring.In else "o_") + name] = value
        if "clk" in self.ports:
            connections["i_clk"] = ClockSignal()
        if "rst" in self.ports:
            connections["i_rst"] = ResetSignal()
        m.submodules.stage = Instance(self.module, **connections)
        return m


def stitched_verilog(accelerator, name="top"):
    """The Verilog of an :class:`Accelerator` behind the AXI4-Stream shell, with every stage
    in a module of its own (``{name}_{stage name}``, :func:`stage_module`) that the top level
    instantiates. It is the same hardware as :func:`hwgen.export.verilog.kernel_verilog` of
    the accelerator, but each stage's module has plain port names (``i__payload``,
    ``o__valid``...), so that one stage of the written file can be simulated on its own."""
    from hwgen.export.axis import AXIStreamShell
    from hwgen.export.verilog import component_rtlil, rtlil_ports, rtlil_to_verilog
    texts, modules = [], {}
    jobs = [(stage_module(name, stage_name), stage)
            for stage_name, stage in zip(stage_names(accelerator.stages), accelerator.stages)]
    for (module, stage), text in zip(jobs, _stage_rtlil_texts(jobs)):
        modules[id(stage)] = (module, rtlil_ports(text, module))
        texts.append(text.replace("attribute \\top 1\n", "", 1))   # one top: the shell
    accelerator.stage_modules = modules
    try:
        top = component_rtlil(AXIStreamShell(accelerator), name=name)
    finally:
        accelerator.stage_modules = None
    return rtlil_to_verilog(top, *texts)


#: The stages being converted by :func:`_stage_rtlil_texts`'s forked workers.
_JOBS = None


def component_rtlil_of(module, stage):
    """The RTLIL text of one stage as module ``module``."""
    from hwgen.export.verilog import component_rtlil
    return component_rtlil(stage.plan.build(), name=module)


def _stage_rtlil(index):
    return component_rtlil_of(*_JOBS[index])


def _stage_rtlil_texts(jobs):
    """The RTLIL text of every ``(module, stage)`` job, in order. Stages are independent, so
    with more than one core they are converted in forked worker processes (the largest
    first, by estimated LUTs); without ``fork`` (Windows, macOS's default), or in a process
    with other threads, one by one."""
    global _JOBS
    workers = min(len(jobs), os.cpu_count() or 1)
    # forking is only safe from a single-threaded process (not from a Dask worker's thread)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods() or \
            threading.active_count() > 1:
        return [component_rtlil_of(module, stage) for module, stage in jobs]
    order = sorted(range(len(jobs)), key=lambda k: -jobs[k][1].estimate().lut_equivalent())
    _JOBS = jobs
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            texts = dict(zip(order, pool.map(_stage_rtlil, order)))
    finally:
        _JOBS = None
    return [texts[index] for index in range(len(jobs))]


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
