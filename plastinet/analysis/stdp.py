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
Three wrappers run the protocols on a spiking backend (``backend="numpy"`` by default,
any backend with the ``"spiking"`` capability) and fit the results:
:func:`measure_stdp_window` (pairing window; the eligibility window of dopamine STDP),
:func:`measure_rate_dependence` (Poisson drift of pair and triplet STDP) and
:func:`measure_frequency_dependence` (Sjöström protocol).
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


def _simulate(backend: Any, net: Any, duration: float, *, dt: float, seed: int, chunk_steps: int = 256) -> xr.Dataset:
    """Run ``net`` on ``backend`` through :func:`plastinet.simulate`."""
    from plastinet.simulation import simulate

    return simulate(net, duration, backend=backend, dt=dt, seed=seed, chunk_steps=chunk_steps)


def _nominal_window(rule: Any, w0: float, w_min: float, w_max: float) -> dict[str, float] | None:
    """The analytic single-pair window of a spike rule, if it has one."""
    from plastinet.spiking.rules import DopamineSTDP, PairSTDP, TripletSTDP

    if isinstance(rule, PairSTDP):
        soft = rule.bound == "soft"
        return {"A_plus": rule.A_plus * ((w_max - w0) if soft else 1.0), "tau_plus": rule.tau_plus,
                "A_minus": rule.A_minus * ((w0 - w_min) if soft else 1.0), "tau_minus": rule.tau_minus}
    if isinstance(rule, TripletSTDP):   # one isolated pair: the triplet terms see empty traces
        return {"A_plus": rule.A2_plus, "tau_plus": rule.tau_plus, "A_minus": rule.A2_minus,
                "tau_minus": rule.tau_minus}
    if isinstance(rule, DopamineSTDP):  # the eligibility created by one pair
        return {"A_plus": rule.A_plus, "tau_plus": rule.tau_plus, "A_minus": rule.A_minus,
                "tau_minus": rule.tau_minus}
    return None


def _dopamine_window(rule: Any, lags: np.ndarray, dt: float, tau_n: float, backend: Any) -> np.ndarray:
    """Eligibility per pair of a DopamineSTDP rule, read out by one dopamine pulse.

    One pre/post pair per lag (pre at ``t0``, post at ``t0 + delta_t``) creates the
    eligibility ``c0`` at the later spike ``t_l``; a single dopamine spike (increment
    ``1/tau_n``, NEST's volume transmitter) at ``t_D`` after all pairs converts it into
    ``dw = c0 F(t_l)`` with the exact factor ``F(t_l) = exp(-(t_D - t_l)/tau_c) tau_s/tau_n
    (1 - exp(-(T - t_D)/tau_s)) - b tau_c (1 - exp(-(T - t_l)/tau_c))``,
    ``1/tau_s = 1/tau_c + 1/tau_n``. Returns ``dw / F = c0``.
    """
    from plastinet.spiking.network import Network, Projection, SpikeGenerator, SpikeSignal
    C = lags.size
    t0 = 0.1 + max(0.0, -float(lags.min()))
    steps = lambda t: np.rint(np.asarray(t) / dt) * dt  # noqa: E731  (the engine's spike times)
    t_pre, t_post = steps(np.full(C, t0)), steps(t0 + lags)
    t_d = float(steps(max(t_pre.max(), t_post.max()) + 0.05))
    T = float(steps(t_d + 10 * tau_n))
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=C, indices=np.arange(C), times=t_pre))
    post = net.add(SpikeGenerator(name="post", n=C, indices=np.arange(C), times=t_post))
    net.add(SpikeGenerator(name="da", n=1, indices=[0], times=[t_d]))
    net.add(SpikeSignal(name=rule.modulator, tau=tau_n, increment=1.0 / tau_n, sources=("da",)))
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=0.0,
                       connectivity=(np.arange(C), np.arange(C)), rule=rule))
    dw = _simulate(backend, net, T, dt=dt, seed=0, chunk_steps=8192)["w_syn"].values
    t_l = np.maximum(t_pre, t_post)
    tau_c, b = rule.tau_c, rule.b
    tau_s = tau_c * tau_n / (tau_c + tau_n)
    F = (np.exp(-(t_d - t_l) / tau_c) * tau_s / tau_n * -np.expm1(-(T - t_d) / tau_s)
         - b * tau_c * -np.expm1(-(T - t_l) / tau_c))
    return dw / F


