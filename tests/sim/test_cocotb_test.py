"""cocotb-test runs hwgen's stream testbench exactly as README.md shows.

Both tests execute the README's ```python block that uses ``cocotb_test`` unchanged, in a
temporary working directory (cocotb-test builds into ``./sim_build``): once as written (the
run passes, every beat arrives, the latency is the kernel's), and once with the golden model
returning one wrong beat (the run fails and the testbench names that beat). Each run is one
Verilator build of the popcount kernel (~15 s).
"""

import json
import os
import re
import signal
import textwrap
import threading
from pathlib import Path

import cocotb_test.simulator  # noqa: F401  (the dev extra installs it; the snippet imports it)
import pytest

import sim.golden
import sim.runner
from sim.streams import ENV_REPORT, ENV_VECTORS

README = Path(__file__).resolve().parents[2] / "README.md"
BAD_BEAT = 17


def readme_snippet():
    """The README's one ```python block that uses cocotb-test."""
    blocks = re.findall(r"```python\n(.*?)\n```", README.read_text(), flags=re.S)
    found = [block for block in blocks if "cocotb_test" in block]
    assert len(found) == 1, f"{len(found)} python blocks of README.md use cocotb_test"
    return found[0]


def cocotb_test_call(text):
    """The lines from ``write_stream_vectors(`` to the end of the ``cocotb_test`` call."""
    match = re.search(r"^( *)write_stream_vectors\(.*?\}\)$", text, flags=re.S | re.M)
    assert match, "no write_stream_vectors ... cocotb_test.simulator.run(...) in the text"
    return textwrap.dedent(match[0])


def test_runner_docstring_shows_the_readme_call():
    assert cocotb_test_call(sim.runner.__doc__) == cocotb_test_call(readme_snippet())


@pytest.fixture
def run_snippet(tmp_path, monkeypatch):
    """``run(namespace)`` execs the README snippet into ``namespace`` in ``tmp_path``; the
    process's environment and signal handlers (which the snippet and cocotb-test change) are
    restored afterwards."""
    monkeypatch.chdir(tmp_path)
    # cocotb-test lets the environment override its arguments (SIM over simulator=, os.environ
    # over extra_env): none of these may leak in from the calling shell.
    for var in ("SIM", "WAVES", "COCOTB_RESULTS_FILE", "COCOTB_TEST_FILTER", ENV_VECTORS,
                ENV_REPORT):
        monkeypatch.delenv(var, raising=False)
    environ = dict(os.environ)
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    code = compile(readme_snippet(), f"{README}[cocotb-test snippet]", "exec")

    def run(namespace):
        namespace.setdefault("__name__", "readme_cocotb_test")
        exec(code, namespace)
        return namespace

    yield run
    os.environ.clear()
    os.environ.update(environ)
    if main_thread:  # cocotb-test installs its own SIGINT/SIGTERM handlers and keeps them
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_readme_cocotb_test_snippet_passes(run_snippet, tmp_path):
    ns = run_snippet({})
    report, kernel, expected = ns["report"], ns["kernel"], ns["expected"]
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True and report["error"] is None
    assert report["out_beats"] == report["expected_out_beats"] == len(expected) == 200
    assert report["in_beats"] == len(ns["bits"]) == 200
    assert report["latency"] == kernel.latency > 0
    assert report["out_cycles"] == sorted(set(report["out_cycles"]))
    assert report["valid_prob"] == 0.7 and report["cycles"] > 200 + kernel.latency  # gaps
    assert (tmp_path / "sim_build" / "top").is_file()      # cocotb-test built here


def test_readme_cocotb_test_snippet_fails_on_a_wrong_beat(run_snippet, tmp_path, monkeypatch,
                                                          caplog):
    assert "golden.popcount(" in readme_snippet()
    popcount = sim.golden.popcount
    truth = {}

    def corrupted(bits):
        out = popcount(bits)
        truth["seen"] = int(out[BAD_BEAT])
        out[BAD_BEAT] ^= 1
        truth["expected"] = int(out[BAD_BEAT])
        return out

    monkeypatch.setattr(sim.golden, "popcount", corrupted)
    ns = {}
    with pytest.raises(SystemExit, match=r"FAILED 1 tests"):
        run_snippet(ns)
    assert "report" not in ns                  # the snippet stopped at cocotb_test's run
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is False
    message = (rf"output beat {BAD_BEAT} \(cycle \d+\): expected {truth['expected']:#x}, "
               rf"seen {truth['seen']:#x}")
    assert re.fullmatch(message, report["error"]), report["error"]
    assert report["out_beats"] == BAD_BEAT     # beats 0..16 matched, then it stopped
    assert re.search(message, caplog.text)     # and cocotb-test's log shows the message
