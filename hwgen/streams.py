"""Stream signatures shared by all kernels (see the kernel contract in the design notes)."""

from amaranth.lib import data, stream

__all__ = ["lanes_signature"]


def lanes_signature(elem_shape, lanes):
    """``stream.Signature`` whose payload is ``lanes`` elements of ``elem_shape``, element k at
    bits ``[k*w, (k+1)*w)`` (LSB first)."""
    return stream.Signature(data.ArrayLayout(elem_shape, lanes))

