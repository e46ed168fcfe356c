"""Simulation speed of whole compiled networks: the compiled Verilator harness
(:mod:`sim.harness`) against the cocotb harness (:mod:`sim.stream_tb`), on this machine in
one run.

    python benchmarks/sim_speed.py --json OUT.json [--models digits_w1a1,lfc-w1a1,cnv-w1a1]
                                   [--frames-scale F] [--verify-frames N]

Models, each compiled by ``hwgen compile`` (a fresh process, default folding) into a
temporary directory:

* ``digits_w1a1``: ``examples/digits_w1a1.onnx`` on the held-out images
  (``examples/digits_test_x.npy``, repeated as needed);
* ``lfc-w1a1``: the 784-1024-1024-1024-10 binarized MLP of :func:`compile.lfc_model` on
  random uint8 images;
* ``cnv-w1a1``: FINN's CNV of :func:`cnv_model.cnv_model` on :func:`cnv_model.cnv_images`
  (several MB of Verilog: skip it with ``--models digits_w1a1,lfc-w1a1``).

Per model (one row):

* ``verilog_mb``: size of ``top.v``; ``build_s``: :func:`sim.harness.build_harness` of it in
  a fresh cache directory (Verilator and the C++ compiles, ``make -j`` on every core);
  ``cached_s``: the same call again, which must reuse the build;
* ``cocotb_*``: the cocotb harness (:func:`sim.streams.run_stream_test` on ``top.v``,
  Verilator), after a warm-up run of one frame that builds its simulator (cut short after
  ``WARMUP_CYCLES`` cycles when the frame takes longer): cycles per second
  = the report's ``cycles`` / wall seconds of the run (so it includes the simulator's
  start-up), on ``cocotb_frames`` frames, with stalls (``valid_prob=0.7``,
  ``ready_prob=0.6``, ``_stall``) and without (``_free``);
* ``compiled_*``: :func:`sim.harness.run_compiled_stream_test` with the same arguments on
  ``compiled_frames`` frames (100 times more; fewer for CNV): its report's
  ``cycles_per_second`` (simulated cycles / seconds of the simulation loop, timed by the
  C++ harness);
* ``ratio_stall``, ``ratio_free``: compiled / cocotb cycles per second, the headline figure;
* ``verify_s`` (``digits_w1a1`` only): wall time of
  ``graph.verify.verify(out, x, harness="compiled")`` on ``--verify-frames`` (10,000)
  frames, the held-out images tiled, with ``HWGEN_CACHE`` pointed at a new empty directory
  so that the time includes building the harness (ONNX reference, IR, the run with
  back-pressure and the throughput run).

The input beats are those of ``hwgen verify``: ``network.quantize_input(x)`` reshaped to
``(-1, in_lanes)``, the expected beats ``network.execute(x_int)`` reshaped to
``(-1, out_lanes)``; every run uses ``seed=1`` and checks every output beat.

Targets (column ``ok`` and the final lines): compiled at least 50x cocotb's cycles per second
on ``lfc-w1a1`` (with and without stalls); ``verify`` of 10,000 ``digits_w1a1`` frames in
under 60 s including the build; the Verilator build of ``lfc-w1a1`` in under 90 s (on this
machine's cores).
"""

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import format_table, hwgen_compile, progress, write_json, _ROOT, model_list

MODELS = ("digits_w1a1", "lfc-w1a1", "cnv-w1a1")
#: Frames of the timed cocotb runs (each some 10-30 s of wall time on a 2-core machine;
#: one CNV frame, the least there is, takes longer).
COCOTB_FRAMES = {"digits_w1a1": 2400, "lfc-w1a1": 24, "cnv-w1a1": 1}
#: Frames of the compiled runs: 100 times more (CNV: fewer, it is slow to simulate).
COMPILED_FRAMES = {"digits_w1a1": 240_000, "lfc-w1a1": 2400, "cnv-w1a1": 20}
#: Cycle budget of the cocotb warm-up run, which only has to build the simulator: it stops
#: (a timeout failure, ignored) after that many cycles if the frame is not out by then.
WARMUP_CYCLES = 20_000
#: Distinct frames executed by the IR; longer runs repeat them.
UNIQUE_FRAMES = 64
STALLS = {"stall": (0.7, 0.6), "free": (1.0, 1.0)}
RATIO_TARGET = 50          # compiled / cocotb cycles per second, lfc-w1a1
VERIFY_TARGET_S = 60       # verify of 10,000 digits frames, build included
BUILD_TARGET_S = 90        # Verilator build of lfc-w1a1
VERIFY_FRAMES = 10_000


