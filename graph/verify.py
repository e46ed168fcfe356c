"""``hwgen verify``: three executions of a compiled model must agree on the same inputs.

1. the ONNX reference (qonnx ``execute_onnx``, :func:`graph.reference`) on the model copied
   into the output directory;
2. the folded IR's numpy execution (:meth:`graph.ir.Network.execute`);
3. simulation of the written ``top.v`` (not a fresh conversion) with random input gaps and
   output stalls, over every frame: by default on the compiled harness (:mod:`sim.harness`,
   Verilator and a C++ testbench, millions of cycles per second, so whole test sets of
   10,000 frames), or with ``harness="cocotb"`` through the cocotb testbench
   :mod:`sim.stream_tb` on Verilator or Icarus (the reference harness; the two agree).

A second simulation without stalls (at least :data:`THROUGHPUT_FRAMES` frames, the inputs
repeated if needed) measures the steady-state cycles per frame, which the report holds next
to the estimate: the spacing of the first output beats of the second half of the frames.

When the RTL disagrees with the IR, every layer of ``top.v`` is simulated on its own, fed
with the IR's intermediate tensors of the frames up to the failing one
(:mod:`graph.localize`), and the error names the first layer that differs, with the frame,
beat and element. ``per_layer=True`` runs that check even when the whole design agrees.
"""

import math
import re
from pathlib import Path

import numpy as np

from .compile import load_network, read_report
from .errors import GraphError

__all__ = ["verify", "load_inputs", "build_compiled", "cycle_budget", "RTLMismatch",
           "THROUGHPUT_FRAMES"]

#: Frames in the throughput run (the inputs are repeated to reach it).
THROUGHPUT_FRAMES = 8
#: At most this many frames in the compiled harness's throughput run.
COMPILED_THROUGHPUT_FRAMES = 256
#: Frames each stage runs on with ``per_layer`` when the whole design agrees.
PER_LAYER_FRAMES = 8
#: Frames up to the first failing one that each stage runs on when localizing (a stage may
#: keep state from one frame to the next).
LOCALIZE_FRAMES = 8


def load_inputs(inputs, what="inputs"):
    """A numpy array from an array or a ``.npy`` path, with one-line errors."""
    if isinstance(inputs, np.ndarray):
        return inputs
    path = Path(inputs)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GraphError(f"{what} {path}: no such file") from None
    except (OSError, ValueError) as error:
        raise GraphError(f"{what} {path}: not a .npy array ({str(error).splitlines()[0]})") \
            from None


def _first_disagreement(a, b):
    bad = np.flatnonzero(np.any(a.reshape(len(a), -1) != b.reshape(len(b), -1), axis=1))
    return bad


def _compare(name_a, a, name_b, b):
    bad = _first_disagreement(a, b)
    if len(bad):
        n = bad[0]
        raise GraphError(f"{name_a} and {name_b} disagree on {len(bad)} of {len(a)} frames "
                         f"(first: frame {n}: {a[n].ravel().tolist()} vs "
                         f"{b[n].ravel().tolist()})")
    return len(a)


def _on_grid(network, y_int, ref):
    """The reference scores, where they are the IR's integers on the output's grid
    ``scale * decoded + offset`` up to float32 rounding (the reference sums in float32,
    the IR is exact), replaced by the IR's own values: a float output agrees when it
    encodes the same integers."""
    from .ir import decode
    stream_type = network.layers[-1].output_type
    decoded = decode(stream_type, y_int).reshape(ref.shape)
    scale = np.asarray(network.output.scale)
    offset = np.asarray(network.output.offset)
    ours = decoded * scale + offset
    tolerance = 1e-3 * np.abs(scale)  # a thousandth of the output's integer step
    same = np.all((np.abs(ref - ours) <= tolerance) &
                  (np.round((ref - offset) / scale) == decoded), axis=1)
    return np.where(same[:, None], ours, ref)


