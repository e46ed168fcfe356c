# amaranth: UnusedElaboratable=no
"""sim.multistream: the Amaranth-tier driver of kernels with several stream ports finds every
kind of mistake it promises to find, and reports exact handshake cycles."""

import numpy as np
import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.plumbing.duplicate import Duplicate
from hwgen.streams import lanes_signature
from sim.multistream import expected_beat_counts, per_port, run_multistream_sim


class BadFork(wiring.Component):
    """``i`` to ``o0`` and ``o1``; ``o1`` adds one to every beat, and with ``drop`` the
    input is taken whenever ``o0`` is ready (``o1`` loses beats)."""

    def __init__(self, drop=False):
        self.drop = drop
        signature = lanes_signature(unsigned(8), 1)
        super().__init__({"i": In(signature), "o0": Out(signature), "o1": Out(signature)})

    def beats_per_frame(self, port):
        return 1

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.o0.valid.eq(self.i.valid), self.o1.valid.eq(self.i.valid),
                     self.o0.payload.eq(self.i.payload),
                     self.o1.payload[0].eq(self.i.payload[0] + (0 if self.drop else 1)),
                     self.i.ready.eq(self.o0.ready if self.drop
                                     else self.o0.ready & self.o1.ready)]
        return m


X = np.arange(10).reshape(-1, 1)


def test_exact_cycles_without_stalls():
    fork = Duplicate(channels=1, elem_shape=unsigned(8), branches=2)
    result = run_multistream_sim(fork, {"i": X}, expected={"o0": X, "o1": X}, valid_prob=1.0,
                                 ready_prob=1.0)
    assert result.report["in_cycles"] == {"i": list(range(1, 11))}
    assert result.report["out_cycles"] == {"o0": list(range(1, 11)), "o1": list(range(1, 11))}
    assert (result.report["cycles"], result.report["latency"]) == (11, 0)
    np.testing.assert_array_equal(result.beats["o1"], X)


def test_output_counts_from_the_frames():
    fork = Duplicate(channels=4, pe=2, elem_shape=unsigned(8), branches=3, vectors=2)
    assert expected_beat_counts(fork, {"i": 8}, ["o0", "o1", "o2"]) == {"o0": 8, "o1": 8, "o2": 8}
    with pytest.raises(ValueError, match=r"7 beats on port 'i' are not a whole number of frames of 4 beats"):
        expected_beat_counts(fork, {"i": 7}, ["o0"])
    result = run_multistream_sim(fork, {"i": np.zeros((8, 2), dtype=int)}, seed=1)
    assert {port: len(beats) for port, beats in result.beats.items()} == {"o0": 8, "o1": 8, "o2": 8}


def test_wrong_beat_names_port_beat_and_cycle():
    with pytest.raises(AssertionError, match=r"output o1 beat 0 \(cycle 1\): expected 0x0, seen 0x1"):
        run_multistream_sim(BadFork(), {"i": X}, expected={"o0": X, "o1": X}, valid_prob=1.0,
                            ready_prob=1.0)


def test_a_beat_lost_on_a_stalled_branch_is_found():
    """The broken fork moves on while o1 stalls: o1's payload changes under it."""
    with pytest.raises(AssertionError, match=r"output o1 beat 3: payload changed from 0x3 to 0x4 at cycle 5 while valid was high and ready low \(offered at cycle 4\)"):
        run_multistream_sim(BadFork(drop=True), {"i": X}, expected={"o0": X, "o1": X}, seed=3,
                            valid_prob=1.0, ready_prob={"o0": 1.0, "o1": 0.3})


def test_probabilities_per_port():
    assert per_port("ready_prob", 0.5, ["o0", "o1"]) == {"o0": 0.5, "o1": 0.5}
    with pytest.raises(ValueError, match=r"ready_prob must name the ports \['o0', 'o1'\], not \['o0'\]"):
        per_port("ready_prob", {"o0": 0.5}, ["o0", "o1"])
    with pytest.raises(ValueError, match=r"valid_prob\['i'\]=0 must be in \(0, 1\]"):
        per_port("valid_prob", {"i": 0}, ["i"])


def test_every_port_must_be_named():
    fork = Duplicate(channels=1, elem_shape=unsigned(8), branches=2)
    with pytest.raises(ValueError, match=r"in_beats must name the input ports of Duplicate, \['i'\], not \['i0'\]"):
        run_multistream_sim(fork, {"i0": X})
    with pytest.raises(ValueError, match=r"expected/n_out must name the output ports of Duplicate, \['o0', 'o1'\], not \['o0'\]"):
        run_multistream_sim(fork, {"i": X}, expected={"o0": X})
