"""``hwgen explore`` on a local Dask cluster against the same candidates one after the
other, with real Yosys measurements; the estimates against them; every Pareto point compiled
and verified.

    python benchmarks/explore.py --json OUT.json [--models lfc-w1a1,cnv-w1a1] [--points N]
                                 [--fps MIN:MAX] [--workers 2] [--frames 300]

Models (built into a temporary directory):

* ``lfc-w1a1`` (the default): the 784-1024-1024-1024-10 binarized MLP of
  :func:`compile.lfc_model`, verified on random uint8 images;
* ``cnv-w1a1``: FINN's CNV of :func:`cnv_model.cnv_model`, verified on
  :func:`cnv_model.cnv_images` (every Yosys run takes 10 minutes or more: opt in);
* ``digits_w1a1``: the bundled example (``examples/digits_w1a1.onnx``), verified on the
  held-out images (repeated): a quick check of this script, Yosys takes seconds.

Per model:

1. :func:`boards.explore.explore` on a local cluster of ``--workers`` worker processes (one
   thread each, made by :func:`boards.explore._client`, as ``hwgen explore`` does), target
   ``xcup`` only, the default measurement (Yosys ``synth_xilinx -family xcup``), over
   ``--points`` rates in the model's range (default: ``RANGES``, factors of the default
   folding's frames/s). ``dask_s``: wall time from starting the cluster to its shutdown;
   ``dask_eval_s``: from the end of the enumeration to the outputs written (the tasks).
2. The same candidates (the rows of step 1: their foldings, hashes and estimates), each by
   :func:`boards.explore.evaluate_candidate` in a plain loop in this process, into a fresh
   directory (so no cached row is reused). ``seq_s``: the loop's wall time plus that of the
   model's import and the enumeration, done again (so both runs do the same work).
   Stage conversion in :func:`graph.compile.compile_model` forks only from a single-threaded
   process; on a worker it runs in one process, and here too once a Dask client has run
   (``seq_threads`` > 1), so the compiles match as well.
   Yosys' own cache (:func:`boards.synth.cache_dir`, ``$HWGEN_CACHE/synth``) points at a
   fresh empty directory for each run (``HWGEN_CACHE`` is set before the cluster starts, so
   the workers inherit it): neither run reuses a synthesis, and every Yosys run happens
   exactly once per run.
3. ``ratio`` = ``seq_s`` / ``dask_s`` (target: ``RATIO_TARGET`` on 2 cores);
   ``ratio_eval`` = the loop / ``dask_eval_s``.
4. Estimate against measurement over every measured candidate, for LUT, FF, BRAM18 and DSP:
   relative error ``|est - measured| / measured`` (0 when both are 0; a measured 0 with a
   non-zero estimate is counted apart), mean and max, and the mean signed error (bias).
5. Every measured Pareto point: ``hwgen compile MODEL -o DIR --folding folding-K.json`` and
   ``hwgen verify DIR --inputs X.npy`` on ``--frames`` random inputs in the model's input
   range (each a fresh process); ``compiled``, ``verified`` (exit status 0: ONNX reference
   == IR == RTL on every frame) and that the compiled cycles per frame are the row's.

Per-candidate rows (``candidates``): cycles per frame, the estimate, the measurement of
both runs (``same_measurement``: Yosys is deterministic), the sequential wall time and the
time of the candidate's Dask compile task (``prepare_task``) on its worker (from the
worker's transition log: ``dask_task_s``, ``worker``, and ``task_start_s``/``task_end_s``
from the start of step 1). explore() synthesizes xcup in out-of-context pieces, each a Dask
task (``boards.explore.piece_task``); ``piece_tasks`` lists them (worker, seconds, start
and end) and ``piece_busy_s_per_worker`` adds up each worker's Yosys time. The sequential
loop does the same pieces one after the other (``boards.explore.measure``).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _common import format_table, progress, write_json, _ROOT, model_list

MODELS = ("lfc-w1a1", "cnv-w1a1", "digits_w1a1")
#: Default range per model, as factors of the default folding's frames/s, and points. An
#: LFC candidate's Yosys runs take about 3 minutes in all, so the default run measures four
#: rates from half to 4 times the default one: about 20 minutes on 2 cores in all.
RANGES = {"lfc-w1a1": ((0.5, 4), 4), "cnv-w1a1": ((1, 4), 2), "digits_w1a1": ((0.01, 4), 6)}
RATIO_TARGET = 1.8
QUANTITIES = (("luts", "luts"), ("ffs", "ffs"), ("bram18", "bram18"), ("dsp", "dsp"))
MEASURE = "boards.explore:measure"


def _model_and_inputs(name, work, frames):
    rng = np.random.default_rng(1)
    if name == "digits_w1a1":
        x = np.load(_ROOT / "examples" / "digits_test_x.npy")
        return _ROOT / "examples" / "digits_w1a1.onnx", np.resize(x, (frames,) + x.shape[1:])
    if name == "lfc-w1a1":
        from compile import lfc_model
        path = lfc_model(work / "lfc_w1a1.onnx")
        return path, rng.integers(0, 256, size=(frames, 784)).astype(np.float32)
    from cnv_model import cnv_images, cnv_model
    path = cnv_model(work / "cnv_w1a1.onnx")
    return path, cnv_images(rng, frames)


def _default_fps(model, clock_mhz):
    from graph.elaborate import Accelerator
    from graph.fold import fold
    from graph.importer import import_model
    network = import_model(model)
    return Accelerator(fold(network, None, clock_mhz)).fps(clock_mhz)


class _Stamps:
    """explore()'s progress lines, forwarded to stderr, with the time of each."""

    def __init__(self):
        self.lines = []

    def __call__(self, line):
        self.lines.append((time.perf_counter(), line))
        progress(f"  {line}")

    def at(self, prefix):
        return next((t for t, line in self.lines if line.lstrip().startswith(prefix)), None)


