"""graph.levels.staircase: the steps of a non-decreasing function, every channel and every
step searched at once, against the steps the function was built from."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from graph.errors import GraphError
from graph.levels import staircase


def step_function(cuts, heights):
    """A non-decreasing ``f`` on ``(N, C)`` int64 points: channel c steps up by
    ``heights[c][i] > 0`` at each ``cuts[c][i]``."""
    def f(x):
        x = np.asarray(x)
        assert x.ndim == 2 and x.shape[1] == len(cuts)
        out = np.empty(x.shape)
        for c, (cut, height) in enumerate(zip(cuts, heights)):
            levels = np.concatenate([[0.0], np.cumsum(height)]) + c
            out[:, c] = levels[np.searchsorted(cut, x[:, c], side="right")]
        return out
    return f


@settings(max_examples=60, deadline=None)
@given(data=st.data(), channels=st.integers(1, 5), fanout=st.sampled_from([2, 3, 16]))
def test_every_step_is_found(data, channels, fanout):
    lows, highs, cuts, heights = [], [], [], []
    for _ in range(channels):
        low = data.draw(st.integers(-2**20, 2**20))
        high = low + data.draw(st.integers(0, 2**21))
        cut = sorted(data.draw(st.sets(st.integers(low + 1, max(low + 1, high)),
                                       max_size=30))) if high > low else []
        lows.append(low)
        highs.append(high)
        cuts.append(np.array(cut, dtype=np.int64))
        heights.append(data.draw(st.lists(st.floats(0.25, 4), min_size=len(cut),
                                          max_size=len(cut))))
    f = step_function(cuts, heights)
    found = staircase(f, np.array(lows), np.array(highs), fanout=fanout)
    for c in range(channels):
        starts, values = found[c]
        assert starts.tolist() == [lows[c], *cuts[c].tolist()]
        assert np.array_equal(values, f(starts[:, None].repeat(channels, 1))[:, c])


def test_constant_and_one_point_channels():
    f = step_function([np.array([], np.int64)] * 2, [[], []])
    found = staircase(f, np.array([3, -7]), np.array([3, 900]))
    assert [s.tolist() for s, _ in found] == [[3], [-7]]


def test_too_many_steps():
    cuts = [np.arange(1, 100, dtype=np.int64)]
    f = step_function(cuts, [[1.0] * 99])
    assert len(staircase(f, np.array([0]), np.array([100]))[0][0]) == 100
    with pytest.raises(GraphError, match=r"more than 50 distinct output values"):
        staircase(f, np.array([0]), np.array([100]), max_steps=50)
