"""Feature-map geometry shared by the CNN kernels.

A feature map of ``height`` x ``width`` pixels of ``channels`` channels streams in NHWC
order, channels fastest: beat ``f`` of a pixel carries channels ``f * lanes .. f * lanes +
lanes - 1`` (``lanes`` is the kernel's PE or SIMD), pixels left to right, rows top to
bottom. A pixel is ``fold = channels / lanes`` beats.

* **Channel folding.** :func:`check_channel_fold` validates that geometry (the lanes must
  divide the channels) with the wording of :mod:`hwgen.checks`; :class:`ChannelFold` is the
  plan mix-in of a kernel that moves one beat per cycle on streams of ``vectors`` pixels of
  that geometry (fork, join and channel-wise kernels): it keeps the parameters and answers
  the frame and timing numbers.
* **Map walks.** A kernel that turns one map into another (padding, pooling) walks the NHWC
  order with :func:`pixel_counters` (a fold counter, then a column and a row counter, each
  stepping when the one before wraps), so position logic is a function of three small
  counters. :class:`MapKernelPlan` is the analysis such kernels share: the geometry, beats
  per frame, and a schedule in which every output beat waits for one input beat of its
  frame; :func:`frames_out_times` chains that schedule over consecutive frames.

Per-axis parameters (a kernel size, a stride, padding per side) are checked by
:func:`hwgen.checks.check_per_axis`.
"""

from .checks import check_divides, check_int, check_per_axis
from .control import fold_counter
from .kernel import StreamKernel, pipelined_times

__all__ = ["check_channel_fold", "ChannelFold", "MapKernelPlan", "pixel_counters",
           "frames_out_times"]


def check_channel_fold(channels, pe, vectors, *, channels_name="channels", lanes_name="pe"):
    """``(channels, pe, vectors)`` as ints: each at least 1 and ``pe`` dividing ``channels``.

    Parameters
    ----------
    channels, pe, vectors : int
        Channels per pixel, channels per beat, pixels per frame.
    channels_name, lanes_name : str
        The names of ``channels`` and ``pe`` in messages (``"channels[1]"`` for one of
        several inputs, ``"simd"`` for a kernel whose lanes are called so).

    Raises
    ------
    TypeError, ValueError
        ``"pe=3 must divide channels=8; valid pe: [1, 2, 4, 8]"`` and the wording of
        :func:`hwgen.checks.check_int`.

    Examples
    --------
    >>> check_channel_fold(8, 2, 49)
    (8, 2, 49)
    """
    channels = check_int(channels_name, channels, 1)
    pe = check_divides(lanes_name, check_int(lanes_name, pe, 1), channels_name, channels)
    return channels, pe, check_int("vectors", vectors, 1)


class ChannelFold:
    """Plan mix-in for a kernel whose streams all carry one channel-folded geometry, one
    beat per cycle (``class AddStreamsPlan(ChannelFold, StreamKernel)``).

    A subclass's constructor calls :meth:`_set_channel_fold` before ``super().__init__()``.

    Attributes
    ----------
    channels, pe, vectors : int
        Channels per pixel, channels per beat, pixels per frame.
    fold : int
        Beats per pixel: ``channels / pe``.
    beats : int
        Beats per frame on every stream: ``vectors * fold``; also
        ``in_beats_per_frame``, ``out_beats_per_frame`` and ``cycles_per_frame`` (one beat
        per cycle in steady state).
    """

    def _set_channel_fold(self, channels, pe, vectors):
        self._channels, self._pe, self._vectors = check_channel_fold(channels, pe, vectors)

    channels = property(lambda self: self._channels)
    pe = property(lambda self: self._pe)
    vectors = property(lambda self: self._vectors)

    @property
    def fold(self):
        """Beats per pixel: ``channels / pe``."""
        return self._channels // self._pe

    @property
    def beats(self):
        """Beats per frame: ``vectors * channels / pe``."""
        return self._vectors * self.fold

    @property
    def in_beats_per_frame(self):
        """Beats per frame on each input."""
        return self.beats

    @property
    def out_beats_per_frame(self):
        """Beats per frame on each output."""
        return self.beats

    @property
    def cycles_per_frame(self):
        """One beat per cycle: ``vectors * channels / pe``."""
        return self.beats

    input_burst = 1  # one beat per cycle in and out


