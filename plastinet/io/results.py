"""Saving and loading result Datasets (netCDF, with plastinet's attribute conventions)."""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from plastinet.errors import ValidationError

__all__ = ["save_result", "load_result"]


def _engine() -> str | None:
    for module, engine in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf"), ("scipy", "scipy")):
        try:
            __import__(module)
            return engine
        except ImportError:
            continue
    return None


def save_result(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file, then rename).

    Uses netCDF4 when installed (the ``io`` extra), else scipy's netCDF-3 writer (a core
    dependency), so a result can always be written.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    if path.suffix not in (".nc", ".nc4", ".netcdf"):
        raise ValidationError("save_result", "path", str(path), "expected a .nc file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    ds.to_netcdf(tmp, engine=_engine())
    os.replace(tmp, path)
    return path


#: What reading a damaged or foreign file raises inside xarray and its netCDF engines.
_READ_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, OverflowError, EOFError,
                MemoryError)


def load_result(path: str | os.PathLike) -> xr.Dataset:
    """Read a result written by :func:`save_result` (loaded into memory, file closed).

    Raises
    ------
    ValidationError
        If there is no such file, or it is not a readable netCDF file (empty, truncated,
        damaged or another format), naming the file and the reader's complaint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError("load_result", "path", str(path), "no such result file")
    try:
        with xr.open_dataset(path, engine=_engine()) as ds:
            return ds.load()
    except _READ_ERRORS as err:
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        raise ValidationError("load_result", "path", str(path),
                              f"not a readable netCDF result: empty, truncated, damaged or another format "
                              f"({type(err).__name__}: {reason})") from None
