"""Program a board with a bitstream from :func:`boards.build.build`.

The command is the one the amaranth platform's ``toolchain_program`` runs (``iceprog`` for
the iCEBreaker, ``openFPGALoader -b ulx3s -m`` for the ULX3S, ``openocd`` for the KCU105,
``xsdb`` for the RFSoC 4x2; each can be overridden by the variable the platform reads, such as
``ICEPROG`` or ``OPENFPGALOADER``). :func:`programmer_command` captures that command without
running it, by calling ``toolchain_program`` with ``subprocess.check_call`` intercepted; so a
user's own platform works the same way. :func:`program` runs it (or, with ``dry_run``, only
returns it), and turns a missing programmer or a missing board into one clear error.
"""

import contextlib
import json
import shlex
import shutil
import subprocess
from pathlib import Path
from unittest import mock

from .build import REPORT, TOP_NAME
from .targets import get_target

__all__ = ["program", "programmer_command", "ProgramError", "board_dir"]

_INSTALL_HINTS = {
    "iceprog": "`apt-get install fpga-icestorm` (or set ICEPROG)",
    "openFPGALoader": "`apt-get install openfpgaloader` (or set OPENFPGALOADER)",
    "openocd": "`apt-get install openocd` (or set OPENOCD)",
    "xsdb": "Vivado/Vitis, whose settings64.sh puts xsdb on PATH (or set XSDB)",
}


class ProgramError(RuntimeError):
    """Programming could not start or failed."""


def board_dir(out_dir, board):
    """Where :command:`hwgen build` puts a board's files: ``OUT/board-NAME``."""
    return Path(out_dir) / f"board-{get_target(board).name}"


class _Products:
    """Build products read from a local directory; ``extract`` yields the real path (the
    amaranth default copies into a temporary file, which would make the printed command
    name a file that no longer exists)."""

    def __init__(self, root):
        self.root = Path(root)

    def get(self, filename, mode="b"):
        return (self.root / filename).read_bytes() if mode == "b" else \
            (self.root / filename).read_text()

    @contextlib.contextmanager
    def extract(self, *filenames):
        paths = [str(self.root / name) for name in filenames]
        yield paths[0] if len(paths) == 1 else paths


def programmer_command(board, build_dir, name=TOP_NAME):
    """The command the platform's ``toolchain_program`` would run for the bitstream in
    ``build_dir`` (a list of arguments)."""
    target = get_target(board)
    platform = target.platform_instance()
    captured = []

    def capture(command, *args, **kwargs):
        captured.append([str(arg) for arg in command])
        return 0

    with mock.patch("subprocess.check_call", capture), mock.patch("subprocess.call", capture), \
            mock.patch("subprocess.run", capture):
        platform.toolchain_program(_Products(build_dir), name)
    if not captured:
        raise ProgramError(f"{target.name}: the platform's toolchain_program ran no command")
    return captured[-1]


def _is_build_report(path):
    """Whether ``path`` is the report of a board build (``hwgen compile`` writes a
    ``report.json`` too, without ``board``)."""
    try:
        return "board" in json.loads(Path(path).read_text())
    except (OSError, ValueError, TypeError):
        return False


def program(out_dir, board, *, dry_run=False, log=None):
    """Program ``board`` with the bitstream that ``hwgen build OUT --board NAME`` wrote.

    ``out_dir`` is either the build's output directory (with ``report.json``) or the ``OUT``
    directory holding ``board-NAME``. Returns the command (a list); with ``dry_run`` nothing
    is run.
    """
    log = log or (lambda message: None)
    target = get_target(board)
    out_dir = Path(out_dir)
    if out_dir.name != f"board-{target.name}" and not _is_build_report(out_dir / REPORT):
        out_dir = board_dir(out_dir, target)   # OUT of `hwgen compile` (its own report.json)
    report_file = out_dir / REPORT
    if report_file.is_file():
        report = json.loads(report_file.read_text())
        if report.get("board") != target.name:
            raise ProgramError(f"{out_dir} holds a build for {report.get('board')}, not "
                               f"{target.name}")
        bitstream = report.get("bitstream")
    else:
        bitstream = None
    if bitstream is None and target.toolchain == "vivado":
        bitstream = f"build/{TOP_NAME}.bit"
    if bitstream is None:
        raise ProgramError(f"no build for {target.name} in {out_dir}: run `hwgen build "
                           f"{out_dir} --board {target.name}` first")
    bitstream = out_dir / bitstream
    command = programmer_command(target, bitstream.parent, bitstream.stem)
    if dry_run:
        return command
    if not bitstream.is_file():
        hint = (" (the Vivado flow writes it once a board-level design with pin constraints "
                "is implemented)" if target.toolchain == "vivado" else "")
        raise ProgramError(f"bitstream {bitstream} does not exist{hint}")
    tool = command[0]
    if shutil.which(tool) is None:
        hint = _INSTALL_HINTS.get(Path(tool).name, "")
        raise ProgramError(f"programmer {tool!r} not found on PATH; install it"
                           f"{' with ' + hint if hint else ''}")
    log(f"running {shlex.join(command)}")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ProgramError(f"{tool} did not finish within 300 s") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise ProgramError(f"{shlex.join(command)} failed (exit {result.returncode}): "
                           f"{' / '.join(lines[-3:]) or 'no output'}; is the {target.name} "
                           f"plugged in and visible (USB permissions)?")
    return command

