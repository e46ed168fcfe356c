"""Host side of the UART host link: the driver, and a Python model of the device.

The protocol is described in :mod:`boards.hostlink`. :class:`HostLink` drives a device through
any object with pyserial's ``read``/``write``/``timeout``/``reset_input_buffer``::

    import serial
    from boards.host import HostLink
    with serial.Serial("/dev/ttyUSB1", 1_000_000, timeout=0.5) as port:
        link = HostLink(port, frame_format)
        link.check_info()                     # the device runs a kernel of this format
        outputs = link.run([pack_frame(x, frame_format) for x in inputs])
        link.stats                            # frames, seconds, frames_per_s, errors

It keeps up to ``window`` requests in flight, matches each reply to the oldest request by its
frame counter, checks its CRC, and recovers from every error the same way: wait until the line
has been quiet for longer than the device's timeout, drop what arrived, resend every request
that has no good reply yet. A frame that fails ``retries`` times in a row raises the
:class:`LinkError` of its last failure.

:class:`DeviceModel` is the device's protocol in Python (the same parser, checks and replies
as :class:`boards.hostlink.HostLinkShell`, with a function in place of the kernel), and
:class:`ModelPort` a serial-port stand-in around it with a virtual clock and hooks that corrupt,
cut or drop bytes, so the driver is tested without hardware.
"""

import dataclasses
import time

import numpy as np

from .hostlink import (DATA, INFO, INFO_LEN, MAX_PAYLOAD, PROTOCOL_VERSION, STATUS, STATUS_NAMES,
                       SYNC, crc16)

__all__ = ["encode", "Reply", "ReplyDecoder", "HostLink", "LinkStats", "DeviceModel",
           "ModelPort", "pack_frame", "unpack_frame", "LinkError", "ChecksumError",
           "TruncatedError", "SequenceError", "LinkTimeout", "DeviceError", "FormatMismatch"]


class LinkError(RuntimeError):
    """A request did not get a good reply. ``seq`` is its frame counter (or None)."""

    kind = "error"

    def __init__(self, message, seq=None):
        super().__init__(message)
        self.seq = seq


class ChecksumError(LinkError):
    """A reply arrived with a wrong CRC."""
    kind = "bad_crc"


class TruncatedError(LinkError):
    """A reply stopped before its end."""
    kind = "truncated"


class SequenceError(LinkError):
    """A reply's frame counter is not the one of the oldest request in flight."""
    kind = "wrong_seq"


class LinkTimeout(LinkError):
    """No reply at all within the read timeout."""
    kind = "timeout"


class DeviceError(LinkError):
    """The device replied with an error status (``status``, ``name``)."""
    kind = "device"

    def __init__(self, message, seq=None, status=None):
        super().__init__(message, seq)
        self.status = status
        self.name = STATUS_NAMES.get(status, f"0x{status:02x}" if status is not None else "?")


class FormatMismatch(LinkError):
    """The device's INFO does not match the expected frame format."""
    kind = "format"


def encode(kind, seq, payload=b""):
    """One frame (request or reply) of the protocol: sync, ``kind`` (type or status), ``seq``,
    length, ``payload``, CRC."""
    payload = bytes(payload)
    if not 0 <= kind <= 255 or not 0 <= seq <= 255:
        raise ValueError(f"type/status and seq must be bytes, not {kind!r} and {seq!r}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload):,} bytes is longer than {MAX_PAYLOAD:,}")
    body = bytes([kind, seq, len(payload) >> 8, len(payload) & 0xFF]) + payload
    crc = crc16(body)
    return bytes(SYNC) + body + bytes([crc >> 8, crc & 0xFF])


@dataclasses.dataclass(frozen=True)
class Reply:
    """A decoded frame: ``kind`` (reply status or request type), ``seq``, ``payload``, and
    ``crc_ok``."""
    kind: int
    seq: int
    payload: bytes
    crc_ok: bool = True