def _inputs(name, work, frames):
    """``(model path, inputs)``: at most UNIQUE_FRAMES (or the held-out set) distinct frames."""
    if name == "digits_w1a1":
        x = np.load(_ROOT / "examples" / "digits_test_x.npy")
        return _ROOT / "examples" / "digits_w1a1.onnx", x
    if name == "lfc-w1a1":
        from compile import lfc_model
        path = lfc_model(work / "lfc_w1a1.onnx")
        n = min(frames, UNIQUE_FRAMES)
        x = np.random.default_rng(1).integers(0, 256, size=(n, 784)).astype(np.float32)
        return path, x
    from cnv_model import cnv_images, cnv_model
    path = cnv_model(work / "cnv_w1a1.onnx")
    return path, cnv_images(np.random.default_rng(1), min(frames, UNIQUE_FRAMES))


def _beats(network, accelerator, x_int, y_int, frames):
    """In and expected beats of ``frames`` frames (the given ones repeated)."""
    repeats = math.ceil(frames / len(x_int))
    xi = np.tile(x_int, (repeats,) + (1,) * (x_int.ndim - 1))[:frames]
    yi = np.tile(y_int, (repeats,) + (1,) * (y_int.ndim - 1))[:frames]
    return xi.reshape(-1, accelerator.in_lanes), yi.reshape(-1, accelerator.out_lanes)


def _run_both(accelerator, verilog, in_beats, expected, frames, harness_cache, which):
    from graph.verify import cycle_budget
    from sim.harness import run_compiled_stream_test
    from sim.streams import run_stream_test
    out = {}
    for label, (valid, ready) in STALLS.items():
        kwargs = dict(verilog=verilog, valid_prob=valid, ready_prob=ready, seed=1,
                      max_cycles=cycle_budget(accelerator, frames, len(in_beats),
                                              len(expected), valid, ready))
        start = time.perf_counter()
        if which == "cocotb":
            report = run_stream_test(accelerator, in_beats, expected, **kwargs)
            wall = time.perf_counter() - start
            out[label] = {"cycles": report["cycles"], "wall_s": wall,
                          "cps": report["cycles"] / wall}
        else:
            report = run_compiled_stream_test(accelerator, in_beats, expected,
                                              cache_dir=harness_cache, **kwargs)
            wall = time.perf_counter() - start
            out[label] = {"cycles": report["cycles"], "wall_s": wall,
                          "simulated_cycles": report["simulated_cycles"],
                          "sim_s": report["sim_seconds"], "cps": report["cycles_per_second"],
                          "wall_cps": report["cycles"] / wall}
        progress(f"  {which} {label}: {report['cycles']:,} cycles in {wall:.1f} s wall, "
                 f"{out[label]['cps']:,.0f} cycles/s")
    return out


def _verify_10k(out, x, frames):
    """Wall seconds of verify(harness="compiled") on ``frames`` frames, fresh caches."""
    from graph.verify import verify
    x10k = np.tile(x, (math.ceil(frames / len(x)),) + (1,) * (x.ndim - 1))[:frames]
    saved = os.environ.get("HWGEN_CACHE")
    with tempfile.TemporaryDirectory(prefix="hwgen-verify-cache-") as cache:
        os.environ["HWGEN_CACHE"] = cache
        try:
            start = time.perf_counter()
            result = verify(out, x10k, harness="compiled", progress=None)
            seconds = time.perf_counter() - start
        finally:
            if saved is None:
                os.environ.pop("HWGEN_CACHE", None)
            else:
                os.environ["HWGEN_CACHE"] = saved
    return seconds, result