def cycle_budget(accelerator, n, in_beats, out_beats, valid_prob, ready_prob):
    """The cycle limit of a simulation of ``n`` frames (``in_beats``/``out_beats`` beats)
    of ``accelerator`` under the given stalls: four times the work, and then some."""
    slowest = min(valid_prob, ready_prob)
    return int(4 * (n + 2) * accelerator.cycles_per_frame / slowest
               + 4 * accelerator.latency + 20 * (in_beats + out_beats) / slowest + 1000)


class RTLMismatch(GraphError):
    """The RTL simulation disagrees with the IR. ``frame`` is the first frame that differs
    (None when it cannot be told, for example on a timeout); ``report`` the harness's."""

    def __init__(self, message, frame=None, report=None):
        super().__init__(message)
        self.frame, self.report = frame, report


def _simulate(out_dir, accelerator, x_int, y_int, *, simulator, valid_prob, ready_prob, seed,
              timeout):
    """Run top.v in cocotb; returns the testbench report."""
    from sim import runner
    from sim.streams import run_stream_test
    verilog = _top_v(out_dir)
    in_beats = x_int.reshape(-1, accelerator.in_lanes)
    expected = y_int.reshape(-1, accelerator.out_lanes)
    max_cycles = cycle_budget(accelerator, len(x_int), len(in_beats), len(expected), valid_prob,
                             ready_prob)
    try:
        return run_stream_test(accelerator, in_beats, expected, verilog=verilog, seed=seed,
                               valid_prob=valid_prob, ready_prob=ready_prob,
                               simulator=simulator, max_cycles=max_cycles, timeout=timeout,
                               test_dir=runner.new_test_dir("verify"))
    except runner.TestFailure as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else "test failed"
        match = re.search(r"output beat (\d+)", message)
        frame = int(match[1]) // accelerator.out_beats_per_frame if match else None
        raise RTLMismatch(f"RTL simulation ({simulator}) disagrees with the IR: {message}",
                          frame) from None
    except (runner.SimulatorNotFoundError, runner.BuildError, runner.SimulationError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GraphError(f"RTL simulation ({simulator}) failed: {message}") from None


def _top_v(out_dir):
    verilog = Path(out_dir) / "top.v"
    if not verilog.is_file():
        raise GraphError(f"{out_dir}: no top.v; run 'hwgen compile' first")
    return verilog


def build_compiled(out_dir, progress=None, timeout=None, waves=False):
    """The compiled harness of ``out_dir/top.v`` (built once, then cached)."""
    from sim import harness
    try:
        return harness.build_harness(_top_v(out_dir), waves=waves, progress=progress,
                                     timeout=timeout)
    except (harness.HarnessError, harness.SimulatorNotFoundError) as error:
        raise GraphError(f"building the compiled harness failed: "
                         f"{str(error).strip().splitlines()[0]}") from None


def _simulate_compiled(build, accelerator, x_int, y_int, *, valid_prob, ready_prob, seed,
                       timeout, meter=None):
    """Run top.v on the compiled harness; returns its report."""
    from sim import harness
    in_beats = x_int.reshape(-1, accelerator.in_lanes)
    out_beats = y_int.reshape(-1, accelerator.out_lanes)
    words = {**harness.stream_words(accelerator, build, in_beats, "i"),
             **harness.stream_words(accelerator, build, out_beats, "o")}
    n = len(x_int)
    frame_beats = accelerator.out_beats_per_frame

    def progress(done, total, cycles, seconds):
        if meter is not None:
            meter(done // frame_beats, n, cycles, seconds)
    try:
        report = harness.run_harness(
            build, {"s_axis": words["s_axis"]}, {"m_axis": words["m_axis"]},
            frame_lengths={"m_axis": frame_beats}, seed=seed, valid_prob=valid_prob,
            ready_prob=ready_prob, timeout=timeout, progress=progress,
            max_cycles=cycle_budget(accelerator, n, len(words["s_axis"]), len(words["m_axis"]),
                                   valid_prob, ready_prob))
    except harness.HarnessFailure as error:
        mismatch = error.report.get("mismatch")
        frame = mismatch["beat"] // frame_beats if mismatch else None
        raise RTLMismatch(f"RTL simulation (verilator, compiled harness) disagrees with the "
                          f"IR: {error}", frame, error.report) from None
    except harness.HarnessError as error:
        raise GraphError(f"RTL simulation (verilator, compiled harness) failed: "
                         f"{str(error).strip().splitlines()[0]}") from None
    if meter is not None:
        meter(n, n, report["simulated_cycles"], report["sim_seconds"])
    return report


def _localize(out_dir, accelerator, x_int, frame, *, waves, seed, valid_prob, ready_prob,
              timeout, progress, summary=True):
    """Localize a disagreement ending at ``frame``: a one-line finding; with ``summary``
    False (on request), every stage's outcome, raising on a stage that differs."""
    from .localize import format_stage, localize
    first = max(0, frame - LOCALIZE_FRAMES + 1)
    stages = localize(out_dir, accelerator, x_int, range(first, frame + 1), seed=seed,
                      valid_prob=valid_prob, ready_prob=ready_prob, waves=waves,
                      timeout=timeout, progress=progress)
    bad = [stage for stage in stages if not stage["passed"]]
    if not summary:
        if bad:
            raise GraphError(f"per-layer check: {format_stage(bad[0])}")
        return stages
    if bad:
        return f"localized: {format_stage(bad[0])}"
    return (f"every layer of top.v agrees with the IR on its own on frames {first}..{frame}: "
            f"the disagreement is in the links between them (width converters, FIFOs) or in "
            f"their timing in the whole pipeline")


def _steady_cycles(out_cycles, beats_per_frame):
    starts = out_cycles[::beats_per_frame]
    if len(starts) < 2:
        return None
    middle = len(starts) // 2
    if middle == len(starts) - 1:
        middle = 0
    return (starts[-1] - starts[middle]) / (len(starts) - 1 - middle)


def verify(out_dir, inputs, expected=None, sim="verilator", model=None, *, seed=1,
           valid_prob=0.7, ready_prob=0.6, timeout=None, progress=print, harness="compiled",
           per_layer=False, waves=False, meter=None):
    """Check a ``hwgen compile`` output on inputs: ONNX reference == IR == RTL simulation.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Written by :func:`graph.compile.compile_model`.
    inputs : str, os.PathLike or numpy.ndarray
        Model inputs ``(N, *input shape)`` or ``(N, elements)`` (a ``.npy`` file).
    expected : str, os.PathLike or numpy.ndarray, optional
        Expected outputs (for example the true labels, ``(N,)`` or ``(N, k)``), for the
        accuracy: not a condition of success.
    sim : ``"verilator"`` or ``"icarus"``
        Icarus runs only on the cocotb harness.
    model : str or os.PathLike, optional
        The ONNX model for the reference (default ``out_dir/model.onnx``; without either the
        reference is skipped).
    seed, valid_prob, ready_prob
        Random input gaps and output stalls of the back-pressure run.
    timeout : float, optional
        Wall-clock limit per simulation in seconds.
    progress : callable
        Called with one line per step.
    harness : ``"compiled"`` or ``"cocotb"``
        The compiled C++ harness (:mod:`sim.harness`, the default: Verilator at the speed of
        the design, for whole test sets) or the cocotb testbench (:mod:`sim.stream_tb`, the
        reference, which drives every cycle from Python).
    per_layer : bool
        Also localize on request: simulate every stage of ``top.v`` on its own, fed the IR's
        intermediate tensors (:func:`graph.localize.localize`). A disagreement of the whole
        design is always localized this way.
    waves : bool
        With a localized disagreement, write a wave file of the failing stage and frame
        (``out_dir/waves/``).
    meter : callable, optional
        Called about twice a second during the compiled back-pressure run with
        ``(frames_checked, frames, cycles, seconds)``.

    Returns
    -------
    dict
        ``frames``, ``onnx_agree`` (frames where the reference equals the IR, or None),
        ``rtl_agree`` (frames where the simulation equals the IR), ``accuracy`` (or None),
        ``sim_cycles_per_frame``, ``est_cycles_per_frame``, ``sim_fps``, ``est_fps``,
        ``sim_latency``, ``est_latency``, ``harness``, ``sim_cycles_per_second`` (of the
        back-pressure run), ``per_layer`` (the localization's stages, when it ran).

    Raises
    ------
    GraphError
        Bad inputs (shape or range), or any disagreement, in one line; a disagreement of the
        RTL names the first layer whose RTL differs from the IR.
    """
    from .elaborate import Pipeline
    from .importer import reference
    progress = progress or (lambda *args: None)
    if sim not in ("verilator", "icarus"):
        raise GraphError(f"sim={sim!r} is not supported; supported: verilator, icarus")
    if harness not in ("compiled", "cocotb"):
        raise GraphError(f"harness={harness!r} is not supported; supported: compiled, cocotb")
    if harness == "compiled" and sim != "verilator":
        raise GraphError(f"the compiled harness runs on Verilator, not {sim}: use the cocotb "
                         f"harness for {sim} (--harness cocotb)")
    network = load_network(out_dir)
    report = read_report(out_dir)
    clock_mhz = report["clock_mhz"]
    x = load_inputs(inputs)
    try:
        x_checked = network.quantize_input(x)
    except GraphError as error:
        where = "inputs" if isinstance(inputs, np.ndarray) else str(inputs)
        raise GraphError(f"{where}: {error}") from None
    n = len(x_checked)
    if n == 0:
        raise GraphError("inputs: no frames (the first dimension is 0)")
    y_int = network.execute(x_checked)
    ir_values = network.output_values(y_int)
    result = {"frames": n, "onnx_agree": None, "rtl_agree": None, "accuracy": None}
    reference_error = None

    model = Path(model) if model is not None else Path(out_dir) / "model.onnx"
    if model.is_file():
        progress(f"ONNX reference on {n} frames")
        ref_x = np.asarray(x).reshape((n,) + tuple(network.input_shape))
        ref = np.asarray(reference(model, ref_x)).reshape(n, -1)
        try:
            if network.output.kind == "label":
                result["onnx_agree"] = _compare("the IR", y_int.reshape(n, -1),
                                                "the ONNX reference", ref.astype(np.int64))
            else:
                result["onnx_agree"] = _compare(
                    "the IR", ir_values.astype(np.float32), "the ONNX reference",
                    _on_grid(network, y_int, ref).astype(np.float32))
            progress(f"  ONNX reference == IR on {n}/{n} frames")
        except GraphError as error:
            # the hardware is still checked against the IR, so that the report says
            # which side the disagreement is on
            reference_error = str(error)
            progress(f"  {reference_error}")
    else:
        progress(f"no ONNX model ({model}): skipping the reference")

    if expected is not None:
        truth = load_inputs(expected, "expected outputs")
        if network.output.kind == "label":
            if truth.shape[0] != n or truth.reshape(n, -1).shape[1] > network.output.k:
                raise GraphError(f"expected outputs of shape {truth.shape} do not fit {n} "
                                 f"frames of {network.output.k} labels")
            truth = truth.reshape(n, -1)
            result["accuracy"] = float(np.mean(y_int[:, :truth.shape[1]] == truth))
        elif truth.ndim == 1 and len(truth) == n and np.issubdtype(truth.dtype, np.integer):
            # class labels against scores: top-1 accuracy
            result["accuracy"] = float(np.mean(np.argmax(ir_values, axis=1) == truth))
        else:
            if truth.size != ir_values.size or len(truth) != n:
                raise GraphError(f"expected outputs of shape {truth.shape} do not fit the "
                                 f"outputs {ir_values.shape}")
            result["accuracy"] = float(np.mean(np.all(
                np.isclose(ir_values, truth.reshape(n, -1)), axis=1)))
        progress(f"  accuracy against the expected outputs: {result['accuracy']:.4f}")

    accelerator = Pipeline(network)       # its stream formats and timing: top.v is built
    x_int = x_checked
    repeats = math.ceil(THROUGHPUT_FRAMES / n)
    tx, ty = np.tile(x_int, (repeats, 1)), np.tile(y_int, (repeats, 1))
    result["harness"] = harness
    try:
        if harness == "compiled":
            progress("building the compiled harness of top.v (Verilator; cached after the "
                     "first build)")
            build = build_compiled(out_dir, progress=lambda line: progress(f"  {line}"),
                                   timeout=timeout)
            progress(f"RTL simulation (verilator, compiled harness) of top.v on {n} frames "
                     f"with random back-pressure")
            stalled = _simulate_compiled(build, accelerator, x_int, y_int,
                                         valid_prob=valid_prob, ready_prob=ready_prob,
                                         seed=seed, timeout=timeout, meter=meter)
            result["sim_cycles_per_second"] = stalled["cycles_per_second"]
            progress(f"  RTL == IR on {n}/{n} frames ({stalled['cycles']:,} cycles, "
                     f"{stalled['cycles_per_second'] or 0:,.0f} cycles/s)")
            progress(f"RTL simulation (verilator, compiled harness) of "
                     f"{min(len(tx), COMPILED_THROUGHPUT_FRAMES)} frames without stalls "
                     f"(throughput)")
            free = _simulate_compiled(build, accelerator, tx[:COMPILED_THROUGHPUT_FRAMES],
                                      ty[:COMPILED_THROUGHPUT_FRAMES], valid_prob=1.0,
                                      ready_prob=1.0, seed=seed, timeout=timeout)
        else:
            progress(f"RTL simulation ({sim}, cocotb) of top.v on {n} frames with random "
                     f"back-pressure (the first run builds the simulator)")
            stalled = _simulate(out_dir, accelerator, x_int, y_int, simulator=sim,
                                valid_prob=valid_prob, ready_prob=ready_prob, seed=seed,
                                timeout=timeout)
            progress(f"  RTL == IR on {n}/{n} frames ({stalled['cycles']:,} cycles)")
            progress(f"RTL simulation ({sim}, cocotb) of {len(tx)} frames without stalls "
                     f"(throughput)")
            free = _simulate(out_dir, accelerator, tx, ty, simulator=sim, valid_prob=1.0,
                             ready_prob=1.0, seed=seed, timeout=timeout)
    except RTLMismatch as error:
        progress(f"  {error}")
        # the throughput run repeats the inputs: its frame k is input frame k % n
        frame = error.frame % n if error.frame is not None else 0
        from sim.harness import HarnessError, SimulatorNotFoundError
        try:
            found = _localize(out_dir, accelerator, x_int, frame, waves=waves, seed=seed,
                              valid_prob=valid_prob, ready_prob=ready_prob, timeout=timeout,
                              progress=progress)
        except (GraphError, HarnessError, SimulatorNotFoundError) as failure:
            first = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
            found = f"the layers could not be simulated on their own ({first})"
        if reference_error:
            found += f"; besides, {reference_error}"
        raise GraphError(f"{error}; {found}") from None
    result["rtl_agree"] = n
    if reference_error:
        raise GraphError(f"{reference_error}; the RTL equals the IR on {n}/{n} frames, so the "
                         f"disagreement is between the model and its import (for QDQ models "
                         f"with float scales: a float32 rounding tie the two compute "
                         f"differently)")
    if per_layer:
        frames = min(n, PER_LAYER_FRAMES)
        stages = _localize(out_dir, accelerator, x_int, frames - 1, waves=waves, seed=seed,
                           valid_prob=valid_prob, ready_prob=ready_prob, timeout=timeout,
                           progress=progress, summary=False)
        result["per_layer"] = stages
    cycles = _steady_cycles(free["out_cycles"], accelerator.out_beats_per_frame)
    result.update(
        sim_cycles_per_frame=cycles, est_cycles_per_frame=accelerator.cycles_per_frame,
        sim_fps=clock_mhz * 1e6 / cycles if cycles else None,
        est_fps=clock_mhz * 1e6 / accelerator.cycles_per_frame,
        sim_latency=free["latency"], est_latency=accelerator.latency, clock_mhz=clock_mhz)
    progress(f"  {cycles:g} cycles per frame simulated, {accelerator.cycles_per_frame} "
             f"estimated: {result['sim_fps']:,.0f} vs {result['est_fps']:,.0f} frames/s at "
             f"{clock_mhz:g} MHz; latency {free['latency']} cycles simulated, "
             f"{accelerator.latency} estimated")
    return result