class MapKernelPlan(StreamKernel):
    """The analysis shared by kernels that turn one NHWC feature map into another (padding,
    pooling): the input map, the channels and lanes per beat, beats per frame, and the
    output schedule of a kernel in which every output beat waits for one input beat of its
    frame (its *source*) and leaves :attr:`source_delay` cycles after that beat arrives, at
    most one beat per cycle.

    A subclass's constructor calls :meth:`_set_map` before ``super().__init__()`` and the
    subclass defines :attr:`ofm` and :meth:`source_beats`.

    Attributes
    ----------
    ifm : (H, W)
        The input map.
    channels : int
    fold : int
        Beats per pixel: ``channels`` over the lanes per beat.
    """

    #: Cycles from the arrival of an output beat's source to the output beat.
    source_delay = 1

    def _set_map(self, ifm, channels, lanes, lanes_name):
        self._height, self._width = check_per_axis("ifm", ifm, ("H", "W"))
        self._channels, self._lanes, _ = check_channel_fold(channels, lanes, 1,
                                                            lanes_name=lanes_name)

    ifm = property(lambda self: (self._height, self._width), doc="Input map ``(H, W)``.")
    channels = property(lambda self: self._channels)

    @property
    def fold(self):
        """Beats per pixel: ``channels`` over the lanes per beat."""
        return self._channels // self._lanes

    @property
    def ofm(self):
        """Output map ``(OH, OW)``."""
        raise NotImplementedError

    @property
    def in_beats_per_frame(self):
        return self._height * self._width * self.fold

    @property
    def input_burst(self):
        """One input row and two pixels: while a kernel writes a border or the windows of a
        row it may read nothing, then reads at one beat per cycle."""
        return (self._width + 2) * self.fold

    @property
    def out_beats_per_frame(self):
        return self.ofm[0] * self.ofm[1] * self.fold

    @property
    def cycles_per_frame(self):
        """One beat per cycle on the busier side: the larger of the beats per frame."""
        return max(self.in_beats_per_frame, self.out_beats_per_frame)

    def source_beats(self):
        """For every output beat of a frame, the index of the input beat it waits for."""
        raise NotImplementedError

    @property
    def latency(self):
        """From the first input beat's arrival to the first output beat: ``source_delay``
        cycles after the arrival of the first output beat's source."""
        return self.source_beats()[0] + self.source_delay

    def out_times(self, in_times):
        """Output beat ``n`` leaves :attr:`source_delay` cycles after its source arrives
        (:meth:`source_beats`), and at least one cycle after output beat ``n - 1``."""
        return pipelined_times([in_times[j] for j in self.source_beats()], self.source_delay)


def pixel_counters(m, *, height, width, fold, step, name):
    """Row, column and fold counters walking a ``height`` x ``width`` map in NHWC order,
    one beat when ``step`` is high; the row counter wraps at the end of the frame.

    Returns
    -------
    row, column, fold : Signal
        The position of the beat the next ``step`` moves past.
    """
    fold_index, fold_last = fold_counter(m, fold, step, name=f"{name}_fold")
    column, column_last = fold_counter(m, width, step & fold_last, name=f"{name}_col")
    row, _ = fold_counter(m, height, step & fold_last & column_last, name=f"{name}_row")
    return row, column, fold_index


def frames_out_times(kernel, in_times):
    """Output cycles of consecutive frames: :meth:`~hwgen.kernel.StreamKernel.out_times` of
    every frame, no output beat earlier than one cycle after the one before (a kernel that
    puts out at most one beat per cycle, such as :class:`~hwgen.kernels.pad.Pad` and the
    pooling kernels).

    Parameters
    ----------
    kernel : StreamKernel
    in_times : sequence of int
        Arrival cycles of the input beats of whole frames.

    Returns
    -------
    list of int

    Examples
    --------
    >>> from amaranth.hdl import unsigned
    >>> from hwgen.kernels.pad import PadPlan
    >>> pad = PadPlan(ifm=(1, 1), channels=1, padding=(0, 1, 0, 0), elem_shape=unsigned(2))
    >>> frames_out_times(pad, [0, 1])        # the second frame's border waits for the first
    [1, 2, 3, 4]
    """
    frame = kernel.in_beats_per_frame
    if len(in_times) % frame:
        raise ValueError(f"{len(in_times)} input beats are not whole frames of {frame} beats")
    times = []
    for start in range(0, len(in_times), frame):
        for time in kernel.out_times(list(in_times[start:start + frame])):
            times.append(time if not times else max(time, times[-1] + 1))
    return times