def run_model(name, work, args):
    from graph.compile import load_network, read_report
    from graph.elaborate import Pipeline
    from sim import runner
    from sim.harness import build_harness
    from sim.streams import run_stream_test

    cocotb_frames = max(1, round(COCOTB_FRAMES[name] * args.frames_scale))
    compiled_frames = max(1, round(COMPILED_FRAMES[name] * args.frames_scale))
    model, x = _inputs(name, work, compiled_frames)
    out = work / name
    progress(f"{name}: hwgen compile")
    compile_s = hwgen_compile(model, out)
    report = read_report(out)
    verilog = out / "top.v"
    row = {"model": name, "compile_s": round(compile_s, 1),
           "verilog_mb": round(verilog.stat().st_size / 1e6, 2),
           "cycles_per_frame": report["cycles_per_frame"],
           "latency_cycles": report["latency_cycles"]}

    harness_cache = work / f"{name}-harness-cache"
    progress(f"{name}: building the compiled harness ({row['verilog_mb']} MB of Verilog, "
             f"{os.cpu_count()} cores)")
    start = time.perf_counter()
    build = build_harness(verilog, cache_dir=harness_cache,
                          progress=lambda line: progress(f"  {line}") if not
                          line.startswith("  C++ file") else None)
    row["build_s"] = round(time.perf_counter() - start, 1)
    row["build_s_harness"] = build.build_seconds and round(build.build_seconds, 1)
    start = time.perf_counter()
    again = build_harness(verilog, cache_dir=harness_cache)
    row["cached_s"] = round(time.perf_counter() - start, 3)
    row["cache_reused"] = again.build_seconds is None
    progress(f"{name}: built in {row['build_s']} s; again (cached: {row['cache_reused']}) in "
             f"{row['cached_s']} s")

    network = load_network(out)
    accelerator = Pipeline(network)
    x_int = network.quantize_input(x)
    y_int = network.execute(x_int)

    progress(f"{name}: cocotb warm-up on 1 frame (builds the cocotb simulator)")
    in1, exp1 = _beats(network, accelerator, x_int, y_int, 1)
    start = time.perf_counter()
    try:
        run_stream_test(accelerator, in1, exp1, verilog=verilog, valid_prob=1.0,
                        ready_prob=1.0, seed=1, max_cycles=WARMUP_CYCLES)
    except runner.TestFailure as error:     # the frame was not out within WARMUP_CYCLES
        progress(f"  warm-up stopped after {WARMUP_CYCLES} cycles (expected): "
                 f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}")
    row["cocotb_warmup_s"] = round(time.perf_counter() - start, 1)

    row["cocotb_frames"], row["compiled_frames"] = cocotb_frames, compiled_frames
    progress(f"{name}: cocotb on {cocotb_frames} frames")
    in_beats, expected = _beats(network, accelerator, x_int, y_int, cocotb_frames)
    cocotb = _run_both(accelerator, verilog, in_beats, expected, cocotb_frames, None,
                       "cocotb")
    progress(f"{name}: compiled harness on {compiled_frames} frames")
    rebuilt = build_harness(verilog, cache_dir=harness_cache).build_seconds
    if rebuilt is not None:     # sim/harness.cpp or the toolchain changed since the build
        progress(f"  warning: the harness was built again ({rebuilt:.1f} s): its sources "
                 f"changed during the benchmark")
        row["rebuilt_s"] = round(rebuilt, 1)
    in_beats, expected = _beats(network, accelerator, x_int, y_int, compiled_frames)
    compiled = _run_both(accelerator, verilog, in_beats, expected, compiled_frames,
                         harness_cache, "compiled")
    for label in STALLS:
        row[f"cocotb_cps_{label}"] = round(cocotb[label]["cps"])
        row[f"cocotb_wall_s_{label}"] = round(cocotb[label]["wall_s"], 1)
        row[f"cocotb_cycles_{label}"] = cocotb[label]["cycles"]
        row[f"compiled_cps_{label}"] = round(compiled[label]["cps"])
        row[f"compiled_wall_cps_{label}"] = round(compiled[label]["wall_cps"])
        row[f"compiled_wall_s_{label}"] = round(compiled[label]["wall_s"], 1)
        row[f"compiled_sim_s_{label}"] = round(compiled[label]["sim_s"], 2)
        row[f"compiled_cycles_{label}"] = compiled[label]["cycles"]
        row[f"ratio_{label}"] = round(compiled[label]["cps"] / cocotb[label]["cps"], 1)

    if name == "digits_w1a1" and args.verify_frames:
        progress(f"{name}: verify(harness='compiled') on {args.verify_frames} frames, "
                 f"fresh cache")
        try:
            seconds, result = _verify_10k(out, x, args.verify_frames)
        except Exception as error:       # a GraphError, or a verify() without harness=
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            progress(f"  verify failed: {type(error).__name__}: {message}")
            row["verify_error"] = f"{type(error).__name__}: {message}"
        else:
            row["verify_s"] = round(seconds, 1)
            row["verify_frames"] = result["frames"]
            row["verify_agree"] = min(result["rtl_agree"], result["onnx_agree"] or 0)
            row["verify_sim_cps"] = result.get("sim_cycles_per_second") and \
                round(result["sim_cycles_per_second"])
            progress(f"  {seconds:.1f} s, {row['verify_agree']}/{result['frames']} frames "
                     f"agree")
    row["targets_met"] = targets_met(row, args.verify_frames)
    return row


