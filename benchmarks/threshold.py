"""Thresholding-unit resources: binary search vs unrolled comparators vs the auto factory.

    python benchmarks/threshold.py --json OUT.json [--k 1,2,4,6,8] [--pe 1,4]
                                   [--impl binary,unrolled,auto] [--channels 64] [--width 16]

For every output width ``K`` and every ``PE``, builds the thresholding unit for ``--width``-bit
signed inputs and ``--channels`` channels with ``T = 2**K - 1`` thresholds per channel (random
sorted integers over the input range, from a fixed seed: the same thresholds for every impl
and PE at a given K), converts the bare component with
``hwgen.export.verilog.component_verilog(unit, name="thr")`` (no AXI shell) and synthesizes it with
Yosys (:func:`boards.synth.synthesize`, results cached on disk). Read-only tables in LUTs
become logic LUTs (a distributed ROM), not LUT RAM sites. Units:

* ``binary``: :class:`hwgen.kernels.threshold.BinarySearchThreshold`
* ``unrolled``: :class:`hwgen.kernels.threshold.UnrolledThreshold`
* ``auto``: ``hwgen.kernels.threshold.Threshold(impl="auto")``; ``chosen`` says which class it built
  (its Verilog is the same as that class's row, so it comes from the synthesis cache).

The units are synthesized smallest first (by their analytic LUT estimate), so the big
unrolled ones come last. A row that fails (conversion error, Yosys error, timeout) is
recorded with its error instead of stopping the run.

The JSON is a list of rows: ``impl``, ``chosen`` (auto only), ``k``, ``t``, ``pe``, ``c``,
``width``, ``family``, ``ok``, ``error``, ``luts``, ``ffs``, ``carry``, ``carry_bits``,
``muxf``, ``lut_sizes``, ``bram18`` (RAMB36 counted as 2), ``lutram`` (LUT sites used as
distributed RAM), ``srl``, ``lut_sites``, ``cost`` (``luts + lutram + 64 * bram18``, the
measure used in the summary), ``latency``, ``mem_styles`` (per binary-search stage, or the
single unrolled memory),
``estimate_luts`` / ``estimate_ffs`` / ``estimate_carry`` / ``estimate_bram18`` /
``estimate_lutram`` (from ``unit.estimate()``), ``estimate_cost`` (``estimate_luts +
estimate_lutram + 64 * estimate_bram18``, what the auto factory compares),
``convert_seconds``, ``synth_seconds`` (Yosys wall time when it actually ran; kept in the
cache) and ``cached``.

The summary printed at the end gives, for each PE, ``unrolled_luts / binary_luts`` at the
largest K (target >= 10x at K = 8), and for K <= 2 whether auto's ``cost`` is no worse than
``min(binary, unrolled)`` (target: never worse).
"""

import argparse
import concurrent.futures
import sys
import time
import warnings

import _common  # noqa: F401  (sets sys.path for a source checkout)
from _common import (add_synth_arguments, check_synth_arguments, format_table, int_list, progress,
                     write_json)

import numpy as np
from amaranth.hdl import UnusedElaboratable, signed

IMPLS = ("binary", "unrolled", "auto")
DEFAULT_K = (1, 2, 4, 6, 8)
DEFAULT_PE = (1, 4)
SEED = 20240611
#: Block RAM (18 Kbit) in LUT-equivalents, as in ``hwgen.kernels.threshold.Threshold(impl="auto")``.
BRAM18_LUTS = 64


def make_thresholds(k, channels, width, seed=SEED):
    """``(channels, 2**k - 1)`` random sorted thresholds over the signed ``width``-bit range;
    depends only on ``(seed, k, channels, width)``."""
    rng = np.random.default_rng([seed, k, channels, width])
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    values = rng.integers(lo, hi, size=(channels, (1 << k) - 1), endpoint=True)
    return np.sort(values, axis=1)


def make_plan(impl, k, pe, channels, width):
    """The plan of one configuration (``impl``: ``binary``, ``unrolled`` or ``auto``)."""
    from hwgen.kernels.threshold import threshold_plan
    return threshold_plan(impl=impl, channels=channels, pe=pe, input_shape=signed(width),
                          thresholds=make_thresholds(k, channels, width))


def make_unit(impl, k, pe, channels, width):
    return make_plan(impl, k, pe, channels, width).build()


def impl_name(unit):
    from hwgen.kernels.threshold import BinarySearchThresholdPlan, UnrolledThresholdPlan
    if isinstance(unit, BinarySearchThresholdPlan):
        return "binary"
    if isinstance(unit, UnrolledThresholdPlan):
        return "unrolled"
    return type(unit).__name__


def mem_styles(unit):
    if hasattr(unit, "mem_style_of"):
        return [unit.mem_style_of(stage) for stage in range(unit.levels)]
    return [unit.mem_style]


def _error_text(exc):
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 2000 else text[:2000] + " ..."


