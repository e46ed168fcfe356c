"""Accelerators on the open boards: utilization, Fmax and frames per second.

    python benchmarks/boards.py --json OUT.json MODEL_DIR [MODEL_DIR ...]
                                [--boards icebreaker,ulx3s-85f] [--baud 1000000]
    python benchmarks/boards.py --json OUT.json --stand-in      # no compiled model needed

``results/boards_cnv.json`` is FINN's CNV-W1A1 (``benchmarks/cnv_model.py``) compiled with
``hwgen compile cnv.onnx -o cnv-w1a1 --target-fps 3020`` and built for the ULX3S-85F (ECP5,
a device FINN cannot target): ``python benchmarks/boards.py --json OUT.json cnv-w1a1
--boards ulx3s-85f``.

Each ``MODEL_DIR`` is a directory written by ``hwgen compile`` (for example the digits MLPs of
the graph work); its accelerator comes from ``graph.load_accelerator(MODEL_DIR)`` and the
model's name is the directory's name. ``--stand-in`` adds a small thresholding kernel
(:class:`hwgen.kernels.threshold.BinarySearchThreshold`, 6 channels, PE 2, 2 vectors per frame) as
model ``stand-in-threshold``, to check the flow without the graph.

Every model is built for every board with :func:`boards.build.build` (bitstreams with the
yowasp Yosys/nextpnr tools, behind the UART host link) into a scratch directory (``--work``).
A row per (board, model):

* ``board``, ``model``, ``ok``, ``error`` (e.g. the does-not-fit message);
* ``luts`` (iCE40: logic cells), ``ffs``, ``bram``, ``dsp``, and ``available`` (the device's);
* ``clock_mhz`` (the board's oscillator), ``fmax_mhz`` (nextpnr), ``timing_met``;
* ``cycles_per_frame`` (the accelerator's steady state), ``fps_at_fmax`` =
  ``fmax / cycles_per_frame``, ``fps_at_clock`` = ``clock / cycles_per_frame``;
* ``fps_uart``: frames per second the host link carries at ``baud``: with two requests in
  flight the slower direction sets the pace, ``baud / 10 / max(in_len + 8, out_len + 8)``
  (10 bits per character, 8 bytes of framing per request and per reply);
* ``in_len``, ``out_len``, ``baud``, ``build_seconds``;
* ``folding``: ``compiled`` (the directory's), or, for a model that does not fit the board
  (``DoesNotFitError``), ``refolded for N fps (UART rate)``: the network folded again
  (:func:`graph.fold.fold` at the board's clock) for the frame rate the host link carries,
  which caps the board's throughput anyway (``--no-fit``: report the failure instead).

Models are loaded with the board's implementation choices (:func:`boards.build.kernel_options`:
on ECP5, compressor trees registered after every stage and small weight tables in logic), as
``hwgen build`` does.
"""

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import format_table, progress, write_json

# This script is named like the `boards` package: drop its directory from the import path so
# that `import boards` finds the package (the project root is on the path through _common).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

DEFAULT_BOARDS = ("icebreaker", "ulx3s-85f")
FRAMING_BYTES = 8   # sync 2, type 1, seq 1, length 2, CRC 2
BITS_PER_CHARACTER = 10

COLUMNS = [("board", "board"), ("model", "model"), ("luts", "LUT/LC"), ("ffs", "FF"),
           ("bram", "BRAM"), ("dsp", "DSP"), ("fmax_mhz", "Fmax MHz"),
           ("clock_mhz", "clock"), ("cycles_per_frame", "cycles"), ("fps_at_fmax", "fps@Fmax"),
           ("fps_uart", "fps UART"), ("build_seconds", "build s")]


def uart_frames_per_s(baud, in_len, out_len):
    """Frames per second through the host link with requests pipelined."""
    return baud / BITS_PER_CHARACTER / max(in_len + FRAMING_BYTES, out_len + FRAMING_BYTES)


def row_from_report(report, model):
    """One benchmark row from a :func:`boards.build.build` report."""
    used = report["utilization"]
    link = report["host_link"]
    cycles = report.get("cycles_per_frame")
    fmax = report.get("fmax_mhz")
    return {
        "board": report["board"], "model": model, "ok": True, "error": None,
        "luts": used.get("luts"), "ffs": used.get("ffs"), "bram": used.get("bram"),
        "dsp": used.get("dsp"), "available": report["available"],
        "clock_mhz": report["clock_mhz"], "fmax_mhz": fmax, "timing_met": report["timing_met"],
        "cycles_per_frame": cycles,
        "fps_at_fmax": round(fmax * 1e6 / cycles, 1) if fmax and cycles else None,
        "fps_at_clock": round(report["clock_mhz"] * 1e6 / cycles, 1) if cycles else None,
        "fps_uart": round(uart_frames_per_s(link["baud"], link["in_len"], link["out_len"]), 1),
        "in_len": link["in_len"], "out_len": link["out_len"], "baud": link["baud"],
        "build_seconds": report["build_seconds"],
    }


