"""Sliding-window generator (FINN's ConvolutionInputGenerator): im2col on a stream.

The input is an NHWC feature map of ``H x W`` pixels of ``C`` channels, ``simd`` channels
per beat: channels fastest, then columns, then rows (beat ``k`` of a pixel carries
channels ``k*simd .. k*simd + simd - 1``). A window of ``K_h x K_w`` pixels, dilated by
``(d_h, d_w)``, spans ``(K_h - 1) * d_h + 1`` rows and ``(K_w - 1) * d_w + 1`` columns and
moves by ``(s_h, s_w)``: there are ``OH x OW`` output pixels, ``OH = (H - span_h) // s_h + 1``
(likewise ``OW``), as ONNX ``Conv`` without padding (pad first, with the padding kernel).
Pixels that no window covers (a stride larger than the span, or rows and columns left over
at the end) are read and dropped.

Output orders, per output pixel in row-major order:

``parallel="none"`` (default): the order of an MVAU's weight columns: for each kernel row
    ``kh``, kernel column ``kw`` and channel fold ``f``, one beat of the ``simd`` channels
    ``f*simd ..`` of input pixel ``(oy*s_h + kh*d_h, ox*s_w + kw*d_w)``:
    ``OH * OW * K_h * K_w * C / simd`` beats per frame; an MVAU with ``mw = K_h*K_w*C``
    and the same ``simd`` consumes them (one vector per output pixel).
``parallel="row"``: one beat per kernel row, ``K_w * C`` elements in (kernel column,
    channel) order (element ``kw*C + c``): ``OH * OW * K_h`` beats, for an MVAU with
    ``simd = K_w*C``.
``parallel="window"``: one beat per output pixel, all ``K_h*K_w*C`` elements in (kernel row,
    kernel column, channel) order, for a fully unrolled MVAU (``simd = K_h*K_w*C``).
``depthwise=True``: the order of a VVAU (:mod:`hwgen.kernels.vvau`): for each channel fold
    ``f`` of ``simd`` channels and each window fold ``v`` of ``window_simd`` window positions
    (positions ``kh*K_w + kw`` in (kernel row, kernel column) order), one beat of
    ``simd * window_simd`` elements, element ``p*window_simd + s`` being channel
    ``f*simd + p`` at window position ``v*window_simd + s``. A VVAU with ``pe = simd`` and
    ``simd = window_simd`` consumes exactly this: ``OH * OW * C/simd * K_h*K_w/window_simd``
    beats per frame.

Algorithm. The buffer is a circular line buffer in one ``amaranth.lib.memory`` memory of
``D`` *words* (a word is one input beat, or in the ``row``/``window`` modes one whole pixel of
``C`` channels assembled from its ``C/simd`` beats), not a frame buffer: the input word with
index ``n`` (counted from the start of the stream) sits at address ``n mod D``. Everything a
window needs lies in ``L = ((span_h - 1) * W + span_w) * words_per_pixel`` consecutive words,
and ``D = L + 2`` (a frame at most, for maps hardly larger than the window): for stride and
dilation 1, ``(K_h - 1)*W*C + K_w*C``
elements plus two words that let the input run ahead of the oldest word still needed (a
write becomes readable the cycle after, and a read frees its word the cycle after).

* A *writer* counts the words written (``w``) and writes word ``w`` at ``w mod D`` when it fits:
  ``w < low + D``, where ``low`` is the oldest word the output still needs.
* A *reader*, the address generator, walks (output pixel, then the beats of the order above)
  with counters, and keeps the stream index ``idx`` of the first word of the next beat and
  the next pixel's base (its first word). A beat that reads ``P`` words (``P = 1``;
  ``window_simd`` for depthwise, ``K_w`` for a row, ``K_h*K_w`` for a window; one read port
  each) is issued when its last word has been written (``idx + span_of_beat < w``).
  ``low`` is the smaller of the next pixel's base and, in the MVAU orders, ``idx`` (the reads
  of a pixel go to increasing addresses); in the depthwise order, which reads the window once
  per channel fold, the current fold's first word until the last fold, then ``idx``.

Indices are kept modulo a power of two larger than twice their spread, so that the
comparisons are short subtractions; addresses are kept modulo ``D`` by the same steps. Both
sides move one word or beat per cycle: reads and writes go to the two ports of a simple
dual-port memory in the same cycle, and a read of the word written in that cycle is never
needed (it waits one cycle). Back-pressure: the output register is the memory's registered
read port, and the address generator advances with the :class:`~hwgen.control.StallPipeline`
(``~o.valid | o.ready``), so a stalled output freezes the read side while the input keeps
filling the free space; ``i.ready`` depends on registers only. Frames stream back to back: the
writer fills the next frame's first rows while the reader finishes the last output row.

Timing. The input gives ``H * W * C / simd`` beats per frame and the output takes
:attr:`~SlidingWindowPlan.out_beats_per_frame`; each side moves at most one beat per cycle,
and as fast as the buffer lets it. :meth:`~SlidingWindowPlan.schedule_frames` is the exact
beat-level model of the control above, which :meth:`~SlidingWindowPlan.out_times` and the
timing properties use: an input beat is taken at the latest of its arrival, the cycle after
the previous input beat and, for the last beat of a word, the cycle after the read that frees
the word's place; an output beat leaves at the latest of the cycle after the previous output
beat and two cycles after its last word's input beat. The latency is 2 cycles in the MVAU
order (the first beat needs the first word only), more with ``parallel`` or ``window_simd``.
:attr:`~SlidingWindowPlan.cycles_per_frame` is the model's steady state: at least
``max(in_beats, out_beats)``, plus the cycles the output waits for the next frame's first
window rows (the buffer holds one window's rows, so the writer can fill the next frame only as
the last output row frees them); for example ``out_beats + 1`` for a 3x3 window on an 8x8x3
map with ``simd=3``.

Cost: the memory (``D`` words of ``simd`` or ``C`` elements; block RAM, LUT RAM or flip-flops
by ``mem_style``; one copy per read port when ``P > 1``), its registered read data (the output
register), a pixel assembly register of ``C - simd`` elements in the ``row``/``window`` modes,
and the control: counters for the pixel, the window fold and the channel fold, three or four
stream indices and three address registers of a dozen or two bits, and three
subtract-and-compares. Calibrated against Yosys (:meth:`~SlidingWindowPlan.estimate`).
"""

