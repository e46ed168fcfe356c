"""The compiled stream harness: a design behind the AXI4-Stream shell, driven by a C++
testbench that Verilator builds, at the speed of the design.

cocotb (:mod:`sim.stream_tb`) is the reference harness: it runs every kernel regression and
drives every clock edge from Python, at some 40,000 cycles per second. This harness does the
same job in C++ (:file:`sim/harness.cpp`), with the same cycle numbering, stalls and checks,
so that whole test sets run in minutes::

    from sim.harness import run_compiled_stream_test
    report = run_compiled_stream_test(kernel, x_beats, golden_beats, seed=3,
                                      valid_prob=0.7, ready_prob=0.6)
    report["cycles"], report["out_cycles"]      # numpy arrays of handshake cycles

or in two steps, for many runs of one design (what ``hwgen verify`` does)::

    build = build_harness(Path("top.v"), progress=print)
    report = run_harness(build, {"s_axis": words_in}, {"m_axis": words_out},
                         frame_lengths={"m_axis": 1}, seed=1, valid_prob=0.7, ready_prob=0.6,
                         max_cycles=10**7)

What it does, per run:

* holds ``ap_rst_n`` low for 4 cycles; cycle 0 is the first rising edge after its release;
  the producers and consumers drive from cycle 1 (as in :mod:`sim.stream_tb`);
* each input interface offers its next beat in a cycle with probability ``valid_prob`` and
  holds it until it is taken; each output is ready in a cycle with probability
  ``ready_prob``; every interface has its own seeded generator (a different one from
  cocotb's, so only runs without stalls have the same cycles in both harnesses);
* checks every output beat against the expected one and stops at the first mismatch, naming
  the beat, its frame and place in the frame, the cycle, and the expected and seen values;
  checks ``tlast`` on every beat; checks the stream rules on every output (``tvalid`` not
  withdrawn, ``tdata`` stable until taken); fails on output beats beyond the expected ones
  (watching ``drain_cycles`` more cycles, every output ready, once every input beat has
  been taken as well), and on a timeout after ``max_cycles`` (also when input beats are
  left untaken);
* writes the handshake cycles of every interface as binary files, which come back as numpy
  arrays: nothing is held per cycle or per beat in Python.

Files of a run (in its test directory): ``config.txt`` (``key=value`` lines), per interface
``PREFIX.in`` or ``PREFIX.expected`` (each beat as ``ceil(tdata width / 32)`` little-endian
32-bit words, least significant first: :func:`sim.streams.pack_words`), and, written by the
harness, ``result.json`` and ``PREFIX.cycles`` (int64 handshake cycles); then
``report.json``, the report of :mod:`sim.stream_tb` (the cycles listed up to
:data:`JSON_CYCLES_LIMIT` handshakes, else named by their files).

Builds are cached like the cocotb builds (:mod:`sim.cache`), keyed by the Verilog, the
harness source, Verilator's version and the flags. The harness's top module wraps the design
and passes ``ap_rst_n`` through a register (released an edge earlier, so the design sees the
same reset cycles): Verilator re-evaluates all logic that depends on a top-level input at
every ``eval()``, and through the synchronous reset that is most of the design, so this
halves the work per cycle (1.8x the cycles per second on an LFC-size MLP). Verilator
optimizes with ``-O3``, ``--x-assign fast`` and ``--x-initial fast``, splits large designs
(``--output-split``) and compiles with ``make -j`` on every core. The memory initialisers
Amaranth writes for weights and thresholds (``initial`` blocks of one assignment per word:
766,000 lines of CNV-W1A1's 21.7 MB) become ``$readmemh`` files (:func:`memories_to_files`),
so Verilator neither parses nor compiles them: CNV-W1A1's harness builds in 14 s instead of
105 s. The rest of the initialisation code is compiled without optimization
(``OPT_SLOW=-O0``).
"""

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from .cache import cached_build, default_cache_dir, new_test_dir
from .sources import design_verilog, module_ports
from .stream_io import default_max_cycles, per_port, work_cycles
from .toolchain import SimulatorNotFoundError, find_simulator, have_lz4_header

