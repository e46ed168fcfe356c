# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.sim import Simulator

from sim.amaranth_sim import run_stream_sim, stream_get, stream_put
from sim_test_kernels import AddOne, DropsValid, PairSum


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("is_signed", [True, False])
def test_backpressure(seed, is_signed):
    k = AddOne(width=7, lanes=12, is_signed=is_signed)
    rng = np.random.default_rng(seed)
    x = rng.integers(-64, 64, size=(40, 12)) if is_signed else rng.integers(0, 128, (40, 12))
    out, report = run_stream_sim(k, x, seed=seed, valid_prob=0.5, ready_prob=0.4)
    np.testing.assert_array_equal(out, k.golden(x))
    assert report["in_beats"] == report["out_beats"] == 40
    assert report["cycles"] == report["out_cycles"][-1] + 1
    # stalls really happened, and every beat leaves after it came in
    assert report["cycles"] > 60
    assert all(o > i for i, o in zip(report["in_cycles"], report["out_cycles"]))
    assert report["out_cycles"] == sorted(set(report["out_cycles"]))


def test_no_stalls_gives_exact_latency_and_throughput(tmp_path):
    k = AddOne()
    x = np.zeros((10, 12), dtype=int)
    out, report = run_stream_sim(k, x, expected=k.golden(x), valid_prob=1.0, ready_prob=1.0,
                                 vcd_file=tmp_path / "waves.vcd")
    assert "o__valid" in (tmp_path / "waves.vcd").read_text()
    assert report["in_cycles"] == list(range(1, 11))      # drivers start in cycle 1
    assert report["out_cycles"] == list(range(2, 12))
    assert report["latency"] == k.latency == 1
    assert report["cycles"] == 12


def test_mismatch_message():
    k = AddOne(width=4, lanes=2, is_signed=False)
    x = np.array([[1, 2], [3, 4], [5, 6]])
    bad = k.golden(x)
    bad[2, 1] = 0
    # beat 2 is (6, 7) -> word 0x76; the wrong expectation (6, 0) is 0x06
    with pytest.raises(AssertionError,
                       match=r"^output beat 2 \(cycle \d+\): expected 0x6, seen 0x76$"):
        run_stream_sim(k, x, expected=bad, seed=1, valid_prob=0.5, ready_prob=0.5)


def test_protocol_violation_detected():
    x = np.zeros((6, 12), dtype=int)
    with pytest.raises(AssertionError, match=r"o\.valid withdrawn at cycle \d+ before the beat"):
        run_stream_sim(DropsValid(), x, ready_prob=0.3, seed=2)


def test_timeout_and_extra_beats():
    k = AddOne(width=4, lanes=1, is_signed=False)
    x = np.arange(4)[:, None]
    with pytest.raises(AssertionError, match=r"timeout after 50 cycles: received 4 of 5 output"):
        run_stream_sim(k, x, n_out=5, max_cycles=50)
    with pytest.raises(AssertionError, match=r"unexpected output beat 3 at cycle \d+: 0x4"):
        run_stream_sim(k, x, n_out=3)


def test_frame_ratio_from_kernel_properties():
    k = PairSum(width=8, lanes=2)
    x = np.arange(16).reshape(8, 2)
    out, report = run_stream_sim(k, x, seed=3, valid_prob=0.7, ready_prob=0.7)
    np.testing.assert_array_equal(out, x[0::2] + x[1::2])
    assert report["out_beats"] == 4
    with pytest.raises(ValueError, match="not a whole number of frames"):
        run_stream_sim(k, x[:3])


def test_stream_put_get_in_a_hand_written_testbench():
    k = AddOne(width=5, lanes=3, is_signed=True)
    sim = Simulator(k)
    sim.add_clock(1e-8)
    got = []

    async def producer(ctx):
        await stream_put(ctx, k.i, [-16, 0, 15])           # element values
        await stream_put(ctx, k.i, np.array([1, -2, 3]))   # numpy row
        await stream_put(ctx, k.i, 0b00001_00010_00011)    # packed word (3, 2, 1)

    async def consumer(ctx):
        for _ in range(2):
            payload = await stream_get(ctx, k.o)
            got.append([payload[n] for n in range(3)])
        got.append(await stream_get(ctx, k.o, raw=True))

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-6)
    assert got == [[-15, 1, -16], [2, -1, 4], 0b00010_00011_00100]
