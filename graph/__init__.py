"""ONNX/QONNX import, streamlining and lowering to hwgen's network IR.

``import_model(path_or_model)`` gives a :class:`Network` of integer layers that executes
in numpy bit-exactly with the hardware and with the ONNX reference (:func:`reference`).
``compile_model(path, out_dir)`` folds, elaborates and writes Verilog and reports
(:mod:`graph.compile`); ``load_accelerator(out_dir)`` rebuilds the top-level component.
"""

from .compile import compile_model, load_accelerator, load_network
from .elaborate import Accelerator, Pipeline
from .errors import GraphError
from .importer import import_model, load_model, reference
from .inputs import check_inputs
from .ir import (InputQuantizer, LabelSelectLayer, MVAULayer, Network, OutputSpec,
                 ThresholdLayer, shape_of)

__all__ = ["GraphError", "import_model", "load_model", "reference", "check_inputs",
           "quantize_input", "Network", "MVAULayer", "ThresholdLayer", "LabelSelectLayer",
           "InputQuantizer", "OutputSpec", "shape_of", "compile_model", "load_accelerator",
           "load_network", "Accelerator", "Pipeline"]


def quantize_input(network, x):
    """Encoded input stream ``(N, elements)`` for ONNX model inputs ``x`` (see
    :meth:`Network.quantize_input`)."""
    return network.quantize_input(x)
