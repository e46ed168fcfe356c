"""CNN stream kernels on UltraScale+ (Yosys ``synth_xilinx -family xcup``): resources against
the analytic estimates, output beats and cycles per frame, and line buffers against their
bound.

    python benchmarks/cnn_kernels.py --json OUT.json [--configs swg-cnv1,...] [--no-cache]
                                     [--no-sim]

Each configuration is built from its plan (:mod:`hwgen.kernels`), converted bare
(``hwgen.export.verilog.component_verilog``, no AXI shell) and synthesized
(:func:`boards.synth.synthesize`, cached on disk). The configurations:

* ``swg-cnv1`` .. ``swg-cnv4``: :class:`hwgen.SlidingWindow` for the convolutions of FINN's CNV
  (3x3 kernels on 32x32x3 at SIMD 3 with 8-bit pixels, then 30x30x64, 14x14x128 and 5x5x256
  at SIMD 32 with 1-bit activations, FINN's CNV-W1A1 folding);
* ``swg-dw-simd1`` / ``swg-dw-simd8``: a 3x3 depthwise window on 56x56x64, 4-bit elements,
  at SIMD 1 and 8 (MobileNet's first depthwise layer);
* ``maxpool-28``: :class:`hwgen.MaxPool` 2x2, stride 2, on 28x28x64, PE 16, 4-bit elements;
* ``vvau-3x3x64``: :class:`hwgen.VVAU` 3x3 depthwise on 64 channels, W4A4, PE 8, SIMD 9, 4-bit
  outputs (15 thresholds per channel) over a 14x14 output map.

Cycles per frame are the plan's; with simulation (the default) they are also measured in
Amaranth's simulator from two frames with the input offered every cycle and the output always
ready (``measured_cycles_per_frame``, the cycles between the last output beats of the two
frames), with every output beat checked against the golden model.

JSON rows: ``config``, ``kernel`` (class name), ``params``, ``luts``, ``ffs``, ``carry``,
``bram18``, ``lutram``, ``dsp48e2``, ``estimate_luts``, ``estimate_ffs``,
``estimate_bram18``, ``estimate_lutram``, ``lut_error`` (``estimate / measured - 1``),
``out_beats_per_frame`` and ``expected_out_beats`` (``OH*OW*K_h*K_w*C/SIMD`` for a sliding
window), ``cycles_per_frame``, ``measured_cycles_per_frame``, ``buffer_elements`` and
``buffer_bound`` (null for kernels without a window), ``synth_seconds``, ``cached``.

Targets (issue 12): the line buffer at or under its bound in every row; a sliding window
puts out exactly ``OH*OW*K_h*K_w*C/SIMD`` beats per frame, one per cycle when not stalled;
``estimate()`` within 20% of Yosys for LUTs and exact for BRAM18.
"""

import argparse
import sys
import time

import _common  # noqa: F401  (sets sys.path for a source checkout)
from _common import add_synth_arguments, format_table, progress, write_json

import numpy as np
from amaranth.hdl import signed, unsigned

SEED = 20261201


def _swg(ifm, channels, simd, elem_shape, **extra):
    return ("SlidingWindow", dict(ifm=ifm, channels=channels, kernel=(3, 3), simd=simd,
                                  elem_shape=elem_shape, **extra))


CONFIGS = {
    "swg-cnv1": _swg((32, 32), 3, 3, unsigned(8)),
    "swg-cnv2": _swg((30, 30), 64, 32, unsigned(1)),
    "swg-cnv3": _swg((14, 14), 128, 32, unsigned(1)),
    "swg-cnv4": _swg((5, 5), 256, 32, unsigned(1)),
    "swg-dw-simd1": _swg((56, 56), 64, 1, unsigned(4), depthwise=True),
    "swg-dw-simd8": _swg((56, 56), 64, 8, unsigned(4), depthwise=True),
    "maxpool-28": ("MaxPool", dict(ifm=(28, 28), channels=64, pe=16, kernel=2,
                                   input_shape=unsigned(4))),
    "vvau-3x3x64": ("VVAU", dict(channels=64, kernel=(3, 3), pe=8, simd=9,
                                 input_shape=unsigned(4), weight_shape=signed(4),
                                 vectors=14 * 14)),
}


def plan(name, rng):
    """The plan of configuration ``name`` (random weights and thresholds from ``rng``)."""
    import hwgen
    kernel, params = CONFIGS[name]
    params = dict(params)
    if kernel == "VVAU":
        params["weights"] = rng.integers(-8, 8, size=(params["channels"], 9))
        probe = hwgen.VVAUPlan(**params)
        span = 1 << (probe.acc_shape.width - 3)
        params["thresholds"] = np.sort(rng.integers(-span, span + 1, (params["channels"], 15)),
                                       axis=1)
        params.update(target="xilinx", primitives="instance")
    return getattr(hwgen, kernel + "Plan")(**params)


def _describe(params):
    return {key: (value if isinstance(value, (int, str, tuple, bool)) else repr(value))
            for key, value in params.items() if key not in ("weights", "thresholds")}


