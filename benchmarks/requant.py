"""Requantize vs thresholds on real 8-bit QDQ models: whole-layer resources on UltraScale+
(Yosys ``synth_xilinx -family xcup``), compile time, and bit-exactness against onnxruntime.

    python benchmarks/requant.py --json OUT.json [--models mlp-u8-pc,...] [--frames 1000]
                                 [--seed 0] [--jobs 2] [--no-cache] [--no-synth] [--no-verify]

Models, built here with ``onnx.helper`` on random float weights and quantized by
onnxruntime's ``quantize_static`` (QDQ format, int8 weights, 64 random calibration inputs
uniform in [0, 1); weights and calibration data from ``--seed``, the same for every model):

* ``mlp-u8-pt``: the 64-64-32-10 MLP (``Gemm`` + ``Relu``), per-tensor scales, uint8
  activations;
* ``mlp-u8-pc``: the same MLP, per-channel weight scales, uint8 activations (the headline);
* ``mlp-s8-pc``: the same MLP, per-channel, int8 activations;
* ``conv-u8-pc``: one 3x3 ``Conv`` (8 -> 16 channels, 8x8 input, pads 1) + ``Relu``,
  per-channel, uint8 activations, followed by a ``Transpose`` to NHWC. The single convolution
  alone (NCHW output) does not import (``graph output 'y': is a reordering of a thresholded
  stream; supported: Transpose before the last MatMul``): hwgen streams NHWC, and a graph
  output must be in stream order, so the smallest model that imports ends with the
  ``Transpose`` (``quantize_static`` puts a Q/DQ pair with the same scale after it). The
  convolution is lowered to pad + sliding window + MVAU (not a VVAU: that is depthwise).

For each model:

1. ``hwgen compile MODEL -o OUT`` (:func:`graph.compile.compile_model`) in a fresh process
   into a temporary directory at the default folding: ``compile_s`` (the report's, what the
   target is about) and ``compile_wall_s`` (around the command: Python start-up and imports
   too); then ``compile_s_warm``, the better of two more compiles in this process into
   fresh directories (imports done, in-process caches warm). ``compile_runs`` has every
   run with the seconds spent writing the Verilog and the 1-minute load average before it
   (other processes on the machine, such as Yosys, slow the compile).
2. For every MVAU/VVAU layer with thresholds, ``layer.plan(activation="thresholds")`` and
   ``layer.plan(activation="requantize")`` (skipped, with the reason, when it raises), each
   WHOLE layer (the MVAU with its fused unit) converted bare (``component_verilog``, no AXI
   shell) and synthesized (:func:`boards.synth.synthesize`, cached on disk): LUT, FF, LUTRAM,
   BRAM18 (RAMB18 + 2 * RAMB36), DSP, ``lut_eq = LUT + LUTRAM + 64 * BRAM18 + 100 * DSP``
   (what ``Resources.lut_equivalent(ffs=0)`` counts; the LUTRAM is the weight memory, the
   same for both), and the same from ``plan.estimate()``; and
   which one ``activation="auto"`` chose (the compiled layer's).
3. Bit-exactness on ``--frames`` seeded float inputs (uniform in [0, 1), another seed than
   the calibration): onnxruntime (``InferenceSession``, default CPU provider, one thread)
   runs the QDQ model with ``ORT_ENABLE_ALL`` (QDQ fused into integer kernels) and
   ``ORT_DISABLE_ALL`` (DequantizeLinear -> float op -> QuantizeLinear, node by node; the
   operators after optimization are recorded, ``optimized_ops``); its output is
   ``DequantizeLinear`` of uint8/int8, so the integers are ``q = round(y / scale) +
   zero_point`` (checked to be on the grid, ``output_off_grid``). They are compared with the
   IR's (``network.execute(network.quantize_input(x))``, what ``hwgen verify`` runs) as
   levels ``q - min(type)``: the IR types an int8 activation UINT8 (the count of thresholds
   passed, ``q + 128``); ``ir_output_spec_is_ort_grid`` checks that the IR's output scale and
   offset are onnxruntime's. And
   ``hwgen verify OUT --inputs X.npy`` (a fresh process) checks the qonnx ONNX reference ==
   IR == RTL (Verilator, compiled harness, random back-pressure). Where onnxruntime and the
   IR disagree, the first layer that differs is found from onnxruntime's intermediate
   quantized tensors (every ``QuantizeLinear`` output made a graph output, same level) and
   each differing element's float value before rounding (``x / scale`` of the
   ``ORT_DISABLE_ALL`` run's ``QuantizeLinear`` input) is reported with its distance to the
   nearest tie (``.5``).

JSON: ``models`` (one entry per model: compile times, the report's layer rows, the
bit-exact counts per optimization level, the verify result), ``layers`` (one row per
synthesized layer and activation), ``comparisons`` (per layer: ``thr_bram18``,
``rq_bram18``, ``bram_ratio`` = thresholds / requantize BRAM18, null with
``requant_bram18_zero`` true when requantize has none, ``thr_lut_eq``, ``rq_lut_eq``,
``auto`` and whether it picked the measured cheaper, ``saved``: thresholds minus
requantize per resource), and ``targets``.

Synthesis runs ``--jobs`` Yosys processes at once (default 2). Layers whose Verilog is the
same (``mlp-s8-pc`` lowers to the same network as ``mlp-u8-pc``) are synthesized once
(``same_verilog_as``). A run that synthesized 9 of the 14 took about 19 minutes on this
2-core machine with other Yosys jobs beside it (load 5-10), most of it in the thresholds
layers (2-6 minutes each); with every report cached, about 2-3 minutes.

Targets: per 8-bit layer where requantize is possible ``bram_ratio >= 5`` (or requantize at
0 BRAM18 with thresholds above 0; not applicable where the thresholds use no BRAM18
either) and requantize ``lut_eq <=`` thresholds ``lut_eq``; the
64-64-32-10 MLP compiles in < 5 s (``mlp-u8-pc`` the headline); ``frames``/``frames``
bit-exact against onnxruntime (both levels), the qonnx reference and the RTL.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import _ROOT, add_synth_arguments, format_table, progress, write_json

import numpy as np

#: Seed of the float weights and the calibration data (0: the same models as the
#: ``make.py`` these were first studied with); ``--seed`` changes it.
SEED = 0
#: Seed of the inputs checked.
INPUT_SEED = 4242
CALIBRATION_FRAMES = 64
BRAM18_LUTS = 64
DSP_LUTS = 100
MLP_SIZES = (64, 64, 32, 10)
OPT_LEVELS = ("ORT_ENABLE_ALL", "ORT_DISABLE_ALL")

MODELS = {
    "mlp-u8-pt": dict(kind="mlp", per_channel=False, activation="QUInt8",
                      description="64-64-32-10 MLP, per-tensor, uint8 activations"),
    "mlp-u8-pc": dict(kind="mlp", per_channel=True, activation="QUInt8",
                      description="64-64-32-10 MLP, per-channel, uint8 activations"),
    "mlp-s8-pc": dict(kind="mlp", per_channel=True, activation="QInt8",
                      description="64-64-32-10 MLP, per-channel, int8 activations"),
    "conv-u8-pc": dict(kind="conv", per_channel=True, activation="QUInt8",
                       description="Conv 3x3 8->16 on 8x8 (pads 1) + Relu + Transpose to NHWC, "
                                   "per-channel, uint8 activations"),
}
HEADLINE = "mlp-u8-pc"


# -- models ---------------------------------------------------------------------------------

def _finish(nodes, inits, x_shape, y_name, y_shape, name):
    from onnx import TensorProto, helper
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(y_name, TensorProto.FLOAT,
                                                             y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def float_mlp(sizes, seed):
    """A float ``Gemm`` + ``Relu`` MLP (no Relu after the last layer), input ``[1, sizes[0]]``."""
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "x"
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (rng.standard_normal(b) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(bias, f"b{k}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{k}", f"b{k}"], [f"h{k}"], name=f"fc{k}"))
        x = f"h{k}"
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [x + "r"], name=f"relu{k}"))
            x += "r"
    return _finish(nodes, inits, [1, sizes[0]], x, [1, sizes[-1]], "mlp")


def float_conv(seed, cin=8, cout=16, hw=8, pads=1):
    """A float 3x3 ``Conv`` + ``Relu`` + ``Transpose`` to NHWC, input ``[1, cin, hw, hw]``."""
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    out = hw + 2 * pads - 2
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3],
                              pads=[pads] * 4),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Transpose", ["r"], ["y"], name="nhwc", perm=[0, 2, 3, 1])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    return _finish(nodes, inits, [1, cin, hw, hw], "y", [1, out, out, cout], "conv")


def build_model(name, path, seed=SEED):
    """Write model ``name``'s QDQ ONNX to ``path`` (float weights and calibration data from
    ``seed``); returns the input shape without the batch."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    spec = MODELS[name]
    if spec["kind"] == "mlp":
        model, shape = float_mlp(MLP_SIZES, seed), (MLP_SIZES[0],)
    else:
        model, shape = float_conv(seed), (8, 8, 8)

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(seed)
            self.data = iter([{"x": rng.uniform(0, 1, (1,) + shape).astype(np.float32)}
                              for _ in range(CALIBRATION_FRAMES)])

        def get_next(self):
            return next(self.data, None)

    float_path = Path(str(path) + ".float.onnx")
    onnx.save(model, float_path)
    import logging
    logging.getLogger().setLevel(logging.ERROR)   # "consider pre-processing" warnings
    quantize_static(str(float_path), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=spec["per_channel"],
                    activation_type=getattr(QuantType, spec["activation"]),
                    weight_type=QuantType.QInt8)
    return shape


