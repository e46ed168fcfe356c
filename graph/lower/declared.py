"""What an ONNX model declares about its tensors and nodes: static shapes (batch set to 1),
``finn_datatype`` annotations and node attributes."""

from onnx import helper

from ..errors import GraphError

__all__ = ["shape", "annotation", "attribute", "attribute_value", "attributes"]


def shape(model, name, node=None):
    """Static shape of a tensor with the batch dimension set to 1.

    Parameters
    ----------
    model : qonnx.core.modelwrapper.ModelWrapper
        The shape-inferred model.
    name : str
        The tensor.
    node : onnx.NodeProto, optional
        The node that asks (named in errors); ``None`` for the graph input.

    Returns
    -------
    tuple of int
        The dimensions, the first (batch) one 1.

    Raises
    ------
    GraphError
        If the tensor has no shape, a batch size other than 1, a dynamic dimension other
        than the batch, or no dimensions.
    """
    vi = model.get_tensor_valueinfo(name)
    where = (f"{node.op_type} node '{node.name}'" if node is not None
             else f"graph input '{name}'")
    if vi is None or not vi.type.tensor_type.HasField("shape"):
        raise GraphError(f"{where}: tensor '{name}' has no shape (shape inference "
                         f"failed); supported: static shapes")
    dims = [_dimension(where, name, axis, dim)
            for axis, dim in enumerate(vi.type.tensor_type.shape.dim)]
    if not dims:
        raise GraphError(f"{where}: tensor '{name}' is a scalar; supported: tensors with "
                         f"a batch dimension")
    return tuple(dims)


def _dimension(where, name, axis, dim):
    if dim.HasField("dim_value") and (axis > 0 or dim.dim_value == 1):
        return dim.dim_value
    if axis == 0 and not dim.HasField("dim_value"):
        return 1
    if axis == 0:
        raise GraphError(f"{where}: tensor '{name}' has batch size {dim.dim_value}; "
                         f"supported: batch size 1 or symbolic")
    raise GraphError(f"{where}: tensor '{name}' has a dynamic dimension "
                     f"{dim.dim_param or '?'} at axis {axis}; supported: static "
                     f"shapes (only the batch dimension may be symbolic)")


def annotation(graph, name):
    """The ``finn_datatype`` annotation of tensor ``name`` in ``graph``
    (an ``onnx.GraphProto``), or ``None``."""
    for entry in graph.quantization_annotation:
        if entry.tensor_name == name:
            for item in entry.quant_parameter_tensor_names:
                if item.key == "finn_datatype":
                    return item.value
    return None


def attribute(node, name):
    """The ``onnx.AttributeProto`` called ``name`` of ``node``, or ``None``."""
    for item in node.attribute:
        if item.name == name:
            return item
    return None


def attribute_value(node, name, default=None):
    """The value of attribute ``name`` of ``node``, or ``default`` when it has none."""
    item = attribute(node, name)
    return default if item is None else helper.get_attribute_value(item)


def attributes(node):
    """All attributes of ``node`` as a dict from name to value."""
    return {item.name: helper.get_attribute_value(item) for item in node.attribute}