def _task_log(dask_worker):
    """On a worker: (key, start, end) of every explore task it computed to the end (from its
    transition log; a task computed twice counts by its last run)."""
    begun, out = {}, []
    for entry in dask_worker.state.log:
        key = str(entry[0])
        if not key.startswith(("hwgen-explore-", "hwgen-piece-")) or len(entry) < 4:
            continue
        start, finish, stamp = entry[1], entry[2], entry[-1]
        if finish == "executing":
            begun[key] = stamp
        elif start == "executing" and finish in ("memory", "error") and key in begun:
            out.append((key, begun.pop(key), stamp))
    return out


def run_dask(model, out, fps, points, workers, clock_mhz, timeout, cache):
    """Step 1: explore on a fresh local cluster; (result, seconds, eval seconds, tasks)."""
    from boards.explore import _client, explore
    os.environ["HWGEN_CACHE"] = str(cache)          # inherited by the worker processes
    stamps = _Stamps()
    start, epoch = time.perf_counter(), time.time()
    client, cluster = _client(None, workers)
    try:
        result = explore(model, out, fps=fps, points=points, targets=("xcup",),
                         clock_mhz=clock_mhz, timeout=timeout, client=client,
                         measure=MEASURE, progress=stamps)
        tasks, pieces = {}, []
        for worker, log in sorted(client.run(_task_log).items()):
            for key, begin, end in log:
                entry = {"seconds": round(end - begin, 1), "worker": worker,
                         "start_s": round(begin - epoch, 1), "end_s": round(end - epoch, 1)}
                if key.startswith("hwgen-piece-"):
                    pieces.append(dict(entry, key=key))
                else:
                    tasks[key[len("hwgen-explore-"):]] = entry
    finally:
        client.close()
        cluster.close()
    seconds = time.perf_counter() - start
    began, ended = stamps.at("enumerating"), stamps.at("wrote")
    enumerated = next((t for t, line in stamps.lines if "distinct foldings" in line), None)
    evaluation = ended - enumerated if enumerated and ended else None
    return (result, seconds, evaluation, tasks, pieces,
            enumerated - began if enumerated else None)


