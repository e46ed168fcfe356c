"""Stream signatures shared by all kernels (see the kernel contract in the design notes)."""

from amaranth.hdl import Shape
from amaranth.lib import data, stream

__all__ = ["lanes_signature", "shape_range"]


def lanes_signature(elem_shape, lanes):
    """``stream.Signature`` whose payload is ``lanes`` elements of ``elem_shape``, element k at
    bits ``[k*w, (k+1)*w)`` (LSB first)."""
    return stream.Signature(data.ArrayLayout(elem_shape, lanes))


def shape_range(shape):
    """Inclusive ``(min, max)`` of the integers a shape can hold."""
    shape = Shape.cast(shape)
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1
