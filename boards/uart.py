"""UART receiver and transmitter (8 data bits, no parity, 1 stop bit), as stream components.

Both count ``divisor`` clock cycles per bit, ``divisor = round(clock_hz / baud)``.
:func:`uart_divisor` picks it and refuses what a UART cannot do: fewer than
:data:`MIN_DIVISOR` cycles per bit, or a rate more than :data:`MAX_BAUD_ERROR` away from the
one asked for (each end of a UART link may be off by about 2 % before the last data bit of a
10-bit character is sampled in the wrong bit cell).

:class:`UARTRx` synchronizes the line with two flip-flops, waits for a falling edge, samples
the start bit half a bit later (a glitch shorter than that is ignored), then each data bit one
bit period apart, LSB first, and the stop bit. It resynchronizes on every start bit, so
clock differences do not accumulate. A character whose stop bit is low (a framing error, or a
break) is delivered with ``error`` set. The receiver cannot be stalled (``o`` is always ready):
whoever takes its characters must take one per character time.

:class:`UARTTx` sends one character per ``i`` transfer: start bit, 8 data bits LSB first,
stop bit. ``i.ready`` is high while the transmitter is idle.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from hwgen.checks import check_int

__all__ = ["UARTRx", "UARTTx", "uart_divisor", "MIN_DIVISOR", "MAX_BAUD_ERROR", "RxCharacter"]

#: Fewest clock cycles per bit: the receiver samples half a bit after the start edge, behind a
#: two-flip-flop synchronizer.
MIN_DIVISOR = 4
#: Largest relative difference between the rate asked for and the one the divisor gives.
MAX_BAUD_ERROR = 0.02

#: A received character: 8 data bits and the framing-error flag.
RxCharacter = data.StructLayout({"data": 8, "error": 1})


def uart_divisor(clock_hz, baud):
    """Clock cycles per bit for ``baud`` from a ``clock_hz`` clock.

    Raises ``ValueError`` with the rate limits when the divisor would be below
    :data:`MIN_DIVISOR` or the rate more than :data:`MAX_BAUD_ERROR` off.
    """
    for name, value in (("clock_hz", clock_hz), ("baud", baud)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, not {value!r}")
    mhz = f"{clock_hz / 1e6:g} MHz"
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud={baud:,} is too fast for a {mhz} clock: the UART needs at least "
                         f"{MIN_DIVISOR} clock cycles per bit, so at most "
                         f"{int(clock_hz // MIN_DIVISOR):,} baud")
    actual = clock_hz / divisor
    error = abs(actual - baud) / baud
    if error > MAX_BAUD_ERROR:
        near = sorted({round(clock_hz / d) for d in (divisor - 1, divisor, divisor + 1)
                       if d >= MIN_DIVISOR}, reverse=True)
        raise ValueError(f"baud={baud:,} cannot be made from a {mhz} clock: the nearest divider "
                         f"{divisor} gives {actual:,.0f} baud, {error:.1%} off (a UART needs "
                         f"within {MAX_BAUD_ERROR:.0%}); rates that work nearby: "
                         f"{', '.join(f'{b:,}' for b in near)}")
    return divisor


def _check_divisor(divisor):
    """Clock cycles per bit: an integer >= :data:`MIN_DIVISOR`."""
    return check_int("divisor", divisor, MIN_DIVISOR)


class UARTRx(wiring.Component):
    """UART receiver.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (see :func:`uart_divisor`).

    Members
    -------
    rx : In(1, init=1)
        The serial line (asynchronous; synchronized inside).
    o : Out(stream.Signature(RxCharacter, always_ready=True))
        One transfer per character, ``error`` set when its stop bit was low.
    """

    def __init__(self, *, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(RxCharacter, always_ready=True)),
        })

    divisor = property(lambda self: self._divisor)

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self._divisor))
        bits = Signal(range(9))
        shift = Signal(8)
        m.d.sync += self.o.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self._divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(line):  # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(self._divisor - 1), bits.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), bits.eq(bits + 1),
                                 timer.eq(self._divisor - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(shift),
                                 self.o.payload.error.eq(~line)]
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """UART transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (see :func:`uart_divisor`).

    Members
    -------
    i : In(stream.Signature(8))
        Characters to send; ``ready`` while idle.
    tx : Out(1, init=1)
        The serial line.
    """

    def __init__(self, *, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    divisor = property(lambda self: self._divisor)

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        bits_left = Signal(range(11))
        shift = Signal(10, init=1)  # stop, data[7..0], start; sent LSB first
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(bits_left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                         bits_left.eq(10), timer.eq(self._divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), bits_left.eq(bits_left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