class ReplyDecoder:
    """Incremental frame decoder (either direction): :meth:`feed` bytes, get whole frames.

    Hunts for the sync bytes, reads the header and ``length`` payload bytes, checks the CRC.
    ``max_length`` bounds the length field (a longer one is taken for noise and hunted past).
    :attr:`partial` tells whether a frame has begun and not ended.
    """

    def __init__(self, max_length=MAX_PAYLOAD):
        self._max_length = max_length
        self._buffer = bytearray()

    @property
    def partial(self):
        return bool(self._buffer)

    def reset(self):
        self._buffer.clear()

    def feed(self, data):
        """Add bytes; return the list of :class:`Reply` completed by them."""
        self._buffer += data
        frames = []
        while True:
            start = self._buffer.find(bytes(SYNC))
            if start < 0:
                # keep a trailing first sync byte: the second may follow
                keep = 1 if self._buffer[-1:] == bytes(SYNC[:1]) else 0
                del self._buffer[:len(self._buffer) - keep]
                return frames
            del self._buffer[:start]
            if len(self._buffer) < 6:
                return frames
            length = self._buffer[4] << 8 | self._buffer[5]
            if length > self._max_length:
                del self._buffer[:1]
                continue
            end = 6 + length + 2
            if len(self._buffer) < end:
                return frames
            frame = bytes(self._buffer[:end])
            del self._buffer[:end]
            frames.append(Reply(frame[2], frame[3], frame[6:6 + length],
                                crc16(frame[2:]) == 0))


def pack_frame(values, fmt):
    """Bytes of one input frame: ``values`` (``in_beats * in_lanes`` integers, any shape) as
    beats of ``in_lanes`` elements, each beat padded to whole bytes, least significant byte
    first."""
    return _pack(values, fmt.in_beats, fmt.in_lanes, fmt.in_elem, fmt.in_beat_bytes, "input")


def unpack_frame(data, fmt):
    """The ``out_beats * out_lanes`` output elements of one reply payload (int64 array)."""
    bits, signed = fmt.out_elem
    if len(data) != fmt.out_len:
        raise ValueError(f"an output frame has {fmt.out_len} bytes, not {len(data)}")
    values = []
    for beat in range(fmt.out_beats):
        chunk = data[beat * fmt.out_beat_bytes:(beat + 1) * fmt.out_beat_bytes]
        word = int.from_bytes(chunk, "little")
        for lane in range(fmt.out_lanes):
            value = word >> (lane * bits) & ((1 << bits) - 1)
            if signed and value >> (bits - 1):
                value -= 1 << bits
            values.append(value)
    return np.array(values, dtype=np.int64)


def _pack(values, beats, lanes, elem, beat_bytes, what):
    bits, signed = elem
    array = np.asarray(values)
    if array.dtype.kind not in "iub":
        raise ValueError(f"{what} values must be integers, not dtype {array.dtype}")
    flat = array.astype(np.int64).reshape(-1)
    if flat.size != beats * lanes:
        raise ValueError(f"an {what} frame has {beats * lanes} elements ({beats} beats of "
                         f"{lanes}), not {flat.size} (shape {array.shape})")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if flat.size and (flat.min() < lo or flat.max() > hi):
        index = int(np.argmax((flat < lo) | (flat > hi)))
        raise ValueError(f"{what} element {index} = {int(flat[index])} does not fit "
                         f"{'signed' if signed else 'unsigned'} {bits}-bit elements "
                         f"({lo}..{hi})")
    out = bytearray()
    mask = (1 << bits) - 1
    for beat in range(beats):
        word = 0
        for lane in range(lanes):
            word |= (int(flat[beat * lanes + lane]) & mask) << (lane * bits)
        out += word.to_bytes(beat_bytes, "little")
    return bytes(out)


@dataclasses.dataclass
class LinkStats:
    """What :meth:`HostLink.run` did: good frames, wall-clock seconds, errors by kind."""
    frames: int = 0
    seconds: float = 0.0
    resends: int = 0
    errors: dict = dataclasses.field(default_factory=dict)

    @property
    def frames_per_s(self):
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    @property
    def error_count(self):
        return sum(self.errors.values())