# -- onnxruntime ----------------------------------------------------------------------------

def _initializer(model, name):
    from onnx import numpy_helper
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    raise KeyError(name)


def _output_grid(model):
    """``(scale, zero_point)`` of the DequantizeLinear that computes the graph output."""
    output = model.graph.output[0].name
    node = next(n for n in model.graph.node if output in n.output)
    if node.op_type != "DequantizeLinear":
        raise RuntimeError(f"the graph output {output!r} is not computed by a DequantizeLinear")
    scale = _initializer(model, node.input[1]).astype(np.float32)
    zero = _initializer(model, node.input[2])
    return scale, zero


def _session(model_bytes, level, optimized=None):
    import onnxruntime as ort
    options = ort.SessionOptions()
    if optimized:
        options.optimized_model_filepath = str(optimized)
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def ort_run(model, x, level, outputs=None):
    """onnxruntime on every frame of ``x`` (batch 1 each, the model's input shape): a dict
    output name -> ``(N, ...)`` array, the graph outputs plus ``outputs`` (made graph
    outputs); and the session's providers."""
    import onnx
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for name in outputs or ():
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = _session(model.SerializeToString(), level)
    names = [o.name for o in session.get_outputs()]
    runs = [session.run(names, {"x": frame[None]}) for frame in x]
    return ({name: np.concatenate([r[k] for r in runs]) for k, name in enumerate(names)},
            session.get_providers())


