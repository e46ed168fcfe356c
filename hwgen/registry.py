"""The kernel registry: the one place a kernel is registered.

One :class:`KernelEntry` per kernel names:

* its plan and its component (the two halves of the kernel contract, :mod:`hwgen.kernel`);
* its ``hwgen verilog NAME`` arguments (:class:`Param`: one command-line option per
  constructor parameter; arrays come from ``.npy`` files);
* its IR layer (``"graph.ir:MVAULayer"``) and its numpy golden model in :mod:`sim.golden`
  (``"sim.golden:mvau"``), named by ``module:attribute`` as entry points are, because
  :mod:`hwgen` imports nothing from the packages above it; :func:`resolve` imports them;
* its report row: the hardware columns of the per-layer report, from the plan.

Adding a kernel is one module (its plan and component) plus one entry in :data:`KERNELS`.
The command line (:mod:`hwgen.cli`), the elaborator, the folder and the reports find
everything they need here and in the kernel contract.
"""

import importlib
from dataclasses import dataclass

from .checks import check_one_of
from .kernels.addstreams import AddStreamsPlan
from .kernels.channelwise import MEM_STYLES as CHANNELWISE_MEM_STYLES, OPS as CHANNELWISE_OPS, \
    ChannelwiseOpPlan
from .kernels.labelselect import LabelSelectPlan
from .kernels.requantize import DATAPATHS as REQUANT_DATAPATHS, MEM_STYLES as REQUANT_MEM_STYLES, \
    TARGETS as REQUANT_TARGETS, RequantizePlan
from .kernels.dotunit import ACTIVATIONS
from .kernels.mvau import DATAPATHS, MEM_STYLES, MVAUPlan
from .kernels.popcount import PopcountStreamPlan
from .kernels.threshold import IMPLS, MEM_STYLES as THRESHOLD_MEM_STYLES, threshold_plan, \
    Threshold
from .kernels.vvau import VVAUPlan
from .kernels.swg import MEM_STYLES as SWG_MEM_STYLES, PARALLEL, SlidingWindowPlan
from .kernels import pad as pad_kernel, pool as pool_kernels
from .plumbing.concat import ConcatPlan
from .plumbing.duplicate import DuplicatePlan
from .plumbing.fifo import FIFO_MEM_STYLES, StreamFIFOPlan
from .plumbing.width import WidthConverterPlan

__all__ = ["Param", "KernelEntry", "KERNELS", "kernel", "resolve"]


@dataclass(frozen=True)
class Param:
    """One constructor parameter as a ``hwgen verilog`` option (``--input-shape`` for
    ``input_shape``).

    Attributes
    ----------
    name : str
        The constructor keyword.
    kind : str
        ``"int"`` (at least ``minimum``), ``"signed_int"`` (any integer), ``"ints"`` (``3``
        or per axis ``3,2``, each at least ``minimum``), ``"shape"``
        (``s8``/``u4``), ``"operand"`` (``bipolar`` or a shape), ``"npy"`` (an integer
        array from a ``.npy`` file), ``"choice"`` (one of ``choices``) or ``"flag"``.
    help : str
    required : bool
    default : object
    minimum : int
    choices : tuple
    metavar : str, optional
    """
    name: str
    kind: str
    help: str = ""
    required: bool = False
    default: object = None
    minimum: int = 1
    choices: tuple = ()
    metavar: str = None

    @property
    def option(self):
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class KernelEntry:
    """A registered kernel (see the module documentation).

    Attributes
    ----------
    name : str
        ``hwgen verilog NAME`` and the IR's layer kind.
    summary, description : str
        One line for ``hwgen verilog --help``, and the command's description.
    plan : callable
        The plan class (or a function returning one) taking the constructor's keywords.
    component : callable
        The component class (or factory) taking the same keywords.
    params : tuple of Param
        The ``hwgen verilog`` options.
    derive : callable, optional
        ``derive(params) -> params``: fills parameters that follow from others (an MVAU's
        ``mw``/``mh`` from its weights).
    report : callable
        ``report(plan) -> dict``: the report columns ``shape``, ``pe``, ``simd``,
        ``datapath``, ``mem_style``, ``activation`` that apply.
    layer, golden : str, optional
        ``"module:attribute"`` of the IR layer class and of the golden model.
    """
    name: str
    summary: str
    description: str
    plan: object
    component: object
    params: tuple
    report: object
    derive: object = None
    layer: str = None
    golden: str = None

    def build_params(self, values):
        """Constructor keywords from option values (``None`` for options not given)."""
        params = {name: value for name, value in values.items() if value is not None}
        return self.derive(params) if self.derive else params


