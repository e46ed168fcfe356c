"""Brevitas CNNs exported to QONNX, for the slow tier and the benchmarks.

Four models, each built with fixed seeds, calibrated on smooth random images, exported with
either of Brevitas's QONNX exporters and cached on disk:

==================  =========================================================================
``cnv_w1a1``        FINN's CNV (``brevitas_examples.bnn_pynq``), binary weights/activations
``cnv_w2a2``        the same with 2-bit weights and activations
``resnet8_w4a4``    a ResNet-8 (MLPerf Tiny image classification): 3x3 stem (16 ch), three
                    residual stages (16, 32, 64 ch; stages 2 and 3 stride 2 with a strided
                    1x1 shortcut), global average pool, FC to 10; power-of-two scales
``mobilenet_w4a4``  a MobileNet-v1-style net: 3x3 stride-2 stem, two depthwise-separable
                    blocks, global average pool, FC to 10; power-of-two scales
==================  =========================================================================

Every model takes uint8 pixels as a float tensor ``(1, 3, 32, 32)`` with values 0..255 and
divides by 255 itself (the ``Div`` is in the exported graph, before the input quantizer);
the exported input is annotated ``UINT8`` as FINN's flow does.

:func:`export` returns ``(onnx_path, inputs, labels)``: the ONNX file, ``N`` smooth random
images (uint8 values as float32, ``(N, 3, 32, 32)``) and the torch model's labels on them.
Exports live under ``$HWGEN_CACHE/brevitas`` (else ``$XDG_CACHE_HOME/hwgen/brevitas``, else
``~/.cache/hwgen/brevitas``: the parent of :func:`sim.cache.default_cache_dir`), one
directory per model, exporter and library versions.

Needs ``torch``, ``brevitas`` and ``onnxoptimizer`` (``pip install -e ".[brevitas]"``).
"""

import contextlib
import io
import json
import warnings

import numpy as np

from sim.cache import cached_build, default_cache_dir

__all__ = ["MODELS", "EXPORTERS", "MAX_FRAMES", "cache_dir", "smooth_images", "build",
           "export", "cnv", "resnet8", "mobilenet_block", "qonnx_labels", "graph_summary"]

#: Bump to rebuild every cached export.
FORMAT = 3
EXPORTERS = ("dynamo", "torchscript")
#: Frames of images and torch labels stored with each export (``export(frames=...)`` <= it).
MAX_FRAMES = 256
#: Seeds: the weights, the calibration images, the test images.
WEIGHT_SEED, CALIBRATION_SEED, TEST_SEED = 0, 1, 2
#: Calibration: batches of images (float statistics, then the quantized network's).
CALIBRATION_BATCHES, CALIBRATION_BATCH = 8, 32


def cache_dir():
    """Where exports are cached: ``brevitas/`` beside the simulation build cache."""
    return default_cache_dir().parent / "brevitas"


# --- images ------------------------------------------------------------------------------------

