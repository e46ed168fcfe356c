"""hwgen explore on Dask: the digits MLP over a small range on a local cluster of 2 workers,
Yosys replaced by recorded results (tests/boards/explore_fakes.py). The Pareto set equals one
computed by hand from the rows; failures are recorded without stopping the others; a worker
killed mid-task is retried with nothing lost or duplicated; a rerun computes only what the
cache lacks; the HTML holds every row and the PNG decodes; bad input is one line."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
from dask.distributed import Client, LocalCluster  # noqa: E402

from boards.explore import ExploreError, explore  # noqa: E402
from hwgen.cli import main  # noqa: E402

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent.parent / "examples" / "digits_w1a1.onnx"
RANGE = (4000, 1_600_000)
FAKES = "explore_fakes:"

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="examples not built")


@pytest.fixture(scope="module")
def client():
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    import sys
    sys.path.insert(0, str(HERE))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def run(client, out, **options):
    options = {"fps": RANGE, "points": 5, "targets": ("xcup", "ulx3s-85f"),
               "measure": FAKES + "recorded", "client": client, "progress": None, **options}
    return explore(MODEL, out, **options)


def by_hand_front(rows, target):
    """Indices of the ok rows of ``target`` that no other such row beats (at least the
    frames/s for at most the LUT-equivalents, one strictly)."""
    ok = [(k, r["fps"], r["measured"]["lut_eq"]) for k, r in enumerate(rows)
          if r["target"] == target and r["status"] == "ok"]
    return sorted(k for k, f, c in ok
                  if not any(f2 >= f and c2 <= c and (f2 > f or c2 < c) for _, f2, c2 in ok))


@pytest.fixture(scope="module")
def explored(client, tmp_path_factory):
    out = tmp_path_factory.mktemp("explore")
    return out, run(client, out)


def test_rows_and_the_pareto_front(explored):
    out, result = explored
    rows = result["rows"]
    assert result["candidates"] >= 3 and not result["failed"]
    assert len(rows) == 2 * result["candidates"]
    for row in rows:
        assert row["status"] == "ok"
        clock = row["fmax_mhz"] or 100.0
        assert row["fps"] == pytest.approx(clock * 1e6 / row["cycles_per_frame"])
        m = row["measured"]
        assert m["lut_eq"] == m["luts"] + 64 * m["bram18"] + 100 * m["dsp"]
        assert (row["fmax_mhz"] is None) == (row["target"] == "xcup")
    for target in ("xcup", "ulx3s-85f"):
        assert result["pareto"][target] == by_hand_front(rows, target)
    on_disk = json.loads((out / "explore.json").read_text())
    assert on_disk["pareto"] == result["pareto"] and len(on_disk["rows"]) == len(rows)


def test_every_pareto_folding_compiles_to_its_row(explored, tmp_path):
    out, result = explored
    files = result["folding_files"]
    assert len(files) == len({i for v in result["pareto"].values() for i in v})
    first = files[0]
    row = next(r for r in result["rows"] if r["candidate"] == first["candidate"])
    assert main(["compile", str(MODEL), "-o", str(tmp_path / "c"), "--folding",
                 str(out / first["file"])]) == 0
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["cycles_per_frame"] == row["cycles_per_frame"]


def test_html_and_png_hold_every_row(explored):
    out, result = explored
    page = (out / "explore.html").read_text()
    assert page.count("<tr>") == len(result["rows"]) + 1          # and the header
    for row in result["rows"]:
        assert row["candidate"] in page
    assert page.count("<svg") == sum(len(v) for v in result["pareto"].values())
    from PIL import Image
    image = Image.open(out / "pareto.png")
    image.load()
    assert image.size[0] >= 600 and image.size[1] >= 300
    assert np.asarray(image).std() > 0                             # not blank


def test_a_failing_candidate_is_recorded_and_the_others_finish(client, explored, tmp_path,
                                                               monkeypatch):
    _, result = explored
    slowest = max(r["cycles_per_frame"] for r in result["rows"])
    monkeypatch.setenv("EXPLORE_FAIL_CYCLES", str(slowest))
    lines = []
    failed = run(client, tmp_path, measure=FAKES + "failing", progress=lines.append)
    assert re.fullmatch(rf"  candidates: {failed['candidates']}/{failed['candidates']} done, "
                        r"1 failed, 0 running, 0 queued; synthesis pieces: 0/0 done",
                        lines[-2]), lines
    assert lines[-1].startswith(f"wrote {tmp_path}/: explore.json, pareto.png")
    bad = [r for r in failed["rows"] if r["status"] != "ok"]
    assert bad and all(r["cycles_per_frame"] == slowest for r in bad)
    assert all("Yosys ran out of memory (injected)" in r["reason"] for r in bad)
    assert len(failed["failed"]) == 1
    assert sum(r["status"] == "ok" for r in failed["rows"]) == len(failed["rows"]) - len(bad)
    assert not any(Path(tmp_path, "cache", f"{c}.json").exists() for c in failed["failed"])


def test_rerun_computes_only_what_the_cache_lacks(client, tmp_path, monkeypatch):
    count = tmp_path / "count.txt"
    monkeypatch.setenv("EXPLORE_COUNT", str(count))
    first = run(client, tmp_path / "out")
    measured = count.read_text().splitlines()
    assert len(measured) == 2 * first["candidates"]
    # an interrupted run: two candidates never finished
    lost = [row["candidate"] for row in first["rows"][::2][:2]]
    for candidate in lost:
        (tmp_path / "out" / "cache" / f"{candidate}.json").unlink()
    count.write_text("")
    second = run(client, tmp_path / "out")
    again = count.read_text().splitlines()
    assert sorted({line.split()[0] for line in again}) == sorted(lost)
    assert len(again) == 2 * len(lost)
    assert second["cached"] == first["candidates"] - len(lost)
    assert [r["measured"] for r in second["rows"]] == [r["measured"] for r in first["rows"]]


def test_a_killed_worker_is_retried_without_losing_or_duplicating(tmp_path, monkeypatch):
    marker = tmp_path / "kill.marker"
    marker.write_text("")
    monkeypatch.setenv("EXPLORE_KILL_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(HERE.parent.parent)]))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        result = run(client, tmp_path / "out", measure=FAKES + "dies_once")
    assert marker.with_suffix(".claimed").exists()                 # a worker did die
    candidates = [r["candidate"] for r in result["rows"]]
    assert not result["failed"]
    assert len(candidates) == 2 * len(set(candidates)) == 2 * result["candidates"]


def _fake_synthesize(seen):
    """A stand-in for boards.synth.synthesize: counts from the piece's text."""
    from boards import synth

    def fake(verilog, *, top, family="xcup", timeout=None, **options):
        text = Path(verilog).read_text() if isinstance(verilog, Path) else verilog
        modules = synth.verilog_modules(text)
        seen.append((top, modules))
        return synth.cell_counts({"LUT4": len(text) % 97, "FDRE": len(modules),
                                  "RAMB18E2": text.count("weights")})
    return fake