def resolve(reference):
    """The object a ``"module:attribute"`` reference names (imported on demand)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _shape_row(shape):
    return {"shape": shape}


def _mvau_derive(params):
    weights = params["weights"]
    if weights.ndim != 2:
        raise ValueError(f"weights: expected a 2-D (MH, MW) array, not shape {weights.shape}")
    return {"mh": weights.shape[0], "mw": weights.shape[1], **params}


def _xilinx_primitives(params):
    """``--target xilinx`` means vendor cells as instances (``auto`` resolves them by the
    platform, and standalone Verilog has none)."""
    if params.get("target") == "xilinx":
        params = {**params, "primitives": "instance"}
    return params


_TARGET = Param("target", "choice", "generic logic, or Xilinx UltraScale+ primitives",
                default="generic", choices=("generic", "xilinx"))

def _dot_unit_params(rows, vectors):
    """The options the MVAU and the VVAU share (``rows``: what the thresholds' first axis
    counts; ``vectors``: what a vector is)."""
    return (Param("input_shape", "operand", "input elements: bipolar, s<bits> or u<bits> "
                  "(1 to 8 bits)", required=True, metavar="SHAPE"),
            Param("weight_shape", "operand", "weights: bipolar, s<bits> or u<bits> (1 to 8 "
                  "bits)", required=True, metavar="SHAPE"),
            Param("thresholds", "npy", f"fused activation thresholds, shape ({rows}, T) or "
                  "(1, T) (default: raw accumulators out)", metavar="T.npy"),
            Param("bias", "signed_int", "added to the threshold count", default=0),
            Param("vectors", "int", vectors, default=1),
            Param("datapath", "choice", default="auto", choices=DATAPATHS),
            Param("mem_style", "choice", "weight memory", default="auto", choices=MEM_STYLES),
            Param("activation", "choice", "fused unit for the thresholds: a thresholding "
                  "unit, or an exact multiply-shift (requantize)", default="auto",
                  choices=ACTIVATIONS),
            _TARGET)


KERNELS = {entry.name: entry for entry in [
    KernelEntry(
        name="mvau", summary="matrix-vector-activation unit (PE/SIMD folded)",
        description="y = act(W @ x) for an MH x MW weight matrix from a .npy file; SIMD inputs "
                    "per input beat, PE outputs per output beat; optional fused thresholds.",
        plan=MVAUPlan, component=MVAUPlan.component,
        params=(Param("weights", "npy", "integer weights, shape (MH, MW); -1/+1 for bipolar "
                      "weights", required=True, metavar="W.npy"),
                Param("pe", "int", "outputs per cycle (divides MH)", default=1),
                Param("simd", "int", "inputs per cycle (divides MW)", default=1),
                *_dot_unit_params("MH", "vectors per frame")),
        derive=lambda params: _xilinx_primitives(_mvau_derive(params)),
        layer="graph.ir:MVAULayer", golden="sim.golden:mvau",
        report=lambda plan: {"shape": f"{plan.mw}x{plan.mh}", "pe": plan.pe,
                             "simd": plan.simd, "datapath": plan.datapath,
                             "mem_style": plan.mem_style, "activation": plan.activation}),
    KernelEntry(
        name="threshold", summary="multi-threshold activation (binary search or unrolled)",
        description="y = bias + #{i : T[c][i] <= x}, PE channels per beat; thresholds from a "
                    ".npy file of shape (C, T) or (1, T).",
        plan=threshold_plan, component=Threshold,
        params=(Param("channels", "int", "channels C", required=True),
                Param("pe", "int", "channels per beat", default=1),
                Param("input_shape", "shape", "input element shape: s<bits> or u<bits>, "
                      "e.g. s16", required=True, metavar="SHAPE"),
                Param("thresholds", "npy", "integer thresholds, shape (C, T) or (1, T)",
                      required=True, metavar="T.npy"),
                Param("bias", "signed_int", "added to the count", default=0),
                Param("impl", "choice", default="auto", choices=IMPLS),
                Param("mem_style", "choice", default="auto", choices=THRESHOLD_MEM_STYLES),
                Param("runtime_writable", "flag", "add the threshold configuration port "
                      "(cfg_*)")),
        layer="graph.ir:ThresholdLayer", golden="sim.golden:threshold",
        report=lambda plan: {"shape": f"{plan.channels}", "pe": plan.pe}),
    KernelEntry(
        name="labelselect", summary="top-k label select",
        description="Indices of the K largest of CHANNELS values per vector, largest first, "
                    "ties to the lower index.",
        plan=LabelSelectPlan, component=LabelSelectPlan.component,
        params=(Param("channels", "int", required=True),
                Param("pe", "int", "values per beat", default=1),
                Param("input_shape", "shape", "value shape: s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("k", "int", default=1)),
        layer="graph.ir:LabelSelectLayer", golden="sim.golden:label_select",
        report=lambda plan: {"shape": f"{plan.channels} top-{plan.k}", "pe": plan.pe}),
    KernelEntry(
        name="popcount", summary="compressor-tree population count",
        description="Population count of N bits per beat (one N-lane 1-bit input beat, one "
                    "count per output beat).",
        plan=PopcountStreamPlan, component=PopcountStreamPlan.component,
        params=(Param("n", "int", "input bits per beat", required=True),
                Param("pipeline_every", "int", "a register stage after every K logic stages "
                      "(0: combinational)", default=0, minimum=0, metavar="K"),
                Param("target", "choice", "generic logic, or Xilinx UltraScale+ "
                      "LUT6_2/CARRY8 instances", default="generic",
                      choices=("generic", "xilinx"))),
        derive=_xilinx_primitives, golden="sim.golden:popcount",
        report=lambda plan: _shape_row(f"{plan.n} bits")),
    KernelEntry(
        name="fifo", summary="stream FIFO",
        description="A FIFO of DEPTH beats of LANES elements.",
        plan=StreamFIFOPlan, component=StreamFIFOPlan.component,
        params=(Param("elem_shape", "shape", "element shape: s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("lanes", "int", "elements per beat", default=1),
                Param("depth", "int", "beats (3 or more for one beat per cycle)",
                      required=True),
                Param("mem_style", "choice", default="auto", choices=FIFO_MEM_STYLES)),
        report=lambda plan: {"shape": f"{plan.depth} x {plan.lanes} lanes",
                             "mem_style": plan.mem_style}),
    KernelEntry(
        name="width", summary="stream width converter",
        description="Repacks IN lanes per beat into OUT lanes per beat, element order kept; "
                    "FRAME elements per frame (a multiple of both).",
        plan=WidthConverterPlan, component=WidthConverterPlan.component,
        params=(Param("elem_shape", "shape", "element shape: s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("in_lanes", "int", required=True),
                Param("out_lanes", "int", required=True),
                Param("elems_per_frame", "int", required=True)),
        golden="sim.golden:repack",
        report=lambda plan: _shape_row(f"{plan.in_lanes}->{plan.out_lanes} lanes")),
    # --- CNN kernels (issue 12); each block holds its kernels' entries -----------------------
    # [sliding window]
    KernelEntry(
        name="sliding_window", summary="sliding-window generator (im2col line buffer)",
        description="The K_h x K_w windows of an H x W x C NHWC map (stride, dilation, no "
                    "padding), in an MVAU's weight-column order (kernel row, kernel column, "
                    "channel), SIMD channels per beat, or a whole window row/window per beat "
                    "(--parallel), or in a VVAU's order (--depthwise, --window-simd).",
        plan=SlidingWindowPlan, component=SlidingWindowPlan.component,
        params=(Param("ifm", "ints", "input map H,W (one value: square)", required=True,
                      metavar="H,W"),
                Param("channels", "int", "channels C", required=True),
                Param("kernel", "ints", "window K_h,K_w (one value: square)", required=True,
                      metavar="KH,KW"),
                Param("stride", "ints", "per axis, or one value", default=1, metavar="SH,SW"),
                Param("dilation", "ints", "per axis, or one value", default=1,
                      metavar="DH,DW"),
                Param("simd", "int", "channels per beat (divides C)", default=1),
                Param("elem_shape", "shape", "element shape: s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("depthwise", "flag", "the VVAU order (per channel fold, window folds)"),
                Param("window_simd", "int", "window positions per beat (depthwise; divides "
                      "K_h*K_w)", default=1),
                Param("parallel", "choice", "one window position, window row or window per "
                      "beat", default="none", choices=PARALLEL),
                Param("mem_style", "choice", "line buffer", default="auto",
                      choices=SWG_MEM_STYLES)),
        layer="graph.maplayers:SlidingWindowLayer", golden="sim.golden:sliding_window",
        report=lambda plan: {"shape": "{}x{}x{} k{}x{}".format(*plan.ifm, plan.channels,
                                                               *plan.kernel),
                             "simd": plan.simd, "mem_style": plan.mem_style}),
    # [vvau]
    KernelEntry(
        name="vvau", summary="vector-vector-activation unit (depthwise convolution, PE/SIMD "
                             "folded)",
        description="Per channel, a K_h x K_w dot product with that channel's weights from a "
                    ".npy file, shape (C, K_h*K_w) or (C, K_h, K_w); input beats of PE channels "
                    "x SIMD window elements (the sliding window's depthwise order), PE outputs "
                    "per output beat; optional fused thresholds.",
        plan=VVAUPlan, component=VVAUPlan.component,
        params=(Param("weights", "npy", "integer weights, shape (C, K_h*K_w) or (C, K_h, K_w); "
                      "-1/+1 for bipolar weights", required=True, metavar="W.npy"),
                Param("kernel", "ints", "kernel size: K or K_h,K_w", required=True,
                      metavar="K"),
                Param("pe", "int", "channels per cycle (divides C)", default=1),
                Param("simd", "int", "window elements per cycle (divides K_h*K_w)", default=1),
                *_dot_unit_params("C", "output pixels per frame")),
        derive=lambda params: _xilinx_primitives({"channels": len(params["weights"]),
                                                  **params}),
        layer="graph.maplayers:VVAULayer", golden="sim.golden:vvau",
        report=lambda plan: {"shape": f"{plan.channels}ch {plan.kernel[0]}x{plan.kernel[1]}",
                             "pe": plan.pe, "simd": plan.simd, "datapath": plan.datapath,
                             "mem_style": plan.mem_style, "activation": plan.activation}),
    # [padding and pooling]
    KernelEntry(
        name="pad", summary="feature-map padding (a constant border)",
        description="Pads an H x W x C NHWC map, SIMD channels per beat, with a border of "
                    "VALUE: PADDING is top,left,bottom,right (ONNX's spatial pads order) or "
                    "one value for all sides.",
        plan=pad_kernel.PadPlan, component=pad_kernel.Pad,
        params=(Param("ifm", "ints", "input map H,W (one value: square)", required=True,
                      metavar="H,W"),
                Param("channels", "int", "channels C", required=True),
                Param("simd", "int", "channels per beat (divides C)", default=1),
                Param("padding", "ints", "border pixels top,left,bottom,right (one value: "
                      "all sides)", required=True, minimum=0, metavar="T,L,B,R"),
                Param("elem_shape", "operand", "element shape: bipolar, s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("value", "signed_int", "border value (-1 or 1 for bipolar elements)",
                      default=0)),
        layer="graph.maplayers:PadLayer", golden="sim.golden:pad",
        report=lambda plan: {"shape": "{}x{}x{} pad {},{},{},{}".format(
            *plan.ifm, plan.channels, *plan.padding), "simd": plan.simd}),
    *(KernelEntry(
        name=name, summary=summary,
        description=description + " NHWC in and out, PE channels per beat, one input beat "
                                  "per cycle.",
        plan=plan, component=plan.component,
        params=(Param("ifm", "ints", "input map H,W (one value: square)", required=True,
                      metavar="H,W"),
                Param("channels", "int", "channels C", required=True),
                Param("pe", "int", "channels per beat (divides C)", default=1),
                *((Param("kernel", "ints", "window K_h,K_w (one value: square)",
                         required=True, metavar="KH,KW"),
                   Param("stride", "ints", "per axis, or one value (default: the window)",
                         metavar="SH,SW")) if windowed else ()),
                Param("input_shape", "operand", "input elements: bipolar, s<bits> or u<bits> "
                      "(1 to 32 bits)", required=True, metavar="SHAPE")),
        golden=golden, layer=layer,
        report=lambda plan: {"shape": "{}x{}x{} k{}x{} s{}x{}".format(
            *plan.ifm, plan.channels, *plan.kernel, *plan.stride), "pe": plan.pe})
      for name, plan, windowed, golden, layer, summary, description in (
          ("maxpool", pool_kernels.MaxPoolPlan, True, "sim.golden:maxpool", "graph.maplayers:MaxPoolLayer",
           "max pooling",
           "The maximum of every K_h x K_w window at the stride, per channel (bipolar: the "
           "OR of the bits)."),
          ("avgpool", pool_kernels.AvgPoolPlan, True, "sim.golden:avgpool_sums", "graph.maplayers:AvgPoolLayer",
           "window sums (average pooling without the division)",
           "The exact sum of every K_h x K_w window at the stride, per channel; the output "
           "shape is the sum's range."),
          ("globalaccpool", pool_kernels.GlobalAccPoolPlan, False, "sim.golden:global_sum",
           "graph.maplayers:GlobalAccPoolLayer",
           "global sum pooling (global average pooling without the division)",
           "The exact sum of every channel over the whole map: one 1 x 1 x C result per "
           "frame."))),
    # [fork, join and channel-wise]
    KernelEntry(
        name="duplicate", summary="stream fan-out: every beat to each of N streams",
        description="Every beat of one feature-map stream (s_axis) to each of BRANCHES output "
                    "streams (m_axis_0, m_axis_1, ...), each at its own pace; CHANNELS / PE "
                    "beats per pixel, VECTORS pixels per frame.",
        plan=DuplicatePlan,
        component=DuplicatePlan.component,
        params=(Param("channels", "int", "channels per pixel", required=True),
                Param("pe", "int", "channels per beat (divides CHANNELS)", default=1),
                Param("elem_shape", "shape", "element shape: s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("branches", "int", "output streams", default=2, minimum=2),
                Param("vectors", "int", "pixels per frame", default=1)),
        golden="sim.golden:duplicate",
        report=lambda plan: {"shape": f"{plan.channels} ch x {plan.branches}", "pe": plan.pe}),
    KernelEntry(
        name="addstreams", summary="element-wise sum of two streams, with shifts",
        description="y = (a << SHIFT0) + (b << SHIFT1) per element of two feature-map streams "
                    "(s_axis_0, s_axis_1) into m_axis; the output shape is the exact range of "
                    "the sums.",
        plan=AddStreamsPlan,
        component=AddStreamsPlan.component,
        params=(Param("channels", "int", "channels per pixel", required=True),
                Param("pe", "int", "channels per beat (divides CHANNELS)", default=1),
                Param("input_shape0", "shape", "elements of the first input: s<bits> or "
                      "u<bits>", required=True, metavar="SHAPE"),
                Param("input_shape1", "shape", "elements of the second input", required=True,
                      metavar="SHAPE"),
                Param("shift0", "int", "left shift of the first input", default=0, minimum=0),
                Param("shift1", "int", "left shift of the second input", default=0,
                      minimum=0),
                Param("vectors", "int", "pixels per frame", default=1)),
        layer="graph.maplayers:AddLayer", golden="sim.golden:add_streams",
        report=lambda plan: {"shape": f"{plan.channels} ch", "pe": plan.pe}),
    KernelEntry(
        name="concat", summary="concatenation of streams along the channels",
        description="Per pixel, the CHANNELS[0] channels of s_axis_0, then the CHANNELS[1] of "
                    "s_axis_1, ... into m_axis; PE (dividing every CHANNELS[k]) channels per "
                    "beat on every stream.",
        plan=ConcatPlan,
        component=ConcatPlan.component,
        params=(Param("channels", "ints", "channels per pixel of each input, e.g. 16,32",
                      required=True, metavar="C0,C1,..."),
                Param("pe", "int", "channels per beat (divides every CHANNELS[k])", default=1),
                Param("elem_shapes", "shape", "element shape of every input: s<bits> or "
                      "u<bits> (the Python API takes one per input)", required=True,
                      metavar="SHAPE"),
                Param("vectors", "int", "pixels per frame", default=1)),
        layer="graph.maplayers:ConcatLayer", golden="sim.golden:concat",
        report=lambda plan: {"shape": "+".join(map(str, plan.channels)) + " ch",
                             "pe": plan.pe}),
    KernelEntry(
        name="channelwise", summary="per-channel add, multiply or compare with constants",
        description="y = x OP c[channel] (OP: add, mul, ge, gt, le, lt; compares give 0/1) "
                    "with constants from a .npy file of shape (C,) or (1,); PE channels per "
                    "beat.",
        plan=ChannelwiseOpPlan,
        component=ChannelwiseOpPlan.component,
        params=(Param("channels", "int", "channels per pixel C", required=True),
                Param("pe", "int", "channels per beat (divides C)", default=1),
                Param("input_shape", "shape", "input element shape: s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("op", "choice", required=True,
                      choices=CHANNELWISE_OPS),
                Param("constants", "npy", "integer constants, shape (C,) or (1,)",
                      required=True, metavar="C.npy"),
                Param("vectors", "int", "pixels per frame", default=1),
                Param("mem_style", "choice", "constants table", default="auto",
                      choices=CHANNELWISE_MEM_STYLES)),
        golden="sim.golden:channelwise",
        report=lambda plan: {"shape": f"{plan.channels} ch {plan.op}", "pe": plan.pe,
                             "mem_style": plan.mem_style}),
    KernelEntry(
        name="requantize", summary="exact multiply-shift requantization per channel",
        description="y = clamp(((x + BIAS) * MULTIPLIER + OFFSET) >> SHIFT, LOW, HIGH) + "
                    "ZERO_POINT per element (>>: floor of the division by 2**SHIFT), with "
                    "MULTIPLIER, OFFSET, SHIFT and BIAS from .npy files of shape (C,) or (1,) "
                    "(or 0-d); PE channels per beat, latency 4, one beat per cycle.",
        plan=RequantizePlan,
        component=RequantizePlan.component,
        params=(Param("channels", "int", "channels per pixel C", required=True),
                Param("pe", "int", "channels per beat (divides C)", default=1),
                Param("input_shape", "shape", "accumulator shape: s<bits> or u<bits>",
                      required=True, metavar="SHAPE"),
                Param("multiplier", "npy", "M >= 0 per channel: shape (C,), (1,) or 0-d",
                      required=True, metavar="M.npy"),
                Param("offset", "npy", "R per channel", metavar="R.npy"),
                Param("shift", "npy", "S per channel (0 to 62)", metavar="S.npy"),
                Param("low", "signed_int", "clamp low (before the zero point)",
                      required=True),
                Param("high", "signed_int", "clamp high (before the zero point)",
                      required=True),
                Param("bias", "npy", "b per channel, added before the product",
                      metavar="B.npy"),
                Param("zero_point", "signed_int", "added after the clamp", default=0),
                Param("exceptions", "npy", "corrections (x, delta), shape (C, E, 2) or "
                      "(1, E, 2); delta -1, 0 (unused) or +1", metavar="E.npy"),
                Param("vectors", "int", "pixels per frame", default=1),
                Param("datapath", "choice", "multiplier", default="auto",
                      choices=REQUANT_DATAPATHS),
                Param("mem_style", "choice", "constants table", default="auto",
                      choices=REQUANT_MEM_STYLES),
                Param("target", "choice", "xilinx: DSP48E2 slices", default="auto",
                      choices=REQUANT_TARGETS)),
        derive=_xilinx_primitives, golden="sim.golden:requantize",
        report=lambda plan: {"shape": f"{plan.channels} ch >> {max(plan.shift)}",
                             "pe": plan.pe, "datapath": plan.datapath,
                             "mem_style": plan.mem_style}),
]}


def kernel(name):
    """The :class:`KernelEntry` named ``name``."""
    check_one_of("kernel", name, tuple(KERNELS))
    return KERNELS[name]
