"""boards.host: the driver against the Python model of the device, error cases included."""

import numpy as np
import pytest

from boards.host import (ChecksumError, DeviceError, DeviceModel, FormatMismatch, HostLink,
                         LinkTimeout, ModelPort, ReplyDecoder, SequenceError, TruncatedError,
                         encode, pack_frame, unpack_frame)
from boards.hostlink import DATA, INFO, STATUS, FrameFormat, crc16

# 3 beats of 2 signed 5-bit lanes in (2 bytes per beat), 3 beats of 2 unsigned 3-bit lanes out
FMT = FrameFormat(in_width=10, in_beats=3, out_width=6, out_beats=3, in_elem=(5, True),
                  in_lanes=2, out_elem=(3, False), out_lanes=2)


def golden(values):
    """The stand-in kernel: |x| // 2, clipped to 7."""
    return np.minimum(np.abs(values) // 2, 7)


def compute(payload):
    from boards.host import _pack
    values = _unpack_input(payload)
    return _pack(golden(values), FMT.out_beats, FMT.out_lanes, FMT.out_elem, FMT.out_beat_bytes,
                 "output")


def _unpack_input(payload):
    fmt = FrameFormat(in_width=1, in_beats=1, out_width=FMT.in_width, out_beats=FMT.in_beats,
                      out_elem=FMT.in_elem, out_lanes=FMT.in_lanes)
    return unpack_frame(payload, fmt)


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-16, 16, size=(n, 6))


def make_link(**port_hooks):
    device = DeviceModel(FMT, compute, window=2, timeout=0.02)
    port = ModelPort(device, **port_hooks)
    link = HostLink(port, FMT, retries=3, reply_timeout=0.1, device_timeout=0.02,
                    sleep=port.sleep)
    return link, port, device


def run_checked(link, inputs):
    outputs = link.run([pack_frame(x, FMT) for x in inputs])
    got = np.array([unpack_frame(o, FMT) for o in outputs])
    np.testing.assert_array_equal(got, golden(inputs))


def test_crc16_check_value():
    assert crc16(b"123456789") == 0x29B1
    frame = encode(DATA, 7, b"\x01\x02")
    assert frame[:2] == b"\xa5\x5a" and frame[2:6] == bytes([DATA, 7, 0, 2])
    assert crc16(frame[2:]) == 0


def test_pack_unpack_round_trip():
    x = np.array([[-16, 15], [0, -1], [7, -8]])
    data = pack_frame(x, FMT)
    assert len(data) == FMT.in_len == 6
    # beat 0: lane 0 = -16 (0b10000) in bits 0-4, lane 1 = 15 (0b01111) in bits 5-9
    assert data[:2] == (0b10000 | 0b01111 << 5).to_bytes(2, "little")
    assert (_unpack_input(data) == x.reshape(-1)).all()
    with pytest.raises(ValueError, match="does not fit signed 5-bit"):
        pack_frame(np.full(6, 16), FMT)
    with pytest.raises(ValueError, match="has 6 elements"):
        pack_frame(np.zeros(5, dtype=int), FMT)


def test_decoder_resyncs_and_checks_crc():
    decoder = ReplyDecoder()
    good = encode(0, 1, b"abc")
    bad = bytearray(encode(0, 2, b"xyz"))
    bad[7] ^= 0x10
    replies = decoder.feed(b"\x00\xa5\x13" + good[:5])
    assert replies == [] and decoder.partial
    replies = decoder.feed(good[5:] + bytes(bad))
    assert [(r.seq, r.payload, r.crc_ok) for r in replies] == [(1, b"abc", True),
                                                               (2, bytes(bad[6:9]), False)]


def test_info_and_clean_run():
    link, port, device = make_link()
    info = link.check_info()
    assert info == {"version": 1, "window": 2, "in_len": FMT.in_len, "out_len": FMT.out_len}
    assert link.window == 2
    run_checked(link, frames(10))
    assert link.stats.frames == 10 and link.stats.error_count == 0
    assert device.frames_computed == 10


def test_info_mismatch_is_reported():
    device = DeviceModel(FMT, compute)
    port = ModelPort(device)
    other = FrameFormat(in_width=24, in_beats=3, out_width=6, out_beats=3)
    link = HostLink(port, other, sleep=port.sleep)
    with pytest.raises(FormatMismatch, match="is the board programmed"):
        link.check_info()


