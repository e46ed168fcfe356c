"""Measurements for the explore tests, importable on Dask workers (the tests put this
directory on PYTHONPATH): recorded results instead of Yosys, and faults on request."""

import json
import os
import time
from pathlib import Path

#: Recorded "synthesis" of a candidate: its estimate scaled, per target, as a measurement
#: differs from an estimate; deterministic in the compiled design.
SCALE = {"xcup": (1.10, 1.0), "ulx3s-85f": (1.35, 1.2), "icebreaker": (1.6, 1.5)}


def recorded(out_dir, target, clock_mhz, timeout=None):
    """Resources from the compiled report, scaled per target; Fmax for the open boards."""
    _count(out_dir, target)
    totals = json.loads((Path(out_dir) / "report.json").read_text())["totals"]
    luts, ffs = SCALE[target]
    fmax = None if target == "xcup" else 48.0 + (totals["luts"] % 7)
    return {"luts": round(totals["luts"] * luts), "ffs": round(totals["ffs"] * ffs),
            "bram18": totals["bram18"], "dsp": totals["dsp48e2"], "fmax_mhz": fmax}


def failing(out_dir, target, clock_mhz, timeout=None):
    """:func:`recorded`, except that the slowest candidate (the most cycles per frame)
    raises."""
    report = json.loads((Path(out_dir) / "report.json").read_text())
    if report["cycles_per_frame"] >= int(os.environ["EXPLORE_FAIL_CYCLES"]):
        raise RuntimeError("Yosys ran out of memory (injected)")
    return recorded(out_dir, target, clock_mhz, timeout)


def dies_once(out_dir, target, clock_mhz, timeout=None):
    """:func:`recorded`, except that the first call to claim the marker file kills its own
    worker process mid-task."""
    marker = Path(os.environ["EXPLORE_KILL_MARKER"])
    try:
        os.rename(marker, marker.with_suffix(".claimed"))
    except OSError:
        return recorded(out_dir, target, clock_mhz, timeout)
    time.sleep(0.2)
    os._exit(1)


def _count(out_dir, target):
    """One line per measurement in $EXPLORE_COUNT (when set): what was computed."""
    path = os.environ.get("EXPLORE_COUNT")
    if path:
        with open(path, "a") as file:
            file.write(f"{Path(out_dir).name} {target}\n")

