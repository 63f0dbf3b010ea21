"""Plots of analysis results (one function per analysis, each with ``ax=``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot_rule_fit", "plot_rule_inference", "plot_plasticity_trace", "plot_stdp_window", "plot_rate_dependence",
           "plot_frequency_dependence", "plot_capacity", "plot_forgetting", "plot_spectrum", "plot_attention",
           "plot_scaling"]


def _ax(ax: Any, size: tuple[float, float] = (5.0, 3.6)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=size, layout="constrained").add_subplot()


def _label(da: xr.DataArray, fallback: str) -> str:
    return f"{da.attrs.get('long_name', fallback)} ({da.attrs.get('units', '1')})"


def plot_rule_fit(fit: Any, ax: Any = None, kind: str = "ranking") -> Any:
    """Draw a :class:`~plastinet.analysis.RuleFit`.

    Parameters
    ----------
    fit : RuleFit
        Result of :func:`~plastinet.analysis.fit_rule`.
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    kind : {"ranking", "scatter"}
        ``"ranking"``: BIC difference to the best family (log scale, 1 + dBIC) with each
        family's R^2; ``"scatter"``: observed against predicted ``dW`` of the best family.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _ax(ax)
    if kind == "scatter":
        p = fit.predict()
        obs, pred = p.observed.values.ravel(), p.predicted.values.ravel()
        ax.plot(pred, obs, ".", ms=2, alpha=0.4)
        lim = [min(obs.min(), pred.min()), max(obs.max(), pred.max())]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel(f"predicted dW, {fit.best} ({p.predicted.attrs['units']})")
        ax.set_ylabel(f"observed dW ({p.observed.attrs['units']})")
        ax.set_title(f"R² = {fit.r2:.3f}")
        return ax
    t = fit.table()
    names = [str(f) for f in t.family.values]
    y = np.arange(len(names))
    ax.barh(y, 1 + t.delta_bic.values, color=["tab:green"] + ["tab:gray"] * (len(names) - 1))
    ax.set_xscale("log")
    ax.set_yticks(y, [f"{n}  (R²={r:.2f})" for n, r in zip(names, t.r2.values)], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("1 + ΔBIC (1)")
    ax.set_ylabel("rule family (R², 1)")
    ax.set_title(fit.classification if len(fit.classification) < 60 else fit.classification[:57] + "...",
                 fontsize=8)
    return ax


def plot_plasticity_trace(trace: xr.Dataset, ax: Any = None, n_synapses: int = 5) -> Any:
    """Weight change per step of a few synapses over time.

    Parameters
    ----------
    trace : xarray.Dataset
        Output of :func:`~plastinet.experiments.plasticity_trace` (or any Dataset with
        ``dW (time, post, pre)``).
    ax : matplotlib.axes.Axes, optional
    n_synapses : int
        Synapses drawn (the first ``post`` row, the first ``n_synapses`` ``pre`` columns).
    """
    ax = _ax(ax)
    dW = trace["dW"].transpose("time", "post", "pre")
    t = trace["time"].values if "time" in trace.coords else np.arange(dW.sizes["time"])
    for j in range(min(n_synapses, dW.sizes["pre"])):
        ax.plot(t, dW.values[:, 0, j], lw=0.8, label=f"post 0, pre {j}")
    t_units = trace["time"].attrs.get("units", "step") if "time" in trace.coords else "step"
    ax.set_xlabel(f"time ({t_units})")
    ax.set_ylabel(_label(dW, "weight change per step"))
    ax.legend(fontsize=7)
    return ax


def plot_stdp_window(window: xr.DataArray, fit: xr.DataArray | None = None, ax: Any = None) -> Any:
    """Measured STDP window (points) and, if given, its double-exponential fit (line).

    Parameters
    ----------
    window : xarray.DataArray
        Weight change per pairing along ``delta_t`` (s).
    fit : xarray.DataArray, optional
        Output of :func:`~plastinet.analysis.fit_stdp_window`.
    ax : matplotlib.axes.Axes, optional
    """
    ax = _ax(ax)
    dt = window["delta_t"].values
    scale = 1e3 if window["delta_t"].attrs.get("units", "s") == "s" else 1.0
    other = [d for d in window.dims if d != "delta_t"]
    mean = window.mean(other) if other else window
    ax.plot(dt * scale, mean.values, "o", ms=3, label=window.name or "measured")
    if fit is not None:
        c = {k: float(fit.sel(coefficient=k)) for k in ("A_plus", "tau_plus", "A_minus", "tau_minus")}
        grid = np.linspace(dt.min(), dt.max(), 400)
        model = np.where(grid > 0, c["A_plus"] * np.exp(-grid / c["tau_plus"]),
                         -c["A_minus"] * np.exp(grid / c["tau_minus"]))
        ax.plot(grid[grid > 0] * scale, model[grid > 0], "k-", lw=1,
                label=f"fit τ+ = {c['tau_plus'] * scale:.3g} ms, τ− = {c['tau_minus'] * scale:.3g} ms")
        ax.plot(grid[grid < 0] * scale, model[grid < 0], "k-", lw=1)
    ax.axhline(0, color="0.7", lw=0.6)
    ax.axvline(0, color="0.7", lw=0.6)
    ax.set_xlabel("Δt = t_post − t_pre (ms)" if scale == 1e3 else
                  f"Δt = t_post − t_pre ({window['delta_t'].attrs.get('units', '1')})")
    ax.set_ylabel(_label(window, "weight change per pairing"))
    ax.legend(fontsize=7)
    return ax


def plot_rate_dependence(drift: xr.DataArray, fit: xr.Dataset | None = None, ax: Any = None) -> Any:
    """Drift ``<dw/dt>`` against the postsynaptic rate, one line per presynaptic rate.

    Parameters
    ----------
    drift : xarray.DataArray
        Dims ``r_pre``, ``r_post`` (Hz).
    fit : xarray.Dataset, optional
        Output of :func:`~plastinet.analysis.fit_rate_dependence` (dashed lines).
    ax : matplotlib.axes.Axes, optional
    """
    ax = _ax(ax)
    other = [d for d in drift.dims if d not in ("r_pre", "r_post")]
    mean = drift.mean(other) if other else drift
    y = mean["r_post"].values.astype(float)
    for xr_ in mean["r_pre"].values:
        line, = ax.plot(y, mean.sel(r_pre=xr_).values, "o-", ms=3, label=f"r_pre = {xr_:g} Hz")
        if fit is not None:
            c = {str(t): float(v) for t, v in zip(fit.term.values, fit.coefficient.values)}
            model = (c.get("x*y", 0.0) * xr_ * y + c.get("x*y^2", 0.0) * xr_ * y ** 2
                     + c.get("x^2*y", 0.0) * xr_ ** 2 * y)
            ax.plot(y, model, "--", color=line.get_color())
    ax.axhline(0, color="0.7", lw=0.6)
    ax.set_xlabel("postsynaptic rate r_post (Hz)")
    ax.set_ylabel(_label(drift, "weight drift <dw/dt>"))
    ax.legend(fontsize=7)
    return ax


def plot_frequency_dependence(result: xr.Dataset, ax: Any = None) -> Any:
    """Weight change against pairing frequency, one line per lag, crossovers marked.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`~plastinet.analysis.fit_frequency_dependence` or
        :func:`~plastinet.experiments.measure_frequency_dependence` (whose data, if present,
        are drawn as open squares with s.e.m.).
    ax : matplotlib.axes.Axes, optional
    """
    ax = _ax(ax)
    f = result["frequency"].values
    for j, lag in enumerate(result["delta_t"].values):
        line, = ax.plot(f, result["dw"].values[:, j], "o-", ms=3, label=f"Δt = {lag * 1e3:+.0f} ms")
        c = float(result["crossover"].values[j])
        if np.isfinite(c):
            ax.axvline(c, color=line.get_color(), lw=0.7, ls=":")
        if "data_mean" in result:
            ax.errorbar(f, result["data_mean"].values[:, j], yerr=result["data_sem"].values[:, j], fmt="s",
                        mfc="none", ms=4, capsize=2, color=line.get_color(),
                        label="Sjöström et al. 2001" if j == 0 else None)
    ax.axhline(0, color="0.7", lw=0.6)
    ax.set_xlabel("pairing frequency (Hz)")
    ax.set_ylabel(_label(result["dw"], "weight change"))
    ax.legend(fontsize=7)
    return ax


def plot_capacity(result: xr.Dataset, ax: Any = None, key_distribution: str | None = None,
                  beta: float | None = None) -> Any:
    """Recall error against stored items, one line per rule, with the analytic references.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`~plastinet.experiments.capacity_curves`.
    ax : matplotlib.axes.Axes, optional
    key_distribution, beta : optional
        Which slice to draw (default: the first).
    """
    ax = _ax(ax)
    sel = result.sel(key_distribution=key_distribution or result.key_distribution.values[0],
                     beta=beta if beta is not None else result.beta.values[0])
    n = sel["n_items"].values
    for rule in sel.rule.values:
        e = sel.recall_error.sel(rule=rule)
        ax.errorbar(n, e.mean("trial"), yerr=e.std("trial"), marker="o", ms=3, capsize=2, label=str(rule))
    ax.plot(n, sel.crosstalk_reference, "k--", lw=1, label="(n − 1)/d_k")
    first = str(sel.rule.values[0])
    ax.plot(n, sel.rank_bound.isel(rule=0), ":", color="tab:red", label=f"rank bound (n − d_φ)/n, {first}")
    if "optimal_error" in sel:
        ax.plot(n, sel.optimal_error.isel(rule=0).mean("trial"), "x", color="tab:red", ms=5,
                label=f"least-squares memory (simulated), {first}")
    ax.set_xlabel("stored items n (1)")
    ax.set_ylabel(_label(result.recall_error, "recall error"))
    ax.legend(fontsize=7)
    return ax


def plot_forgetting(result: xr.Dataset, ax: Any = None) -> Any:
    """Recall error against item age, with the analytic reference where there is one.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`~plastinet.experiments.forgetting_curve`.
    ax : matplotlib.axes.Axes, optional
    """
    ax = _ax(ax)
    e = result.recall_error
    label = f"{result.attrs.get('rule', '')} α={result.attrs.get('alpha', '')}"
    ax.errorbar(result.age, e.mean("trial"), yerr=e.std("trial") / np.sqrt(e.sizes["trial"]),
                marker="o", ms=2, capsize=1, label=label)
    if "reference" in result:
        ax.plot(result.age, result.reference, "k--", lw=1, label="analytic")
    ax.set_xlabel("age: writes since storage (1)")
    ax.set_ylabel(_label(e, "recall error"))
    ax.legend(fontsize=7)
    return ax


def plot_spectrum(result: xr.Dataset, ax: Any = None) -> Any:
    """Per-step eigenvalue along the key and the cumulative transition's singular values.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`~plastinet.analysis.transition_spectrum`.
    ax : matplotlib.axes.Axes, optional
    """
    ax = _ax(ax)
    t = result.time.values
    colors = {"identity": "0.5", "contractive": "tab:blue", "reflecting": "tab:orange", "expanding": "tab:red"}
    for regime, color in colors.items():
        mask = result.regime.values == regime
        if mask.any():
            ax.plot(t[mask], result.eig_key.values[mask], "o", ms=3, color=color, label=f"λ along k: {regime}")
    ax.plot(t, result.eig_other, "k-", lw=0.8, label="λ orthogonal (α)")
    ax.plot(t, result.singular_values.max("mode"), "-", color="tab:green", lw=1, label="max σ(A_1…A_t)")
    ax.plot(t, result.singular_values.min("mode"), "--", color="tab:green", lw=1, label="min σ(A_1…A_t)")
    for y in (-1, 0, 1):
        ax.axhline(y, color="0.8", lw=0.5)
    ax.set_xlabel("step t (1)")
    ax.set_ylabel("eigen- / singular value (1)")
    ax.legend(fontsize=6)
    return ax


def plot_attention(weights: xr.DataArray, ax: Any = None) -> Any:
    """Image of the dual-form weights ``M (query, write)`` (diverging colours).

    Parameters
    ----------
    weights : xarray.DataArray
        Output of :func:`~plastinet.analysis.attention_weights`.
    ax : matplotlib.axes.Axes, optional
    """
    ax = _ax(ax, (4.2, 3.6))
    lim = float(np.abs(weights.values).max()) or 1.0
    im = ax.imshow(weights.values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.set_xlabel("write step τ (1)")
    ax.set_ylabel("query (1)")
    ax.set_title(weights.attrs.get("rule", ""), fontsize=9)
    ax.figure.colorbar(im, ax=ax, label="weight of v_τ (1)")
    return ax


def plot_scaling(error: xr.DataArray, fit: xr.Dataset, ax: Any = None) -> Any:
    """Error against the product of the settings (log-log) with the fitted power law.

    Parameters
    ----------
    error : xarray.DataArray
        The errors that were fitted.
    fit : xarray.Dataset
        Output of :func:`~plastinet.analysis.fit_power_law` with ``combine=True``.
    ax : matplotlib.axes.Axes, optional
    """
    ax = _ax(ax)
    dims = str(fit.setting.values[0]).split("*")
    flat = error.stack(_s=error.dims)
    x = np.prod([flat[d].values.astype(float) for d in dims], axis=0)
    ax.loglog(x, flat.values, ".", ms=4, label="measured")
    grid = np.geomspace(x.min(), x.max(), 50)
    a = float(fit.exponent.values[0])
    ax.loglog(grid, float(fit.prefactor) * grid ** a, "k-", lw=1,
              label=f"fit exponent {a:.2f} [{float(fit.ci_low[0]):.2f}, {float(fit.ci_high[0]):.2f}]")
    ax.set_xlabel(" × ".join(f"{d} ({error[d].attrs.get('units', '1')})" for d in dims))
    ax.set_ylabel(_label(error, "error"))
    ax.legend(fontsize=7)
    return ax


def plot_rule_inference(fit: Any, ax: Any = None, kind: str = "coefficients") -> Any:
    """Draw a :class:`~plastinet.analysis.RuleInference` (or its :meth:`to_dataset` form).

    Parameters
    ----------
    fit : RuleInference or xarray.Dataset
        Result of :func:`~plastinet.analysis.infer_rule`, or its Dataset form (e.g. a saved
        ``rule_inference`` model result).
    ax : matplotlib.axes.Axes, optional
        Where to draw.
    kind : {"coefficients", "prediction"}
        ``"coefficients"``: the standardised coefficients (fraction of the weight scale each
        term changes per trial) with their 95 % intervals; planted values (variable
        ``planted``, if present) as red crosses. ``"prediction"``: predicted against
        recorded post activity, or, for choices, the fitted probability of action 1 and
        the observed choices of trial 0 over time.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ds = fit if isinstance(fit, xr.Dataset) else fit.to_dataset()
    ax = _ax(ax)
    best = ds.attrs.get("best", "?")
    if kind == "prediction":
        if "predicted" in ds:
            obs, pred = ds.observed.values.ravel(), ds.predicted.values.ravel()
            ax.plot(pred, obs, ".", ms=2, alpha=0.4)
            lim = [min(obs.min(), pred.min()), max(obs.max(), pred.max())]
            ax.plot(lim, lim, "k--", lw=0.8)
            ax.set_xlabel(f"predicted post activity ({ds.predicted.attrs['units']})")
            ax.set_ylabel(f"recorded post activity ({ds.observed.attrs['units']})")
            ax.set_title(f"best match {best}: R² = {float(ds.attrs.get('r2', np.nan)):.3f}", fontsize=9)
        else:
            t = ds["time"].values
            ax.plot(t, ds.probability.isel(trial=0, action=1), label="p(action 1), fitted model")
            ax.plot(t, ds.observed.isel(trial=0), "|", color="k", ms=6, label="observed choice")
            ax.set_xlabel(f"time step ({ds['time'].attrs.get('units', '1')})")
            ax.set_ylabel("choice / probability (1)")
            ax.set_title(f"best match {best}: choice likelihood {float(ds.attrs.get('r2', np.nan)):.3f}",
                         fontsize=9)
            ax.legend(fontsize=7)
        return ax
    if kind != "coefficients":
        from plastinet.errors import UnsupportedError

        raise UnsupportedError("plot_rule_inference", "kind", kind, "allowed: 'coefficients', 'prediction'")
    theta, psi, ratio = ds.coefficients.values, ds.effect.values, ds.effect_scale.values
    y = np.arange(theta.size)
    ax.barh(y, psi, color=["tab:green" if v else "0.75" for v in theta])
    ok = np.isfinite(ratio) & np.isfinite(ds.ci_low.values)
    lo, hi = ds.ci_low.values * ratio, ds.ci_high.values * ratio
    ax.errorbar(psi[ok], y[ok], xerr=[np.abs(psi - lo)[ok], np.abs(hi - psi)[ok]], fmt="none", ecolor="k",
                capsize=2, lw=0.8)
    if "planted" in ds:
        planted = ds.planted.values
        show = np.isfinite(planted) & np.isfinite(ratio)
        ax.plot(planted[show] * ratio[show], y[show], "x", color="tab:red", ms=7, mew=2, label="planted")
        ax.legend(fontsize=7)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_yticks(y, [str(n) for n in ds.coefficient.values], fontsize=7)
    ax.set_xlabel("standardised coefficient ψ (1)")
    ax.set_title(f"{ds.attrs.get('rule_family', '')} rule, best match: {best}", fontsize=9)
    return ax
