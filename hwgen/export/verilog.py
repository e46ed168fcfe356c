"""Verilog export of kernels through the AXI4-Stream shell."""

from amaranth.back import verilog

from .axis import AXIStreamShell

__all__ = ["kernel_verilog", "component_verilog"]


def component_verilog(component, *, name="top", platform=None):
    """Verilog text of an Amaranth component, without source-location attributes (so the
    output does not depend on where hwgen is installed)."""
    return verilog.convert(component, name=name, platform=platform, emit_src=False)


def kernel_verilog(kernel, *, name="top", platform=None, out_beats_per_frame=None):
    """Verilog text of a stream kernel wrapped in :class:`~hwgen.export.axis.AXIStreamShell`."""
    shell = AXIStreamShell(kernel, out_beats_per_frame=out_beats_per_frame)
    return component_verilog(shell, name=name, platform=platform)
