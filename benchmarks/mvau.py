"""MVAU resources on UltraScale+ (Yosys ``synth_xilinx -family xcup``) against the FINN-R model.

    python benchmarks/mvau.py --json OUT.json [--layers tfc-l1,w2a2-256,...] [--no-cache]

Each layer is built as :class:`hwgen.kernels.mvau.MVAU` with ``target="xilinx"`` and
``primitives="instance"`` (LUT6_2/CARRY8 compressor trees, DSP48E2 slices), converted bare
(``hwgen.export.verilog.component_verilog``, no AXI shell) and synthesized (:func:`boards.synth.synthesize`,
cached on disk). Weights and thresholds are random from a fixed seed. The layers:

* ``tfc-l1``: 784 -> 64, bipolar weights and inputs, PE=16, SIMD=49, one threshold per channel
  (sign activation): the first layer of FINN's TFC-W1A1;
* ``w2a2-256``: 256 -> 256, signed 2-bit weights, unsigned 2-bit inputs, 2-bit outputs (3
  thresholds), PE=16, SIMD=16;
* ``w4a4-512-lut`` / ``w4a4-512-dsp``: 512 -> 512, signed 4-bit weights, unsigned 4-bit inputs,
  4-bit outputs (15 thresholds), PE=16, SIMD=16, ``lut`` and ``dsp`` datapaths;
* ``w8a8-256-dsp``: 256 -> 256, signed 8-bit weights and inputs, raw accumulators out, PE=8,
  SIMD=8, ``dsp``.

``finnr_luts`` is the FINN-R compute-cost model (Blott et al., "FINN-R", TRETS 2018):
``300 + 1.1 * PE * (mult + adder_tree + accumulator + thresholds)`` with
``mult = SIMD * (2 * ceil((W + A) / 6) - 1) * (W + A)`` (zero on the ``dsp`` datapath, where the
products are in DSP slices), ``adder_tree = (W + A) * (2 * SIMD - 1)``, the accumulator term
``acc_bits`` (one LUT per accumulator bit, ``acc_bits`` = the MVAU's worst-case accumulator
width) and the threshold term ``T * acc_bits / 2`` (``T`` comparators of the accumulator,
two bits per LUT). ``W``, ``A``: weight and input bits (1 for bipolar).

JSON rows: ``layer``, ``datapath``, ``mw``, ``mh``, ``pe``, ``simd``, ``luts``, ``ffs``,
``carry``, ``bram18``, ``lutram``, ``dsp48e2``, ``cycles_per_vector`` (measured in Amaranth's
simulator: steady-state cycles between the output beats of consecutive vectors, with no
stalls), ``nf_sf``, ``estimate_luts`` / ``estimate_ffs`` / ``estimate_bram18`` /
``estimate_dsp48e2``, ``lut_error`` (``estimate / measured - 1``), ``finnr_luts``,
``vs_finnr`` (``luts / finnr_luts``), ``synth_seconds`` and ``cached``.
"""

import argparse
import math
import sys
import time

import _common  # noqa: F401  (sets sys.path for a source checkout)
from _common import add_synth_arguments, format_table, progress, write_json

import numpy as np
from amaranth.hdl import signed, unsigned

SEED = 20261122

LAYERS = {
    "tfc-l1": dict(mw=784, mh=64, pe=16, simd=49, weight_shape="bipolar", input_shape="bipolar",
                   thresholds=1, datapath="xnor"),
    "w2a2-256": dict(mw=256, mh=256, pe=16, simd=16, weight_shape=signed(2),
                     input_shape=unsigned(2), thresholds=3, datapath="lut"),
    "w4a4-512-lut": dict(mw=512, mh=512, pe=16, simd=16, weight_shape=signed(4),
                         input_shape=unsigned(4), thresholds=15, datapath="lut"),
    "w4a4-512-dsp": dict(mw=512, mh=512, pe=16, simd=16, weight_shape=signed(4),
                         input_shape=unsigned(4), thresholds=15, datapath="dsp"),
    "w8a8-256-dsp": dict(mw=256, mh=256, pe=8, simd=8, weight_shape=signed(8),
                         input_shape=signed(8), thresholds=0, datapath="dsp"),
}


def _bits(shape):
    return 1 if shape == "bipolar" else shape.width


def _values(rng, shape, size):
    if shape == "bipolar":
        return rng.choice([-1, 1], size)
    lo = -(1 << shape.width - 1) if shape.signed else 0
    hi = (1 << shape.width - 1) - 1 if shape.signed else (1 << shape.width) - 1
    return rng.integers(lo, hi + 1, size)


def plan(config, rng):
    """The plan of the layer's MVAU, with random weights and thresholds spread over the dot
    products' range."""
    from hwgen.kernels.mvau import MVAUPlan
    config = dict(config)
    count = config.pop("thresholds")
    weights = _values(rng, config["weight_shape"], (config["mh"], config["mw"]))
    thresholds = None
    if count:
        span = 1 << (MVAUPlan(weights=weights, **config).acc_shape.width - 3)
        # typical accumulators sit near zero
        thresholds = np.sort(rng.integers(-span, span + 1, (config["mh"], count)), axis=1)
    return MVAUPlan(weights=weights, thresholds=thresholds, target="xilinx",
                    primitives="instance", **config)


