"""``hwgen compile``: ONNX model -> folded network -> Verilog and reports.

:func:`compile_model` writes into an output directory:

==================  ====================================================================
``top.v``           the accelerator behind the AXI4-Stream shell (``ap_clk``, ``ap_rst_n``,
                    ``s_axis_*``, ``m_axis_*``; tdata padded to whole bytes, ``tlast`` on the
                    last beat of each output frame)
``network.json``    the folded IR (:meth:`graph.ir.Network.to_json`), with every ``auto``
                    choice resolved, so :func:`load_accelerator` rebuilds the same component
``model.onnx``      a copy of the model, for ``hwgen verify``'s ONNX reference
``report.json``     per-stage rows and totals (see :func:`build_report`)
``report.txt``      the same as a readable table (:func:`format_report`)
==================  ====================================================================
"""

import json
import shutil
import time
from pathlib import Path

from .errors import GraphError
from .fold import apply_folding_json, budget_cycles, default_budget, fold

__all__ = ["compile_model", "load_accelerator", "load_network", "build_report",
           "format_report", "read_report"]

#: Report column -> :class:`hwgen.resources.Resources` field (the report is an UltraScale+
#: estimate: its DSPs are DSP48E2 slices).
_RESOURCES = {"luts": "luts", "ffs": "ffs", "lutram": "lutram", "bram18": "bram18",
              "dsp48e2": "dsp"}
#: IR layer attributes shown in the report, where a layer has them.
_LAYER_COLUMNS = ("input_type", "weight_type", "output_type", "vectors")


def _quiet(*args, **kwargs):
    pass


def compile_model(model_path, out_dir, target_fps=None, clock_mhz=100.0, folding=None,
                  progress=print):
    """Compile a quantized ONNX model into a verified-by-construction streaming accelerator.

    Parameters
    ----------
    model_path : str, os.PathLike or graph.ir.Network
        The ``.onnx`` file (QONNX, FINN-ONNX or QDQ); or an already lowered network (then no
        ``model.onnx`` is written).
    out_dir : str or os.PathLike
        Created if needed; files in it are overwritten.
    target_fps : float, optional
        Throughput target in frames per second (default: :func:`graph.fold.fold`'s default
        folding).
    clock_mhz : float
        Clock for the target and the reported figures.
    folding : str, os.PathLike or dict, optional
        A folding JSON (:func:`graph.fold.apply_folding_json`) applied after :func:`fold`.
    progress : callable
        Called with one line of text per step (``print`` by default).

    Returns
    -------
    dict
        The report (as written to ``report.json``).

    Raises
    ------
    GraphError
        Anything wrong with the model, the target or the folding, in one line.
    """
    from .importer import import_model
    from .ir import Network
    progress = progress or _quiet
    start = time.perf_counter()
    out = Path(out_dir)
    if isinstance(model_path, Network):
        network, source = model_path, None
        progress(f"network {network.name!r}: {len(network.layers)} layers")
    else:
        source = Path(model_path)
        progress(f"importing {source}")
        network = import_model(source)
        progress(f"  {len(network.layers)} layers: "
                 f"{', '.join(layer.name for layer in network.layers)}")
    target = "default" if target_fps is None else f"{target_fps:g} frames/s"
    progress(f"folding for {target} at {clock_mhz:g} MHz")
    network = fold(network, target_fps, clock_mhz)
    if folding is not None:
        network = apply_folding_json(network, folding)
    accelerator = _build(network)
    _resolve_choices(network, accelerator)
    progress(f"  bottleneck {accelerator.bottleneck.name!r}: {accelerator.cycles_per_frame} "
             f"cycles per frame, {accelerator.fps(clock_mhz):,.0f} frames/s")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GraphError(f"{out}: cannot create the output directory ({error.strerror})") \
            from None
    progress(f"writing Verilog ({len(accelerator.stages)} stages; large weight memories take "
             f"a few seconds)")
    verilog_start = time.perf_counter()
    from .elaborate import stitched_verilog
    verilog = stitched_verilog(accelerator, name="top")
    (out / "top.v").write_text(verilog)
    progress(f"  {out / 'top.v'}: {len(verilog):,} bytes in "
             f"{time.perf_counter() - verilog_start:.1f} s")
    network.to_json(out / "network.json")
    if source is not None and source.resolve() != (out / "model.onnx").resolve():
        shutil.copyfile(source, out / "model.onnx")
    report = build_report(accelerator, clock_mhz, target_fps=target_fps,
                          model=None if source is None else source.name)
    report["verilog_bytes"] = len(verilog.encode())
    report["compile_s"] = round(time.perf_counter() - start, 3)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.txt").write_text(format_report(report))
    progress(f"wrote {out}/: top.v, network.json, report.json, report.txt "
             f"({report['compile_s']:.1f} s)")
    return report