def run_sequential(model, work, rows, fps, points, clock_mhz, timeout, cache):
    """Step 2: the import and enumeration again (timed), then evaluate_candidate on the same
    candidates one by one in this process; (rows by candidate, loop seconds, enumeration
    seconds, seconds per candidate, threads)."""
    from boards.explore import _near_front, enumerate_candidates, evaluate_candidate
    from graph.importer import import_model
    os.environ["HWGEN_CACHE"] = str(cache)
    start = time.perf_counter()
    network = import_model(model)
    chosen = _near_front(enumerate_candidates(network, fps[0], fps[1], points, clock_mhz),
                         0.15)
    enumeration = time.perf_counter() - start
    foldings = sorted(json.dumps(c["folding"], sort_keys=True) for c in chosen)
    assert foldings == sorted(json.dumps(r["folding"], sort_keys=True) for r in rows), \
        "the enumeration chose other candidates than explore()"
    model = Path(model).resolve()
    found, times = {}, {}
    threads = threading.active_count()
    start = time.perf_counter()
    for row in rows:
        digest = row["candidate"]
        spec = {"hash": digest, "model": str(model),
                "dir": str(work / "candidates" / digest),
                "cache": str(work / "cache" / f"{digest}.json"),
                "targets": ["xcup"], "clock_mhz": clock_mhz, "timeout": timeout,
                "measure": MEASURE,
                **{key: row[key] for key in ("folding", "target_fps", "cycles_per_frame",
                                             "est", "est_fps", "layers")}}
        begun = time.perf_counter()
        result = evaluate_candidate(spec)
        times[digest] = round(time.perf_counter() - begun, 1)
        found[digest] = result[0]
        progress(f"  sequential: candidate {digest} ({row['cycles_per_frame']:,} cycles/frame) "
                 f"{result[0]['status']} in {times[digest]:.0f} s")
    return found, time.perf_counter() - start, enumeration, times, threads


def relative_errors(rows):
    """Per quantity: mean and max of |est - measured| / measured, the mean signed error,
    the points, and those measured 0 with a non-zero estimate (left out)."""
    out = {}
    for key, est_key in QUANTITIES:
        errors, zero = [], 0
        for row in rows:
            est, meas = row["est"][est_key], row["measured"][key]
            if meas == 0:
                if est == 0:
                    errors.append(0.0)
                else:
                    zero += 1
                continue
            errors.append((est - meas) / meas)
        out[key] = {"mean": round(float(np.mean(np.abs(errors))), 4) if errors else None,
                    "max": round(float(np.max(np.abs(errors))), 4) if errors else None,
                    "bias": round(float(np.mean(errors)), 4) if errors else None,
                    "points": len(errors), "measured_zero_est_nonzero": zero}
    return out


