"""STDP protocol measurements: window fits and the effective rate rule of a spike rule.

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

These functions take measurements as DataArrays, so they work for any backend.
Three wrappers run the numpy spiking
engine's protocols (:mod:`plastinet.spiking.protocols`: ``pairing_window``,
``poisson_drift``, ``sjostrom``) and fit the results: :func:`measure_stdp_window`,
:func:`measure_rate_dependence`, :func:`measure_frequency_dependence`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr
from scipy import stats
from scipy.optimize import curve_fit

from plastinet.errors import ShapeError, UnsupportedError, ValidationError

__all__ = ["fit_stdp_window", "fit_rate_dependence", "fit_frequency_dependence", "measure_stdp_window",
           "measure_rate_dependence", "measure_frequency_dependence"]

_Z95 = float(stats.norm.ppf(0.975))


def _check_1d(da: object, obj: str, name: str, dim: str) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise ValidationError(obj, name, da, f"expected an xarray.DataArray with dim {dim!r}")
    if dim not in da.dims:
        raise ShapeError(obj, name, da, f"expected a dim {dim!r}, got {da.dims}")
    if not np.isfinite(da.values).all():
        raise ValidationError(obj, name, da, "all entries must be finite")
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
    out, se, units = [], [], []
    t_unit = da["delta_t"].attrs.get("units", "s")
    w_unit = da.attrs.get("units", "1")
    for side, mask, flip in (("plus", lag > 0, 1.0), ("minus", lag < 0, -1.0)):
        n_lags = np.unique(lag[mask]).size
        if n_lags < min_points:
            raise ValidationError("fit_stdp_window", "window", da,
                                  f"needs at least {min_points} distinct lags with delta_t "
                                  f"{'> 0' if flip > 0 else '< 0'}, got {n_lags}")
        (A, tau), (sA, stau) = _exp_fit(np.abs(lag[mask]), dw[mask])
        out += [flip * A, tau]
        se += [sA, stau]
        units += [w_unit, t_unit]
    est, se = np.array(out), np.array(se)
    return xr.DataArray(est, dims="coefficient", name="stdp_window_fit",
                        coords={"coefficient": ["A_plus", "tau_plus", "A_minus", "tau_minus"],
                                "ci_low": ("coefficient", est - _Z95 * se),
                                "ci_high": ("coefficient", est + _Z95 * se),
                                "units": ("coefficient", units)},
                        attrs={"long_name": "double-exponential STDP window fit", "confidence": 0.95,
                               "equation": "dw = A_plus exp(-dt/tau_plus) (dt > 0); "
                                           "-A_minus exp(dt/tau_minus) (dt < 0)"})


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
    if not isinstance(drift, xr.DataArray) or not {"r_pre", "r_post"} <= set(drift.dims):
        raise ValidationError("fit_rate_dependence", "drift", drift,
                              "expected an xarray.DataArray with dims r_pre and r_post (Hz)")
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
    if not isinstance(dw, xr.DataArray) or not {"frequency", "delta_t"} <= set(dw.dims):
        raise ValidationError("fit_frequency_dependence", "dw", dw,
                              "expected an xarray.DataArray with dims frequency (Hz) and delta_t (s)")
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


def _nominal_window(rule: Any) -> dict[str, float] | None:
    """The analytic single-pair window of a spike rule, if it has one."""
    from plastinet.spiking.rules import PairSTDP, TripletSTDP

    if isinstance(rule, PairSTDP):
        return {"A_plus": rule.A_plus, "tau_plus": rule.tau_plus, "A_minus": rule.A_minus,
                "tau_minus": rule.tau_minus}
    if isinstance(rule, TripletSTDP):   # one isolated pair: the triplet terms see empty traces
        return {"A_plus": rule.A2_plus, "tau_plus": rule.tau_plus, "A_minus": rule.A2_minus,
                "tau_minus": rule.tau_minus}
    return None


def measure_stdp_window(rule: Any, delta_t: Sequence[float] | None = None, *, n_pairings: int = 1,
                        frequency: float = 1.0, dt: float = 1e-4) -> xr.Dataset:
    """Measure a spike rule's STDP window with the spiking engine and fit it.

    Runs :func:`plastinet.spiking.protocols.pairing_window` (one synapse per lag,
    ``n_pairings`` pairs at ``frequency``), divides by ``n_pairings`` and applies
    :func:`fit_stdp_window`.

    Parameters
    ----------
    rule : plastinet.spiking.SpikeRule
        A rule with pre/post pathways (PairSTDP, TripletSTDP).
    delta_t : sequence of float, optional
        Lags ``t_post - t_pre`` (s); default -100..100 ms in 5 ms steps without 0.
    n_pairings : int
        Pairs per lag.
    frequency : float
        Pairing frequency (Hz).
    dt : float
        Engine time step (s).

    Returns
    -------
    xarray.Dataset
        ``window (delta_t)`` (weight change per pairing), ``fit (coefficient)`` with
        ``ci_low``/``ci_high``, and for PairSTDP/TripletSTDP ``analytic (coefficient)`` (the
        rule's single-pair window) and ``relative_error (coefficient)``.
    """
    from plastinet.spiking.protocols import pairing_window

    lags = (np.concatenate([np.arange(-100, 0, 5), np.arange(5, 105, 5)]) * 1e-3 if delta_t is None
            else np.asarray(delta_t, dtype=float))
    ds = pairing_window(rule, lags, n_pairings=n_pairings, frequency=frequency, dt=dt)
    window = (ds["dw"] / n_pairings).assign_attrs(units=ds["dw"].attrs.get("units", "1"),
                                                    long_name="weight change per pairing")
    fit = fit_stdp_window(window)
    out = xr.Dataset({"window": window, "fit": fit.assign_attrs(units="see units coord")},
                     attrs={"rule": type(rule).__name__, "n_pairings": n_pairings, "frequency": frequency,
                            "dt": dt})
    nominal = _nominal_window(rule)
    if nominal is not None:
        ref = np.array([nominal[c] for c in fit.coefficient.values])
        out["analytic"] = ("coefficient", ref, {"units": "see units coord", "long_name": "analytic window"})
        with np.errstate(divide="ignore", invalid="ignore"):
            out["relative_error"] = ("coefficient", fit.values / ref - 1,
                                     {"units": "1", "long_name": "fit / analytic - 1"})
    return out


def measure_rate_dependence(rule: Any, r_pre: Sequence[float] = (5.0, 10.0, 20.0),
                            r_post: Sequence[float] = (5.0, 10.0, 20.0), *, duration: float = 5.0,
                            n_pre: int = 50, n_post: int = 10, dt: float = 1e-4, seed: int = 0) -> xr.Dataset:
    """Effective rate rule of pair STDP: drift on a grid of Poisson rates, then its fit.

    Runs :func:`plastinet.spiking.protocols.poisson_drift` at every ``(r_pre, r_post)``.

    Parameters
    ----------
    rule : plastinet.spiking.PairSTDP
        The spike rule.
    r_pre, r_post : sequence of float
        Rates (Hz); at least 6 pairs in total.
    duration : float
        Run length per point (s).
    n_pre, n_post : int
        Neurons per point (``n_pre * n_post`` synapses are averaged).
    dt : float
        Engine time step (s).
    seed : int
        Seed (point ``i`` uses ``seed + i``).

    Returns
    -------
    xarray.Dataset
        ``drift (r_pre, r_post)`` (1/s), ``predicted`` (Kempter, nominal rates) and the
        variables of :func:`fit_rate_dependence` with the single term ``x*y`` (whose
        coefficient Kempter et al. predict to be ``A+ tau+ - A- tau-``).
    """
    from plastinet.spiking.protocols import poisson_drift
    from plastinet.spiking.rules import PairSTDP

    if not isinstance(rule, PairSTDP):
        raise UnsupportedError("measure_rate_dependence", "rule", rule,
                               "the engine's Poisson drift protocol supports PairSTDP")
    x, y = np.asarray(r_pre, float), np.asarray(r_post, float)
    drift = np.empty((x.size, y.size))
    pred = np.empty((x.size, y.size))
    for i, a in enumerate(x):
        for j, b in enumerate(y):
            d = poisson_drift(rule, r_pre=float(a), r_post=float(b), n_pre=n_pre, n_post=n_post,
                              duration=duration, dt=dt, seed=seed + i * y.size + j)
            drift[i, j], pred[i, j] = float(d["drift"]), float(d["predicted"])
    coords = {"r_pre": ("r_pre", x, {"units": "Hz", "long_name": "presynaptic rate"}),
              "r_post": ("r_post", y, {"units": "Hz", "long_name": "postsynaptic rate"})}
    da = xr.DataArray(drift, dims=("r_pre", "r_post"), coords=coords, name="drift",
                      attrs={"units": "1/s", "long_name": "measured drift <dw/dt>"})
    fit = fit_rate_dependence(da, terms=("x*y",))       # the pair rule's mean-field drift
    fit["drift"] = da
    fit["predicted"] = (("r_pre", "r_post"), pred, {"units": "1/s", "long_name": "Kempter drift"})
    return fit


def measure_frequency_dependence(rule: Any, frequencies: Sequence[float] = (0.1, 10.0, 20.0, 40.0, 50.0),
                                 delta_t: Sequence[float] = (0.01, -0.01), *, n_pairings: int = 60,
                                 dt: float = 1e-4) -> xr.Dataset:
    """Sjöström et al. 2001 protocol on the spiking engine, summarised and compared with the data.

    Runs :func:`plastinet.spiking.protocols.sjostrom` (``n_pairings`` regular pairs per
    frequency and lag, relative change ``dw / w0`` with ``w0 = 1``) and applies
    :func:`fit_frequency_dependence`.

    Parameters
    ----------
    rule : plastinet.spiking.SpikeRule
        A rule with pre/post pathways (PairSTDP, TripletSTDP).
    frequencies : sequence of float
        Pairing frequencies (Hz).
    delta_t : sequence of float
        Lags ``t_post - t_pre`` (s).
    n_pairings : int
        Pairs per condition.
    dt : float
        Engine time step (s).

    Returns
    -------
    xarray.Dataset
        ``dw (frequency, delta_t)`` (relative change), ``crossover (delta_t)`` (Hz) and, for
        the published frequencies and lags of ±10 ms, ``data_mean``, ``data_sem`` and the
        attr ``rmse_vs_data``.
    """
    from plastinet.spiking.protocols import sjostrom

    ds = sjostrom(rule, frequencies=frequencies, delta_t=delta_t, n_pairings=n_pairings, w0=1.0, dt=dt)
    out = fit_frequency_dependence(ds["dw_rel"])
    for name in ("data_mean", "data_sem"):
        if name in ds:
            out[name] = ds[name].transpose("frequency", "delta_t")
    if "data_mean" in out:
        out.attrs["rmse_vs_data"] = float(np.sqrt(((out["dw"] - out["data_mean"]) ** 2).mean()))
    out.attrs.update({"rule": type(rule).__name__, "n_pairings": n_pairings})
    return out
