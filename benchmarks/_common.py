"""Helpers shared by the benchmark scripts: progress on stderr, tables, JSON output."""

import json
import sys
from pathlib import Path

# Let `python benchmarks/NAME.py` import the project's packages from a source checkout even
# when hwgen is not installed. The root goes first: a script such as benchmarks/boards.py
# must not shadow the package of the same name.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) in sys.path:
    sys.path.remove(str(_ROOT))
sys.path.insert(0, str(_ROOT))


def hwgen_compile(model, out, target_fps=None, clock_mhz=None):
    """Run ``hwgen compile`` in a fresh process (the time includes Python start-up and
    imports); returns the seconds it took. Exits with its last error line on failure."""
    import subprocess
    import time
    command = [sys.executable, "-m", "hwgen.cli", "compile", str(model), "-o", str(out)]
    if target_fps:
        command += ["--target-fps", str(target_fps)]
    if clock_mhz:
        command += ["--clock-mhz", str(clock_mhz)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"hwgen compile {model} failed: "
                         f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return seconds


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


def add_synth_arguments(parser, *, timeout=None):
    """The options every synthesis benchmark takes: --family, --no-cache, --timeout."""
    parser.add_argument("--family", default="xcup", help="Yosys family (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="always rerun Yosys")
    parser.add_argument("--timeout", type=float, default=timeout,
                        help="seconds per synthesis (default: %(default)s)")


def check_synth_arguments(parser, args, known_impls):
    """Validate --family and the comma-separated --impl list; returns the implementations."""
    from boards.synth import FAMILIES
    if args.family not in FAMILIES:
        parser.error(f"--family {args.family} is not one of {', '.join(FAMILIES)}")
    impls = [s.strip() for s in args.impl.split(",") if s.strip()]
    for impl in impls:
        if impl not in known_impls:
            parser.error(f"--impl {impl} is not one of {', '.join(known_impls)}")
    return impls


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


def model_list(parser, text, known):
    """The comma-separated models of ``text``; an unknown one is a ``parser`` error."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in known]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return models


def write_json(path, data):
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