def _hwgen(*args):
    done = subprocess.run([sys.executable, "-m", "hwgen.cli", *map(str, args)], cwd=_ROOT,
                          capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def check_pareto_point(model, out, folding_file, row, x_file, frames):
    """Step 5 for one Pareto point."""
    from graph.compile import read_report
    target = out.parent / f"{out.name}-compiled"
    entry = {"candidate": row["candidate"], "folding_file": folding_file.name,
             "cycles_per_frame": row["cycles_per_frame"], "fps": row["fps"],
             "lut_eq": row["measured"]["lut_eq"], "frames": frames}
    start = time.perf_counter()
    code, _, err = _hwgen("compile", model, "-o", target, "--folding", folding_file)
    entry["compile_s"] = round(time.perf_counter() - start, 1)
    entry["compiled"] = code == 0
    if code:
        entry["error"] = (err.strip().splitlines() or ["?"])[-1]
        entry["verified"] = False
        return entry
    entry["same_cycles"] = read_report(target)["cycles_per_frame"] == row["cycles_per_frame"]
    start = time.perf_counter()
    code, text, err = _hwgen("verify", target, "--inputs", x_file)
    entry["verify_s"] = round(time.perf_counter() - start, 1)
    entry["verified"] = code == 0
    agree = re.search(r"ONNX reference == IR: (\d+)/(\d+).*IR == RTL.*?: (\d+)/(\d+)", text)
    if agree:
        entry["onnx_agree"], entry["rtl_agree"] = int(agree.group(1)), int(agree.group(3))
    fps = re.search(r"throughput: ([\d,]+) frames/s simulated", text)
    if fps:
        entry["sim_fps"] = int(fps.group(1).replace(",", ""))
    if code:
        entry["error"] = (err.strip().splitlines() or ["?"])[-1]
    return entry


def run_model(name, work, args):
    clock = args.clock_mhz
    model, x = _model_and_inputs(name, work, args.frames)
    x_file = work / f"{name}-inputs.npy"
    np.save(x_file, x)
    default = _default_fps(model, clock)
    (low, high), points = RANGES[name]
    fps = args.fps or (default * low, default * high)
    points = args.points or points
    progress(f"{name}: default folding {default:,.0f} frames/s; exploring {points} rates in "
             f"{fps[0]:,.0f}..{fps[1]:,.0f} frames/s on {args.workers} Dask workers")
    result, dask_s, dask_eval_s, tasks, pieces, dask_enum_s = run_dask(
        model, work / f"{name}-dask", fps, points, args.workers, clock, args.timeout,
        work / f"{name}-hwgen-cache-dask")
    rows = result["rows"]
    progress(f"{name}: Dask {dask_s:.0f} s ({len(rows)} candidates, "
             f"{len(result['failed'])} failed); now the same candidates one by one")
    seq, loop_s, seq_enum_s, seq_times, threads = run_sequential(
        model, work / f"{name}-seq", rows, fps, points, clock, args.timeout,
        work / f"{name}-hwgen-cache-seq")
    seq_s = loop_s + seq_enum_s
    ok = [row for row in rows if row["status"] == "ok"]
    candidates = []
    for row in rows:
        other = seq[row["candidate"]]
        m, o = row.get("measured") or {}, other.get("measured") or {}
        candidates.append({
            "candidate": row["candidate"], "cycles_per_frame": row["cycles_per_frame"],
            "target_fps": round(row["target_fps"], 1), "est_fps": round(row["est_fps"], 1),
            "status": row["status"], "seq_status": other["status"],
            "reason": row.get("reason") or other.get("reason"),
            **{f"est_{key}": row["est"][est] for key, est in QUANTITIES},
            "est_lut_eq": row["est"]["lut_eq"],
            **{f"meas_{key}": m.get(key) for key, _ in QUANTITIES},
            "meas_lut_eq": m.get("lut_eq"),
            "same_measurement": bool(m) and m == o,
            "seq_s": seq_times[row["candidate"]],
            "dask_task_s": tasks.get(row["candidate"], {}).get("seconds"),
            "worker": tasks.get(row["candidate"], {}).get("worker"),
            "task_start_s": tasks.get(row["candidate"], {}).get("start_s"),
            "task_end_s": tasks.get(row["candidate"], {}).get("end_s"),
            "pareto": rows.index(row) in result["pareto"].get("xcup", [])})
    out = work / f"{name}-dask"
    pareto = []
    for entry in result["folding_files"]:
        row = next(r for r in rows if r["candidate"] == entry["candidate"])
        progress(f"{name}: Pareto point {entry['candidate']} ({row['fps']:,.0f} frames/s): "
                 f"hwgen compile --folding {entry['file']}, hwgen verify {args.frames} frames")
        pareto.append(check_pareto_point(model, work / f"{name}-pareto-{entry['candidate']}",
                                         out / entry["file"], row, x_file, args.frames))
        progress(f"  compiled: {pareto[-1]['compiled']}, verified: {pareto[-1]['verified']}")
    task_seconds = [c["dask_task_s"] for c in candidates if c["dask_task_s"] is not None]
    busy = {}
    for piece in pieces:
        busy[piece["worker"]] = round(busy.get(piece["worker"], 0) + piece["seconds"], 1)
    return {
        "model": name, "default_fps": round(default, 1),
        "fps_range": [round(v, 1) for v in fps], "points": points, "clock_mhz": clock,
        "workers": args.workers, "candidates": len(rows), "failed": len(result["failed"]),
        "dask_s": round(dask_s, 1),
        "dask_eval_s": dask_eval_s and round(dask_eval_s, 1),
        "dask_enum_s": dask_enum_s and round(dask_enum_s, 1),
        "seq_s": round(seq_s, 1), "seq_loop_s": round(loop_s, 1),
        "seq_enum_s": round(seq_enum_s, 1), "seq_threads": threads,
        "ratio": round(seq_s / dask_s, 2),
        "ratio_eval": round(loop_s / dask_eval_s, 2) if dask_eval_s else None,
        "task_s_max": max(task_seconds, default=None),
        "task_s_sum": round(sum(task_seconds), 1),
        "pieces": len(pieces), "piece_s_max": max((p["seconds"] for p in pieces), default=None),
        "piece_s_sum": round(sum(p["seconds"] for p in pieces), 1),
        "piece_busy_s_per_worker": busy, "piece_tasks": pieces,
        "errors": relative_errors(ok),
        "same_measurements": all(c["same_measurement"] for c in candidates
                                 if c["status"] == "ok"),
        "rows": candidates, "pareto": pareto,
        "pareto_ok": bool(pareto) and all(p["compiled"] and p["verified"] and
                                          p.get("same_cycles") for p in pareto)}


def summary(results):
    lines = []
    for r in results:
        met = r["ratio"] >= RATIO_TARGET
        lines.append(f"{r['model']}: {r['candidates']} candidates ({r['failed']} failed); "
                     f"Dask ({r['workers']} workers) {r['dask_s']:.0f} s, sequential "
                     f"{r['seq_s']:.0f} s: {r['ratio']:.2f}x (tasks only: "
                     f"{r['ratio_eval']}x; {r['pieces']} synthesis pieces, longest "
                     f"{r['piece_s_max']} s of {r['piece_s_sum']} s; Yosys busy per worker "
                     f"{r['piece_busy_s_per_worker']}); target >= {RATIO_TARGET}x met: "
                     f"{'yes' if met else 'no'}")
        errors = ", ".join(
            f"{key} {e['mean']:.1%} mean / {e['max']:.1%} max (bias {e['bias']:+.1%})"
            if e["mean"] is not None else f"{key} -" for key, e in r["errors"].items())
        lines.append(f"{r['model']}: estimate vs Yosys xcup, relative error: {errors}")
        verified = sum(p["verified"] for p in r["pareto"])
        lines.append(f"{r['model']}: Pareto points compiled and verified: {verified}/"
                     f"{len(r['pareto'])} ({r['pareto'][0]['frames'] if r['pareto'] else 0} "
                     f"frames each); same measurements in both runs: "
                     f"{'yes' if r['same_measurements'] else 'no'}")
    return lines


def _fps_range(text):
    try:
        low, high = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MIN:MAX") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 < MIN <= MAX")
    return low, high


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    parser.add_argument("--models", default="lfc-w1a1",
                        help="comma-separated subset of: " + ", ".join(MODELS) +
                             " (default: %(default)s)")
    parser.add_argument("--points", type=int, default=None,
                        help="rates tried across the range (default: per model, RANGES)")
    parser.add_argument("--fps", type=_fps_range, default=None, metavar="MIN:MAX",
                        help="throughput range for every model (default: per model, RANGES)")
    parser.add_argument("--workers", type=int, default=2,
                        help="local Dask worker processes (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=300,
                        help="random frames verified per Pareto point (default: %(default)s)")
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds per candidate (default: %(default)s)")
    parser.add_argument("--work", metavar="DIR",
                        help="keep the work files here (default: a temporary directory)")
    args = parser.parse_args(argv)
    models = model_list(parser, args.models, MODELS)
    if args.points is not None and args.points < 1:
        parser.error("--points must be at least 1")
    if args.workers < 1 or args.frames < 1:
        parser.error("--workers and --frames must be at least 1")
    results = []
    data = {"benchmark": "explore", "cores": os.cpu_count(), "target": "xcup",
            "ratio_target": RATIO_TARGET, "models": results}
    saved = os.environ.get("HWGEN_CACHE")
    with tempfile.TemporaryDirectory(prefix="hwgen-explore-bench-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            for name in models:
                results.append(run_model(name, work, args))
                if args.json:
                    write_json(args.json, data)
        finally:
            if saved is None:
                os.environ.pop("HWGEN_CACHE", None)
            else:
                os.environ["HWGEN_CACHE"] = saved
    table = [dict(row, model=r["model"],
                  verified=next((p["verified"] for p in r["pareto"]
                                 if p["candidate"] == row["candidate"]), None))
             for r in results for row in r["rows"]]
    print(format_table(table, [
        ("model", "model"), ("cycles_per_frame", "cyc/frame"), ("est_fps", "est fps"),
        ("status", "status"), ("est_luts", "est LUT"), ("meas_luts", "LUT"),
        ("est_ffs", "est FF"), ("meas_ffs", "FF"), ("est_bram18", "est BRAM18"),
        ("meas_bram18", "BRAM18"), ("est_dsp", "est DSP"), ("meas_dsp", "DSP"),
        ("meas_lut_eq", "LUT-eq"), ("seq_s", "seq s"), ("dask_task_s", "task s"),
        ("pareto", "Pareto"), ("verified", "verified")]))
    lines = summary(results)
    for line in lines:
        print(line)
    if args.json:
        data["summary"] = lines
        write_json(args.json, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
