"""Helpers shared by the benchmark scripts: progress on stderr, tables, JSON output."""

import json
import sys
from pathlib import Path

# Let `python benchmarks/NAME.py` import the project's packages from a source checkout even
# when hwgen is not installed.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(1, str(_ROOT))


def progress(*args):
    """Print a progress line on stderr (stdout stays for the table)."""
    print(*args, file=sys.stderr, flush=True)


def int_list(text):
    """argparse type for comma-separated integers: ``"64,256"`` -> ``[64, 256]``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{text!r} must list positive integers")
    return values


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def format_table(rows, columns):
    """Plain-text table of ``rows`` (dicts) with ``columns`` [(key, header), ...]."""
    cells = [[header for _, header in columns]]
    cells += [[_fmt(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path, data):
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
