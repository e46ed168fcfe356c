"""Stream beats <-> words, and the one-call cocotb test of a stream kernel.

A *beat* is one transfer of a kernel's stream: ``lanes`` elements of ``w`` bits each, element k
at bits ``[k*w, (k+1)*w)`` of the beat's *word* (LSB first, two's complement for signed
elements). Test vectors are numpy 2-D arrays ``(beats, lanes)`` of element integers;
:func:`pack_beats`/:func:`unpack_beats` convert them to and from words (Python ints of any
width), for both simulation tiers (:mod:`sim.amaranth_sim` and the cocotb testbench
:mod:`sim.stream_tb`).

:func:`run_stream_test` runs a kernel's exported Verilog (through
:class:`hwgen.export.axis.AXIStreamShell`) against expected outputs on Verilator or Icarus::

    report = run_stream_test(kernel, x, golden(x), seed=3, valid_prob=0.5, ready_prob=0.5)
    assert report["latency"] == kernel.latency

or, with ``verilog=``, Verilog written earlier for the kernel (e.g. the ``top.v`` of
``hwgen compile``, which ``hwgen verify`` simulates).
"""

import json
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from . import stream_io
from .stream_io import ENV_REPORT, ENV_VECTORS

__all__ = ["pack_beats", "unpack_beats", "pack_words", "words_to_ints", "port_format",
           "port_beats", "beats_to_words", "words_to_beats", "write_stream_vectors",
           "run_stream_test", "ENV_VECTORS", "ENV_REPORT"]

_CHUNK = 4096


def _range(width, signed):
    """Allowed element range: exact for signed=True/False, either for signed=None."""
    from amaranth.hdl import signed as signed_shape, unsigned as unsigned_shape

    from hwgen.shapes import shape_range
    shapes = {True: [signed_shape], False: [unsigned_shape],
              None: [signed_shape, unsigned_shape]}[signed]
    ranges = [shape_range(shape(width)) for shape in shapes]
    return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)


def pack_beats(values, elem_width, signed=None):
    """Pack element integers into one word per beat.

    Parameters
    ----------
    values : array-like, shape ``(beats, lanes)`` (or ``(beats,)`` for one lane)
        Element integers.
    elem_width : int
        Bits per element ``w``; element k of a beat goes to bits ``[k*w, (k+1)*w)``.
    signed : bool, optional
        Check values against the signed (``True``) or unsigned (``False``) range of ``w`` bits.
        By default anything in ``[-2**(w-1), 2**w)`` is accepted; negative values are stored in
        two's complement.

    Returns
    -------
    list of int
        One non-negative word per beat, ``< 2**(lanes*w)``.
    """
    arr, w = _checked_elements(values, elem_width, signed)
    beats, lanes = arr.shape
    if arr.size == 0:
        return [0] * beats
    if w > 64 or arr.dtype.kind == "O":
        mask = (1 << w) - 1
        words = []
        for row in arr:
            word = 0
            for k, v in enumerate(row):
                word |= (int(v) & mask) << (k * w)
            words.append(word)
        return words
    words = []
    for start in range(0, beats, _CHUNK):
        packed = _byte_rows(arr[start:start + _CHUNK], w)
        words += [int.from_bytes(row.tobytes(), "little") for row in packed]
    return words


def _checked_elements(values, elem_width, signed):
    """``(arr, w)``: ``values`` as a 2-D integer array whose elements fit ``w`` bits."""
    w = int(elem_width)
    if w < 1:
        raise ValueError(f"elem_width={elem_width!r} must be a positive integer")
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"values must be a 2-D array (beats, lanes), not shape {arr.shape}")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuO":
        raise TypeError(f"values must be integers, not dtype {arr.dtype}")
    if arr.size:
        lo, hi = _range(w, signed)
        vmin, vmax = int(arr.min()), int(arr.max())
        if vmin < lo or vmax > hi:
            bad = np.argwhere((arr < lo) | (arr > hi))[0]
            kind = {None: "", True: "signed ", False: "unsigned "}[signed]
            raise ValueError(f"value {arr[tuple(bad)]} at beat {bad[0]}, lane {bad[1]} does not "
                             f"fit {kind}{w}-bit elements (range {lo}..{hi})")
    return arr, w


