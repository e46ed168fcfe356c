"""Parameter checks of the small stream kernels (FIFO, width converter, label select), worded
as the other kernels word them: the parameter, its value and what would be valid."""

import numpy as np
from amaranth.hdl import Shape

__all__ = ["check_int", "check_elem_shape", "divisors"]


def check_int(name, value, minimum, maximum=None):
    """``value`` as an ``int``, or ``ValueError("NAME must be an integer >= MIN, not VALUE")``
    (``"... in MIN..MAX ..."`` with a ``maximum``)."""
    if (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum
            or (maximum is not None and value > maximum)):
        valid = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"{name} must be an integer {valid}, not {value!r}")
    return int(value)


def check_elem_shape(name, value, max_width=None):
    """``value`` cast to an Amaranth ``Shape`` (1 bit wide at least)."""
    try:
        shape = Shape.cast(value)
    except TypeError:
        raise TypeError(f"{name} must be an Amaranth shape such as signed(8), not "
                        f"{value!r}") from None
    if shape.width < 1 or (max_width is not None and shape.width > max_width):
        top = "" if max_width is None else f" to {max_width}"
        raise ValueError(f"{name} must be 1{top} bits wide, not {shape.width}")
    return shape


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]