def stand_in():
    import numpy as np
    from amaranth.hdl import signed

    from hwgen.kernels.threshold import BinarySearchThreshold
    rng = np.random.default_rng(7)
    thresholds = np.sort(rng.integers(-100, 100, size=(6, 3)), axis=1)
    return BinarySearchThreshold(channels=6, pe=2, input_shape=signed(8),
                                 thresholds=thresholds, vectors=2)


def models(args):
    """``[(name, loader)]``: ``loader(board, target_fps=None)`` makes a fresh component per
    build, with the board's implementation choices (:func:`boards.build.kernel_options`); with
    ``target_fps``, the network refolded for that rate at the board's clock."""
    found = []
    for directory in args.models:
        def load(board, target_fps=None, directory=directory):
            from boards.build import kernel_options
            from boards.targets import get_target
            from graph.compile import load_network
            from graph.elaborate import Accelerator
            from graph.fold import fold
            network = load_network(directory)
            if target_fps is not None:
                for layer in network.layers:
                    if "mem_style" in layer.fold_keys:
                        layer.mem_style = "auto"     # chosen for the old folding
                network = fold(network, target_fps=target_fps,
                               clock_mhz=get_target(board).clock_mhz)
            return Accelerator(network, kernel_options=kernel_options(board))
        found.append((Path(directory).resolve().name, load))
    if args.stand_in:
        found.append(("stand-in-threshold", lambda board, target_fps=None: stand_in()))
    return found


def uart_fps_of(component, board, baud):
    """Frames per second the board's host link carries for ``component``."""
    from boards.hostlink import FrameFormat
    from boards.targets import get_target
    fmt = FrameFormat.from_component(component)
    return uart_frames_per_s(baud or get_target(board).default_baud, fmt.in_len, fmt.out_len)


def run(args):
    from boards.build import BuildError, DoesNotFitError, build
    rows = []
    work = Path(args.work or tempfile.mkdtemp(prefix="hwgen-boards-"))
    for name, load in models(args):
        for board in args.boards:
            progress(f"[boards] {name} on {board} ...")
            start = time.monotonic()
            folding = "compiled"
            try:
                component = load(board)
                try:
                    report = build(component, board, work / f"{name}-{board}", baud=args.baud)
                except DoesNotFitError as error:
                    if not args.fit or name == "stand-in-threshold":
                        raise
                    # the host link caps the rate anyway: fold down to what it carries
                    fps = math.floor(uart_fps_of(component, board, args.baud))
                    progress(f"[boards]   does not fit ({str(error)[:120]}...); refolding for "
                             f"{fps:,} frames/s (the UART rate)")
                    folding = f"refolded for {fps} fps (UART rate)"
                    report = build(load(board, target_fps=fps), board,
                                   work / f"{name}-{board}", baud=args.baud)
                row = row_from_report(report, name)
                row["folding"] = folding
            except (BuildError, ValueError, TypeError, OSError, ImportError) as error:
                row = {"board": board, "model": name, "ok": False, "error": str(error),
                       "folding": folding, "build_seconds": round(time.monotonic() - start, 2)}
                progress(f"[boards]   -> FAILED: {str(error)[:300]}")
            rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="MODEL_DIR",
                        help="directories written by `hwgen compile`")
    parser.add_argument("--stand-in", action="store_true",
                        help="also build a small thresholding kernel as a stand-in model")
    parser.add_argument("--boards", default=",".join(DEFAULT_BOARDS),
                        help="comma-separated boards (default: %(default)s)")
    parser.add_argument("--baud", type=int, default=None,
                        help="host-link rate (default: each board's)")
    parser.add_argument("--work", default=None, help="build directory (default: a temporary one)")
    parser.add_argument("--no-fit", dest="fit", action="store_false",
                        help="report a model that does not fit a board as failed, instead of "
                             "refolding it for the rate its UART host link carries")
    parser.add_argument("--json", metavar="OUT.json", help="write the rows as JSON")
    args = parser.parse_args(argv)
    args.boards = [b.strip() for b in args.boards.split(",") if b.strip()]
    if not args.models and not args.stand_in:
        parser.error("give at least one MODEL_DIR, or --stand-in")
    from boards.targets import TARGETS, get_target
    for board in args.boards:
        if board not in TARGETS or get_target(board).host_link != "uart":
            parser.error(f"--boards: {board} is not an open board with a UART host link")
    warnings.filterwarnings("ignore", message=".*created but never used")
    rows = run(args)
    print(format_table([r for r in rows if r["ok"]], COLUMNS))
    for row in rows:
        if not row["ok"]:
            print(f"{row['model']} on {row['board']}: {row['error']}")
    if args.json:
        write_json(args.json, rows)
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
