"""Popcount and weighted-sum stream kernels in both tiers: Amaranth's simulator, and cocotb
on Verilator (behind the AXI4-Stream shell) with random valid gaps and ready stalls. The
Xilinx primitive path is checked against Yosys's own LUT6_2/CARRY8 simulation models."""

import numpy as np
import pytest
from amaranth.hdl import signed

from hwgen.kernels.popcount import PopcountStream, WeightedSumStream
from sim import golden
from sim.amaranth_sim import run_stream_sim
from sim.runner import TestFailure, xilinx_cells_sim_source
from sim.streams import run_stream_test


def random_bits(n, beats, seed):
    rng = np.random.default_rng(seed)
    bits = (rng.random((beats, n)) < rng.random((beats, 1))).astype(np.int64)
    bits[0], bits[-1] = 0, 1      # all zeros and all ones
    return bits


def assert_full_throughput(report, kernel, beats):
    """Without stalls: the first result after exactly ``latency`` cycles, then one per cycle."""
    assert report["latency"] == kernel.latency
    in_cycles, out_cycles = report["in_cycles"], report["out_cycles"]
    assert in_cycles == list(range(in_cycles[0], in_cycles[0] + beats))
    assert out_cycles == [c + kernel.latency for c in in_cycles]
    assert report["cycles"] == in_cycles[0] + beats * kernel.cycles_per_frame + kernel.latency


# --- Amaranth tier ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["generic", "xilinx"])
@pytest.mark.parametrize("n, pipeline_every", [(1, 1), (7, 0), (64, 1), (300, 2)])
def test_amaranth_stream_backpressure(target, n, pipeline_every):
    kernel = PopcountStream(n, pipeline_every=pipeline_every, target=target)
    bits = random_bits(n, 60, seed=n)
    expected = golden.popcount(bits)[:, None]
    run_stream_sim(kernel, bits, expected=expected, seed=3, valid_prob=0.6, ready_prob=0.5)
    _, report = run_stream_sim(kernel, bits, expected=expected, valid_prob=1.0, ready_prob=1.0)
    assert_full_throughput(report, kernel, len(bits))


def test_amaranth_weighted_sum_stream():
    kernel = WeightedSumStream(signed(5), 9, shifts=range(9), negates=[k % 3 == 0 for k in range(9)],
                               pipeline_every=1)
    rng = np.random.default_rng(0)
    values = rng.integers(-16, 16, size=(40, 9))
    values[0], values[1] = -16, 15
    expected = golden.weighted_sum(values, range(9), [k % 3 == 0 for k in range(9)])[:, None]
    run_stream_sim(kernel, values, expected=expected, seed=1, valid_prob=0.7, ready_prob=0.7)


# --- cocotb on Verilator ------------------------------------------------------------------------

@pytest.mark.parametrize("target, n, pipeline_every", [
    ("generic", 12, 1), ("generic", 256, 2), ("xilinx", 256, 2), ("generic", 1000, 0)])
def test_cocotb_stream_backpressure(target, n, pipeline_every):
    kernel = PopcountStream(n, pipeline_every=pipeline_every, target=target)
    bits = random_bits(n, 300, seed=n)
    expected = golden.popcount(bits)[:, None]
    run_stream_test(kernel, bits, expected, seed=7, valid_prob=0.7, ready_prob=0.6)
    report = run_stream_test(kernel, bits, expected, seed=1, valid_prob=1.0, ready_prob=1.0)
    assert_full_throughput(report, kernel, len(bits))


def test_cocotb_xilinx_instances_against_yosys_cell_models():
    kernel = PopcountStream(200, pipeline_every=2, target="xilinx", primitives="instance")
    bits = random_bits(200, 200, seed=5)
    cells = xilinx_cells_sim_source(("LUT6_2", "CARRY8"))
    run_stream_test(kernel, bits, golden.popcount(bits)[:, None], seed=2, valid_prob=0.8,
                    ready_prob=0.7, extra_sources=[cells])


def test_cocotb_weighted_sum_xilinx_instances():
    negates = [k % 2 == 1 for k in range(16)]
    kernel = WeightedSumStream(signed(4), 16, shifts=[k % 4 for k in range(16)], negates=negates,
                               pipeline_every=1, target="xilinx", primitives="instance")
    rng = np.random.default_rng(1)
    values = rng.integers(-8, 8, size=(200, 16))
    values[0], values[1] = -8, 7
    expected = golden.weighted_sum(values, [k % 4 for k in range(16)], negates)[:, None]
    run_stream_test(kernel, values, expected, seed=3, valid_prob=0.8, ready_prob=0.8,
                    extra_sources=[xilinx_cells_sim_source(("LUT6_2", "CARRY8"))])


def test_cocotb_reports_the_first_mismatch():
    kernel = PopcountStream(12, pipeline_every=1)
    bits = random_bits(12, 20, seed=1)
    expected = golden.popcount(bits)[:, None]
    expected[5, 0] += 1
    with pytest.raises(TestFailure, match=rf"output beat 5 .*expected 0x{expected[5, 0]:x}, "
                                          rf"seen 0x{expected[5, 0] - 1:x}"):
        run_stream_test(kernel, bits, expected, seed=2)


# --- slow sweep -----------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("target, primitives", [("generic", "auto"), ("xilinx", "instance")])
@pytest.mark.parametrize("n", [5, 12, 777, 4096])
def test_cocotb_sweep(target, primitives, n):
    kernel = PopcountStream(n, pipeline_every=3, target=target, primitives=primitives)
    if n <= 12:
        words = np.arange(1 << n)
        bits = (words[:, None] >> np.arange(n)) & 1        # exhaustive
    else:
        bits = random_bits(n, 2000, seed=n)
    extra = [xilinx_cells_sim_source(("LUT6_2", "CARRY8"))] if primitives == "instance" else []
    run_stream_test(kernel, bits, golden.popcount(bits)[:, None], seed=n, valid_prob=0.8,
                    ready_prob=0.7, extra_sources=extra, timeout=1800)
