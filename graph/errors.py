"""The one error class of the graph package."""

__all__ = ["GraphError", "node_error"]


class GraphError(ValueError):
    """A model, an IR or an input that the graph package cannot handle.

    The message is one line. For errors about an ONNX node it starts with
    ``"<op type> node '<node name>': "``, says what is wrong and what is supported.
    """


def node_error(node, problem, supported=None):
    """A :class:`GraphError` about one ONNX node.

    Parameters
    ----------
    node : onnx.NodeProto
        The node the error is about.
    problem : str
        What is wrong, as a sentence fragment without a final period.
    supported : str, optional
        What would be accepted instead.
    """
    message = f"{node.op_type} node '{node.name}': {problem}"
    if supported:
        message += f"; supported: {supported}"
    return GraphError(" ".join(message.split()))
