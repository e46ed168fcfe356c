"""Self-contained HTML pieces for reports: inline SVG charts, no scripts, no files."""

import html

__all__ = ["layer_bars", "dataflow_svg", "report_page"]

_COLUMNS = (("cycles", "cycles per frame", "#4c72b0"), ("luts", "LUTs", "#dd8452"),
            ("bram18", "BRAM18", "#55a868"), ("dsp48e2", "DSP", "#c44e52"))


def layer_bars(layers, width=640, bar=12):
    """An inline SVG with one group of horizontal bars per layer: cycles per frame, LUTs,
    BRAM18 and DSP, each scaled to its largest value over the layers (the bottleneck's cycle
    bar is the full width). ``layers``: dicts with ``name`` and those keys (missing: 0)."""
    label = 140
    span = width - label - 60
    peaks = {key: max([row.get(key) or 0 for row in layers] + [1]) for key, _, _ in _COLUMNS}
    rows = []
    y = 4
    for row in layers:
        rows.append(f"<text x='0' y='{y + bar}' font-size='11'>"
                    f"{html.escape(str(row.get('name', '')))}</text>")
        for key, title, colour in _COLUMNS:
            value = row.get(key) or 0
            length = round(span * value / peaks[key], 1)
            rows.append(f"<rect x='{label}' y='{y}' width='{length}' height='{bar - 2}' "
                        f"fill='{colour}'><title>{title}: {value:,}</title></rect>"
                        f"<text x='{label + length + 4}' y='{y + bar - 3}' font-size='9'>"
                        f"{value:,}</text>")
            y += bar
        y += 6
    legend = "".join(f"<tspan fill='{colour}'>&#9632; {title}  </tspan>"
                     for _, title, colour in _COLUMNS)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{y + 20}'>"
            + "".join(rows) + f"<text x='0' y='{y + 14}' font-size='11'>{legend}</text></svg>")


def dataflow_svg(layers, bottleneck=None, per_row=6):
    """An inline SVG of the pipeline: one box per stage in stream order (wrapping after
    ``per_row``), with its kind, PE/SIMD, cycles per frame, and for FIFOs their depth (the
    ``shape`` column); the bottleneck's box is outlined in red."""
    box_w, box_h, gap = 150, 64, 24
    parts = []
    for k, row in enumerate(layers):
        col, line = k % per_row, k // per_row
        x, y = col * (box_w + gap) + 4, line * (box_h + gap) + 4
        hot = row.get("name") == bottleneck
        parts.append(f"<rect x='{x}' y='{y}' width='{box_w}' height='{box_h}' rx='6' "
                     f"fill='{'#fde0dd' if hot else '#eef3fb'}' stroke='"
                     f"{'#c0392b' if hot else '#4c72b0'}' stroke-width='{3 if hot else 1}'/>")
        fold = ", ".join(f"{key.upper()} {row[key]}" for key in ("pe", "simd")
                         if row.get(key) is not None)
        detail = row.get("shape", "") if row.get("kind") in ("fifo", "width") else fold
        lines = [f"{row.get('name', '')} ({row.get('kind', '')})", detail,
                 f"{row.get('cycles', 0):,} cycles" + (" (bottleneck)" if hot else "")]
        for j, text in enumerate(lines):
            parts.append(f"<text x='{x + 6}' y='{y + 18 + 16 * j}' font-size='11'>"
                         f"{html.escape(str(text))}</text>")
        if k + 1 < len(layers):
            if col + 1 < per_row:
                parts.append(f"<line x1='{x + box_w}' y1='{y + box_h / 2}' "
                             f"x2='{x + box_w + gap}' y2='{y + box_h / 2}' stroke='#555' "
                             f"marker-end='url(#arrow)'/>")
            else:
                parts.append(f"<line x1='{x + box_w / 2}' y1='{y + box_h}' x2='4' "
                             f"y2='{y + box_h + gap}' stroke='#555' marker-end='url(#arrow)'/>")
    lines_n = max(1, -(-len(layers) // per_row))
    width = min(len(layers), per_row) * (box_w + gap) + 8
    height = lines_n * (box_h + gap) + 8
    marker = ("<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='8' refY='4' "
              "orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#555'/></marker></defs>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
            + marker + "".join(parts) + "</svg>")


def report_page(report, measured=()):
    """``report.html`` of a compiled accelerator: its figures, the dataflow diagram, the
    per-layer bars and the table of the report, and each measurement (``measured``: dicts
    with ``target`` and ``luts``/``ffs``/``bram18``/``dsp`` and optionally ``fmax_mhz``)
    next to the estimated totals."""
    totals = report["totals"]
    title = html.escape(str(report.get("model") or report.get("network") or "accelerator"))
    keys = ("name", "kind", "shape", "pe", "simd", "datapath", "activation", "cycles", "luts",
            "ffs", "lutram", "bram18", "dsp48e2")
    table = "<table><tr>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if row.get(k) is None else str(row.get(k)))}"
                         f"</td>" for k in keys) + "</tr>" for row in report["layers"]) + \
        "</table>"
    compare = ["<tr><th>resources</th><th>LUT</th><th>FF</th><th>BRAM18</th><th>DSP</th>"
               "<th>Fmax MHz</th></tr>",
               f"<tr><td>estimate (UltraScale+)</td><td>{totals['luts']:,}</td>"
               f"<td>{totals['ffs']:,}</td><td>{totals['bram18']}</td>"
               f"<td>{totals['dsp48e2']}</td><td></td></tr>"]
    for found in measured:
        compare.append(
            f"<tr><td>measured: {html.escape(str(found.get('target')))}</td>"
            + "".join(f"<td>{'' if found.get(k) is None else found.get(k)}</td>"
                      for k in ("luts", "ffs", "bram18", "dsp", "fmax_mhz")) + "</tr>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>hwgen report: {title}</title><style>body{{font-family:sans-serif}} "
            "td,th{padding:2px 6px;text-align:right}</style></head><body>"
            f"<h1>{title}</h1><p>{report['est_fps']:,.0f} frames/s at "
            f"{report['clock_mhz']:g} MHz ({report['cycles_per_frame']:,} cycles per frame, "
            f"bottleneck {html.escape(str(report['bottleneck']))}); latency "
            f"{report['latency_cycles']:,} cycles</p>"
            "<h2>Dataflow</h2>" + dataflow_svg(report["layers"], report["bottleneck"]) +
            "<h2>Per layer</h2>" + layer_bars(report["layers"]) + table +
            "<h2>Estimate and measurements</h2><table>" + "".join(compare) + "</table>"
            "</body></html>\n")
