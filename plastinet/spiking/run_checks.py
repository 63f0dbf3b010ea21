"""The checks every spiking backend makes before a run: time step, duration, memory, seed,
sampled probes. One home, so that the numpy engine, the brian2 and the NEST backends refuse the
same arguments with the same messages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from plastinet.errors import RangeError, ValidationError
from plastinet.seeds import check_seed, new_seed
from plastinet.spiking._sources import _steps
from plastinet.spiking.footprint import check_network_memory, probe_bytes, state_bytes
from plastinet.spiking.guards import NumericalGuard, numerical_guard
from plastinet.spiking.network import Network, SpikeProbe, StateProbe
from plastinet.units import to_si

__all__ = ["RunArguments", "check_dt", "check_duration", "run_seed", "check_run", "sampled_probes"]


def check_dt(owner: str, dt: Any) -> float:
    """The time step in s (a number or a unit string), refused unless positive and finite."""
    dt = to_si(dt, "s", name="dt", owner=owner)
    if not dt > 0 or not math.isfinite(dt):
        raise RangeError(owner, "dt", dt, "expected a positive time step in s")
    return dt


def check_duration(owner: str, network: Network, duration: Any) -> float:
    """The duration in s, refused unless >= 0 and finite, or if its recordings would not fit in memory."""
    duration = to_si(duration, "s", name="duration", owner=owner)
    if not duration >= 0 or not math.isfinite(duration):
        raise RangeError(owner, "duration", duration, "expected a duration >= 0 s")
    check_network_memory(probe_bytes(network, duration), owner, f"recording {duration:g} s")
    return duration


def run_seed(owner: str, seed: Any) -> int:
    """The run's seed; one is drawn when ``seed`` is None, so that the recorded seed reproduces the run."""
    seed = check_seed(owner, seed)
    return new_seed() if seed is None else seed


@dataclass(frozen=True)
class RunArguments:
    """A backend run's checked arguments: ``dt`` and ``duration`` in s, the seed, the number of
    steps and the numerical guard."""

    dt: float
    duration: float
    seed: int
    n_steps: int
    guard: NumericalGuard


def check_run(owner: str, network: Network, dt: Any, duration: Any, seed: Any, on_numerical: str,
              max_rate: Any) -> RunArguments:
    """Check a (validated) network's run arguments as the numpy engine does, state memory included.

    Raises
    ------
    RangeError
        For a non-positive or non-finite ``dt``, a negative or non-finite ``duration``.
    plastinet.errors.SizeError
        When the network's state or its recordings would not fit in memory.
    """
    dt = check_dt(owner, dt)
    guard = numerical_guard(owner, dt, on_numerical, max_rate)
    check_network_memory(state_bytes(network), owner, "the network's state")
    duration = check_duration(owner, network, duration)
    return RunArguments(dt, duration, run_seed(owner, seed), int(round(duration / dt)), guard)


def sampled_probes(network: Network, dt: float) -> tuple[list[Any], int]:
    """The probes sampled every ``sample_every`` (all but spike probes) and that period in steps.

    Raises
    ------
    ValidationError
        For a state probe on a source population.
    RangeError
        When ``sample_every`` is not a multiple of ``dt``.
    """
    sampled = [p for p in network.probes.values() if not isinstance(p, SpikeProbe)]
    for probe in sampled:
        if isinstance(probe, StateProbe) and network.populations[probe.population].source:
            raise ValidationError("StateProbe", "population", probe.population,
                                  "state can only be recorded from dynamic populations (not sources)")
    steps = _steps(sampled[0].sample_every, dt, type(sampled[0]).__name__, "sample_every") if sampled else 0
    return sampled, steps