def smooth_images(n, seed=TEST_SEED, size=32):
    """``n`` "real-looking" RGB images ``(n, 3, size, size)``: integers 0..255 as float32.

    Each image is a sum of low-frequency random fields (4x4 and 8x8 grids of Gaussian values,
    bilinearly upsampled; partly shared between channels so colours correlate), a random
    brightness and contrast, and a little per-pixel noise, rounded and clipped to 0..255.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        field = np.zeros((3, size, size))
        for grid, weight in ((4, 1.0), (8, 0.5)):
            shared = rng.normal(size=(1, grid, grid))
            own = rng.normal(size=(3, grid, grid))
            field += weight * _upsample(0.7 * shared + 0.5 * own, size)
        field /= field.std() + 1e-9
        mean, contrast = rng.uniform(70, 180), rng.uniform(25, 70)
        pixels = mean + contrast * field + rng.normal(scale=6.0, size=field.shape)
        images[i] = np.clip(np.rint(pixels), 0, 255)
    return images


def _upsample(grid, size):
    """Bilinear upsampling of ``(C, g, g)`` to ``(C, size, size)`` (corners aligned)."""
    g = grid.shape[-1]
    pos = np.linspace(0, g - 1, size)
    low = np.minimum(np.floor(pos).astype(int), g - 2)
    frac = pos - low
    rows = grid[:, low, :] * (1 - frac)[None, :, None] + grid[:, low + 1, :] * frac[None, :, None]
    return rows[:, :, low] * (1 - frac) + rows[:, :, low + 1] * frac


# --- models ------------------------------------------------------------------------------------

def _torch():
    import torch
    return torch


def _randomize_batchnorm(model, generator):
    """Trained-looking BatchNorm affine parameters: gamma of magnitude 0.5..1.5 (one in ten
    negative), beta in -0.3..0.3."""
    torch = _torch()
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = module.num_features
            magnitude = 0.5 + torch.rand(c, generator=generator)
            sign = torch.where(torch.rand(c, generator=generator) < 0.1, -1.0, 1.0)
            module.weight.data.copy_(magnitude * sign)
            module.bias.data.copy_(0.6 * torch.rand(c, generator=generator) - 0.3)


def _pixels_module(body):
    torch = _torch()

    class Pixels(torch.nn.Module):
        """uint8 pixel values (as float) / 255, then the network."""

        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return self.body(x / 255)

    return Pixels(body)


def build_cnv(weight_bits=1, act_bits=1):
    """FINN's CNV with ``weight_bits``/``act_bits`` of 1 or 2 (``cnv_1w1a``, ``cnv_2w2a``),
    random weights (the example's uniform init), uncalibrated."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    name = f"cnv_{weight_bits}w{act_bits}a"
    with contextlib.redirect_stdout(io.StringIO()):
        body, _ = model_with_cfg(name, pretrained=False)
    return _pixels_module(body)


def _fixed_point():
    """The quantizers of the ResNet-8 and MobileNet models."""
    from brevitas.quant import Int32Bias, TruncTo8bit
    from brevitas.quant.fixed_point import (Int8WeightPerChannelFixedPoint,
                                            Int8WeightPerTensorFixedPoint,
                                            Uint8ActPerTensorFixedPoint)
    return dict(weight_tensor=Int8WeightPerTensorFixedPoint,
                weight_channel=Int8WeightPerChannelFixedPoint, bias=Int32Bias,
                act=Uint8ActPerTensorFixedPoint, trunc=TruncTo8bit)


def _input_quant():
    """8-bit unsigned input quantizer with the constant scale 2**-8 (pixels / 255 in 0..1)."""
    import brevitas.nn as qnn
    from brevitas.core.scaling import ScalingImplType
    return qnn.QuantIdentity(act_quant=_fixed_point()["act"], bit_width=8, max_val=1.0,
                             scaling_impl_type=ScalingImplType.CONST,
                             return_quant_tensor=True)


def _relu(bits):
    import brevitas.nn as qnn
    return qnn.QuantReLU(act_quant=_fixed_point()["act"], bit_width=bits,
                         return_quant_tensor=True)


def _conv(cin, cout, kernel, stride, bits, groups=1, per_channel=False):
    import brevitas.nn as qnn
    q = _fixed_point()
    return qnn.QuantConv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
                           bias=False, weight_bit_width=bits,
                           weight_quant=q["weight_channel" if per_channel else "weight_tensor"])


def _head(channels, pool, bits, classes=10):
    """Global average pool (``TruncAvgPool2d``: sum / pool**2, truncated to 8 bits with
    floor) and a quantized FC with an int32 bias."""
    import brevitas.nn as qnn
    torch = _torch()
    q = _fixed_point()
    return torch.nn.ModuleDict({
        "pool": qnn.TruncAvgPool2d(kernel_size=pool, trunc_quant=q["trunc"],
                                   float_to_int_impl_type="FLOOR"),
        "fc": qnn.QuantLinear(channels, classes, bias=True, weight_bit_width=bits,
                              weight_quant=q["weight_tensor"], bias_quant=q["bias"])})


