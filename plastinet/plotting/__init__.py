"""Plotting companions of :mod:`plastinet.analysis` and of spiking results.

Every analysis function ``f`` has a companion ``plot_f``-style function here that takes its
xarray result and an optional matplotlib ``ax`` (a new figure when ``None``), labels the
axes with units, and returns the Axes. Spiking results have :func:`plot_raster`,
:func:`plot_population_rates`, :func:`plot_weight_trajectories`,
:func:`plot_weight_histogram` and the overview :func:`plot_spiking_overview`; a sweep's
combined result is drawn one panel per grid point by :func:`plot_sweep`. matplotlib is
imported only when a plot is drawn.
"""

from plastinet.plotting.analysis import (
                                         plot_attention,
                                         plot_capacity,
                                         plot_forgetting,
                                         plot_frequency_dependence,
                                         plot_plasticity_trace,
                                         plot_rate_dependence,
                                         plot_rule_fit,
                                         plot_rule_inference,
                                         plot_scaling,
                                         plot_spectrum,
                                         plot_stdp_window,
)
from plastinet.plotting.spiking import (
                                         plot_population_rates,
                                         plot_raster,
                                         plot_spiking_overview,
                                         plot_traces,
                                         plot_weight_histogram,
                                         plot_weight_trajectories,
)
from plastinet.plotting.sweeps import plot_sweep, sweep_dims

__all__ = ["plot_rule_fit", "plot_rule_inference", "plot_plasticity_trace", "plot_stdp_window", "plot_rate_dependence",
           "plot_frequency_dependence", "plot_capacity", "plot_forgetting", "plot_spectrum", "plot_attention",
           "plot_scaling", "plot_raster", "plot_population_rates", "plot_weight_trajectories", "plot_weight_histogram",
           "plot_traces", "plot_spiking_overview", "plot_sweep", "sweep_dims"]
