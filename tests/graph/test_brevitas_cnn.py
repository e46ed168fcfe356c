"""Brevitas CNN exports end to end (slow tier; needs ``pip install -e ".[brevitas]"``).

For each model of :mod:`brevitas_models` (CNV W1A1 and W2A2, ResNet-8 W4A4, MobileNet-style
W4A4) and each Brevitas exporter (dynamo, TorchScript):

* the export itself: qonnx ``execute_onnx`` gives the torch model's labels;
* import only: ``graph.import_model`` and ``Network.execute`` give the torch labels on 32
  images;
* compile and verify: ``graph.compile_model``, then ``graph.verify.verify`` on 8 images:
  ONNX reference == IR == RTL simulation on every frame, and the labels are torch's.

The exports are built once and cached (see :func:`brevitas_models.cache_dir`).
"""

import numpy as np
import pytest

import brevitas_models as bm

pytestmark = pytest.mark.slow

CASES = [pytest.param(name, exporter, id=f"{name}-{exporter}")
         for name in bm.MODELS for exporter in bm.EXPORTERS]
#: Frames of the import check and of the RTL simulation.
IMPORT_FRAMES, RTL_FRAMES = 32, 8


@pytest.fixture(autouse=True)
def _needs_brevitas():
    # here rather than at import time, so that collecting the default tier does not load
    # torch
    pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    pytest.importorskip("onnxoptimizer")


def network_labels(network, y_int):
    """Labels ``(N,)`` from a lowered network's final integers: its label output, or the
    argmax of its scores."""
    if network.output.kind == "label":
        return np.asarray(y_int).reshape(len(y_int), -1)[:, 0].astype(np.int64)
    return np.argmax(network.output_values(y_int), axis=1).astype(np.int64)


@pytest.mark.parametrize("name, exporter", CASES)
def test_export_matches_torch(name, exporter):
    path, x, labels = bm.export(name, exporter, IMPORT_FRAMES)
    assert _input_datatype(path) == "UINT8"
    ours = bm.qonnx_labels(path, x)
    bad = np.flatnonzero(ours != labels)
    assert not len(bad), (f"{name} ({exporter}): qonnx and torch labels differ on frames "
                          f"{bad.tolist()}")
    assert len(set(labels.tolist())) > 1


@pytest.mark.parametrize("name, exporter", CASES)
def test_import_matches_torch(name, exporter):
    import graph
    path, x, labels = bm.export(name, exporter, IMPORT_FRAMES)
    network = graph.import_model(path)
    y_int = network.execute(network.quantize_input(x))
    ours = network_labels(network, y_int)
    bad = np.flatnonzero(ours != labels)
    assert not len(bad), (f"{name} ({exporter}): the IR's labels differ from torch's on "
                          f"{len(bad)} of {len(x)} frames (first {bad[:8].tolist()})")


@pytest.mark.parametrize("name, exporter", CASES)
def test_compile_and_verify(name, exporter, tmp_path):
    import graph
    from graph.verify import verify
    path, x, labels = bm.export(name, exporter, RTL_FRAMES)
    out = tmp_path / "out"
    graph.compile_model(path, out, progress=None)
    inputs, expected = tmp_path / "inputs.npy", tmp_path / "labels.npy"
    np.save(inputs, x)
    np.save(expected, labels)
    result = verify(out, inputs, expected, progress=None)
    assert result["frames"] == RTL_FRAMES
    assert result["onnx_agree"] == RTL_FRAMES
    assert result["rtl_agree"] == RTL_FRAMES
    assert result["accuracy"] == 1.0, f"{name} ({exporter}): labels differ from torch's"


def _input_datatype(path):
    from qonnx.core.modelwrapper import ModelWrapper
    wrapper = ModelWrapper(str(path))
    return wrapper.get_tensor_datatype(wrapper.graph.input[0].name).name
