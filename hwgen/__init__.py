"""hwgen: RTL generators for quantized neural networks (Amaranth HDL components)."""

from .axis import AXIStreamShell
from .export import component_verilog, kernel_verilog
from .streams import lanes_signature, shape_range

__all__ = ["AXIStreamShell", "component_verilog", "kernel_verilog", "lanes_signature", "shape_range"]