def ort_ops(model, level, work):
    """The operator types of onnxruntime's graph after optimization at ``level``."""
    import onnx
    path = Path(work) / f"optimized-{level}.onnx"
    _session(model.SerializeToString(), level, optimized=path)
    ops = {}
    for node in onnx.load(path).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ops


def ort_levels(model, y):
    """The levels of the output ``y`` (DequantizeLinear of uint8/int8): the integers
    ``q = round(y / scale) + zero_point`` less the type's minimum (0 for uint8, -128 for
    int8), which is what the IR's streams carry (the count of thresholds passed: the IR
    types an int8 activation UINT8); and the largest distance of ``y / scale`` to an
    integer (0 up to float rounding when ``y`` is on the grid)."""
    scale, zero = _output_grid(model)
    steps = y.astype(np.float64) / scale.astype(np.float64)
    q = np.round(steps).astype(np.int64) + zero.astype(np.int64)
    return q - np.iinfo(zero.dtype).min, float(np.max(np.abs(steps - np.round(steps))))


def same_grid(model, network):
    """Whether the IR's output spec is onnxruntime's grid: ``value = level * scale +
    offset`` with the same scale and ``offset = (min - zero_point) * scale``."""
    scale, zero = _output_grid(model)
    low = np.iinfo(zero.dtype).min
    a = np.asarray(network.output.scale, dtype=np.float64)
    b = np.asarray(network.output.offset, dtype=np.float64)
    s = np.broadcast_to(scale.astype(np.float64), a.shape)
    return bool(np.allclose(a, s, rtol=1e-6) and
                np.allclose(b, (low - zero.astype(np.float64)) * s, rtol=1e-6, atol=1e-9))


# -- the IR ---------------------------------------------------------------------------------

def ir_integers(network, x):
    """The IR's output levels (decoded) for float inputs ``x``, and every layer's."""
    from graph.ir import decode
    y, edges = network.execute(network.quantize_input(x), intermediates=True)
    return decode(network.layers[-1].output_type, y), edges


def _rounding_quantizer(model, q):
    """The QuantizeLinear that rounds the values ``q`` quantizes (``q`` itself, or one
    before a Transpose / DequantizeLinear -> QuantizeLinear chain that only moves them), and
    the Transpose permutations to apply to its input, in order."""
    producer = {out: node for node in model.graph.node for out in node.output}
    rounding, perms, tensor = q, [], q.input[0]
    while tensor in producer and producer[tensor].op_type in ("Transpose", "DequantizeLinear",
                                                              "QuantizeLinear"):
        node = producer[tensor]
        if node.op_type == "Transpose":
            perms.insert(0, [a.ints for a in node.attribute if a.name == "perm"][0])
        elif node.op_type == "QuantizeLinear":
            rounding = node
        tensor = node.input[0]
    return rounding, perms


def investigate(model, network, x, bad, level, ir_edges):
    """Why onnxruntime (at ``level``) and the IR disagree on frames ``bad``: for the first
    quantized tensor (in graph order) where they differ, the elements that differ with
    onnxruntime's value before rounding, ``x / scale`` of the QuantizeLinear input, as
    computed by the float ``ORT_DISABLE_ALL`` run, and its distance to a tie."""
    from graph.ir import decode
    quantizers = [n for n in model.graph.node if n.op_type == "QuantizeLinear"
                  and n.input[0] != "x"]
    frames = x[bad]
    names = [q.output[0] for q in quantizers] + [q.input[0] for q in quantizers
                                                 if q.input[0] not in model.graph.output]
    fused, _ = ort_run(model, frames, level, outputs=[q.output[0] for q in quantizers])
    plain, _ = ort_run(model, frames, "ORT_DISABLE_ALL", outputs=names)
    ir_layers = [layer for layer in network.layers if getattr(layer, "thresholds", None)
                 is not None]
    # the last quantizers line up with the thresholded layers: a Transpose after the last
    # one (the convolution model) has a quantizer of its own, in stream order (NHWC)
    findings = []
    for q, layer in zip(quantizers[len(quantizers) - len(ir_layers):], ir_layers):
        low = np.iinfo(fused[q.output[0]].dtype).min
        ort_q = fused[q.output[0]].reshape(len(bad), -1).astype(np.int64) - low
        ours = decode(layer.output_type, ir_edges[layer.name][bad]).reshape(len(bad), -1)
        if ort_q.shape != ours.shape:
            return {"error": f"tensor {q.output[0]} {ort_q.shape} vs IR layer {layer.name} "
                             f"{ours.shape}: cannot line them up"}
        where = np.argwhere(ort_q != ours)
        if not len(where):
            continue
        rounding, perms = _rounding_quantizer(model, q)
        scale = _initializer(model, rounding.input[1]).astype(np.float32)
        zero = int(_initializer(model, rounding.input[2]))
        pre = plain[rounding.input[0]]
        for perm in perms:
            pre = np.transpose(pre, perm)
        pre = pre.reshape(len(bad), -1).astype(np.float32)
        for frame, element in where[:50]:
            steps = float(pre[frame, element] / scale)
            findings.append({"frame": int(bad[frame]), "element": int(element),
                             "float_q": steps + zero,
                             "ort_q": int(ort_q[frame, element] + low),
                             "ir_q": int(ours[frame, element] + low),
                             "float_steps": steps,
                             "distance_to_tie": float(abs(steps - np.floor(steps) - 0.5))})
        return {"first_tensor": q.output[0], "ir_layer": layer.name,
                "elements_differing": int(len(where)), "shown": findings}
    return {"first_tensor": None, "note": "no intermediate tensor differs"}


