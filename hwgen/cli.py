"""``hwgen`` command line.

``hwgen verilog KERNEL [options] -o FILE.v`` writes one kernel's Verilog behind the
AXI4-Stream shell (``ap_clk``, ``ap_rst_n``, ``s_axis_*``, ``m_axis_*``).

The other commands live with the packages that implement them (``graph.cli``: compile,
verify, report; ``boards.cli``: boards, build, program, run). Each such module defines
``add_commands(subparsers)``, which adds its sub-commands with ``set_defaults(run=func)``;
``func(args)`` returns the exit status. They are found through the entry-point group
:data:`PLUGINS` (``[project.entry-points."hwgen.commands"]`` in ``pyproject.toml``), so
:mod:`hwgen` names neither ``graph`` nor ``boards``: the layers above plug themselves in.
"""

import argparse
import importlib.metadata
import sys

from .export.verilog import kernel_verilog

__all__ = ["main"]


def _int_at_least(minimum, wording):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wording}, not {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "at least 1")
_non_negative_int = _int_at_least(0, "0 or more")


def _add_popcount(commands):
    parser = commands.add_parser(
        "popcount", help="compressor-tree population count",
        description="Population count of N bits per beat (one N-lane 1-bit input beat, one "
                    "count per output beat).")
    parser.add_argument("--n", type=_positive_int, required=True, help="input bits per beat")
    parser.add_argument("--pipeline-every", type=_non_negative_int, default=0, metavar="K",
                        help="a register stage after every K logic stages (0: combinational)")
    parser.add_argument("--target", choices=("generic", "xilinx"), default="generic",
                        help="generic logic, or Xilinx UltraScale+ LUT6_2/CARRY8 instances")

    def build(args):
        from .kernels.popcount import PopcountStream
        primitives = "instance" if args.target == "xilinx" else "auto"
        return PopcountStream(args.n, pipeline_every=args.pipeline_every, target=args.target,
                              primitives=primitives)
    parser.set_defaults(build=build)
    return parser


def _shape(text):
    """``s8`` -> signed(8), ``u4`` -> unsigned(4)."""
    from amaranth.hdl import signed, unsigned
    kind, digits = text[:1], text[1:]
    if kind not in ("s", "u") or not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"expected a shape such as s8 (signed) or u4 (unsigned), "
                                         f"not {text!r}")
    return (signed if kind == "s" else unsigned)(int(digits))


def _add_threshold(commands):
    parser = commands.add_parser(
        "threshold", help="multi-threshold activation (binary search or unrolled)",
        description="y = bias + #{i : T[c][i] <= x}, PE channels per beat; thresholds from a "
                    ".npy file of shape (C, T) or (1, T).")
    parser.add_argument("--channels", type=_positive_int, required=True, help="channels C")
    parser.add_argument("--pe", type=_positive_int, default=1, help="channels per beat")
    parser.add_argument("--input-shape", type=_shape, required=True, metavar="SHAPE",
                        help="input element shape: s<bits> or u<bits>, e.g. s16")
    parser.add_argument("--thresholds", required=True, metavar="T.npy",
                        help="integer thresholds, shape (C, T) or (1, T)")
    parser.add_argument("--bias", type=int, default=0, help="added to the count")
    parser.add_argument("--impl", choices=("auto", "binary", "unrolled"), default="auto")
    parser.add_argument("--mem-style", choices=("auto", "registers", "lutram", "bram"),
                        default="auto")
    parser.add_argument("--runtime-writable", action="store_true",
                        help="add the threshold configuration port (cfg_*)")

    def build(args):
        import numpy as np

        from .kernels.threshold import Threshold
        try:
            thresholds = np.load(args.thresholds)
        except (OSError, ValueError) as error:
            raise ValueError(f"--thresholds {args.thresholds}: cannot read a .npy array ({error})")
        return Threshold(impl=args.impl, channels=args.channels, pe=args.pe,
                         input_shape=args.input_shape, thresholds=thresholds, bias=args.bias,
                         mem_style=args.mem_style, runtime_writable=args.runtime_writable)
    parser.set_defaults(build=build)
    return parser


