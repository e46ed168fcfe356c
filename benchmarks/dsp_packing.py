"""Packed low-precision MACs per DSP48E2, for every weight/activation width pair.

    python benchmarks/dsp_packing.py --json OUT.json [--w 2,...,8] [--a 2,...,8]
                                     [--a-signed both|signed|unsigned] [--pe 8] [--simd 8]
                                     [--no-synth] [--jobs 2]

For every (W, A) in 2..8 with signed full-range weights and signed or unsigned activations,
computes the lane count of :func:`hwgen.arith.packed_mac.max_lanes` (MACs per DSP48E2 per cycle)
next to FINN's rule ``1 + floor((26 - W) / (W + A - 1))`` and HLS's one MAC per DSP, and
synthesizes (Yosys, :func:`boards.synth.synthesize`, xcup, results cached) a
``PackedDotProduct`` block of ``--pe`` lanes x ``--simd`` products per cycle with
``DSP48E2`` instances. Every rows' exactness is the test suite's business
(``tests/hwgen/test_packed_mac.py``); this script measures.

JSON rows: ``w``, ``a``, ``a_signed``, ``lanes`` (= ``macs_per_dsp``), ``finn_lanes``,
``hls_macs_per_dsp`` (1), ``stride``, ``pe``, ``simd``, ``dsp48e2``, ``estimate_dsp48e2``,
``luts``, ``estimate_luts``, ``ffs``, ``carry``, ``luts_per_mac`` (LUTs / (pe * simd)),
``macs_per_dsp_measured`` (pe * simd / dsp48e2), ``latency``, ``ok``, ``error``,
``synth_seconds``, ``cached``.
"""

import argparse
import concurrent.futures
import sys
import warnings

import _common  # noqa: F401  (sets sys.path for a source checkout)
from _common import (add_synth_arguments, format_table, int_list, progress, write_json)

WIDTHS = tuple(range(2, 9))
COLUMNS = [
    ("w", "W"), ("a", "A"), ("a_signed", "A signed"), ("lanes", "MACs/DSP"),
    ("finn_lanes", "FINN"), ("hls_macs_per_dsp", "HLS"), ("dsp48e2", "DSP48E2"),
    ("estimate_dsp48e2", "est DSP"), ("luts", "LUTs"), ("estimate_luts", "est LUTs"),
    ("ffs", "FFs"), ("luts_per_mac", "LUT/MAC"), ("status", "status"),
]


def finn_lanes(w, a):
    """FINN's generalized packing rule for signed full-range weights."""
    return 1 + (26 - w) // (w + a - 1)


def new_row(w, a, a_signed, pe, simd):
    from hwgen.arith.packed_mac import packing
    layout = packing(w, a, weight_signed=True, act_signed=a_signed)
    return {"w": w, "a": a, "a_signed": a_signed, "lanes": layout.lanes,
            "macs_per_dsp": layout.lanes, "finn_lanes": finn_lanes(w, a), "hls_macs_per_dsp": 1,
            "stride": layout.stride, "pe": pe, "simd": simd, "ok": False, "error": None,
            "dsp48e2": None, "estimate_dsp48e2": None, "luts": None, "estimate_luts": None,
            "ffs": None, "carry": None, "luts_per_mac": None, "macs_per_dsp_measured": None,
            "latency": None, "synth_seconds": None, "cached": None}


def measure(row, *, family, cache, timeout):
    """Build the PE x SIMD block of ``row``, synthesize it and fill ``row`` in place."""
    from boards.synth import synthesize
    from hwgen.export.verilog import component_verilog
    from hwgen.arith.packed_mac import PackedDotProduct
    try:
        unit = PackedDotProduct(weight_width=row["w"], act_width=row["a"], simd=row["simd"],
                                lanes=row["pe"], act_signed=row["a_signed"], target="packed",
                                primitives="instance")
        estimate = unit.estimate()
        row["estimate_dsp48e2"] = estimate.dsp
        row["estimate_luts"] = estimate["luts"]
        row["latency"] = unit.latency
        report = synthesize(component_verilog(unit, name="block"), top="block", family=family,
                            cache=cache, timeout=timeout)
    except Exception as error:  # noqa: BLE001 -- a benchmark records failures and goes on
        row["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        return row
    macs = row["pe"] * row["simd"]
    row.update(ok=True, dsp48e2=report["dsp48e2"], luts=report["luts"], ffs=report["ffs"],
               carry=report["carry"], luts_per_mac=round(report["luts"] / macs, 2),
               macs_per_dsp_measured=round(macs / report["dsp48e2"], 2) if report["dsp48e2"] else None,
               synth_seconds=report.get("seconds"), cached=report.get("cached"))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT.json", help="write the rows as JSON")
    parser.add_argument("--w", type=int_list, default=list(WIDTHS), help="weight widths")
    parser.add_argument("--a", type=int_list, default=list(WIDTHS), help="activation widths")
    parser.add_argument("--a-signed", choices=("both", "signed", "unsigned"), default="both")
    parser.add_argument("--pe", type=int, default=8, help="lanes (PE) of the block")
    parser.add_argument("--simd", type=int, default=8, help="products per lane per cycle")
    parser.add_argument("--no-synth", action="store_true", help="lane table only")
    parser.add_argument("--jobs", type=int, default=1, help="Yosys runs in parallel")
    add_synth_arguments(parser, timeout=3600)
    args = parser.parse_args(argv)
    for w in args.w + args.a:
        if w not in WIDTHS:
            parser.error(f"widths must be in 2..8, not {w}")
    signs = {"both": (True, False), "signed": (True,), "unsigned": (False,)}[args.a_signed]
    rows = [new_row(w, a, s, args.pe, args.simd) for s in signs for w in args.w for a in args.a]

    if not args.no_synth:
        warnings.simplefilter("ignore")

        def run(row):
            progress(f"[dsp_packing] W={row['w']} A={row['a']} a_signed={row['a_signed']} ...")
            measure(row, family=args.family, cache=not args.no_cache, timeout=args.timeout)
            progress(f"[dsp_packing] W={row['w']} A={row['a']} a_signed={row['a_signed']} -> "
                     + (f"dsp48e2={row['dsp48e2']} luts={row['luts']}" if row["ok"] else row["error"]))
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            list(pool.map(run, rows))

    for row in rows:
        row["status"] = "ok" if row["ok"] else (row["error"] or "not synthesized")[:40]
    print(f"packed MACs per DSP48E2 (lanes) vs FINN's rule and HLS (1 MAC/DSP); synthesized "
          f"blocks: PE={args.pe} x SIMD={args.simd}, Yosys family={args.family}")
    print(format_table(rows, COLUMNS))
    below = [r for r in rows if r["lanes"] < r["finn_lanes"]]
    better = [r for r in rows if r["lanes"] > r["finn_lanes"]]
    print(f"\nlanes >= FINN's rule: {len(rows) - len(below)} of {len(rows)} rows"
          f" ({len(better)} above it); below: {[(r['w'], r['a'], r['a_signed']) for r in below]}")
    if args.json:
        write_json(args.json, [{k: v for k, v in r.items() if k != "status"} for r in rows])
        progress(f"[dsp_packing] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
