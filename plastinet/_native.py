"""Building the compiled loops: compiler, flags, cache directory, the PLASTINET_NATIVE switch.

The compiled fast paths (the rate engine's chunk loops, :mod:`plastinet.fwp.forms.native`;
the spiking engine's step loop, :mod:`plastinet.spiking.network_native`) are C files
compiled on first use with the system C compiler (``$CC``, else Python's, else ``cc``) and
cached in ``$PLASTINET_CACHE_DIR`` (default ``$XDG_CACHE_HOME/plastinet``, i.e.
``~/.cache/plastinet``), keyed by the source, compiler, flags and CPU. Each caller loads its
library with :mod:`ctypes`, and falls back to its numpy path (warning once, with the reason)
when there is no compiler or the compilation fails. ``PLASTINET_NATIVE=0`` (read on every
call) selects the numpy paths explicitly.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Sequence

__all__ = ["native_enabled", "cache_dir", "compile_library"]


def native_enabled() -> bool:
    """False when ``PLASTINET_NATIVE`` is ``0``/``false``/``no``/``off`` (read on every call)."""
    return os.environ.get("PLASTINET_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    """Where compiled libraries are kept (``$PLASTINET_CACHE_DIR``, else the user's cache)."""
    env = os.environ.get("PLASTINET_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "plastinet"


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("model name", "flags")):
                    return line
    except OSError:
        pass
    return platform.processor()


def compile_library(source: Path, includes: Sequence[Path], flag_sets: Sequence[Sequence[str]],
                    defines: Sequence[str] = ()) -> Path:
    """Compile ``source`` into a shared library (once per key) and return its path.

    Parameters
    ----------
    source : Path
        The C file compiled.
    includes : sequence of Path
        Files it includes (part of the cache key).
    flag_sets : sequence of sequence of str
        Optimisation flags, tried in order until one compiles.
    defines : sequence of str
        Further arguments (``-D...``), used with every flag set.

    Raises
    ------
    RuntimeError
        When no flag set compiles (the message has the compiler's last error lines).
    """
    text = source.read_bytes() + b"".join(path.read_bytes() for path in includes)
    cc = _compiler()
    errors = []
    for flags in flag_sets:
        args = cc + list(flags) + ["-fPIC", "-shared", *defines]
        key = hashlib.sha256(repr((text, args, sys.platform, platform.machine(), _cpu())).encode())
        target = cache_dir() / f"{source.stem}-{key.hexdigest()[:16]}.so"
        if target.exists():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError:                                       # read-only home: this process only
            target = Path(tempfile.mkdtemp(prefix="plastinet-")) / target.name
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            run = subprocess.run(args + [str(source), "-o", tmp], capture_output=True, text=True)
            if run.returncode == 0:
                os.replace(tmp, target)                       # atomic: safe for parallel processes
                return target
            errors.append(f"{' '.join(args)}: {run.stderr.strip()[-400:]}")
        except OSError as err:                                # no such compiler
            errors.append(f"{' '.join(args)}: {err}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError("compilation failed: " + " | ".join(errors))
