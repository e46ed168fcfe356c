"""Folding: how many output channels (PE) and input elements (SIMD) each layer handles per
cycle.

A layer's *cycles per frame* follow from its folding (see the kernels):

* MVAU: ``(MH / PE) * (MW / SIMD) * vectors``;
* thresholding and label select: ``channels / PE``.

A streaming pipeline runs at the pace of its slowest layer, so a throughput target of
``fps`` frames per second at ``clock_mhz`` gives every layer the same *budget* of
``floor(clock_mhz * 1e6 / fps)`` cycles per frame. :func:`fold` gives each layer, from the
legal divisors only, the least parallelism that meets the budget: the smallest
``PE * SIMD`` (smallest ``PE``), ties between ``(PE, SIMD)`` pairs of the same product broken by
the kernel's analytic :meth:`hwgen.kernels.mvau.MVAU.estimate` (LUTs, plus flip-flops at half a LUT,
LUT RAM, block RAM at :data:`BRAM18_LUTS` and DSP slices at
:data:`hwgen.kernels.mvau.DSP_LUT_EQUIVALENT`). Only the few pairs of the smallest product are
built for their estimate, so folding the LFC-size MLP takes well under a second.

Without a target, the budget is that of the *default folding*: the largest MVAU (most
multiply-accumulates per frame) computes :data:`DEFAULT_PARALLELISM` products per cycle, and
every other layer is folded to keep pace with it. That is the fastest folding where every
layer is balanced to the bottleneck at a modest size (64 products per cycle is a few hundred
LUTs for binarized layers); ask for a target to go faster or smaller.

:func:`apply_folding_json` applies a user's per-layer choices on top (``pe``, ``simd``,
``datapath``, ``mem_style``), with one-line errors that name the layer and the valid values.
"""

import copy
import json
import math
import os

from .errors import GraphError
from .ir import shape_of

__all__ = ["fold", "apply_folding_json", "layer_cycles", "budget_cycles", "default_budget",
           "valid_datapaths", "DEFAULT_PARALLELISM", "BRAM18_LUTS", "MEM_STYLES", "divisors"]

#: Products per cycle of the largest MVAU in the default folding (no target).
DEFAULT_PARALLELISM = 64
#: LUTs an 18 Kbit block RAM is worth when two foldings of the same product are compared.
BRAM18_LUTS = 64
#: Weight memory styles of the MVAU (``hwgen.kernels.mvau.MEM_STYLES``).
MEM_STYLES = ("auto", "lutram", "bram")


