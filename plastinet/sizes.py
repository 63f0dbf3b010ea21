"""How much memory a run needs, and the check that refuses runs that cannot fit.

Engines estimate a lower bound of the bytes a run allocates (the arrays it cannot do
without) from its sizes before allocating anything, and :func:`check_memory` refuses the run
with a :class:`~plastinet.errors.SizeError` when that bound exceeds the memory available
(``MemAvailable`` of ``/proc/meminfo``, else ``os.sysconf``), instead of a ``MemoryError``
after minutes of work. The bound is a lower one, so a run that fits is never refused.
"""

from __future__ import annotations

import os
from typing import Any

from plastinet.errors import SizeError

__all__ = ["available_memory", "check_memory", "format_bytes"]


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (without swapping), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(nbytes: float) -> str:
    """``nbytes`` in binary units, e.g. ``"1.5 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def check_memory(nbytes: float, obj: str, parameter: str, value: Any, *, what: str = "the run") -> None:
    """Refuse a run whose memory lower bound ``nbytes`` exceeds the available memory.

    Parameters
    ----------
    nbytes : float
        Bytes the run needs at least (a float: sizes may overflow an int64 product).
    obj : str
        The object or model file that is refused (named in the message).
    parameter : str
        The parameter that makes the run large (named in the message).
    value : object
        Its value.
    what : str
        What needs the memory, e.g. ``"kv_memory with n_items up to 96"``.

    Raises
    ------
    SizeError
        If ``nbytes`` exceeds :func:`available_memory` (never if that is unknown).
    """
    available = available_memory()
    if available is not None and nbytes > available:
        need = (f"{what} needs at least {format_bytes(nbytes)} ({nbytes:.4g} bytes) of memory, "
                f"{format_bytes(available)} are available")
        raise SizeError(obj, parameter, value, f"{need}; reduce {parameter}", need=need)