def measure_stdp_window(rule: Any, delta_t: Sequence[float] | None = None, *, n_pairings: int = 1,
                        frequency: float = 1.0, w0: float | None = None, w_min: float | None = None,
                        w_max: float | None = None, tau_n: float = 0.2, dt: float = 1e-4,
                        backend: Any = None) -> xr.Dataset:
    """Measure a spike rule's STDP window with a pairing protocol and fit it.

    Runs :func:`plastinet.experiments.protocols.pairing_window` (one synapse per lag,
    ``n_pairings`` pairs at ``frequency``), divides by ``n_pairings`` and applies
    :func:`fit_stdp_window`. For :class:`~plastinet.spiking.DopamineSTDP` the window is
    that of the eligibility trace: each pair is read out by one dopamine pulse after all
    pairs and divided by the exact conversion factor (NEST's closed form), so the
    measured window is the eligibility ``c`` created by one pair.

    Parameters
    ----------
    rule : PairSTDP, TripletSTDP or DopamineSTDP
        A spike-timing rule (from :mod:`plastinet.spiking.rules`).
    delta_t : sequence of float, optional
        Lags ``t_post - t_pre`` (s); default -100..100 ms in 5 ms steps without 0.
    n_pairings : int
        Pairs per lag (1 for DopamineSTDP).
    frequency : float
        Pairing frequency (Hz).
    w0, w_min, w_max : float, optional
        Initial weight and bounds (weight units). Defaults: ``0`` and unbounded; for a
        soft-bound PairSTDP ``w0 = 0.5``, ``[w_min, w_max] = [0, 1]`` (its window scales
        with ``w_max - w0`` and ``w0 - w_min``).
    tau_n : float
        Dopamine time constant (s) of the read-out pulse (DopamineSTDP only).
    dt : float
        Time step (s).
    backend : str or Backend
        Where the protocol runs (``"numpy"``, ``"brian2"``, ...; see
        :func:`plastinet.simulate`).

    Returns
    -------
    xarray.Dataset
        ``window (delta_t)`` (weight change per pairing, or eligibility per pair),
        ``fit (coefficient)`` with ``ci_low``/``ci_high``, ``analytic (coefficient)`` (the
        rule's single-pair window) and ``relative_error (coefficient)`` (``fit / analytic -
        1``; 0 where both are 0).

    Raises
    ------
    UnsupportedError
        For rules without a spike-timing window (PES, ModulatedHebbian), or
        ``n_pairings > 1`` with DopamineSTDP.
    ValidationError
        As :func:`fit_stdp_window` (fewer than 3 lags on a side).
    """
    from plastinet.experiments.protocols import pairing_window
    from plastinet.spiking.rules import DopamineSTDP, PairSTDP, TripletSTDP

    if not isinstance(rule, (PairSTDP, TripletSTDP, DopamineSTDP)):
        raise UnsupportedError("measure_stdp_window", "rule", rule,
                               "needs a spike-timing rule: PairSTDP, TripletSTDP or DopamineSTDP "
                               "(per-step rules such as PES and ModulatedHebbian have no pairing window)")
    if not isinstance(n_pairings, (int, np.integer)) or n_pairings < 1:
        raise ValidationError("measure_stdp_window", "n_pairings", n_pairings, "expected an integer >= 1")
    lags = (np.concatenate([np.arange(-100, 0, 5), np.arange(5, 105, 5)]) * 1e-3 if delta_t is None
            else np.asarray(delta_t, dtype=float).reshape(-1))
    if not np.all(np.isfinite(lags)):
        raise ValidationError("measure_stdp_window", "delta_t", delta_t, "lags must be finite (s)")
    soft = isinstance(rule, PairSTDP) and rule.bound == "soft"
    w_min = (0.0 if soft else -np.inf) if w_min is None else float(w_min)
    w_max = (1.0 if soft else np.inf) if w_max is None else float(w_max)
    w0 = (0.5 * (w_min + w_max) if soft else 0.0) if w0 is None else float(w0)
    if soft and not (np.isfinite(w_min) and np.isfinite(w_max)):
        raise ValidationError("measure_stdp_window", "w_min/w_max", (w_min, w_max),
                              "a soft-bound rule needs finite bounds (its window scales with them)")
    if isinstance(rule, DopamineSTDP):
        if n_pairings != 1:
            raise UnsupportedError("measure_stdp_window", "n_pairings", n_pairings,
                                   "the eligibility window of DopamineSTDP is measured with single pairs")
        values = _dopamine_window(rule, lags, dt, float(tau_n), backend)
        window = xr.DataArray(values, dims="delta_t", name="window",
                              coords={"delta_t": ("delta_t", lags, {"units": "s", "long_name": "t_post - t_pre"})},
                              attrs={"units": "1", "long_name": "eligibility per pair"})
    else:
        ds = pairing_window(rule, lags, n_pairings=n_pairings, frequency=frequency, w0=w0, w_min=w_min,
                            w_max=w_max, dt=dt, backend=backend)
        window = (ds["dw"] / n_pairings).assign_attrs(units=ds["dw"].attrs.get("units", "1"),
                                                        long_name="weight change per pairing")
    fit = fit_stdp_window(window)
    out = xr.Dataset({"window": window, "fit": fit.assign_attrs(units="see units coord")},
                     attrs={"rule": type(rule).__name__, "n_pairings": n_pairings, "frequency": frequency,
                            "dt": dt, "w0": w0, "note": fit.attrs.get("note", "")})
    nominal = _nominal_window(rule, w0, w_min, w_max)
    ref = np.array([nominal[c] for c in fit.coefficient.values])
    out["analytic"] = ("coefficient", ref, {"units": "see units coord", "long_name": "analytic window"})
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where((ref == 0) & (fit.values == 0), 0.0, fit.values / ref - 1)
    out["relative_error"] = ("coefficient", rel, {"units": "1", "long_name": "fit / analytic - 1"})
    return out


