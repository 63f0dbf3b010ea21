"""Plotting companions of :mod:`plastinet.analysis`.

Every analysis function ``f`` has a companion ``plot_f``-style function here that takes its
xarray result and an optional matplotlib ``ax`` (a new figure when ``None``), labels the
axes with units, and returns the Axes. matplotlib is imported only when a plot is drawn.
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

__all__ = ["plot_rule_fit", "plot_rule_inference", "plot_plasticity_trace", "plot_stdp_window", "plot_rate_dependence",
           "plot_frequency_dependence", "plot_capacity", "plot_forgetting", "plot_spectrum", "plot_attention",
           "plot_scaling"]
