"""Self-contained HTML pieces for reports: inline SVG charts, no scripts, no files."""

import html

__all__ = ["layer_bars"]

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