def _mean_field_drift(rule: Any, x: Any, y: Any) -> Any:
    """Mean-field drift ``<dw/dt>`` (1/s) of an all-to-all spike rule for independent
    Poisson rates ``x`` (pre) and ``y`` (post), Hz (Kempter et al. 1999; Pfister & Gerstner 2006)."""
    from plastinet.spiking.rules import PairSTDP

    x, y = np.asarray(x, float), np.asarray(y, float)
    if isinstance(rule, PairSTDP):
        return x * y * (rule.A_plus * rule.tau_plus - rule.A_minus * rule.tau_minus)
    return (x * y * (rule.A2_plus * rule.tau_plus - rule.A2_minus * rule.tau_minus)
            + rule.A3_plus * rule.tau_plus * rule.tau_y * x * y * y
            - rule.A3_minus * rule.tau_minus * rule.tau_x * x * x * y)


def _poisson_drift(rule: Any, r_pre: float, r_post: float, n_pre: int, n_post: int, duration: float,
                   warmup: float, dt: float, seed: int, backend: Any) -> float:
    """Mean ``dw/dt`` (1/s) of unbounded synapses between independent Poisson neurons,
    measured over ``duration`` after ``warmup`` (the traces start empty: without the
    warm-up a term with time constant ``tau`` would fall short by about ``tau / duration``)."""
    from plastinet.spiking.network import Network, PoissonGroup, Projection, WeightProbe
    net = Network()
    pre = net.add(PoissonGroup(name="pre", n=n_pre, rate=r_pre))
    post = net.add(PoissonGroup(name="post", n=n_post, rate=r_post))
    net.add(Projection(name="syn", pre=pre, post=post, target="none", weight=0.0, rule=rule))
    net.add(WeightProbe(name="W", projection="syn", sample_every=warmup))
    ds = _simulate(backend, net, warmup + duration, dt=dt, seed=seed)
    n_steps = int(round((warmup + duration) / dt))
    s_warm = int(round(warmup / dt))
    w_warm = ds["W"].isel(time=1).values            # after the step at t = warmup
    w_end = ds["w_syn"].values.reshape(n_pre, n_post).T
    return float((w_end - w_warm).mean() / ((n_steps - 1 - s_warm) * dt))


