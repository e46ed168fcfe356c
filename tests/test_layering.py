"""The layering contract of ``pyproject.toml`` (``[tool.importlinter]``: boards > graph > sim >
hwgen) holds, checked with import-linter's ``lint-imports``; and the check can fail: the same
contract run on stand-in packages where ``hwgen`` imports ``graph`` is reported broken."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
PACKAGES = ("hwgen", "graph", "sim", "boards")


def lint_imports_command():
    """``lint-imports`` of the environment running the tests (that of ``sys.executable``)."""
    script = Path(sys.executable).parent / ("lint-imports.exe" if os.name == "nt" else
                                            "lint-imports")
    if script.is_file():
        return str(script)
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("import-linter is not installed: pip install -e '.[dev]'")
    return found


def lint_imports(cwd, env=None):
    """Check the contract of the project's pyproject.toml; ``(exit status, output)``."""
    result = subprocess.run(
        [lint_imports_command(), "--no-cache", "--no-logo", str(PYPROJECT)], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def test_layering_contract_is_kept():
    status, output = lint_imports(ROOT)
    assert status == 0, output
    assert "1 kept, 0 broken" in output, output


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    # Stand-ins for the four packages, found before the installed ones (PYTHONPATH comes
    # ahead of site-packages and of the editable install's finder).
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "hwgen" / "probe.py").write_text("import graph\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    status, output = lint_imports(tmp_path, env=env)
    assert status == 1, output
    assert "BROKEN" in output and "hwgen.probe -> graph" in output, output