def test_pieces_are_tasks_of_their_own(client, tmp_path, monkeypatch):
    """Under the default measurement, xcup is synthesized in pieces, each a Dask task: every
    stage module in exactly one piece, the row the sum of the pieces, synth-xcup.json
    listing them, and the progress counting them."""
    from dask.distributed import get_task_stream
    from boards import explore as module
    from boards import synth
    seen = []
    monkeypatch.setattr(synth, "synthesize", _fake_synthesize(seen))
    monkeypatch.setattr(module, "PIECE_BYTES", 1)
    lines = []
    with get_task_stream(client) as stream:
        result = explore(MODEL, tmp_path, fps=(50_000, 400_000), points=2, targets=("xcup",),
                         client=client, progress=lines.append)
    keys = [str(task["key"]) for task in stream.data]
    pieces = [key for key in keys if key.startswith("hwgen-piece-")]
    assert len(pieces) == len(set(pieces)) == len(seen) >= 2 * result["candidates"]
    for row in result["rows"]:
        assert row["status"] == "ok", row.get("reason")
        directory = tmp_path / "candidates" / row["candidate"]
        written = json.loads((directory / "synth-xcup.json").read_text())
        stages = sorted(name for name in synth.verilog_modules((directory / "top.v").read_text())
                        if module._STAGE_MODULE.fullmatch(name))
        assert sorted(p for piece in written["pieces"] for p in piece["parts"]) == stages
        for key in ("luts", "ffs", "bram18"):
            assert row["measured"][key] == sum(piece[key] for piece in written["pieces"])
    assert re.fullmatch(rf"  candidates: {result['candidates']}/{result['candidates']} done, "
                        rf"0 failed, 0 running, 0 queued; synthesis pieces: {len(seen)}/"
                        rf"{len(seen)} done", lines[-2]), lines


