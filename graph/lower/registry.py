"""The op-handler registry: one entry per ONNX op type that the lowering supports.

A handler is a function ``(lowering, node)`` registered with :func:`handler`; the walker
(:mod:`graph.lower.walker`) calls it for every node on the chain whose op type it names,
after checking that the node takes the pending activation as its one dynamic input. The
list of supported ops in error messages is the registry's, in registration order.
"""

from dataclasses import dataclass

__all__ = ["Handler", "HANDLERS", "JOINS", "handler", "join", "supported_text",
           "folds_constants", "moves_elements_only"]


@dataclass(frozen=True)
class Handler:
    """How the lowering treats one ONNX op type.

    Parameters
    ----------
    run : callable
        ``run(lowering, node)``: lowers ``node``, updating ``lowering.pending``.
    fold : bool
        Whether a node whose inputs are all constants is folded by reference execution
        instead of being handled.
    layout_only : bool
        Whether the op only moves tensor elements (shape nodes): constants keep their
        integer decomposition through it.
    """
    run: object
    fold: bool = True
    layout_only: bool = False


HANDLERS = {}  # ONNX op type -> Handler
JOINS = {}  # ONNX op type -> function(lowering, node, inputs) for nodes of several activations


def handler(*op_types, fold=True, layout_only=False):
    """Decorator registering a function as the handler of ``op_types``.

    Parameters
    ----------
    *op_types : str
        The ONNX op types the function lowers.
    fold, layout_only : bool
        See :class:`Handler`.

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.

    Raises
    ------
    ValueError
        If an op type already has a handler.
    """
    def register(function):
        for op_type in op_types:
            if op_type in HANDLERS:
                raise ValueError(f"op type {op_type} already has a handler "
                                 f"({HANDLERS[op_type].run.__qualname__})")
            HANDLERS[op_type] = Handler(function, fold, layout_only)
        return function
    return register


def join(*op_types):
    """Decorator registering ``function(lowering, node, inputs)`` as the lowering of
    ``op_types`` when they take two or more activations (``inputs``: a
    :class:`~graph.lower.pending.Pending` per activation input, in the node's order), for
    example a residual ``Add``."""
    def register(function):
        for op_type in op_types:
            if op_type in JOINS:
                raise ValueError(f"op type {op_type} already has a join handler")
            JOINS[op_type] = function
        return function
    return register


def supported_text():
    """The supported op types, comma-separated, for error messages."""
    return ", ".join(HANDLERS)


def folds_constants(op_type):
    """Whether a node of ``op_type`` on constant inputs is folded (unknown ops are)."""
    entry = HANDLERS.get(op_type)
    return entry is None or entry.fold


def moves_elements_only(op_type):
    """Whether ``op_type`` is a registered shape op (see :class:`Handler`)."""
    entry = HANDLERS.get(op_type)
    return entry is not None and entry.layout_only
