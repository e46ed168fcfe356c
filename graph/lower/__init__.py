"""Streamline an ONNX/QONNX model to integer layers and lower it to the IR.

One pass over the nodes in order keeps a *pending* tensor: the activation that the next
node consumes, described as "these element-wise reference operations applied to an
integer". The integer is one of

- ``acc``: an MVAU accumulator ``W_int @ x`` of the previous stream, with the float value
  ``A * acc + B`` that the ONNX ``MatMul``/``Gemm`` produces (``A``, ``B`` per row);
- ``stream``: an element of the previous layer's output stream (or an integer network
  input);
- ``input``: a float32 network input, to be quantized on the host.

Element-wise nodes (Mul, Add, BatchNormalization, Relu, Quant, MultiThreshold, ...) are
appended to the pending chain as :class:`~graph.evaluate.NodeRunner` calls; shape nodes
(Reshape, Flatten, Transpose, ...) only permute an index map from the ONNX tensor's
elements to stream elements. When a ``MatMul`` or the graph's end needs the pending
tensor as integers, it is *materialized*: the chain's steps are found by bisection
(:func:`graph.levels.staircase`) using the reference's own float32 arithmetic, and become
the thresholds of the MVAU (or of a standalone threshold layer, or of the host's input
quantizer). Scales, biases, batch-norm, sign and ReLU thereby end up in integer weights
and thresholds, and every quantized activation equals the reference's.

A ``TopK``/``ArgMax`` needs one increasing function of the integers for all classes. A final
raw ``MatMul`` (no activation) whose per-class bias is an integer multiple of the
accumulator's scale, ``a * acc_c + b_c`` with ``d_c = (b_c - b_0) / a`` integers, gets
``d_c`` as the MVAU's offsets (``a * (acc_c + d_c) + b_0``); other per-class offsets are
rejected.

Exactness: the element-wise nodes after a MatMul run on the very arithmetic of the
reference, so the IR reproduces its decisions whenever the MatMul output itself is exact in
float32 -- power-of-two scales (as FINN and Brevitas' POWER_OF_TWO scaling produce) and
integer/bipolar FINN-ONNX weights. With arbitrary float scales the IR follows exact
arithmetic at the MatMul, and can differ from the reference only where the exact value is a
rounding tie that the reference's own float32 summation error decides.

Layout: :mod:`~graph.lower.walker` (the state and the pass over the nodes),
:mod:`~graph.lower.constants` (constant folding by reference execution, integer weights),
:mod:`~graph.lower.pending` (the pending chain and streams), :mod:`~graph.lower.thresholds`
(materialization into thresholds and MVAUs), and :mod:`~graph.lower.handlers`: one handler
per ONNX op type in the registry of :mod:`~graph.lower.registry`, filled by the
``@handler("MatMul", ...)`` decorator. The walker dispatches only through the registry, and
the supported ops named in errors are the registry's.
"""

from .registry import HANDLERS, handler
from .walker import lower

__all__ = ["lower", "handler", "HANDLERS"]