def bit_exact(model_path, network, x, levels):
    """Per optimization level, frames where onnxruntime's output levels equal the IR's; and
    whether the IR's output spec is onnxruntime's grid (:func:`same_grid`)."""
    import onnx
    model = onnx.load(model_path)
    ours, edges = ir_integers(network, x)
    ours = ours.reshape(len(x), -1)
    result = {}
    for level in levels:
        start = time.monotonic()
        outputs, providers = ort_run(model, x, level)
        y = outputs[model.graph.output[0].name]
        theirs, off_grid = ort_levels(model, y)
        theirs = theirs.reshape(len(x), -1)
        bad = np.flatnonzero(np.any(theirs != ours, axis=1))
        entry = {"matches": int(len(x) - len(bad)), "frames": int(len(x)),
                 "optimized_ops": ort_ops(model, level, Path(model_path).parent),
                 "mismatching_frames": int(len(bad)),
                 "mismatching_elements": int(np.sum(theirs != ours)),
                 "max_abs_diff": int(np.max(np.abs(theirs - ours))) if len(bad) else 0,
                 "output_off_grid": off_grid, "providers": providers,
                 "seconds": round(time.monotonic() - start, 2)}
        if len(bad):
            entry["investigation"] = investigate(model, network, x, bad, level, edges)
        result[level] = entry
    return result, same_grid(model, network)


# -- hwgen verify ---------------------------------------------------------------------------

def hwgen_verify(out, inputs, timeout):
    """``hwgen verify OUT --inputs X.npy`` in a fresh process."""
    command = [sys.executable, "-m", "hwgen.cli", "verify", str(out), "--inputs", str(inputs)]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=_ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "returncode": None, "error": f"timeout after {timeout} s"}
    text = done.stdout + "\n" + done.stderr
    onnx_agree = re.search(r"ONNX reference == IR on (\d+)/(\d+)", text)
    rtl_agree = re.search(r"RTL == IR on (\d+)/(\d+)", text)
    lines = [line for line in done.stderr.strip().splitlines() if "error" in line.lower()]
    result = {"ok": done.returncode == 0, "returncode": done.returncode,
              "onnx_agree": int(onnx_agree[1]) if onnx_agree else None,
              "rtl_agree": int(rtl_agree[1]) if rtl_agree else None,
              "seconds": round(time.monotonic() - start, 1),
              "summary": done.stdout.strip().splitlines()[:2],
              "error": _shorten((lines or [None])[-1]) if done.returncode else None}
    if done.returncode and result["rtl_agree"] is None and "ONNX reference" in text:
        # the reference disagreed first, so the RTL was not simulated: check RTL == IR alone
        # (graph.verify.verify skips the reference when the model file does not exist)
        from graph.errors import GraphError
        from graph.verify import verify
        try:
            alone = verify(out, inputs, model=Path(out) / "no-reference.onnx", progress=None,
                           timeout=timeout)
            result["rtl_agree_without_reference"] = alone["rtl_agree"]
        except GraphError as error:
            result["rtl_agree_without_reference"] = None
            result["rtl_error_without_reference"] = _shorten(str(error))
    return result


def _shorten(text, limit=400):
    """``text`` cut to ``limit`` characters (``hwgen verify`` quotes whole frames)."""
    return text if text is None or len(text) <= limit else text[:limit] + " ..."


# -- layers ---------------------------------------------------------------------------------

def _error_text(exc):
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 1000 else text[:1000] + " ..."


def layer_plans(network):
    """``(layer, activation, plan or None, error or None)`` for every MVAU/VVAU layer with
    thresholds and both activations."""
    from graph.errors import GraphError
    out = []
    for layer in network.layers:
        if layer.kind not in ("mvau", "vvau") or layer.thresholds is None:
            continue
        for activation in ("thresholds", "requantize"):
            try:
                out.append((layer, activation, layer.plan(activation=activation), None))
            except (ValueError, GraphError) as error:
                out.append((layer, activation, None, str(error)))
    return out


