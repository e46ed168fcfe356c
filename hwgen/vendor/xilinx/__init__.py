"""Xilinx UltraScale(+) primitives: LUT6_2, CARRY8, LUT6 ROMs (:mod:`.primitives`) and DSP48E2 (:mod:`.dsp48e2`)."""
