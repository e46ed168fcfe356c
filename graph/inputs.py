"""Validation of network input arrays."""

import numpy as np

from .errors import GraphError
from .ir import dtype_range

__all__ = ["check_inputs"]


def check_inputs(network, x):
    """Check a batch of ONNX model inputs for a network and return it flat.

    Parameters
    ----------
    network : graph.ir.Network
    x : array_like
        Shape ``(N, *network.input_shape)``, ``(N, 1, *network.input_shape)`` (the ONNX
        input's batch-1 shape) or ``(N, elements)``, elements in the C order of the ONNX
        input. Float values (for a
        network with an input quantizer: finite), or values of ``network.input_type``
        (``-1``/``+1`` for ``BIPOLAR``).

    Returns
    -------
    numpy.ndarray
        ``(N, elements)``: float32 for an input quantizer, otherwise int64 values.

    Raises
    ------
    GraphError
        One line naming the problem: wrong shape, non-finite or non-integer values, or
        values outside the input datatype.
    """
    x = np.asarray(x)
    elements = network.input_elements
    shape = tuple(network.input_shape)
    accepted = list(dict.fromkeys([shape, (1,) + shape, (elements,)]))
    if x.ndim < 1 or x.shape[1:] not in accepted:
        forms = " or ".join("(N, " + ", ".join(map(str, form)) + ")" for form in accepted)
        raise GraphError(f"inputs of shape {x.shape} do not fit the network input: expected "
                         f"{forms}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise GraphError(f"inputs of dtype {x.dtype} are not numbers")
    x = x.reshape(len(x), elements)
    if network.input_quantizer is not None:
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise GraphError(f"inputs hold {np.count_nonzero(~np.isfinite(x))} non-finite "
                             f"values (NaN or infinity)")
        return x
    if not np.all(np.isfinite(x.astype(np.float64))) or np.any(x != np.round(x)):
        raise GraphError(f"inputs must be integers of {network.input_type}, but some are not")
    values = x.astype(np.int64)
    low, high = dtype_range(network.input_type)
    bad = (values < low) | (values > high)
    if network.input_type == "BIPOLAR":
        bad |= values == 0
    if bad.any():
        first = values[bad][0]
        allowed = "-1 or +1" if network.input_type == "BIPOLAR" else f"[{low}, {high}]"
        raise GraphError(f"inputs hold {np.count_nonzero(bad)} values outside "
                         f"{network.input_type} (e.g. {first}); allowed: {allowed}")
    return values