def _unit_name(unit):
    return type(unit).__name__.removesuffix("Plan")


def new_layer_row(model, layer, activation, plan, error, family):
    row = {"model": model, "layer": layer.name, "kind": layer.kind,
           "activation": activation, "auto": layer.activation, "family": family,
           "mh": getattr(layer, "mh", getattr(layer, "channels", None)),
           "mw": getattr(layer, "mw", None), "vectors": layer.vectors, "pe": layer.pe,
           "simd": layer.simd, "thresholds_per_channel": int(layer.thresholds.shape[1]),
           "input_type": layer.input_type, "weight_type": layer.weight_type,
           "output_type": layer.output_type, "ok": False, "skipped": None, "error": None}
    if plan is None:
        row["skipped"] = error
        return row
    unit = plan.threshold
    estimate = plan.estimate()
    row.update(datapath=plan.datapath, mem_style=plan.mem_style, unit=_unit_name(unit),
               acc_bits=plan.acc_shape.width,
               est_luts=int(estimate.luts), est_ffs=int(estimate.ffs),
               est_lutram=int(estimate.lutram), est_bram18=int(estimate.bram18),
               est_dsp=int(estimate.dsp), est_lut_eq=round(estimate.lut_equivalent(ffs=0)),
               est_unit_lut_eq=round(unit.estimate().lut_equivalent(ffs=0)))
    if activation == "requantize":
        _, _, shift, _ = unit.normal_form
        row.update(rq_datapath=unit.datapath, rq_shift=shift,
                   rq_multiplier_bits=unit.multiplier_width, rq_table_depth=unit.table_depth,
                   rq_exceptions=sum(len(p) for p in unit.exceptions),
                   rq_lanes_per_dsp=unit.lanes_per_dsp if unit.datapath == "dsp" else None)
    else:
        row["thr_mem_styles"] = ([unit.mem_style_of(s) for s in range(unit.levels)]
                                 if hasattr(unit, "mem_style_of") else [unit.mem_style])
    return row


def convert_row(row, plan):
    """The Verilog of ``plan``'s whole layer (bare, top ``layer``), or None with
    ``row["error"]`` set."""
    from hwgen.export.verilog import component_verilog
    try:
        start = time.monotonic()
        verilog = component_verilog(plan.build(), name="layer")
        row["convert_seconds"] = round(time.monotonic() - start, 2)
        return verilog
    except Exception as e:  # noqa: BLE001 -- a benchmark records failures instead of stopping
        row["error"] = f"conversion: {_error_text(e)}"
        return None


def synth_rows(rows, verilog, args):
    """Synthesize ``verilog`` once and fill every row of ``rows`` (layers whose Verilog is
    the same, such as those of two models that lower to the same network)."""
    from boards.synth import synthesize
    try:
        report = synthesize(verilog, top="layer", family=args.family, cache=not args.no_cache,
                            timeout=args.timeout)
    except Exception as e:  # noqa: BLE001
        for row in rows:
            row["error"] = f"synthesis: {_error_text(e)}"
        return
    for index, row in enumerate(rows):
        row.update(ok=True, luts=report["luts"], ffs=report["ffs"], lutram=report["lutram"],
                   bram18=report["bram18"], dsp=report["dsp"], carry=report["carry"],
                   lut_eq=(report["luts"] + report["lutram"] + BRAM18_LUTS * report["bram18"]
                           + DSP_LUTS * report["dsp"]),
                   synth_seconds=report["seconds"], cached=report["cached"],
                   same_verilog_as=(None if index == 0 else
                                    f"{rows[0]['model']}/{rows[0]['layer']}"))


def compare(rows):
    """Per layer: thresholds against requantize (measured), and whether auto was right."""
    pairs = {}
    for row in rows:
        pairs.setdefault((row["model"], row["layer"]), {})[row["activation"]] = row
    out = []
    for (model, layer), both in pairs.items():
        thr, rq = both.get("thresholds"), both.get("requantize")
        entry = {"model": model, "layer": layer, "auto": thr["auto"] if thr else None,
                 "possible": bool(rq and rq["skipped"] is None),
                 "skipped": rq["skipped"] if rq else None}
        if not (thr and thr["ok"] and rq and rq["ok"]):
            entry["error"] = (thr or {}).get("error") or (rq or {}).get("error")
            out.append(entry)
            continue
        zero = rq["bram18"] == 0
        ratio = None if zero else thr["bram18"] / rq["bram18"]
        # None: not applicable (thresholds in LUTs, no block RAM to save either)
        bram_ok = (None if thr["bram18"] == 0 else True) if zero else ratio >= 5
        cheaper = "requantize" if rq["lut_eq"] < thr["lut_eq"] else "thresholds"
        entry.update(thr_bram18=thr["bram18"], rq_bram18=rq["bram18"],
                     bram_ratio=None if ratio is None else round(ratio, 2),
                     requant_bram18_zero=zero, thr_lut_eq=thr["lut_eq"],
                     rq_lut_eq=rq["lut_eq"], lut_eq_ratio=round(thr["lut_eq"] / rq["lut_eq"], 2),
                     saved={key: thr[key] - rq[key] for key in ("luts", "ffs", "lutram",
                                                                "bram18", "dsp", "lut_eq")},
                     thr_est_lut_eq=thr["est_lut_eq"], rq_est_lut_eq=rq["est_lut_eq"],
                     measured_cheaper=cheaper, auto_right=(entry["auto"] == cheaper),
                     bram_target=bram_ok, lut_eq_target=rq["lut_eq"] <= thr["lut_eq"])
        out.append(entry)
    return out


