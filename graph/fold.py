"""Folding: how many output channels (PE) and input elements (SIMD) each layer handles per
cycle.

The folder asks the kernel contract only: every IR layer names its legal folding values
(:meth:`fold_choices`, from the divisors of its dimensions) and builds its kernel's plan
for any of them (:meth:`plan`), whose ``cycles_per_frame`` and ``estimate()`` the folder
compares. Plans are plain Python: no hardware is built to be asked a question.

A streaming pipeline runs at the pace of its slowest layer, so a throughput target of
``fps`` frames per second at ``clock_mhz`` gives every layer the same *budget* of
``floor(clock_mhz * 1e6 / fps)`` cycles per frame. :func:`fold` gives each layer, from the
legal values only, the least parallelism that meets the budget: the folding with the most
cycles per frame within the budget (for an MVAU, the smallest ``PE * SIMD``; a layer without
products, such as a threshold, pooling or padding, takes its producer's output lanes instead
where they meet the budget, so that no width converter sits between them), ties broken by
the plans' estimates (:meth:`hwgen.resources.Resources.lut_equivalent`: LUTs, flip-flops at
half a LUT, LUT RAM, block RAM at :data:`BRAM18_LUTS` and DSP slices at
:data:`hwgen.resources.DSP_LUT_EQUIVALENT`), then by the smaller folding values.

Without a target, the budget is that of the *default folding*: the layer with the most
multiply-accumulates per frame computes :data:`DEFAULT_PARALLELISM` products per cycle, and
every other layer is folded to keep pace with it. That is the fastest folding where every
layer is balanced to the bottleneck at a modest size (64 products per cycle is a few hundred
LUTs for binarized layers); ask for a target to go faster or smaller.

:func:`apply_folding_json` applies a user's per-layer choices on top (``pe``, ``simd``,
``datapath``, ``mem_style``, ``activation``: each layer's :attr:`fold_keys`), with one-line errors that name
the layer and the valid values.
"""

import copy
import itertools
import json
import math
import os

from hwgen.resources import BRAM18_LUTS

from .errors import GraphError
from .ir import divisors

__all__ = ["fold", "apply_folding_json", "layer_cycles", "budget_cycles", "default_budget",
           "DEFAULT_PARALLELISM", "BRAM18_LUTS", "divisors"]

#: Products per cycle of the largest layer in the default folding (no target).
DEFAULT_PARALLELISM = 64
#: Folding parameters that set parallelism (the others are implementation choices).
PARALLEL_KEYS = ("pe", "simd")


def layer_cycles(layer, **folding):
    """Cycles per frame of ``layer``'s kernel at its folding (or at ``folding``)."""
    return layer.plan(**folding).cycles_per_frame


def _foldings(layer):
    """Every legal combination of the layer's parallelism parameters."""
    choices = {key: values for key, (values, _) in layer.fold_choices().items()
               if key in PARALLEL_KEYS}
    return [dict(zip(choices, combination))
            for combination in itertools.product(*choices.values())]


def _fully(layer, value):
    """The folding with every parallelism parameter at its least or largest value."""
    return {key: (values[0] if value == "folded" else values[-1])
            for key, (values, _) in layer.fold_choices().items() if key in PARALLEL_KEYS}


def least_cycles(network, layer):
    """The fewest cycles per frame ``layer`` reaches at any legal folding."""
    if hasattr(layer, "fold_candidates"):
        consumer = copy.copy(network.consumers(layer.name)[0])
        for key, value in _fully(consumer, "unfolded").items():
            setattr(consumer, key, value)
        return min(layer.plan(**f).cycles_per_frame for f in
                   layer.fold_candidates(consumer)[-1:])
    return layer_cycles(layer, **_fully(layer, "unfolded"))


def budget_cycles(target_fps, clock_mhz):
    """Cycles per frame available at ``target_fps`` frames/s and a ``clock_mhz`` clock."""
    return math.floor(clock_mhz * 1e6 / target_fps + 1e-9)


def default_budget(network):
    """Cycles per frame of the default folding (see the module documentation)."""
    busiest = max(network.layers, key=lambda layer: layer.products, default=None)
    if busiest is not None and busiest.products:
        budget = -(-layer_cycles(busiest, **_fully(busiest, "folded")) // DEFAULT_PARALLELISM)
        # no faster than the slowest layer can go (a one-channel map: a pixel per cycle)
        return max([budget] + [least_cycles(network, layer) for layer in network.layers])
    return max([layer_cycles(layer, **_fully(layer, "folded")) for layer in network.layers]
               or [1])


def _check_clock(clock_mhz):
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) \
            or not math.isfinite(clock_mhz) or clock_mhz <= 0:
        raise GraphError(f"clock_mhz={clock_mhz!r} must be a positive number of MHz")