def new_row(impl, k, pe, channels, width, family):
    return {"impl": impl, "chosen": None, "k": k, "t": (1 << k) - 1, "pe": pe, "c": channels,
            "width": width, "family": family, "ok": False, "error": None,
            "luts": None, "ffs": None, "carry": None, "carry_bits": None, "muxf": None,
            "lut_sizes": None,
            "bram18": None, "lutram": None, "srl": None, "lut_sites": None, "cost": None,
            "latency": None, "mem_styles": None,
            "estimate_luts": None, "estimate_ffs": None, "estimate_carry": None,
            "estimate_bram18": None, "estimate_lutram": None, "estimate_cost": None,
            "convert_seconds": None, "synth_seconds": None, "cached": None}


def prepare(row):
    """Build and convert the unit of ``row`` (filled in place); returns its Verilog or None."""
    from hwgen.export.verilog import component_verilog
    try:
        start = time.monotonic()
        unit = make_unit(row["impl"], row["k"], row["pe"], row["c"], row["width"])
        if row["impl"] == "auto":
            row["chosen"] = impl_name(unit)
        row["latency"] = unit.latency
        row["mem_styles"] = mem_styles(unit)
        estimate = unit.estimate()
        for key in ("luts", "ffs", "carry", "bram18", "lutram"):
            row[f"estimate_{key}"] = estimate[key]
        row["estimate_cost"] = (estimate["luts"] + estimate["lutram"] +
                                BRAM18_LUTS * estimate["bram18"])
        verilog = component_verilog(unit, name="thr")
        row["convert_seconds"] = round(time.monotonic() - start, 2)
        return verilog
    except Exception as e:  # noqa: BLE001 -- a benchmark records failures instead of stopping
        row["error"] = f"build/conversion: {_error_text(e)}"
        return None


def synth(row, verilog, *, cache=True, timeout=None):
    """Synthesize ``verilog`` and fill ``row`` in place."""
    from boards.synth import synthesize
    try:
        report = synthesize(verilog, top="thr", family=row["family"], cache=cache,
                            timeout=timeout)
    except Exception as e:  # noqa: BLE001
        row["error"] = f"synthesis: {_error_text(e)}"
        return row
    row.update(ok=True, luts=report["luts"], ffs=report["ffs"], carry=report["carry"],
               carry_bits=report["carry_bits"], muxf=report["muxf"],
               lut_sizes=report["lut_sizes"], bram18=report["bram18"],
               lutram=report["lutram"], srl=report["srl"], lut_sites=report["lut_sites"],
               cost=report["luts"] + report["lutram"] + BRAM18_LUTS * report["bram18"],
               synth_seconds=report["seconds"], cached=report["cached"])
    return row


def _short_error(row):
    """The most telling line of a row's error (the first Yosys ERROR line if any)."""
    lines = (row["error"] or "").splitlines()
    return next((line.strip() for line in lines if "ERROR" in line), lines[0] if lines else "")


def _label(row):
    return f"impl={row['impl']} K={row['k']} PE={row['pe']} C={row['c']}"


def _size(row):
    """Sort key: smallest expected synthesis first (failed builds first, they are free)."""
    if row["estimate_luts"] is None:
        return (0, 0)
    return (1, row["estimate_luts"] + BRAM18_LUTS * (row["estimate_bram18"] or 0))


def summarize(rows):
    """Lines of the summary: unrolled/binary LUT ratio at the largest K, auto vs the best at
    K <= 2."""
    lines = []
    ok = {(r["impl"], r["k"], r["pe"]): r for r in rows if r["ok"]}
    pes = sorted({r["pe"] for r in rows})
    ks = sorted({r["k"] for r in rows})
    if ks:
        top = max(ks)
        lines.append(f"unrolled / binary LUTs at K={top} (target >= 10x at K=8):")
        for pe in pes:
            b, u = ok.get(("binary", top, pe)), ok.get(("unrolled", top, pe))
            if b is None or u is None:
                lines.append(f"  PE={pe}: n/a (missing or failed row)")
                continue
            ratio = u["luts"] / b["luts"] if b["luts"] else float("inf")
            ratio_sites = (u["cost"] / b["cost"]) if b["cost"] else float("inf")
            verdict = ("meets 10x" if ratio >= 10 else "MISSES 10x") if top >= 8 else \
                "the 10x target is for K=8"
            lines.append(f"  PE={pe}: luts {u['luts']} / {b['luts']} = {ratio:.1f}x ({verdict}); "
                         f"cost (luts + lutram + {BRAM18_LUTS}*bram18) {u['cost']} / {b['cost']} "
                         f"= {ratio_sites:.1f}x")
    small = [k for k in ks if k <= 2]
    if small:
        lines.append(f"auto vs min(binary, unrolled) at K <= 2, cost = luts + lutram + "
                     f"{BRAM18_LUTS}*bram18 (target: never worse):")
        for pe in pes:
            for k in small:
                b, u, a = (ok.get((impl, k, pe)) for impl in ("binary", "unrolled", "auto"))
                if a is None or b is None or u is None:
                    lines.append(f"  K={k} PE={pe}: n/a (missing or failed row)")
                    continue
                best = min(b["cost"], u["cost"])
                best_impl = "binary" if b["cost"] <= u["cost"] else "unrolled"
                verdict = "ok" if a["cost"] <= best else f"WORSE by {a['cost'] - best}"
                lines.append(f"  K={k} PE={pe}: auto chose {a['chosen']} cost {a['cost']}; "
                             f"binary {b['cost']}, unrolled {u['cost']} (best {best_impl}) "
                             f"-> {verdict}")
    return lines


