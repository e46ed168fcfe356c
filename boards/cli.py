"""``hwgen boards|build|program|run``: the board commands of the ``hwgen`` command line.

``OUT`` is a directory written by ``hwgen compile``; the accelerator in it is loaded with
``graph.load_accelerator(OUT)``. Board files go to ``OUT/board-NAME``.
"""

import json
import sys
from pathlib import Path

from hwgen.cli import positive_float, positive_int, print_error

__all__ = ["add_commands"]


def _error(message):
    return print_error(message)


def _load(out, target=None):
    """The accelerator component compiled into ``out`` (imported lazily: graph is optional
    for the other commands), with ``target``'s implementation choices
    (:func:`boards.build.kernel_options`)."""
    try:
        from graph import load_accelerator
    except ImportError:
        raise ImportError("cannot load a compiled accelerator: graph.load_accelerator is not "
                          "available in this installation") from None
    from .build import kernel_options
    return load_accelerator(out, kernel_options=None if target is None else kernel_options(target))


def _board_help():
    from .targets import TARGETS
    return f"target board: {', '.join(TARGETS)}"


# --- hwgen boards ----------------------------------------------------------------------------

def _boards(args):
    from .targets import TARGETS, get_target
    rows = []
    for name in TARGETS:
        t = get_target(name)
        link = (f"UART ({t.uart_bridge}, <= {t.max_baud:,} baud)" if t.host_link == "uart"
                else "AXI4-Stream (own DMA)")
        rows.append((name, t.device, f"{t.clock_mhz:g} MHz", t.resources_text,
                     "yowasp Yosys/nextpnr" if t.toolchain == "yowasp" else "Vivado", link))
    if args.json:
        keys = ("board", "device", "clock", "resources", "toolchain", "host_link")
        print(json.dumps([dict(zip(keys, row)) for row in rows], indent=1))
        return 0
    header = ("board", "device", "clock", "resources", "toolchain", "host link")
    widths = [max(len(str(row[k])) for row in [header, *rows]) for k in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


# --- hwgen build -----------------------------------------------------------------------------

def _build(args):
    from .build import BuildError, DoesNotFitError, build
    from .program import board_dir
    from .targets import get_target
    try:
        target = get_target(args.board)
        component = _load(args.out, target)
        out = board_dir(args.out, target)
        report = build(component, target, out, clock_mhz=args.clock_mhz, baud=args.baud,
                       window=args.window, log=lambda message: print(message, file=sys.stderr))
    except DoesNotFitError as error:
        return _error(f"{error}{_refold_hint(component, target, args)}")
    except (ValueError, TypeError, OSError, BuildError, ImportError) as error:
        return _error(error)
    _print_report(report, target, out)
    return 0


def _refold_hint(component, target, args):
    """A ``hwgen compile`` command folding the network for the rate the host link carries
    (which caps the board's throughput anyway)."""
    try:
        from .hostlink import FrameFormat
        fmt = FrameFormat.from_component(component)
        baud = args.baud or target.default_baud
        fps = int(baud / 10 / (max(fmt.in_len, fmt.out_len) + 8))
    except (TypeError, ValueError, AttributeError):
        return ""
    return (f". The UART host link carries at most {fps:,} frames/s at {baud:,} baud, so fold "
            f"for that: hwgen compile MODEL.onnx -o {args.out} --target-fps {fps} "
            f"--clock-mhz {target.clock_mhz:g}")


def _print_report(report, target, out):
    used, available = report["utilization"], report["available"]
    names = {"luts": target.lut_name, "ffs": "FFs", "bram": "BRAM", "dsp": "DSP"}
    parts = []
    for key, name in names.items():
        if key in used:
            total = available.get(key)
            share = f" ({used[key] / total:.0%})" if total else ""
            parts.append(f"{used[key]:,} / {total:,} {name}{share}" if total else
                         f"{used[key]:,} {name}")
    if parts:
        print(f"{report['board']} ({report['device']}): " + ", ".join(parts))
    if report.get("fmax_mhz") is not None:
        verdict = "met" if report["timing_met"] else "NOT met"
        print(f"Fmax {report['fmax_mhz']:.2f} MHz at a {report['clock_mhz']:g} MHz clock: "
              f"timing {verdict}")
    if report.get("bitstream"):
        print(f"bitstream {out / report['bitstream']} ({report['build_seconds']:.1f} s)")
    if report.get("vivado_command") and not report.get("vivado_ran"):
        print(f"Vivado is not on PATH: wrote {', '.join(report['files'])} to {out}; run "
              f"`{report['vivado_command']}`")
    print(f"report {out / 'report.json'}")


# --- hwgen program ---------------------------------------------------------------------------

def _program(args):
    import shlex

    from .program import ProgramError, program
    try:
        command = program(args.out, args.board, dry_run=args.dry_run,
                          log=lambda message: print(message, file=sys.stderr))
    except (ProgramError, ValueError, TypeError, OSError) as error:
        return _error(error)
    if args.dry_run:
        print(shlex.join(command))
    else:
        print(f"programmed {args.board}")
    return 0


# --- hwgen run -------------------------------------------------------------------------------

def _run(args):
    import numpy as np

    from .host import HostLink, LinkError, pack_frame, unpack_frame
    from .hostlink import FrameFormat
    from .program import board_dir
    from .targets import get_target
    try:
        target = get_target(args.board)
        if target.host_link != "uart":
            raise ValueError(f"{target.name} has no UART host link (its AXI4-Stream top is "
                             f"driven by your own DMA)")
        component = _load(args.out, target)
        fmt = FrameFormat.from_component(component)
        inputs = _load_array(args.inputs, "--inputs")
        expected = None if args.expected is None else _load_array(args.expected, "--expected")
        inputs = inputs.reshape(len(inputs), -1)
        if expected is not None and len(expected) != len(inputs):
            raise ValueError(f"--expected has {len(expected)} frames, --inputs {len(inputs)}")
        baud = args.baud or _built_baud(board_dir(args.out, target)) or target.default_baud
        frames = [pack_frame(x, fmt) for x in inputs]
        import serial
        try:
            port = serial.Serial(args.port, baud, timeout=args.timeout)
        except serial.SerialException as error:
            raise OSError(f"cannot open {args.port}: {error}") from None
        with port:
            link = HostLink(port, fmt, reply_timeout=args.timeout)
            link.check_info()
            outputs = link.run(frames)
    except (ValueError, TypeError, OSError, ImportError, LinkError) as error:
        return _error(error)
    got = np.array([unpack_frame(o, fmt) for o in outputs])
    stats = link.stats
    print(f"{stats.frames} frames in {stats.seconds:.2f} s: {stats.frames_per_s:,.1f} frames/s "
          f"at {baud:,} baud; link errors recovered: {stats.error_count}"
          + (f" ({', '.join(f'{k} {v}' for k, v in stats.errors.items())})"
             if stats.errors else ""))
    if args.output:
        np.save(args.output, got)
    if expected is None:
        return 0
    want = expected.reshape(len(expected), -1)
    if want.shape[1] != got.shape[1]:
        return _error(f"--expected has {want.shape[1]} values per frame, the accelerator "
                      f"returns {got.shape[1]}")
    wrong = np.flatnonzero((want != got).any(axis=1))
    if len(wrong):
        return _error(f"{len(wrong)} of {len(got)} frames differ from --expected (first: frame "
                      f"{wrong[0]}, got {got[wrong[0]].tolist()}, expected "
                      f"{want[wrong[0]].tolist()})")
    print(f"all {len(got)} outputs match --expected")
    return 0


def _built_baud(directory):
    report = Path(directory) / "report.json"
    if report.is_file():
        return json.loads(report.read_text()).get("host_link", {}).get("baud")
    return None


def _load_array(path, option):
    import numpy as np
    try:
        array = np.load(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{option} {path}: cannot read a .npy array ({error})") from None
    if array.dtype.kind not in "iub":
        raise ValueError(f"{option} {path}: expected integers, not dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{option} {path}: expected one row per frame, not a scalar")
    return array


# --- registration ----------------------------------------------------------------------------

def _explore(args):
    from .explore import main_explore
    return main_explore(args)


def add_commands(subparsers):
    """Add ``boards``, ``build``, ``program``, ``run`` and ``explore`` to the ``hwgen``
    command line."""
    from .explore import TARGETS as EXPLORE_TARGETS
    p = subparsers.add_parser(
        "explore", help="design-space exploration: frames/s against measured resources",
        description="Enumerate the legal foldings of MODEL across a throughput range, keep "
                    "those the estimates put on or near the Pareto front, and compile and "
                    "measure each (Yosys for xcup; Yosys and nextpnr, with Fmax, for the open "
                    "boards) on a Dask cluster: a local one, or --scheduler. Results are "
                    "cached in DIR/cache by the candidate's hash, so a rerun computes only "
                    "what is missing. Writes DIR/explore.json, pareto.png, explore.html and a "
                    "folding JSON per Pareto point (for hwgen compile --folding). Needs the "
                    "explore extra: pip install 'hwgen[explore]'.")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("-o", "--out", required=True, metavar="DIR")
    p.add_argument("--fps", default=None, metavar="MIN:MAX",
                   help="throughput range in frames/s (default: 1/100 to 4x the default "
                        "folding's)")
    p.add_argument("--points", type=positive_int, default=8, metavar="N",
                   help="rates tried across the range (default 8)")
    p.add_argument("--targets", default="xcup", metavar="T,T",
                   help=f"comma-separated, of {', '.join(EXPLORE_TARGETS)} (default xcup)")
    p.add_argument("--clock-mhz", type=positive_float, default=100.0, metavar="F")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                   help="a running dask-scheduler (default: a local cluster)")
    p.add_argument("--workers", type=positive_int, default=2, metavar="K",
                   help="local cluster workers (default 2)")
    p.set_defaults(run=_explore)

    p = subparsers.add_parser(
        "boards", help="list the target boards",
        description="List the boards hwgen builds for: device, clock, resources, toolchain and "
                    "host link.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=_boards)

    p = subparsers.add_parser(
        "build", help="build a compiled accelerator for a board",
        description="Build the accelerator in OUT (written by `hwgen compile`) for a board, into "
                    "OUT/board-NAME. iCE40/ECP5 boards: a bitstream with the UART host link, "
                    "built with the yowasp Yosys/nextpnr tools from PyPI; prints and writes "
                    "(report.json) utilization and Fmax against the clock. Xilinx boards: an "
                    "AXI4-Stream top plus Vivado scripts (Vivado runs if it is on PATH).")
    p.add_argument("out", metavar="OUT", help="directory written by `hwgen compile`")
    p.add_argument("--board", required=True, metavar="NAME", help=_board_help())
    p.add_argument("--clock-mhz", type=positive_float, default=None, metavar="F",
                   help="clock in MHz to report Fmax against (open boards: must be the board's "
                        "oscillator, the default; Xilinx: the ap_clk constraint)")
    p.add_argument("--baud", type=positive_int, default=None, metavar="N",
                   help="UART rate of the host link (default: the board's, e.g. 1,000,000)")
    p.add_argument("--window", type=positive_int, default=2, metavar="K",
                   help="frames the host link holds at once (default 2)")
    p.set_defaults(run=_build)

    p = subparsers.add_parser(
        "program", help="program a board with a built bitstream",
        description="Program the board with OUT/board-NAME's bitstream using the platform's "
                    "programmer (iceprog, openFPGALoader, openocd, xsdb).")
    p.add_argument("out", metavar="OUT", help="directory given to `hwgen build`")
    p.add_argument("--board", required=True, metavar="NAME", help=_board_help())
    p.add_argument("--dry-run", action="store_true",
                   help="print the programmer command instead of running it")
    p.set_defaults(run=_program)

    p = subparsers.add_parser(
        "run", help="stream frames through a programmed board",
        description="Send every input frame over the UART host link, check the outputs against "
                    "--expected, print frames per second and link errors.")
    p.add_argument("out", metavar="OUT", help="directory written by `hwgen compile`")
    p.add_argument("--board", required=True, metavar="NAME", help=_board_help())
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1 or COM3")
    p.add_argument("--inputs", required=True, metavar="X.npy",
                   help="integer inputs, one frame per row (each row flattened)")
    p.add_argument("--expected", metavar="Y.npy", default=None,
                   help="expected outputs, one frame per row (e.g. labels); mismatches fail")
    p.add_argument("--baud", type=positive_int, default=None, metavar="N",
                   help="UART rate (default: the one the bitstream was built for)")
    p.add_argument("--timeout", type=positive_float, default=1.0, metavar="S",
                   help="seconds to wait for a reply (default 1)")
    p.add_argument("--output", metavar="Z.npy", default=None, help="save the outputs here")
    p.set_defaults(run=_run)
