"""Per-layer localization: which stage of a written ``top.v`` disagrees with the IR.

``hwgen compile`` writes every stage of the pipeline (layer kernels, duplicates, width
converters, FIFOs) as a Verilog module of its own, ``top_s{index}_{name}``
(:func:`graph.elaborate.stitched_verilog`). :func:`localize` takes each layer stage and each
duplicate of that file, wraps it alone in the AXI4-Stream shell, and runs it on the compiled
harness (:mod:`sim.harness`), fed with the IR's intermediate tensors of the chosen frames and
checked against the IR's output of that layer, under the same random back-pressure as the
whole design. Stages run in pipeline order, so the first one that differs is the layer to
look at; it is reported with the frame, the beat and the element, the expected and the seen
value. Width converters and FIFOs are not run on their own: when every layer agrees, the
disagreement is in those links or in the stages' timing in the whole pipeline, and the
result says so.

The stage is the one in the written file, not a fresh export: an edited ``top.v``, or a
``network.json`` changed after compiling, is found at the layer that changed.
"""

import concurrent.futures
import os
from pathlib import Path

import numpy as np

from hwgen.export.axis import axis_prefix

from .elaborate import StageInstance, stage_module, stage_names
from .errors import GraphError

__all__ = ["localize", "format_stage"]

#: Stages not run on their own (the links between layers).
LINK_KINDS = ("width", "fifo")


def _stage_tensors(stage, edges):
    """``(inputs, outputs)``: kernel port -> ``(beats, lanes)`` element array of ``stage``
    from the IR's tensors ``edges`` (edge name -> ``(frames, elements)``)."""
    plan = stage.plan
    if stage.layer is not None:
        sources = dict(zip(plan.inputs, stage.layer.inputs))
        inputs = {port: edges[edge] for port, edge in sources.items()}
        outputs = {"o": edges[stage.layer.name]}
    else:                                           # a duplicate of edge E: "E.fork"
        edge = stage.name[:-len(".fork")]
        inputs = {"i": edges[edge]}
        outputs = {port: edges[edge] for port in plan.outputs}
    formats = {**plan.inputs, **plan.outputs}
    shape = {port: (-1, formats[port].lanes) for port in formats}
    return ({p: np.asarray(v).reshape(shape[p]) for p, v in inputs.items()},
            {p: np.asarray(v).reshape(shape[p]) for p, v in outputs.items()})


def _stage_verilog(blocks, module, plan):
    """The shell around ``module`` alone, and the module's text (taken from ``blocks``, the
    :func:`sim.sources.module_blocks` of ``top.v``)."""
    from hwgen.export.axis import AXIStreamShell
    from hwgen.export.verilog import component_verilog
    from sim.sources import module_ports, module_tree
    tree = module_tree(blocks, module)
    shell = AXIStreamShell(StageInstance(plan, module, module_ports(tree, module)),
                           out_beats_per_frame={port: plan.beats_per_frame(port)
                                                for port in plan.outputs})
    return component_verilog(shell, name="stage") + tree


def _element(plan, port, beat_index, seen_hex, expected_beats, first_frame):
    """Where a wrong beat differs: frame, beat of the frame, element of the frame, values."""
    from sim.streams import port_format, unpack_beats
    w, lanes, signed = port_format(plan, port)
    per_frame = plan.beats_per_frame(port)
    seen = unpack_beats([int(seen_hex, 16)], w, lanes, signed=signed)[0]
    want = expected_beats[beat_index]
    lane = int(np.flatnonzero(seen != want)[0]) if np.any(seen != want) else 0
    beat = beat_index % per_frame
    return {"frame": first_frame + beat_index // per_frame, "beat": beat,
            "element": beat * lanes + lane, "expected": int(want[lane]),
            "seen": int(seen[lane]), "port": port}


def format_stage(found):
    """One line for a stage's outcome (an entry of :func:`localize`)."""
    what = f"layer {found['stage']}" if found["kind"] not in ("duplicate",) else \
        f"duplicate {found['stage']}"
    where = f"{what} ({found['kind']}, module {found['module']})"
    if found["passed"]:
        return f"{where} agrees with the IR"
    if found.get("element") is not None:
        port = "" if found["port"] == "o" else f" on output {found['port']}"
        text = (f"{where} differs from the IR{port}: frame {found['frame']}, beat "
                f"{found['beat']} of the frame, element {found['element']}: expected "
                f"{found['expected']}, seen {found['seen']}")
    else:
        text = f"{where} differs from the IR: {found['error']}"
    if found.get("waves"):
        text += f" (waves: {found['waves']})"
    return text


