"""Constant tensors: initializers, and nodes on constants folded by reference execution.

A node whose inputs are all constants is run once through qonnx/onnx reference execution
(qonnx's ``execute_node``), so folding follows the reference exactly. Weights need integers:
a constant remembers its decomposition ``value == scale * q`` through ``Quant``,
``BipolarQuant``, ``DequantizeLinear`` and the shape nodes after them.
"""

from dataclasses import dataclass

import numpy as np
from onnx import numpy_helper

from ..errors import GraphError, node_error
from ..evaluate import NodeRunner
from ..ir import dtype_range, smallest_dtype
from .declared import annotation, attribute_value
from .registry import moves_elements_only

__all__ = ["Const", "Constants", "weight_dtype"]


@dataclass
class Const:
    """A constant tensor, with its integer decomposition ``value == scale * q`` when known.

    Parameters
    ----------
    value : numpy.ndarray
        The tensor.
    q, scale : numpy.ndarray, optional
        Integers and per-element scales with ``value == scale * q``.
    dtype : str, optional
        The datatype of ``q``.
    """
    value: np.ndarray
    q: np.ndarray = None
    scale: np.ndarray = None
    dtype: str = None


class Constants:
    """The constant tensors of a model by name: its initializers, then every folded node.

    Parameters
    ----------
    model : qonnx.core.modelwrapper.ModelWrapper
        The model.
    """

    def __init__(self, model):
        self._model = model
        self._consts = {}
        for init in model.graph.initializer:
            self._consts[init.name] = Const(numpy_helper.to_array(init))

    def __contains__(self, name):
        return name in self._consts

    def __getitem__(self, name):
        return self._consts[name]

    def get(self, name, default=None):
        """The :class:`Const` called ``name``, or ``default``."""
        return self._consts.get(name, default)

    def values(self, node):
        """Name -> array of the constant inputs of ``node``."""
        return {name: const.value for name, const in self._consts.items()
                if name in node.input}

    def parameter(self, node, index, what="parameter"):
        """The :class:`Const` at input ``index`` of ``node``; ``None`` when the input is
        absent.

        Raises
        ------
        GraphError
            If the input is not a constant.
        """
        name = node.input[index] if index < len(node.input) else ""
        if not name:
            return None
        if name not in self._consts:
            raise node_error(node, f"{what} '{name}' is not a constant",
                             f"a constant {what}")
        return self._consts[name]

    def fold(self, node):
        """Run ``node`` on its constant inputs and keep its output 0 as a constant.

        Raises
        ------
        GraphError
            If the reference cannot run it, or its quantizer parameters are bad.
        """
        const = Const(self._execute(node))
        if node.op_type in ("Quant", "BipolarQuant"):
            self._quantized(node, const)
        elif node.op_type == "DequantizeLinear":
            self._dequantized(node, const)
        elif moves_elements_only(node.op_type):
            self._moved(node, const)
        self._consts[node.output[0]] = const

    def _execute(self, node):
        from qonnx.core.onnx_exec import execute_node
        context = self.values(node)
        context[""] = None
        for name in node.output:
            context[name] = np.zeros(0)
        opset = {o.domain: o.version for o in self._model.model.opset_import}
        try:
            execute_node(node, context, self._model.graph, opset.get(node.domain, 1))
        except GraphError:
            raise
        except Exception as error:
            raise node_error(node, f"cannot evaluate it on its constant inputs "
                             f"({str(error).splitlines()[0][:120]})") from None
        return np.asarray(context[node.output[0]])

    def _quantized(self, node, const):
        self.check_quant(node)
        value = const.value
        scale = np.broadcast_to(np.asarray(self._consts[node.input[1]].value,
                                           dtype=np.float64), value.shape)
        if np.any(scale == 0):
            raise node_error(node, "has a zero scale", "positive scales")
        const.scale = scale
        const.q = np.round(value / scale).astype(np.int64)
        if node.op_type == "BipolarQuant":
            const.dtype = "BIPOLAR"
        else:
            bits = int(self._consts[node.input[3]].value)
            signed = attribute_value(node, "signed", 1)
            const.dtype = ("BIPOLAR" if bits == 1 and signed
                           else f"{'INT' if signed else 'UINT'}{bits}")

    def _dequantized(self, node, const):
        ints = np.asarray(self._consts[node.input[0]].value, dtype=np.int64)
        zero = self._consts.get(node.input[2]) if len(node.input) > 2 else None
        zero = 0 if zero is None else np.asarray(zero.value, dtype=np.int64)
        axis = attribute_value(node, "axis", 1)
        if np.ndim(zero) == 1 and ints.ndim > 1:
            shape = [1] * ints.ndim
            shape[axis] = -1
            zero = zero.reshape(shape)
        const.q = ints - zero
        with np.errstate(divide="ignore", invalid="ignore"):
            const.scale = np.where(const.q != 0,
                                   const.value / np.where(const.q == 0, 1, const.q), 0.0)

    def _moved(self, node, const):
        source = self._consts.get(node.input[0]) if node.input else None
        if source is None or source.q is None:
            return
        const.q = np.round(self._run_on(node, source.q.astype(np.float64))).astype(np.int64)
        const.scale = self._run_on(node, source.scale)
        const.dtype = source.dtype

    def _run_on(self, node, array):
        runner = NodeRunner(self._model, node, node.input[0], self.values(node))
        return runner(array)

    def check_quant(self, node):
        """Check the parameters of a Quant/BipolarQuant/Trunc node.

        Raises
        ------
        GraphError
            If a parameter is not a constant, or a Quant's bit width, zero point or scale
            is not an integer >= 1, an integer or positive.
        """
        for index in range(1, len(node.input)):
            self.parameter(node, index)
        if node.op_type != "Quant":
            return
        zero = np.asarray(self._consts[node.input[2]].value)
        bits = np.asarray(self._consts[node.input[3]].value)
        if bits.size != 1 or bits.ravel()[0] != np.round(bits.ravel()[0]) or bits < 1:
            raise node_error(node, f"has bit width {bits.ravel().tolist()}",
                             "one integer bit width >= 1")
        if np.any(zero != np.round(zero)):
            raise node_error(node, f"has a non-integer zero point "
                             f"{zero.ravel().tolist()[:4]}", "integer zero points")
        scale = np.asarray(self._consts[node.input[1]].value)
        if np.any(scale <= 0):
            raise node_error(node, "has a scale <= 0", "positive scales")

    def weights(self, node, const, name):
        """The integer decomposition of a weight constant.

        Parameters
        ----------
        node : onnx.NodeProto
            The node the weights belong to (named in errors).
        const : Const
            The weights.
        name : str
            Their tensor name (for the ``finn_datatype`` annotation).

        Returns
        -------
        tuple
            ``(q, scale, dtype)`` with ``value == scale * q``; ``dtype`` may be ``None``.

        Raises
        ------
        GraphError
            If the weights contradict their annotation or cannot be made integer.
        """
        value = np.asarray(const.value, dtype=np.float64)
        if const.q is not None:
            return const.q, const.scale, const.dtype
        if const.dtype is None:
            declared = annotation(self._model.graph, name)
            if declared is not None and declared not in ("FLOAT32", "FLOAT16"):
                return _annotated_weights(node, value, name, declared)
        if np.all(value == np.round(value)):
            return value.astype(np.int64), np.ones_like(value), None
        raise node_error(node, f"weights '{name}' cannot be made integer (no Quant, "
                         f"DequantizeLinear or finn_datatype annotation, and not integer "
                         f"values)", "integer weights, quantized weights (Quant, BipolarQuant, "
                         "DequantizeLinear) or finn_datatype-annotated weights")


def _annotated_weights(node, value, name, declared):
    low, high = dtype_range(declared)
    if (not np.all(value == np.round(value)) or value.min() < low or
            value.max() > high or (declared == "BIPOLAR" and np.any(value == 0))):
        raise node_error(node, f"weights '{name}' do not match their datatype "
                         f"annotation {declared}",
                         "weights whose values fit their finn_datatype")
    return value.astype(np.int64), np.ones_like(value), declared


def weight_dtype(weights, declared):
    """The datatype of integer ``weights``: ``declared`` when they fit it, else the smallest
    signed one that holds them (and -1)."""
    if declared is not None:
        low, high = dtype_range(declared)
        if weights.size == 0 or (weights.min() >= low and weights.max() <= high and
                                 (declared != "BIPOLAR" or np.all(weights != 0))):
            return declared
    if weights.size and np.all(np.abs(weights) == 1) and declared == "BIPOLAR":
        return "BIPOLAR"
    return smallest_dtype(min(int(weights.min(initial=0)), -1), int(weights.max(initial=0)))
