"""Parameter checks shared by every kernel, so that one kind of mistake reads the same
everywhere.

As in Amaranth's own library, a value of the wrong type raises :class:`TypeError` and a
value of the right type that is out of range raises :class:`ValueError`; every message
names the parameter, shows the value and says what would be valid::

    lanes must be an integer >= 1, not '2'              (TypeError)
    lanes must be an integer >= 1, not 0                (ValueError)
    depth must be an integer in 1..1048576, not 2097152 (ValueError)
    pe=3 must divide mh=4; valid pe: [1, 2, 4]          (ValueError)
    mem_style must be one of 'auto', 'bram', not 'uram' (ValueError)
    input_shape must be an Amaranth shape such as signed(8), not 'int8'   (TypeError)
    input_shape must be 1 to 32 bits wide, not 33       (ValueError)
"""

import math

import numpy as np
from amaranth.hdl import Shape

__all__ = ["is_int", "check_int", "check_bool", "check_one_of", "check_divides", "divisors",
           "check_shape", "check_int_array", "check_per_axis"]


def is_int(value):
    """True for a Python or numpy integer (``bool`` is not one)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _valid_range(minimum, maximum):
    if maximum is None:
        return f">= {minimum}"
    return f"in {minimum}..{maximum}"


def check_int(name, value, minimum=None, maximum=None):
    """``value`` as an ``int``.

    Raises
    ------
    TypeError
        ``"NAME must be an integer >= MIN, not VALUE"`` when ``value`` is not an integer.
    ValueError
        The same wording when it is outside ``minimum .. maximum``.
    """
    valid = "" if minimum is None else " " + _valid_range(minimum, maximum)
    if not is_int(value):
        raise TypeError(f"{name} must be an integer{valid}, not {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer{valid}, not {value!r}")
    return int(value)


def check_bool(name, value):
    """``value`` when it is ``True`` or ``False``; else ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def check_one_of(name, value, choices):
    """``value`` when it is one of ``choices`` (and of the same type: ``True`` is not ``1``);
    else ``ValueError("NAME must be one of 'a', 'b', not VALUE")``."""
    if not any(value == choice and type(value) is type(choice) for choice in choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not "
                         f"{value!r}")
    return value


def divisors(n):
    """The divisors of ``n``, ascending."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def check_divides(name, value, total_name, total):
    """``ValueError("pe=3 must divide mh=4; valid pe: [1, 2, 4]")`` unless ``value`` divides
    ``total``."""
    if total % value:
        raise ValueError(f"{name}={value} must divide {total_name}={total}; valid {name}: "
                         f"{divisors(total)}")
    return value


def check_shape(name, value, max_width=None, min_width=1):
    """``value`` cast to an Amaranth ``Shape`` of ``min_width`` to ``max_width`` bits."""
    try:
        shape = Shape.cast(value)
    except TypeError:
        raise TypeError(f"{name} must be an Amaranth shape such as signed(8), not "
                        f"{value!r}") from None
    if shape.width < min_width or (max_width is not None and shape.width > max_width):
        top = "" if max_width is None else f" to {max_width}"
        raise ValueError(f"{name} must be {min_width}{top} bits wide, not {shape.width}")
    return shape


def check_int_array(name, value, shape=None, *, shape_text=None, low=None, high=None,
                    valid=None):
    """``value`` as an ``int64`` array of integers.

    Parameters
    ----------
    name : str
        The parameter (``weights``), used in messages as ``weights[0, 1]``.
    shape : tuple, optional
        The required shape, written ``shape_text`` in the message (``(MH, MW) = (4, 6)``).
    low, high : int, optional
        Inclusive bounds of every element; ``valid`` says what is valid in the message
        (default ``in [low, high]``).

    Raises
    ------
    ValueError
        Wrong shape, a non-integer element (the first one named), an element out of
        range (the first one named), or a non-numeric dtype.
    """
    array = np.asarray(value)
    if shape is not None and array.shape != tuple(shape):
        text = shape_text or str(tuple(shape))
        raise ValueError(f"{name} must have shape {text}, not {array.shape}")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            where = _index(np.argwhere(bad)[0])
            raise ValueError(f"{name} must be integers; {name}{where} is "
                             f"{float(array[tuple(np.argwhere(bad)[0])])!r}")
        if array.size and np.abs(array).max() >= 2.0 ** 62:
            raise ValueError(f"{name} must be within +-2**62")
    elif array.dtype.kind == "O":
        for index, element in np.ndenumerate(array):
            if not is_int(element):
                raise ValueError(f"{name} must be integers; {name}{_index(index)} is "
                                 f"{element!r}")
            if not -2 ** 62 < element < 2 ** 62:
                raise ValueError(f"{name} must be within +-2**62; {name}{_index(index)} is "
                                 f"{element}")
    elif array.dtype.kind not in "iub":
        raise ValueError(f"{name} must be an integer array, not dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    in_range = array.size == 0 or ((low is None or array.min() >= low)
                                   and (high is None or array.max() <= high))
    if not in_range:
        bad = np.zeros(array.shape, dtype=bool)
        if low is not None:
            bad |= array < low
        if high is not None:
            bad |= array > high
        if bad.any():
            index = tuple(np.argwhere(bad)[0])
            raise ValueError(f"{name}{_index(index)} = {array[index]} is out of range: must be "
                             f"{valid or f'in [{low}, {high}]'}")
    return array


def _index(index):
    return "[" + ", ".join(str(int(k)) for k in index) + "]"


def check_per_axis(name, value, labels=("height", "width"), minimum=1):
    """``value`` as a tuple with one integer per label.

    Parameters
    ----------
    name : str
        The parameter, named in messages.
    value : int or sequence of int
        One integer for every label, or one per label in the order of ``labels``.
    labels : tuple of str
        What each entry means (``("height", "width")``, ``("top", "left", "bottom",
        "right")``).
    minimum : int
        The smallest valid entry.

    Returns
    -------
    tuple of int

    Raises
    ------
    TypeError
        ``value`` is neither an integer nor a sequence of integers.
    ValueError
        Wrong length, or an entry below ``minimum``. The message reads ``kernel must
        be an integer >= 1 or 2 of them (height, width), not (3, 0)``.

    Examples
    --------
    >>> check_per_axis("stride", 2)
    (2, 2)
    >>> check_per_axis("padding", [1, 0, 1, 0], ("top", "left", "bottom", "right"), 0)
    (1, 0, 1, 0)
    """
    valid = f"an integer >= {minimum} or {len(labels)} of them ({', '.join(labels)})"
    if is_int(value):
        values = (value,) * len(labels)
    elif isinstance(value, (tuple, list, np.ndarray)) and all(is_int(v) for v in value):
        values = tuple(value)
        if len(values) != len(labels):
            raise ValueError(f"{name} must be {valid}, not {value!r}")
    else:
        raise TypeError(f"{name} must be {valid}, not {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be {valid}, not {value!r}")
    return tuple(int(v) for v in values)
