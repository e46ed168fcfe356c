"""Elaboration: one top-level Amaranth component for a folded network.

Every IR layer becomes its hwgen kernel: an :class:`~graph.ir.MVAULayer` an
:class:`hwgen.kernels.mvau.MVAU` (thresholds fused), a :class:`~graph.ir.ThresholdLayer` a
:func:`hwgen.kernels.threshold.Threshold`, a :class:`~graph.ir.LabelSelectLayer` a
:class:`hwgen.kernels.labelselect.LabelSelect`. Flatten and reshape are no-ops on the stream (the
IR has no layer for them). Between two kernels the *link* is::

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

Timing properties are computed, not simulated: :attr:`Accelerator.cycles_per_frame` is the
bottleneck stage's, and :attr:`Accelerator.latency` follows the first frame's beats through
every stage with each kernel's own cycle model (no stalls, FIFOs never full).
"""

import re

from amaranth.hdl import Module, Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .errors import GraphError
from .fold import _silence, mvau_params
from .ir import shape_of

__all__ = ["Accelerator", "elaborate", "fifo_depth", "Stage"]


def fifo_depth(consumer_in_beats):
    """Beats of the FIFO in front of a consumer that takes ``consumer_in_beats`` beats per
    frame (see the module documentation)."""
    return max(3, consumer_in_beats + 2)


def _element_shape(dtype):
    """The Amaranth shape of one stream element of an IR datatype (bipolar: one bit)."""
    shape = shape_of(dtype)
    return Shape.cast(1) if shape == "bipolar" else Shape.cast(shape)


def _port_format(component, port):
    """``(element shape, lanes)`` of a stream port."""
    layout = component.signature.members[port].signature.members["payload"].shape
    return Shape.cast(layout.elem_shape), layout.length


