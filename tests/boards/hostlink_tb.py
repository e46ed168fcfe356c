"""cocotb testbench: HostLinkShell + a kernel, driven at its UART pins.

A small UART model drives ``rx`` (8N1, ``divisor`` clock cycles per bit, started off the
clock edges) and decodes ``tx`` by sampling mid-bit; frames are encoded and decoded with
:mod:`boards.host`. The vectors file (``$HWGEN_HOSTLINK_VECTORS``, written by
``test_hostlink_sim.py``) gives the divisor, timeout, input payloads and the golden model's
output payloads.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from boards.host import ReplyDecoder, encode
from boards.hostlink import DATA, INFO, STATUS

PERIOD_NS = 10
OK = STATUS["OK"]


class Bench:
    def __init__(self, dut):
        with open(os.environ["HWGEN_HOSTLINK_VECTORS"]) as f:
            vectors = json.load(f)
        self.dut = dut
        self.divisor = vectors["divisor"]
        self.timeout = vectors["timeout_cycles"]
        self.inputs = [bytes.fromhex(x) for x in vectors["inputs"]]
        self.expected = [bytes.fromhex(x) for x in vectors["expected"]]
        self.info = bytes.fromhex(vectors["info"])
        self.bit_ns = self.divisor * PERIOD_NS
        self.replies = []
        self.decoder = ReplyDecoder()
        self.line_errors = []

    async def start(self):
        dut = self.dut
        Clock(dut.clk, PERIOD_NS, unit="ns").start()
        dut.rx.value = 1
        dut.rst.value = 1
        await ClockCycles(dut.clk, 4)
        dut.rst.value = 0
        await Timer(3, unit="ns")  # drive rx off the clock edges
        cocotb.start_soon(self._monitor())

    async def send(self, data, *, bad_stop_at=None):
        """Send bytes; the byte at index ``bad_stop_at`` gets a low stop bit."""
        for n, byte in enumerate(data):
            stop = 0 if n == bad_stop_at else 1
            for bit in [0, *((byte >> k) & 1 for k in range(8)), stop]:
                self.dut.rx.value = bit
                await Timer(self.bit_ns, unit="ns")
            self.dut.rx.value = 1

    async def idle(self, cycles):
        await Timer(cycles * PERIOD_NS, unit="ns")

    async def _monitor(self):
        tx = self.dut.tx
        while True:
            await FallingEdge(tx)
            await Timer(self.bit_ns // 2, unit="ns")
            if int(tx.value) != 0:
                continue  # a glitch
            byte = 0
            for k in range(8):
                await Timer(self.bit_ns, unit="ns")
                byte |= int(tx.value) << k
            await Timer(self.bit_ns, unit="ns")
            if int(tx.value) != 1:
                self.line_errors.append(len(self.replies))
            self.replies += self.decoder.feed(bytes([byte]))

    async def wait_replies(self, count, cycles=None):
        cycles = cycles or 40 * 10 * self.divisor * 32
        waited = 0
        while len(self.replies) < count:
            await ClockCycles(self.dut.clk, 100)
            waited += 100
            assert waited < cycles, (f"waited {waited} cycles for reply {count}, have "
                                     f"{len(self.replies)}: {self.replies}")
        assert not self.line_errors, f"stop bit low on tx at replies {self.line_errors}"
        assert all(r.crc_ok for r in self.replies), f"reply with a bad CRC: {self.replies}"
        return self.replies

    def check_data(self, reply, seq, frame):
        assert (reply.kind, reply.seq) == (OK, seq), f"frame {frame}: {reply}"
        assert reply.payload == self.expected[frame], (
            f"frame {frame}: output {reply.payload.hex()}, expected {self.expected[frame].hex()}")


async def _bench(dut):
    bench = Bench(dut)
    await bench.start()
    return bench


@cocotb.test()
async def info(dut):
    bench = await _bench(dut)
    await bench.send(encode(INFO, 9))
    (reply,) = await bench.wait_replies(1)
    assert (reply.kind, reply.seq, reply.payload) == (OK, 9, bench.info), reply


@cocotb.test()
async def back_to_back_frames(dut):
    """Every frame, with two requests in flight (the window): outputs bit-exact, in order."""
    bench = await _bench(dut)
    frames = len(bench.inputs)
    for n in range(frames):
        if n >= 2:
            await bench.wait_replies(n - 1)
        await bench.send(encode(DATA, (n + 100) & 0xFF, bench.inputs[n]))
    replies = await bench.wait_replies(frames)
    for n, reply in enumerate(replies):
        bench.check_data(reply, (n + 100) & 0xFF, n)


@cocotb.test()
async def corrupted_frame(dut):
    """A flipped payload bit: BAD_CRC, nothing computed; the next frame is fine."""
    bench = await _bench(dut)
    bad = bytearray(encode(DATA, 1, bench.inputs[0]))
    bad[8] ^= 0x04
    await bench.send(bad)
    await bench.send(encode(DATA, 2, bench.inputs[1]))
    replies = await bench.wait_replies(2)
    assert (replies[0].kind, replies[0].seq) == (STATUS["BAD_CRC"], 1), replies[0]
    bench.check_data(replies[1], 2, 1)
    await bench.idle(bench.timeout)
    assert len(bench.replies) == 2, f"extra replies: {bench.replies[2:]}"


@cocotb.test()
async def framing_error(dut):
    """A character with a low stop bit inside a frame: BAD_CRC."""
    bench = await _bench(dut)
    await bench.send(encode(DATA, 3, bench.inputs[2]), bad_stop_at=9)
    await bench.send(encode(DATA, 4, bench.inputs[2]))
    replies = await bench.wait_replies(2)
    assert (replies[0].kind, replies[0].seq) == (STATUS["BAD_CRC"], 3), replies[0]
    bench.check_data(replies[1], 4, 2)


@cocotb.test()
async def truncated_frame(dut):
    """Half a frame, then silence: TIMEOUT after the timeout; then a good frame."""
    bench = await _bench(dut)
    frame = encode(DATA, 5, bench.inputs[0])
    await bench.send(frame[:len(frame) // 2])
    (reply,) = await bench.wait_replies(1, 2 * bench.timeout + 1000)
    assert (reply.kind, reply.seq) == (STATUS["TIMEOUT"], 5), reply
    await bench.send(encode(DATA, 6, bench.inputs[3]))
    replies = await bench.wait_replies(2)
    bench.check_data(replies[1], 6, 3)


@cocotb.test()
async def half_frame_then_whole(dut):
    """Half a frame at once followed by a whole one: one error reply, no output; after a
    quiet period the link works again."""
    bench = await _bench(dut)
    frame = encode(DATA, 7, bench.inputs[0])
    await bench.send(frame[:9])
    await bench.send(encode(DATA, 8, bench.inputs[1]))
    await bench.idle(2 * bench.timeout)
    assert len(bench.replies) >= 1
    assert all(r.kind != OK for r in bench.replies), bench.replies
    assert bench.replies[0].seq == 7, bench.replies
    count = len(bench.replies)
    await bench.send(encode(DATA, 9, bench.inputs[1]))
    replies = await bench.wait_replies(count + 1)
    bench.check_data(replies[count], 9, 1)


@cocotb.test()
async def bad_headers(dut):
    """Unknown type and wrong length: reported, hunted past; then a good frame."""
    bench = await _bench(dut)
    await bench.send(encode(0x33, 10, bench.inputs[0]))
    await bench.idle(bench.timeout)
    await bench.send(encode(DATA, 11, bench.inputs[0][:-1]))
    await bench.idle(bench.timeout)
    await bench.send(encode(DATA, 12, bench.inputs[4]))
    replies = await bench.wait_replies(3)
    assert [(r.kind, r.seq) for r in replies[:2]] == [(STATUS["BAD_TYPE"], 10),
                                                     (STATUS["BAD_LENGTH"], 11)], replies
    bench.check_data(replies[2], 12, 4)


@cocotb.test()
async def overflow(dut):
    """More requests than the window without waiting: the excess ones get OVERFLOW (or no
    reply), never a wrong one; the data reply is still exact."""
    bench = await _bench(dut)
    await bench.send(encode(DATA, 20, bench.inputs[0]))
    for seq in range(21, 25):
        await bench.send(encode(INFO, seq))
    await bench.idle(60 * 10 * bench.divisor + bench.timeout)
    replies = await bench.wait_replies(1)
    bench.check_data(replies[0], 20, 0)
    seqs = [r.seq for r in replies]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), replies
    statuses = {r.kind for r in replies[1:]}
    assert statuses <= {OK, STATUS["OVERFLOW"]}, replies
    assert STATUS["OVERFLOW"] in statuses, replies
    for reply in replies[1:]:
        if reply.kind == OK:
            assert reply.payload == bench.info