def build(config, rng):
    """The layer's MVAU (:func:`plan`, built)."""
    return plan(config, rng).build()


def finnr_luts(unit, thresholds):
    """The FINN-R LUT model for ``unit`` (see the module documentation)."""
    wa = _bits(unit.weight_shape) + _bits(unit.input_shape)
    mult = 0 if unit.datapath == "dsp" else unit.simd * (2 * math.ceil(wa / 6) - 1) * wa
    adder = wa * (2 * unit.simd - 1)
    acc = unit.acc_shape.width
    thr = thresholds * acc / 2
    return round(300 + 1.1 * unit.pe * (mult + adder + acc + thr))


def measure_cycles_per_vector(unit, rng, vectors=4):
    """Steady-state cycles per vector in Amaranth's simulator (no stalls): the distance between
    the first output beats of consecutive vectors."""
    from sim.amaranth_sim import run_stream_sim
    shape = unit.input_shape
    inputs = _values(rng, shape, (vectors, unit.mw))
    beats = (inputs > 0).astype(np.int64) if shape == "bipolar" else inputs
    report = run_stream_sim(unit, beats.reshape(-1, unit.simd), valid_prob=1.0,
                            ready_prob=1.0).report
    starts = report["out_cycles"][::unit.nf]
    gaps = {b - a for a, b in zip(starts, starts[1:])}
    if len(gaps) != 1:
        raise RuntimeError(f"uneven vector spacing {sorted(gaps)}")
    return gaps.pop()


def run_layer(name, args):
    from boards.synth import synthesize
    from hwgen.export.verilog import component_verilog
    config = LAYERS[name]
    rng = np.random.default_rng(SEED)
    unit = build(config, rng)
    row = {"layer": name, "datapath": unit.datapath, "mw": unit.mw, "mh": unit.mh,
           "pe": unit.pe, "simd": unit.simd, "nf_sf": unit.nf * unit.sf}
    estimate = unit.estimate()
    for key, field in (("luts", "luts"), ("ffs", "ffs"), ("bram18", "bram18"),
                       ("dsp48e2", "dsp"), ("lutram", "lutram")):
        row[f"estimate_{key}"] = estimate[field]
    row["finnr_luts"] = finnr_luts(unit, config["thresholds"])
    progress(f"{name}: converting")
    verilog = component_verilog(unit, name="mvau")
    progress(f"{name}: synthesizing ({len(verilog) // 1024} KiB of Verilog)")
    start = time.monotonic()
    report = synthesize(verilog, top="mvau", family=args.family, cache=not args.no_cache,
                        timeout=args.timeout)
    row.update({key: report[key] for key in ("luts", "ffs", "carry", "bram18", "lutram",
                                             "dsp48e2")})
    row["synth_seconds"] = round(report.get("seconds", time.monotonic() - start), 1)
    row["cached"] = report.get("cached", False)
    progress(f"{name}: simulating")
    sim_unit = build(config, np.random.default_rng(SEED))
    row["cycles_per_vector"] = measure_cycles_per_vector(sim_unit, rng)
    row["lut_error"] = round(row["estimate_luts"] / row["luts"] - 1, 3)
    row["vs_finnr"] = round(row["luts"] / row["finnr_luts"], 3)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, help="write the rows here")
    parser.add_argument("--layers", default=",".join(LAYERS),
                        help="comma-separated subset of: " + ", ".join(LAYERS))
    add_synth_arguments(parser)
    args = parser.parse_args(argv)
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    for name in layers:
        if name not in LAYERS:
            parser.error(f"--layers {name} is not one of {', '.join(LAYERS)}")
    rows = []
    for index, name in enumerate(layers, 1):
        progress(f"[{index}/{len(layers)}] {name}")
        rows.append(run_layer(name, args))
    write_json(args.json, rows)
    print(format_table(rows, [
        ("layer", "layer"), ("datapath", "datapath"), ("pe", "PE"), ("simd", "SIMD"),
        ("luts", "LUTs"), ("estimate_luts", "est"), ("lut_error", "est err"),
        ("finnr_luts", "FINN-R"), ("vs_finnr", "/FINN-R"), ("ffs", "FFs"),
        ("bram18", "BRAM18"), ("estimate_bram18", "est"), ("dsp48e2", "DSP"),
        ("estimate_dsp48e2", "est"), ("lutram", "LUTRAM"), ("cycles_per_vector", "cyc/vec"),
        ("nf_sf", "NF*SF")]))
    ok = all(r["luts"] <= r["finnr_luts"] and abs(r["lut_error"]) <= 0.25
             and r["bram18"] == r["estimate_bram18"] and r["dsp48e2"] == r["estimate_dsp48e2"]
             and r["cycles_per_vector"] == r["nf_sf"] for r in rows)
    print("all targets met" if ok else "some targets missed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