def test_corrupted_request_is_reported_and_resent():
    hits = []

    def corrupt_third(data):
        hits.append(data)
        if len(hits) == 3:
            data = bytearray(data)
            data[7] ^= 0x01       # a payload bit
            return bytes(data)
        return data

    link, port, device = make_link(on_write=corrupt_third)
    run_checked(link, frames(6))
    assert link.stats.errors == {"device": 1}
    # the bad frame never reached the kernel: 6 computed, no more
    assert device.frames_computed == 6


def test_bad_crc_reply_detected():
    count = []

    def corrupt_second_reply(data):
        count.append(1)
        if len(count) == 2:
            data = bytearray(data)
            data[6] ^= 0x80
        return bytes(data)

    link, port, device = make_link(on_reply=corrupt_second_reply)
    run_checked(link, frames(4))
    assert link.stats.errors == {"bad_crc": 1}


def test_truncated_request_times_out_on_the_device():
    sent = []

    def cut_second(data):
        sent.append(data)
        return data[:9] if len(sent) == 2 else data

    link, port, device = make_link(on_write=cut_second)
    link.window = 1
    run_checked(link, frames(3))
    # the device reported the half frame (TIMEOUT), and the frame was sent again
    assert link.stats.errors == {"device": 1}
    assert link.stats.resends == 1


def test_half_frame_followed_by_whole_frames_recovers():
    sent = []

    def cut_first(data):
        sent.append(data)
        return data[:5] if len(sent) == 1 else data

    link, port, device = make_link(on_write=cut_first)
    run_checked(link, frames(5))
    assert link.stats.error_count >= 1 and link.stats.frames == 5


def test_truncated_reply():
    calls = []

    def cut(data):
        calls.append(1)
        return data[:4] if len(calls) == 1 else data

    link, port, device = make_link(on_reply=cut)
    link.window = 1
    run_checked(link, frames(2))
    assert link.stats.errors == {"truncated": 1}


def test_wrong_counter():
    calls = []

    def renumber(data):
        calls.append(1)
        if len(calls) == 1:       # a stale reply: right CRC, wrong seq
            return encode(data[2], (data[3] + 5) & 0xFF, data[6:-2])
        return data

    link, port, device = make_link(on_reply=renumber)
    link.window = 1
    run_checked(link, frames(2))
    assert link.stats.errors == {"wrong_seq": 1}


def test_silent_device_times_out_after_retries():
    link, port, device = make_link(on_reply=lambda data: b"")
    with pytest.raises(LinkTimeout, match=r"frame 0: no reply within .*\(3 attempts\)"):
        link.run([pack_frame(frames(1)[0], FMT)])
    assert link.stats.errors == {"timeout": 3}


def test_persistent_device_error_raises():
    link, port, device = make_link(on_write=lambda data: data[:2] + bytes([0x7F]) + data[3:])
    with pytest.raises(DeviceError, match="BAD_TYPE") as info:
        link.run([pack_frame(frames(1)[0], FMT)])
    assert info.value.name == "BAD_TYPE"


def test_device_model_overflow_beyond_window():
    device = DeviceModel(FMT, compute, window=2)
    payload = pack_frame(frames(1)[0], FMT)
    for seq in range(3):
        device.receive(encode(DATA, seq, payload))
    decoded = ReplyDecoder().feed(device.take())
    assert [(r.seq, r.kind) for r in decoded] == [(0, 0), (1, 0), (2, STATUS["OVERFLOW"])]


def test_device_model_bad_length_and_info():
    device = DeviceModel(FMT, compute)
    device.receive(encode(DATA, 1, b"\x00"))
    device.receive(encode(INFO, 2))
    decoded = ReplyDecoder().feed(device.take())
    assert [(r.seq, r.kind) for r in decoded] == [(1, STATUS["BAD_LENGTH"]), (2, 0)]


def test_sequence_error_class_is_a_link_error():
    assert issubclass(SequenceError, Exception) and issubclass(TruncatedError, Exception)
    assert issubclass(ChecksumError, Exception)
