"""hwgen: RTL generators for quantized neural networks (Amaranth HDL components).

Kernels (each an ``amaranth.lib.wiring.Component``; see the module docstrings):

* :mod:`hwgen.arith.compressor`: :class:`Popcount`, :class:`WeightedSum` (compressor trees);
* :mod:`hwgen.kernels.popcount`: their stream-kernel wrappers;
* :mod:`hwgen.kernels.threshold`: :class:`BinarySearchThreshold`, :class:`UnrolledThreshold`,
  :func:`Threshold`;
* :mod:`hwgen.vendor.xilinx.dsp48e2`: :class:`DSP48E2`; :mod:`hwgen.arith.packed_mac`: :class:`PackedMAC`,
  :class:`PackedDotProduct`, :func:`max_lanes`;
* :mod:`hwgen.kernels.mvau`: :class:`MVAU` (matrix-vector-activation unit, PE/SIMD folding), on
  :mod:`hwgen.arith.dot_product`: :class:`FabricDotProduct` (XNOR/binary-weight/LUT datapaths);
* :mod:`hwgen.plumbing.fifo`: :class:`StreamFIFO`; :mod:`hwgen.plumbing.width`: :class:`WidthConverter`;
  :mod:`hwgen.kernels.labelselect`: :class:`LabelSelect` (top-k);
* :mod:`hwgen.export.axis`: the AXI4-Stream shell for standalone Verilog (:func:`kernel_verilog`).
"""

from .export.axis import AXIStreamShell
from .arith.popcount import Popcount, Term, WeightedSum
from .arith.dot_product import FabricDotProduct
from .vendor.xilinx.dsp48e2 import DSP48E2
from .export.verilog import component_verilog, kernel_verilog
from .plumbing.fifo import StreamFIFO
from .kernels.labelselect import LabelSelect
from .kernels.mvau import MVAU
from .streams import lanes_signature
from .shapes import BIPOLAR, shape_range
from .arith.packed_mac import PackedDotProduct, PackedMAC, max_lanes
from .kernels.threshold import BinarySearchThreshold, Threshold, UnrolledThreshold
from .plumbing.width import WidthConverter

__all__ = [
    "AXIStreamShell", "BinarySearchThreshold", "DSP48E2", "FabricDotProduct", "LabelSelect",
    "MVAU", "PackedDotProduct",
    "PackedMAC", "Popcount", "StreamFIFO", "Term", "Threshold", "UnrolledThreshold",
    "WeightedSum", "WidthConverter", "component_verilog", "kernel_verilog", "lanes_signature",
    "max_lanes", "shape_range",
]
