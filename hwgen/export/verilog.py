"""Verilog export of kernels through the AXI4-Stream shell."""

import re

from amaranth.back import rtlil

from .axis import AXIStreamShell

__all__ = ["kernel_verilog", "component_verilog", "component_rtlil", "rtlil_ports",
           "rtlil_to_verilog"]


def component_verilog(component, *, name="top", platform=None):
    """Verilog text of an Amaranth component, without source-location attributes (so the
    output does not depend on where hwgen is installed)."""
    return rtlil_to_verilog(component_rtlil(component, name=name, platform=platform))


def kernel_verilog(kernel, *, name="top", platform=None, out_beats_per_frame=None):
    """Verilog text of a stream kernel wrapped in :class:`~hwgen.export.axis.AXIStreamShell`."""
    shell = AXIStreamShell(kernel, out_beats_per_frame=out_beats_per_frame)
    return component_verilog(shell, name=name, platform=platform)


def component_rtlil(component, *, name="top", platform=None):
    """RTLIL text of an Amaranth component (no source locations): a module ``name`` and its
    submodules ``name.sub...``. Several of them go through Yosys at once with
    :func:`rtlil_to_verilog`, which saves a Yosys start per component."""
    return rtlil.convert(component, name=name, platform=platform, emit_src=False)


_RTLIL_MODULE = re.compile(r"^module \\(\S+)$", re.M)
_RTLIL_WIRE = re.compile(r"^\s*wire\s+(.*?)\\(\S+)\s*$", re.M)


def rtlil_ports(text, module):
    """``{port: (direction, width)}`` of module ``module`` in RTLIL ``text``."""
    starts = [(m.start(), m[1]) for m in _RTLIL_MODULE.finditer(text)]
    for index, (start, found) in enumerate(starts):
        if found != module:
            continue
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        ports = {}
        for options, wire in _RTLIL_WIRE.findall(text, start, end):
            tokens = options.split()
            for direction in ("input", "output", "inout"):
                if direction in tokens:
                    width = int(tokens[tokens.index("width") + 1]) if "width" in tokens else 1
                    ports[wire] = (direction, width)
        return ports
    raise ValueError(f"the RTLIL has no module {module!r}")


def rtlil_to_verilog(*texts):
    """Verilog of RTLIL ``texts`` (modules of several :func:`component_rtlil` calls, with
    distinct names), in one Yosys run, as Amaranth's own Verilog back end writes it."""
    from amaranth.back.verilog import _convert_rtlil_text
    return _convert_rtlil_text("\n".join(texts))