class Stage:
    """One component of the pipeline, in stream order.

    Attributes
    ----------
    kind : str
        ``"mvau"``, ``"threshold"``, ``"labelselect"``, ``"width"`` or ``"fifo"``.
    name : str
        The layer's name, or ``"<consumer>.width"`` / ``"<consumer>.fifo"`` for the parts of a
        link.
    kernel : wiring.Component
    layer : IR layer or None
    """

    def __init__(self, kind, name, kernel, layer=None):
        self.kind, self.name, self.kernel, self.layer = kind, name, kernel, layer

    @property
    def cycles_per_frame(self):
        return self.kernel.cycles_per_frame

    def estimate(self):
        return self.kernel.estimate()

    def out_times(self, in_times):
        """Cycles of the first frame's output beats given those of its input beats (no
        stalls at the output)."""
        kernel = self.kernel
        if self.kind == "mvau":
            return _mvau_times(kernel, in_times)
        if self.kind == "threshold":
            return [t + kernel.latency for t in in_times]
        if self.kind == "labelselect":
            fold = kernel.fold
            return [in_times[(v + 1) * fold - 1] + 3 for v in range(kernel.vectors)]
        if self.kind == "width":
            times, previous = [], None
            ratio_in, ratio_out = kernel.in_lanes, kernel.out_lanes
            for n in range(kernel.out_beats_per_frame):
                ready = in_times[((n + 1) * ratio_out - 1) // ratio_in] + 1
                previous = ready if previous is None else max(ready, previous + 1)
                times.append(previous)
            return times
        # fifo: two cycles through an empty FIFO, one beat per cycle
        times, previous = [], None
        for t in in_times:
            previous = t + kernel.latency if previous is None else max(t + kernel.latency,
                                                                       previous + 1)
            times.append(previous)
        return times


def _mvau_times(unit, in_times):
    """Output beat cycles of an MVAU: fold 0 issues one operation per arriving beat, folds
    1 .. NF-1 replay one per cycle, and a vector's output beat ``nf`` leaves ``depth`` cycles
    after the last operation of fold ``nf``."""
    sf, nf = unit.sf, unit.nf
    depth = unit.latency - (sf - 1)
    times, last_op = [], -1
    for vector in range(unit.vectors):
        for s in range(sf):
            last_op = max(in_times[vector * sf + s], last_op + 1)
        for fold in range(nf):
            if fold:
                last_op += sf
            times.append(last_op + depth)
    return times


def _layer_kernel(layer, mvau_options=None):
    from hwgen.kernels.labelselect import LabelSelect
    from hwgen.kernels.mvau import MVAU
    from hwgen.kernels.threshold import Threshold
    where = f"{layer.kind} layer {layer.name!r}"
    if layer.kind == "mvau":
        # checked here: a kernel whose constructor fails warns that it was never used
        for what, dtype in (("input", layer.input_type), ("weight", layer.weight_type)):
            shape = shape_of(dtype)
            if shape != "bipolar" and not 1 <= shape.width <= 8:
                raise GraphError(f"{where}: {what} datatype {dtype} is wider than the MVAU's "
                                 f"8 bits; supported: BIPOLAR, BINARY, INT2..INT8, "
                                 f"UINT2..UINT8")
    try:
        if layer.kind == "mvau":
            options = mvau_options(layer) if callable(mvau_options) else mvau_options
            return MVAU(**mvau_params(layer, **(options or {})))
        if layer.kind == "threshold":
            thresholds = layer.thresholds
            if layer.input_type == "BIPOLAR":
                # decoded 2b - 1 >= t  <=>  stream bit b >= ceil((t + 1) / 2)
                thresholds = -((-(thresholds + 1)) // 2)
            return Threshold(channels=layer.channels, pe=layer.pe,
                             input_shape=_element_shape(layer.input_type),
                             thresholds=thresholds, bias=layer.bias)
        return LabelSelect(channels=layer.channels, pe=layer.pe, k=layer.k,
                           input_shape=_element_shape(layer.input_type))
    except (TypeError, ValueError) as error:
        raise GraphError(f"{where}: {error}") from None


def _width_converter(name, shape, in_lanes, out_lanes, elements):
    from hwgen.plumbing.width import WidthConverter
    return Stage("width", f"{name}.width", WidthConverter(
        elem_shape=shape, in_lanes=in_lanes, out_lanes=out_lanes, elems_per_frame=elements))


def _fifo(name, shape, lanes, beats):
    from hwgen.plumbing.fifo import StreamFIFO
    return Stage("fifo", f"{name}.fifo", StreamFIFO(
        elem_shape=shape, lanes=lanes, depth=fifo_depth(beats), beats_per_frame=beats))


class Accelerator(wiring.Component):
    """The streaming pipeline of a folded network (see the module documentation).

    Parameters
    ----------
    network : graph.ir.Network
        With its folding (``pe``, ``simd``, ``datapath``, ``mem_style``) set, for example by
        :func:`graph.fold.fold`.

    Members
    -------
    i : In(stream of the first kernel's input lanes of the network input datatype)
        A frame is the network input's elements in C order, ``in_lanes`` per beat.
    o : Out(stream of the last kernel's output lanes of the output datatype)
        A frame is the last layer's output elements, ``out_lanes`` per beat.

    Attributes
    ----------
    network : graph.ir.Network
    stages : list of :class:`Stage`
        Every component in stream order: layers, width converters and FIFOs.

    ``mvau_options`` (optional): extra :class:`hwgen.kernels.mvau.MVAU` keyword arguments for every
    MVAU layer, as a dict or a function of the layer returning one; implementation choices
    that leave the function and the folding alone, for example ``pipeline_every`` or
    ``mem_style`` for a device (see :mod:`boards.build`).
    """

    def __init__(self, network, mvau_options=None):
        self._MustUse__silence = True        # until built: a failed construction is not unused
        if not network.layers:
            raise GraphError(f"network {network.name!r} has no layers to elaborate")
        self.network = network
        self.stages = []
        self._links = []        # (producer index or None, consumer index or None)
        previous = None
        for layer in network.layers:
            stage = Stage(layer.kind, layer.name, _layer_kernel(layer, mvau_options), layer)
            if previous is not None:
                out_shape, out_lanes = _port_format(previous.kernel, "o")
                in_shape, in_lanes = _port_format(stage.kernel, "i")
                if out_lanes != in_lanes:
                    self.stages.append(_width_converter(layer.name, in_shape, out_lanes,
                                                        in_lanes, layer.in_elements))
                self.stages.append(_fifo(layer.name, in_shape, in_lanes,
                                         stage.kernel.in_beats_per_frame))
            self.stages.append(stage)
            previous = stage
        for stage in self.stages:
            _silence(stage.kernel)
        in_shape, in_lanes = _port_format(self.stages[0].kernel, "i")
        _, out_lanes = _port_format(self.stages[-1].kernel, "o")
        out_shape = _element_shape(network.layers[-1].output_type)
        super().__init__({
            "i": In(_lanes_signature(in_shape, in_lanes)),
            "o": Out(_lanes_signature(out_shape, out_lanes)),
        })
        self._MustUse__silence = False

    # -- description --------------------------------------------------------------------------
    @property
    def in_lanes(self):
        return _port_format(self, "i")[1]

    @property
    def out_lanes(self):
        return _port_format(self, "o")[1]

    @property
    def in_beats_per_frame(self):
        return self.stages[0].kernel.in_beats_per_frame

    @property
    def out_beats_per_frame(self):
        return self.stages[-1].kernel.out_beats_per_frame

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
        times = list(range(self.in_beats_per_frame))
        for stage in self.stages:
            times = stage.out_times(times)
        return times[0]

    def fps(self, clock_mhz):
        """Frames per second in steady state at ``clock_mhz``."""
        return clock_mhz * 1e6 / self.cycles_per_frame

    def estimate(self):
        """Sum of the stages' analytic estimates (UltraScale+): ``luts``, ``ffs``,
        ``lutram``, ``bram18``, ``dsp48e2`` and ``carry``."""
        total = dict.fromkeys(("luts", "ffs", "lutram", "bram18", "dsp48e2", "carry"), 0)
        for stage in self.stages:
            for key, value in stage.estimate().items():
                if key in total:
                    total[key] += value
        return total

    # -- hardware -----------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        used = set()
        for index, stage in enumerate(self.stages):
            name = f"s{index}_" + re.sub(r"\W", "_", stage.name)
            while name in used:
                name += "_"
            used.add(name)
            m.submodules[name] = stage.kernel
        _connect(m, self.i, self.stages[0].kernel.i)
        for producer, consumer in zip(self.stages, self.stages[1:]):
            _connect(m, producer.kernel.o, consumer.kernel.i)
        _connect(m, self.stages[-1].kernel.o, self.o)
        return m


def _lanes_signature(shape, lanes):
    from hwgen.streams import lanes_signature
    return lanes_signature(shape, lanes)


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


def elaborate(network):
    """The :class:`Accelerator` of a folded network."""
    return Accelerator(network)