def _fold_layer(layer, budget, tied=None):
    """The folding of ``layer`` with the least parallelism that meets ``budget`` (see the
    module documentation), or None. ``tied``: a producer folded in this layer's order
    (a depthwise sliding window), which must meet the budget too."""
    candidates = []
    for folding in _foldings(layer):
        plan = layer.plan(**folding)
        if plan.cycles_per_frame <= budget and (tied is None or _tied_meets(
                tied, layer, folding, budget)):
            candidates.append((plan.cycles_per_frame, folding, plan))
    if not candidates:
        return None
    most = max(cycles for cycles, _, _ in candidates)
    least = [(folding, plan) for cycles, folding, plan in candidates if cycles == most]
    if len(least) == 1:
        return least[0][0]
    scored = [(plan.estimate().lut_equivalent(bram18=BRAM18_LUTS), tuple(folding.values()),
               folding) for folding, plan in least]
    return min(scored, key=lambda item: item[:2])[2]


def _tied_meets(tied, layer, folding, budget):
    trial = copy.copy(layer)
    for key, value in folding.items():
        setattr(trial, key, value)
    return tied.fold_for(trial, budget) is not None


def _tied_producer(network, layer):
    """The producer that folds in ``layer``'s own order (a depthwise window), or None."""
    source = layer.inputs[0] if layer.inputs else "input"
    if source == "input":
        return None
    producer = network.layer(source)
    if hasattr(producer, "fold_for") and getattr(producer, "depthwise", False):
        return producer
    return None


def _matching(network, layer, budget):
    """For a layer that only moves or compares elements (no products) with one parallelism
    parameter: its producer's output lanes, when they are legal and meet the budget, so that
    no width converter sits between them (or None)."""
    keys = [key for key in layer.fold_choices() if key in PARALLEL_KEYS]
    if layer.products or len(keys) != 1 or layer.inputs[0] == "input":
        return None
    producer = network.layer(layer.inputs[0])
    if hasattr(producer, "fold_for"):
        return None
    lanes = producer.plan().output_format.lanes
    (key,) = keys
    if lanes in layer.fold_choices()[key][0] and \
            layer.plan(**{key: lanes}).cycles_per_frame <= budget:
        return {key: lanes}
    return None


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
        A copy with the parallelism (``pe``, and ``simd`` where the layer has it) set on
        every layer.

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
    # layers that feed one consumer in its order (sliding windows) fold after it
    for layer in [layer for layer in network.layers if not hasattr(layer, "fold_for")] + \
            [layer for layer in network.layers if hasattr(layer, "fold_for")]:
        if hasattr(layer, "fold_for"):
            folding = layer.fold_for(network.consumers(layer.name)[0], budget)
        else:
            folding = _matching(network, layer, budget) or \
                _fold_layer(layer, budget, _tied_producer(network, layer))
        if folding is None:
            best = least_cycles(network, layer)
            fps = clock_mhz * 1e6 / best
            goal = ("the default folding" if target_fps is None else
                    f"target of {target_fps:g} frames/s at {clock_mhz:g} MHz")
            raise GraphError(
                f"{goal} is unreachable: it leaves {budget} cycles per frame, and layer "
                f"{layer.name!r} needs at least {best} (fully unfolded), i.e. at most "
                f"{fps:.6g} frames/s")
        for key, value in folding.items():
            setattr(layer, key, value)
    return network


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
            if key not in layer.fold_keys:
                raise GraphError(f"{where}: unknown key {key!r}; valid keys: "
                                 f"{', '.join(layer.fold_keys)}")
            _apply(layer, where, key, value)
    for layer in network.layers:
        # a window in a consumer's own order follows the consumer unless folded here
        if hasattr(layer, "fold_for") and getattr(layer, "depthwise", False) and \
                layer.name not in folding:
            consumer = network.consumers(layer.name)[0]
            for key, value in layer.fold_for(consumer, math.inf).items():
                setattr(layer, key, value)
    network.__post_init__()
    return network


def _apply(layer, where, key, value):
    valid, rule = layer.fold_choices()[key]
    if all(isinstance(v, int) for v in valid):  # divisors
        if value not in valid or not isinstance(value, int) or isinstance(value, bool):
            raise GraphError(f"{where}: {key.upper()}={value!r} must divide {rule}; valid "
                             f"{key.upper()}: {', '.join(map(str, valid))}")
    elif value not in valid:
        why = f" {rule}" if rule else ""
        raise GraphError(f"{where}: {key}={value!r} is not valid{why}; valid {key}: "
                         f"{', '.join(map(str, valid))}")
    setattr(layer, key, value)
