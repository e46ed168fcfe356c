"""Export: the AXI4-Stream shell and Verilog writing."""
