"""Conventions shared by every result plastinet returns (docs/architecture.md, "Results").

Results are :class:`xarray.Dataset` objects. Every data variable carries ``units`` (a
UDUNITS string) and ``long_name`` attributes; the Dataset carries the global attributes
``plastinet_version``, ``backend``, ``backend_version``, ``dt``, ``seed`` and
``model_spec`` (a JSON string). netCDF attributes cannot hold ``None``, dicts or bools, so
:func:`encode_attr` turns them into strings/ints before they are stored. A result whose data
is not finite is reported by :func:`check_result_finite`.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import xarray as xr

from plastinet._version import __version__
from plastinet.errors import check_numerical_policy, report_numerical
from plastinet.validation import first_nonfinite

__all__ = ["check_result_finite", "encode_attr", "finalize_dataset", "variable"]


def encode_attr(value: Any) -> Any:
    """Encode ``value`` so that it survives a netCDF round trip.

    ``None`` becomes ``"none"``, a bool becomes the int 0/1, dicts and lists of mixed
    content become JSON strings; numbers, strings and numeric arrays pass through.
    """
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def variable(dims: tuple[str, ...] | str, data: Any, units: str, long_name: str,
             **attrs: Any) -> xr.Variable:
    """An :class:`xarray.Variable` with the mandatory ``units`` and ``long_name`` attrs."""
    return xr.Variable(dims, data, attrs={"units": units, "long_name": long_name,
                                          **{k: encode_attr(v) for k, v in attrs.items()}})


def finalize_dataset(ds: xr.Dataset, *, backend: str, backend_version: str, dt: float | None,
                     seed: int | None, model_spec: Mapping[str, Any] | None,
                     **extra: Any) -> xr.Dataset:
    """Attach plastinet's global attributes to ``ds`` (in place) and return it.

    Parameters
    ----------
    ds : xarray.Dataset
        The result.
    backend, backend_version : str
        Engine that produced it (``"numpy"``, ``"brian2"``) and that engine's version.
    dt : float or None
        Simulation time step in seconds (``None`` for step-indexed rate models).
    seed : int or None
        Seed of the run.
    model_spec : mapping or None
        JSON-able description of the model that produced the result.
    **extra
        Further global attributes (encoded with :func:`encode_attr`).
    """
    missing = [name for name, var in ds.variables.items()
               if "units" not in var.attrs or "long_name" not in var.attrs]
    if missing:
        raise AssertionError(f"result variables without units/long_name attrs: {missing}")
    ds.attrs.update({
        "plastinet_version": __version__,
        "backend": backend,
        "backend_version": backend_version,
        "dt": encode_attr(dt),
        "seed": encode_attr(seed),
        "model_spec": json.dumps(model_spec or {}, sort_keys=True, default=str),
    })
    ds.attrs.update({k: encode_attr(v) for k, v in extra.items()})
    return ds


def check_result_finite(ds: xr.Dataset, *, on_numerical: str = "raise", owner: str = "result") -> None:
    """Report the first data variable of ``ds`` that holds NaN or infinity.

    Parameters
    ----------
    ds : xarray.Dataset
        A finished result.
    on_numerical : {"raise", "warn"}
        ``"raise"`` (default): a :class:`~plastinet.errors.NumericalError`; ``"warn"``: a
        :class:`~plastinet.errors.NumericalWarning` with the same message (the result is kept).
    owner : str
        What produced the result (the model's name), named in the message.

    Raises
    ------
    NumericalError
        Under ``on_numerical="raise"``, naming the variable, how many of its values are not
        finite and the coordinates of the first; ``.where`` is ``"variable '<name>'"`` and
        ``.step`` / ``.time`` are its ``step`` / ``time`` coordinate (or index, without one).
    """
    check_numerical_policy(owner, on_numerical)
    for name, var in ds.data_vars.items():
        values = var.values
        if values.dtype.kind not in "fc" or first_nonfinite(values) is None:
            continue
        bad = ~np.isfinite(values)
        first = np.unravel_index(int(np.argmax(bad)), values.shape)
        at = {dim: (ds[dim].values[i].item() if dim in ds.coords else int(i)) for dim, i in zip(var.dims, first)}
        step = int(at["step"]) if "step" in at else None
        time = float(at["time"]) if "time" in at else None
        where = ", ".join(f"{dim}={value}" for dim, value in at.items())
        report_numerical(
            on_numerical,
            f"{owner}: the result holds {int(bad.sum())} non-finite value(s) in {name!r} (first "
            f"{values[first]} at {where or 'its only entry'}); the model diverged: reduce the learning "
            "rate or normalise its inputs (on_numerical='warn', CLI --on-numerical warn, keeps such a result)",
            step=step, where=f"variable {name!r}", time=time, stacklevel=3)
        return
