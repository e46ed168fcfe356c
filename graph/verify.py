"""``hwgen verify``: three executions of a compiled model must agree on the same inputs.

1. the ONNX reference (qonnx ``execute_onnx``, :func:`graph.reference`) on the model copied
   into the output directory;
2. the folded IR's numpy execution (:meth:`graph.ir.Network.execute`);
3. cocotb simulation of the written ``top.v`` (not a fresh conversion) on Verilator or
   Icarus, through the generic stream testbench :mod:`sim.stream_tb`, with random input gaps
   and output stalls.

A second simulation without stalls (at least :data:`THROUGHPUT_FRAMES` frames, the inputs
repeated if needed) measures the steady-state cycles per frame, which the report holds next
to the estimate: the spacing of the first output beats of the second half of the frames.
"""

import math
from pathlib import Path

import numpy as np

from .compile import load_network, read_report
from .errors import GraphError

__all__ = ["verify", "load_inputs", "THROUGHPUT_FRAMES"]

#: Frames in the throughput run (the inputs are repeated to reach it).
THROUGHPUT_FRAMES = 8


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


def _simulate(out_dir, accelerator, x_int, y_int, *, simulator, valid_prob, ready_prob, seed,
              timeout):
    """Run top.v in cocotb; returns the testbench report."""
    from sim import runner
    from sim.streams import run_stream_test
    verilog = Path(out_dir) / "top.v"
    if not verilog.is_file():
        raise GraphError(f"{out_dir}: no top.v; run 'hwgen compile' first")
    n = len(x_int)
    in_beats = x_int.reshape(-1, accelerator.in_lanes)
    expected = y_int.reshape(-1, accelerator.out_lanes)
    slowest = min(valid_prob, ready_prob)
    max_cycles = int(4 * (n + 2) * accelerator.cycles_per_frame / slowest
                     + 4 * accelerator.latency + 20 * (len(in_beats) + len(expected)) / slowest
                     + 1000)
    try:
        return run_stream_test(accelerator, in_beats, expected, verilog=verilog, seed=seed,
                               valid_prob=valid_prob, ready_prob=ready_prob,
                               simulator=simulator, max_cycles=max_cycles, timeout=timeout,
                               test_dir=runner.new_test_dir("verify"))
    except runner.TestFailure as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else "test failed"
        raise GraphError(f"RTL simulation ({simulator}) disagrees with the IR: {message}") \
            from None
    except (runner.SimulatorNotFoundError, runner.BuildError, runner.SimulationError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GraphError(f"RTL simulation ({simulator}) failed: {message}") from None


def _steady_cycles(out_cycles, beats_per_frame):
    starts = out_cycles[::beats_per_frame]
    if len(starts) < 2:
        return None
    middle = len(starts) // 2
    if middle == len(starts) - 1:
        middle = 0
    return (starts[-1] - starts[middle]) / (len(starts) - 1 - middle)


def verify(out_dir, inputs, expected=None, sim="verilator", model=None, *, seed=1,
           valid_prob=0.7, ready_prob=0.6, timeout=None, progress=print):
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
    model : str or os.PathLike, optional
        The ONNX model for the reference (default ``out_dir/model.onnx``; without either the
        reference is skipped).
    seed, valid_prob, ready_prob
        Random input gaps and output stalls of the back-pressure run.
    timeout : float, optional
        Wall-clock limit per simulation in seconds.
    progress : callable
        Called with one line per step.

    Returns
    -------
    dict
        ``frames``, ``onnx_agree`` (frames where the reference equals the IR, or None),
        ``rtl_agree`` (frames where the simulation equals the IR), ``accuracy`` (or None),
        ``sim_cycles_per_frame``, ``est_cycles_per_frame``, ``sim_fps``, ``est_fps``,
        ``sim_latency``, ``est_latency``.

    Raises
    ------
    GraphError
        Bad inputs (shape or range), or any disagreement, in one line.
    """
    from .elaborate import Pipeline
    from .importer import reference
    progress = progress or (lambda *args: None)
    if sim not in ("verilator", "icarus"):
        raise GraphError(f"sim={sim!r} is not supported; supported: verilator, icarus")
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

    model = Path(model) if model is not None else Path(out_dir) / "model.onnx"
    if model.is_file():
        progress(f"ONNX reference on {n} frames")
        ref_x = np.asarray(x).reshape((n,) + tuple(network.input_shape))
        ref = np.asarray(reference(model, ref_x)).reshape(n, -1)
        if network.output.kind == "label":
            result["onnx_agree"] = _compare("the IR", y_int.reshape(n, -1),
                                            "the ONNX reference", ref.astype(np.int64))
        else:
            result["onnx_agree"] = _compare("the IR", ir_values.astype(np.float32),
                                            "the ONNX reference",
                                            _on_grid(network, y_int, ref).astype(np.float32))
        progress(f"  ONNX reference == IR on {n}/{n} frames")
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
    progress(f"RTL simulation ({sim}) of top.v on {n} frames with random back-pressure "
             f"(the first run builds the simulator)")
    stalled = _simulate(out_dir, accelerator, x_int, y_int, simulator=sim,
                        valid_prob=valid_prob, ready_prob=ready_prob, seed=seed,
                        timeout=timeout)
    result["rtl_agree"] = n
    progress(f"  RTL == IR on {n}/{n} frames ({stalled['cycles']} cycles)")

    repeats = math.ceil(THROUGHPUT_FRAMES / n)
    tx, ty = np.tile(x_int, (repeats, 1)), np.tile(y_int, (repeats, 1))
    progress(f"RTL simulation ({sim}) of {len(tx)} frames without stalls (throughput)")
    free = _simulate(out_dir, accelerator, tx, ty, simulator=sim, valid_prob=1.0,
                     ready_prob=1.0, seed=seed, timeout=timeout)
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