def test_a_failing_piece_fails_its_candidate_only(client, tmp_path, monkeypatch):
    from boards import explore as module
    from boards import synth
    seen = []
    fake = _fake_synthesize(seen)

    def failing(verilog, *, top, **options):
        if "piece1.v" in str(verilog) and not any("boom" in line for line in seen):
            seen.append("boom")
            raise synth.SynthesisError("Yosys failed (exit code 1):\nERROR: injected")
        return fake(verilog, top=top, **options)

    monkeypatch.setattr(synth, "synthesize", failing)
    monkeypatch.setattr(module, "PIECE_BYTES", 1)
    result = explore(MODEL, tmp_path, fps=(50_000, 400_000), points=2, targets=("xcup",),
                     client=client, progress=None)
    bad = [row for row in result["rows"] if row["status"] != "ok"]
    assert len(bad) == 1 and bad[0]["reason"].startswith("xcup: Yosys failed (exit code 1): "
                                                         "ERROR: injected")
    assert len(result["rows"]) == result["candidates"] >= 2
    assert not (tmp_path / "cache" / f"{bad[0]['candidate']}.json").exists()


def test_a_candidate_past_its_time_limit_is_recorded(client, tmp_path, monkeypatch):
    """Real Yosys with a time limit it cannot meet: every candidate is a failed row that
    says so, nothing is cached, and the run finishes."""
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "hwgen-cache"))
    result = explore(MODEL, tmp_path / "out", fps=(50_000, 400_000), points=2,
                     targets=("xcup",), timeout=0.5, client=client, progress=None)
    assert len(result["rows"]) == result["candidates"] >= 2
    for row in result["rows"]:
        assert row["status"] == "failed"
        assert row["reason"] == "xcup: Yosys did not finish within timeout=0.5 s"
    assert sorted(result["failed"]) == sorted(r["candidate"] for r in result["rows"])
    assert not list((tmp_path / "out" / "cache").glob("*.json"))


def test_xcup_is_measured_in_pieces(explored, monkeypatch):
    """measure("xcup"): the stage modules in groups, every one exactly once, the pieces'
    counts added up and written to synth-xcup.json."""
    from boards import explore as module
    from boards import synth
    out, result = explored
    seen = []
    monkeypatch.setattr(synth, "synthesize", _fake_synthesize(seen))
    monkeypatch.setattr(module, "PIECE_BYTES", 1)
    directory = out / "candidates" / result["rows"][0]["candidate"]
    found = module.measure(directory, "xcup", 100.0)
    whole = synth.verilog_modules((directory / "top.v").read_text())
    stages = sorted(name for name in whole if module._STAGE_MODULE.fullmatch(name))
    assert len(stages) >= 9 and len(seen) >= 2 and seen[0][0] == "top"
    written = json.loads((directory / "synth-xcup.json").read_text())
    assert sorted(p for piece in written["pieces"] for p in piece["parts"]) == stages
    real = [sorted(n for n in modules if n in stages and not
                   modules[n].startswith("(* blackbox *)")) for _, modules in seen]
    assert sorted(n for names in real for n in names) == stages
    assert found["luts"] == sum(piece["luts"] for piece in written["pieces"])
    assert found["ffs"] == sum(len(modules) for _, modules in seen)
    assert found["bram18"] == sum(piece["bram18"] for piece in written["pieces"]) > 0
    assert (found["dsp"], found["fmax_mhz"]) == (0, None)