class HostLink:
    """Driver for a device running :class:`boards.hostlink.HostLinkShell`.

    Parameters
    ----------
    port
        An open serial port (pyserial ``Serial``) or anything with ``read(n)``, ``write(b)``,
        ``timeout`` and ``reset_input_buffer()``.
    frame_format : FrameFormat, optional
        The kernel's frame format; checked against the device by :meth:`check_info`.
    window : int, optional
        Requests in flight (default: the device's window from INFO, else 1).
    retries : int
        Failed attempts of one frame before giving up.
    reply_timeout : float
        Seconds to wait for a reply byte.
    device_timeout : float
        The device's frame timeout (seconds); recovery waits for twice this.
    sleep : callable
        ``sleep(seconds)``; the model port passes its virtual clock.
    """

    def __init__(self, port, frame_format=None, *, window=None, retries=3, reply_timeout=1.0,
                 device_timeout=0.02, sleep=time.sleep):
        self.port = port
        self.frame_format = frame_format
        self.window = window
        self.retries = retries
        self.reply_timeout = reply_timeout
        self.device_timeout = device_timeout
        self._sleep = sleep
        self._decoder = ReplyDecoder()
        self._queued = []           # replies decoded but not yet used
        self._seq = 0
        self.stats = LinkStats()

    # --- single exchanges -----------------------------------------------------------------

    def _next_seq(self):
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFF
        return seq

    def _read_reply(self):
        """The next decoded reply, or raise LinkTimeout / TruncatedError."""
        self.port.timeout = self.reply_timeout
        while True:
            waiting = getattr(self.port, "in_waiting", 0) or 1
            data = self.port.read(waiting)
            if not data:
                if self._decoder.partial:
                    self._decoder.reset()
                    raise TruncatedError(f"a reply stopped after part of it had arrived (no byte "
                                         f"for {self.reply_timeout} s)")
                raise LinkTimeout(f"no reply within {self.reply_timeout} s")
            self._queued += self._decoder.feed(data)
            if self._queued:
                return self._queued.pop(0)

    def _next_reply(self):
        if self._queued:
            return self._queued.pop(0)
        return self._read_reply()

    def _check(self, reply, seq):
        if not reply.crc_ok:
            raise ChecksumError(f"reply to frame {seq} has a bad CRC", seq)
        if reply.seq != seq:
            raise SequenceError(f"reply for frame {reply.seq} while waiting for frame {seq}", seq)
        if reply.kind != STATUS["OK"]:
            name = STATUS_NAMES.get(reply.kind, f"status 0x{reply.kind:02x}")
            raise DeviceError(f"device reported {name} for frame {seq}", seq, reply.kind)
        return reply.payload

    def _recover(self):
        """Wait until the device has timed out any half frame and the line has been quiet for
        twice the device's timeout, dropping whatever arrives meanwhile."""
        quiet = 2 * self.device_timeout
        self._sleep(quiet)
        self.port.timeout = quiet
        while self.port.read(4096):
            pass
        self._decoder.reset()
        self._queued = []

    def info(self):
        """Ask the device for its INFO: ``{"version", "window", "in_len", "out_len"}``."""
        last = None
        for _ in range(self.retries):
            seq = self._next_seq()
            self.port.write(encode(INFO, seq))
            try:
                payload = self._check(self._next_reply(), seq)
                if len(payload) != INFO_LEN:
                    raise FormatMismatch(f"INFO reply has {len(payload)} bytes, not {INFO_LEN}",
                                         seq)
                return {"version": payload[0], "window": payload[1],
                        "in_len": payload[2] << 8 | payload[3],
                        "out_len": payload[4] << 8 | payload[5]}
            except FormatMismatch:
                raise
            except LinkError as error:
                last = error
                self._count(error)
                self._recover()
        raise last

    def check_info(self):
        """Compare the device's INFO with :attr:`frame_format`; adopt its window. Returns the
        INFO dict; raises :class:`FormatMismatch` on a difference."""
        info = self.info()
        if info["version"] != PROTOCOL_VERSION:
            raise FormatMismatch(f"device speaks host-link protocol {info['version']}, this "
                                 f"host {PROTOCOL_VERSION}")
        fmt = self.frame_format
        if fmt is not None and (info["in_len"], info["out_len"]) != (fmt.in_len, fmt.out_len):
            raise FormatMismatch(
                f"device takes {info['in_len']}-byte frames and returns {info['out_len']} bytes; "
                f"the model expects {fmt.in_len} and {fmt.out_len}: is the board programmed "
                f"with this model's bitstream?")
        if self.window is None:
            self.window = max(1, info["window"])
        return info

    # --- streaming ------------------------------------------------------------------------

    def _count(self, error):
        self.stats.errors[error.kind] = self.stats.errors.get(error.kind, 0) + 1

    def run(self, frames):
        """Send every request payload in ``frames`` (bytes each) and return the replies'
        payloads in order. Updates :attr:`stats`."""
        frames = [bytes(frame) for frame in frames]
        if self.frame_format is not None:
            for n, frame in enumerate(frames):
                if len(frame) != self.frame_format.in_len:
                    raise ValueError(f"frame {n} has {len(frame)} bytes; the device takes "
                                     f"{self.frame_format.in_len}")
        window = self.window or 1
        results = [None] * len(frames)
        failures = [0] * len(frames)
        in_flight = []      # (frame index, seq), oldest first
        next_frame = 0
        start = time.perf_counter()
        while next_frame < len(frames) or in_flight:
            while next_frame < len(frames) and len(in_flight) < window:
                seq = self._next_seq()
                self.port.write(encode(DATA, seq, frames[next_frame]))
                in_flight.append((next_frame, seq))
                next_frame += 1
            index, seq = in_flight[0]
            try:
                results[index] = self._check(self._next_reply(), seq)
                in_flight.pop(0)
                failures[index] = 0
                self.stats.frames += 1
            except LinkError as error:
                self._count(error)
                failures[index] += 1
                if failures[index] >= self.retries:
                    self.stats.seconds += time.perf_counter() - start
                    error.args = (f"frame {index}: {error} ({failures[index]} attempts)",)
                    raise error
                self._recover()
                # resend everything in flight, in order, under new frame counters
                self.stats.resends += len(in_flight)
                next_frame = in_flight[0][0]
                in_flight = []
        self.stats.seconds += time.perf_counter() - start
        return results


