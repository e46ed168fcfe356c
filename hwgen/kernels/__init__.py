"""Stream kernels: each implements the kernel contract (:mod:`hwgen.kernel`)."""