def measure_rate_dependence(rule: Any, r_pre: Sequence[float] = (5.0, 10.0, 20.0),
                            r_post: Sequence[float] = (5.0, 10.0, 20.0), *, duration: float = 5.0,
                            n_pre: int = 50, n_post: int = 10, dt: float = 1e-4, seed: int = 0,
                            terms: Sequence[str] | None = None, warmup: float | None = None,
                            backend: Any = None) -> xr.Dataset:
    """Effective rate rule of a spike rule: drift on a grid of Poisson rates, then its fit.

    At every ``(r_pre, r_post)`` independent Poisson neurons drive unbounded synapses
    with ``rule`` (all pairs of ``n_pre`` pre and ``n_post`` post neurons) for ``duration``;
    the mean weight drift is fitted with :func:`fit_rate_dependence`.

    Parameters
    ----------
    rule : plastinet.spiking.PairSTDP or plastinet.spiking.TripletSTDP
        The spike rule (all-to-all pairing for the mean-field prediction).
    r_pre, r_post : sequence of float
        Rates (Hz); at least 6 pairs in total.
    duration : float
        Run length per point (s).
    n_pre, n_post : int
        Neurons per point (``n_pre * n_post`` synapses are averaged).
    dt : float
        Time step (s).
    seed : int
        Seed (point ``i`` uses ``seed + i``).
    terms : sequence of str, optional
        Terms of the fit; default ``("x*y",)`` for PairSTDP (Kempter et al. 1999:
        ``c_xy = A+ tau+ - A- tau-``) and ``("x*y", "x*y^2")`` for TripletSTDP, plus
        ``"x^2*y"`` when ``A3_minus > 0`` (``c_xy = A2+ tau+ - A2- tau-``,
        ``c_xyy = A3+ tau+ tau_y``, ``c_xxy = -A3- tau- tau_x``; Pfister & Gerstner 2006).
    warmup : float, optional
        Time (s) before the measurement starts, so that the traces reach their stationary
        statistics; default 5 times the rule's longest trace time constant, rounded up
        to ``dt``.
    backend : str or Backend
        Where the runs happen (see :func:`plastinet.simulate`).

    Returns
    -------
    xarray.Dataset
        ``drift (r_pre, r_post)`` (1/s), ``predicted`` (the mean-field drift at the nominal
        rates), ``analytic (term)`` (the mean-field coefficients) and the variables of
        :func:`fit_rate_dependence`.

    Raises
    ------
    UnsupportedError
        For other rules.
    ValidationError
        For fewer than 6 rate pairs, non-positive rates, durations or neuron counts.
    """
    from plastinet.spiking.rules import PairSTDP, TripletSTDP

    if not isinstance(rule, (PairSTDP, TripletSTDP)):
        raise UnsupportedError("measure_rate_dependence", "rule", rule,
                               "the Poisson drift protocol needs PairSTDP or TripletSTDP")
    x, y = np.asarray(r_pre, float).reshape(-1), np.asarray(r_post, float).reshape(-1)
    if x.size * y.size < 6:
        raise ValidationError("measure_rate_dependence", "r_pre/r_post", (x.tolist(), y.tolist()),
                              "needs at least 6 (r_pre, r_post) pairs for the fit")
    if not (np.all(x > 0) and np.all(y > 0) and duration > 0 and n_pre >= 1 and n_post >= 1):
        raise ValidationError("measure_rate_dependence", "r_pre/r_post/duration/n_pre/n_post",
                              (x.tolist(), y.tolist(), duration, n_pre, n_post),
                              "needs positive rates (Hz), a positive duration (s) and neuron counts >= 1")
    if terms is None:
        terms = (("x*y",) if isinstance(rule, PairSTDP) else
                 ("x*y", "x*y^2") + (("x^2*y",) if rule.A3_minus > 0 else ()))
    if warmup is None:
        taus = [getattr(rule, n) for n in ("tau_plus", "tau_minus", "tau_x", "tau_y") if hasattr(rule, n)]
        warmup = 5 * max(taus)
    warmup = max(1, int(np.ceil(float(warmup) / dt - 1e-9))) * dt
    drift = np.empty((x.size, y.size))
    for i, a in enumerate(x):
        for j, b in enumerate(y):
            drift[i, j] = _poisson_drift(rule, float(a), float(b), int(n_pre), int(n_post), float(duration),
                                         warmup, dt, seed + i * y.size + j, backend)
    pred = _mean_field_drift(rule, x[:, None], y[None, :])
    coords = {"r_pre": ("r_pre", x, {"units": "Hz", "long_name": "presynaptic rate"}),
              "r_post": ("r_post", y, {"units": "Hz", "long_name": "postsynaptic rate"})}
    da = xr.DataArray(drift, dims=("r_pre", "r_post"), coords=coords, name="drift",
                      attrs={"units": "1/s", "long_name": "measured drift <dw/dt>"})
    fit = fit_rate_dependence(da, terms=terms)
    fit["drift"] = da
    fit["predicted"] = (("r_pre", "r_post"), pred, {"units": "1/s", "long_name": "mean-field drift"})
    one = np.ones(1)
    ana = {"x*y": float(_mean_field_drift(rule, one, one)[0])}
    if isinstance(rule, TripletSTDP):
        ana.update({"x*y^2": rule.A3_plus * rule.tau_plus * rule.tau_y,
                    "x^2*y": -rule.A3_minus * rule.tau_minus * rule.tau_x})
    else:
        ana.update({"x*y^2": 0.0, "x^2*y": 0.0})
    fit["analytic"] = ("term", [ana[t] for t in fit.term.values],
                       {"units": "(1/s) / Hz^n", "long_name": "mean-field coefficient"})
    fit.attrs.update({"rule": type(rule).__name__, "duration": float(duration), "warmup": float(warmup)})
    return fit


