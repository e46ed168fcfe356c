"""The kernel registry: every entry's plan, component, command-line options, IR layer,
golden model and report row fit together; and a new kernel is one module plus one entry."""

import re

import numpy as np
import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring

from hwgen import registry
from hwgen.cli import main
from hwgen.export.verilog import component_verilog
from hwgen.kernel import PlannedComponent, StreamFormat, StreamKernel, port_format
from hwgen.registry import KERNELS, KernelEntry, Param, kernel, resolve
from hwgen.resources import Resources

#: Constructor keywords of one small configuration per registered kernel.
EXAMPLES = {
    "mvau": dict(mw=6, mh=4, pe=2, simd=3, weights=np.arange(24).reshape(4, 6) % 5 - 2,
                 input_shape=unsigned(2), weight_shape=signed(3)),
    "threshold": dict(channels=4, pe=2, input_shape=signed(6), thresholds=[[-3, 0, 4]]),
    "labelselect": dict(channels=6, pe=3, input_shape=signed(5), k=2),
    "popcount": dict(n=20, pipeline_every=1),
    "fifo": dict(elem_shape=unsigned(3), lanes=2, depth=5),
    "width": dict(elem_shape=unsigned(3), in_lanes=2, out_lanes=3, elems_per_frame=12),
    "duplicate": dict(channels=4, pe=2, elem_shape=signed(3), branches=3, vectors=2),
    "addstreams": dict(channels=4, pe=2, input_shape0=signed(4), input_shape1=unsigned(3), shift1=1),
    "concat": dict(channels=(4, 2), pe=2, elem_shapes=(unsigned(3), signed(2)), vectors=2),
    "requantize": dict(channels=4, pe=2, input_shape=signed(12), multiplier=[3, 5, 7, 9], offset=8, shift=4, low=0, high=15),
    "channelwise": dict(channels=4, pe=2, input_shape=signed(5), op="mul", constants=[3, -1, 2, 0]),
    "sliding_window": dict(ifm=(5, 4), channels=4, kernel=(3, 2), simd=2, elem_shape=unsigned(3)),
    "vvau": dict(channels=4, kernel=3, pe=2, simd=3, weights=np.arange(36).reshape(4, 9) % 5 - 2, input_shape=unsigned(2), weight_shape=signed(3), vectors=2),  # noqa: E501
    "pad": dict(ifm=(3, 2), channels=4, simd=2, padding=(1, 0, 2, 1), elem_shape=signed(3)),
    "maxpool": dict(ifm=(5, 4), channels=2, pe=2, kernel=3, stride=(2, 1), input_shape=signed(3)),
    "avgpool": dict(ifm=4, channels=2, kernel=2, input_shape="bipolar"),
    "globalaccpool": dict(ifm=(3, 2), channels=4, pe=2, input_shape=unsigned(3)),
}


def test_every_kernel_has_an_example():
    assert set(EXAMPLES) == set(KERNELS)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_plan_and_component_keep_the_contract(name):
    entry = kernel(name)
    plan = entry.plan(**EXAMPLES[name])
    assert isinstance(plan, StreamKernel) and not isinstance(plan, wiring.Component)
    assert isinstance(plan.estimate(), Resources)
    assert plan.latency >= 0 and plan.cycles_per_frame >= 1
    # every stream port (i/o, or i0, i1... and o0, o1... for forks and joins)
    times = plan.schedule({port: list(range(plan.beats_per_frame(port))) for port in plan.inputs})
    assert set(times) == set(plan.outputs)
    for port, port_times in times.items():
        assert len(port_times) == plan.beats_per_frame(port) and port_times[0] >= plan.latency
    built = plan.build()
    assert isinstance(built, wiring.Component) and isinstance(built, type(plan))
    for port, stream_format in {**plan.inputs, **plan.outputs}.items():
        assert port_format(built, port) == stream_format
    assert built.estimate() == plan.estimate() and built.latency == plan.latency
    assert "module k(" in component_verilog(built, name="k")       # it elaborates
    row = entry.report(plan)
    assert set(row) <= {"shape", "pe", "simd", "datapath", "mem_style", "activation"}
    assert row["shape"]


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_layer_and_golden_references_resolve(name):
    entry = kernel(name)
    if entry.layer is not None:
        layer = resolve(entry.layer)
        assert layer.kind == name
        for attribute in ("plan", "fold_choices", "fold_keys", "execute", "to_dict"):
            assert hasattr(layer, attribute), f"{entry.layer} has no {attribute}"
    if entry.golden is not None:
        assert callable(resolve(entry.golden))


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_parameter_is_a_command_line_option(name, capsys):
    with pytest.raises(SystemExit):
        main(["verilog", name, "--help"])
    text = capsys.readouterr().out
    for param in kernel(name).params:
        assert param.option in text


def test_unknown_kernel():
    with pytest.raises(ValueError, match=r"kernel must be one of 'mvau', .*, not 'softmax'"):
        kernel("softmax")


# --- adding a kernel: one module (here, in this file) plus one entry --------------------------

class NegatePlan(StreamKernel):
    """``y = -x`` per lane, one register stage."""

    def __init__(self, *, lanes, elem_shape=signed(8)):
        self._lanes = lanes
        self._shape = elem_shape
        super().__init__()

    latency = 1
    cycles_per_frame = in_beats_per_frame = out_beats_per_frame = 1
    input_format = property(lambda self: StreamFormat(self._shape, self._lanes))
    output_format = property(lambda self: StreamFormat(signed(self._shape.width + 1),
                                                       self._lanes))

    def estimate(self):
        return Resources(luts=self._lanes * self._shape.width, ffs=self._lanes * 9 + 1)


class Negate(NegatePlan, PlannedComponent):
    def elaborate(self, platform):
        from hwgen.control import StallPipeline
        m = Module()
        control = StallPipeline(m, depth=1, i=self.i, o=self.o)
        with m.If(control.advance):
            m.d.sync += [self.o.payload[k].eq(-self.i.payload[k]) for k in range(self._lanes)]
        return m


NegatePlan.component = Negate


def test_a_new_kernel_is_one_entry(monkeypatch, tmp_path, capsys):
    entry = KernelEntry(name="negate", summary="negation", description="y = -x per lane",
                        plan=NegatePlan, component=Negate,
                        params=(Param("lanes", "int", "elements per beat", required=True),),
                        report=lambda plan: {"shape": f"{plan._lanes} lanes"})
    monkeypatch.setitem(registry.KERNELS, "negate", entry)
    out = tmp_path / "negate.v"
    assert main(["verilog", "negate", "--lanes", "3", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module hwgen_negate(" in text
    assert re.search(r"input \[23:0\] s_axis_tdata;", text)
    assert re.search(r"output \[31:0\] m_axis_tdata;", text)        # 3 x 9 bits, to bytes
    assert "latency 1 cycles" in capsys.readouterr().err
