"""Saving and loading result Datasets (netCDF, with plastinet's attribute conventions).

Results are written with :func:`plastinet.io.durable.write_atomically` (unique temporary
file, ``fsync``, rename), so a crash or a concurrent writer never leaves a torn or mixed file.
netCDF-3 (scipy's writer) stores integer attributes as 32-bit and netCDF-4 as 64-bit, so an
integer attribute outside the 32-bit range (a seed ``>= 2**31``, any size) is stored as its
decimal string and listed in the attribute ``plastinet_int_attrs``; :func:`load_result`
turns it back into the exact integer, whichever writer made the file.
"""

from __future__ import annotations

import numbers
import os
import tempfile
from pathlib import Path
from typing import Any

import xarray as xr

from plastinet.errors import ValidationError, WriteError
from plastinet.io.durable import write_atomically
from plastinet.results import writes_results

__all__ = ["save_result", "load_result", "RESULT_SUFFIXES", "INT_ATTRS"]

#: File-name suffixes of results.
RESULT_SUFFIXES = (".nc", ".nc4", ".netcdf")
#: Attribute listing the attributes stored as decimal strings of integers.
INT_ATTRS = "plastinet_int_attrs"
_INT32 = (-(2 ** 31), 2 ** 31 - 1)


def _engine() -> str | None:
    for module, engine in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf"), ("scipy", "scipy")):
        try:
            __import__(module)
            return engine
        except ImportError:
            continue
    return None


def _encode_ints(attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` with integers outside int32 as decimal strings, listed in :data:`INT_ATTRS`."""
    big = sorted(k for k, v in attrs.items() if isinstance(v, numbers.Integral) and not isinstance(v, bool)
                 and not _INT32[0] <= int(v) <= _INT32[1])
    if not big:
        return attrs
    return {**attrs, **{k: str(int(attrs[k])) for k in big}, INT_ATTRS: ",".join(big)}


def _decode_ints(attrs: dict[str, Any]) -> None:
    names = attrs.pop(INT_ATTRS, None)
    for name in str(names).split(",") if names else ():
        if name in attrs:
            attrs[name] = int(attrs[name])


def save_result(ds: xr.Dataset, path: str | os.PathLike, *, rescue: bool = False) -> Path:
    """Write ``ds`` to ``path`` durably and atomically.

    Uses netCDF4 when installed (the ``io`` extra), else scipy's netCDF-3 writer (a core
    dependency), so a result can always be written. On the ranks other than 0 of a NEST
    run under MPI nothing is written: every rank holds the same gathered result and rank 0
    writes it (:func:`plastinet.results.writes_results`).

    Parameters
    ----------
    ds : xarray.Dataset
        The result.
    path : str or os.PathLike
        A ``.nc`` file (``.nc4`` and ``.netcdf`` are accepted too).
    rescue : bool
        If the file cannot be written, save the result under a new name in the system's
        temporary directory (else the current directory) and say where in the error.

    Returns
    -------
    Path
        The written file (the one rank 0 writes, on the other ranks of a NEST MPI run).

    Raises
    ------
    ValidationError
        For a name without a netCDF suffix.
    WriteError
        If the file cannot be written (its ``saved_to`` names the rescued copy, if any).
        No partial file is left behind.
    """
    path = Path(path)
    if path.suffix not in RESULT_SUFFIXES:
        raise ValidationError("save_result", "path", str(path), "expected a .nc file name")
    if not writes_results():
        return path
    encoded = ds.copy(deep=False)
    encoded.attrs = _encode_ints(dict(ds.attrs))
    for name, var in encoded.variables.items():
        var.attrs = _encode_ints(dict(ds.variables[name].attrs))
    engine = _engine()
    try:
        return write_atomically(path, lambda tmp: encoded.to_netcdf(tmp, engine=engine))
    except WriteError as err:
        if not rescue:
            raise
        saved = _rescue(encoded, path, engine)
        raise WriteError(path, err.reason, saved_to=saved) from None


def _rescue(ds: xr.Dataset, path: Path, engine: str | None) -> Path | None:
    """Save ``ds`` under a new name in the temporary directory, else the current one."""
    for directory in (tempfile.gettempdir(), os.getcwd()):
        try:
            fd, name = tempfile.mkstemp(dir=directory, prefix=f"plastinet-rescued-{path.stem[:50]}-",
                                        suffix=path.suffix)
            os.close(fd)
        except OSError:
            continue
        try:
            return write_atomically(name, lambda tmp: ds.to_netcdf(tmp, engine=engine))
        except WriteError:
            try:
                os.unlink(name)
            except OSError:
                pass
    return None


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
        raise ValidationError("load_result", "path", path, "no such result file")
    try:
        with xr.open_dataset(path, engine=_engine()) as ds:
            ds = ds.load()
    except _READ_ERRORS as err:
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        raise ValidationError("load_result", "path", path,
                              f"not a readable netCDF result: empty, truncated, damaged or another format "
                              f"({type(err).__name__}: {reason})") from None
    _decode_ints(ds.attrs)
    for var in ds.variables.values():
        _decode_ints(var.attrs)
    return ds