def _frames(plan, rng, frames):
    """Input beats of ``frames`` random frames and the expected output beats."""
    from hwgen.shapes import shape_range
    from sim import golden
    fmt = plan.input_format
    shape = fmt.elem_shape
    lo, hi = shape_range(shape)
    beats = rng.integers(lo, hi + 1, size=(frames * plan.in_beats_per_frame, fmt.lanes))
    from hwgen import SlidingWindowPlan
    if isinstance(plan, SlidingWindowPlan):
        h, w = plan.ifm
        x = beats.reshape(frames, h, w, -1)
        expected = golden.sliding_window(x, plan.kernel, plan.stride, plan.dilation,
                                         simd=plan.simd, depthwise=plan.depthwise)
        return beats, expected.reshape(-1, plan.output_format.lanes)
    return beats, None


def measure_cycles(plan, rng):
    """Cycles between the last output beats of two frames, input every cycle, output always
    ready (every beat checked against the golden model where it has one)."""
    from sim.amaranth_sim import run_stream_sim
    beats, expected = _frames(plan, rng, 2)
    _, report = run_stream_sim(plan.build(), beats, expected=expected, valid_prob=1.0,
                               ready_prob=1.0)
    per_frame = plan.out_beats_per_frame
    out = report["out_cycles"]
    return out[2 * per_frame - 1] - out[per_frame - 1]


def run_config(name, args):
    from boards.synth import synthesize
    from hwgen.export.verilog import component_verilog
    rng = np.random.default_rng(SEED)
    unit = plan(name, rng)
    kernel, params = CONFIGS[name]
    estimate = unit.estimate()
    row = {"config": name, "kernel": kernel, "params": _describe(params),
           "estimate_luts": estimate.luts, "estimate_ffs": estimate.ffs,
           "estimate_bram18": estimate.bram18, "estimate_lutram": estimate.lutram,
           "out_beats_per_frame": unit.out_beats_per_frame,
           "cycles_per_frame": unit.cycles_per_frame,
           "buffer_elements": getattr(unit, "buffer_elements", None),
           "buffer_bound": getattr(unit, "buffer_bound", None), "expected_out_beats": None}
    if kernel == "SlidingWindow":
        (oh, ow), (kh, kw) = unit.ofm, unit.kernel
        row["expected_out_beats"] = oh * ow * kh * kw * params["channels"] // params["simd"]
    progress(f"{name}: converting")
    verilog = component_verilog(unit.build(), name="k")
    progress(f"{name}: synthesizing ({len(verilog) // 1024} KiB of Verilog)")
    start = time.monotonic()
    report = synthesize(verilog, top="k", family=args.family, cache=not args.no_cache,
                        timeout=args.timeout)
    row.update({key: report[key] for key in ("luts", "ffs", "carry", "bram18", "lutram",
                                             "dsp48e2")})
    row["synth_seconds"] = round(report.get("seconds", time.monotonic() - start), 1)
    row["cached"] = report.get("cached", False)
    row["lut_error"] = round(row["estimate_luts"] / row["luts"] - 1, 3)
    row["measured_cycles_per_frame"] = None
    if not args.no_sim:
        progress(f"{name}: simulating two frames")
        row["measured_cycles_per_frame"] = measure_cycles(unit, np.random.default_rng(SEED))
    return row


def targets_met(row):
    """The issue's targets for one row (see the module documentation)."""
    ok = abs(row["lut_error"]) <= 0.20 and row["bram18"] == row["estimate_bram18"]
    if row["buffer_bound"] is not None:
        ok = ok and row["buffer_elements"] <= row["buffer_bound"]
    if row["expected_out_beats"] is not None:
        ok = ok and row["out_beats_per_frame"] == row["expected_out_beats"]
    if row["measured_cycles_per_frame"] is not None:
        ok = ok and row["measured_cycles_per_frame"] == row["cycles_per_frame"]
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, help="write the rows here")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--no-sim", action="store_true",
                        help="skip measuring cycles per frame in simulation")
    add_synth_arguments(parser)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.configs.split(",") if name.strip()]
    for name in names:
        if name not in CONFIGS:
            parser.error(f"--configs {name} is not one of {', '.join(CONFIGS)}")
    rows = []
    for index, name in enumerate(names, 1):
        progress(f"[{index}/{len(names)}] {name}")
        rows.append(run_config(name, args))
        rows[-1]["targets_met"] = targets_met(rows[-1])
    write_json(args.json, rows)
    print(format_table(rows, [
        ("config", "config"), ("kernel", "kernel"), ("luts", "LUTs"),
        ("estimate_luts", "est"), ("lut_error", "est err"), ("ffs", "FFs"),
        ("bram18", "BRAM18"), ("estimate_bram18", "est"), ("lutram", "LUTRAM"),
        ("dsp48e2", "DSP"), ("out_beats_per_frame", "beats"), ("cycles_per_frame", "cycles"),
        ("measured_cycles_per_frame", "measured"), ("buffer_elements", "buffer"),
        ("buffer_bound", "bound"), ("targets_met", "ok")]))
    ok = all(row["targets_met"] for row in rows)
    print("all targets met" if ok else "some targets missed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