def _build(network):
    from .elaborate import Accelerator
    return Accelerator(network)


def _resolve_choices(network, accelerator):
    """Write the kernels' resolved ``auto`` choices back into the IR (the folding keys a
    plan resolves, such as an MVAU's ``datapath`` and ``mem_style``)."""
    for stage in accelerator.stages:
        if stage.layer is None:
            continue
        for key, value in stage.plan.resolved_choices().items():
            if key in stage.layer.fold_keys:
                setattr(stage.layer, key, value)


def load_network(out_dir):
    """The folded :class:`graph.ir.Network` of a ``hwgen compile`` output directory."""
    from .ir import Network
    path = Path(out_dir) / "network.json"
    if not path.is_file():
        raise GraphError(f"{out_dir}: not a hwgen compile output (no network.json); run "
                         f"'hwgen compile MODEL.onnx -o {out_dir}' first")
    return Network.from_json(path)


def load_accelerator(out_dir, kernel_options=None):
    """The top-level component (:class:`graph.elaborate.Accelerator`) of a directory written
    by ``hwgen compile``: stream ports ``i``/``o``; properties ``in_beats_per_frame``,
    ``out_beats_per_frame``, ``latency`` and ``cycles_per_frame``. ``kernel_options``: extra
    kernel arguments per kernel name (``{"mvau": {...}}``; each a dict, or a function of
    the layer), see :class:`~graph.elaborate.Pipeline`."""
    from .elaborate import Accelerator
    return Accelerator(load_network(out_dir), kernel_options=kernel_options)