def divisors(n):
    """The divisors of ``n``, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def layer_cycles(layer, pe=None, simd=None):
    """Cycles per frame of ``layer`` at its folding (or at ``pe``/``simd`` if given)."""
    pe = layer.pe if pe is None else pe
    if layer.kind == "mvau":
        simd = layer.simd if simd is None else simd
        return (layer.mh // pe) * (layer.mw // simd) * layer.vectors
    return layer.channels // pe


def _work(layer):
    """Cycles per frame of the layer fully folded (PE = SIMD = 1)."""
    return layer_cycles(layer, 1, 1)


def _best_cycles(layer):
    """Cycles per frame of the layer fully unfolded."""
    if layer.kind == "mvau":
        return layer.vectors
    return 1


def budget_cycles(target_fps, clock_mhz):
    """Cycles per frame available at ``target_fps`` frames/s and a ``clock_mhz`` clock."""
    return math.floor(clock_mhz * 1e6 / target_fps + 1e-9)


def default_budget(network):
    """Cycles per frame of the default folding (see the module documentation)."""
    mvaus = [layer for layer in network.layers if layer.kind == "mvau"]
    if mvaus:
        return max(-(-_work(layer) // DEFAULT_PARALLELISM) for layer in mvaus)
    return max([_work(layer) for layer in network.layers] or [1])


def _check_clock(clock_mhz):
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) \
            or not math.isfinite(clock_mhz) or clock_mhz <= 0:
        raise GraphError(f"clock_mhz={clock_mhz!r} must be a positive number of MHz")


def _score(estimate):
    """LUT-equivalent cost of a resource estimate."""
    from hwgen.kernels.mvau import DSP_LUT_EQUIVALENT
    return (estimate.get("luts", 0) + estimate.get("ffs", 0) / 2 + estimate.get("lutram", 0)
            + BRAM18_LUTS * estimate.get("bram18", 0)
            + DSP_LUT_EQUIVALENT * estimate.get("dsp48e2", 0))


def _fold_mvau(layer, budget):
    """``(pe, simd)`` of the least parallelism that meets ``budget``."""
    from hwgen.kernels.mvau import MVAU
    candidates = [(pe * simd, pe, simd) for pe in divisors(layer.mh) for simd in divisors(layer.mw)
                  if layer_cycles(layer, pe, simd) <= budget]
    least = min(product for product, _, _ in candidates)
    pairs = sorted((pe, simd) for product, pe, simd in candidates if product == least)
    if len(pairs) == 1:
        return pairs[0]
    costs = []
    for pe, simd in pairs:
        unit = MVAU(**mvau_params(layer, pe=pe, simd=simd))
        costs.append((_score(unit.estimate()), pe, simd))
        _silence(unit)
    _, pe, simd = min(costs)
    return pe, simd


def _silence(component):
    """Mark a component built only for its estimate (no 'never elaborated' warning)."""
    component._MustUse__silence = True


def mvau_params(layer, **overrides):
    """Keyword arguments of :class:`hwgen.kernels.mvau.MVAU` for an :class:`~graph.ir.MVAULayer`."""
    params = dict(mw=layer.mw, mh=layer.mh, pe=layer.pe, simd=layer.simd,
                  weights=layer.weights, input_shape=shape_of(layer.input_type),
                  weight_shape=shape_of(layer.weight_type), thresholds=layer.thresholds,
                  bias=layer.bias, vectors=layer.vectors, datapath=layer.datapath,
                  mem_style=layer.mem_style, offsets=layer.offsets)
    params.update(overrides)
    return params


def fold(network, target_fps=None, clock_mhz=100.0):
    """Choose PE and SIMD of every layer for a throughput target.

    Parameters
    ----------
    network : graph.ir.Network
        The network; it is not modified.
    target_fps : float, optional
        Frames per second every layer must sustain. Default: the default folding (see the
        module documentation).
    clock_mhz : float
        Clock frequency in MHz.

    Returns
    -------
    graph.ir.Network
        A copy with ``pe`` (and ``simd`` for MVAUs) set on every layer.

    Raises
    ------
    GraphError
        When the target is unreachable: names the layer and the best it can do.
    """
    _check_clock(clock_mhz)
    if target_fps is None:
        budget = default_budget(network)
    else:
        if isinstance(target_fps, bool) or not isinstance(target_fps, (int, float)) \
                or not math.isfinite(target_fps) or target_fps <= 0:
            raise GraphError(f"target_fps={target_fps!r} must be a positive number of frames/s")
        budget = budget_cycles(target_fps, clock_mhz)
    network = copy.deepcopy(network)
    for layer in network.layers:
        best = _best_cycles(layer)
        if best > budget:
            fps = clock_mhz * 1e6 / best
            raise GraphError(
                f"target of {target_fps:g} frames/s at {clock_mhz:g} MHz is unreachable: it "
                f"leaves {budget} cycles per frame, and layer {layer.name!r} needs at least "
                f"{best} (fully unfolded), i.e. at most {fps:.6g} frames/s")
        if layer.kind == "mvau":
            layer.pe, layer.simd = _fold_mvau(layer, budget)
        else:
            layer.pe = min(pe for pe in divisors(layer.channels) if layer.channels // pe <= budget)
    return network


def valid_datapaths(layer):
    """The ``datapath`` choices an MVAU layer's datatypes allow (the rules of
    :class:`hwgen.kernels.mvau.MVAU`: ``xnor`` for bipolar weights and inputs, ``binary-weights`` for
    bipolar weights and integer inputs, ``dsp`` for 2- to 8-bit inputs with bipolar or 2- to
    8-bit weights, ``lut`` always)."""
    weight, data = shape_of(layer.weight_type), shape_of(layer.input_type)
    valid = ["auto"]
    if weight == "bipolar":
        valid.append("xnor" if data == "bipolar" else "binary-weights")
    valid.append("lut")
    if data != "bipolar" and data.width >= 2 and (weight == "bipolar" or weight.width >= 2):
        valid.append("dsp")
    return tuple(valid)


_KEYS = {"mvau": ("pe", "simd", "datapath", "mem_style"), "threshold": ("pe",),
         "labelselect": ("pe",)}


def _positive(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def apply_folding_json(network, folding):
    """Apply a user's folding to a network.

    Parameters
    ----------
    network : graph.ir.Network
        Not modified.
    folding : str, os.PathLike or dict
        A JSON file or its dict: layer name -> ``{"pe": int, "simd": int, "datapath": str,
        "mem_style": str}`` (MVAU layers; every key optional), or ``{"pe": int}`` (threshold
        and label select layers). Keys are case-insensitive (``"PE"`` works too).

    Returns
    -------
    graph.ir.Network
        A copy with the choices applied.

    Raises
    ------
    GraphError
        One line naming the layer and the valid values: an unknown layer or key, a PE or
        SIMD that does not divide, a datapath the layer's datatypes do not allow.
    """
    if isinstance(folding, (str, os.PathLike)):
        try:
            with open(folding) as file:
                folding = json.load(file)
        except OSError as error:
            raise GraphError(f"folding file {os.fspath(folding)}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise GraphError(f"folding file {os.fspath(folding)}: not valid JSON ({error})") \
                from None
    if not isinstance(folding, dict):
        raise GraphError("folding must be a JSON object: layer name -> {\"pe\": ..., "
                         "\"simd\": ..., \"datapath\": ..., \"mem_style\": ...}")
    network = copy.deepcopy(network)
    layers = {layer.name: layer for layer in network.layers}
    for name, choices in folding.items():
        if name not in layers:
            raise GraphError(f"folding: no layer named {name!r}; layers: "
                             f"{', '.join(layers) or 'none'}")
        layer = layers[name]
        where = f"folding of {layer.kind} layer {name!r}"
        if not isinstance(choices, dict):
            raise GraphError(f"{where}: expected an object such as {{\"pe\": 2}}, not "
                             f"{choices!r}")
        for key, value in choices.items():
            key = str(key).lower()
            if key not in _KEYS[layer.kind]:
                raise GraphError(f"{where}: unknown key {key!r}; valid keys: "
                                 f"{', '.join(_KEYS[layer.kind])}")
            _apply(layer, where, key, value)
    return network


def _apply(layer, where, key, value):
    if key in ("pe", "simd"):
        size = {"pe": layer.mh if layer.kind == "mvau" else layer.channels,
                "simd": getattr(layer, "mw", None)}[key]
        what = {"pe": "MH" if layer.kind == "mvau" else "channels", "simd": "MW"}[key]
        valid = ", ".join(map(str, divisors(size)))
        if not _positive(value) or size % value:
            raise GraphError(f"{where}: {key.upper()}={value!r} must divide {what}={size}; "
                             f"valid {key.upper()}: {valid}")
        setattr(layer, key, value)
        return
    valid = valid_datapaths(layer) if key == "datapath" else MEM_STYLES
    if value not in valid:
        why = (f" for {layer.input_type} inputs and {layer.weight_type} weights"
               if key == "datapath" else "")
        raise GraphError(f"{where}: {key}={value!r} is not valid{why}; valid {key}: "
                         f"{', '.join(valid)}")
    setattr(layer, key, value)
