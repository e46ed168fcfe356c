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
from .kernels.labelselect import LabelSelectPlan
from .kernels.mvau import DATAPATHS, MEM_STYLES, MVAUPlan
from .kernels.popcount import PopcountStreamPlan
from .kernels.threshold import IMPLS, MEM_STYLES as THRESHOLD_MEM_STYLES, threshold_plan, \
    Threshold
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
        ``datapath``, ``mem_style`` that apply.
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
                Param("input_shape", "operand", "input elements: bipolar, s<bits> or u<bits> "
                      "(1 to 8 bits)", required=True, metavar="SHAPE"),
                Param("weight_shape", "operand", "weights: bipolar, s<bits> or u<bits> (1 to "
                      "8 bits)", required=True, metavar="SHAPE"),
                Param("thresholds", "npy", "fused activation thresholds, shape (MH, T) or "
                      "(1, T) (default: raw accumulators out)", metavar="T.npy"),
                Param("bias", "signed_int", "added to the threshold count", default=0),
                Param("vectors", "int", "vectors per frame", default=1),
                Param("datapath", "choice", default="auto", choices=DATAPATHS),
                Param("mem_style", "choice", "weight memory", default="auto",
                      choices=MEM_STYLES),
                _TARGET),
        derive=lambda params: _xilinx_primitives(_mvau_derive(params)),
        layer="graph.ir:MVAULayer", golden="sim.golden:mvau",
        report=lambda plan: {"shape": f"{plan.mw}x{plan.mh}", "pe": plan.pe,
                             "simd": plan.simd, "datapath": plan.datapath,
                             "mem_style": plan.mem_style}),
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
    # [vvau]
    # [padding and pooling]
    # [fork, join and channel-wise]
]}


def kernel(name):
    """The :class:`KernelEntry` named ``name``."""
    check_one_of("kernel", name, tuple(KERNELS))
    return KERNELS[name]
