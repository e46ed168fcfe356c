"""Concat: join two or more feature-map streams along the channel axis.

Input ``k`` (port ``i{k}``) carries ``channels[k]`` channels per pixel; the output ``o``
carries, per pixel, all channels of input 0, then all of input 1, and so on (ONNX
``Concat`` over the channel axis of NHWC feature maps). The inputs share the pixel count
``vectors`` and the lanes per beat ``pe``, which must divide every ``channels[k]``, so that
no output beat mixes two inputs; put a width converter in front of an input that streams
another ``pe``. Element shapes may differ: the output shape is the narrowest that holds every
input's range (:func:`~hwgen.shapes.shape_for_range`), and values pass unchanged (sign- or
zero-extended).

Algorithm: a cursor ``(input, beat)`` walks each pixel's segments, ``channels[k] / pe``
beats of input ``k`` in turn. Only the current input sees ``ready`` (the others wait, their
beats held by their producers); its beat goes through one register stage under a
:class:`~hwgen.control.StallPipeline`, and the cursor steps with every beat taken. With the
current input offered and the output taken, one beat per cycle and no bubble at a segment
or pixel boundary; latency 1.

Cost: the output register (``pe`` lanes of the output shape) with an ``N``:1 multiplexer
per bit, and the cursor: an input index and a beat counter with the compare that ends a
segment.
"""

from amaranth.hdl import Array, Const, Module, Mux, Shape, Signal

from ..checks import check_shape
from ..control import StallPipeline
from ..featuremap import check_channel_fold
from ..kernel import PlannedComponent, StreamFormat, StreamKernel, pipelined_times
from ..resources import Resources
from ..shapes import shape_for_range, shape_range

__all__ = ["Concat", "ConcatPlan"]


def _check_channels(channels):
    if not isinstance(channels, (list, tuple)) or len(channels) < 2:
        raise TypeError(f"channels must be a list or tuple of 2 or more channel counts (one "
                        f"per input), not {channels!r}")
    return tuple(channels)


def _check_elem_shapes(elem_shapes, inputs):
    """One shape for every input, or one per input."""
    if not isinstance(elem_shapes, (list, tuple)):
        elem_shapes = (check_shape("elem_shapes", elem_shapes),) * inputs
    elif len(elem_shapes) != inputs:
        raise ValueError(f"elem_shapes must be one shape or {inputs} shapes (one per input), "
                         f"not {len(elem_shapes)}")
    return tuple(check_shape(f"elem_shapes[{k}]", shape) for k, shape in enumerate(elem_shapes))