__all__ = ["build_harness", "run_harness", "run_compiled_stream_test", "HarnessBuild",
           "HarnessFailure", "HarnessError", "CompilerNotFoundError", "find_cxx",
           "stream_interfaces", "stream_words", "memories_to_files", "HARNESS_SOURCE"]

HARNESS_SOURCE = Path(__file__).with_name("harness.cpp")
_FORMAT = 2     # bump when the build changes in a way the key does not show
#: Verilator's options for a fast simulation (the build cache key includes them).
VERILATOR_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                   "-Wno-fatal", "-Wno-lint", "-Wno-style", "--output-split", "20000",
                   "--output-split-cfuncs", "20000")
#: C++ optimization: the per-cycle code fast, the initialisation code (memory contents) -O0.
MAKE_FLAGS = ("OPT_FAST=-O2", "OPT_SLOW=-O0", "OPT_GLOBAL=-O2")


class HarnessError(RuntimeError):
    """Building or running the compiled harness failed (not a check of the design)."""


class CompilerNotFoundError(SimulatorNotFoundError):
    """No C++ compiler for the compiled harness."""


class HarnessFailure(AssertionError):
    """A check of the compiled harness failed. ``report`` is the run's report, whose
    ``error`` is the message."""

    __test__ = False

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass(frozen=True)
class HarnessBuild:
    """A built harness: its executable and the design's stream interfaces."""
    executable: Path
    build_dir: Path
    toplevel: str
    inputs: tuple                   # interface prefixes, e.g. ("s_axis",)
    outputs: tuple                  # e.g. ("m_axis",)
    widths: dict                    # prefix -> tdata width in bits
    waves: "str | None"             # "fst", "vcd" or None: what the executable can trace
    build_seconds: "float | None"   # None when the cached build was reused

    def words(self, prefix):
        """32-bit words per beat of interface ``prefix``."""
        return max(1, math.ceil(self.widths[prefix] / 32))