def measure_frequency_dependence(rule: Any, frequencies: Sequence[float] = (0.1, 10.0, 20.0, 40.0, 50.0),
                                 delta_t: Sequence[float] = (0.01, -0.01), *, n_pairings: int = 60,
                                 dt: float = 1e-4, backend: Any = None) -> xr.Dataset:
    """Sjöström et al. 2001 protocol on the spiking engine, summarised and compared with the data.

    Runs :func:`plastinet.experiments.protocols.sjostrom` (``n_pairings`` regular pairs per
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
        Time step (s).
    backend : str or Backend
        Where the protocol runs (see :func:`plastinet.simulate`).

    Returns
    -------
    xarray.Dataset
        ``dw (frequency, delta_t)`` (relative change), ``crossover (delta_t)`` (Hz) and, for
        the published frequencies and lags of ±10 ms, ``data_mean``, ``data_sem`` and the
        attr ``rmse_vs_data``.
    """
    from plastinet.experiments.protocols import sjostrom

    from plastinet.spiking.rules import PairSTDP, TripletSTDP

    if not isinstance(rule, (PairSTDP, TripletSTDP)):
        raise UnsupportedError("measure_frequency_dependence", "rule", rule,
                               "the Sjostrom pairing protocol needs PairSTDP or TripletSTDP")
    ds = sjostrom(rule, frequencies=frequencies, delta_t=delta_t, n_pairings=n_pairings, w0=1.0, dt=dt,
                  backend=backend)
    out = fit_frequency_dependence(ds["dw_rel"])
    for name in ("data_mean", "data_sem"):
        if name in ds:
            out[name] = ds[name].transpose("frequency", "delta_t")
    if "data_mean" in out:
        out.attrs["rmse_vs_data"] = float(np.sqrt(((out["dw"] - out["data_mean"]) ** 2).mean()))
    out.attrs.update({"rule": type(rule).__name__, "n_pairings": n_pairings})
    return out
