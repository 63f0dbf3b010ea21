"""Importing and configuring NEST: quiet import, kernel set-up, build information."""

from __future__ import annotations

import os
from typing import Any

from plastinet.errors import UnsupportedError

__all__ = ["import_nest", "reset_kernel", "build_info"]

_INSTALL = ("install it with `pip install 'plastinet[nest]'` (the PyPI wheel of nest-simulator, "
            "OpenMP threads, no MPI) or build NEST from its sources for MPI (docs/cluster.md)")


def import_nest() -> Any:
    """Import PyNEST without its banner; :class:`UnsupportedError` if it is not installed."""
    os.environ.setdefault("PYNEST_QUIET", "1")
    try:
        import nest
    except ImportError as err:
        raise UnsupportedError("nest backend", "nest", "not importable", f"{err}; {_INSTALL}") from None
    nest.verbosity = nest.VerbosityLevel.ERROR
    return nest


def build_info() -> dict[str, Any]:
    """NEST's version, thread and MPI support (``have_mpi``) and the processes of this run."""
    nest = import_nest()
    info = nest.GetKernelStatus("build_info")
    return {"version": str(info["version"]), "have_threads": bool(info["have_threads"]),
            "have_mpi": bool(info["have_mpi"]), "threads_model": str(info.get("threads_model", "")),
            "num_processes": int(nest.GetKernelStatus("num_processes"))}


def reset_kernel(dt: float, threads: int, seed: int) -> Any:
    """A fresh NEST kernel: resolution ``dt`` (s), ``threads`` per process, ``seed``."""
    nest = import_nest()
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": dt * 1e3, "local_num_threads": int(threads),
                          "rng_seed": int(seed % (2 ** 31 - 1)) + 1, "print_time": False})
    return nest