from functools import lru_cache

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory

from ..checks import check_bool, check_divides, check_int, check_one_of, check_shape
from ..control import StallPipeline, fold_counter
from ..kernel import PlannedComponent, StreamFormat, StreamKernel
from ..memory import RAM_STYLE
from ..resources import Resources, memory_cost
from ..checks import check_per_axis

__all__ = ["SlidingWindow", "SlidingWindowPlan", "PARALLEL", "MEM_STYLES", "LOOKAHEAD_WORDS",
           "output_size"]

PARALLEL = ("none", "row", "window")
MEM_STYLES = ("auto", "lutram", "bram", "registers")
#: Words of the line buffer beyond a window's extent (see the module documentation).
LOOKAHEAD_WORDS = 2
#: Frames the steady-state search schedules at most (its period is then the longest of the
#: last frames').
_MAX_FRAMES = 64


def output_size(size, kernel, stride, dilation):
    """Window positions along one axis: ``(size - span) // stride + 1``, with the span
    ``(kernel - 1) * dilation + 1`` of a dilated kernel (ONNX ``Conv`` without padding)."""
    return (size - ((kernel - 1) * dilation + 1)) // stride + 1


def _add_mod(value, step, modulus):
    """``(value + step) mod modulus`` for ``0 <= value, step < modulus`` (one conditional
    subtraction); ``step`` an integer or a value."""
    if isinstance(step, int):
        step %= modulus
    if isinstance(step, int) and step == 0 or modulus == 1:
        return value
    total = value + step
    return Mux(total >= modulus, total - modulus, total)


def _table(values, index):
    """``values[index]``: an integer when all values are equal, else a multiplexer."""
    if len(set(values)) == 1:
        return values[0]
    return Array(Const(value) for value in values)[index]


