"""Popcount / compressor-tree resources: tree vs tree with Xilinx primitives vs naive sum().

    python benchmarks/compressor.py --json OUT.json [--n 64,256,1024,4096] [--family xcup]

For every n, synthesizes three implementations of an n-bit popcount with Yosys
(:func:`boards.synth.synthesize`, results cached on disk) and prints a table:

* ``tree``: ``hwgen.kernels.popcount.Popcount(n=n, pipeline_every=0, target="generic")``
* ``tree-xilinx``: the same with ``target="xilinx", primitives="instance"`` (LUT6_2/CARRY8
  instances; Xilinx families only)
* ``naive``: an Amaranth component doing ``sum()`` over the bits (:class:`NaivePopcount`); it hits
  Python's recursion limit in Amaranth near n=1024, which is recorded as a failed row.

The JSON is a list of rows: ``n``, ``impl``, ``family``, ``ok``, ``error``, ``luts``, ``carry``,
``carry_bits``, ``ffs``, ``muxf``, ``lut_sites``, ``lut6_2`` and ``carry8`` (instantiated
primitives found in the netlist), ``luts_per_bit``, ``stages`` (compression
stages; None for naive), ``latency``, ``convert_seconds`` (Amaranth -> Verilog),
``synth_seconds`` (Yosys wall time when it actually ran; kept in the cache) and ``cached``.
"""

import argparse
import sys
import time
import warnings

import _common  # noqa: F401  (sets sys.path for a source checkout)
from _common import (add_synth_arguments, check_synth_arguments, format_table, int_list, progress,
                     write_json)

from amaranth.hdl import Module, UnusedElaboratable, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

IMPLS = ("tree", "tree-xilinx", "naive")
DEFAULT_N = (64, 256, 1024, 4096)


class NaivePopcount(wiring.Component):
    """Popcount as Python's ``sum()`` over the input bits: the baseline a compressor tree beats.

    Ports as :class:`hwgen.kernels.popcount.Popcount`: ``i: In(n)``, ``o: Out(unsigned(n.bit_length()))``.
    Purely combinational. Elaboration recurses once per bit (``((i[0] + i[1]) + i[2]) + ...``), so
    Amaranth raises ``RecursionError`` near n=1024.
    """

    def __init__(self, *, n):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n={n!r} must be a positive integer")
        self.n = n
        super().__init__({"i": In(n), "o": Out(unsigned(n.bit_length()))})

    @property
    def stages(self):
        return None

    @property
    def latency(self):
        return 0

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(sum(self.i[k] for k in range(self.n)))
        return m


def make_component(impl, n):
    if impl == "naive":
        return NaivePopcount(n=n)
    from hwgen.arith.popcount import Popcount
    pipeline_every = 0
    if impl == "tree-xilinx":
        return Popcount(n=n, pipeline_every=pipeline_every, target="xilinx", primitives="instance")
    return Popcount(n=n, pipeline_every=pipeline_every, target="generic")


def make_plan(impl, n):
    """The compressor tree's plan of a ``tree-*`` configuration (its estimate, no hardware)."""
    from hwgen.arith.popcount import TreePlan, popcount_heap
    target = "xilinx" if impl == "tree-xilinx" else "generic"
    return TreePlan(popcount_heap(n)[1].heights(), pipeline_every=0, target=target)


def _error_text(exc):
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 2000 else text[:2000] + " ..."


def measure(impl, n, family, *, cache=True, timeout=None):
    """One row of the table for implementation ``impl`` at width ``n``."""
    from boards.synth import FAMILIES, synthesize
    from hwgen.export.verilog import component_verilog

    row = {"n": n, "impl": impl, "family": family, "ok": False, "error": None,
           "luts": None, "carry": None, "carry_bits": None, "ffs": None, "muxf": None,
           "lut_sites": None, "lut6_2": None, "carry8": None, "luts_per_bit": None, "stages": None, "latency": None,
           "convert_seconds": None, "synth_seconds": None, "cached": None}
    if impl == "tree-xilinx" and FAMILIES.get(family) != "xilinx":
        row["error"] = f"skipped: target='xilinx' instantiates LUT6_2/CARRY8, not in family {family}"
        return row
    try:
        start = time.monotonic()
        component = make_component(impl, n)
        row["stages"] = component.stages
        row["latency"] = component.latency
        verilog = component_verilog(component, name="popcount")
        row["convert_seconds"] = round(time.monotonic() - start, 2)
    except RecursionError as e:
        row["error"] = f"Amaranth elaboration/conversion: {_error_text(e)}"
        return row
    except ImportError as e:
        row["error"] = f"tree generator not available: {_error_text(e)}"
        return row
    except Exception as e:  # noqa: BLE001 -- a benchmark records failures instead of stopping
        row["error"] = f"conversion: {_error_text(e)}"
        return row
    try:
        report = synthesize(verilog, top="popcount", family=family, cache=cache, timeout=timeout)
    except Exception as e:  # noqa: BLE001
        row["error"] = f"synthesis: {_error_text(e)}"
        return row
    row.update(ok=True, luts=report["luts"], carry=report["carry"],
               carry_bits=report["carry_bits"], ffs=report["ffs"], muxf=report["muxf"],
               lut_sites=report["lut_sites"], lut6_2=report["cells"].get("LUT6_2", 0),
               carry8=report["cells"].get("CARRY8", 0), luts_per_bit=round(report["luts"] / n, 3),
               synth_seconds=report["seconds"], cached=report["cached"])
    return row


COLUMNS = [
    ("n", "n"), ("impl", "impl"), ("luts", "LUTs"), ("luts_per_bit", "LUT/bit"),
    ("carry", "carry"), ("carry_bits", "carry bits"), ("lut6_2", "LUT6_2"), ("carry8", "CARRY8"),
    ("ffs", "FFs"), ("stages", "stages"),
    ("convert_seconds", "convert s"), ("synth_seconds", "synth s"), ("status", "status"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT.json", help="write the rows as JSON")
    parser.add_argument("--n", type=int_list, default=list(DEFAULT_N),
                        help="comma-separated widths (default: %(default)s)")
    parser.add_argument("--impl", default=",".join(IMPLS),
                        help="comma-separated implementations (default: %(default)s)")
    add_synth_arguments(parser)
    args = parser.parse_args(argv)
    impls = check_synth_arguments(parser, args, IMPLS)

    # A naive popcount that dies of RecursionError leaves its half-built Module behind; the
    # failure is recorded in its row, Amaranth's "created but never used" warning is noise.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)

    rows = []
    for n in args.n:
        for impl in impls:
            progress(f"[compressor] n={n} impl={impl} family={args.family} ...")
            t0 = time.monotonic()
            row = measure(impl, n, args.family, cache=not args.no_cache, timeout=args.timeout)
            where = "cached" if row["cached"] else f"{time.monotonic() - t0:.1f} s"
            progress(f"[compressor]   -> {'ok' if row['ok'] else 'FAILED'} ({where})"
                     + ("" if row["ok"] else f": {row['error'].splitlines()[0][:200]}"))
            rows.append(row)

    table_rows = [dict(r, status="ok" if r["ok"] else (r["error"] or "").splitlines()[0][:60])
                  for r in rows]
    print(f"popcount resources, Yosys synth family={args.family}")
    print(format_table(table_rows, COLUMNS))
    if args.json:
        write_json(args.json, rows)
        progress(f"[compressor] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
