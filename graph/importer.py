"""Load ONNX/QONNX models and run the ONNX reference.

Parsing, the legacy ``finn`` domains and shape inference are qonnx's (``ModelWrapper``,
``InferShapes``);
the reference execution is qonnx's ``execute_onnx`` (onnxruntime per standard node, qonnx
for ``Quant``, ``BipolarQuant``, ``Trunc`` and ``MultiThreshold``).

qonnx's ``cleanup_model`` is not applied before lowering: it renames every node (error
messages name the user's nodes) and folds constants that the lowering reads as
quantized weights.
"""

import copy
import warnings

import numpy as np
import onnx

from .errors import GraphError
from .lower import lower

__all__ = ["load_model", "import_model", "reference"]


def load_model(model):
    """A shape-inferred qonnx ``ModelWrapper`` copy of ``model``.

    Parameters
    ----------
    model : str, os.PathLike, onnx.ModelProto or ModelWrapper
        The model, or the path of an ``.onnx`` file.

    Unnamed nodes are named ``<op type>_<index>`` so that errors can name them.
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    if isinstance(model, ModelWrapper):
        proto = copy.deepcopy(model.model)
    elif isinstance(model, onnx.ModelProto):
        proto = copy.deepcopy(model)
    else:
        try:
            proto = onnx.load(str(model))
        except FileNotFoundError:
            raise GraphError(f"{model}: no such file") from None
        except Exception as error:
            raise GraphError(f"{model}: not an ONNX model ({_first_line(error)})") from None
    taken = {node.name for node in proto.graph.node}
    for index, node in enumerate(proto.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = ModelWrapper(proto)
        try:
            wrapper = wrapper.transform(InferShapes())
        except Exception as error:
            raise GraphError(f"graph '{proto.graph.name}': shape inference failed "
                             f"({_first_line(error)}); supported: models that onnx shape "
                             f"inference accepts") from None
    return wrapper


def _first_line(error):
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def import_model(model):
    """Import an ONNX/QONNX/FINN-ONNX/QDQ model and lower it to a :class:`graph.ir.Network`.

    Parameters
    ----------
    model : str, os.PathLike, onnx.ModelProto or ModelWrapper

    Returns
    -------
    graph.ir.Network

    Raises
    ------
    GraphError
        For unsupported or malformed models, with a one-line message that names the node,
        its op type and what is supported.
    """
    wrapper = load_model(model)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return lower(wrapper)


def reference(model, x, intermediates=False):
    """Run the ONNX reference (qonnx ``execute_onnx``) on a batch of inputs.

    Parameters
    ----------
    model : str, os.PathLike, onnx.ModelProto or ModelWrapper
    x : array_like
        Model inputs, shape ``(N, *input shape without batch)``; converted to the input's
        ONNX element type.
    intermediates : bool
        Return every tensor of the execution (dict name -> array with batch ``N``) instead
        of the output alone.

    Returns
    -------
    numpy.ndarray or dict
        The graph output ``(N, ...)``, or all tensors.
    """
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes
    wrapper = load_model(model)
    vi = wrapper.graph.input[0]
    for candidate in wrapper.graph.input:
        if wrapper.get_initializer(candidate.name) is None:
            vi = candidate
    dtype = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
    x = np.asarray(x).astype(dtype)
    output = wrapper.graph.output[0].name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            batched = copy.deepcopy(wrapper).transform(ChangeBatchSize(len(x)))
            batched = batched.transform(InferShapes())
            context = execute_onnx(batched, {vi.name: x}, return_full_exec_context=True)
            if context[output].shape[0] != len(x):
                raise ValueError("batch size not propagated")
        except Exception:
            contexts = [execute_onnx(wrapper, {vi.name: row[None]},
                                     return_full_exec_context=True) for row in x]
            context = {name: np.concatenate([c[name] for c in contexts])
                       for name in contexts[0] if contexts[0][name] is not None and
                       np.ndim(contexts[0][name]) > 0 and
                       np.shape(contexts[0][name])[0] == 1}
    return context if intermediates else context[output]