@pytest.mark.parametrize("options, pattern", [
    ({"fps": (5000, 100)}, r"fps range 5000:100 is empty: need 0 < MIN <= MAX"),
    ({"targets": "xcup,zynq"}, r"unknown target 'zynq'; valid targets: xcup, ulx3s-85f, "
                               r"icebreaker"),
    ({"fps": (1e12, 2e12)}, r"no legal folding reaches any rate in 1e\+12..2e\+12 frames/s at "
                            r"100 MHz \("),
])
def test_bad_input_is_one_line(client, tmp_path, options, pattern):
    with pytest.raises(ExploreError, match=pattern):
        run(client, tmp_path, **options)


def test_an_unreachable_scheduler_is_named(tmp_path, capsys):
    assert main(["explore", str(MODEL), "-o", str(tmp_path), "--fps", "4000:8000",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("hwgen: error: cannot reach the Dask scheduler at "
                            "tcp://127.0.0.1:1") and "\n" not in error


def test_without_the_extra_the_error_names_it(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ExploreError, match=r"hwgen explore needs matplotlib: pip install "
                                           r"'hwgen\[explore\]'"):
        explore(MODEL, tmp_path, progress=None)


@pytest.mark.slow
def test_real_yosys_measurement_on_a_small_range(client, tmp_path, monkeypatch):
    """The default measurement (Yosys synth_xilinx -family xcup, no recorded results) on
    three rates of the digits MLP, every synthesis run afresh (an empty synthesis cache)."""
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "hwgen-cache"))
    result = explore(MODEL, tmp_path / "out", fps=(48_828, 312_500), points=3,
                     targets=("xcup",), client=client, progress=None)
    rows = result["rows"]
    assert result["candidates"] >= 2 and len(rows) == result["candidates"]
    assert not result["failed"] and result["cached"] == 0
    for row in rows:
        assert row["status"] == "ok", row.get("reason")
        assert row["target"] == "xcup" and row["fmax_mhz"] is None
        assert row["measured"]["luts"] > 0 and row["measured"]["ffs"] > 0
    assert len(list((tmp_path / "hwgen-cache" / "synth").glob("*.json"))) == len(rows)
    assert result["pareto"]["xcup"] == by_hand_front(rows, "xcup")


@pytest.mark.slow
def test_real_pieces_add_up_to_the_whole_design(explored, client, tmp_path, monkeypatch):
    """Real Yosys on a compiled digits candidate, the stages forced into several pieces run
    as Dask tasks: the sum is the whole design's synthesis within 3% (LUT, FF; the pieces
    lose the few optimisations across the stages' ports), BRAM18 and DSP exact."""
    from boards import explore as module
    from boards.synth import synthesize
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "hwgen-cache"))
    monkeypatch.setattr(module, "PIECE_BYTES", 1)
    out, result = explored
    directory = out / "candidates" / result["rows"][0]["candidate"]
    split = client.submit(module.measure, directory, "xcup", 100.0, pure=False).result()
    pieces = json.loads((directory / "synth-xcup.json").read_text())["pieces"]
    whole = synthesize(directory / "top.v", top="top", family="xcup")
    assert len(pieces) >= 2
    assert (split["bram18"], split["dsp"]) == (whole["bram18"], whole["dsp"])
    for key in ("luts", "ffs"):
        assert abs(split[key] - whole[key]) <= 0.03 * whole[key], (key, split, whole)
