"""Number shapes shared by the kernels: Amaranth shapes plus ``"bipolar"``.

A stream element or an operand is ``signed(n)``, ``unsigned(n)`` or :data:`BIPOLAR`: the
values -1 and +1 in one bit (0 means -1, 1 means +1), as FINN encodes binarized networks.
"""

from amaranth.hdl import Shape, signed, unsigned

__all__ = ["BIPOLAR", "shape_range", "shape_for_range", "element_shape", "cast_operand"]

#: The bipolar number shape: -1/+1 in one bit (0 means -1).
BIPOLAR = "bipolar"


def shape_range(shape, *, narrow=False):
    """Inclusive ``(min, max)`` of the values of a shape (``BIPOLAR``: ``(-1, 1)``);
    ``narrow`` leaves out the most negative value of a signed shape."""
    if shape == BIPOLAR:
        return -1, 1
    shape = Shape.cast(shape)
    if shape.signed:
        return -(1 << (shape.width - 1)) + int(narrow), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def shape_for_range(lo, hi):
    """Narrowest Amaranth shape holding every integer in ``[lo, hi]``."""
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    width = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    return signed(width)


def element_shape(shape):
    """The shape a value is carried in on a stream or in memory (``BIPOLAR``: one bit)."""
    return unsigned(1) if shape == BIPOLAR else Shape.cast(shape)


def cast_operand(name, shape, max_width=8):
    """Validate an operand shape: ``"bipolar"`` or a signed/unsigned shape of 1 to
    ``max_width`` bits (``TypeError`` for what is not a shape, ``ValueError`` for a string
    other than ``"bipolar"`` or a width out of range)."""
    valid = "'bipolar' or an Amaranth shape such as signed(4)"
    if isinstance(shape, str):
        if shape != BIPOLAR:
            raise ValueError(f"{name} must be {valid}, not {shape!r}")
        return BIPOLAR
    try:
        shape = Shape.cast(shape)
    except TypeError:
        raise TypeError(f"{name} must be {valid}, not {shape!r}") from None
    if not 1 <= shape.width <= max_width:
        raise ValueError(f"{name} must be 1 to {max_width} bits wide (or 'bipolar'), not "
                         f"{shape.width}")
    return shape