def _byte_rows(arr, w):
    """Rows of little-endian bytes (``uint8``, ``ceil(lanes * w / 8)`` per row) of the beats
    of ``arr`` (elements of at most 64 bits, checked)."""
    u = arr.astype(np.uint64) if arr.dtype.kind == "u" else arr.astype(np.int64).view(np.uint64)
    u = u & np.uint64((1 << w) - 1)
    bits = ((u[..., None] >> np.arange(w, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.reshape(len(arr), arr.shape[1] * w), axis=1, bitorder="little")


def pack_words(values, elem_width, n_words, signed=None):
    """Pack element integers into 32-bit pieces: the compiled harness's beat files.

    Parameters
    ----------
    values, elem_width, signed
        As for :func:`pack_beats` (the same checks).
    n_words : int
        32-bit words per beat (``ceil(tdata width / 32)``); the beat is zero-extended.

    Returns
    -------
    numpy.ndarray
        ``uint32``, shape ``(beats, n_words)``, least significant piece first.
    """
    arr, w = _checked_elements(values, elem_width, signed)
    beats, lanes = arr.shape
    if lanes * w > 32 * n_words:
        raise ValueError(f"{lanes} lanes x {w} bits do not fit {n_words} 32-bit words")
    out = np.zeros((beats, 4 * n_words), dtype=np.uint8)
    if w > 64 or arr.dtype.kind == "O":
        for n, word in enumerate(pack_beats(arr, w, signed)):
            out[n] = np.frombuffer(word.to_bytes(4 * n_words, "little"), np.uint8)
    else:
        for start in range(0, beats, _CHUNK):
            packed = _byte_rows(arr[start:start + _CHUNK], w)
            out[start:start + len(packed), :packed.shape[1]] = packed
    return out.view("<u4")


def words_to_ints(words):
    """Python ints of the rows of a :func:`pack_words` array."""
    return [int.from_bytes(np.ascontiguousarray(row, dtype="<u4").tobytes(), "little")
            for row in np.atleast_2d(words)]


def unpack_beats(words, elem_width, lanes, signed=False):
    """Unpack words into a ``(beats, lanes)`` array of element integers (inverse of
    :func:`pack_beats`).

    The dtype is ``int64`` (``uint64`` for unsigned 64-bit elements, ``object`` holding Python
    ints for elements wider than 64 bits). Raises ``ValueError`` for a word that is negative or
    has bits set above ``lanes * elem_width``.
    """
    w, lanes = int(elem_width), int(lanes)
    if w < 1 or lanes < 1:
        raise ValueError(f"elem_width={elem_width!r} and lanes={lanes!r} must be positive")
    words = [int(x) for x in words]
    total = w * lanes
    for n, word in enumerate(words):
        if word < 0 or word >> total:
            raise ValueError(f"word {n} = {word:#x} does not fit {lanes} lanes x {w} bits "
                             f"({total} bits)")
    if w > 64:
        mask = (1 << w) - 1
        out = np.empty((len(words), lanes), dtype=object)
        for n, word in enumerate(words):
            for k in range(lanes):
                v = (word >> (k * w)) & mask
                if signed and v >> (w - 1):
                    v -= 1 << w
                out[n, k] = v
        return out
    dtype = np.uint64 if (w == 64 and not signed) else np.int64
    if not words:
        return np.zeros((0, lanes), dtype=dtype)
    nbytes = (total + 7) // 8
    weights = np.left_shift(np.uint64(1), np.arange(w, dtype=np.uint64))
    chunks = []
    for start in range(0, len(words), _CHUNK):
        part = words[start:start + _CHUNK]
        raw = np.frombuffer(b"".join(x.to_bytes(nbytes, "little") for x in part), np.uint8)
        bits = np.unpackbits(raw.reshape(len(part), nbytes), axis=1, bitorder="little")
        bits = bits[:, :total].reshape(len(part), lanes, w)
        vals = (bits.astype(np.uint64) * weights).sum(axis=2, dtype=np.uint64)
        if not signed:
            chunks.append(vals.astype(dtype))
        elif w == 64:
            chunks.append(vals.view(np.int64))
        else:
            chunks.append(vals.astype(np.int64) - (bits[..., w - 1].astype(np.int64) << w))
    return np.concatenate(chunks)


def port_format(component, port):
    """``(elem_width, lanes, signed)`` of the payload of stream port ``port``: an
    ``ArrayLayout(elem_shape, lanes)`` payload, or a plain shape as one lane. A kernel plan
    (:class:`hwgen.kernel.StreamKernel`, no ports yet) gives the formats of its ``inputs``
    and ``outputs``."""
    if not hasattr(component, "signature") and hasattr(component, "inputs"):
        formats = {**component.inputs, **component.outputs}
        if port not in formats:
            raise ValueError(f"kernel {type(component).__name__} has no stream port {port!r}; "
                             f"its ports are {sorted(formats)}")
        elem = Shape.cast(formats[port].elem_shape)
        return elem.width, formats[port].lanes, elem.signed
    members = component.signature.members
    if port not in members:
        raise ValueError(f"component {type(component).__name__} has no stream port {port!r}; "
                         f"its ports are {sorted(members.keys())}")
    member = members[port]
    shape = member.signature.members["payload"].shape
    if isinstance(shape, data.ArrayLayout):
        elem = shape.elem_shape
        if isinstance(elem, data.Layout) or not isinstance(Shape.cast(elem), Shape):
            raise TypeError(f"port {port!r}: elements of {shape!r} must be plain signed/unsigned "
                            f"shapes")
        elem = Shape.cast(elem)
        return elem.width, shape.length, elem.signed
    if isinstance(shape, data.Layout):
        return Shape.cast(shape).width, 1, False
    shape = Shape.cast(shape)
    return shape.width, 1, shape.signed


def port_beats(component, port, beats):
    """``(arr, elem_width, signed)``: ``beats`` as the ``(beats, lanes)`` element array of
    stream port ``port``, its lane count checked."""
    w, lanes, signed = port_format(component, port)
    arr = np.asarray(beats)
    if arr.ndim == 1 and lanes == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != lanes:
        raise ValueError(f"beats for port {port!r} must have shape (beats, {lanes}), "
                         f"not {arr.shape}")
    return arr, w, signed


def beats_to_words(component, port, beats):
    """Pack ``beats`` (``(beats, lanes)`` array of elements) for stream port ``port``, checking
    the lane count and each element against the port's element shape."""
    arr, w, signed = port_beats(component, port, beats)
    return pack_beats(arr, w, signed=signed)


def words_to_beats(component, port, words):
    """Unpack words of stream port ``port`` into a ``(beats, lanes)`` element array."""
    w, lanes, signed = port_format(component, port)
    return unpack_beats(words, w, lanes, signed=signed)


def _out_beats_per_frame(kernel, out_beats_per_frame):
    if out_beats_per_frame is None:
        out_beats_per_frame = getattr(kernel, "out_beats_per_frame", 1)
    return out_beats_per_frame


def write_stream_vectors(path, kernel, in_beats, expected_beats, *, seed=0, valid_prob=1.0,
                         ready_prob=1.0, out_beats_per_frame=None, max_cycles=None,
                         drain_cycles=8, config=None):
    """Write the vectors file of :mod:`sim.stream_tb` for ``kernel`` (e.g. for cocotb-test).
    ``config``: configuration writes in mid-stream, see :func:`sim.stream_io.write_vectors`."""
    in_words = beats_to_words(kernel, "i", in_beats)
    expected_words = beats_to_words(kernel, "o", expected_beats)
    return stream_io.write_vectors(
        path, in_words, expected_words,
        out_beats_per_frame=_out_beats_per_frame(kernel, out_beats_per_frame), seed=seed,
        valid_prob=valid_prob, ready_prob=ready_prob, max_cycles=max_cycles,
        drain_cycles=drain_cycles, config=config)


def run_stream_test(kernel, in_beats, expected_beats, *, seed=0, valid_prob=0.8, ready_prob=0.8,
                    simulator="verilator", waves=None, extra_sources=(), platform=None,
                    out_beats_per_frame=None, max_cycles=None, drain_cycles=8, timeout=None,
                    config=None, verilog=None,
                    name="top", cache_dir=None, test_dir=None):
    """Run a stream kernel's Verilog (in the AXI4-Stream shell) against expected outputs.

    Parameters
    ----------
    kernel : wiring.Component or hwgen.kernel.StreamKernel
        With stream ports ``i`` and ``o`` (see the kernel contract): their payloads say how
        the beats are packed into ``tdata`` words. A plan (its stream formats) will do
        with ``verilog``.
    in_beats, expected_beats : array-like, shape ``(beats, lanes)``
        Element integers of the input beats and of the expected output beats.
    seed, valid_prob, ready_prob
        Random stalls: in each cycle the next input beat is offered with probability
        ``valid_prob`` and ``m_axis_tready`` is high with probability ``ready_prob``.
    simulator : "verilator" | "icarus"
    waves : None | "fst" | "vcd"
    extra_sources : paths
        Extra Verilog (e.g. :func:`sim.runner.xilinx_cells_sim_source` for Xilinx primitives).
    platform : optional
        Platform given to the kernel's ``elaborate`` when exporting Verilog.
    out_beats_per_frame : int, optional
        Output frame length for ``m_axis_tlast`` (default: the kernel's
        ``out_beats_per_frame``, or 1).
    max_cycles, drain_cycles : int
        Fail if the outputs are not all out after ``max_cycles``; watch ``drain_cycles`` more
        cycles for unexpected extra outputs.
    timeout : float, optional
        Wall-clock limit of the simulation in seconds.
    config : dict, optional
        Configuration-port writes (and read-back checks) in the middle of the stream:
        ``after_inputs``, ``after_outputs``, ``writes`` (``(address, value)`` pairs) and
        ``port`` (default ``"cfg"``); see :mod:`sim.stream_tb`.
    verilog : str or os.PathLike, optional
        Verilog already written for ``kernel`` behind the shell (text or a file), top module
        ``name``: simulated instead of a fresh export (``platform`` must then be None).
    name : str
        Top module name.
    cache_dir, test_dir : path, optional
        As for :func:`sim.runner.run`.

    Returns
    -------
    dict
        The testbench's report (:func:`sim.stream_io.make_report`): ``cycles``, ``latency``,
        ``in_cycles``, ``out_cycles``... plus ``test_dir``, ``waves`` (path or None) and
        ``built`` (whether this call compiled the design).

    Raises
    ------
    sim.runner.TestFailure
        With the testbench's message, e.g. ``output beat 3 (cycle 9): expected 0x12, seen 0x13``.
    """
    from hwgen.export.verilog import kernel_verilog

    from . import runner

    obpf = _out_beats_per_frame(kernel, out_beats_per_frame)
    if verilog is None:
        verilog = kernel_verilog(kernel, name=name, platform=platform, out_beats_per_frame=obpf)
    elif platform is not None:
        raise ValueError("platform= only applies when the kernel's Verilog is exported here, "
                         "not with verilog=")
    test_dir = Path(test_dir) if test_dir is not None else runner.new_test_dir(name, cache_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    vectors = test_dir / "vectors.json"
    report_path = test_dir / "report.json"
    write_stream_vectors(vectors, kernel, in_beats, expected_beats, seed=seed,
                         valid_prob=valid_prob, ready_prob=ready_prob, out_beats_per_frame=obpf,
                         max_cycles=max_cycles, drain_cycles=drain_cycles, config=config)
    result = runner.run(
        verilog, "sim.stream_tb", toplevel=name, simulator=simulator,
        extra_sources=extra_sources, waves=waves, seed=seed, timeout=timeout,
        extra_env={ENV_VECTORS: str(vectors.resolve()), ENV_REPORT: str(report_path.resolve())},
        cache_dir=cache_dir, test_dir=test_dir)
    report = json.loads(report_path.read_text())
    report.update(test_dir=str(result.test_dir),
                  waves=str(result.waves_file) if result.waves_file else None,
                  built=result.built)
    return report
