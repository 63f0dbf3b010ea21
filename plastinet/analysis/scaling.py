"""Power-law fits of an error against the settings that control it.

Used for the rate <-> spike comparison: the error of a spiking FWP read-out against the
rate read-out, as a function of neurons ``N``, rate ``r`` and duration ``D``. Shot noise
predicts ``error ~ (N r D)^(-1)`` for a mean squared error (``-1/2`` for an RMS error).

Model (OLS on logarithms): ``log10 error = log10 C + sum_d a_d log10 x_d``, one exponent per
setting dim ``d``; or, with ``combine=True``, ``log10 error = log10 C + a log10 prod_d x_d``.
95 % intervals are t-based. :func:`plastinet.experiments.rate_spike_scaling` measures that
error with the spiking FWP and fits it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr
from scipy import stats

from plastinet.errors import ValidationError

__all__ = ["fit_power_law"]

_OBJ = "fit_power_law"


def fit_power_law(error: xr.DataArray, dims: Sequence[str] | None = None, *,
                  combine: bool = False) -> xr.Dataset:
    """Fit ``error = C prod_d x_d^(a_d)`` (or ``C (prod_d x_d)^a`` with ``combine=True``).

    Parameters
    ----------
    error : xarray.DataArray
        Positive errors; the setting dims carry positive numeric coordinates (their values
        are the settings, e.g. ``neurons``, ``rate`` in Hz, ``duration`` in s). Other dims
        (``trial``) are pooled.
    dims : sequence of str, optional
        Setting dims (default: every dim except ``trial`` and ``seed``).
    combine : bool
        Fit one exponent for the product of the settings.

    Returns
    -------
    xarray.Dataset
        ``exponent (setting)`` with ``ci_low``, ``ci_high``; ``prefactor`` ``C`` (units of
        ``error``); ``r2`` of the log-log fit. With ``combine=True`` the setting is
        ``"*".join(dims)``.

    Raises
    ------
    ValidationError
        Non-positive errors or settings, missing coordinates, or fewer samples than
        parameters + 2.
    """
    if not isinstance(error, xr.DataArray):
        raise ValidationError(_OBJ, "error", error, "expected an xarray.DataArray with setting dims")
    dims = [d for d in error.dims if d not in ("trial", "seed")] if dims is None else list(dims)
    if not dims:
        raise ValidationError(_OBJ, "dims", dims, "needs at least one setting dim with coordinates")
    for d in dims:
        if d not in error.coords:
            raise ValidationError(_OBJ, "error", error, f"setting dim {d!r} needs numeric coordinates")
        if not np.all(np.asarray(error[d].values, float) > 0):
            raise ValidationError(_OBJ, "error", error, f"coordinates of {d!r} must be positive")
    if not np.all(np.isfinite(error.values)) or not np.all(error.values > 0):
        raise ValidationError(_OBJ, "error", error, "errors must be finite and positive (log-log fit)")
    flat = error.stack(_sample=error.dims)
    logx = np.stack([np.log10(flat[d].values.astype(float)) for d in dims], axis=1)
    if combine:
        logx = logx.sum(axis=1, keepdims=True)
    X = np.column_stack([np.ones(len(logx)), logx])
    y = np.log10(flat.values)
    if y.size < X.shape[1] + 2:
        raise ValidationError(_OBJ, "error", error, f"too few samples: needs at least {X.shape[1] + 2}")
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = y.size - X.shape[1]
    cov = np.linalg.pinv(X.T @ X) * (resid @ resid) / dof
    half = stats.t.ppf(0.975, dof) * np.sqrt(np.clip(np.diag(cov), 0, None))
    tss = ((y - y.mean()) ** 2).sum()
    names = ["*".join(dims)] if combine else dims
    units = error.attrs.get("units", "1")
    return xr.Dataset(
        {"exponent": ("setting", coef[1:], {"units": "1", "long_name": "power-law exponent"}),
         "ci_low": ("setting", coef[1:] - half[1:], {"units": "1", "long_name": "95 % lower bound"}),
         "ci_high": ("setting", coef[1:] + half[1:], {"units": "1", "long_name": "95 % upper bound"}),
         "prefactor": ((), 10 ** coef[0], {"units": units, "long_name": "prefactor C"}),
         "r2": ((), 1 - resid @ resid / tss if tss > 0 else np.nan, {"units": "1", "long_name": "R^2 (log-log)"})},
        coords={"setting": ("setting", names, {"units": "1", "long_name": "setting"})},
        attrs={"equation": "error = C prod x_d^a_d" if not combine else "error = C (prod x_d)^a"})