def build_resnet8(bits=4):
    """ResNet-8 (MLPerf Tiny) with W``bits``A``bits`` fixed-point (power-of-two) quantizers.

    As in Brevitas's ``bnn_pynq`` ResNet-18, both inputs of each residual add come out of
    the same ``QuantReLU`` instance (the stem's, or the strided shortcut's), so the add sums
    two tensors of one scale; a further ``QuantReLU`` requantizes the sum.
    """
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride, shared):
            super().__init__()
            self.conv1, self.bn1 = _conv(cin, cout, 3, stride, bits), nn.BatchNorm2d(cout)
            self.relu1 = _relu(bits)
            self.conv2, self.bn2 = _conv(cout, cout, 3, 1, bits), nn.BatchNorm2d(cout)
            self.shortcut = None
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(_conv(cin, cout, 1, stride, bits),
                                              nn.BatchNorm2d(cout), _relu(bits))
                shared = self.shortcut[-1]
            self.relu2 = shared           # the quantizer of both inputs of the add
            self.relu_out = _relu(bits)

        def forward(self, x):
            y = self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
            skip = x if self.shortcut is None else self.shortcut(x)
            return self.relu_out(y + skip)

    class ResNet8(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = _input_quant()
            self.conv, self.bn, self.relu = _conv(3, 16, 3, 1, bits), nn.BatchNorm2d(16), \
                _relu(bits)
            self.stage1 = Block(16, 16, 1, self.relu)
            self.stage2 = Block(16, 32, 2, self.stage1.relu_out)
            self.stage3 = Block(32, 64, 2, self.stage2.relu_out)
            self.head = _head(64, 8, bits)

        def forward(self, x):
            x = self.relu(self.bn(self.conv(self.inp(x))))
            x = self.stage3(self.stage2(self.stage1(x)))
            x = self.head["pool"](x)
            return self.head["fc"](x.flatten(1))

    return _pixels_module(ResNet8())


def build_mobilenet(bits=4):
    """A MobileNet-v1-style net, W``bits``A``bits``, per-channel power-of-two weight scales:
    3x3 stride-2 stem (16 ch), depthwise-separable blocks 16 -> 32 (stride 1) and 32 -> 64
    (depthwise stride 2), global average pool (8x8), FC to 10."""
    torch = _torch()
    nn = torch.nn

    def unit(cin, cout, kernel, stride, groups=1):
        return [_conv(cin, cout, kernel, stride, bits, groups=groups, per_channel=True),
                nn.BatchNorm2d(cout), _relu(bits)]

    class MobileNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = _input_quant()
            self.features = nn.Sequential(
                *unit(3, 16, 3, 2),
                *unit(16, 16, 3, 1, groups=16), *unit(16, 32, 1, 1),
                *unit(32, 32, 3, 2, groups=32), *unit(32, 64, 1, 1))
            self.head = _head(64, 8, bits)

        def forward(self, x):
            x = self.head["pool"](self.features(self.inp(x)))
            return self.head["fc"](x.flatten(1))

    return _pixels_module(MobileNet())


#: name -> (builder, its arguments)
MODELS = {
    "cnv_w1a1": (build_cnv, (1, 1)),
    "cnv_w2a2": (build_cnv, (2, 2)),
    "resnet8_w4a4": (build_resnet8, (4,)),
    "mobilenet_w4a4": (build_mobilenet, (4,)),
}


def _calibrate(model):
    """Realistic BatchNorm statistics and activation scales, on smooth random images.

    1. Train mode inside Brevitas's ``calibration_mode`` (quantization off): the activation
       quantizers' power-of-two scales come from the float activations' statistics, and
       BatchNorm accumulates the float pre-BN statistics.
    2. BatchNorm statistics again, from the quantized network (train mode, quantization
       on, cumulative averages): these are the ones the exported model keeps.
    3. The ResNet-8 and MobileNet classifiers' biases centre the logits (mean 0 per class
       over the calibration images); CNV's TensorNorm (its last layer, one scalar mean and
       variance) gets the mean and variance of its input.
    """
    torch = _torch()
    from brevitas.graph.calibrate import calibration_mode
    batches = torch.from_numpy(smooth_images(CALIBRATION_BATCHES * CALIBRATION_BATCH,
                                             CALIBRATION_SEED))
    batches = batches.reshape(CALIBRATION_BATCHES, CALIBRATION_BATCH, 3, 32, 32)
    norms = [m for m in model.modules()
             if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    for bn in norms:
        bn.momentum = None
    model.train()
    with torch.no_grad():
        with calibration_mode(model):
            for batch in batches:
                model(batch)
        for bn in norms:
            bn.reset_running_stats()
        model.train()
        for batch in batches:
            model(batch)
    for bn in norms:
        bn.momentum = 0.1           # torch's default again (exported as BN's momentum)
    model.eval()
    fcs = [m for name, m in model.named_modules() if name.endswith("head.fc")]
    for fc in fcs:
        # a trained classifier's bias balances the classes: centre the logits on the
        # calibration images (the pooled ReLU features are positive, so random weights
        # otherwise favour one class for nearly every image)
        with torch.no_grad():
            logits = torch.cat([_plain(model(batch)) for batch in batches])
            fc.bias.data -= logits.mean(dim=0)
    tensor_norms = [m for m in model.modules() if type(m).__name__ == "TensorNorm"]
    for norm in tensor_norms:
        seen = []
        hook = norm.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        with torch.no_grad():
            for batch in batches:
                model(batch)
        hook.remove()
        values = torch.cat([_plain(v) for v in seen])
        norm.running_mean.fill_(float(values.mean()))
        norm.running_var.fill_(float(values.var()))
    return model


def _plain(value):
    """A torch tensor from a tensor or a Brevitas QuantTensor."""
    return value.value if hasattr(value, "value") else value


def build(name):
    """The calibrated torch model ``name`` (a key of :data:`MODELS`), in eval mode."""
    torch = _torch()
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    builder, args = MODELS[name]
    torch.manual_seed(WEIGHT_SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = builder(*args)
        generator = torch.Generator().manual_seed(WEIGHT_SEED + 1)
        _randomize_batchnorm(model, generator)
        return _calibrate(model)


def torch_labels(model, x):
    """Argmax labels ``(N,)`` of the torch model on images ``x`` ``(N, 3, 32, 32)``."""
    torch = _torch()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = _plain(model(torch.from_numpy(np.ascontiguousarray(x, np.float32))))
    return logits.argmax(dim=1).numpy().astype(np.int64)


def activation_stats(model, x):
    """Per activation quantizer (``QuantReLU``/``QuantIdentity``): the fraction of its
    outputs at its lowest and at its highest integer, and how many distinct integers it
    used, on images ``x``."""
    torch = _torch()
    import brevitas.nn as qnn
    stats, hooks = {}, []

    def record(name):
        def hook(module, args, out):
            q = out.int().float()
            low, high = float(q.min()), float(q.max())
            entry = stats.setdefault(name, {"n": 0, "low": 0.0, "high": 0.0, "levels": set(),
                                            "bits": int(out.bit_width)})
            entry["n"] += q.numel()
            entry["low"] += float((q == low).sum())
            entry["high"] += float((q == high).sum())
            entry["levels"].update(torch.unique(q).tolist())
        return hook

    for name, module in model.named_modules():
        if isinstance(module, (qnn.QuantReLU, qnn.QuantIdentity)):
            # the proxy returns a QuantTensor whatever the layer's return_quant_tensor
            hooks.append(module.act_quant.register_forward_hook(record(name)))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: {"bits": e["bits"], "at_min": e["low"] / e["n"],
                   "at_max": e["high"] / e["n"], "levels": len(e["levels"])}
            for name, e in stats.items()}


# --- export ------------------------------------------------------------------------------------

def _export_onnx(model, path, exporter):
    """``brevitas.export.export_qonnx`` with the dynamo (default) or TorchScript exporter;
    then the input annotated UINT8 and, only if onnx shape inference needs it, qonnx
    ``cleanup_model``. Returns ``{"cleanup": bool, "input": name,
    "exported_value_info_complete": bool}`` (whether the exporter wrote every node output's
    shape)."""
    torch = _torch()
    from brevitas.export import export_qonnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter={exporter!r}; supported: {', '.join(EXPORTERS)}")
    x = torch.from_numpy(smooth_images(1, CALIBRATION_SEED + 100))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        export_qonnx(model, input_t=x, export_path=str(path), dynamo=exporter == "dynamo")
    wrapper = ModelWrapper(str(path))
    name = wrapper.graph.input[0].name
    wrapper.set_tensor_datatype(name, DataType["UINT8"])
    known = {v.name for v in list(wrapper.graph.value_info) + list(wrapper.graph.output)}
    raw_shapes = all(out in known for node in wrapper.graph.node for out in node.output)
    cleanup = not _shapes_infer(wrapper)
    if cleanup:
        from qonnx.util.cleanup import cleanup_model
        wrapper = cleanup_model(wrapper)
        wrapper.set_tensor_datatype(wrapper.graph.input[0].name, DataType["UINT8"])
        if not _shapes_infer(wrapper):
            raise RuntimeError(f"{path.name}: shape inference fails even after cleanup")
    wrapper.save(str(path))
    return {"cleanup": cleanup, "input": wrapper.graph.input[0].name,
            "exported_value_info_complete": raw_shapes}


def _shapes_infer(wrapper):
    """Whether qonnx ``InferShapes`` gives every node output a shape."""
    from qonnx.transformation.infer_shapes import InferShapes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inferred = wrapper.transform(InferShapes())
    except Exception:
        return False
    for node in inferred.graph.node:
        for out in node.output:
            if inferred.get_tensor_shape(out) is None:
                return False
    return True


def _versions():
    import brevitas
    import onnx
    import qonnx
    torch = _torch()
    return {"torch": torch.__version__, "brevitas": brevitas.__version__,
            "onnx": onnx.__version__, "qonnx": getattr(qonnx, "__version__", "?")}


def export(name, exporter="dynamo", frames=32):
    """``(onnx_path, inputs, labels)`` for model ``name`` (a key of :data:`MODELS`).

    ``inputs``: ``frames`` smooth random images, uint8 values as float32 ``(frames, 3, 32,
    32)``; ``labels``: the torch model's argmax labels on them, int64 ``(frames,)``. The
    export is built once per model, exporter and library versions (see :func:`cache_dir`);
    its ``info.json`` says whether cleanup was needed and how the labels are distributed.
    """
    if not 0 < frames <= MAX_FRAMES:
        raise ValueError(f"frames={frames}; supported: 1..{MAX_FRAMES}")

    def make(build_dir):
        model = build(name)
        x = smooth_images(MAX_FRAMES, TEST_SEED)
        labels = torch_labels(model, x)
        if len(set(labels[:32].tolist())) < 2:
            raise RuntimeError(f"{name}: every one of 32 images gets label {labels[0]}: the "
                               f"calibration left the network degenerate")
        info = _export_onnx(model, build_dir / "model.onnx", exporter)
        info["label_counts"] = np.bincount(labels, minlength=10).tolist()
        np.save(build_dir / "inputs.npy", x)
        np.save(build_dir / "labels.npy", labels)
        (build_dir / "info.json").write_text(json.dumps(info, indent=1) + "\n")

    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    build_dir, _ = cached_build(cache, f"{name}-{exporter}",
                                {"format": FORMAT, "model": name, "exporter": exporter,
                                 **_versions()}, make)
    x = np.load(build_dir / "inputs.npy")[:frames]
    labels = np.load(build_dir / "labels.npy")[:frames]
    return build_dir / "model.onnx", x, labels


def export_info(name, exporter="dynamo"):
    """The ``info.json`` dict of an export (building it if needed)."""
    path, _, _ = export(name, exporter, 1)
    return json.loads((path.parent / "info.json").read_text())


def cnv(weight_bits=1, act_bits=1, exporter="dynamo", frames=32):
    """:func:`export` of CNV W``weight_bits``A``act_bits`` (1/1 or 2/2)."""
    return export(f"cnv_w{weight_bits}a{act_bits}", exporter, frames)


def resnet8(bits=4, exporter="dynamo", frames=32):
    """:func:`export` of ResNet-8 W``bits``A``bits`` (4 only)."""
    return export(f"resnet8_w{bits}a{bits}", exporter, frames)


def mobilenet_block(bits=4, exporter="dynamo", frames=32):
    """:func:`export` of the MobileNet-style net W``bits``A``bits`` (4 only)."""
    return export(f"mobilenet_w{bits}a{bits}", exporter, frames)


# --- checks and description --------------------------------------------------------------------

def qonnx_labels(onnx_path, x):
    """Argmax labels of qonnx ``execute_onnx`` on the exported model, frame by frame."""
    from qonnx.core.onnx_exec import execute_onnx
    wrapper = _inferred(onnx_path)
    inp, out = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    labels = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for frame in np.asarray(x, np.float32):
            result = execute_onnx(wrapper, {inp: frame[None]})[out]
            labels.append(int(np.argmax(result.reshape(-1))))
    return np.array(labels, np.int64)


def _inferred(onnx_path):
    """The model with qonnx ``InferShapes`` applied (the TorchScript exports carry no
    ``value_info``, which ``execute_onnx`` needs)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ModelWrapper(str(onnx_path)).transform(InferShapes())


def _is_power_of_two(values):
    values = np.abs(np.asarray(values, np.float64).ravel())
    return bool(values.size) and bool(np.all(values > 0)) and bool(
        np.all(np.log2(values) == np.round(np.log2(values))))


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fmt(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def graph_summary(onnx_path):
    """One line per node, in graph order: ``#index op``, its operands (``#j`` for node
    ``j``'s output, ``x`` for the graph input, ``c[shape]`` for an initializer, with the
    value of a scalar), its attributes, and its output shape (after qonnx shape inference).
    ``Quant``/``BipolarQuant``/``Trunc`` nodes show bit widths, signedness, narrowness,
    rounding mode, zero point, scale shape and whether every scale is a power of two."""
    wrapper = _inferred(onnx_path)
    nodes = list(wrapper.graph.node)
    index = {out: i for i, node in enumerate(nodes) for out in node.output}
    inp = wrapper.graph.input[0]
    lines = ["opsets " + ", ".join(f"{o.domain or 'ai.onnx'}:{o.version}"
                                   for o in wrapper.model.opset_import),
             f"input {inp.name!r} {wrapper.get_tensor_shape(inp.name)} "
             f"{wrapper.get_tensor_datatype(inp.name)}; output {wrapper.graph.output[0].name!r}"]

    def operand(name):
        if not name:
            return "-"
        if name in index:
            return f"#{index[name]}"
        value = wrapper.get_initializer(name)
        if value is None:
            return "x"
        return f"c{list(value.shape)}" + (f"={_scale_text(value)}" if value.size == 1 else "")

    for i, node in enumerate(nodes):
        attrs = _attrs(node)
        op = node.op_type if not node.domain else f"{node.op_type}[{node.domain.split('.')[0]}]"
        text = f"#{i} {op}({', '.join(operand(n) for n in node.input)})"
        if node.op_type in ("Quant", "BipolarQuant", "Trunc"):
            values = [wrapper.get_initializer(n) for n in node.input]
            parts = []
            if node.op_type == "Quant":
                parts += [f"bits={_scalar(values[3])}", f"signed={attrs.get('signed')}",
                          f"narrow={attrs.get('narrow')}",
                          f"rounding={_fmt(attrs.get('rounding_mode', 'ROUND'))}",
                          f"zero={_scalar(values[2])}"]
            elif node.op_type == "Trunc":   # qonnx Trunc v2: x, scale, zero, in bits,
                parts.append(f"in_bits={_scalar(values[3])}")    # out scale, out bits
                if len(values) > 5:
                    parts += [f"out_scale={_scale_text(values[4])}",
                              f"out_bits={_scalar(values[5])}"]
                parts += [f"signed={attrs.get('signed')}", f"narrow={attrs.get('narrow')}",
                          f"rounding={_fmt(attrs.get('rounding_mode', 'FLOOR'))}",
                          f"zero={_scalar(values[2])}"]
            scale = values[1]
            if scale is not None:
                parts.append(f"scale{list(scale.shape)}={_scale_text(scale)} "
                             f"pow2={_is_power_of_two(scale)}")
            else:
                parts.append("scale=<computed>")
            parts.append("WEIGHT (on an initializer)" if values[0] is not None
                         else "activation")
            text += " " + " ".join(parts)
        else:
            shown = dict(attrs)
            if node.op_type == "Reshape" and len(node.input) > 1:
                shape = wrapper.get_initializer(node.input[1])
                shown["shape"] = None if shape is None else shape.tolist()
            if node.op_type == "BatchNormalization":
                shown["epsilon"] = float(f"{attrs['epsilon']:.3g}")
            text += "".join(f" {k}={_fmt(v)}" for k, v in sorted(shown.items()))
        lines.append(f"{text} -> {wrapper.get_tensor_shape(node.output[0])}")
    return lines


def _scalar(value):
    if value is None:
        return "<computed>"
    value = np.asarray(value).ravel()
    return _fmt(value.tolist()) if value.size > 1 else f"{value[0]:g}"


def _scale_text(value):
    value = np.asarray(value).ravel()
    if value.size == 1:
        v = float(value[0])
        exponent = np.log2(abs(v)) if v else 0.0
        if v != round(v) and exponent == round(exponent):
            return f"{'-' if v < 0 else ''}2^{int(exponent)}"
        return f"{v:.6g}"
    return f"{value.size} values in [{value.min():.4g}, {value.max():.4g}]"