# -- main -----------------------------------------------------------------------------------

def _verilog_seconds(lines):
    found = next((re.search(r"bytes in ([0-9.]+) s", line) for line in lines
                  if "top.v" in line and "bytes in" in line), None)
    return float(found[1]) if found else None


def compile_runs(path, work, name):
    """Compile ``path`` at the default folding three times, each into a fresh directory:
    ``hwgen compile`` in a fresh process (cold: what a user gets; its output is the one
    kept), then twice :func:`graph.compile.compile_model` in this process (warm: imports
    done, the in-process caches of earlier models filled). Returns the kept directory, its
    report and the runs' times."""
    import json
    from graph.compile import compile_model
    out = work / f"{name}.out"
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hwgen.cli", "compile", str(path), "-o",
                           str(out)], cwd=_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"hwgen compile {path} failed: "
                         f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
    report = json.loads((out / "report.json").read_text())
    runs = [{"how": "hwgen compile (fresh process)", "compile_s": report["compile_s"],
             "wall_s": round(wall, 3),
             "verilog_s": _verilog_seconds((done.stdout + done.stderr).splitlines()),
             "loadavg_1min": round(load, 2)}]
    for k in range(2):
        scratch = work / f"{name}.warm{k}"
        load = os.getloadavg()[0]
        lines = []
        start = time.perf_counter()
        warm = compile_model(path, scratch, progress=lines.append)
        runs.append({"how": "compile_model (in process)", "compile_s": warm["compile_s"],
                     "wall_s": round(time.perf_counter() - start, 3),
                     "verilog_s": _verilog_seconds(lines), "loadavg_1min": round(load, 2)})
        shutil.rmtree(scratch, ignore_errors=True)
    return out, report, runs


def run_model(name, work, args, layer_rows, plans):
    from graph.compile import load_network
    spec = MODELS[name]
    entry = {"model": name, "description": spec["description"],
             "per_channel": spec["per_channel"], "activation_type": spec["activation"]}
    path = work / f"{name}.onnx"
    progress(f"[{name}] quantize_static ({spec['description']})")
    shape = build_model(name, path, seed=args.seed)
    progress(f"[{name}] compile (hwgen compile, then twice in process)")
    out, report, runs = compile_runs(path, work, name)
    entry.update(compile_s=runs[0]["compile_s"], compile_wall_s=runs[0]["wall_s"],
                 compile_s_warm=min(r["compile_s"] for r in runs[1:]), compile_runs=runs,
                 verilog_bytes=report["verilog_bytes"],
                 cycles_per_frame=report["cycles_per_frame"],
                 report_layers=[{k: r.get(k) for k in ("name", "kind", "shape", "pe", "simd",
                                                      "datapath", "activation", "luts",
                                                      "bram18", "dsp48e2")}
                                for r in report["layers"]])
    progress(f"[{name}]   compile_s {runs[0]['compile_s']:.2f} (fresh process), "
             f"{runs[1]['compile_s']:.2f} / {runs[2]['compile_s']:.2f} (warm); "
             f"load {runs[0]['loadavg_1min']:.1f}")
    network = load_network(out)
    for layer, activation, plan, error in layer_plans(network):
        row = new_layer_row(name, layer, activation, plan, error, args.family)
        layer_rows.append(row)
        if plan is not None:
            plans[id(row)] = plan
        else:
            progress(f"[{name}]   {layer.name} {activation}: skipped: {error}")

    rng = np.random.default_rng([INPUT_SEED, list(MODELS).index(name)])
    x = rng.uniform(0, 1, (args.frames,) + shape).astype(np.float32)
    x_path = work / f"{name}.x.npy"
    np.save(x_path, x)
    progress(f"[{name}] onnxruntime vs IR on {args.frames} frames")
    entry["ort_vs_ir"], entry["ir_output_spec_is_ort_grid"] = bit_exact(path, network, x,
                                                                        OPT_LEVELS)
    for level, result in entry["ort_vs_ir"].items():
        progress(f"[{name}]   {level}: {result['matches']}/{result['frames']}")
    if not args.no_verify:
        progress(f"[{name}] hwgen verify {out.name} --inputs {x_path.name}")
        entry["verify"] = hwgen_verify(out, x_path, args.timeout)
        v = entry["verify"]
        progress(f"[{name}]   ok={v['ok']} onnx==IR {v.get('onnx_agree')} "
                 f"RTL==IR {v.get('rtl_agree')} ({v.get('seconds')} s)"
                 + (f"; {v['error'][:120]}; RTL==IR without the reference: "
                    f"{v.get('rtl_agree_without_reference')}" if v["error"] else ""))
    return entry


