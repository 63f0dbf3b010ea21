"""STDP measurements: run a spike rule through a protocol on a backend and fit the result.

* :func:`measure_stdp_window` - the pairing window (for dopamine STDP the eligibility
  window, read out by one dopamine pulse), fitted with
  :func:`plastinet.analysis.fit_stdp_window` and compared with the analytic window;
* :func:`measure_rate_dependence` - the Poisson drift of pair and triplet STDP on a grid of
  rates, fitted with :func:`plastinet.analysis.fit_rate_dependence` and compared with
  :func:`plastinet.analysis.stdp_theory.mean_field_drift`;
* :func:`measure_frequency_dependence` - the Sjöström protocol, summarised with
  :func:`plastinet.analysis.fit_frequency_dependence` and compared with the data.

Every network runs through :func:`plastinet.simulate` on ``backend`` (``None``: the
reference engine; any backend with the ``"spiking"`` capability).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr

from plastinet.analysis.stdp import fit_frequency_dependence, fit_rate_dependence, fit_stdp_window
from plastinet.analysis.stdp_theory import mean_field_drift
from plastinet.errors import UnsupportedError, ValidationError
from plastinet.experiments.protocols import pairing_window, protocol, sjostrom
from plastinet.simulation import simulate
from plastinet.spiking.network import Network, PoissonGroup, Projection, SpikeGenerator, SpikeSignal, WeightProbe
from plastinet.spiking.rules import DopamineSTDP, PairSTDP, TripletSTDP

__all__ = ["measure_stdp_window", "measure_rate_dependence", "measure_frequency_dependence"]


def _simulate(backend: Any, net: Any, duration: float, *, dt: float, seed: int, chunk_steps: int = 256) -> xr.Dataset:
    """Run ``net`` on ``backend`` through :func:`plastinet.simulate`."""
    return simulate(net, duration, backend=backend, dt=dt, seed=seed, chunk_steps=chunk_steps)


def _nominal_window(rule: Any, w0: float, w_min: float, w_max: float) -> dict[str, float] | None:
    """The analytic single-pair window of a spike rule, if it has one."""
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


@protocol
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


def _poisson_drift(rule: Any, r_pre: float, r_post: float, n_pre: int, n_post: int, duration: float,
                   warmup: float, dt: float, seed: int, backend: Any) -> float:
    """Mean ``dw/dt`` (1/s) of unbounded synapses between independent Poisson neurons,
    measured over ``duration`` after ``warmup`` (the traces start empty: without the
    warm-up a term with time constant ``tau`` would fall short by about ``tau / duration``)."""
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


@protocol
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
    pred = mean_field_drift(rule, x[:, None], y[None, :])
    coords = {"r_pre": ("r_pre", x, {"units": "Hz", "long_name": "presynaptic rate"}),
              "r_post": ("r_post", y, {"units": "Hz", "long_name": "postsynaptic rate"})}
    da = xr.DataArray(drift, dims=("r_pre", "r_post"), coords=coords, name="drift",
                      attrs={"units": "1/s", "long_name": "measured drift <dw/dt>"})
    fit = fit_rate_dependence(da, terms=terms)
    fit["drift"] = da
    fit["predicted"] = (("r_pre", "r_post"), pred, {"units": "1/s", "long_name": "mean-field drift"})
    one = np.ones(1)
    ana = {"x*y": float(mean_field_drift(rule, one, one)[0])}
    if isinstance(rule, TripletSTDP):
        ana.update({"x*y^2": rule.A3_plus * rule.tau_plus * rule.tau_y,
                    "x^2*y": -rule.A3_minus * rule.tau_minus * rule.tau_x})
    else:
        ana.update({"x*y^2": 0.0, "x^2*y": 0.0})
    fit["analytic"] = ("term", [ana[t] for t in fit.term.values],
                       {"units": "(1/s) / Hz^n", "long_name": "mean-field coefficient"})
    fit.attrs.update({"rule": type(rule).__name__, "duration": float(duration), "warmup": float(warmup)})
    return fit


@protocol
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