def targets_met(row, verify_frames=VERIFY_FRAMES):
    """The targets that apply to one row (see the module documentation); None if none."""
    checks = []
    if row["model"] == "lfc-w1a1":
        checks += [row["ratio_stall"] >= RATIO_TARGET, row["ratio_free"] >= RATIO_TARGET,
                   row["build_s"] < BUILD_TARGET_S]
    if row["model"] == "digits_w1a1" and verify_frames == VERIFY_FRAMES:
        checks.append(row.get("verify_s") is not None and row["verify_s"] < VERIFY_TARGET_S
                      and row.get("verify_agree") == row.get("verify_frames"))
    return all(checks) if checks else None


def summary(rows, verify_frames):
    by = {row["model"]: row for row in rows}
    lines = []
    lfc = by.get("lfc-w1a1")
    if lfc:
        ok = min(lfc["ratio_stall"], lfc["ratio_free"]) >= RATIO_TARGET
        lines.append(f"lfc-w1a1 compiled/cocotb cycles/s >= {RATIO_TARGET}x: "
                     f"{lfc['ratio_stall']}x with stalls, {lfc['ratio_free']}x without; "
                     f"target met: {'yes' if ok else 'no'}")
        ok = lfc["build_s"] < BUILD_TARGET_S
        lines.append(f"lfc-w1a1 Verilator build < {BUILD_TARGET_S} s: {lfc['build_s']} s on "
                     f"{os.cpu_count()} cores; target met: {'yes' if ok else 'no'}")
    digits = by.get("digits_w1a1")
    if digits and verify_frames:
        if "verify_s" in digits:
            ok = digits["verify_s"] < VERIFY_TARGET_S and \
                digits["verify_agree"] == digits["verify_frames"]
            lines.append(f"verify of {verify_frames:,} digits_w1a1 frames (build included) < "
                         f"{VERIFY_TARGET_S} s: {digits['verify_s']} s, "
                         f"{digits['verify_agree']}/{digits['verify_frames']} agree; "
                         f"target met: {'yes' if ok else 'no'}")
        else:
            lines.append(f"verify of {verify_frames:,} digits_w1a1 frames: not measured "
                         f"({digits.get('verify_error')}); target met: no")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT.json", help="write the rows as JSON")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated subset of: " + ", ".join(MODELS))
    parser.add_argument("--frames-scale", type=float, default=1.0,
                        help="multiply every run's frame count (default: 1)")
    parser.add_argument("--verify-frames", type=int, default=VERIFY_FRAMES,
                        help="digits frames of the verify timing, 0 to skip "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    models = model_list(parser, args.models, MODELS)
    if args.frames_scale <= 0:
        parser.error("--frames-scale must be positive")
    rows = []
    data = {"benchmark": "sim_speed", "cores": os.cpu_count(),
            "targets": {"ratio_lfc": RATIO_TARGET, "verify_10k_s": VERIFY_TARGET_S,
                        "build_lfc_s": BUILD_TARGET_S}, "rows": rows}
    with tempfile.TemporaryDirectory(prefix="hwgen-simspeed-") as tmp:
        work = Path(tmp)
        for name in models:
            rows.append(run_model(name, work, args))
            if args.json:
                write_json(args.json, data)
    print(format_table(rows, [
        ("model", "model"), ("verilog_mb", "MB"), ("cycles_per_frame", "cyc/frame"),
        ("build_s", "build s"), ("cached_s", "cached s"), ("cocotb_frames", "cocotb fr"),
        ("cocotb_cps_stall", "cocotb c/s stall"), ("cocotb_cps_free", "cocotb c/s free"),
        ("compiled_frames", "compiled fr"), ("compiled_cps_stall", "compiled c/s stall"),
        ("compiled_cps_free", "compiled c/s free"), ("ratio_stall", "x stall"),
        ("ratio_free", "x free"), ("verify_s", "verify 10k s"), ("targets_met", "ok")]))
    lines = summary(rows, args.verify_frames)
    for line in lines:
        print(line)
    if args.json:
        data["summary"] = lines
        write_json(args.json, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
