"""Host link: a stream kernel behind a UART, with framed, checked requests and replies.

:class:`HostLinkShell` puts any stream kernel (ports ``i``/``o``, ``in_beats_per_frame``,
``out_beats_per_frame``) behind a UART (:mod:`boards.uart`), for boards without a processor.
The host (:mod:`boards.host`) sends one *request* per input frame and gets one *reply* per
request, in the order of the requests.

Protocol
--------
Requests and replies have the same layout (multi-byte fields big-endian)::

    byte 0      0xA5                sync
    byte 1      0x5A                sync
    byte 2      type / status       request: 0x01 DATA, 0x02 INFO; reply: status (below)
    byte 3      seq                 frame counter, chosen by the host; the reply echoes it
    byte 4, 5   length L            payload bytes that follow
    byte 6..    payload             L bytes
    last 2      CRC                 CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF,
                                    not reflected, no final XOR) of bytes 2 .. 5+L

The CRC is sent high byte first, so the CRC of bytes 2 up to and including the CRC itself is
0. Payloads:

* DATA request: exactly ``in_len`` = ``in_beats_per_frame * ceil(in_width / 8)`` bytes, one
  input frame: beat after beat, each beat's ``tdata`` padded to whole bytes and sent
  least significant byte first (element k of a beat at bits ``[k*w, (k+1)*w)``, as
  everywhere in hwgen).
* DATA reply (status 0x00): ``out_len`` bytes, the kernel's output frame in the same format
  (for a classifier, its label and, if the network outputs them, the scores).
* INFO request: no payload. INFO reply (status 0x00), 6 bytes: protocol version (1),
  window (requests the device holds at once), ``in_len`` (2 bytes), ``out_len`` (2 bytes).
* Error replies have no payload. Status codes (:data:`STATUS`):

  ====  ============  ===========================================================
  0x00  OK
  0x01  BAD_CRC       the CRC did not match, or a character had a framing error
  0x02  BAD_LENGTH    the length does not fit the type (DATA: ``in_len``, INFO: 0)
  0x03  TIMEOUT       the frame stopped (no character for ``timeout``) after its seq
  0x04  OVERFLOW      more than ``window`` requests were waiting for their replies
  0x05  BAD_TYPE      unknown request type
  ====  ============  ===========================================================

A request in error is dropped whole: no byte of it reaches the kernel, because a DATA payload
waits in a frame buffer until its CRC has been checked.

Receiving: the device hunts for ``A5 5A``; after a header error (BAD_TYPE, BAD_LENGTH) it hunts
again from the next character, after a complete frame from its end. A frame that stops half-way
is ended by the timeout (reported as TIMEOUT once its seq is known, silently before). A
half-sent frame followed at once by a whole one turns into one BAD_CRC (or BAD_LENGTH) frame
and a tail the device hunts through, so the host's recovery is: on an error or a missing
reply, wait longer than the timeout, then resend.

Flow control: the UART receiver is never stalled (every character is taken as it arrives).
The device holds up to ``window`` requests (default 2) between their last byte and the end of
their reply, with a frame buffer of ``window * in_len`` bytes; a host that waits for a reply
before sending the request ``window`` places later (:class:`boards.host.HostLink` does)
never overruns it, whatever the kernel's back-pressure: the kernel's output waits for the UART
transmitter (``o.ready`` low) and its input for the frame buffer. A request beyond the window
gets OVERFLOW (and, while that reply itself cannot be queued, nothing).
"""

import dataclasses
import math

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwgen.checks import check_int

from .uart import UARTRx, UARTTx

__all__ = ["HostLinkShell", "FrameFormat", "crc16", "crc16_next", "SYNC", "DATA", "INFO",
           "STATUS", "STATUS_NAMES", "PROTOCOL_VERSION", "INFO_LEN", "MAX_PAYLOAD"]

SYNC = (0xA5, 0x5A)
DATA, INFO = 0x01, 0x02
STATUS = {"OK": 0x00, "BAD_CRC": 0x01, "BAD_LENGTH": 0x02, "TIMEOUT": 0x03, "OVERFLOW": 0x04,
          "BAD_TYPE": 0x05}
STATUS_NAMES = {code: name for name, code in STATUS.items()}
PROTOCOL_VERSION = 1
INFO_LEN = 6
MAX_PAYLOAD = 0xFFFF
_CRC_POLY = 0x1021
_CRC_INIT = 0xFFFF


