"""``hwgen`` command line.

``hwgen verilog KERNEL [options] -o FILE.v`` writes one kernel's Verilog behind the
AXI4-Stream shell (``ap_clk``, ``ap_rst_n``, ``s_axis_*``, ``m_axis_*``). Its kernels and
their options come from the kernel registry (:data:`hwgen.registry.KERNELS`): one option
per constructor parameter, arrays from ``.npy`` files.

Every error exits with status :data:`ERROR_STATUS` (2, as argparse does for bad options)
and one line on stderr: ``hwgen: error: ...``.

The other commands live with the packages that implement them (``graph.cli``: compile,
verify, report; ``boards.cli``: boards, build, program, run). Each such module defines
``add_commands(subparsers)``, which adds its sub-commands with ``set_defaults(run=func)``;
``func(args)`` returns the exit status. They are found through the entry-point group
:data:`PLUGINS` (``[project.entry-points."hwgen.commands"]`` in ``pyproject.toml``), so
:mod:`hwgen` names neither ``graph`` nor ``boards``: the layers above plug themselves in.
"""

import argparse
import importlib.metadata
import math
import sys

from .export.verilog import kernel_verilog

__all__ = ["main", "print_error", "ERROR_STATUS", "int_at_least", "positive_int",
           "positive_float"]


#: Exit status of every command-line error (argparse's own, for bad options).
ERROR_STATUS = 2


def print_error(message):
    """Print ``hwgen: error: MESSAGE`` (on one line) to stderr; returns :data:`ERROR_STATUS`.
    Every command reports its errors through this."""
    print(f"hwgen: error: {' '.join(str(message).split())}", file=sys.stderr)
    return ERROR_STATUS


def int_at_least(minimum):
    """An argparse ``type``: an integer (``1_000`` allowed) of at least ``minimum``."""
    wording = "at least 1" if minimum == 1 else f"{minimum} or more"

    def parse(text):
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wording}, not {value}")
        return value
    return parse


#: argparse ``type`` of a positive integer option.
positive_int = int_at_least(1)


def positive_float(text):
    """An argparse ``type``: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _ints(minimum):
    """``3`` -> ``3``, ``3,2`` -> ``(3, 2)`` (a per-axis value such as a kernel size), each
    at least ``minimum``."""
    one = int_at_least(minimum)

    def parse(text):
        values = tuple(one(part) for part in text.split(","))
        return values[0] if len(values) == 1 else values
    return parse


def _shape(text):
    """``s8`` -> signed(8), ``u4`` -> unsigned(4)."""
    from amaranth.hdl import signed, unsigned
    kind, digits = text[:1], text[1:]
    if kind not in ("s", "u") or not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"expected a shape such as s8 (signed) or u4 (unsigned), "
                                         f"not {text!r}")
    return (signed if kind == "s" else unsigned)(int(digits))


def _operand(text):
    """``bipolar``, ``s4`` or ``u2``."""
    return "bipolar" if text == "bipolar" else _shape(text)


def _add_option(parser, param):
    """One :class:`~hwgen.registry.Param` as an argparse option."""
    kwargs = dict(help=param.help or None, required=param.required)
    if param.metavar:
        kwargs["metavar"] = param.metavar
    if param.kind == "flag":
        parser.add_argument(param.option, action="store_true", help=param.help or None)
        return
    if param.kind == "choice":
        kwargs["choices"] = param.choices
    else:
        kwargs["type"] = {"int": int_at_least(param.minimum), "signed_int": int,
                          "ints": _ints(param.minimum), "shape": _shape, "operand": _operand,
                          "npy": str}[param.kind]
    if not param.required:
        kwargs["default"] = param.default
    parser.add_argument(param.option, **kwargs)


def _load_npy(option, path):
    import numpy as np
    try:
        return np.load(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{option} {path}: cannot read a .npy array ({error})") from None


def _kernel_params(entry, args):
    """The constructor keywords of ``entry`` from parsed options (arrays loaded)."""
    values = {}
    for param in entry.params:
        value = getattr(args, param.name)
        if param.kind == "npy" and value is not None:
            value = _load_npy(param.option, value)
        values[param.name] = value
    return entry.build_params(values)


def _add_verilog(commands):
    from .registry import KERNELS
    verilog = commands.add_parser("verilog", help="write one kernel's Verilog (AXI4-Stream ports)")
    kernels = verilog.add_subparsers(dest="kernel", required=True, metavar="KERNEL")
    for entry in KERNELS.values():
        sub = kernels.add_parser(entry.name, help=entry.summary, description=entry.description)
        for param in entry.params:
            _add_option(sub, param)
        sub.add_argument("-o", "--output", required=True, help="Verilog file to write ('-': stdout)")
        sub.add_argument("--name", default=None, help="top module name (default: hwgen_KERNEL)")
        sub.set_defaults(run=_verilog, entry=entry)


def _verilog(args):
    entry = args.entry
    try:
        kernel = entry.plan(**_kernel_params(entry, args)).build()   # checked before built
    except (TypeError, ValueError) as error:
        return print_error(error)
    name = args.name or f"hwgen_{entry.name}"
    text = kernel_verilog(kernel, name=name)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as file:
            file.write(text)
        print(f"wrote {args.output}: module {name} ({type(kernel).__name__}), latency "
              f"{kernel.latency} cycles, {len(text.splitlines())} lines", file=sys.stderr)
    return 0


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
    _add_verilog(commands)
    for add_commands in _plugin_commands():
        add_commands(commands)
    return parser


def main(argv=None):
    """Run ``hwgen`` with ``argv``; returns the exit status (0, or :data:`ERROR_STATUS`)."""
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
