"""Compile time and simulated throughput of whole networks (``hwgen compile`` + ``verify``).

    python benchmarks/compile.py --json OUT.json [--models digits_w1a1,digits_w2a2,lfc-w1a1]

Models:

* ``digits_w1a1``, ``digits_w2a2``: the bundled examples (``examples/*.onnx``), verified on
  the first ``--frames`` images of the held-out split;
* ``lfc-w1a1``: a 784-1024-1024-1024-10 binarized MLP, the size of FINN's LFC, with random
  weights and thresholds, in FINN-ONNX style (UINT8 pixels binarized by a ``MultiThreshold``,
  ``MatMul`` with BIPOLAR weights, ``MultiThreshold`` sign activations, ``TopK``), built here
  with ``onnx.helper``; verified on random images. ``lfc-w1a1-100k``: the same model folded
  for 100,000 frames/s (about 2,000 products per cycle per layer).

Each model is compiled by the ``hwgen compile`` command line in a fresh process (the time
includes Python start-up and imports), at the default folding unless ``--target-fps`` is
given; then :func:`graph.verify.verify` checks ONNX reference == IR == Verilator simulation
and measures the steady-state cycles per frame without stalls.

JSON rows: ``model``, ``compile_s``, ``verilog_bytes``, ``est_fps``, ``sim_fps`` (at the
report's clock), ``cycles_per_frame``, ``sim_cycles_per_frame``, ``latency_cycles``,
``sim_latency``, ``luts``, ``bram18``, ``frames`` and ``agree`` (frames where all three
executions agree).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import format_table, hwgen_compile, progress, write_json, _ROOT, model_list

FINN = "finn.custom_op.general"
MODELS = ("digits_w1a1", "digits_w2a2", "lfc-w1a1", "lfc-w1a1-100k")
#: Throughput targets (frames/s) of models that do not use the default folding.
TARGETS = {"lfc-w1a1-100k": 100_000}


def lfc_model(path, sizes=(784, 1024, 1024, 1024, 10), seed=0):
    """Write a random-weight W1A1 MLP in FINN-ONNX style to ``path``."""
    from graph.finn_onnx import FinnOnnxWriter
    rng = np.random.default_rng(seed)
    writer = FinnOnnxWriter({"pixels": ([1, sizes[0]], "UINT8")})
    x = writer.multithreshold("binarize_input", "pixels", [[128.0]])
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        x = writer.matmul(f"fc{layer}", x, rng.choice([-1.0, 1.0], size=(n_in, n_out)),
                          "BIPOLAR")
        if layer < len(sizes) - 2:
            spread = int(np.sqrt(n_in))
            thresholds = rng.integers(-spread, spread + 1, size=(n_out, 1)).astype(np.float32)
            x = writer.multithreshold(f"act{layer}", x, thresholds)
    writer.topk(x)
    return writer.save(path, name="lfc_w1a1", producer="hwgen-benchmarks")


def _model_and_inputs(name, work, frames):
    if name.startswith("lfc-w1a1"):
        path = lfc_model(work / "lfc_w1a1.onnx")
        x = np.random.default_rng(1).integers(0, 256, size=(frames, 784)).astype(np.float32)
        return path, x
    path = _ROOT / "examples" / f"{name}.onnx"
    if not path.is_file():
        return None, None
    return path, np.load(_ROOT / "examples" / "digits_test_x.npy")[:frames]


def run(models, frames, lfc_frames, target_fps):
    from graph.compile import read_report
    from graph.verify import verify
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwgen-bench-") as tmp:
        work = Path(tmp)
        for name in models:
            model, x = _model_and_inputs(name, work, lfc_frames if name.startswith("lfc")
                                         else frames)
            if model is None:
                progress(f"{name}: examples/{name}.onnx not found, skipped")
                continue
            out = work / name
            progress(f"{name}: hwgen compile")
            seconds = hwgen_compile(model, out, target_fps or TARGETS.get(name))
            report = read_report(out)
            progress(f"{name}: compiled in {seconds:.1f} s; verifying {len(x)} frames")
            result = verify(out, x, progress=lambda line: progress(f"  {line}"))
            rows.append({
                "model": name, "compile_s": round(seconds, 2),
                "verilog_bytes": report["verilog_bytes"], "est_fps": round(report["est_fps"]),
                "sim_fps": round(result["sim_fps"]),
                "cycles_per_frame": report["cycles_per_frame"],
                "sim_cycles_per_frame": result["sim_cycles_per_frame"],
                "latency_cycles": report["latency_cycles"], "sim_latency": result["sim_latency"],
                "luts": report["totals"]["luts"], "bram18": report["totals"]["bram18"],
                "frames": result["frames"], "agree": min(result["rtl_agree"],
                                                         result["onnx_agree"] or 0),
                "clock_mhz": report["clock_mhz"]})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="OUT.json", help="write the rows as JSON")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated subset of: " + ", ".join(MODELS))
    parser.add_argument("--frames", type=int, default=32,
                        help="held-out images verified per digits model (default: 32)")
    parser.add_argument("--lfc-frames", type=int, default=4,
                        help="random images verified for lfc-w1a1 (default: 4)")
    parser.add_argument("--target-fps", type=float, default=None,
                        help="throughput target for every model (default folding if unset)")
    args = parser.parse_args(argv)
    models = model_list(parser, args.models, MODELS)
    rows = run(models, args.frames, args.lfc_frames, args.target_fps)
    columns = ["model", "compile_s", "verilog_bytes", "est_fps", "sim_fps", "cycles_per_frame",
               "sim_cycles_per_frame", "latency_cycles", "sim_latency", "luts", "bram18",
               "agree"]
    print(format_table(rows, [(key, key) for key in columns]))
    if args.json:
        write_json(args.json, {"benchmark": "compile", "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