COLUMNS = [
    ("k", "K"), ("pe", "PE"), ("impl", "impl"), ("chosen", "chosen"),
    ("luts", "LUTs"), ("estimate_luts", "est LUTs"), ("lutram", "LUTRAM"),
    ("estimate_lutram", "est LUTRAM"), ("bram18", "BRAM18"), ("estimate_bram18", "est BRAM18"),
    ("ffs", "FFs"), ("estimate_ffs", "est FFs"), ("carry", "carry"), ("carry_bits", "carry bits"),
    ("cost", "cost"), ("estimate_cost", "est cost"), ("latency", "latency"),
    ("synth_seconds", "synth s"), ("status", "status"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT.json", help="write the rows as JSON")
    parser.add_argument("--k", type=int_list, default=list(DEFAULT_K),
                        help="comma-separated output bits K (default: %(default)s)")
    parser.add_argument("--pe", type=int_list, default=list(DEFAULT_PE),
                        help="comma-separated lanes per beat (default: %(default)s)")
    parser.add_argument("--impl", default=",".join(IMPLS),
                        help="comma-separated implementations (default: %(default)s)")
    parser.add_argument("--channels", type=int, default=64,
                        help="channels C (default: %(default)s)")
    parser.add_argument("--width", type=int, default=16,
                        help="signed input width in bits (default: %(default)s)")
    add_synth_arguments(parser, timeout=7200)
    parser.add_argument("--jobs", type=int, default=1,
                        help="Yosys runs in parallel (default: %(default)s)")
    args = parser.parse_args(argv)

    impls = check_synth_arguments(parser, args, IMPLS)
    if any(k > 12 for k in args.k):
        parser.error("--k values above 12 are not supported (2**K - 1 thresholds per channel)")
    if not 2 <= args.width <= 32:
        parser.error("--width must be in 2..32")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")

    # the auto factory builds both units and keeps one; the other is never elaborated
    warnings.filterwarnings("ignore", category=UnusedElaboratable)

    rows = [new_row(impl, k, pe, args.channels, args.width, args.family)
            for k in args.k for pe in args.pe for impl in impls]
    verilogs = {}
    for row in rows:
        progress(f"[threshold] build {_label(row)} ...")
        verilogs[id(row)] = prepare(row)
        if row["error"]:
            progress(f"[threshold]   -> FAILED: {_short_error(row)[:200]}")

    # auto rows reuse the Verilog of the chosen impl: synthesize them after it (cache hit)
    todo = sorted((r for r in rows if verilogs[id(r)] is not None),
                  key=lambda r: (_size(r), r["impl"] == "auto"))

    def run(row):
        t0 = time.monotonic()
        synth(row, verilogs[id(row)], cache=not args.no_cache, timeout=args.timeout)
        where = "cached" if row["cached"] else f"{time.monotonic() - t0:.1f} s"
        progress(f"[threshold] {_label(row)} -> {'ok' if row['ok'] else 'FAILED'} ({where})"
                 + (f" luts={row['luts']} lutram={row['lutram']} bram18={row['bram18']}"
                    if row["ok"] else f": {_short_error(row)[:200]}"))
        return row

    progress(f"[threshold] synthesizing {len(todo)} units, smallest first "
             f"(jobs={args.jobs}, timeout={args.timeout} s) ...")
    if args.jobs == 1 or args.no_cache:
        for row in todo:
            run(row)
    else:
        # auto rows wait for the rest, so that they hit the cache instead of a second Yosys run
        first = [r for r in todo if r["impl"] != "auto"]
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(run, first))
        for row in todo:
            if row["impl"] == "auto":
                run(row)

    table_rows = [dict(r, status="ok" if r["ok"] else _short_error(r)[:60])
                  for r in rows]
    print(f"thresholding units: C={args.channels}, signed({args.width}) input, "
          f"T = 2**K - 1, Yosys synth family={args.family}")
    print(f"cost = luts + lutram + {BRAM18_LUTS}*bram18, measured and estimated (the estimate "
          f"is what the auto factory compares)")
    print(format_table(table_rows, COLUMNS))
    print()
    print("\n".join(summarize(rows)))
    if args.json:
        write_json(args.json, rows)
        progress(f"[threshold] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