def read_report(out_dir):
    """The ``report.json`` dict of a ``hwgen compile`` output directory."""
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise GraphError(f"{out_dir}: not a hwgen compile output (no report.json); run "
                         f"'hwgen compile MODEL.onnx -o {out_dir}' first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GraphError(f"{path}: not valid JSON ({error})") from None


def _stage_row(stage):
    """One report row: name, kernel, cycles, the registry's hardware columns, the layer's
    datatypes, and the estimate."""
    row = {"name": stage.name, "kind": stage.kind, "cycles": stage.cycles_per_frame,
           "inputs": [source.name if source is not None else "input"
                      for source, _ in stage.sources.values()]}
    row.update(stage.report_row())
    if stage.layer is not None:
        row.update({key: getattr(stage.layer, key) for key in _LAYER_COLUMNS
                    if hasattr(stage.layer, key)})
    estimate = stage.estimate()
    row.update({key: int(estimate[field]) for key, field in _RESOURCES.items()})
    return row


def build_report(accelerator, clock_mhz, target_fps=None, model=None):
    """The report dict of an accelerator: ``layers`` (one row per stage: ``name``, ``kind``,
    ``inputs`` (the stages it reads, ``"input"`` for the network's), ``shape``, datatypes, ``pe``, ``simd``, ``datapath``, ``cycles`` and the estimate
    ``luts``/``ffs``/``lutram``/``bram18``/``dsp48e2``), ``totals``, ``cycles_per_frame``,
    ``est_fps``, ``latency_cycles``, ``latency_us``, ``bottleneck`` and the stream formats."""
    network = accelerator.network
    rows = [_stage_row(stage) for stage in accelerator.stages]
    totals = {key: sum(row[key] for row in rows) for key in _RESOURCES}
    cycles = accelerator.cycles_per_frame
    return {
        "model": model, "network": network.name, "clock_mhz": clock_mhz,
        "target_fps": target_fps,
        "budget_cycles": (default_budget(network) if target_fps is None
                          else budget_cycles(target_fps, clock_mhz)),
        "cycles_per_frame": cycles, "est_fps": clock_mhz * 1e6 / cycles,
        "latency_cycles": accelerator.latency,
        "latency_us": accelerator.latency / clock_mhz,
        "bottleneck": accelerator.bottleneck.name,
        "input": {"type": network.input_type, "elements": network.input_elements,
                  "lanes": accelerator.in_lanes, "beats": accelerator.in_beats_per_frame},
        "output": {"type": network.layers[-1].output_type, "kind": network.output.kind,
                   "lanes": accelerator.out_lanes, "beats": accelerator.out_beats_per_frame},
        "layers": rows, "totals": totals,
    }


_COLUMNS = (("name", "name", "<"), ("kind", "kind", "<"), ("shape", "shape", "<"),
            ("types in/w/out", None, "<"), ("PE", "pe", ">"), ("SIMD", "simd", ">"),
            ("datapath", "datapath", "<"), ("activation", "activation", "<"),
            ("cycles", "cycles", ">"), ("LUT", "luts", ">"),
            ("FF", "ffs", ">"), ("LUTRAM", "lutram", ">"), ("BRAM18", "bram18", ">"),
            ("DSP", "dsp48e2", ">"))


def _cell(row, key):
    if key is None:
        types = [row.get(k) for k in ("input_type", "weight_type", "output_type")]
        return "/".join(t for t in types if t) if any(types) else ""
    value = row.get(key, "")
    return "" if value is None else str(value)


def format_report(report):
    """``report.txt``: a table per stage with totals, throughput and latency."""
    table = [[title for title, _, _ in _COLUMNS]]
    for row in report["layers"]:
        table.append([_cell(row, key) for _, key, _ in _COLUMNS])
    total = ["total", "", "", "", "", "", "", "", str(report["cycles_per_frame"])]
    total += [str(report["totals"][key]) for key in _RESOURCES]
    table.append(total)
    widths = [max(len(line[col]) for line in table) for col in range(len(_COLUMNS))]

    def line(cells):
        return "  ".join(cell.ljust(w) if align == "<" else cell.rjust(w)
                         for cell, w, (_, _, align) in zip(cells, widths, _COLUMNS)).rstrip()
    rule = "-" * len(line(table[0]))
    lines = [f"hwgen accelerator for {report.get('model') or report['network']}",
             f"clock {report['clock_mhz']:g} MHz, target "
             + (f"{report['target_fps']:g} frames/s" if report.get("target_fps")
                else "default folding")
             + f" ({report['budget_cycles']} cycles per frame)", "",
             line(table[0]), rule] + [line(cells) for cells in table[1:-1]] + [rule,
                                                                                 line(table[-1])]
    inp, outp = report["input"], report["output"]
    lines += ["",
              f"throughput  {report['est_fps']:,.0f} frames/s ({report['cycles_per_frame']} "
              f"cycles per frame, bottleneck {report['bottleneck']})",
              f"latency     {report['latency_cycles']} cycles = "
              f"{report['latency_us']:.3f} us",
              f"input       {inp['elements']} x {inp['type']}, {inp['lanes']} per beat, "
              f"{inp['beats']} beats per frame",
              f"output      {outp['kind']}: {outp['type']}, {outp['lanes']} per beat, "
              f"{outp['beats']} beats per frame",
              "resources   analytic estimate for UltraScale+ (LUTRAM: LUTs used as memory)"]
    if "verilog_bytes" in report:
        lines.append(f"verilog     top.v, {report['verilog_bytes']:,} bytes, compiled in "
                     f"{report['compile_s']:.1f} s")
    return "\n".join(lines) + "\n"
