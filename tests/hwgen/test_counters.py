"""Counters as data: inputs, outputs and efficiency of the generic counters."""

from hwgen.arith.counters import GENERIC_COUNTERS


def test_counters_are_data():
    by_name = {counter.name: counter for counter in GENERIC_COUNTERS}
    assert set(by_name) >= {"(3;2)", "(6;3)", "(1,5;3)", "(2,3;3)"}
    assert [by_name[name].outputs for name in ("(3;2)", "(6;3)", "(1,5;3)", "(2,3;3)")] == [2, 3, 3, 3]
    assert by_name["(6;3)"].efficiency == 1.0
    assert by_name["(1,5;3)"].efficiency == 1.0
    assert by_name["(3;2)"].efficiency == 0.5