def crc16(data, crc=_CRC_INIT):
    """CRC-16/CCITT-FALSE of ``data`` (bytes), continuing from ``crc``."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def _crc16_taps():
    """For each bit of the next CRC: the bits of (crc, byte) it is the XOR of. The CRC step is
    linear over GF(2), so it follows from the step on each basis vector (with no initial
    value)."""
    def step(crc, byte):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
        return crc
    columns = [("crc", k, step(1 << k, 0)) for k in range(16)]
    columns += [("byte", k, step(0, 1 << k)) for k in range(8)]
    return [[(source, k) for source, k, image in columns if image >> bit & 1]
            for bit in range(16)]


_CRC16_TAPS = _crc16_taps()


def crc16_next(crc, byte):
    """The same CRC step for one byte, on Amaranth values (16-bit ``crc``, 8-bit ``byte``):
    each result bit is an XOR of a few input bits."""
    sources = {"crc": crc, "byte": byte}
    bits = []
    for taps in _CRC16_TAPS:
        bit = Const(0, 1)
        for source, k in taps:
            bit = bit ^ sources[source][k]
        bits.append(bit)
    return Cat(*bits)


def _payload_shape(component, port):
    member = component.signature.members[port]
    return member.signature.members["payload"].shape


@dataclasses.dataclass(frozen=True)
class FrameFormat:
    """How a kernel's frames travel as bytes.

    ``in_width``/``out_width`` are beat widths in bits, ``in_beats``/``out_beats`` beats per
    frame; ``in_elem``/``out_elem`` are ``(bits, signed)`` of one element and
    ``in_lanes``/``out_lanes`` elements per beat (1 element of the beat's width when the
    payload is not an array).
    """
    in_width: int
    in_beats: int
    out_width: int
    out_beats: int
    in_elem: tuple = None
    in_lanes: int = 1
    out_elem: tuple = None
    out_lanes: int = 1

    def __post_init__(self):
        for name in ("in_width", "in_beats", "out_width", "out_beats", "in_lanes", "out_lanes"):
            check_int(name, getattr(self, name), 1)
        if self.in_elem is None:
            object.__setattr__(self, "in_elem", (self.in_width // self.in_lanes, False))
        if self.out_elem is None:
            object.__setattr__(self, "out_elem", (self.out_width // self.out_lanes, False))
        for side in ("in", "out"):
            length = getattr(self, f"{side}_len")
            if length > MAX_PAYLOAD:
                raise ValueError(f"a frame of {length:,} bytes ({side}put) is longer than the "
                                 f"host link's {MAX_PAYLOAD:,}-byte limit")

    @classmethod
    def from_component(cls, component):
        """The format of a stream kernel (``i``/``o`` ports, ``*_beats_per_frame``)."""
        members = getattr(getattr(component, "signature", None), "members", {})
        for port in ("i", "o"):
            if port not in members:
                raise ValueError(f"{type(component).__name__} is not a stream kernel: it has no "
                                 f"stream port {port!r}")
        fields = {}
        for side, port in (("in", "i"), ("out", "o")):
            layout = _payload_shape(component, port)
            width = Shape.cast(layout).width
            elem_shape, lanes = getattr(layout, "elem_shape", layout), getattr(layout, "length", 1)
            elem = Shape.cast(elem_shape)
            fields[f"{side}_width"] = width
            fields[f"{side}_elem"] = (elem.width, elem.signed)
            fields[f"{side}_lanes"] = lanes
            beats = getattr(component, f"{side}_beats_per_frame", 1)
            fields[f"{side}_beats"] = beats
        return cls(**fields)

    @property
    def in_beat_bytes(self):
        return math.ceil(self.in_width / 8)

    @property
    def out_beat_bytes(self):
        return math.ceil(self.out_width / 8)

    @property
    def in_len(self):
        """Bytes of a DATA request's payload."""
        return self.in_beats * self.in_beat_bytes

    @property
    def out_len(self):
        """Bytes of a DATA reply's payload."""
        return self.out_beats * self.out_beat_bytes


# Reply queue entry kinds
_REPLY_DATA, _REPLY_INFO, _REPLY_ERROR = 0, 1, 2


