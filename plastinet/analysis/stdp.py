"""Fits of STDP measurements: the window, the effective rate rule and the frequency dependence.

* :func:`fit_stdp_window`: the double-exponential window
  ``dw(dt) = A+ exp(-dt / tau+)`` (``dt = t_post - t_pre > 0``),
  ``dw(dt) = -A- exp(dt / tau-)`` (``dt < 0``), fitted by nonlinear least squares
  (:func:`scipy.optimize.curve_fit`) separately on each side, with 95 % normal-theory
  intervals from the fit's covariance.
* :func:`fit_rate_dependence`: the drift ``<dw/dt>`` of a spike rule measured at
  presynaptic and postsynaptic rates ``x``, ``y`` (independent Poisson trains), fitted by
  OLS to ``c_xy x y + c_xyy x y^2 + c_xxy x^2 y``. For pair STDP
  ``c_xy = A+ tau+ - A- tau-`` (Kempter et al. 1999); for minimal triplet STDP
  ``c_xy = -A2- tau-`` and ``c_xyy = A3+ tau+ tau_y`` (a BCM rule with threshold
  ``y* = -c_xy / c_xyy``; Pfister & Gerstner 2006).
* :func:`fit_frequency_dependence`: the weight change after a pairing protocol against the
  pairing frequency, per lag, summarised by the crossover frequency at which it changes sign.

These functions take measurements as DataArrays, so they work for any backend; the
measurements that run the protocols on a spiking backend and fit the results live in
:mod:`plastinet.experiments.stdp_measurements`, the analytic drift in
:mod:`plastinet.analysis.stdp_theory`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr
from scipy import stats
from scipy.optimize import curve_fit

from plastinet.errors import ShapeError, ValidationError

__all__ = ["fit_stdp_window", "fit_rate_dependence", "fit_frequency_dependence"]

_Z95 = float(stats.norm.ppf(0.975))


def _check_1d(da: object, obj: str, name: str, dim: str) -> xr.DataArray:
    return _check_dims(da, obj, name, (dim,))


def _check_dims(da: object, obj: str, name: str, dims: tuple[str, ...], what: str = "") -> xr.DataArray:
    """A finite DataArray with the setting ``dims``, each carrying a finite numeric coordinate."""
    listing = " and ".join(dims)
    if not isinstance(da, xr.DataArray):
        raise ValidationError(obj, name, da, f"expected an xarray.DataArray with dims {listing}{what}")
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise ShapeError(obj, name, da, f"missing dim {', '.join(map(repr, missing))}: expected dims "
                                        f"{listing}{what}, got {da.dims}")
    for d in dims:
        if d not in da.coords:
            raise ValidationError(obj, name, da, f"dim {d!r} needs a coordinate with its values{what}")
        c = np.asarray(da[d].values)
        if c.dtype.kind not in "iuf" or not np.isfinite(c.astype(float)).all():
            raise ValidationError(obj, name, da, f"the coordinate of {d!r} must be finite numbers")
    if da.size == 0 or not np.isfinite(da.values).all():
        raise ValidationError(obj, name, da, "needs a non-empty array whose entries are all finite")
    return da


def _exp_fit(lag: np.ndarray, dw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``dw = A exp(-lag / tau)`` (lag > 0); returns estimates and standard errors."""
    sign = np.sign(dw.sum()) or 1.0
    pos = sign * dw > 0
    # log-linear start on the points of the dominant sign
    if pos.sum() >= 2:
        slope, icpt = np.polyfit(lag[pos], np.log(sign * dw[pos]), 1)
        tau0 = -1.0 / slope if slope < 0 else float(np.ptp(lag)) or 1.0
        A0 = sign * np.exp(icpt)
    else:
        tau0, A0 = float(np.mean(lag)) or 1.0, float(dw[np.argmin(lag)])
    popt, pcov = curve_fit(lambda t, A, tau: A * np.exp(-t / tau), lag, dw, p0=(A0, tau0), maxfev=20000)
    return popt, np.sqrt(np.clip(np.diag(pcov), 0.0, None))