# --- a model of the device ------------------------------------------------------------------

class DeviceModel:
    """The device's side of the protocol in Python.

    Parameters
    ----------
    frame_format : FrameFormat
    compute : callable
        ``compute(input_payload_bytes) -> output_payload_bytes`` (``out_len`` bytes).
    window : int
        Requests held at once.
    timeout : float
        Seconds without a byte after which a half frame is dropped (TIMEOUT).

    :meth:`receive` takes bytes at time ``now``; replies accumulate in :attr:`replies` until
    :meth:`take` collects them, which is when they count as sent (so a request arriving while
    ``window`` replies are uncollected gets OVERFLOW, as on the device when its transmitter
    falls behind).
    """

    def __init__(self, frame_format, compute, *, window=2, timeout=0.02):
        self.frame_format = frame_format
        self.compute = compute
        self.window = window
        self.timeout = timeout
        self.replies = []           # (seq, encoded bytes) not yet collected
        self._state = "HUNT0"
        self._last = 0.0
        self._header = bytearray()
        self._payload = bytearray()
        self._overflow = False
        self.frames_computed = 0

    def _reply(self, status, payload=b""):
        if len(self.replies) < self.window + 1:
            self.replies.append(encode(STATUS[status], self._header[1], payload))

    def tick(self, now):
        """Apply the timeout at time ``now``."""
        if self._state not in ("HUNT0",) and now - self._last >= self.timeout:
            if self._state in ("LEN_HI", "LEN_LO", "PAYLOAD", "CRC_HI", "CRC_LO"):
                self._reply("TIMEOUT")
            self._state = "HUNT0"

    def receive(self, data, now=0.0):
        fmt = self.frame_format
        for byte in bytes(data):
            self.tick(now)
            self._last = now
            state = self._state
            if state == "HUNT0":
                self._state = "HUNT1" if byte == SYNC[0] else "HUNT0"
            elif state == "HUNT1":
                self._state = "TYPE" if byte == SYNC[1] else "HUNT1" if byte == SYNC[0] else "HUNT0"
            elif state == "TYPE":
                self._header = bytearray([byte])
                self._state = "SEQ"
            elif state in ("SEQ", "LEN_HI"):
                self._header.append(byte)
                self._state = "LEN_HI" if state == "SEQ" else "LEN_LO"
            elif state == "LEN_LO":
                self._header.append(byte)
                kind, length = self._header[0], self._header[2] << 8 | byte
                if kind not in (DATA, INFO):
                    self._reply("BAD_TYPE")
                    self._state = "HUNT0"
                elif length != (fmt.in_len if kind == DATA else 0):
                    self._reply("BAD_LENGTH")
                    self._state = "HUNT0"
                else:
                    self._overflow = len(self.replies) >= self.window
                    self._payload = bytearray()
                    self._state = "PAYLOAD" if kind == DATA else "CRC_HI"
            elif state == "PAYLOAD":
                self._payload.append(byte)
                if len(self._payload) == fmt.in_len:
                    self._state = "CRC_HI"
            elif state == "CRC_HI":
                self._crc_hi = byte
                self._state = "CRC_LO"
            elif state == "CRC_LO":
                self._state = "HUNT0"
                body = bytes(self._header) + bytes(self._payload) + bytes([self._crc_hi, byte])
                if crc16(body) != 0:
                    self._reply("BAD_CRC")
                elif self._overflow:
                    self._reply("OVERFLOW")
                elif self._header[0] == DATA:
                    out = bytes(self.compute(bytes(self._payload)))
                    if len(out) != fmt.out_len:
                        raise ValueError(f"compute returned {len(out)} bytes, not {fmt.out_len}")
                    self.frames_computed += 1
                    self._reply("OK", out)
                else:
                    self._reply("OK", bytes([PROTOCOL_VERSION, self.window, fmt.in_len >> 8,
                                             fmt.in_len & 0xFF, fmt.out_len >> 8,
                                             fmt.out_len & 0xFF]))

    def take(self):
        """Collect (send) every reply made so far."""
        out = b"".join(self.replies)
        self.replies = []
        return out