def targets(models, comparisons, frames):
    mlp = {m["model"]: m for m in models if m["model"].startswith("mlp")}
    layer_targets = [c for c in comparisons if c["possible"] and "bram_target" in c]
    out = {
        "bram_ratio_ge_5": {f"{c['model']}/{c['layer']}": c["bram_target"]
                            for c in layer_targets if c["bram_target"] is not None},
        "bram_ratio_not_applicable": [f"{c['model']}/{c['layer']}" for c in layer_targets
                                      if c["bram_target"] is None],
        "requant_lut_eq_le_thresholds": {f"{c['model']}/{c['layer']}": c["lut_eq_target"]
                                         for c in layer_targets},
        "mlp_compile_lt_5s": {name: m["compile_s"] < 5 for name, m in mlp.items()},
        "headline_compile_s": mlp[HEADLINE]["compile_s"] if HEADLINE in mlp else None,
        "bit_exact": {m["model"]: all(r["matches"] == frames for r in m["ort_vs_ir"].values())
                      and m["ir_output_spec_is_ort_grid"]
                      and (m.get("verify") is None or bool(m["verify"]["ok"]))
                      for m in models},
    }
    out["all_met"] = all(all(v.values()) for v in out.values() if isinstance(v, dict))
    return out


LAYER_COLUMNS = [
    ("model", "model"), ("layer", "layer"), ("activation", "activation"), ("auto", "auto"),
    ("pe", "PE"), ("simd", "SIMD"), ("datapath", "datapath"), ("unit", "unit"),
    ("luts", "LUT"), ("est_luts", "est"), ("ffs", "FF"), ("lutram", "LUTRAM"),
    ("bram18", "BRAM18"), ("est_bram18", "est"), ("dsp", "DSP"), ("est_dsp", "est"),
    ("lut_eq", "LUT-eq"), ("est_lut_eq", "est"), ("synth_seconds", "synth s"),
    ("status", "status"),
]
COMPARE_COLUMNS = [
    ("model", "model"), ("layer", "layer"), ("thr_bram18", "thr BRAM18"),
    ("rq_bram18", "rq BRAM18"), ("ratio", "BRAM ratio"), ("thr_lut_eq", "thr LUT-eq"),
    ("rq_lut_eq", "rq LUT-eq"), ("lut_eq_ratio", "thr/rq"), ("auto", "auto"),
    ("measured_cheaper", "cheaper"), ("verdict", "targets"),
]
MODEL_COLUMNS = [
    ("model", "model"), ("compile_s", "compile s"), ("compile_wall_s", "wall s"),
    ("verilog_s", "of it Verilog"), ("load", "load"), ("compile_s_warm", "warm"), ("activations", "auto per layer"),
    ("enable_all", "ORT ENABLE_ALL"), ("disable_all", "ORT DISABLE_ALL"),
    ("verify", "hwgen verify (onnx/RTL)"),
]


def _verdict(c):
    if not c["possible"]:
        return "requantize impossible"
    if "bram_target" not in c:
        return "failed: " + str(c.get("error"))[:40]
    missed = [w for w, ok in (("BRAM ratio < 5", c["bram_target"]),
                              ("rq LUT-eq > thr", c["lut_eq_target"])) if ok is False]
    return ", ".join(missed) or ("ok (no BRAM either way)" if c["bram_target"] is None
                                 else "ok")