def localize(out_dir, accelerator, x_int, frames, *, seed=1, valid_prob=0.7, ready_prob=0.6,
             waves=False, timeout=None, progress=None, stop_at_first=True):
    """Simulate the layer stages of ``out_dir/top.v`` one by one on the IR's tensors.

    Parameters
    ----------
    out_dir : path
        A ``hwgen compile`` output.
    accelerator : graph.elaborate.Pipeline
        The pipeline of the IR to compare with (its network's intermediate tensors feed the
        stages; its stages name the modules of ``top.v``).
    x_int : numpy.ndarray
        Encoded network inputs ``(N, elements)``.
    frames : range or sequence of int
        The frames to run (consecutive; a stage may keep state from one frame to the next).
    seed, valid_prob, ready_prob
        The random back-pressure of every stage's run.
    waves : bool
        Write a wave file of the first stage that differs, on the same frames, to
        ``out_dir/waves/``.
    stop_at_first : bool
        Stop after the first stage that differs.

    Returns
    -------
    list of dict
        One entry per stage run, in pipeline order: ``stage``, ``kind``, ``module``,
        ``passed``, ``error``, and for a wrong beat ``frame``, ``beat``, ``element``,
        ``expected``, ``seen``, ``port``; ``waves`` (path or None).
    """
    from sim import harness
    say = progress or (lambda line: None)
    top = Path(out_dir) / "top.v"
    if not top.is_file():
        raise GraphError(f"{out_dir}: no top.v; run 'hwgen compile' first")
    from sim.sources import module_blocks
    blocks = module_blocks(top.read_text())      # split once: top.v may be many MB
    frames = list(frames)
    network = accelerator.network
    _, edges = network.execute(x_int[frames[0]:frames[-1] + 1], intermediates=True)
    edges["input"] = np.asarray(x_int[frames[0]:frames[-1] + 1])
    runs = []
    for name, stage in zip(stage_names(accelerator.stages), accelerator.stages):
        if stage.kind in LINK_KINDS:
            continue
        module = stage_module("top", name)
        try:
            verilog = _stage_verilog(blocks, module, stage.plan)
        except ValueError:
            raise GraphError(f"{top} has no module {module} for stage {stage.name}: it was "
                             f"written by an older hwgen or for another network.json; "
                             f"compile again") from None
        runs.append((stage, module, verilog))

    say(f"per-layer localization: {len(runs)} stages of top.v on their own, frames "
        f"{frames[0]}..{frames[-1]} (building {len(runs)} harnesses)")
    jobs = max(1, os.cpu_count() or 1)
    results = []
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        # built in pipeline order, a core each; the ones not needed are cancelled
        builds = [pool.submit(harness.build_harness, verilog, "stage", jobs=1,
                              timeout=timeout) for _, _, verilog in runs]
        for (stage, module, verilog), build in zip(runs, builds):
            build.result()
            found = _run_stage(stage, module, verilog, edges, frames, seed, valid_prob,
                               ready_prob, timeout)
            if not found["passed"] and waves:
                found["waves"] = _waves(out_dir, stage, verilog, edges, found, seed,
                                        valid_prob, ready_prob, timeout, say)
            results.append(found)
            say(f"  {format_stage(found)}")
            if not found["passed"] and stop_at_first:
                for pending in builds:
                    pending.cancel()
                break
    return results


def _run_stage(stage, module, verilog, edges, frames, seed, valid_prob, ready_prob, timeout,
               waves=None, waves_from=0):
    """One stage on its own: its outcome (an entry of :func:`localize`)."""
    from sim import harness
    inputs, outputs = _stage_tensors(stage, edges)
    found = {"stage": stage.name, "kind": stage.kind, "module": module, "passed": True,
             "error": None, "waves": None}
    try:
        harness.run_compiled_stream_test(
            stage.plan, inputs if len(inputs) > 1 else inputs["i"],
            outputs if len(outputs) > 1 else outputs["o"], verilog=verilog, name="stage",
            seed=seed, valid_prob=valid_prob, ready_prob=ready_prob, timeout=timeout,
            waves=waves, waves_from=waves_from)
    except harness.HarnessFailure as failure:
        found.update(passed=False, error=str(failure))
        mismatch = failure.report.get("mismatch")
        if mismatch is not None:
            port = next(p for p in stage.plan.outputs if axis_prefix(p) == mismatch["stream"])
            found.update(_element(stage.plan, port, mismatch["beat"], mismatch["seen"],
                                  outputs[port], frames[0]))
            found["frame_cycle"] = _frame_start(stage.plan, failure.report,
                                                found["frame"] - frames[0])
    return found


def _frame_start(plan, report, frame):
    """The cycle of the first input beat of ``frame`` (counted from the run's first) in a
    stage's run: where its wave file starts."""
    cycles = report["in_cycles"]
    starts = []
    for port in plan.inputs:
        taken = cycles.get(axis_prefix(port)) if isinstance(cycles, dict) else cycles
        beat = frame * plan.beats_per_frame(port)
        if taken is not None and beat < len(taken):
            starts.append(int(taken[beat]))
    return max(0, min(starts) - 1) if starts else 0


def _waves(out_dir, stage, verilog, edges, found, seed, valid_prob, ready_prob, timeout, say):
    """Run the failing stage again with tracing, from the first input beat of the failing
    frame on (the same seed gives the same cycles); returns the wave file's path."""
    from sim import harness
    build = harness.build_harness(verilog, "stage", waves=True, timeout=timeout)
    folder = Path(out_dir) / "waves"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stage.name.replace('/', '_')}.{build.waves}"
    say(f"  writing waves of {stage.name} to {path}")
    _run_stage(stage, "", verilog, edges, [0], seed, valid_prob, ready_prob, timeout,
               waves=path, waves_from=found.get("frame_cycle", 0))
    return str(path)
