"""Threshold boundaries: inputs exactly at the float thresholds (and one float32 step on
either side) give the reference's decisions."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto

import graph
from graph_checks import run_both
from models import Builder


@pytest.mark.parametrize("rounding", ["ROUND", "HALF_UP", "HALF_DOWN", "FLOOR", "CEIL", "UP",
                                      "DOWN"])
def test_quant_rounding_ties_on_every_accumulator(rounding):
    """acc * 0.5 is a rounding tie for every odd accumulator: all of them are tried."""
    b = Builder((1, 2), "INT4")
    x = b.matmul("x", np.array([[1, 2], [1, -1]], np.float32), "INT3", name="fc0")
    x = b.node("Mul", [x, np.array(0.5, np.float32)])
    x = b.quant(x, 1.0, 3, signed=1, rounding=rounding, name="act")
    model = b.build(x)
    inputs = np.array(list(itertools.product(range(-8, 8), repeat=2)), np.float32)
    run_both(model, inputs)


def test_multithreshold_thresholds_hit_exactly():
    b = Builder((1, 3), "UINT3")
    x = b.matmul("x", np.array([[1, 1], [1, -1], [1, 2]], np.float32), "INT3", name="fc0")
    x = b.node("Mul", [x, np.array(0.25, np.float32)])
    x = b.multithreshold(x, np.array([[-0.5, 0.0, 0.75], [0.25, 1.0, 1.25]]), "UINT2",
                         name="act")
    model = b.build(x)
    inputs = np.array(list(itertools.product(range(8), repeat=3)), np.float32)
    network, _, _ = run_both(model, inputs)
    # row 0's accumulator is never below 0 (its first threshold, -2, clamps to 0)
    assert network.layers[0].thresholds.tolist() == [[0, 0, 3], [1, 4, 5]]


def test_batchnorm_with_non_power_of_two_parameters_matches_reference():
    """The thresholds come from the reference's own BatchNormalization arithmetic, so every
    accumulator (all are tried) gets the reference's decision."""
    r = np.random.default_rng(12)
    b = Builder((1, 3), "INT4")
    x = b.matmul("x", r.integers(-3, 4, size=(3, 5)).astype(np.float32), "INT3", name="fc0")
    x = b.node("BatchNormalization", [x] + [b.const(v.astype(np.float32)) for v in (
        r.uniform(0.3, 2, 5), r.uniform(-1, 1, 5), r.uniform(-2, 2, 5), r.uniform(0.3, 3, 5))])
    x = b.quant(x, 0.3, 3, signed=1, name="act")
    model = b.build(x)
    inputs = np.array(list(itertools.product(range(-8, 8), repeat=3)), np.float32)
    run_both(model, inputs)


def test_input_quantizer_at_and_next_to_its_thresholds():
    b = Builder((1, 2))
    x = b.node("Div", ["x", np.array(255, np.float32)])
    x = b.quant(x, 1 / 7, 3, signed=0, name="inq")
    x = b.matmul(x, np.array([[1, 0], [0, 1]], np.float32), "INT2", name="fc0")
    model = b.build(x)
    network = graph.import_model(model)
    thresholds = network.input_quantizer.thresholds.ravel()
    assert np.all(np.isfinite(thresholds))
    points = np.concatenate([thresholds, np.nextafter(thresholds, np.float32(-np.inf)),
                             np.nextafter(thresholds, np.float32(np.inf)),
                             np.array([-1e30, 0, 1e30], np.float32)])
    inputs = np.stack([points, points[::-1]], axis=1).astype(np.float32)
    run_both(model, inputs)


def test_sign_of_exact_zero():
    """ONNX Sign(0) is 0: with zero reachable, Sign gives three levels (INT2)."""
    b = Builder((1, 2), "INT2")
    x = b.matmul("x", np.array([[1], [-1]], np.float32), "INT2", name="fc0")
    x = b.node("Sign", [x], name="sign")
    model = b.build(x)
    inputs = np.array(list(itertools.product(range(-2, 2), repeat=2)), np.float32)
    network, _, _ = run_both(model, inputs)
    assert network.layers[0].output_type == "INT2"


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2 ** 31), wbits=st.integers(2, 4), abits=st.integers(1, 4),
       signed_act=st.booleans(), exponents=st.lists(st.integers(-3, 1), min_size=3,
                                                    max_size=3))
def test_random_mlps_with_random_power_of_two_scales(seed, wbits, abits, signed_act, exponents):
    r = np.random.default_rng(seed)
    sizes = [int(s) for s in r.integers(2, 9, size=3)]
    b = Builder((1, sizes[0]))
    x = b.quant("x", 2.0 ** exponents[0], 4, signed=1, name="inq")
    high = 2 ** (wbits - 1)
    x = b.quant_matmul(x, r.integers(-high, high, size=sizes[:2]), 2.0 ** exponents[1], wbits,
                       name="fc0")
    if not signed_act:
        x = b.node("Relu", [x])
    x = b.quant(x, 2.0 ** exponents[2], abits, signed=int(signed_act or abits == 1),
                name="act0")
    x = b.quant_matmul(x, r.integers(-high, high, size=sizes[1:]), 0.5, wbits, name="fc1")
    model = b.build(x)
    inputs = (r.integers(-40, 40, size=(32, sizes[0])) * 2.0 ** (exponents[0] - 1)).astype(
        np.float32)
    run_both(model, inputs)


def test_topk_ties_go_to_the_lower_index():
    b = Builder((1, 2), "INT2")
    x = b.matmul("x", np.array([[1, 1, 0, -1], [0, 0, 1, 1]], np.float32), "INT2", name="fc0")
    _, labels = b.node("TopK", [x, b.const([3], np_type=np.int64)], outputs=2)
    model = b.build(labels, TensorProto.INT64)
    inputs = np.array(list(itertools.product(range(-2, 2), repeat=2)), np.float32)
    run_both(model, inputs)