def find_cxx():
    """The C++ compiler (``$CXX``, else ``c++``, ``g++`` or ``clang++`` on PATH), or raise
    :class:`CompilerNotFoundError` saying how to install one."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise CompilerNotFoundError(
        f"no C++ compiler found ({', '.join(names)} not on PATH): the compiled simulation "
        f"harness needs one; install it with `apt-get install g++` (Debian/Ubuntu), "
        f"`dnf install gcc-c++` (Fedora) or `xcode-select --install` (macOS), or use the "
        f"cocotb harness (hwgen verify --harness cocotb)")


def stream_interfaces(verilog_text, toplevel="top"):
    """``(inputs, outputs, widths)`` of a shell's top module: the prefixes of its
    ``PREFIX_tdata`` inputs (``s_axis``, ``s_axis_0``...) and outputs, and each ``tdata``
    width."""
    try:
        ports = module_ports(verilog_text, toplevel)
    except ValueError as error:
        raise HarnessError(str(error)) from None
    inputs, outputs, widths = [], [], {}
    for name, (direction, width) in ports.items():
        if name.endswith("_tdata"):
            prefix = name[:-len("_tdata")]
            widths[prefix] = width
            (inputs if direction == "input" else outputs).append(prefix)
    if not inputs or not outputs:
        raise HarnessError(f"module {toplevel} has no AXI4-Stream interfaces (*_tdata inputs "
                           f"and outputs): wrap the design in hwgen.export.axis.AXIStreamShell")
    for prefix in inputs + outputs:
        if not re.fullmatch(r"[sm]_axis(_\d+)?", prefix):
            raise HarnessError(f"module {toplevel}: interface {prefix}_tdata is not named as "
                               f"AXIStreamShell names them (s_axis, s_axis_0..., m_axis...)")
    return tuple(sorted(inputs)), tuple(sorted(outputs)), widths


#: The harness's top module: the design's top, its reset through a register (see
#: :func:`_reset_wrapper`).
HARNESS_TOP = "hwgen_harness_top"


_INIT_LINE = re.compile(r"\s*(\\\S+ |[A-Za-z_][\w$]*)\[(\d+)\] = (\d+)'h([0-9a-fA-F]+);\s*$")


def memories_to_files(text, folder):
    """``text`` with every memory initialiser Yosys writes (an ``initial begin`` block of
    ``mem[k] = W'hV;`` lines, one memory) replaced by ``$readmemh`` of a file written in
    ``folder``: Verilator then neither parses nor compiles the weights as C++ code, which is
    most of the build of a large network."""
    out, lines, n, count = [], text.split("\n"), 0, 0
    while n < len(lines):
        line = lines[n]
        if line.strip() != "initial begin":
            out.append(line)
            n += 1
            continue
        end = n + 1
        while end < len(lines) and lines[end].strip() != "end":
            end += 1
        matches = [_INIT_LINE.match(body) for body in lines[n + 1:end]]
        names = {m[1] for m in matches if m}
        if not matches or not all(matches) or len(names) != 1:
            out.extend(lines[n:end + 1])
            n = end + 1
            continue
        path = Path(folder) / f"memory{count}.hex"
        count += 1
        words, expect = [], None
        for m in matches:
            address = int(m[2])
            words.append(m[4] if address == expect else f"@{address:x} {m[4]}")
            expect = address + 1
        path.write_text("\n".join(words) + "\n")
        out.append(f'  initial $readmemh("{path}", {names.pop()});')
        n = end + 1
    return "\n".join(out)


def _ports_header(inputs, outputs):
    def listing(prefixes):
        return " ".join(f"X({p})" for p in prefixes)
    return ('#pragma once\n#include "Vharness.h"\n#define HWGEN_TOP Vharness\n'
            f"#define HWGEN_INPUTS(X) {listing(inputs)}\n"
            f"#define HWGEN_OUTPUTS(X) {listing(outputs)}\n")


def _reset_wrapper(toplevel, ports):
    """A top module around ``toplevel`` whose ``ap_rst_n`` goes through a register.

    Verilator evaluates the logic that depends on a top-level input at every ``eval()``, and
    through the synchronous reset that is nearly all of Amaranth's next-state logic; behind
    a register it is evaluated on clock edges only, about twice as fast. The harness
    releases ``ap_rst_n`` one edge earlier, so the design sees the same reset cycles."""
    decls = []
    for name, (direction, width) in ports.items():
        if name == "ap_rst_n":
            decls.append("  input ap_rst_n;")
            continue
        bits = f"[{width - 1}:0] " if width > 1 else ""
        decls.append(f"  {direction} {bits}{name};")
    connections = ",\n".join(f"    .{name}({'rst_n_q' if name == 'ap_rst_n' else name})"
                             for name in ports)
    return (f"module {HARNESS_TOP}({', '.join(ports)});\n" + "\n".join(decls) +
            "\n  reg rst_n_q = 1'b0;\n  always @(posedge ap_clk) rst_n_q <= ap_rst_n;\n"
            f"  {toplevel} hwgen_design (\n{connections}\n  );\nendmodule\n")


def _cxx_version(cxx):
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60)
        return out.stdout.splitlines()[0] if out.stdout else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _run_logged(cmd, cwd, env, log, timeout, on_line=None):
    """Run ``cmd``, appending its output to ``log``; ``on_line`` sees every line."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with open(log, "a") as f:
        f.write(f"$ {' '.join(map(str, cmd))}\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            for line in proc.stdout:
                f.write(line)
                if on_line is not None:
                    on_line(line)
                if deadline is not None and time.monotonic() > deadline:
                    proc.kill()
                    raise HarnessError(f"building the harness took more than {timeout:g} s "
                                       f"(log {log})")
        finally:
            proc.stdout.close()
            code = proc.wait()
    return code


def _tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build_harness(verilog, toplevel="top", *, waves=False, cache_dir=None, jobs=None,
                  progress=None, timeout=None):
    """Build (or reuse from the cache) the compiled harness of a design behind the shell.

    Parameters
    ----------
    verilog : str, os.PathLike or amaranth component
        Verilog text or file (top module ``toplevel``), or an :class:`AXIStreamShell`.
    waves : bool
        Build with wave tracing (FST when the lz4 headers are installed, VCD otherwise).
    jobs : int, optional
        Parallel C++ compiles (default: every core).
    progress : callable, optional
        Called with one line per build step and C++ file compiled.
    timeout : float, optional
        Wall-clock limit of the build in seconds.

    Raises
    ------
    CompilerNotFoundError
        No C++ compiler.
    HarnessError
        The design has no shell interfaces, or the build failed (with the end of its log).
    """
    text, toplevel = design_verilog(verilog, toplevel)
    inputs, outputs, widths = stream_interfaces(text, toplevel)
    ports = module_ports(text, toplevel)
    for name in ("ap_clk", "ap_rst_n"):
        if ports.get(name) != ("input", 1):
            raise HarnessError(f"module {toplevel} has no 1-bit input {name}: wrap the design "
                               f"in hwgen.export.axis.AXIStreamShell")
    cxx = find_cxx()
    toolchain = find_simulator("verilator")
    wave_format = None
    if waves:
        wave_format = "fst" if have_lz4_header() else "vcd"
    jobs = jobs or os.cpu_count() or 1
    cache_dir = Path(cache_dir or default_cache_dir()).expanduser().resolve()
    harness_text = HARNESS_SOURCE.read_text()
    trace_flags = {"fst": ["--trace-fst", "-CFLAGS", "-DHWGEN_TRACE_FST"],
                   "vcd": ["--trace", "-CFLAGS", "-DHWGEN_TRACE_VCD"], None: []}[wave_format]
    flags = [*VERILATOR_FLAGS, *trace_flags]
    key = {
        "kind": "compiled-harness", "format": _FORMAT, "verilator": toolchain.version,
        "executable": str(toolchain.executable), "cxx": [cxx, _cxx_version(cxx)],
        "toplevel": toplevel, "flags": flags, "make": list(MAKE_FLAGS),
        "harness": hashlib.sha256(harness_text.encode()).hexdigest(),
        "verilog": hashlib.sha256(text.encode()).hexdigest(),
    }
    say = progress or (lambda line: None)
    size = len(text.encode())

    def build(build_dir):
        src = build_dir / "src"
        src.mkdir()
        (src / f"{toplevel}.v").write_text(memories_to_files(text, src))
        (src / "harness.cpp").write_text(harness_text)
        (src / "hwgen_ports.h").write_text(_ports_header(inputs, outputs))
        (src / "hwgen_top.v").write_text(_reset_wrapper(toplevel, ports))
        log = build_dir / "build.log"
        env = toolchain.env()
        env["CXX"] = cxx
        t0 = time.monotonic()
        say(f"Verilator: translating {size / 1e6:.1f} MB of Verilog to C++")
        cmd = [str(toolchain.executable), "--cc", "--exe", "--top-module", HARNESS_TOP,
               "--prefix", "Vharness", "-Mdir", str(build_dir / "obj"), "-o",
               "hwgen_harness", *flags, "-CFLAGS", f"-I{src}", str(src / "hwgen_top.v"),
               str(src / f"{toplevel}.v"), str(src / "harness.cpp")]
        if _run_logged(cmd, build_dir, env, log, timeout) != 0:
            raise HarnessError(f"Verilator could not translate the design (log {log}):\n"
                               f"{_tail(log)}")
        obj = build_dir / "obj"
        sources = list(obj.glob("Vharness*.cpp"))
        say(f"Verilator: {time.monotonic() - t0:.1f} s; compiling the C++ ({len(sources)} "
            f"files of the design) with {jobs} jobs")
        done = [0]

        def on_line(line):
            if re.search(r"\s-c\s", line) and ".cpp" in line:
                done[0] += 1
                name = re.findall(r"(\S+\.cpp)", line)
                say(f"  C++ file {done[0]}: {Path(name[-1]).name if name else ''}")

        remaining = None if timeout is None else max(1.0, timeout - (time.monotonic() - t0))
        cmd = ["make", "-C", str(obj), "-f", "Vharness.mk", f"-j{jobs}", *MAKE_FLAGS,
               "hwgen_harness"]
        if _run_logged(cmd, build_dir, env, log, remaining, on_line) != 0:
            raise HarnessError(f"compiling the harness failed (log {log}):\n{_tail(log)}")
        say(f"harness built in {time.monotonic() - t0:.1f} s")

    build_dir, seconds = cached_build(cache_dir, f"harness-{toplevel}", key, build)
    return HarnessBuild(build_dir / "obj" / "hwgen_harness", build_dir, toplevel, inputs,
                        outputs, widths, wave_format, seconds)


def _write_words(path, words, nw, what):
    arr = np.ascontiguousarray(words, dtype="<u4")
    if arr.ndim == 1 and nw == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != nw:
        raise ValueError(f"{what}: words must have shape (beats, {nw}), not {arr.shape}")
    arr.tofile(path)
    return len(arr)


def run_harness(build, in_words, expected_words, *, frame_lengths, seed=0, valid_prob=1.0,
                ready_prob=1.0, max_cycles, drain_cycles=8, test_dir=None, waves=None,
                waves_from=0, timeout=None, progress=None, raise_on_failure=True):
    """Run a built harness once.

    Parameters
    ----------
    build : HarnessBuild
    in_words, expected_words : dict
        Interface prefix -> ``uint32`` array ``(beats, build.words(prefix))``
        (:func:`sim.streams.pack_words`), for every input and every output.
    frame_lengths : dict
        Output prefix -> beats per frame (for ``tlast``).
    seed, valid_prob, ready_prob
        The stalls; a probability may be one number or a dict per interface.
    max_cycles, drain_cycles : int
    test_dir : path, optional
        Where the run's files go (default: a new directory under the cache's ``runs``).
    waves : path, optional
        Write a wave file there (the build must have been made with ``waves=True``), from
        cycle ``waves_from`` on.
    progress : callable, optional
        Called about twice a second with ``(out_beats_done, out_beats_total, cycles,
        seconds)``.

    Returns
    -------
    dict
        ``passed``, ``error``, ``mismatch`` (the first wrong beat: ``stream``, ``beat``,
        ``cycle`` and the ``seen`` word in hex, or None), ``cycles`` (last output handshake
        + 1), ``latency``,
        ``simulated_cycles``, ``sim_seconds``, ``cycles_per_second``, ``seed`` and the
        probabilities; for a one-input one-output design ``in_beats``/``out_beats`` (counts),
        ``in_cycles``/``out_cycles`` (numpy int64 arrays), else the same keys as dicts per
        interface; ``test_dir``.

    Raises
    ------
    HarnessFailure
        A check failed (unless ``raise_on_failure=False``).
    HarnessError
        The harness could not run (bad files, a crash, or the ``timeout``).
    """
    valid = per_port("valid_prob", valid_prob, build.inputs)
    ready = per_port("ready_prob", ready_prob, build.outputs)
    if set(in_words) != set(build.inputs) or set(expected_words) != set(build.outputs):
        raise ValueError(f"the design's interfaces are inputs {list(build.inputs)} and outputs "
                         f"{list(build.outputs)}; given {sorted(in_words)} and "
                         f"{sorted(expected_words)}")
    if waves is not None and build.waves is None:
        raise ValueError("waves= needs a harness built with waves=True")
    test_dir = Path(test_dir) if test_dir is not None else new_test_dir("harness")
    test_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"dir={test_dir.resolve()}", f"seed={int(seed)}", f"max_cycles={int(max_cycles)}",
             f"drain_cycles={int(drain_cycles)}",
             f"progress_seconds={0.5 if progress else 0}"]
    for prefix in build.inputs:
        _write_words(test_dir / f"{prefix}.in", in_words[prefix], build.words(prefix),
                     f"input {prefix}")
        lines.append(f"valid_prob.{prefix}={valid[prefix]!r}")
    for prefix in build.outputs:
        _write_words(test_dir / f"{prefix}.expected", expected_words[prefix],
                     build.words(prefix), f"expected {prefix}")
        lines.append(f"ready_prob.{prefix}={ready[prefix]!r}")
        lines.append(f"frame_len.{prefix}={int(frame_lengths[prefix])}")
    if waves is not None:
        lines += [f"waves={Path(waves).resolve()}", f"waves_from={int(waves_from)}"]
    (test_dir / "config.txt").write_text("\n".join(lines) + "\n")
    result_file = test_dir / "result.json"
    result_file.unlink(missing_ok=True)
    log_file = test_dir / "harness.log"

    proc = subprocess.Popen([str(build.executable), str(test_dir / "config.txt")],
                            cwd=test_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    log_lines = []

    def reader():
        for line in proc.stdout:
            if line.startswith("hwgen-progress "):
                if progress is not None:
                    cycles, done, total, seconds = line.split()[1:]
                    progress(int(done), int(total), int(cycles), float(seconds))
            else:
                log_lines.append(line)
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HarnessError(f"the compiled harness ran for more than {timeout:g} s "
                           f"(test directory {test_dir})") from None
    finally:
        thread.join()
        log_file.write_text("".join(log_lines))
    if code not in (0, 1) or not result_file.is_file():
        tail = "".join(log_lines[-20:]).strip()
        raise HarnessError(f"the compiled harness stopped with status {code} "
                           f"(test directory {test_dir}): {tail or 'no output'}")
    result = json.loads(result_file.read_text())
    cycles = {prefix: np.fromfile(test_dir / f"{prefix}.cycles", dtype="<i8")
              for prefix in build.inputs + build.outputs}
    report = _report(build, result, cycles, seed=int(seed), valid=valid, ready=ready)
    report["test_dir"] = str(test_dir)
    report["waves"] = str(waves) if waves is not None else None
    _write_json_report(test_dir / "report.json", report, build)
    if not report["passed"] and raise_on_failure:
        raise HarnessFailure(report["error"], report)
    return report


#: Up to this many handshakes, ``report.json`` lists every handshake's cycle, as the cocotb
#: testbench's does; beyond, it names the binary files that hold them.
JSON_CYCLES_LIMIT = 1 << 20


def _write_json_report(path, report, build):
    """The run's report as :mod:`sim.stream_tb` writes it (:func:`sim.stream_io.make_report`
    keys), the handshake cycles listed or, for bulk runs, named by their files."""
    from .stream_io import write_report

    data = dict(report)
    total = sum(sum(map(len, data[key].values())) if isinstance(data[key], dict)
                else len(data[key]) for key in ("in_cycles", "out_cycles"))

    def listed(cycles, prefix):
        return cycles.tolist() if total <= JSON_CYCLES_LIMIT else \
            {"file": f"{prefix}.cycles", "dtype": "int64"}
    for key, prefixes in (("in_cycles", build.inputs), ("out_cycles", build.outputs)):
        value = data[key]
        data[key] = ({p: listed(c, p) for p, c in value.items()} if isinstance(value, dict)
                     else listed(value, prefixes[0]))
    write_report(path, data)


def _report(build, result, cycles, *, seed, valid, ready):
    ins = {p: cycles[p] for p in build.inputs}
    outs = {p: cycles[p] for p in build.outputs}
    last_out = max((int(c[-1]) for c in outs.values() if len(c)), default=None)
    first_in = min((int(c[0]) for c in ins.values() if len(c)), default=None)
    first_out = min((int(c[0]) for c in outs.values() if len(c)), default=None)
    seconds = result["sim_seconds"]
    report = {
        "passed": bool(result["passed"]), "error": result["error"],
        "mismatch": result.get("mismatch"),
        "cycles": last_out + 1 if last_out is not None else 0,
        "latency": first_out - first_in if first_in is not None and first_out is not None
        else None,
        "simulated_cycles": result["simulated_cycles"], "sim_seconds": seconds,
        "cycles_per_second": result["simulated_cycles"] / seconds if seconds > 0 else None,
        "seed": seed, "harness": "compiled",
    }
    single = len(ins) == 1 and len(outs) == 1
    if single:
        (ip, ic), (op, oc) = next(iter(ins.items())), next(iter(outs.items()))
        report.update(in_beats=len(ic), out_beats=len(oc), in_cycles=ic, out_cycles=oc,
                      valid_prob=valid[ip], ready_prob=ready[op],
                      expected_out_beats=result["streams"][op]["expected"])
    else:
        report.update(in_beats={p: len(c) for p, c in ins.items()},
                      out_beats={p: len(c) for p, c in outs.items()},
                      in_cycles=ins, out_cycles=outs, valid_prob=valid, ready_prob=ready,
                      expected_out_beats={p: result["streams"][p]["expected"] for p in outs})
    return report


def stream_words(kernel, build, beats, side):
    """The word files' contents of one side (``"i"`` or ``"o"``) of ``kernel``: interface
    prefix -> :func:`sim.streams.pack_words` array. ``beats`` is a ``(beats, lanes)``
    element array when that side has one stream, else a dict by kernel port."""
    from hwgen.export.axis import axis_prefix

    from .streams import pack_words, port_beats
    prefixes = build.inputs if side == "i" else build.outputs
    if not isinstance(beats, dict):
        if len(prefixes) != 1:
            raise ValueError(f"the kernel has several {side} streams: give a dict by port")
        beats = {side: beats}
    words = {}
    for port, values in beats.items():
        prefix = axis_prefix(port)
        if prefix not in prefixes:
            raise ValueError(f"the kernel has no stream port {port!r}")
        arr, w, signed = port_beats(kernel, port, values)
        words[prefix] = pack_words(arr, w, build.words(prefix), signed=signed)
    return words


def _output_ports(kernel):
    if hasattr(kernel, "outputs") and isinstance(kernel.outputs, dict):
        return list(kernel.outputs)
    if hasattr(kernel, "signature"):
        from hwgen.export.axis import stream_ports
        return stream_ports(kernel)[1]
    return []


def _frame_length(kernel, port, given):
    """Beats per frame of output ``port``: ``given`` (one number or a dict by port), else as
    :class:`AXIStreamShell` counts them."""
    from hwgen.export.axis import frame_length
    if isinstance(given, dict):
        return int(given[port])
    return int(given) if given is not None else int(frame_length(kernel, port))


def run_compiled_stream_test(kernel, in_beats, expected_beats, *, seed=0, valid_prob=0.8,
                             ready_prob=0.8, verilog=None, name="top", platform=None,
                             out_beats_per_frame=None, max_cycles=None, drain_cycles=8,
                             timeout=None, waves=None, waves_from=0, cache_dir=None,
                             test_dir=None, progress=None):
    """:func:`sim.streams.run_stream_test` on the compiled harness: a stream kernel's Verilog
    (or ``verilog`` written for it) behind the shell, against expected outputs.

    ``in_beats``/``expected_beats`` are ``(beats, lanes)`` element arrays for a kernel with
    ports ``i`` and ``o``, or dicts by kernel port (``{"i0": ..., "i1": ...}``) for one with
    several streams. ``waves``: a path to write an FST (or VCD) of the run to, from cycle
    ``waves_from`` on. The
    other parameters are those of :func:`sim.streams.run_stream_test`; ``progress`` is that
    of :func:`run_harness`.

    Returns the report of :func:`run_harness`; raises :class:`HarnessFailure` with the
    harness's message, for example ``output beat 3 (frame 1, beat 0 of the frame, cycle 9):
    expected 0x12, seen 0x13``.
    """
    from hwgen.export.axis import AXIStreamShell, axis_prefix
    from hwgen.export.verilog import component_verilog

    if verilog is None:
        shell = AXIStreamShell(kernel, out_beats_per_frame=out_beats_per_frame)
        verilog = component_verilog(shell, name=name, platform=platform)
        frames = {axis_prefix(p): n for p, n in shell.frame_lengths.items()}
    else:
        if platform is not None:
            raise ValueError("platform= only applies when the kernel's Verilog is exported "
                             "here, not with verilog=")
        frames = None
    build = build_harness(verilog, name, waves=waves is not None, cache_dir=cache_dir,
                          timeout=timeout)
    if frames is None:
        ports = {axis_prefix(p): p for p in _output_ports(kernel)} or {"m_axis": "o"}
        frames = {prefix: _frame_length(kernel, ports.get(prefix, "o"), out_beats_per_frame)
                  for prefix in build.outputs}

    in_words = stream_words(kernel, build, in_beats, "i")
    out_words = stream_words(kernel, build, expected_beats, "o")
    if max_cycles is None:
        slowest_v = min(valid_prob.values()) if isinstance(valid_prob, dict) else valid_prob
        slowest_r = min(ready_prob.values()) if isinstance(ready_prob, dict) else ready_prob
        n_out = max(len(w) for w in out_words.values())
        work = work_cycles(kernel, n_out) if len(out_words) == 1 else 0
        max_cycles = default_max_cycles(sum(map(len, in_words.values())), n_out, slowest_v,
                                        slowest_r, work)
    return run_harness(build, in_words, out_words, frame_lengths=frames, seed=seed,
                       valid_prob=valid_prob, ready_prob=ready_prob, max_cycles=max_cycles,
                       drain_cycles=drain_cycles, test_dir=test_dir, waves=waves,
                       waves_from=waves_from,
                       timeout=timeout, progress=progress)