class HostLinkShell(wiring.Component):
    """A stream kernel behind a UART, speaking the protocol of this module.

    Parameters
    ----------
    kernel : wiring.Component
        Stream kernel with ports ``i``/``o``; ``in_beats_per_frame``/``out_beats_per_frame``
        (default 1) give the frame lengths.
    divisor : int
        Clock cycles per UART bit (:func:`boards.uart.uart_divisor`).
    timeout_cycles : int
        A frame with no character for this many cycles is ended (TIMEOUT); at least 20 bit
        times.
    window : int
        Requests held at once (frame buffer of ``window * in_len`` bytes), at least 1.

    Members
    -------
    rx : In(1, init=1)
        UART line from the host.
    tx : Out(1, init=1)
        UART line to the host.
    """

    def __init__(self, kernel, *, divisor, timeout_cycles, window=2):
        if not isinstance(kernel, wiring.Component):
            raise TypeError(f"kernel must be an amaranth wiring.Component, not {kernel!r}")
        self._format = FrameFormat.from_component(kernel)
        self._kernel = kernel
        self._rx = UARTRx(divisor=divisor)
        self._tx = UARTTx(divisor=divisor)
        check_int("window", window, 1, 255)
        check_int("timeout_cycles", timeout_cycles, 20 * divisor)   # two characters
        self._divisor = divisor
        self._window = window
        self._timeout = timeout_cycles
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    kernel = property(lambda self: self._kernel)
    frame_format = property(lambda self: self._format)
    divisor = property(lambda self: self._divisor)
    window = property(lambda self: self._window)
    timeout_cycles = property(lambda self: self._timeout)

    @property
    def info_payload(self):
        """The 6 bytes of the INFO reply."""
        fmt = self._format
        return bytes([PROTOCOL_VERSION, self._window, fmt.in_len >> 8, fmt.in_len & 0xFF,
                      fmt.out_len >> 8, fmt.out_len & 0xFF])

    def elaborate(self, platform):
        m = Module()
        fmt, window = self._format, self._window
        m.submodules.uart_rx = rx = self._rx
        m.submodules.uart_tx = tx = self._tx
        m.submodules.kernel = kernel = self._kernel
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        buffer_len = window * fmt.in_len
        m.submodules.frames = frames = memory.Memory(shape=8, depth=buffer_len, init=[])
        write = frames.write_port()
        read = frames.read_port()
        m.submodules.replies = replies = SyncFIFOBuffered(width=18, depth=window + 1)

        pending = Signal(range(window + 2))     # replies queued or being sent
        slots_used = Signal(range(window + 1))  # committed frames not yet read by the feeder
        push = Signal()
        push_kind = Signal(2)
        push_status = Signal(8)
        push_seq = Signal(8)
        reply_done = Signal()
        commit = Signal()
        slot_freed = Signal()
        m.d.comb += [
            replies.w_data.eq(Cat(push_seq, push_status, push_kind)),
            replies.w_en.eq(push & replies.w_rdy),  # a reply that finds no room is dropped
        ]
        m.d.sync += pending.eq(pending + replies.w_en - reply_done)
        m.d.sync += slots_used.eq(slots_used + commit - slot_freed)

        self._receive(m, rx, write, pending, slots_used, push, push_kind, push_status,
                      push_seq, commit)
        self._feed(m, read, kernel, slots_used, slot_freed)
        self._transmit(m, tx, replies, kernel, reply_done)
        return m

    def _receive(self, m, rx, write, pending, slots_used, push, push_kind, push_status, push_seq,
                 commit):
        """Parse requests; payloads into the frame buffer; one reply queue entry per request."""
        fmt, window = self._format, self._window
        byte = rx.o.payload.data
        got = rx.o.valid
        kind = Signal(8)
        seq = Signal(8)
        length_hi = Signal(8)
        crc = Signal(16)
        crc_after = Signal(16)
        m.d.comb += crc_after.eq(crc16_next(crc, byte))
        corrupt = Signal()
        overflow = Signal()
        count = Signal(range(max(2, fmt.in_len)))
        base = Signal(range(window * fmt.in_len))
        idle = Signal(range(self._timeout + 1))
        timed_out = Signal()

        with m.If(got):
            m.d.sync += [idle.eq(0), crc.eq(crc_after)]
            with m.If(rx.o.payload.error):
                m.d.sync += corrupt.eq(1)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)
            m.d.comb += timed_out.eq(idle == self._timeout - 1)

        def reply(status, kind=_REPLY_ERROR):
            m.d.comb += [push.eq(1), push_kind.eq(kind), push_status.eq(STATUS[status]),
                         push_seq.eq(seq)]

        with m.FSM(name="receive"):
            with m.State("HUNT0"):
                with m.If(got & (byte == SYNC[0]) & ~rx.o.payload.error):
                    m.next = "HUNT1"
            with m.State("HUNT1"):
                with m.If(got):
                    with m.If((byte == SYNC[1]) & ~rx.o.payload.error):
                        m.next = "TYPE"
                    with m.Elif((byte != SYNC[0]) | rx.o.payload.error):
                        m.next = "HUNT0"
                with m.Elif(timed_out):
                    m.next = "HUNT0"
            with m.State("TYPE"):
                with m.If(got):
                    m.d.sync += [kind.eq(byte), crc.eq(crc16_next(Const(_CRC_INIT, 16), byte)),
                                 corrupt.eq(rx.o.payload.error)]
                    m.next = "SEQ"
                with m.Elif(timed_out):
                    m.next = "HUNT0"
            with m.State("SEQ"):
                with m.If(got):
                    m.d.sync += seq.eq(byte)
                    m.next = "LEN_HI"
                with m.Elif(timed_out):
                    m.next = "HUNT0"
            with m.State("LEN_HI"):
                with m.If(got):
                    m.d.sync += length_hi.eq(byte)
                    m.next = "LEN_LO"
                with m.Elif(timed_out):
                    reply("TIMEOUT")
                    m.next = "HUNT0"
            with m.State("LEN_LO"):
                length = Cat(byte, length_hi)
                with m.If(got):
                    with m.If((kind != DATA) & (kind != INFO)):
                        reply("BAD_TYPE")
                        m.next = "HUNT0"
                    with m.Elif(Mux(kind == DATA, length != fmt.in_len, length != 0)):
                        reply("BAD_LENGTH")
                        m.next = "HUNT0"
                    with m.Else():
                        m.d.sync += [
                            overflow.eq((pending >= window)
                                        | ((kind == DATA) & (slots_used == window))),
                            count.eq(0),
                        ]
                        with m.If(kind == DATA):
                            m.next = "PAYLOAD"
                        with m.Else():
                            m.next = "CRC_HI"
                with m.Elif(timed_out):
                    reply("TIMEOUT")
                    m.next = "HUNT0"
            with m.State("PAYLOAD"):
                with m.If(got):
                    m.d.comb += [write.addr.eq(base + count), write.data.eq(byte),
                                 write.en.eq(~overflow)]
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == fmt.in_len - 1):
                        m.next = "CRC_HI"
                with m.Elif(timed_out):
                    reply("TIMEOUT")
                    m.next = "HUNT0"
            with m.State("CRC_HI"):
                with m.If(got):
                    m.next = "CRC_LO"
                with m.Elif(timed_out):
                    reply("TIMEOUT")
                    m.next = "HUNT0"
            with m.State("CRC_LO"):
                with m.If(got):
                    with m.If((crc_after != 0) | corrupt | rx.o.payload.error):
                        reply("BAD_CRC")
                    with m.Elif(overflow):
                        reply("OVERFLOW")
                    with m.Elif(kind == DATA):
                        reply("OK", _REPLY_DATA)
                        m.d.comb += commit.eq(1)
                        last_base = (window - 1) * fmt.in_len
                        m.d.sync += base.eq(Mux(base == last_base, 0, base + fmt.in_len))
                    with m.Else():
                        reply("OK", _REPLY_INFO)
                    m.next = "HUNT0"
                with m.Elif(timed_out):
                    reply("TIMEOUT")
                    m.next = "HUNT0"

    def _feed(self, m, read, kernel, slots_used, slot_freed):
        """Committed frames from the frame buffer into the kernel, one byte per cycle."""
        fmt, window = self._format, self._window
        beat_bytes = fmt.in_beat_bytes
        address = Signal(range(window * fmt.in_len))
        offset = Signal(range(max(2, fmt.in_len)))
        in_flight = Signal()          # a read issued last cycle; its byte is on read.data now
        gathered = Signal(range(beat_bytes + 1))
        beat = Signal(beat_bytes * 8)
        full = gathered == beat_bytes
        issue = Signal()
        m.d.comb += [
            issue.eq((slots_used != 0) & (gathered + in_flight < beat_bytes)),
            read.addr.eq(address),
            read.en.eq(1),
            kernel.i.valid.eq(full),
            kernel.i.payload.eq(beat[:fmt.in_width]),
        ]
        m.d.sync += in_flight.eq(issue)
        with m.If(issue):
            m.d.sync += [
                address.eq(Mux(address == window * fmt.in_len - 1, 0, address + 1)),
                offset.eq(Mux(offset == fmt.in_len - 1, 0, offset + 1)),
            ]
            m.d.comb += slot_freed.eq(offset == fmt.in_len - 1)
        with m.If(in_flight):
            m.d.sync += [beat.eq(Cat(beat[8:], read.data)), gathered.eq(gathered + 1)]
        with m.Elif(full & kernel.i.ready):
            m.d.sync += gathered.eq(0)

    def _transmit(self, m, tx, replies, kernel, reply_done):
        """Replies in request order; DATA replies take the kernel's output beats as they come."""
        fmt = self._format
        beat_bytes = fmt.out_beat_bytes
        kind = Signal(2)
        status = Signal(8)
        seq = Signal(8)
        length = Signal(16)
        crc = Signal(16)
        out_beat = Signal(range(max(2, fmt.out_beats)))
        out_byte = Signal(range(max(2, beat_bytes)))
        info_index = Signal(range(INFO_LEN))
        info = Array(Const(b, 8) for b in self.info_payload)
        word = Signal(beat_bytes * 8)
        m.d.comb += word.eq(kernel.o.payload.as_value())
        sent = Signal()
        m.d.comb += sent.eq(tx.i.valid & tx.i.ready)
        head_kind = replies.r_data[16:18]

        def send(value, next_state, checked=True):
            m.d.comb += [tx.i.payload.eq(value), tx.i.valid.eq(1)]
            with m.If(sent):
                if checked:
                    m.d.sync += crc.eq(crc16_next(crc, tx.i.payload))
                if next_state is not None:
                    m.next = next_state

        with m.FSM(name="transmit"):
            with m.State("IDLE"):
                with m.If(replies.r_rdy):
                    m.d.comb += replies.r_en.eq(1)
                    m.d.sync += [
                        seq.eq(replies.r_data[0:8]), status.eq(replies.r_data[8:16]),
                        kind.eq(head_kind), crc.eq(_CRC_INIT), out_beat.eq(0), out_byte.eq(0),
                        info_index.eq(0),
                        length.eq(Mux(head_kind == _REPLY_DATA, fmt.out_len,
                                      Mux(head_kind == _REPLY_INFO, INFO_LEN, 0))),
                    ]
                    m.next = "SYNC0"
            with m.State("SYNC0"):
                send(SYNC[0], "SYNC1", checked=False)
            with m.State("SYNC1"):
                send(SYNC[1], "STATUS", checked=False)
            with m.State("STATUS"):
                send(status, "SEQ")
            with m.State("SEQ"):
                send(seq, "LEN_HI")
            with m.State("LEN_HI"):
                send(length[8:], "LEN_LO")
            with m.State("LEN_LO"):
                send(length[:8], None)
                with m.If(sent):
                    with m.If(kind == _REPLY_DATA):
                        m.next = "DATA"
                    with m.Elif(kind == _REPLY_INFO):
                        m.next = "INFO"
                    with m.Else():
                        m.next = "CRC_HI"
            with m.State("DATA"):
                m.d.comb += [tx.i.payload.eq(word.word_select(out_byte, 8)),
                             tx.i.valid.eq(kernel.o.valid)]
                with m.If(sent):
                    m.d.sync += crc.eq(crc16_next(crc, tx.i.payload))
                    with m.If(out_byte == beat_bytes - 1):
                        m.d.comb += kernel.o.ready.eq(1)
                        m.d.sync += [out_byte.eq(0), out_beat.eq(out_beat + 1)]
                        with m.If(out_beat == fmt.out_beats - 1):
                            m.next = "CRC_HI"
                    with m.Else():
                        m.d.sync += out_byte.eq(out_byte + 1)
            with m.State("INFO"):
                send(info[info_index], None)
                with m.If(sent):
                    m.d.sync += info_index.eq(info_index + 1)
                    with m.If(info_index == INFO_LEN - 1):
                        m.next = "CRC_HI"
            with m.State("CRC_HI"):
                send(crc[8:], "CRC_LO", checked=False)
            with m.State("CRC_LO"):
                send(crc[:8], "IDLE", checked=False)
                with m.If(sent):
                    m.d.comb += reply_done.eq(1)
