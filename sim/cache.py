"""The simulation build cache and the run directories.

Build cache
-----------
Builds live in ``cache_dir`` (default :func:`default_cache_dir`: ``$HWGEN_CACHE/sim``, else
``$XDG_CACHE_HOME/hwgen/sim``, else ``~/.cache/hwgen/sim``), one directory per hash of the
Verilog sources' contents, the toplevel name, build options, simulator version and cocotb
installation (the ``inputs`` of :func:`cached_build`). An unchanged design is not rebuilt.
Building a given hash directory is serialized with an ``fcntl`` lock, and a build only counts
as done when its marker file has been written (last, atomically), so parallel pytest-xdist
workers share builds safely. Every run gets its own test directory (``results.xml``,
``sim.log``, waves, testbench files): ``test_dir`` if given, else a fresh one from
:func:`new_test_dir` under ``cache_dir/runs`` (run directories older than two days are
pruned).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["default_cache_dir", "new_test_dir", "cached_build", "write_atomic",
           "BUILD_MARKER"]

BUILD_FORMAT = 1                    # bump to invalidate every cached build
BUILD_MARKER = "hwgen-build.json"   # written last: its presence means the build is complete
RUNS_MAX_AGE = 2 * 24 * 3600        # seconds


def default_cache_dir():
    """``$HWGEN_CACHE/sim``, else ``$XDG_CACHE_HOME/hwgen/sim``, else ``~/.cache/hwgen/sim``."""
    if os.environ.get("HWGEN_CACHE"):
        return Path(os.environ["HWGEN_CACHE"]).expanduser() / "sim"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hwgen" / "sim"


_pruned = set()


def _prune_runs(runs):
    """Remove run directories older than :data:`RUNS_MAX_AGE` (once per process)."""
    if runs in _pruned:
        return
    _pruned.add(runs)
    cutoff = time.time() - RUNS_MAX_AGE
    with contextlib.suppress(OSError):
        for entry in runs.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_dir() and entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)


def new_test_dir(prefix="run", cache_dir=None):
    """A new, unique directory under ``cache_dir/runs`` for one simulation run."""
    runs = Path(cache_dir or default_cache_dir()) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _prune_runs(runs)
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", prefix)[:40]
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=runs))


@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive ``fcntl`` lock on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_atomic(path, text):
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cached_build(cache_dir, prefix, inputs, build):
    """The build directory for ``inputs``, built by ``build(build_dir)`` unless already done.

    Parameters
    ----------
    cache_dir : pathlib.Path
        Root of the cache.
    prefix : str
        Start of the build directory's name (the hash of ``inputs`` follows).
    inputs : dict
        JSON-serializable description of everything the build depends on.
    build : callable
        Called with an empty ``build_dir`` when no complete build exists; raises on failure
        (the directory is then left incomplete and rebuilt next time).

    Returns
    -------
    tuple
        ``(build_dir, build_seconds)``; ``build_seconds`` is None when the cached build was
        reused.
    """
    key_data = json.dumps({"format": BUILD_FORMAT, **inputs}, sort_keys=True)
    key = hashlib.sha256(key_data.encode()).hexdigest()[:20]
    build_dir = cache_dir / f"{prefix}-{key}"
    marker = build_dir / BUILD_MARKER
    if marker.is_file():
        return build_dir, None
    with _locked(cache_dir / f".{build_dir.name}.lock"):
        if marker.is_file():        # another process built it while we waited
            return build_dir, None
        if build_dir.exists():      # left over from an interrupted build
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        t0 = time.monotonic()
        build(build_dir)
        build_seconds = time.monotonic() - t0
        write_atomic(marker, json.dumps({"key": key, "inputs": json.loads(key_data),
                                         "build_seconds": build_seconds}, indent=1))
    return build_dir, build_seconds