class ModelPort:
    """A serial port stand-in wired to a :class:`DeviceModel`, with a virtual clock.

    ``write`` delivers bytes to the device (through ``on_write(bytes) -> bytes`` if given,
    e.g. to corrupt or cut a request); ``read(n)`` returns reply bytes (through
    ``on_reply(bytes) -> bytes``); with nothing to return it lets ``timeout`` seconds of
    virtual time pass (so the device's own timeout can fire) and returns what there is then.
    ``sleep(seconds)`` advances the virtual clock; pass it to :class:`HostLink`.
    """

    def __init__(self, device, *, on_write=None, on_reply=None):
        self.device = device
        self.on_write = on_write
        self.on_reply = on_reply
        self.timeout = 1.0
        self.now = 0.0
        self.written = []
        self._rx = bytearray()

    def write(self, data):
        data = bytes(data)
        self.written.append(data)
        if self.on_write is not None:
            data = self.on_write(data)
        self.device.receive(data, self.now)
        return len(data)

    def _collect(self):
        data = self.device.take()
        if data and self.on_reply is not None:
            data = self.on_reply(data)
        self._rx += data

    @property
    def in_waiting(self):
        self._collect()
        return len(self._rx)

    def read(self, size=1):
        self._collect()
        if not self._rx:
            self.sleep(self.timeout)
            self._collect()
        data = bytes(self._rx[:size])
        del self._rx[:size]
        return data

    def sleep(self, seconds):
        self.now += seconds
        self.device.tick(self.now)

    def reset_input_buffer(self):
        self._collect()
        self._rx.clear()

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
