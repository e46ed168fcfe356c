"""FINN's CNV-W1A1 topology compiled by hwgen, per folding: cycles per frame (estimated and
simulated), Yosys resources of the whole accelerator, compile and verify times.

    python benchmarks/cnn.py --json OUT.json [--foldings finn-3020,fast-21906] [--frames 10]
                             [--no-synth] [--timeout S]

The model is :func:`cnv_model.cnv_model` (the CNV of ``brevitas_examples.bnn_pynq``: six 3x3
convolutions 64-64-128-128-256-256 with two max pools, fully-connected 512-512-10, binarized
weights and activations, an 8-bit input layer; random weights and batch-norm statistics),
verified on smooth random images.

Foldings (each ``hwgen compile --target-fps F --clock-mhz C``):

* ``finn-3020``: 3,020 frames/s at 100 MHz, the rate of finn-examples' cnv-w1a1 on the
  Pynq-Z1 (at most 33,112 cycles per frame);
* ``fast-21906``: 21,906 frames/s at 200 MHz, the rate of FINN's FPGA'17 paper on a ZC706.

Per row: ``cycles_per_frame`` (the estimate) and ``sim_cycles_per_frame`` (Verilator, no
stalls, from ``hwgen verify``), the estimate and Yosys (``synth_xilinx -family xcup``)
LUT/FF/LUTRAM/BRAM18/DSP, ``compile_s`` (``hwgen compile`` in a fresh process), ``verify_s``
(``hwgen verify`` of ``--frames`` frames: ONNX reference, IR and the cocotb simulation with
back-pressure, plus the throughput run) and the ratios to FINN's cnv-w1a1 after Vivado
synthesis (finn PR #209): 21,135 LUTs, 31,517 FFs, 98 RAMB36 + 9 RAMB18 = 205 BRAM18.

Targets: ``finn-3020`` at most 33,100 cycles per frame, at most 0.6x FINN's LUTs and at most
205 BRAM18; ``fast-21906`` at least 21,906 frames/s at 200 MHz; every compile under 60 s.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import format_table, hwgen_compile, progress, write_json

FINN = {"luts": 21135, "ffs": 31517, "bram18": 2 * 98 + 9}
FOLDINGS = {"finn-3020": (3020, 100.0), "fast-21906": (21906, 200.0)}
COMPILE_LIMIT_S = 60


def run_folding(name, model, images, work, args):
    from boards.synth import synthesize
    from graph.compile import read_report
    from graph.verify import verify
    fps, clock = FOLDINGS[name]
    out = work / name
    progress(f"{name}: hwgen compile --target-fps {fps} --clock-mhz {clock:g}")
    compile_s = hwgen_compile(model, out, fps, clock)
    report = read_report(out)
    totals = report["totals"]
    row = {"folding": name, "target_fps": fps, "clock_mhz": clock,
           "cycles_per_frame": report["cycles_per_frame"],
           "fps": round(clock * 1e6 / report["cycles_per_frame"]),
           "compile_s": round(compile_s, 1), "verilog_bytes": report["verilog_bytes"],
           "bottleneck": report["bottleneck"]}
    row.update({f"est_{key}": totals[key] for key in ("luts", "ffs", "lutram", "bram18",
                                                      "dsp48e2")})
    progress(f"{name}: compiled in {compile_s:.1f} s, {report['cycles_per_frame']} cycles per "
             f"frame; verifying {len(images)} frames")
    start = time.perf_counter()
    result = verify(out, images, progress=lambda line: progress(f"  {line}"))
    row["verify_s"] = round(time.perf_counter() - start, 1)
    row["frames"] = result["frames"]
    row["agree"] = min(result["rtl_agree"], result["onnx_agree"] or 0)
    row["sim_cycles_per_frame"] = result["sim_cycles_per_frame"]
    if not args.no_synth:
        progress(f"{name}: Yosys synth_xilinx -family xcup ({report['verilog_bytes'] // 1024} "
                 f"KiB of Verilog)")
        synth = synthesize(out / "top.v", top="top", family="xcup", timeout=args.timeout)
        row.update({key: synth[key] for key in ("luts", "ffs", "lutram", "bram18", "dsp48e2")})
        row["synth_s"] = synth.get("seconds")
        row["lut_ratio_finn"] = round(row["luts"] / FINN["luts"], 3)
        row["bram18_ratio_finn"] = round(row["bram18"] / FINN["bram18"], 3)
    row["targets_met"] = targets_met(row)
    return row


def targets_met(row):
    """The issue's targets for one row (see the module documentation); None without the
    synthesis they need."""
    ok = row["compile_s"] < COMPILE_LIMIT_S and row["agree"] == row["frames"] and \
        row["sim_cycles_per_frame"] == row["cycles_per_frame"]
    if row["folding"] == "fast-21906":
        return ok and row["fps"] >= 21906
    if "luts" not in row:
        return None
    return (ok and row["cycles_per_frame"] <= 33100 and row["luts"] <= 0.6 * FINN["luts"]
            and row["bram18"] <= FINN["bram18"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, metavar="OUT.json", help="write the rows here")
    parser.add_argument("--foldings", default=",".join(FOLDINGS),
                        help="comma-separated subset of: " + ", ".join(FOLDINGS))
    parser.add_argument("--frames", type=int, default=10, help="frames verified (default 10)")
    parser.add_argument("--no-synth", action="store_true", help="skip Yosys")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds per synthesis (default: %(default)s)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.foldings.split(",") if n.strip()]
    for name in names:
        if name not in FOLDINGS:
            parser.error(f"--foldings {name} is not one of {', '.join(FOLDINGS)}")
    from cnv_model import cnv_images, cnv_model
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwgen-cnn-") as tmp:
        work = Path(tmp)
        model = cnv_model(work / "cnv_w1a1.onnx")
        images = cnv_images(np.random.default_rng(1), args.frames)
        for name in names:
            rows.append(run_folding(name, model, images, work, args))
            write_json(args.json, {"benchmark": "cnn", "model": "cnv-w1a1", "finn": FINN,
                                   "rows": rows})
    print(format_table(rows, [
        ("folding", "folding"), ("cycles_per_frame", "cycles"),
        ("sim_cycles_per_frame", "sim"), ("fps", "fps"), ("luts", "LUTs"),
        ("est_luts", "est"), ("ffs", "FFs"), ("lutram", "LUTRAM"), ("bram18", "BRAM18"),
        ("est_bram18", "est"), ("dsp48e2", "DSP"), ("lut_ratio_finn", "LUT/FINN"),
        ("bram18_ratio_finn", "BRAM/FINN"), ("compile_s", "compile s"),
        ("verify_s", "verify s"), ("agree", "agree"), ("targets_met", "ok")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
