"""Feature maps in the lowering: NCHW tensors streamed in NHWC order.

ONNX computes on ``(1, C, H, W)`` tensors (``(1, C, L)`` in 1-D, taken as ``H = 1``); the
streams carry pixels in row-major order with the channels of a pixel together. The pending
index of a map (ONNX element -> stream element) is therefore :func:`nhwc_index` of its
shape, and every map handler checks that it still is: a ``Transpose`` that reorders the
stream is refused there, since a stream cannot be reordered without a frame buffer.

Stream values of a map are one function per channel (every pixel of a channel holds the
same quantization), so a map kernel that moves elements (pooling, padding, windows) keeps
its channels' values: :func:`map_values`.
"""

import numpy as np

from ..errors import node_error

__all__ = ["nhwc_index", "map_geometry", "map_channels", "map_values", "per_channel",
           "stream_order"]


def nhwc_index(shape):
    """ONNX element -> stream element of an NCHW (or NCL) tensor streamed as NHWC."""
    shape = tuple(shape)
    batch, channels, *spatial = shape
    pixels = int(np.prod(spatial, dtype=np.int64))
    index = np.arange(pixels * channels).reshape(pixels, channels).T
    return index.reshape(shape)


def stream_order(index):
    """The debug order of a stream with ONNX-element -> stream-element ``index``
    (``values[:, order]`` puts stream values in the tensor's C order), or None when the
    stream already is in that order."""
    flat = index.ravel()
    return None if np.array_equal(flat, np.arange(flat.size)) else flat


def map_channels(index):
    """The channels of a feature map whose pending ``index`` is its NHWC layout, or None
    (not a map, or reordered)."""
    shape = index.shape
    if len(shape) in (3, 4) and shape[0] == 1 and np.array_equal(index, nhwc_index(shape)):
        return shape[1]
    return None


def map_geometry(lowering, node, tensor=None):
    """``(C, (H, W))`` of the feature map ``tensor`` (default: the pending one) read by
    ``node``.

    Raises
    ------
    GraphError
        If the tensor is not a ``(1, C, H, W)`` / ``(1, C, L)`` map, or its stream is not in
        NHWC order (a ``Transpose`` reordered it).
    """
    pending = lowering.pending
    shape = lowering.shape(pending.tensor if tensor is None else tensor, node)
    if len(shape) not in (3, 4) or shape[0] != 1:
        raise node_error(node, f"has an input of shape {shape}",
                         "feature maps of shape (1, C, H, W) or (1, C, L)")
    if map_channels(pending.index.reshape(shape)) is None:
        raise node_error(node, "reads a feature map whose stream is not in NHWC order (a "
                         "Transpose or Reshape before it reorders the data stream, which "
                         "needs a frame buffer)", "maps in their NCHW layout (streamed as "
                         "NHWC); Transpose only between the convolutional and the "
                         "fully-connected part")
    channels, *spatial = shape[1:]
    return channels, (1, spatial[0]) if len(spatial) == 1 else tuple(spatial)


def map_values(values, channels, pixels_in, pixels_out, fill):
    """Stream values of a map of ``pixels_out`` pixels whose channels hold the values of
    the map of ``pixels_in`` pixels given by ``values`` (one function per channel).

    ``fill`` is an integer of the stream (decoded) put where the input map needs a value
    that is not asked for."""
    def mapped(x):
        x = np.asarray(x)
        batch = x.shape[0]
        grid = x.reshape(batch, pixels_out, channels)
        out = np.empty(grid.shape, dtype=np.float64)
        for start in range(0, pixels_out, pixels_in):
            block = grid[:, start:start + pixels_in]
            count = block.shape[1]
            full = np.full((batch, pixels_in, channels), fill, dtype=x.dtype)
            full[:, :count] = block
            y = np.asarray(values(full.reshape(batch, -1))).reshape(batch, pixels_in, channels)
            out[:, start:start + count] = y[:, :count]
        return out.reshape(batch, -1)
    return mapped


def per_channel(rows, pixels, channels):
    """Per-element ``rows`` (stream order, ``(pixels * channels, ...)``) as per-channel rows
    ``(channels, ...)``, or ``None`` when some pixel differs."""
    rows = np.asarray(rows)
    grid = rows.reshape((pixels, channels) + rows.shape[1:])
    if np.all(grid == grid[:1]):
        return grid[0].copy()
    return None