class ConcatPlan(StreamKernel):
    """The analysis of :class:`Concat` (same parameters)."""

    def __init__(self, *, channels, pe=1, elem_shapes, vectors=1):
        channels = _check_channels(channels)
        checked = [check_channel_fold(count, pe, vectors, channels_name=f"channels[{k}]")
                   for k, count in enumerate(channels)]
        self._channels = tuple(count for count, _, _ in checked)
        _, self._pe, self._vectors = checked[0]
        self._elem_shapes = _check_elem_shapes(elem_shapes, len(channels))
        super().__init__()

    # -- parameters -------------------------------------------------------------------------
    channels = property(lambda self: self._channels)
    pe = property(lambda self: self._pe)
    vectors = property(lambda self: self._vectors)
    elem_shapes = property(lambda self: self._elem_shapes)

    @property
    def out_channels(self):
        """Channels per output pixel: ``sum(channels)``."""
        return sum(self._channels)

    @property
    def folds(self):
        """Beats per pixel of each input: ``channels[k] / pe``."""
        return tuple(count // self._pe for count in self._channels)

    @property
    def output_shape(self):
        """The narrowest shape holding the values of every input."""
        ranges = [shape_range(shape) for shape in self._elem_shapes]
        return shape_for_range(min(lo for lo, _ in ranges), max(hi for _, hi in ranges))

    @property
    def inputs(self):
        return {f"i{k}": StreamFormat(shape, self._pe)
                for k, shape in enumerate(self._elem_shapes)}

    @property
    def output_format(self):
        return StreamFormat(self.output_shape, self._pe)

    # -- timing -----------------------------------------------------------------------------
    def beats_per_frame(self, port):
        """``vectors * channels[k] / pe`` on ``i{k}``, ``vectors * sum(channels) / pe`` on
        ``o``."""
        if port in self.inputs:
            return self._vectors * self.folds[int(port[1:])]
        return super().beats_per_frame(port)

    @property
    def in_beats_per_frame(self):
        raise NotImplementedError("the inputs of a Concat differ in beats per frame: ask "
                                  "beats_per_frame('i0'), beats_per_frame('i1')...")

    @property
    def out_beats_per_frame(self):
        return self._vectors * sum(self.folds)

    @property
    def cycles_per_frame(self):
        """One output beat per cycle: ``vectors * sum(channels) / pe``."""
        return self.out_beats_per_frame

    latency = 1

    def output_sources(self):
        """``(port, index)`` of the input beat behind every output beat of a frame."""
        sources = []
        for vector in range(self._vectors):
            for k, fold in enumerate(self.folds):
                sources += [(f"i{k}", vector * fold + beat) for beat in range(fold)]
        return sources

    def schedule(self, in_times):
        """Output beat ``n`` leaves the cycle after its input beat arrives, in output order
        and at most one per cycle: ``{"o": times}`` for ``{"i0": ..., "i1": ...}``."""
        arrivals = [in_times[port][index] for port, index in self.output_sources()]
        return {"o": pipelined_times(arrivals, self.latency)}

    def take_times(self, in_times):
        """The cycle each input beat is taken (the join contract the elaborator sizes its
        FIFOs with): ``latency`` cycles before the output beat it becomes."""
        taken = {port: [None] * len(times) for port, times in in_times.items()}
        for (port, index), t in zip(self.output_sources(), self.schedule(in_times)["o"]):
            taken[port][index] = t - self.latency
        return taken

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+: the output register
        with an ``N``:1 multiplexer per bit (``ceil((N - 1) / 3)`` LUTs, a LUT6 being a 4:1
        multiplexer); per input its ``ready``; the cursor (a LUT per counter bit, one for
        the segment end) and two for ``take`` and ``advance``. Against Yosys
        (``synth_xilinx -family xcup``) within 15%."""
        inputs = len(self._channels)
        width = self._pe * self.output_shape.width
        select_bits = (inputs - 1).bit_length()
        count_bits = (max(self.folds) - 1).bit_length()
        mux = width * -(-(inputs - 1) // 3)
        control = inputs + select_bits + count_bits + 3
        return Resources(luts=mux + control, ffs=width + 1 + select_bits + count_bits)


class Concat(ConcatPlan, PlannedComponent):
    """Concatenate feature-map streams along the channels.

    Parameters
    ----------
    channels : list or tuple of int
        Channels per pixel of each input, at least two inputs.
    pe : int
        Channels per beat on every input and the output; must divide every ``channels[k]``.
    elem_shapes : ShapeLike or list of ShapeLike
        One element shape for every input, or one per input.
    vectors : int
        Pixels per frame (``H * W``), the same on every input.

    Members
    -------
    i0 .. i{N-1} : In(stream of ``pe`` x ``elem_shapes[k]``)
    o : Out(stream of ``pe`` x :attr:`output_shape`)
        Per pixel: the channels of ``i0``, then those of ``i1``...

    Examples
    --------
    ::

        cat = Concat(channels=(16, 32), pe=8, elem_shapes=(unsigned(4), signed(3)),
                     vectors=49)
        # cat.output_shape == signed(5), cat.folds == (2, 4)
        # cat.beats_per_frame("i1") == 196, cat.cycles_per_frame == 294, cat.latency == 1
    """

    # -- hardware ---------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        streams = [getattr(self, port) for port in self.inputs]
        folds = self.folds
        take = Signal()
        control = StallPipeline(m, depth=1, take=take, o=self.o)
        select = Signal(range(len(streams)))
        beat = Signal(range(max(2, max(folds))))
        segment_end = Signal()
        m.d.comb += segment_end.eq(beat == Array(Const(fold - 1, Shape.cast(beat.shape()))
                                                 for fold in folds)[select])
        with m.Switch(select):
            for k, stream in enumerate(streams):
                with m.Case(k):
                    m.d.comb += [take.eq(stream.valid), stream.ready.eq(control.advance)]
                    with m.If(control.advance):
                        m.d.sync += [self.o.payload[lane].eq(stream.payload[lane])
                                     for lane in range(self._pe)]
        with m.If(take & control.advance):
            with m.If(segment_end):
                m.d.sync += [beat.eq(0),
                             select.eq(Mux(select == len(streams) - 1, 0, select + 1))]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m


ConcatPlan.component = Concat
