"""Checks every spiking backend applies: time constants against ``dt`` and the numerical guard.

The numpy engine checks states while it runs; a backend that sees its states only after the
run (brian2) calls :func:`check_final_states` with what it read back. Both use the same
settings (:func:`numerical_guard`): the ``on_numerical`` policy, the runaway limit
``max_rate`` (default ``0.5 / dt``) and the window over which rates are judged (long enough
for :data:`RATE_WINDOW_SPIKES` spikes at ``max_rate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from plastinet.errors import RangeError, check_numerical_policy, report_numerical
from plastinet.units import to_si

__all__ = ["RATE_WINDOW_SPIKES", "NumericalGuard", "numerical_guard", "check_tau", "nonfinite_summary",
           "check_final_states"]

#: Rates are judged over windows in which a neuron at ``max_rate`` fires this many spikes.
RATE_WINDOW_SPIKES = 100


@dataclass(frozen=True)
class NumericalGuard:
    """Validated settings of the numerical guard of one run."""

    on_numerical: str       #: "raise" or "warn"
    max_rate: float         #: runaway limit (Hz)
    rate_window: int        #: steps over which rates are judged


def numerical_guard(owner: str, dt: float, on_numerical: str = "raise", max_rate: Any = None) -> NumericalGuard:
    """Validate ``on_numerical`` and ``max_rate`` (Hz, default ``0.5 / dt``) for time step ``dt`` (s)."""
    policy = check_numerical_policy(owner, on_numerical)
    if max_rate is None:
        max_rate = 0.5 / dt
    max_rate = to_si(max_rate, "Hz", name="max_rate", owner=owner)
    if not max_rate > 0 or not math.isfinite(max_rate):
        raise RangeError(owner, "max_rate", max_rate, "expected a finite rate > 0 Hz")
    return NumericalGuard(policy, float(max_rate), max(1, math.ceil(RATE_WINDOW_SPIKES / (max_rate * dt))))


def check_tau(owner: str, name: str, tau: float, dt: float, factor: float = 1.0) -> None:
    """Raise a RangeError when ``dt`` is too large for time constant ``tau`` (both in s)."""
    if dt * factor > tau:
        raise RangeError(owner, name, tau,
                         f"time constant must be >= {factor:g} * dt = {dt * factor:g} s (dt={dt:g} s)")


def nonfinite_summary(arr: np.ndarray) -> str | None:
    """``"k of n values, first at index i"`` for an array with NaN/inf, else None."""
    bad = ~np.isfinite(arr)
    if not bad.any():
        return None
    if arr.ndim == 0:
        return f"value {float(arr)}"
    first = [int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape)]
    index = first[0] if len(first) == 1 else tuple(first)
    return f"{int(bad.sum())} of {arr.size} values, first {arr.flat[int(np.argmax(bad))]} at index {index}"


def check_final_states(guard: NumericalGuard, owner: str, dt: float, stop: int, sampled: Sequence[Any],
                       states: list[tuple[str, str, str, np.ndarray]], samples: dict[str, list[np.ndarray]],
                       sample_times: list[int], spike_counts: dict[str, np.ndarray]) -> None:
    """The numerical guard for a backend that reports its states only after the run (brian2).

    Parameters
    ----------
    guard : NumericalGuard
        The run's settings (:func:`numerical_guard`).
    owner : str
        Named in the messages (e.g. ``"brian2 backend"``).
    dt : float
        Time step (s).
    stop : int
        Steps simulated.
    sampled : sequence of probes
        The sampled probes (state, weight and modulator probes).
    states : list of (kind, name, variable, array)
        Final states read back from the backend (populations, projections).
    samples, sample_times
        The sampled probes' values and their steps; the first non-finite sample dates the problem.
    spike_counts : dict of ndarray
        Spikes per neuron of each spiking dynamic population over the whole run.
    """
    for k, step in enumerate(sample_times):
        for probe in sampled:
            summary = nonfinite_summary(np.asarray(samples[probe.name][k]))
            if summary is not None:
                target = getattr(probe, "population", None) or getattr(probe, "projection", None) or probe.modulator
                report_numerical(guard.on_numerical,
                                 f"{owner}: probe {probe.name!r} ({target!r}) recorded non-finite values ({summary}) "
                                 f"at t = {step * dt:g} s (step {step}); reduce weights, learning rates or "
                                 "input rates, or check the parameters",
                                 step=step, where=f"{target!r}, probe {probe.name!r}", time=step * dt, stacklevel=4)
                return
    for kind, name, var, arr in states:
        summary = nonfinite_summary(np.asarray(arr, dtype=np.float64))
        if summary is not None:
            report_numerical(guard.on_numerical,
                             f"{owner}: {var} of {kind} {name!r} is non-finite at the end of the run ({summary}, "
                             f"t = {stop * dt:g} s); reduce weights, learning rates or input rates, or check "
                             "the parameters", step=stop, where=f"{kind} {name!r}, {var}", time=stop * dt, stacklevel=4)
            return
    if stop >= guard.rate_window:
        for name, counts in spike_counts.items():
            rates = np.asarray(counts) / (stop * dt)
            if rates.size and rates.max() > guard.max_rate:
                k = int(np.argmax(rates))
                report_numerical(guard.on_numerical,
                                 f"{owner}: runaway firing in population {name!r}: neuron {k} fired at "
                                 f"{rates[k]:.4g} Hz (population mean {rates.mean():.4g} Hz) over the run "
                                 f"(t = 0 to {stop * dt:g} s), above max_rate = {guard.max_rate:g} Hz; check "
                                 "weights, reset and refractory period, or raise max_rate",
                                 step=stop, where=f"population {name!r}, rate", time=stop * dt, stacklevel=4)
                return
