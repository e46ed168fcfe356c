"""hwgen: RTL generators for quantized neural networks (Amaranth HDL components).

Layout (each subpackage one layer of the architecture):

* :mod:`hwgen.arith`: arithmetic cores without handshake: bit heaps, compressor trees
  (:class:`Popcount`, :class:`WeightedSum`), fabric dot products
  (:class:`FabricDotProduct`) and packed DSP48E2 MACs (:class:`PackedMAC`,
  :class:`PackedDotProduct`, :func:`max_lanes`);
* :mod:`hwgen.kernels`: stream kernels: :class:`MVAU`, :class:`VVAU` (depthwise),
  thresholding (:class:`BinarySearchThreshold`, :class:`UnrolledThreshold`,
  :func:`Threshold`), :class:`LabelSelect`, :class:`PopcountStream`, and the CNN kernels
  :class:`SlidingWindow`, :class:`Pad`, :class:`MaxPool`, :class:`AvgPool`,
  :class:`GlobalAccPool`, :class:`AddStreams`, :class:`ChannelwiseOp`, and
  :class:`Requantize` (exact multiply-shift requantization; constants from thresholds by
  :mod:`hwgen.requant`);
* :mod:`hwgen.plumbing`: :class:`StreamFIFO`, :class:`WidthConverter`, :class:`Duplicate`,
  :class:`Concat`;
* :mod:`hwgen.vendor`: Xilinx primitives (``LUT6_2``, ``CARRY8``, ``LUT6``,
  :class:`DSP48E2`);
* :mod:`hwgen.export`: the AXI4-Stream shell (:class:`AXIStreamShell`) and Verilog
  (:func:`kernel_verilog`, :func:`component_verilog`).

Shared by all of them: the kernel contract (:mod:`hwgen.kernel`: every kernel is a plan,
:class:`StreamKernel`, plus a component), :class:`Resources` and the memory cost models
(:mod:`hwgen.resources`), the kernel registry (:mod:`hwgen.registry`, the one place a
kernel is registered), the stall-pipeline control blocks (:mod:`hwgen.control`), the
memory builders (:mod:`hwgen.memory`), number shapes (:mod:`hwgen.shapes`) and parameter
checks (:mod:`hwgen.checks`).
"""

from .arith.dot_product import FabricDotProduct, FabricDotProductPlan
from .arith.packed_mac import (PackedDotProduct, PackedDotProductPlan, PackedMAC, PackedMACPlan,
                               max_lanes)
from .arith.popcount import Popcount, Term, WeightedSum
from .control import SkidBuffer, StallPipeline
from .export.axis import AXIStreamShell
from .export.verilog import component_verilog, kernel_verilog
from .kernel import Plan, PlannedComponent, StreamFormat, StreamKernel
from .kernels.addstreams import AddStreams, AddStreamsPlan
from .kernels.channelwise import ChannelwiseOp, ChannelwiseOpPlan
from .kernels.labelselect import LabelSelect, LabelSelectPlan
from .kernels.mvau import MVAU, MVAUPlan
from .kernels.pad import Pad, PadPlan
from .kernels.pool import (AvgPool, AvgPoolPlan, GlobalAccPool, GlobalAccPoolPlan, MaxPool,
                           MaxPoolPlan)
from .kernels.popcount import PopcountStream, PopcountStreamPlan
from .kernels.requantize import Requantize, RequantizePlan
from .kernels.swg import SlidingWindow, SlidingWindowPlan
from .kernels.threshold import (BinarySearchThreshold, BinarySearchThresholdPlan, Threshold,
                                UnrolledThreshold, UnrolledThresholdPlan, threshold_plan)
from .kernels.vvau import VVAU, VVAUPlan
from .plumbing.concat import Concat, ConcatPlan
from .plumbing.duplicate import Duplicate, DuplicatePlan
from .plumbing.fifo import StreamFIFO, StreamFIFOPlan
from .plumbing.width import WidthConverter, WidthConverterPlan
from .registry import KERNELS
from .resources import Resources
from .shapes import BIPOLAR, shape_range
from .streams import lanes_signature
from .vendor.xilinx.dsp48e2 import DSP48E2

__all__ = [
    # arithmetic cores
    "FabricDotProduct", "FabricDotProductPlan", "PackedDotProduct", "PackedDotProductPlan",
    "PackedMAC", "PackedMACPlan", "max_lanes", "Popcount", "Term", "WeightedSum",
    # stream kernels and their plans
    "MVAU", "MVAUPlan", "BinarySearchThreshold", "BinarySearchThresholdPlan", "Threshold",
    "UnrolledThreshold", "UnrolledThresholdPlan", "threshold_plan", "LabelSelect",
    "LabelSelectPlan", "PopcountStream", "PopcountStreamPlan", "VVAU", "VVAUPlan",
    "SlidingWindow", "SlidingWindowPlan", "Pad", "PadPlan", "MaxPool", "MaxPoolPlan", "AvgPool",
    "AvgPoolPlan", "GlobalAccPool", "GlobalAccPoolPlan", "AddStreams", "AddStreamsPlan",
    "ChannelwiseOp", "ChannelwiseOpPlan", "Requantize", "RequantizePlan",
    # plumbing
    "StreamFIFO", "StreamFIFOPlan", "WidthConverter", "WidthConverterPlan", "Duplicate",
    "DuplicatePlan", "Concat", "ConcatPlan", "SkidBuffer",
    "StallPipeline",
    # vendor primitives and export
    "DSP48E2", "AXIStreamShell", "component_verilog", "kernel_verilog",
    # the contract
    "Plan", "PlannedComponent", "StreamKernel", "StreamFormat", "Resources", "KERNELS",
    "BIPOLAR", "shape_range", "lanes_signature",
]