def fit_stdp_window(window: xr.DataArray, min_points: int = 3) -> xr.DataArray:
    """Fit a double-exponential STDP window.

    Parameters
    ----------
    window : xarray.DataArray
        Weight change per pairing along dim ``delta_t`` (``t_post - t_pre``, in the units
        of its coordinate, normally s); further dims (e.g. ``trial``) are pooled.
    min_points : int
        Fewest lags needed on each side of zero.

    Returns
    -------
    xarray.DataArray
        ``A_plus, tau_plus, A_minus, tau_minus`` along dim ``coefficient`` with coords
        ``ci_low``, ``ci_high`` (95 %) and ``units``. ``A_minus`` is the magnitude of the
        depression lobe (the window is ``-A_minus exp(dt / tau_minus)`` for ``dt < 0``).

    Raises
    ------
    ValidationError
        If ``window`` is not a DataArray with a ``delta_t`` dim, or either side has fewer
        than ``min_points`` lags.
    """
    da = _check_1d(window, "fit_stdp_window", "window", "delta_t")
    da = da.transpose("delta_t", ...)
    lag = np.repeat(np.asarray(da["delta_t"].values, float), int(np.prod(da.shape[1:], dtype=int)))
    dw = da.values.reshape(-1)
    out, se, units, empty = [], [], [], []
    t_unit = da["delta_t"].attrs.get("units", "s")
    w_unit = da.attrs.get("units", "1")
    for side, mask, flip in (("plus", lag > 0, 1.0), ("minus", lag < 0, -1.0)):
        n_lags = np.unique(lag[mask]).size
        if n_lags < min_points:
            raise ValidationError("fit_stdp_window", "window", da,
                                  f"needs at least {min_points} distinct lags with delta_t "
                                  f"{'> 0' if flip > 0 else '< 0'}, got {n_lags}")
        if not np.any(dw[mask]):
            # a lobe that is exactly zero (e.g. A2+ = 0 of the minimal triplet rule): A = 0,
            # and its time constant is undetermined
            (A, tau), (sA, stau) = (0.0, np.nan), (0.0, np.nan)
            empty.append(side)
        else:
            (A, tau), (sA, stau) = _exp_fit(np.abs(lag[mask]), dw[mask])
        out += [flip * A, tau]
        se += [sA, stau]
        units += [w_unit, t_unit]
    est, se = np.array(out), np.array(se)
    note = (f"the {' and '.join(empty)} lobe is zero: its time constant is undetermined (NaN)"
            if empty else "")
    return xr.DataArray(est, dims="coefficient", name="stdp_window_fit",
                        coords={"coefficient": ["A_plus", "tau_plus", "A_minus", "tau_minus"],
                                "ci_low": ("coefficient", est - _Z95 * se),
                                "ci_high": ("coefficient", est + _Z95 * se),
                                "units": ("coefficient", units)},
                        attrs={"long_name": "double-exponential STDP window fit", "confidence": 0.95,
                               "equation": "dw = A_plus exp(-dt/tau_plus) (dt > 0); "
                                           "-A_minus exp(dt/tau_minus) (dt < 0)", "note": note})


_RATE_TERMS = {"x*y": lambda x, y: x * y, "x*y^2": lambda x, y: x * y * y, "x^2*y": lambda x, y: x * x * y}


