"""Every plotting companion draws into a given Axes and labels its axes with units."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from plastinet.analysis import (  # noqa: E402
    BI_POO,
    attention_weights,
    fit_frequency_dependence,
    fit_power_law,
    fit_rate_dependence,
    fit_rule,
    fit_stdp_window,
    synthetic_trace,
    transition_spectrum,
)
from plastinet.experiments import capacity_curves, forgetting_curve  # noqa: E402
from plastinet.fwp import DecayedHebbian, Delta, Hebbian  # noqa: E402
from plastinet.plotting import (  # noqa: E402
    plot_attention,
    plot_capacity,
    plot_forgetting,
    plot_frequency_dependence,
    plot_plasticity_trace,
    plot_rate_dependence,
    plot_rule_fit,
    plot_scaling,
    plot_spectrum,
    plot_stdp_window,
)


def _check(ax):
    assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel()


def test_plots_draw_with_units():
    fig, axes = plt.subplots(3, 3)
    axes = axes.ravel()
    fit = fit_rule(synthetic_trace(BI_POO, T=60, seed=0), families=["hebbian", "bcm"])
    assert fit.plot(ax=axes[0]) is axes[0]
    _check(axes[0])
    _check(plot_rule_fit(fit, ax=axes[1], kind="scatter"))
    lags = np.concatenate([-np.geomspace(1e-3, 0.1, 8), np.geomspace(1e-3, 0.1, 8)])
    w = BI_POO.window(lags)
    _check(plot_stdp_window(w, fit_stdp_window(w), ax=axes[2]))
    r = np.array([2.0, 5, 10, 20])
    drift = xr.DataArray(BI_POO.drift(r[:, None], r[None, :]), dims=("r_pre", "r_post"),
                         coords={"r_pre": r, "r_post": r}, attrs={"units": "1/s", "long_name": "drift"})
    _check(plot_rate_dependence(drift, fit_rate_dependence(drift), ax=axes[3]))
    _check(plot_capacity(capacity_curves(Hebbian(), [4, 8], d_key=8, trials=2), ax=axes[4]))
    _check(plot_forgetting(forgetting_curve(DecayedHebbian(), 8, alpha=0.9, trials=4), ax=axes[5]))
    k = np.random.default_rng(0).normal(size=(10, 4))
    _check(plot_spectrum(transition_spectrum(Delta(), k / 2), ax=axes[6]))
    _check(plot_attention(attention_weights(Delta(), k, k, causal=True), ax=axes[7]))
    err = xr.DataArray([1.0, 0.5, 0.26, 0.12], dims="neurons", coords={"neurons": [1, 2, 4, 8]},
                       attrs={"units": "1", "long_name": "error"})
    _check(plot_scaling(err, fit_power_law(err, combine=True), ax=axes[8]))
    plt.close(fig)


def test_trace_and_frequency_plots():
    fig, axes = plt.subplots(1, 2)
    _check(plot_plasticity_trace(synthetic_trace(BI_POO, T=20, seed=0), ax=axes[0]))
    dw = xr.DataArray([[-0.04, -0.29], [0.14, -0.41], [0.53, 0.56]], dims=("frequency", "delta_t"),
                      coords={"frequency": [0.1, 10, 40], "delta_t": [0.01, -0.01]})
    _check(plot_frequency_dependence(fit_frequency_dependence(dw), ax=axes[1]))
    plt.close(fig)


def test_measurement_plots_with_units():
    spiking = __import__("pytest").importorskip("plastinet.spiking")
    from plastinet.experiments import measure_rate_dependence, measure_stdp_window

    fig, axes = plt.subplots(1, 2)
    w = measure_stdp_window(spiking.DopamineSTDP(), delta_t=[-0.04, -0.02, -0.01, 0.01, 0.02, 0.04])
    _check(plot_stdp_window(w.window, w.fit, ax=axes[0]))
    assert "ms" in axes[0].get_xlabel()
    rd = measure_rate_dependence(spiking.PairSTDP(), r_pre=(5.0, 10.0), r_post=(5.0, 10.0, 20.0), duration=0.5,
                                 n_pre=10, n_post=5)
    _check(plot_rate_dependence(rd.drift, rd, ax=axes[1]))      # a one-term fit (x*y) draws too
    assert len(axes[1].lines) >= 4
    lags = xr.DataArray(np.ones(6), dims="delta_t", coords={"delta_t": ("delta_t", np.arange(-3, 3) + 0.5,
                                                                         {"units": "ms"})})
    ax = plot_stdp_window(lags)
    assert "(ms)" in ax.get_xlabel()
    plt.close("all")
