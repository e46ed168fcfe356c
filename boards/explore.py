# amaranth: UnusedElaboratable=no
"""Design-space exploration: frames/s against resources for many foldings, measured.

:func:`explore` enumerates the legal foldings of a model across a throughput range (one
:func:`graph.fold.fold` per target rate, log-spaced, duplicates dropped), keeps those the
estimates put on the Pareto front of frames/s against LUT-equivalents (plus a ``margin``), and
evaluates each on a Dask cluster (:mod:`dask.distributed`: a local one by default, or the
scheduler named). A task compiles each candidate (:func:`prepare_task`), then it is
measured for every target:

* ``xcup``: Yosys ``synth_xilinx -family xcup`` (:func:`boards.synth.synthesize`): LUT, FF,
  BRAM18, DSP; no Fmax (there is no open place-and-route for UltraScale+). The design is
  synthesized in out-of-context pieces, its stages in groups of similar size, each piece a
  task of its own (:func:`piece_task`), so one large candidate keeps every worker busy;
* an open board (``icebreaker``, ``ulx3s-85f``): Yosys and nextpnr behind the UART host link
  (:func:`boards.build.build`): utilization and Fmax, a task per board (:func:`target_task`).

This process hands the tasks out itself, one per worker thread at a time, the longest first
(:func:`_run`). Results are cached by the candidate's hash (model, folding, clock, targets,
hwgen's source version) under ``DIR/cache``: a rerun, or a run that was interrupted,
computes only what is missing. A candidate that fails (a compile error, Yosys failing or
passing its time limit) is recorded as failed, with the reason; the others go on. Dask
reruns a task whose worker died. ``DIR`` must be on a file system every worker sees.

Outputs in ``DIR``: ``explore.json`` (one row per candidate and target), ``pareto.png``,
``explore.html`` and ``folding-K.json`` for every measured Pareto point (ready for
``hwgen compile --folding``).
"""

import base64
import hashlib
import html
import io
import json
import math
import os
import re
import sys
import time
from pathlib import Path

from hwgen.resources import BRAM18_LUTS, DSP_LUT_EQUIVALENT

__all__ = ["explore", "enumerate_candidates", "pareto_front", "measure", "TARGETS",
           "ExploreError"]

#: Targets a candidate is measured for: the UltraScale+ synthesis family and the open boards.
TARGETS = ("xcup", "ulx3s-85f", "icebreaker")
#: Version of the cached rows (bump when a row's meaning changes).
_ROW_VERSION = 1


class ExploreError(ValueError):
    """Bad input to :func:`explore` (one line, naming the value)."""


def lut_equivalent(luts, bram18=0, dsp=0):
    """LUTs plus block RAM and DSP slices at the rule the datapath choice uses."""
    return luts + BRAM18_LUTS * bram18 + DSP_LUT_EQUIVALENT * dsp


# --- candidates ----------------------------------------------------------------------------

def _folding_of(network):
    """The folding JSON of a folded network: every layer's fold keys and values."""
    return {layer.name: {key: getattr(layer, key) for key in layer.fold_keys}
            for layer in network.layers if layer.fold_keys}


