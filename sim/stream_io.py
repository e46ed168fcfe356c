"""File formats shared by the pytest side and the cocotb stream testbench.

Kept free of numpy/Amaranth imports: :mod:`sim.stream_tb` imports it inside the simulator.

Vectors file (JSON), path in ``$HWGEN_STREAM_VECTORS``::

    {"format": 1,
     "in_beats": ["0x1f", ...],          # s_axis_tdata words, hex (any width)
     "expected": ["0x20", ...],          # m_axis_tdata words, hex
     "out_beats_per_frame": 3,           # m_axis_tlast is checked on every 3rd output beat
     "seed": 0, "valid_prob": 0.7, "ready_prob": 0.7,
     "max_cycles": 10000,                # fail if the outputs have not all arrived by then
     "drain_cycles": 8}                  # extra cycles checked for unexpected output beats

Report file (JSON), path in ``$HWGEN_STREAM_REPORT``: see :func:`make_report`.
"""

import json
import os

__all__ = ["ENV_VECTORS", "ENV_REPORT", "write_vectors", "read_vectors", "make_report",
           "write_report", "default_max_cycles", "work_cycles", "per_port"]

ENV_VECTORS = "HWGEN_STREAM_VECTORS"
ENV_REPORT = "HWGEN_STREAM_REPORT"

_FORMAT = 1


def per_port(name, value, ports):
    """``{port: p}`` from one probability for every port or a dict naming each port;
    each must be in (0, 1]."""
    values = dict(value) if isinstance(value, dict) else {port: value for port in ports}
    if set(values) != set(ports):
        raise ValueError(f"{name} must name the ports {sorted(ports)}, not {sorted(values)}")
    for port, p in values.items():
        if not 0.0 < float(p) <= 1.0:
            raise ValueError(f"{name}[{port!r}]={p!r} must be in (0, 1]")
    return {port: float(p) for port, p in values.items()}


def default_max_cycles(n_in, n_out, valid_prob=1.0, ready_prob=1.0, work=0):
    """A generous cycle budget for moving ``n_in`` beats in and ``n_out`` beats out, of a
    design that needs ``work`` cycles for them without stalls (for example frames times
    cycles per frame, plus the latency)."""
    slowest = max(min(valid_prob, ready_prob), 0.05)
    return int(1000 + (20 * (n_in + n_out) + 4 * work) / slowest)


def work_cycles(component, n_out):
    """Cycles a stream kernel needs for ``n_out`` output beats without stalls, from its
    ``cycles_per_frame``, ``out_beats_per_frame`` and ``latency`` (0 when it has none)."""
    try:
        frames = -(-n_out // component.out_beats_per_frame)
        return frames * component.cycles_per_frame + component.latency
    except (AttributeError, NotImplementedError, TypeError):
        return 0


def write_vectors(path, in_words, expected_words, *, out_beats_per_frame=1, seed=0,
                  valid_prob=1.0, ready_prob=1.0, max_cycles=None, drain_cycles=8,
                  config=None):
    """Write a vectors file for :mod:`sim.stream_tb`. Words are non-negative Python ints of
    any width (the full ``tdata`` word, element k of a beat at bits ``[k*w, (k+1)*w)``).

    ``config`` (optional) asks for configuration-port writes in the middle of the stream:
    a dict with ``after_inputs`` (input beats sent before the writes), ``after_outputs``
    (output beats to receive first), ``writes`` (``(address, value)`` pairs, value as an
    unsigned bit pattern) and ``port`` (the port prefix, default ``"cfg"``).
    """
    in_words = [int(w) for w in in_words]
    expected_words = [int(w) for w in expected_words]
    for kind, words in (("in_words", in_words), ("expected_words", expected_words)):
        for n, w in enumerate(words):
            if w < 0:
                raise ValueError(f"{kind}[{n}]={w} is negative; words are unsigned bit patterns "
                                 f"(use sim.streams.pack_beats)")
    if not isinstance(out_beats_per_frame, int) or out_beats_per_frame < 1:
        raise ValueError(f"out_beats_per_frame={out_beats_per_frame!r} must be a positive integer")
    for name, p in (("valid_prob", valid_prob), ("ready_prob", ready_prob)):
        if not 0.0 < float(p) <= 1.0:
            raise ValueError(f"{name}={p!r} must be in (0, 1]")
    if max_cycles is None:
        max_cycles = default_max_cycles(len(in_words), len(expected_words), valid_prob, ready_prob)
    data = {
        "format": _FORMAT,
        "in_beats": [hex(w) for w in in_words],
        "expected": [hex(w) for w in expected_words],
        "out_beats_per_frame": out_beats_per_frame,
        "seed": int(seed),
        "valid_prob": float(valid_prob),
        "ready_prob": float(ready_prob),
        "max_cycles": int(max_cycles),
        "drain_cycles": int(drain_cycles),
    }
    if config is not None:
        data["config"] = {
            "after_inputs": int(config["after_inputs"]),
            "after_outputs": int(config["after_outputs"]),
            "writes": [[int(address), int(value)] for address, value in config["writes"]],
            "port": config.get("port", "cfg"),
        }
    with open(path, "w") as f:
        json.dump(data, f)
    return os.fspath(path)


def read_vectors(path):
    """Read a vectors file; hex words come back as Python ints."""
    with open(path) as f:
        data = json.load(f)
    if data.get("format") != _FORMAT:
        raise ValueError(f"{path}: unsupported vectors format {data.get('format')!r}")
    data["in_beats"] = [int(w, 16) for w in data["in_beats"]]
    data["expected"] = [int(w, 16) for w in data["expected"]]
    return data


def make_report(in_cycles, out_cycles, **extra):
    """The cycle report both simulation tiers return.

    Cycle numbering: cycle 0 is the first active clock edge after reset is released (the
    Amaranth tier: the first clock edge). A handshake "at cycle k" is a transfer with
    ``valid & ready`` sampled high at edge k. Both tiers' drivers start in cycle 1.

    ``cycles``: last output handshake cycle + 1 (0 when there was no output);
    ``in_cycles``/``out_cycles``: cycle of every input/output handshake;
    ``latency``: first output handshake - first input handshake (``None`` if either is missing).
    """
    in_cycles = [int(c) for c in in_cycles]
    out_cycles = [int(c) for c in out_cycles]
    report = {
        "cycles": out_cycles[-1] + 1 if out_cycles else 0,
        "in_beats": len(in_cycles),
        "out_beats": len(out_cycles),
        "latency": out_cycles[0] - in_cycles[0] if in_cycles and out_cycles else None,
        "in_cycles": in_cycles,
        "out_cycles": out_cycles,
    }
    report.update(extra)
    return report


def write_report(path, report):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, path)
