"""Compression plans: every stage shrinks the heap, the goal is reached, errors."""

import pytest
from hypothesis import given, settings, strategies as st

from hwgen.arith.counters import Chain
from hwgen.arith.planner import plan_compression

ARCHITECTURES = ("generic", "xilinx")


@settings(max_examples=60, deadline=None)
@given(heights=st.lists(st.integers(0, 300), min_size=1, max_size=24),
       target=st.sampled_from(ARCHITECTURES), final_adder=st.sampled_from(("binary", "ternary")))
def test_plan_reaches_goal_and_always_shrinks(heights, target, final_adder):
    plan = plan_compression(heights, target=target, final_adder=final_adder)
    goal = 3 if final_adder == "ternary" else 2
    current = tuple(heights)
    for stage in plan.stages:
        assert stage.heights_in == current
        assert sum(stage.heights_out) < sum(stage.heights_in)
        assert len(stage.heights_out) == len(heights)
        for placement in stage.placements:
            if isinstance(placement, Chain):
                assert target == "xilinx" and all(count <= 4 for count in placement.used)
        current = stage.heights_out
    assert max(current) <= goal
    assert plan.logic_stages == len(plan.stages) + (plan.final_adder != "none")


def test_plan_errors():
    with pytest.raises(ValueError, match=r"goal must be one of 2, 3, not 4"):
        plan_compression([5], goal=4)
    with pytest.raises(ValueError, match=r"target must be one of 'generic', 'xilinx', not 'asic'"):
        plan_compression([5], target="asic")