def source_state():
    """The commit of the checkout and the tracked files changed since (the code measured)."""
    def git(*command):
        done = subprocess.run(["git", *command], cwd=_ROOT, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else None
    changed = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": (git("rev-parse", "HEAD") or "").strip() or None,
            "changed_files": None if changed is None else
            [line[3:] for line in changed.splitlines()]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT.json", help="write the results as JSON")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated subset of: " + ", ".join(MODELS))
    parser.add_argument("--frames", type=int, default=1000,
                        help="inputs checked per model (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="seed of the float weights and calibration data "
                             "(default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="Yosys runs in parallel (default: %(default)s)")
    parser.add_argument("--no-synth", action="store_true", help="skip the synthesis")
    parser.add_argument("--no-verify", action="store_true", help="skip hwgen verify")
    parser.add_argument("--work-dir", help="keep the models and compile outputs here "
                                           "(default: a temporary directory, removed)")
    add_synth_arguments(parser, timeout=1800)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for name in names:
        if name not in MODELS:
            parser.error(f"--models {name} is not one of {', '.join(MODELS)}")
    if args.frames < 1 or args.jobs < 1:
        parser.error("--frames and --jobs must be >= 1")

    from amaranth.hdl import UnusedElaboratable
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    import onnx
    import onnxruntime
    started = time.monotonic()
    source = source_state()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="requant-"))
    work.mkdir(parents=True, exist_ok=True)
    models, layer_rows, plans = [], [], {}
    try:
        for name in names:
            models.append(run_model(name, work, args, layer_rows, plans))
        groups = {}
        for row in layer_rows:
            if id(row) in plans and not args.no_synth:
                progress(f"[convert] {row['model']}/{row['layer']} {row['activation']}")
                verilog = convert_row(row, plans[id(row)])
                if verilog is not None:
                    groups.setdefault(verilog, []).append(row)
        todo = sorted(groups.items(), key=lambda item: item[1][0]["est_lut_eq"])
        progress(f"[synth] {len(todo)} whole layers ({sum(map(len, groups.values()))} rows), "
                 f"smallest first (jobs={args.jobs}) ...")

        def run(item):
            verilog, rows = item
            t0 = time.monotonic()
            synth_rows(rows, verilog, args)
            row = rows[0]
            where = "cached" if row.get("cached") else f"{time.monotonic() - t0:.0f} s"
            names = ", ".join(f"{r['model']}/{r['layer']}" for r in rows)
            progress(f"[synth] {names} {row['activation']} -> "
                     + (f"LUT {row['luts']} BRAM18 {row['bram18']} DSP {row['dsp']} "
                        f"LUT-eq {row['lut_eq']} ({where})" if row["ok"]
                        else f"FAILED: {row['error'][:200]}"))
        if args.jobs == 1:
            for item in todo:
                run(item)
        else:
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(run, todo))
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    comparisons = compare(layer_rows) if not args.no_synth else []
    goals = targets(models, comparisons, args.frames)

    print(f"requantize vs thresholds: whole layers, Yosys synth family={args.family}; "
          f"LUT-eq = LUT + LUTRAM + {BRAM18_LUTS}*BRAM18 + {DSP_LUTS}*DSP")
    print(format_table([dict(r, status="ok" if r["ok"] else
                             ("skipped" if r["skipped"] else
                              ("not run" if not r["error"] else "FAILED")))
                        for r in layer_rows], LAYER_COLUMNS))
    for row in layer_rows:
        if row["skipped"]:
            print(f"  {row['model']}/{row['layer']} {row['activation']} skipped: "
                  f"{row['skipped']}")
    if comparisons:
        print()
        def ratio(c):
            if not c.get("requant_bram18_zero"):
                return c.get("bram_ratio")
            return "n/a (both 0)" if c["thr_bram18"] == 0 else "inf (rq 0)"
        print(format_table([dict(c, ratio=ratio(c), verdict=_verdict(c))
                            for c in comparisons], COMPARE_COLUMNS))
    print()

    def agree(m, level):
        r = m["ort_vs_ir"][level]
        return f"{r['matches']}/{r['frames']}"

    def verified(m):
        v = m.get("verify")
        if v is None:
            return "-"
        text = f"{v['onnx_agree']}/{v['rtl_agree']}" + ("" if v["ok"] else " FAILED")
        if "rtl_agree_without_reference" in v:
            text += f" (RTL==IR alone: {v['rtl_agree_without_reference']})"
        return text
    print(format_table([{"model": m["model"], "compile_s": m["compile_s"],
                         "compile_s_warm": m["compile_s_warm"],
                         "compile_wall_s": m["compile_wall_s"],
                         "verilog_s": m["compile_runs"][0]["verilog_s"],
                         "load": m["compile_runs"][0]["loadavg_1min"],
                         "activations": ",".join(r["activation"] or "-" for r in
                                                 m["report_layers"] if r["kind"] in
                                                 ("mvau", "vvau")),
                         "enable_all": agree(m, "ORT_ENABLE_ALL"),
                         "disable_all": agree(m, "ORT_DISABLE_ALL"), "verify": verified(m)}
                        for m in models], MODEL_COLUMNS))
    print()
    print(f"targets (all met: {goals['all_met']}):")
    for key, value in goals.items():
        if isinstance(value, dict):
            missed = [k for k, ok in value.items() if not ok]
            print(f"  {key}: {len(value) - len(missed)}/{len(value)} met"
                  + (f"; missed: {', '.join(missed)}" if missed else ""))
    if goals["bram_ratio_not_applicable"]:
        print(f"  bram ratio not applicable (thresholds use no BRAM18 either): "
              f"{', '.join(goals['bram_ratio_not_applicable'])}")
    print(f"  headline {HEADLINE} compile_s: {goals['headline_compile_s']} (target < 5 s)")
    for m in models:
        for level, r in m["ort_vs_ir"].items():
            if r["mismatching_frames"]:
                inv = r.get("investigation", {})
                print(f"  {m['model']} {level}: {r['mismatching_frames']} frames, "
                      f"{r['mismatching_elements']} elements differ (max |diff| "
                      f"{r['max_abs_diff']}); first tensor {inv.get('first_tensor')}")
    seconds = round(time.monotonic() - started, 1)
    print(f"total {seconds} s")
    if args.json:
        import platform
        write_json(args.json, {
            "benchmark": "requant", "family": args.family, "frames": args.frames,
            "seed": args.seed, "input_seed": INPUT_SEED, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
            "ort_optimization_levels": list(OPT_LEVELS), "ort_intra_op_threads": 1,
            "cpus": os.cpu_count(), "seconds": seconds, "source": source,
            "models": models,
            "layers": layer_rows, "comparisons": comparisons, "targets": goals})
        progress(f"[requant] wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
