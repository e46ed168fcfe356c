"""Golden models that later kernels rely on."""

import numpy as np
import pytest

from sim import golden


def test_bipolar():
    assert golden.bipolar([[0, 1, 1]]).tolist() == [[-1, 1, 1]]
    with pytest.raises(ValueError, match=r"bipolar values must be encoded as 0 \(-1\) and 1 \(\+1\)"):
        golden.bipolar([2])


def test_mvau_raw_and_thresholded():
    weights = np.array([[1, -2, 3], [0, 1, -1]])
    inputs = np.array([[1, 1, 1], [2, 0, -1]])
    assert golden.mvau(inputs, weights).tolist() == [[2, 0], [-1, 1]]
    thresholds = np.array([[0, 2], [-1, 1]])
    assert golden.mvau(inputs, weights, thresholds, bias=-1).tolist() == [[1, 0], [-1, 1]]


def test_mvau_xnor_popcount_identity():
    """For bipolar x and w, W.x = 2 * popcount(xnor) - MW: the identity the xnor datapath uses."""
    rng = np.random.default_rng(0)
    x_bits, w_bits = rng.integers(0, 2, size=(5, 49)), rng.integers(0, 2, size=(16, 49))
    dots = golden.mvau(golden.bipolar(x_bits), golden.bipolar(w_bits))
    xnor = 1 - (x_bits[:, None, :] ^ w_bits[None, :, :])
    assert (dots == 2 * xnor.sum(axis=2) - 49).all()


def test_mvau_is_exact_beyond_int64():
    inputs = np.array([[2 ** 40, 2 ** 40]], dtype=object)
    weights = np.array([[2 ** 30, 2 ** 30]], dtype=object)
    assert golden.mvau(inputs, weights)[0, 0] == 2 ** 71


def test_mvau_shape_error():
    with pytest.raises(ValueError, match=r"inputs \(1, 3\) and weights \(2, 4\) do not fit"):
        golden.mvau(np.zeros((1, 3)), np.zeros((2, 4)))
