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


_BOX_W, _BOX_H, _GAP = 150, 64, 24
_ARROW = ("<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='8' refY='4' "
          "orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#555'/></marker></defs>")


def _box(row, x, y, bottleneck):
    """One stage's box: name and kind, PE/SIMD (a FIFO's or converter's shape), cycles."""
    hot = row.get("name") == bottleneck
    parts = [f"<rect x='{x}' y='{y}' width='{_BOX_W}' height='{_BOX_H}' rx='6' "
             f"fill='{'#fde0dd' if hot else '#eef3fb'}' stroke='"
             f"{'#c0392b' if hot else '#4c72b0'}' stroke-width='{3 if hot else 1}'/>"]
    fold = ", ".join(f"{key.upper()} {row[key]}" for key in ("pe", "simd")
                     if row.get(key) is not None)
    detail = row.get("shape", "") if row.get("kind") in ("fifo", "width") else fold
    lines = [f"{row.get('name', '')} ({row.get('kind', '')})", detail,
             f"{row.get('cycles', 0):,} cycles" + (" (bottleneck)" if hot else "")]
    for j, text in enumerate(lines):
        parts.append(f"<text x='{x + 6}' y='{y + 18 + 16 * j}' font-size='11'>"
                     f"{html.escape(str(text))}</text>")
    return parts


def _is_chain(layers):
    """Whether every stage reads just the one before it (rows without ``inputs`` count as
    such: reports written before the column existed)."""
    return all(row.get("inputs") in (None, [layers[k - 1]["name"] if k else "input"])
               for k, row in enumerate(layers))


def dataflow_svg(layers, bottleneck=None, per_row=6):
    """An inline SVG of the pipeline: one box per stage with its kind, PE/SIMD, cycles per
    frame, and for FIFOs their depth (the ``shape`` column); the bottleneck's box is
    outlined in red. A chain of stages is drawn in stream order, wrapping after ``per_row``;
    a graph with forks and joins (rows' ``inputs``) top to bottom, one row of boxes per
    depth from the input, an arrow per stream."""
    if not _is_chain(layers):
        return _dataflow_dag(layers, bottleneck)
    parts = []
    for k, row in enumerate(layers):
        col, line = k % per_row, k // per_row
        x, y = col * (_BOX_W + _GAP) + 4, line * (_BOX_H + _GAP) + 4
        parts += _box(row, x, y, bottleneck)
        if k + 1 < len(layers):
            if col + 1 < per_row:
                parts.append(f"<line x1='{x + _BOX_W}' y1='{y + _BOX_H / 2}' "
                             f"x2='{x + _BOX_W + _GAP}' y2='{y + _BOX_H / 2}' stroke='#555' "
                             f"marker-end='url(#arrow)'/>")
            else:
                parts.append(f"<line x1='{x + _BOX_W / 2}' y1='{y + _BOX_H}' x2='4' "
                             f"y2='{y + _BOX_H + _GAP}' stroke='#555' "
                             f"marker-end='url(#arrow)'/>")
    lines_n = max(1, -(-len(layers) // per_row))
    width = min(len(layers), per_row) * (_BOX_W + _GAP) + 8
    height = lines_n * (_BOX_H + _GAP) + 8
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
            + _ARROW + "".join(parts) + "</svg>")


def _dataflow_dag(layers, bottleneck):
    """:func:`dataflow_svg` of a graph: a stage's depth is one more than its deepest input's;
    the stages of one depth side by side, in stream order; an edge from the bottom of its
    source to the top of its reader (a skip over several depths curves to the side)."""
    names = [row["name"] for row in layers]
    depth = {"input": -1}
    for row in layers:                                  # stream order is topological
        depth[row["name"]] = 1 + max([depth.get(name, -1) for name in row.get("inputs") or
                                      ["input"]])
    lanes, place = {}, {}
    for row in layers:
        level = depth[row["name"]]
        place[row["name"]] = (lanes.get(level, 0), level)
        lanes[level] = lanes.get(level, 0) + 1
    pitch_x, pitch_y = _BOX_W + _GAP, _BOX_H + 2 * _GAP

    def corner(name):
        lane, level = place[name]
        return lane * pitch_x + 4, level * pitch_y + 4

    parts = []
    for row in layers:
        x, y = corner(row["name"])
        for source in row.get("inputs") or []:
            if source not in place:
                continue
            sx, sy = corner(source)
            x1, y1, x2, y2 = sx + _BOX_W / 2, sy + _BOX_H, x + _BOX_W / 2, y
            if depth[row["name"]] - depth[source] > 1:     # a skip: bow out to the right
                bow = x1 + _BOX_W / 2 + _GAP / 2 + 12 * (depth[row["name"]] - depth[source])
                parts.append(f"<path d='M{x1},{y1} C{bow},{y1 + pitch_y} {bow},{y2 - pitch_y} "
                             f"{x2},{y2}' fill='none' stroke='#555' "
                             f"marker-end='url(#arrow)'/>")
            else:
                parts.append(f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#555' "
                             f"marker-end='url(#arrow)'/>")
    for row in layers:
        parts += _box(row, *corner(row["name"]), bottleneck)
    width = max(lanes.values()) * pitch_x + _BOX_W + 8
    height = (max(lanes) + 1) * pitch_y + 8
    assert len(names) == len(place)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
            + _ARROW + "".join(parts) + "</svg>")


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
