"""Analytic STDP theory: the mean drift of pair and triplet STDP under Poisson firing.

For independent Poisson trains at presynaptic rate ``x`` and postsynaptic rate ``y`` (Hz),
all-to-all pair STDP with the window ``A+ exp(-dt/tau+)`` (``dt > 0``),
``-A- exp(dt/tau-)`` (``dt < 0``) drifts at ``<dw/dt> = x y (A+ tau+ - A- tau-)``
(Kempter, Gerstner & van Hemmen 1999); the minimal triplet rule adds
``A3+ tau+ tau_y x y^2 - A3- tau- tau_x x^2 y`` (Pfister & Gerstner 2006). The functions
read the parameters by name (``A_plus``, ``tau_plus`` ...; ``A2_plus``, ``A3_plus``,
``tau_x``, ``tau_y`` ... for triplet rules), so they apply to the spike-rule specs of
:mod:`plastinet.spiking.rules` and to the rate-form descriptions of
:mod:`plastinet.analysis.biological` alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pair_integral", "mean_field_drift"]


def pair_integral(A_plus: float, tau_plus: float, A_minus: float, tau_minus: float) -> float:
    """``A+ tau+ - A- tau-`` (weight units times s): the integral of the pair window."""
    return A_plus * tau_plus - A_minus * tau_minus


def mean_field_drift(rule: Any, x: Any, y: Any) -> Any:
    """Mean drift ``<dw/dt>`` (1/s) of an all-to-all pair or triplet rule at Poisson rates.

    Parameters
    ----------
    rule : object
        A pair rule (``A_plus``, ``A_minus``, ``tau_plus``, ``tau_minus``) or a triplet
        rule (``A2_plus``, ``A2_minus``, ``A3_plus``, ``A3_minus``, ``tau_plus``,
        ``tau_minus``, ``tau_x``, ``tau_y``).
    x, y : array_like
        Presynaptic and postsynaptic rates (Hz), broadcast against each other.

    Returns
    -------
    ndarray
        The drift (1/s).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not hasattr(rule, "A3_plus"):
        return x * y * pair_integral(rule.A_plus, rule.tau_plus, rule.A_minus, rule.tau_minus)
    return (x * y * pair_integral(rule.A2_plus, rule.tau_plus, rule.A2_minus, rule.tau_minus)
            + rule.A3_plus * rule.tau_plus * rule.tau_y * x * y ** 2
            - rule.A3_minus * rule.tau_minus * rule.tau_x * x ** 2 * y)