class SlidingWindowPlan(StreamKernel):
    """The analysis of :class:`SlidingWindow` (same parameters): validation, the window
    geometry, the line buffer's size, the exact schedule and the cost."""

    def __init__(self, *, ifm, channels, kernel, stride=1, dilation=1, simd=1, elem_shape,
                 depthwise=False, window_simd=1, parallel="none", mem_style="auto"):
        self._ifm = check_per_axis("ifm", ifm, ("H", "W"))
        self._channels = check_int("channels", channels, 1)
        self._kernel = check_per_axis("kernel", kernel, ("K_h", "K_w"))
        self._stride = check_per_axis("stride", stride)
        self._dilation = check_per_axis("dilation", dilation)
        self._simd = check_divides("simd", check_int("simd", simd, 1), "channels",
                                   self._channels)
        self._elem_shape = check_shape("elem_shape", elem_shape)
        self._depthwise = check_bool("depthwise", depthwise)
        positions = self._kernel[0] * self._kernel[1]
        self._window_simd = check_divides("window_simd", check_int("window_simd", window_simd, 1),
                                          "kernel_h*kernel_w", positions)
        self._parallel = check_one_of("parallel", parallel, PARALLEL)
        self._mem_style = check_one_of("mem_style", mem_style, MEM_STYLES)
        if self._window_simd > 1 and not self._depthwise:
            raise ValueError(f"window_simd={window_simd} applies to depthwise windows only "
                             f"(depthwise=True); the MVAU orders take parallel='row' or "
                             f"'window'")
        if self._depthwise and self._parallel != "none":
            raise ValueError(f"parallel={parallel!r} is for the MVAU order; depthwise windows "
                             f"are parallel by simd and window_simd")
        (h, w), span = self._ifm, self.span
        if span[0] > h or span[1] > w:
            raise ValueError(f"kernel {self._kernel} with dilation {self._dilation} spans "
                             f"{span[0]}x{span[1]} pixels, larger than the {h}x{w} map")
        if self._stride[0] > h or self._stride[1] > w:
            raise ValueError(f"stride {self._stride} skips past the {h}x{w} map, so no second "
                             f"window position exists on that axis: stride must be at most "
                             f"({h}, {w}) (with one window position the stride is 1)")
        super().__init__()

    # -- parameters -------------------------------------------------------------------------
    ifm = property(lambda self: self._ifm, doc="Input map ``(H, W)``.")
    channels = property(lambda self: self._channels)
    kernel = property(lambda self: self._kernel, doc="``(K_h, K_w)``.")
    stride = property(lambda self: self._stride)
    dilation = property(lambda self: self._dilation)
    simd = property(lambda self: self._simd)
    elem_shape = property(lambda self: self._elem_shape)
    depthwise = property(lambda self: self._depthwise)
    window_simd = property(lambda self: self._window_simd)
    parallel = property(lambda self: self._parallel)

    @property
    def span(self):
        """Pixels a dilated window covers: ``((K_h - 1) * d_h + 1, (K_w - 1) * d_w + 1)``."""
        return tuple((k - 1) * d + 1 for k, d in zip(self._kernel, self._dilation))

    @property
    def ofm(self):
        """Output pixels ``(OH, OW)``."""
        return tuple(output_size(*axis) for axis in zip(self._ifm, self._kernel, self._stride,
                                                         self._dilation))

    @property
    def positions(self):
        """Window positions ``K_h * K_w``."""
        return self._kernel[0] * self._kernel[1]

    @property
    def channel_folds(self):
        """Input beats per pixel: ``C / simd``."""
        return self._channels // self._simd

    # -- the line buffer --------------------------------------------------------------------
    @property
    def word_beats(self):
        """Input beats per buffer word: ``C / simd`` in the ``row``/``window`` modes (a word
        is a pixel), else 1."""
        return self.channel_folds if self._parallel != "none" else 1

    @property
    def word_lanes(self):
        """Elements per buffer word."""
        return self._simd * self.word_beats

    @property
    def word_folds(self):
        """Buffer words per pixel."""
        return self.channel_folds // self.word_beats

    @property
    def ports(self):
        """Words read per output beat (read ports): 1, ``window_simd`` (depthwise), ``K_w``
        (``row``) or ``K_h * K_w`` (``window``)."""
        if self._depthwise:
            return self._window_simd
        return {"none": 1, "row": self._kernel[1], "window": self.positions}[self._parallel]

    @property
    def window_folds(self):
        """Beats per window per word fold: ``K_h * K_w / ports``."""
        return self.positions // self.ports

    @property
    def window_words(self):
        """Consecutive buffer words that hold one window:
        ``((span_h - 1) * W + span_w) * word_folds``."""
        return ((self.span[0] - 1) * self._ifm[1] + self.span[1]) * self.word_folds

    @property
    def frame_words(self):
        """Buffer words per frame: ``H * W * word_folds``."""
        return self._ifm[0] * self._ifm[1] * self.word_folds

    @property
    def buffer_depth(self):
        """Words of the line buffer: ``window_words + LOOKAHEAD_WORDS``, at most a frame."""
        return min(self.frame_words, self.window_words + LOOKAHEAD_WORDS)

    @property
    def buffer_elements(self):
        """Elements held: the line buffer's ``buffer_depth * word_lanes`` plus the pixel
        assembly register's ``C - simd`` (``row``/``window`` modes)."""
        return self.buffer_depth * self.word_lanes + (self.word_beats - 1) * self._simd

    @property
    def buffer_bound(self):
        """What a line buffer may hold: ``(span_h - 1) * W * C + span_w * C`` elements (for
        stride and dilation 1, ``(K_h - 1) * W * C + K_w * C``), plus what the output
        parallelism needs: the lookahead words and the pixel assembly register."""
        window = ((self.span[0] - 1) * self._ifm[1] + self.span[1]) * self._channels
        return window + LOOKAHEAD_WORDS * self.word_lanes + (self.word_beats - 1) * self._simd

    @property
    def mem_style(self):
        """The buffer's memory style (``auto`` resolved): registers for at most 4 words,
        else the cheaper of LUT RAM and block RAM by
        :meth:`~hwgen.resources.Resources.lut_equivalent`."""
        if self._mem_style != "auto":
            return self._mem_style
        if self.buffer_depth <= 4:
            return "registers"
        return min(("lutram", "bram"), key=lambda style: self._memory_cost(style).lut_equivalent())

    def resolved_choices(self):
        return {"mem_style": self.mem_style}

    @property
    def word_bits(self):
        """Bits per buffer word."""
        return self.word_lanes * self._elem_shape.width

    @property
    def index_bits(self):
        """Bits of the stream indices: their differences stay below half the modulus."""
        return (2 * self.frame_words + 2 * self.window_words + self.buffer_depth).bit_length() + 1

    # -- streams ----------------------------------------------------------------------------
    @property
    def input_format(self):
        return StreamFormat(self._elem_shape, self._simd)

    @property
    def output_format(self):
        return StreamFormat(self._elem_shape, self.word_lanes * self.ports)

    @property
    def in_beats_per_frame(self):
        return self._ifm[0] * self._ifm[1] * self.channel_folds

    @property
    def input_burst(self):
        """One input row and two pixels: while the buffer is full and the windows of a row
        go out, it reads nothing, then refills at one beat per cycle."""
        return (self._ifm[1] + 2) * self.channel_folds

    @property
    def out_beats_per_frame(self):
        oh, ow = self.ofm
        return oh * ow * self.window_folds * self.word_folds

    # -- the address generator's walk -------------------------------------------------------
    def word_offsets(self):
        """Word offset of every window position from its pixel's base, in (kernel row,
        kernel column) order: ``(kh * d_h * W + kw * d_w) * word_folds``."""
        (k_h, k_w), (d_h, d_w), width = self._kernel, self._dilation, self._ifm[1]
        return [(kh * d_h * width + kw * d_w) * self.word_folds
                for kh in range(k_h) for kw in range(k_w)]

    def pixel_steps(self):
        """``(column, row, frame)``: how far the base advances from a pixel to the next one
        in its row, from a row's last pixel to the next row, and from the frame's last pixel
        to the next frame's first."""
        (oh, ow), (s_h, s_w), width, folds = self.ofm, self._stride, self._ifm[1], self.word_folds
        column = s_w * folds
        row = (s_h * width - (ow - 1) * s_w) * folds
        frame = self.frame_words - ((oh - 1) * s_h * width + (ow - 1) * s_w) * folds
        return column, row, frame

    @property
    def fold_major(self):
        """Whether the channel fold is the outer loop of a pixel (the depthwise order)."""
        return self._depthwise

    def beat_words(self):
        """Per output beat of one frame (numpy arrays): the stream index of its last word,
        and ``low``, the oldest word the output still needs while that beat is the next to be
        issued (in the depthwise order the current fold's first word until the last fold)."""
        oh, ow = self.ofm
        (s_h, s_w), width, folds = self._stride, self._ifm[1], self.word_folds
        oy, ox = np.divmod(np.arange(oh * ow), ow)
        base = (oy * s_h * width + ox * s_w) * folds
        next_base = np.append(base[1:], self.frame_words)[:, None, None]
        offsets = np.asarray(self.word_offsets()).reshape(self.window_folds, self.ports)
        base, fold = base[:, None, None], np.arange(folds)
        if self.fold_major:           # axes (pixel, fold, group)
            fold_base = base + fold[None, :, None]
            first = fold_base + offsets[None, None, :, 0]
            last = fold_base + offsets[None, None, :, -1]
            low = np.where(fold[None, :, None] == folds - 1, first, fold_base)
        else:                         # axes (pixel, group, fold)
            first = base + offsets[None, :, 0, None] + fold[None, None, :]
            last = base + offsets[None, :, -1, None] + fold[None, None, :]
            low = first
        low = np.minimum(low, next_base)
        return last.reshape(-1), low.reshape(-1)

    # -- timing -----------------------------------------------------------------------------
    def schedule_frames(self, in_times, frames=1):
        """The exact schedule of ``frames`` frames: ``(accepted, out)``, the cycle at which
        every input beat is taken and every output beat leaves, for input beat ``n``
        offered from cycle ``in_times[n]`` on (held until taken) and the output always
        ready. A beat-level model of the control (see the module documentation)."""
        in_times = [int(t) for t in in_times]
        n_in, n_out = self.in_beats_per_frame * frames, self.out_beats_per_frame * frames
        if len(in_times) != n_in:
            raise ValueError(f"in_times must give {n_in} input beats ({frames} frames of "
                             f"{self.in_beats_per_frame}), not {len(in_times)}")
        last_word, low = self.beat_words()
        shift = np.repeat(np.arange(frames) * self.frame_words, len(low))
        low = np.tile(low, frames) + shift
        depth, beats = self.buffer_depth, self.word_beats
        # output beat j waits for input beat done[j] (its last word's last beat); the last
        # beat of word k waits for the first frees[k] output beats (those that free its place)
        done = ((np.tile(last_word, frames) + shift) * beats + beats - 1).tolist()
        frees = np.searchsorted(low, np.arange(self.frame_words * frames) - depth, side="right")
        needs = np.zeros(n_in, dtype=np.int64)
        needs[beats - 1::beats] = frees
        needs = needs.tolist()
        accepted, issued = [0] * n_in, [0] * n_out
        n = j = 0
        previous_in = previous_out = -1 << 62
        while n < n_in or j < n_out:
            start = (n, j)
            while n < n_in:
                needed = needs[n]
                if needed > j:
                    break
                time = in_times[n]
                if time <= previous_in:
                    time = previous_in + 1
                if needed and issued[needed - 1] >= time:
                    time = issued[needed - 1] + 1
                accepted[n] = previous_in = time
                n += 1
            while j < n_out:
                beat = done[j]
                if beat >= n:
                    break
                time = accepted[beat] + 1
                if time <= previous_out:
                    time = previous_out + 1
                issued[j] = previous_out = time
                j += 1
            if (n, j) == start:                                   # pragma: no cover
                raise AssertionError(f"schedule model deadlocked at input beat {n}, "
                                     f"output beat {j}")
        return accepted, [t + 1 for t in issued]

    def out_times(self, in_times):
        """Cycles of one frame's output beats for its input beats offered from
        ``in_times`` on (the output always ready): :meth:`schedule_frames` of one frame."""
        return self.schedule_frames(in_times, 1)[1]

    def timing_key(self):
        """The parameters the schedule depends on (not the element shape or memory style)."""
        return (self._ifm, self._channels, self._kernel, self._stride, self._dilation,
                self._simd, self._depthwise, self._window_simd, self._parallel)

    @property
    def _steady_state(self):
        return _steady_state(self.timing_key())

    @property
    def latency(self):
        """Cycles from the first input beat to the first output beat (the first beat's last
        word, then the read: 2 in the MVAU order without parallelism)."""
        return self._steady_state[0]

    @property
    def cycles_per_frame(self):
        """Steady-state cycles between frames offered every cycle, from the exact schedule
        (:meth:`schedule_frames`) of 4 frames (8, 16, ... while the input is still gaining
        its lead, until the last two frames of both streams take the same cycles): at least
        ``max(in_beats_per_frame, out_beats_per_frame)``, plus the cycles the output waits
        for the next frame's first rows."""
        return self._steady_state[1]

    # -- cost -------------------------------------------------------------------------------
    def _memory_cost(self, style):
        """The buffer memory in ``style``: one copy per read port (flip-flops once, with a
        read multiplexer per port)."""
        depth, width, ports = self.buffer_depth, self.word_bits, self.ports
        if style == "registers":
            single = memory_cost(depth, width, "registers", ports="sdp")
            return Resources(ffs=single.ffs, luts=single.luts * ports)
        return memory_cost(depth, width, style, ports="sdp") * ports

    def estimate(self):
        """Analytic :class:`~hwgen.resources.Resources` on UltraScale+, calibrated against
        Yosys (``synth_xilinx -family xcup``): the buffer memory
        (:func:`~hwgen.resources.memory_cost` with one write and one read port, once per
        read port), the read registers (the output register; block RAM has its own), the
        pixel assembly register, and the control: one LUT per bit and one carry chain per
        counter, stream-index adder, subtract-and-compare and address adder (an address
        adder also wraps: one more chain, free when the buffer depth is a power of two),
        half a LUT per address bit for each further read port."""
        assert self.buffer_elements <= self.buffer_bound
        style = self.mem_style
        ports, width = self.ports, self.word_bits
        ffs = 1 + (self.word_beats - 1) * self._simd * self._elem_shape.width
        if style != "bram":
            ffs += ports * width
        index, address = self.index_bits, max(1, (self.buffer_depth - 1).bit_length())
        counters = [(count - 1).bit_length() for count in
                    (self.word_folds, self.window_folds, *self.ofm, self.word_beats) if count > 1]
        steps_in_pixel = self.word_folds * self.window_folds > 1
        # written, next base (, the next beat's index when it steps within a pixel, the
        # depthwise fold base), plus the three subtract-and-compares
        index_chains = [index] * (2 + steps_in_pixel + self.fold_major + 3)
        # an address adder wraps at the buffer depth: one more chain, unless the depth is a
        # power of two (the adder's own overflow wraps it; measured: 96 LUTs, not 135)
        wraps = 2 if self.buffer_depth & (self.buffer_depth - 1) else 1
        address_chains = [address] * (wraps * (2 + steps_in_pixel))
        ffs += sum(counters) + index * (2 + steps_in_pixel + self.fold_major) + 3 * address
        chains = counters + index_chains + address_chains
        luts = sum(chains) + (ports - 1) * -(-address // 2)
        carry = sum(-(-bits // 8) for bits in chains)
        return self._memory_cost(style) + Resources(luts=luts, ffs=ffs, carry=carry)


@lru_cache(maxsize=256)
def _steady_state(key):
    """``(latency, cycles_per_frame)`` of the plans with timing key ``key`` (see
    :attr:`SlidingWindowPlan.cycles_per_frame`); cached, since a folder asks many plans."""
    names = ("ifm", "channels", "kernel", "stride", "dilation", "simd", "depthwise",
             "window_simd", "parallel")
    plan = SlidingWindowPlan(**dict(zip(names, key)), elem_shape=unsigned(1))
    n_in, n_out = plan.in_beats_per_frame, plan.out_beats_per_frame
    frames = 4
    while True:
        accepted, out = plan.schedule_frames(range(frames * n_in), frames)
        periods = {b - a for starts in (accepted[::n_in], out[::n_out])
                   for a, b in zip(starts[-3:], starts[-2:])}
        if len(periods) == 1 or frames >= _MAX_FRAMES:
            return out[0] - accepted[0], max(periods)
        frames *= 2


class SlidingWindow(SlidingWindowPlan, PlannedComponent):
    """Sliding-window generator: the windows of an NHWC feature map, in the order an MVAU
    (or, ``depthwise``, a VVAU) consumes them (see the module documentation).

    Parameters
    ----------
    ifm : int or (int, int)
        Input map ``(H, W)`` in pixels (an integer for a square map).
    channels : int
        Channels ``C`` per pixel.
    kernel : int or (int, int)
        Window ``(K_h, K_w)``; ``(K, 1)`` and ``(1, K)`` are 1-D windows, ``1`` a pointwise
        one.
    stride, dilation : int or (int, int)
        Step between windows and between a window's taps, per axis.
    simd : int
        Channels per input beat (and per output beat in the default order); divides ``C``.
    elem_shape : ShapeLike
        Shape of every element.
    depthwise : bool
        The VVAU order.
    window_simd : int
        Window positions per beat in the depthwise order; divides ``K_h * K_w``.
    parallel : ``"none"``, ``"row"`` or ``"window"``
        One beat per (window position, channel fold), per window row (``K_w * C`` elements)
        or per window (``K_h * K_w * C`` elements).
    mem_style : ``"auto"``, ``"lutram"``, ``"bram"`` or ``"registers"``
        The line buffer's memory (:attr:`mem_style` resolves ``auto``).

    Members
    -------
    i : In(stream of ``simd`` x ``elem_shape``)
        ``H * W * C / simd`` beats per frame.
    o : Out(stream of :attr:`output_format`)
        :attr:`out_beats_per_frame` beats per frame.

    Examples
    --------
    ::

        swg = SlidingWindow(ifm=(8, 8), channels=3, kernel=3, simd=3, elem_shape=unsigned(4))
        # swg.ofm == (6, 6); swg.out_beats_per_frame == 6 * 6 * 9
        # swg.buffer_elements <= 2 * 8 * 3 + 3 * 3 + 2 * 3 (the bound, with two words ahead)
        mvau = MVAU(mw=27, mh=16, simd=3, vectors=36, ...)
        wiring.connect(m, swg.o, mvau.i)
    """

    def elaborate(self, platform):
        m = Module()
        buffer = memory.Memory(shape=unsigned(self.word_bits), depth=self.buffer_depth,
                               init=[], attrs={"ram_style": RAM_STYLE[self.mem_style]})
        m.submodules.buffer = buffer
        reads = [buffer.read_port() for _ in range(self.ports)]
        written, space = self._writer(m, buffer.write_port())
        available = Signal(name="available")
        control = StallPipeline(m, depth=1, o=self.o, take=available)
        for read in reads:
            m.d.comb += read.en.eq(control.advance)
        self._reader(m, reads, written, available, space, control.advance & available)
        self._output(m, reads)
        return m

    def _writer(self, m, write):
        """Assemble words from input beats and write them at the write counter; returns the
        word counter (the stream index modulo ``2**index_bits``) and the ``space`` signal,
        driven by the reader."""
        beats, lane_bits = self.word_beats, self._simd * self._elem_shape.width
        written = Signal(self.index_bits, name="written")
        address = Signal(range(self.buffer_depth), name="write_address")
        space = Signal(name="space")
        beat, beat_last = fold_counter(m, beats, self.i.valid & self.i.ready, name="in_beat")
        m.d.comb += self.i.ready.eq(space | ~beat_last)
        held = [Signal(lane_bits, name=f"held{k}") for k in range(beats - 1)]
        with m.If(self.i.valid & ~beat_last):
            with m.Switch(beat):
                for k, register in enumerate(held):
                    with m.Case(k):
                        m.d.sync += register.eq(self.i.payload.as_value())
        store = self.i.valid & space & beat_last
        m.d.comb += [write.addr.eq(address), write.en.eq(store),
                     write.data.eq(Cat(*held, self.i.payload.as_value()))]
        with m.If(store):
            m.d.sync += [written.eq(written + 1),
                         address.eq(_add_mod(address, 1, self.buffer_depth))]
        return written, space

    def _reader(self, m, reads, written, available, space, issue):
        """The address generator (see the module documentation): the walk's counters, the
        stream indices of the next beat's first word, of the current pixel's base and of
        the next pixel's, the availability and space checks, and the read addresses."""
        depth, bits = self.buffer_depth, self.index_bits
        modulus = 1 << bits
        (oh, ow), folds, groups, ports = self.ofm, self.word_folds, self.window_folds, self.ports
        offsets = self.word_offsets()
        column, row, frame = self.pixel_steps()

        # the walk: (pixel, group, fold), or (pixel, fold, group) in the depthwise order
        if self.fold_major:
            group, group_last = fold_counter(m, groups, issue, name="group")
            fold, fold_last = fold_counter(m, folds, issue & group_last, name="fold")
            pixel_done = fold_last & group_last
        else:
            fold, fold_last = fold_counter(m, folds, issue, name="fold")
            group, group_last = fold_counter(m, groups, issue & fold_last, name="group")
            pixel_done = fold_last & group_last
        ox, ox_last = fold_counter(m, ow, issue & pixel_done, name="ox")
        oy, oy_last = fold_counter(m, oh, issue & pixel_done & ox_last, name="oy")

        # the base step from the next pixel to the one after it
        next_ox_last = Const(1) if ow == 1 else ox == ow - 2
        next_oy_last = Const(1) if oh == 1 else Mux(ox_last, oy == oh - 2, oy_last)
        step_after_next = Mux(next_ox_last, Mux(next_oy_last, frame, row), column)
        first_step = column if ow > 1 else row if oh > 1 else frame

        index = Signal(bits, name="index")                # first word of the next beat
        address = Signal(range(depth), name="read_address")   # index mod depth
        next_base = Signal(bits, name="next_base", init=first_step % modulus)
        next_address = Signal(range(depth), name="next_address", init=first_step % depth)
        step_mod_depth = Signal(range(depth), name="step_mod_depth")
        m.d.comb += step_mod_depth.eq(Mux(next_ox_last, Mux(next_oy_last, frame % depth,
                                                             row % depth), column % depth))

        # the next beat's first word: a step within the pixel, or the next pixel's base
        group_steps = [offsets[(g + 1) * ports] - offsets[g * ports] for g in range(groups - 1)]
        if self.fold_major:       # the next group, or the next fold's first group
            inner_last, inner_steps = group_last, group_steps or [0]
            outer_steps = [1 - offsets[(groups - 1) * ports]]
        else:                     # the next fold, or the next group's first fold
            inner_last, inner_steps = fold_last, [1]
            outer_steps = [step - (folds - 1) for step in group_steps] or [0]
        with m.If(issue):
            with m.If(pixel_done):
                m.d.sync += [index.eq(next_base), address.eq(next_address),
                             next_base.eq(next_base + step_after_next),
                             next_address.eq(_add_mod(next_address, step_mod_depth, depth))]
            for condition, steps in ((~inner_last, inner_steps), (inner_last, outer_steps)):
                with m.Elif(condition):
                    m.d.sync += [
                        index.eq(index + _table([step % modulus for step in steps], group)),
                        address.eq(_add_mod(address, _table([step % depth for step in steps],
                                                            group), depth))]

        # oldest word still needed
        if self.fold_major:
            fold_base = Signal(bits, name="fold_base")     # base + fold
            with m.If(issue & group_last):
                with m.If(fold_last):
                    m.d.sync += fold_base.eq(next_base)
                with m.Else():
                    m.d.sync += fold_base.eq(fold_base + 1)
            low = Mux(fold_last, index, fold_base)
        else:
            low = index

        def ahead(value, name):
            difference = Signal(signed(bits), name=name)
            m.d.comb += difference.eq(written - value)
            return difference

        first_ahead = ahead(index, "first_ahead")
        group_span = [offsets[g * ports + ports - 1] - offsets[g * ports] for g in range(groups)]
        m.d.comb += [
            available.eq(first_ahead > _table(group_span, group)),
            space.eq((ahead(low, "low_ahead") < depth) & (ahead(next_base, "next_ahead") < depth)),
        ]
        for s, read in enumerate(reads):
            port_offsets = [(offsets[g * ports + s] - offsets[g * ports]) % depth
                            for g in range(groups)]
            m.d.comb += read.addr.eq(_add_mod(address, _table(port_offsets, group), depth))

    def _output(self, m, reads):
        """The output beat from the read ports: port-major in the MVAU orders (element
        ``s * word_lanes + e`` is element ``e`` of port ``s``), element-major in the
        depthwise order (element ``e * ports + s``)."""
        width, lanes = self._elem_shape.width, self.word_lanes
        if self.fold_major:
            parts = [read.data.word_select(e, width) for e in range(lanes) for read in reads]
        else:
            parts = [read.data for read in reads]
        m.d.comb += self.o.payload.as_value().eq(Cat(*parts))


SlidingWindowPlan.component = SlidingWindow