def fit_rate_dependence(drift: xr.DataArray, terms: Sequence[str] = ("x*y", "x*y^2", "x^2*y")) -> xr.Dataset:
    """Effective rate rule of a spike rule: fit its drift against pre and post rates.

    Parameters
    ----------
    drift : xarray.DataArray
        Mean weight drift ``<dw/dt>`` (1/s) with dims ``r_pre`` and ``r_post`` (coordinates
        in Hz); further dims (``trial``) are pooled.
    terms : sequence of str
        Subset of ``"x*y"``, ``"x*y^2"``, ``"x^2*y"`` to fit (``("x*y",)`` for a pair rule).

    Returns
    -------
    xarray.Dataset
        ``coefficient (term)`` for the fitted terms with ``ci_low``,
        ``ci_high`` (95 %, t-based OLS intervals), ``r2``; attrs ``threshold`` (the BCM
        threshold ``-c_xy / c_xyy`` in Hz when ``c_xyy > 0``) and ``classification``.

    Raises
    ------
    ValidationError
        Without dims ``r_pre`` and ``r_post``, with fewer than 6 rate pairs, or for unknown
        terms.
    """
    terms = list(terms)
    if not terms or any(t not in _RATE_TERMS for t in terms):
        raise ValidationError("fit_rate_dependence", "terms", terms, "expected a subset of " + ", ".join(_RATE_TERMS))
    _check_dims(drift, "fit_rate_dependence", "drift", ("r_pre", "r_post"), " (rates in Hz)")
    da = drift.transpose("r_pre", "r_post", ...)
    if da.sizes["r_pre"] * da.sizes["r_post"] < 6:
        raise ValidationError("fit_rate_dependence", "drift", da, "needs at least 6 (r_pre, r_post) pairs")
    x, y = np.meshgrid(da["r_pre"].values.astype(float), da["r_post"].values.astype(float), indexing="ij")
    rep = int(np.prod(da.shape[2:], dtype=int))
    x, y = np.repeat(x.reshape(-1), rep), np.repeat(y.reshape(-1), rep)
    d = da.values.reshape(-1)
    X = np.stack([_RATE_TERMS[t](x, y) for t in terms], axis=1)
    coef, *_ = np.linalg.lstsq(X, d, rcond=None)
    resid = d - X @ coef
    dof = max(d.size - X.shape[1], 1)
    cov = np.linalg.pinv(X.T @ X) * (resid @ resid) / dof
    half = stats.t.ppf(0.975, dof) * np.sqrt(np.clip(np.diag(cov), 0, None))
    tss = ((d - d.mean()) ** 2).sum()
    c = dict(zip(terms, coef))
    c_xy, c_xyy = c.get("x*y", 0.0), c.get("x*y^2", 0.0)
    if c_xyy > 0 and c_xy < 0 and c_xyy > half[terms.index("x*y^2")]:
        theta = -c_xy / c_xyy
        text = f"BCM-like: depression below y* = {theta:.3g} Hz, potentiation above"
    else:
        theta = float("nan")
        text = "Hebbian (net potentiation)" if c_xy > 0 else "anti-Hebbian (net depression)"
    unit = drift.attrs.get("units", "1/s")
    return xr.Dataset(
        {"coefficient": ("term", coef, {"units": f"({unit}) / Hz^n", "long_name": "drift coefficient"}),
         "ci_low": ("term", coef - half, {"units": f"({unit}) / Hz^n", "long_name": "95 % lower bound"}),
         "ci_high": ("term", coef + half, {"units": f"({unit}) / Hz^n", "long_name": "95 % upper bound"}),
         "r2": ((), 1 - (resid @ resid) / tss if tss > 0 else np.nan, {"units": "1", "long_name": "explained variance"})},
        coords={"term": ("term", terms, {"units": "1", "long_name": "rate monomial"})},
        attrs={"threshold": theta, "classification": text,
               "equation": "<dw/dt> = c_xy x y + c_xyy x y^2 + c_xxy x^2 y"})


def fit_frequency_dependence(dw: xr.DataArray) -> xr.Dataset:
    """Summarise a frequency-dependence protocol (Sjöström et al. 2001).

    Parameters
    ----------
    dw : xarray.DataArray
        Weight change after the protocol with dims ``frequency`` (Hz) and ``delta_t`` (s);
        further dims are averaged.

    Returns
    -------
    xarray.Dataset
        ``dw (frequency, delta_t)`` (mean) and ``crossover (delta_t)``: the pairing frequency
        (Hz, linear interpolation) at which the change first changes sign, NaN if it never
        does.

    Raises
    ------
    ValidationError
        Without the two dims or with fewer than 2 frequencies.
    """
    _check_dims(dw, "fit_frequency_dependence", "dw", ("frequency", "delta_t"), " (frequency in Hz, delta_t in s)")
    extra = [d for d in dw.dims if d not in ("frequency", "delta_t")]
    mean = dw.mean(extra).sortby("frequency").transpose("frequency", "delta_t")
    if mean.sizes["frequency"] < 2:
        raise ValidationError("fit_frequency_dependence", "dw", dw, "needs at least 2 pairing frequencies")
    f = mean["frequency"].values.astype(float)
    cross = []
    for j in range(mean.sizes["delta_t"]):
        v = mean.values[:, j]
        idx = np.nonzero(np.sign(v[:-1]) * np.sign(v[1:]) < 0)[0]
        if idx.size:
            i = idx[0]
            cross.append(f[i] + (f[i + 1] - f[i]) * v[i] / (v[i] - v[i + 1]))
        else:
            cross.append(np.nan)
    return xr.Dataset({"dw": mean.assign_attrs(units=dw.attrs.get("units", "1"), long_name="mean weight change"),
                       "crossover": ("delta_t", np.asarray(cross),
                                     {"units": "Hz", "long_name": "pairing frequency where dw changes sign"})})
