"""Compile and verify the bundled digits models over the whole held-out split.

The models: two MLPs (``digits_w1a1.onnx``, ``digits_w2a2.onnx``, from ``train_digits.py``)
and three W2A2 CNNs (``digits_cnn.onnx``, ``digits_cnn_residual.onnx`` with a skip
connection, ``digits_cnn_dw.onnx`` depthwise-separable, from ``train_digits_cnn.py``).
For each model: ``hwgen compile`` to Verilog,
then ``hwgen verify``: the ONNX reference (qonnx), the integer IR in numpy and a cocotb
simulation of the Verilog on Verilator under random back-pressure must agree on all 360
images. Prints the agreement counts, the accuracy and the simulated frames/s per model::

    python examples/run_digits.py [--out DIR] [--sim verilator|icarus]
"""

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("digits_w1a1", "digits_w2a2", "digits_cnn", "digits_cnn_residual", "digits_cnn_dw")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None,
                        help="directory for the compiled models (default: a temporary one)")
    parser.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    args = parser.parse_args(argv)

    from graph import GraphError, compile_model
    from graph.verify import verify

    quiet = lambda *a, **k: None  # noqa: E731
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.out or scratch)
        for name in MODELS:
            out = root / name
            print(f"{name}: compiling", file=sys.stderr)
            compile_model(HERE / f"{name}.onnx", out, progress=quiet)
            print(f"{name}: verifying 360 images (ONNX reference, IR, Verilator)",
                  file=sys.stderr)
            try:
                result = verify(out, HERE / "digits_test_x.npy", HERE / "digits_test_y.npy",
                                sim=args.sim, progress=quiet)
            except GraphError as error:
                print(f"{name}: FAILED: {error}")
                return 1
            rows.append((name, result))
    print(f"{'model':20} {'frames':>6} {'ONNX==IR':>9} {'RTL==IR':>8} {'accuracy':>8} "
          f"{'sim fps':>10} {'est fps':>10}")
    for name, r in rows:
        print(f"{name:20} {r['frames']:6} {r['onnx_agree']:9} {r['rtl_agree']:8} "
              f"{r['accuracy']:8.1%} {r['sim_fps']:10,.0f} {r['est_fps']:10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