def enumerate_candidates(network, fps_min, fps_max, points, clock_mhz):
    """The distinct foldings for ``points`` log-spaced rates in ``[fps_min, fps_max]``, each
    with its estimate: a list of dicts ``target_fps``, ``folding``, ``cycles_per_frame``,
    ``est_fps``, ``est`` (``luts``, ``ffs``, ``bram18``, ``dsp``, ``lut_eq``), sorted by
    frames/s. Rates no folding reaches are skipped; none at all is an error."""
    from graph.compile import build_report
    from graph.elaborate import Accelerator
    from graph.errors import GraphError
    from graph.fold import fold
    rates = ([fps_min] if points == 1 or fps_min == fps_max else
             [fps_min * (fps_max / fps_min) ** (k / (points - 1)) for k in range(points)])
    seen, found, refused = set(), [], []
    for rate in rates:
        try:
            folded = fold(network, rate, clock_mhz)
        except GraphError as error:
            refused.append(str(error))
            continue
        folding = _folding_of(folded)
        key = json.dumps(folding, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        accelerator = Accelerator(folded)
        report = build_report(accelerator, clock_mhz)
        totals = report["totals"]
        est = {"luts": totals["luts"], "ffs": totals["ffs"], "bram18": totals["bram18"],
               "dsp": totals["dsp48e2"]}
        est["lut_eq"] = lut_equivalent(est["luts"], est["bram18"], est["dsp"])
        found.append({"target_fps": rate, "folding": folding,
                      "cycles_per_frame": report["cycles_per_frame"],
                      "est_fps": report["est_fps"], "est": est,
                      "layers": [{key: row.get(key) for key in
                                  ("name", "kind", "pe", "simd", "cycles", "luts", "bram18",
                                   "dsp48e2")} for row in report["layers"]]})
    if not found:
        reason = refused[0] if refused else "no rate in the range"
        raise ExploreError(f"no legal folding reaches any rate in {fps_min:g}..{fps_max:g} "
                           f"frames/s at {clock_mhz:g} MHz ({reason})")
    return sorted(found, key=lambda c: c["est_fps"])


def pareto_front(rows, fps="fps", cost="lut_eq"):
    """Indices of the rows no other row beats: none has at least the frames/s for at most
    the cost with one of them strictly better. Rows missing either value are left out."""
    usable = [(k, r[fps], r[cost]) for k, r in enumerate(rows)
              if r.get(fps) is not None and r.get(cost) is not None]
    front = []
    for k, f, c in usable:
        dominated = any((f2 >= f and c2 <= c) and (f2 > f or c2 < c) for _, f2, c2 in usable)
        if not dominated:
            front.append(k)
    return front


def _near_front(candidates, margin):
    """The candidates on the estimated front, and those within ``margin`` (relative) of the
    cheapest front point at least as fast."""
    rows = [{"fps": c["est_fps"], "lut_eq": c["est"]["lut_eq"]} for c in candidates]
    front = pareto_front(rows)
    keep = set(front)
    for k, row in enumerate(rows):
        faster = [rows[j]["lut_eq"] for j in front if rows[j]["fps"] >= row["fps"]]
        if faster and row["lut_eq"] <= (1 + margin) * min(faster):
            keep.add(k)
    return [candidates[k] for k in sorted(keep)]


# --- one task ------------------------------------------------------------------------------

def _source_version():
    """A hash of hwgen's own source files: a cached row is only reused by the same code."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in ("hwgen", "graph", "boards"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def candidate_hash(model_bytes, folding, clock_mhz, targets, version, measure):
    """The cache key of a candidate: the model's bytes, the folding, the clock, the targets,
    the source version and the measurement."""
    data = json.dumps({"model": hashlib.sha256(model_bytes).hexdigest(), "folding": folding,
                       "clock_mhz": clock_mhz, "targets": list(targets), "version": version,
                       "measure": measure, "rows": _ROW_VERSION}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:20]


#: Verilog bytes below which stages are synthesized together (a Yosys run starts in seconds).
PIECE_BYTES = 256 * 1024
_STAGE_MODULE = re.compile(r"top_s[0-9]+_\w+")     # graph.elaborate.stage_module("top", ...)
#: The default measurement: its ``xcup`` target is synthesized in pieces (:func:`xcup_pieces`).
DEFAULT_MEASURE = "boards.explore:measure"


def _xcup_groups(verilog):
    """The stage modules of ``verilog`` and their groups for :func:`xcup_pieces`."""
    from .synth import group_parts, verilog_modules
    modules = verilog_modules(verilog)
    parts = [name for name in modules if _STAGE_MODULE.fullmatch(name)]
    return parts, group_parts({name: len(modules[name]) for name in parts},
                              min_size=PIECE_BYTES)


def xcup_pieces(out_dir):
    """The out-of-context pieces of the accelerator compiled in ``out_dir`` for ``xcup``:
    the stage modules in groups of roughly equal Verilog size (:func:`boards.synth.group_parts`),
    as many as the largest stage allows but none much under :data:`PIECE_BYTES` (a small
    design is one piece: the whole design). Returns ``(parts, groups, pieces)``, ``pieces``
    as :func:`boards.synth.split_parts` gives them."""
    from .synth import split_parts
    verilog = (Path(out_dir) / "top.v").read_text()
    parts, groups = _xcup_groups(verilog)
    return parts, groups, split_parts(verilog, top="top", parts=parts, groups=groups)


def _xcup_found(out_dir, report):
    """The ``xcup`` measurement from the pieces' combined report
    (:func:`boards.synth.combine_pieces`); ``synth-xcup.json`` in ``out_dir`` (for
    ``hwgen report OUT --html``, next to the estimate) with every piece."""
    found = {"luts": report["luts"], "ffs": report["ffs"], "bram18": report["bram18"],
             "dsp": report["dsp"], "fmax_mhz": None}
    pieces = [dict({key: piece.get(key) for key in ("luts", "ffs", "bram18", "dsp",
                                                      "seconds")}, parts=piece["parts"])
              for piece in report["pieces"]]
    (Path(out_dir) / "synth-xcup.json").write_text(
        json.dumps(dict(found, pieces=pieces), indent=1) + "\n")
    return found


def measure(out_dir, target, clock_mhz, timeout=None):
    """Measured resources of the accelerator compiled in ``out_dir`` for ``target``: a dict
    ``luts``, ``ffs``, ``bram18``, ``dsp``, ``fmax_mhz`` (None for ``xcup``).

    ``xcup`` is Yosys ``synth_xilinx -family xcup`` on the pieces of :func:`xcup_pieces`, one
    after the other, added up (:func:`explore` runs them as tasks of their own instead); the
    pieces add up to within a few LUTs of the whole design (``benchmarks/explore.py``
    compares). The open boards are :func:`boards.build.build` behind the UART host link."""
    out_dir = Path(out_dir)
    if target == "xcup":
        from .synth import synthesize_parts
        verilog = (out_dir / "top.v").read_text()
        parts, groups = _xcup_groups(verilog)
        return _xcup_found(out_dir, synthesize_parts(
            verilog, top="top", parts=parts, groups=groups, family="xcup", timeout=timeout))
    from .build import build
    from .cli import _load
    from .targets import get_target
    board = get_target(target)
    report = build(_load(out_dir, board), board, out_dir / f"board-{target}",
                   log=lambda message: None)
    used = report["utilization"]
    return {"luts": used.get("luts", used.get("lcs")), "ffs": used.get("ffs"),
            "bram18": used.get("bram", 0), "dsp": used.get("dsp", 0),
            "fmax_mhz": report["fmax_mhz"]}


def _cached(spec):
    try:
        return json.loads(Path(spec["cache"]).read_text())
    except (OSError, ValueError):
        return None


def _compile(spec):
    """Compile the candidate into ``spec["dir"]``; None, or the failed rows."""
    from graph.compile import compile_model
    try:
        compile_model(spec["model"], spec["dir"], clock_mhz=spec["clock_mhz"],
                      folding=spec["folding"], target_fps=spec["target_fps"], progress=None)
    except Exception as error:                              # recorded, not raised
        return [dict(_row_base(spec, target), status="failed",
                     reason=f"compile: {_one_line(error)}") for target in spec["targets"]]
    return None


def _row(spec, target, found=None, error=None):
    """A target's row from its measurement, or failed with the error (an exception or its
    line)."""
    row = _row_base(spec, target)
    if error is not None:
        return dict(row, status="failed", reason=f"{target}: {_one_line(error)}")
    found = dict(found)
    fmax = found.pop("fmax_mhz")
    clock = fmax if fmax is not None else spec["clock_mhz"]
    found["lut_eq"] = lut_equivalent(found["luts"] or 0, found["bram18"] or 0,
                                     found["dsp"] or 0)
    return dict(row, status="ok", measured=found, fmax_mhz=fmax,
                fps=clock * 1e6 / spec["cycles_per_frame"])


def _store(spec, rows):
    """Cache the rows when every target succeeded (written whole, then renamed)."""
    if all(row["status"] == "ok" for row in rows):
        cache = Path(spec["cache"])
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rows, indent=1))
        os.replace(tmp, cache)
    return rows


def evaluate_candidate(spec):
    """Compile the candidate into ``spec["dir"]`` and measure it for every target, one after
    the other: a row per target; an error or a time limit becomes a failed row with its
    reason (the result is cached only when every target succeeded). :func:`explore` does
    the same work as separate Dask tasks."""
    cached = _cached(spec)
    if cached is not None:
        return cached
    failed = _compile(spec)
    if failed:
        return failed
    rows = []
    for target in spec["targets"]:
        try:
            found = _measurer(spec["measure"])(spec["dir"], target, spec["clock_mhz"],
                                               timeout=spec["timeout"])
        except Exception as error:                          # recorded, not raised
            rows.append(_row(spec, target, error=error))
            continue
        rows.append(_row(spec, target, found))
    return _store(spec, rows)


# --- the tasks :func:`explore` sends to Dask ----------------------------------------------

def prepare_task(spec):
    """Task: the cached rows (``{"rows": ...}``), or compile the candidate and list the work
    left: ``{"pieces": [(top, file, bytes)], "parts", "groups"}`` for ``xcup`` under the
    default measurement (the pieces written to ``DIR/candidates/<hash>/pieces``), the other
    targets being one task each. A failed compile is ``{"rows": failed rows}``."""
    cached = _cached(spec)
    if cached is not None:
        return {"rows": cached}
    failed = _compile(spec)
    if failed:
        return {"rows": failed}
    if "xcup" not in spec["targets"] or spec["measure"] != DEFAULT_MEASURE:
        return {"pieces": None}
    try:
        parts, groups, pieces = xcup_pieces(spec["dir"])
    except Exception as error:                              # recorded, not raised
        return {"rows": [dict(_row_base(spec, target), status="failed",
                              reason=f"xcup: {_one_line(error)}")
                         for target in spec["targets"]]}
    folder = Path(spec["dir"]) / "pieces"
    folder.mkdir(exist_ok=True)
    listed = []
    for k, (name, text) in enumerate(pieces):
        path = folder / f"piece{k}.v"
        path.write_text(text)
        listed.append((name, str(path), len(text)))
    return {"pieces": listed, "parts": parts, "groups": groups}


def piece_task(path, top, timeout):
    """Task: Yosys ``xcup`` on one piece file (:func:`boards.synth.synthesize`, cached):
    ``{"report"}`` or ``{"error"}`` (what it raised, in a line: a task that raises would be
    run again, and Yosys fails the same way twice)."""
    from .synth import synthesize
    try:
        return {"report": synthesize(Path(path), top=top, family="xcup", timeout=timeout)}
    except Exception as error:                              # recorded, not raised
        return {"error": _one_line(error)}


def target_task(spec, target):
    """Task: the measurement of one target of a compiled candidate (``{"found"}`` or
    ``{"error"}``: the first line of what it raised)."""
    try:
        return {"found": _measurer(spec["measure"])(spec["dir"], target, spec["clock_mhz"],
                                                    timeout=spec["timeout"])}
    except Exception as error:                              # recorded, not raised
        return {"error": _one_line(error)}


def _measurer(reference):
    """The measurement function named ``"module:function"`` (imported on the worker)."""
    import importlib
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _one_line(error):
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


def _row_base(spec, target):
    return {"candidate": spec["hash"], "target": target, "folding": spec["folding"],
            "target_fps": spec["target_fps"], "cycles_per_frame": spec["cycles_per_frame"],
            "est": spec["est"], "est_fps": spec["est_fps"], "clock_mhz": spec["clock_mhz"],
            "layers": spec["layers"]}


# --- the run -------------------------------------------------------------------------------

def _parse_targets(targets):
    names = [t.strip() for t in (targets.split(",") if isinstance(targets, str) else targets)]
    bad = [t for t in names if t not in TARGETS]
    if not names or bad:
        raise ExploreError(f"unknown target {bad[0] if bad else ''!r}; valid targets: "
                           f"{', '.join(TARGETS)}")
    return names


def _require_extras():
    """Dask and matplotlib, or an error that names the extra to install."""
    missing = []
    for module in ("dask.distributed", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module.split(".")[0])
    if missing:
        raise ExploreError(f"hwgen explore needs {' and '.join(missing)}: pip install "
                           f"'hwgen[explore]' (from a checkout: pip install -e '.[explore]')")


def _client(scheduler, workers):
    from dask.distributed import Client, LocalCluster
    if scheduler:
        try:
            return Client(scheduler, timeout="5s"), None
        except (OSError, TimeoutError) as error:
            raise ExploreError(f"cannot reach the Dask scheduler at {scheduler} "
                               f"({_one_line(error)})") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    return Client(cluster), cluster


def explore(model, out_dir, *, fps=None, points=8, targets=("xcup",), clock_mhz=100.0,
            scheduler=None, workers=2, margin=0.15, timeout=1800.0, client=None,
            measure="boards.explore:measure", progress=print):
    """Explore the foldings of ``model`` (see the module documentation).

    Parameters
    ----------
    model : str or os.PathLike
        The ``.onnx`` model.
    out_dir : str or os.PathLike
        Where the outputs, the candidates' compiles and the cache go.
    fps : (float, float), optional
        The throughput range; default: from 1/100 of the default folding's rate to 4 times it.
    points : int
        Rates tried across the range.
    targets : sequence of str or str
        Of :data:`TARGETS` (a string: comma-separated).
    clock_mhz : float
    scheduler : str, optional
        A running ``dask-scheduler`` (``tcp://HOST:8786``); default: a local cluster of
        ``workers`` processes.
    margin : float
        Candidates within this fraction of the estimated front are measured too.
    timeout : float or None
        Seconds per Yosys run or board build.
    client : dask.distributed.Client, optional
        An existing client (then ``scheduler`` and ``workers`` are unused).
    measure : str
        ``"module:function"`` of the measurement (:func:`measure`'s signature), imported on
        the workers: another flow (Vivado, recorded results) plugs in here.
    progress : callable or None

    Returns
    -------
    dict
        What ``explore.json`` holds: ``rows``, ``pareto`` (per target, the row indices),
        ``candidates``, ``failed``, ``cached``, ``seconds``.
    """
    from graph.errors import GraphError
    from graph.importer import import_model
    progress = progress or (lambda *args: None)
    start = time.monotonic()
    _require_extras()
    names = _parse_targets(targets)
    model = Path(model)
    if not model.is_file():
        raise ExploreError(f"model {model}: no such file")
    if not isinstance(points, int) or points < 1:
        raise ExploreError(f"points={points!r} must be an integer >= 1")
    if not (isinstance(workers, int) and workers >= 1):
        raise ExploreError(f"workers={workers!r} must be an integer >= 1")
    try:
        network = import_model(model)
    except GraphError as error:
        raise ExploreError(str(error)) from None
    if fps is None:
        from graph.fold import fold
        from graph.elaborate import Accelerator
        default = Accelerator(fold(network, None, clock_mhz)).fps(clock_mhz)
        fps = (default / 100, default * 4)
    fps_min, fps_max = (float(v) for v in fps)
    if not (0 < fps_min <= fps_max and math.isfinite(fps_max)):
        raise ExploreError(f"fps range {fps_min:g}:{fps_max:g} is empty: need 0 < MIN <= MAX")
    own = None
    if client is None:                  # connect first: an unreachable scheduler fails fast
        client, own = _client(scheduler, workers)
    try:
        return _explore(client, network, model, out_dir, fps_min, fps_max, points, names,
                        clock_mhz, margin, timeout, measure, progress, start)
    finally:
        if own is not None:
            client.close()
            own.close()


def _explore(client, network, model, out_dir, fps_min, fps_max, points, names, clock_mhz,
             margin, timeout, measure, progress, start):
    progress(f"enumerating foldings for {points} rates in {fps_min:,.0f}..{fps_max:,.0f} "
             f"frames/s at {clock_mhz:g} MHz")
    candidates = enumerate_candidates(network, fps_min, fps_max, points, clock_mhz)
    chosen = _near_front(candidates, margin)
    progress(f"  {len(candidates)} distinct foldings, {len(chosen)} on or near the estimated "
             f"front")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_bytes = model.read_bytes()
    version = _source_version()
    specs = []
    for candidate in chosen:
        digest = candidate_hash(model_bytes, candidate["folding"], clock_mhz, names, version,
                                measure)
        specs.append({"hash": digest, "model": str(model.resolve()),
                      "dir": str((out / "candidates" / digest).resolve()),
                      "cache": str((out / "cache" / f"{digest}.json").resolve()),
                      "targets": names, "clock_mhz": clock_mhz, "timeout": timeout,
                      "measure": measure,
                      **{key: candidate[key] for key in ("folding", "target_fps",
                                                         "cycles_per_frame", "est",
                                                         "est_fps", "layers")}})
    cached = sum(Path(spec["cache"]).is_file() for spec in specs)
    rows = _run(client, specs, progress)
    result = _summary(rows, specs, cached, time.monotonic() - start)
    _write_outputs(out, result)
    progress(f"wrote {out}/: explore.json, pareto.png, explore.html and "
             f"{len(result['folding_files'])} folding files ({result['seconds']:.1f} s)")
    return result


def _expected_work(spec):
    """A rough measure of a candidate's Yosys run, to start the longest first: the estimated
    LUTs (logic mapping) plus one per 25 cycles of its layers (the memories: the more folded,
    the deeper, and Yosys maps every word of their initial values)."""
    return spec["est"]["luts"] + sum(layer.get("cycles") or 0 for layer in spec["layers"]) / 25


def _run(client, specs, progress):
    """Evaluate every spec on the cluster: a list scheduler in this process, one task per
    worker thread in flight, so that a free thread always takes the next task (submitting
    everything at once lets Dask hand tasks out to the workers up front, and one could be
    left with two long ones while another idles). First every candidate's
    :func:`prepare_task` (compile, in :func:`_expected_work` order), then the rest, the
    longest first: the open boards' builds (:func:`target_task`), then the ``xcup`` pieces
    (:func:`piece_task`) by size. A candidate's rows are made and cached here once all of
    its tasks are done."""
    import heapq
    import itertools
    from dask.distributed import wait
    from .synth import combine_pieces
    queue, tie = [], itertools.count()

    def push(priority, kind, payload):
        heapq.heappush(queue, (priority, next(tie), kind, payload))

    for rank, spec in enumerate(sorted(specs, key=_expected_work, reverse=True)):
        push((0, rank), "prepare", spec)
    state = {spec["hash"]: {"left": None, "rows": {}, "reports": {}, "error": None}
             for spec in specs}
    owner, active, rows = {}, set(), []
    done = failed = pieces_done = pieces_all = begun = 0

    def submit(kind, payload):
        nonlocal begun
        spec = payload if kind == "prepare" else payload[0]
        if kind == "prepare":
            begun += 1
            future = client.submit(prepare_task, spec, key=f"hwgen-explore-{spec['hash']}",
                                   pure=False, retries=1)
        elif kind == "piece":
            _, index, (top, path, _size) = payload
            future = client.submit(piece_task, path, top, spec["timeout"], pure=False,
                                   key=f"hwgen-piece-{spec['hash']}-{index}", retries=1)
        else:
            future = client.submit(target_task, spec, payload[1], pure=False, retries=1,
                                   key=f"hwgen-target-{spec['hash']}-{payload[1]}")
        owner[future.key] = (kind, payload)
        active.add(future)

    def finish(spec, found):
        nonlocal done, failed
        rows.extend(found)
        done += 1
        failed += any(row["status"] != "ok" for row in found)

    def settle(spec):
        """The candidate's rows, once nothing of it is left to run."""
        entry = state[spec["hash"]]
        if entry["left"]:
            return
        if "xcup" in entry.get("parts_of", {}):
            parts, groups = entry["parts_of"]["xcup"]
            if entry["error"] is not None:
                entry["rows"]["xcup"] = _row(spec, "xcup", error=entry["error"])
            else:
                reports = [entry["reports"][k] for k in range(len(groups))]
                try:
                    found = _xcup_found(spec["dir"], combine_pieces(parts, groups, reports))
                    entry["rows"]["xcup"] = _row(spec, "xcup", found)
                except Exception as error:              # recorded, not raised
                    entry["rows"]["xcup"] = _row(spec, "xcup", error=error)
        finish(spec, _store(spec, [entry["rows"][target] for target in spec["targets"]]))

    def slots():
        return max(1, sum(client.nthreads().values()))

    shown, last = None, 0.0
    while queue or active:
        while queue and len(active) < slots():          # workers may have joined or left
            _, _, kind, payload = heapq.heappop(queue)
            submit(kind, payload)
        try:
            finished = wait(list(active), timeout=2, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            finished = ()
        for future in finished:
            active.discard(future)
            kind, payload = owner.pop(future.key)
            spec = payload if kind == "prepare" else payload[0]
            entry = state[spec["hash"]]
            try:
                result, error = future.result(), None
            except Exception as raised:                 # the task could not run at all
                result, error = None, raised
            future.release()
            if kind == "prepare":
                if error is not None:
                    finish(spec, [dict(_row_base(spec, t), status="failed",
                                       reason=f"task: {_one_line(error)}")
                                  for t in spec["targets"]])
                elif "rows" in result:
                    finish(spec, result["rows"])
                else:
                    others = list(spec["targets"])
                    if result["pieces"] is not None:
                        others.remove("xcup")
                        entry["parts_of"] = {"xcup": (result["parts"], result["groups"])}
                        for index, piece in enumerate(result["pieces"]):
                            push((2, -piece[2]), "piece", (spec, index, piece))
                        pieces_all += len(result["pieces"])
                    for target in others:
                        push((1, 0), "target", (spec, target))
                    entry["left"] = len(others) + len(result["pieces"] or ())
                    settle(spec)
                continue
            entry["left"] -= 1
            if kind == "piece":
                pieces_done += 1
                if error is None and "error" in result:
                    error = result["error"]
                if error is not None:
                    entry["error"] = entry["error"] or error
                else:
                    entry["reports"][payload[1]] = result["report"]
            else:
                target = payload[1]
                if error is not None:
                    entry["rows"][target] = dict(_row_base(spec, target), status="failed",
                                                 reason=f"task: {_one_line(error)}")
                elif "error" in result:
                    entry["rows"][target] = dict(_row_base(spec, target), status="failed",
                                                 reason=f"{target}: {result['error']}")
                else:
                    entry["rows"][target] = _row(spec, target, result["found"])
            settle(spec)
        line = (f"  candidates: {done}/{len(specs)} done, {failed} failed, {begun - done} "
                f"running, {len(specs) - begun} queued; synthesis pieces: {pieces_done}/"
                f"{pieces_all} done")
        now = time.monotonic()
        if line != shown and (now - last > 1 or not (queue or active)):
            progress(line)
            shown, last = line, now
    order = {spec["hash"]: k for k, spec in enumerate(specs)}
    return sorted(rows, key=lambda r: (order[r["candidate"]], r["target"]))


def _summary(rows, specs, cached, seconds):
    pareto = {}
    for target in sorted({row["target"] for row in rows}):
        indices = [k for k, row in enumerate(rows) if row["target"] == target
                   and row["status"] == "ok"]
        flat = [{"fps": rows[k]["fps"], "lut_eq": rows[k]["measured"]["lut_eq"]}
                for k in indices]
        pareto[target] = [indices[k] for k in pareto_front(flat)]
    return {"rows": rows, "pareto": pareto, "candidates": len(specs), "cached": cached,
            "failed": sorted({row["candidate"] for row in rows if row["status"] != "ok"}),
            "seconds": round(seconds, 2), "folding_files": []}


def _write_outputs(out, result):
    files = []
    for k, index in enumerate(sorted({i for indices in result["pareto"].values()
                                      for i in indices})):
        row = result["rows"][index]
        name = f"folding-{k}.json"
        (out / name).write_text(json.dumps(row["folding"], indent=1) + "\n")
        files.append({"file": name, "candidate": row["candidate"], "target": row["target"]})
    result["folding_files"] = files
    (out / "explore.json").write_text(json.dumps(result, indent=1) + "\n")
    png = _plot(result)
    (out / "pareto.png").write_bytes(png)
    (out / "explore.html").write_text(_page(result, png))


def _plot(result):
    """``pareto.png``: per target, frames/s against LUT-equivalents, estimates (hollow) and
    measurements (filled), the measured front joined."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    targets = sorted({row["target"] for row in result["rows"]}) or ["xcup"]
    figure, axes = pyplot.subplots(1, len(targets), figsize=(5 * len(targets), 4),
                                   squeeze=False)
    for axis, target in zip(axes[0], targets):
        rows = [row for row in result["rows"] if row["target"] == target]
        axis.scatter([r["est"]["lut_eq"] for r in rows], [r["est_fps"] for r in rows],
                     facecolors="none", edgecolors="tab:blue", label="estimate")
        ok = [r for r in rows if r["status"] == "ok"]
        axis.scatter([r["measured"]["lut_eq"] for r in ok], [r["fps"] for r in ok],
                     color="tab:orange", label="measured")
        front = sorted((result["rows"][k] for k in result["pareto"].get(target, [])),
                       key=lambda r: r["measured"]["lut_eq"])
        if front:
            axis.plot([r["measured"]["lut_eq"] for r in front], [r["fps"] for r in front],
                      color="tab:orange")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("LUT-equivalents (BRAM18 = 64, DSP = 100)")
        axis.set_ylabel("frames/s")
        axis.set_title(target)
        axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    pyplot.close(figure)
    return buffer.getvalue()


def _page(result, png):
    """``explore.html``: self-contained (the plot inlined), the table of every row and a
    per-layer bar chart of each measured Pareto point."""
    from graph.html import layer_bars
    head = ("candidate", "target", "status", "cycles/frame", "est fps", "est LUT-eq",
            "fps", "LUT-eq", "LUT", "FF", "BRAM18", "DSP", "Fmax MHz", "reason")
    lines = []
    for row in result["rows"]:
        m = row.get("measured") or {}
        cells = (row["candidate"], row["target"], row["status"], row["cycles_per_frame"],
                 f"{row['est_fps']:,.0f}", row["est"]["lut_eq"],
                 "" if row.get("fps") is None else f"{row['fps']:,.0f}", m.get("lut_eq", ""),
                 m.get("luts", ""), m.get("ffs", ""), m.get("bram18", ""), m.get("dsp", ""),
                 "" if row.get("fmax_mhz") is None else row["fmax_mhz"], row.get("reason", ""))
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) +
                     "</tr>")
    charts = []
    for target, indices in result["pareto"].items():
        for index in indices:
            row = result["rows"][index]
            charts.append(f"<h3>{html.escape(target)}: {row['fps']:,.0f} frames/s "
                          f"(candidate {row['candidate']})</h3>" + layer_bars(row["layers"]))
    image = base64.b64encode(png).decode()
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>hwgen explore</title>"
            "<style>body{font-family:sans-serif} td,th{padding:2px 6px;text-align:right}"
            "</style></head><body><h1>hwgen explore</h1>"
            f"<p>{result['candidates']} candidates, {len(result['failed'])} failed, "
            f"{result['cached']} from the cache, {result['seconds']:.1f} s</p>"
            f"<img alt='frames/s against LUT-equivalents' src='data:image/png;base64,{image}'>"
            "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" +
            "".join(lines) + "</table><h2>Pareto points per layer</h2>" + "".join(charts) +
            "</body></html>\n")


def main_explore(args):
    """``hwgen explore`` (see :mod:`boards.cli`)."""
    from hwgen.cli import print_error
    fps = None
    if args.fps:
        try:
            low, high = (float(v) for v in args.fps.split(":"))
        except ValueError:
            return print_error(f"--fps {args.fps!r}: expected MIN:MAX, e.g. 1000:100000")
        fps = (low, high)
    try:
        result = explore(args.model, args.out, fps=fps, points=args.points,
                         targets=args.targets, clock_mhz=args.clock_mhz,
                         scheduler=args.scheduler, workers=args.workers,
                         progress=lambda line: print(line, file=sys.stderr))
    except ExploreError as error:
        return print_error(error)
    for target, indices in result["pareto"].items():
        points = ", ".join(f"{result['rows'][k]['fps']:,.0f} fps / "
                           f"{result['rows'][k]['measured']['lut_eq']:,} LUT-eq"
                           for k in indices)
        print(f"{target}: Pareto front {points or '(none measured)'}")
    return 0
