"""hwgen: RTL generators for quantized neural networks (Amaranth HDL components).

Kernels (each an ``amaranth.lib.wiring.Component``; see the module docstrings):

* :mod:`hwgen.compressor`: :class:`Popcount`, :class:`WeightedSum` (compressor trees);
* :mod:`hwgen.popcount`: their stream-kernel wrappers;
* :mod:`hwgen.threshold`: :class:`BinarySearchThreshold`, :class:`UnrolledThreshold`,
  :func:`Threshold`;
* :mod:`hwgen.dsp48e2`: :class:`DSP48E2`; :mod:`hwgen.packed_mac`: :class:`PackedMAC`,
  :class:`PackedDotProduct`, :func:`max_lanes`;
* :mod:`hwgen.mvau`: :class:`MVAU` (matrix-vector-activation unit, PE/SIMD folding), on
  :mod:`hwgen.dot_product`: :class:`FabricDotProduct` (XNOR/binary-weight/LUT datapaths);
* :mod:`hwgen.fifo`: :class:`StreamFIFO`; :mod:`hwgen.width`: :class:`WidthConverter`;
  :mod:`hwgen.labelselect`: :class:`LabelSelect` (top-k);
* :mod:`hwgen.axis`: the AXI4-Stream shell for standalone Verilog (:func:`kernel_verilog`).
"""

from .axis import AXIStreamShell
from .compressor import Popcount, Term, WeightedSum
from .dot_product import FabricDotProduct
from .dsp48e2 import DSP48E2
from .export import component_verilog, kernel_verilog
from .fifo import StreamFIFO
from .labelselect import LabelSelect
from .mvau import MVAU
from .streams import lanes_signature, shape_range
from .packed_mac import PackedDotProduct, PackedMAC, max_lanes
from .threshold import BinarySearchThreshold, Threshold, UnrolledThreshold
from .width import WidthConverter

__all__ = [
    "AXIStreamShell", "BinarySearchThreshold", "DSP48E2", "FabricDotProduct", "LabelSelect",
    "MVAU", "PackedDotProduct",
    "PackedMAC", "Popcount", "StreamFIFO", "Term", "Threshold", "UnrolledThreshold",
    "WeightedSum", "WidthConverter", "component_verilog", "kernel_verilog", "lanes_signature",
    "max_lanes", "shape_range",
]