def _operand(text):
    """``bipolar``, ``s4`` or ``u2``."""
    return "bipolar" if text == "bipolar" else _shape(text)


def _load_npy(option, path):
    import numpy as np
    try:
        return np.load(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{option} {path}: cannot read a .npy array ({error})") from None


def _add_mvau(commands):
    parser = commands.add_parser(
        "mvau", help="matrix-vector-activation unit (PE/SIMD folded)",
        description="y = act(W @ x) for an MH x MW weight matrix from a .npy file; SIMD inputs "
                    "per input beat, PE outputs per output beat; optional fused thresholds.")
    parser.add_argument("--weights", required=True, metavar="W.npy",
                        help="integer weights, shape (MH, MW); -1/+1 for bipolar weights")
    parser.add_argument("--pe", type=_positive_int, default=1, help="outputs per cycle (divides MH)")
    parser.add_argument("--simd", type=_positive_int, default=1, help="inputs per cycle (divides MW)")
    parser.add_argument("--input-shape", type=_operand, required=True, metavar="SHAPE",
                        help="input elements: bipolar, s<bits> or u<bits> (1 to 8 bits)")
    parser.add_argument("--weight-shape", type=_operand, required=True, metavar="SHAPE",
                        help="weights: bipolar, s<bits> or u<bits> (1 to 8 bits)")
    parser.add_argument("--thresholds", metavar="T.npy", default=None,
                        help="fused activation thresholds, shape (MH, T) or (1, T) (default: "
                             "raw accumulators out)")
    parser.add_argument("--bias", type=int, default=0, help="added to the threshold count")
    parser.add_argument("--vectors", type=_positive_int, default=1, help="vectors per frame")
    parser.add_argument("--datapath", default="auto",
                        choices=("auto", "xnor", "binary-weights", "lut", "dsp"))
    parser.add_argument("--mem-style", default="auto", choices=("auto", "lutram", "bram"),
                        help="weight memory")
    parser.add_argument("--target", choices=("generic", "xilinx"), default="generic",
                        help="generic logic, or Xilinx UltraScale+ primitives (DSP48E2, "
                             "LUT6_2/CARRY8, LUT6)")

    def build(args):
        from .kernels.mvau import MVAU
        weights = _load_npy("--weights", args.weights)
        if weights.ndim != 2:
            raise ValueError(f"--weights {args.weights}: expected a 2-D (MH, MW) array, not "
                             f"shape {weights.shape}")
        thresholds = None if args.thresholds is None else _load_npy("--thresholds", args.thresholds)
        primitives = "instance" if args.target == "xilinx" else "auto"
        return MVAU(mw=weights.shape[1], mh=weights.shape[0], pe=args.pe, simd=args.simd,
                    weights=weights, input_shape=args.input_shape,
                    weight_shape=args.weight_shape, thresholds=thresholds, bias=args.bias,
                    vectors=args.vectors, datapath=args.datapath, mem_style=args.mem_style,
                    target=args.target, primitives=primitives)
    parser.set_defaults(build=build)
    return parser


def _add_fifo(commands):
    parser = commands.add_parser("fifo", help="stream FIFO",
                                 description="A FIFO of DEPTH beats of LANES elements.")
    parser.add_argument("--elem-shape", type=_shape, required=True, metavar="SHAPE",
                        help="element shape: s<bits> or u<bits>")
    parser.add_argument("--lanes", type=_positive_int, default=1, help="elements per beat")
    parser.add_argument("--depth", type=_positive_int, required=True, help="beats (3 or more "
                        "for one beat per cycle)")
    parser.add_argument("--mem-style", choices=("auto", "registers", "lutram", "bram"),
                        default="auto")

    def build(args):
        from .plumbing.fifo import StreamFIFO
        return StreamFIFO(elem_shape=args.elem_shape, lanes=args.lanes, depth=args.depth,
                          mem_style=args.mem_style)
    parser.set_defaults(build=build)
    return parser


def _add_width(commands):
    parser = commands.add_parser(
        "width", help="stream width converter",
        description="Repacks IN lanes per beat into OUT lanes per beat, element order kept; "
                    "FRAME elements per frame (a multiple of both).")
    parser.add_argument("--elem-shape", type=_shape, required=True, metavar="SHAPE",
                        help="element shape: s<bits> or u<bits>")
    parser.add_argument("--in-lanes", type=_positive_int, required=True)
    parser.add_argument("--out-lanes", type=_positive_int, required=True)
    parser.add_argument("--elems-per-frame", type=_positive_int, required=True)

    def build(args):
        from .plumbing.width import WidthConverter
        return WidthConverter(elem_shape=args.elem_shape, in_lanes=args.in_lanes,
                              out_lanes=args.out_lanes, elems_per_frame=args.elems_per_frame)
    parser.set_defaults(build=build)
    return parser


def _add_labelselect(commands):
    parser = commands.add_parser(
        "labelselect", help="top-k label select",
        description="Indices of the K largest of CHANNELS values per vector, largest first, "
                    "ties to the lower index.")
    parser.add_argument("--channels", type=_positive_int, required=True)
    parser.add_argument("--pe", type=_positive_int, default=1, help="values per beat")
    parser.add_argument("--input-shape", type=_shape, required=True, metavar="SHAPE",
                        help="value shape: s<bits> or u<bits>")
    parser.add_argument("--k", type=_positive_int, default=1)

    def build(args):
        from .kernels.labelselect import LabelSelect
        return LabelSelect(channels=args.channels, pe=args.pe, input_shape=args.input_shape,
                           k=args.k)
    parser.set_defaults(build=build)
    return parser


KERNELS = {"popcount": _add_popcount, "threshold": _add_threshold, "mvau": _add_mvau,
           "fifo": _add_fifo, "width": _add_width, "labelselect": _add_labelselect}

#: Entry-point group of the ``add_commands`` functions (see the module documentation).
PLUGINS = "hwgen.commands"


def _plugin_commands():
    """The ``add_commands`` functions registered under :data:`PLUGINS`, in registration order."""
    functions = []
    for entry_point in importlib.metadata.entry_points(group=PLUGINS):
        try:
            functions.append(entry_point.load())
        except ModuleNotFoundError as error:
            # a registered package that is gone skips its commands; one that fails to import
            # for another reason is a bug
            if not f"{entry_point.module}.".startswith(f"{error.name}."):
                raise
    return functions


def _parser():
    parser = argparse.ArgumentParser(prog="hwgen", description="FPGA hardware generators for "
                                     "quantized neural networks.")
    commands = parser.add_subparsers(dest="command", required=True)
    verilog = commands.add_parser("verilog", help="write one kernel's Verilog (AXI4-Stream ports)")
    kernels = verilog.add_subparsers(dest="kernel", required=True, metavar="KERNEL")
    for add in KERNELS.values():
        sub = add(kernels)
        sub.add_argument("-o", "--output", required=True, help="Verilog file to write ('-': stdout)")
        sub.add_argument("--name", default=None, help="top module name (default: hwgen_KERNEL)")
    for add_commands in _plugin_commands():
        add_commands(commands)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command != "verilog":
        return args.run(args)
    if args.command == "verilog":
        try:
            kernel = args.build(args)
        except (TypeError, ValueError) as error:
            print(f"hwgen: error: {error}", file=sys.stderr)
            return 2
        name = args.name or f"hwgen_{args.kernel}"
        text = kernel_verilog(kernel, name=name)
        if args.output == "-":
            sys.stdout.write(text)
        else:
            with open(args.output, "w") as file:
                file.write(text)
            print(f"wrote {args.output}: module {name} ({type(kernel).__name__}), latency "
                  f"{kernel.latency} cycles, {len(text.splitlines())} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
