"""benchmarks/boards.py: rows from build reports (fast) and a stand-in run (slow)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("benchmark_boards", BENCHMARKS / "boards.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        if str(BENCHMARKS) in sys.path:
            sys.path.remove(str(BENCHMARKS))


REPORT = {
    "board": "icebreaker", "device": "iCE40UP5K", "clock_mhz": 12.0, "fmax_mhz": 40.0,
    "timing_met": True, "utilization": {"luts": 687, "ffs": 332, "bram": 1, "dsp": 0},
    "available": {"luts": 5280}, "build_seconds": 11.5, "cycles_per_frame": 8,
    "host_link": {"baud": 1_000_000, "in_len": 64, "out_len": 1},
}


def test_row_from_report(bench):
    row = bench.row_from_report(REPORT, "mlp")
    assert (row["board"], row["model"], row["luts"], row["ffs"], row["bram"], row["dsp"]) == \
        ("icebreaker", "mlp", 687, 332, 1, 0)
    assert row["fmax_mhz"] == 40.0 and row["fps_at_fmax"] == 5e6
    assert row["fps_at_clock"] == 1.5e6
    assert row["fps_uart"] == round(1e5 / 72, 1)   # 64 + 8 bytes per request


def test_needs_a_model(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main([])
    assert "give at least one MODEL_DIR, or --stand-in" in capsys.readouterr().err


@pytest.mark.slow
def test_stand_in_on_both_boards(bench, tmp_path):
    out = tmp_path / "boards.json"
    assert bench.main(["--stand-in", "--json", str(out), "--work", str(tmp_path / "w")]) == 0
    rows = json.loads(out.read_text())
    assert [(r["board"], r["model"]) for r in rows] == [
        ("icebreaker", "stand-in-threshold"), ("ulx3s-85f", "stand-in-threshold")]
    for row in rows:
        for key in ("luts", "ffs", "bram", "dsp", "fmax_mhz", "fps_at_fmax", "fps_uart"):
            assert row[key] is not None, key
