"""Dopamine in NEST: :class:`SpikeSignal` as a volume transmitter, coincidence rewards, levels.

A ``volume_transmitter`` adds ``multiplicity / tau_n`` (per ms) to the dopamine trace ``n``
of its ``stdp_dopamine_synapse`` s at every spike it receives; it ignores weights. A
plastinet :class:`~plastinet.spiking.SpikeSignal` adds ``increment`` (per source spike) or a
reward's ``amount`` (per reward). Each signal therefore gets a *unit* event size ``q``
(the smallest of its event sizes): every event is sent as a spike of multiplicity
``size / q`` (which must be a whole number), and the synapses listening to the signal work
in NEST units scaled by ``lam = 1 / (tau q)``: ``n_NEST = lam n / 1000``, ``b_NEST = lam b /
1000``, ``A_NEST = A / lam``, so ``c_NEST (n_NEST - b_NEST) = c (n - b) / 1000`` per ms, the
same weight change. With ``increment = 1 / tau`` (NEST's own convention) ``lam = 1``.

:class:`~plastinet.spiking.CoincidenceReward` is evaluated between NEST runs: the
simulation advances in chunks no longer than the shortest reward delay, the rewards earned
in a chunk are drawn from plastinet's reward streams in plastinet's order and sent to the
volume transmitter as spikes in the future. ``ModulatorProbe`` levels are computed from the
events sent (plastinet's exponential), not read from NEST (which does not expose ``n``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plastinet.backends.nest.lowering import MS, SynapseModel, parrots
from plastinet.spiking.network import CoincidenceReward, Network, SpikeSignal

__all__ = ["modulation_problem", "signal_unit", "dopamine_params", "RewardScanner", "signal_levels", "reward_relay", "schedule_spikes"]

#: Largest multiplicity of one event (a signal whose event sizes differ more is refused).
MAX_MULTIPLICITY = 10_000


def _sizes(net: Network, name: str) -> list[float]:
    mod = net.modulators[name]
    sizes = [mod.increment] if mod.sources and mod.increment != 0.0 else []
    return sizes + [r.amount for r in net.rewards.values() if r.modulator == name and r.amount != 0.0]


def signal_unit(net: Network, name: str) -> float:
    """The event size sent as one volume-transmitter spike for signal ``name`` (units of ``n``)."""
    sizes = _sizes(net, name)
    return min(sizes) if sizes else 1.0 / net.modulators[name].tau


def multiplicity(size: float, unit: float) -> int:
    """Spikes of one event of ``size`` (validated by :func:`modulation_problem`)."""
    return int(round(size / unit))


def modulation_problem(net: Network, dt: float) -> str | None:
    """Why the network's modulators or rewards cannot be lowered to NEST (None when they can)."""
    for name, mod in net.modulators.items():
        if not isinstance(mod, SpikeSignal):
            return (f"{type(mod).__name__} {name!r}: NEST has no programmed neuromodulator signal; write the "
                    "model in NESTML (https://nestml.readthedocs.io) or use backend='numpy'")
        sizes = _sizes(net, name)
        if any(s < 0 for s in sizes):
            return (f"SpikeSignal {name!r}: negative events (increment or reward amount) cannot be sent to NEST's "
                    "volume transmitter, which counts spikes")
        unit = signal_unit(net, name)
        for s in sizes:
            m = s / unit
            if round(m) > MAX_MULTIPLICITY or abs(m - round(m)) > 1e-9 * m:
                return (f"SpikeSignal {name!r}: event sizes {sizes} are not whole multiples of {unit:g} (NEST's "
                        "volume transmitter adds one fixed step per spike)")
    for name, rew in net.rewards.items():
        if round(rew.delay_min / dt) < 2:
            return (f"CoincidenceReward {name!r}: delay_min={rew.delay_min:g} s is shorter than 2 steps; the NEST "
                    "backend evaluates rewards between runs and sends them ahead")
    return None


def dopamine_params(sm: SynapseModel, signal: SpikeSignal, unit: float, vt: Any) -> dict[str, Any]:
    """The common properties of a projection's ``stdp_dopamine_synapse`` copy for ``signal``."""
    lam = 1.0 / (signal.tau * unit)
    p = dict(sm.params)
    p.update(A_plus=p["A_plus"] / lam, A_minus=p["A_minus"] / lam, b=p["b"] * lam, tau_n=signal.tau * MS,
             volume_transmitter=vt)
    return p


class RewardScanner:
    """Plastinet's :class:`CoincidenceReward` decisions, fed with spikes chunk by chunk.

    Parameters
    ----------
    rewards : dict of CoincidenceReward
    rngs : dict of numpy.random.Generator
        Plastinet's reward streams (:func:`plastinet.spiking.draws.seed_streams`).
    dt : float
        Time step (s).
    """

    def __init__(self, rewards: dict[str, CoincidenceReward], rngs: dict[str, np.random.Generator],
                 dt: float) -> None:
        self.rewards, self.rngs, self.dt = rewards, rngs, dt
        self.pre_steps: dict[str, list[np.ndarray]] = {name: [] for name in rewards}

    def chunk_steps(self) -> int:
        """The longest chunk after which every reward earned in it is still in the future."""
        return min(int(round(r.delay_min / self.dt)) for r in self.rewards.values()) - 1

    def scan(self, fired: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[int, str, float]]:
        """Rewards (due step, modulator, amount) earned by the spikes ``fired`` of one chunk (steps, indices)."""
        due = []
        for name, rew in self.rewards.items():
            steps, idx = fired[rew.pre]
            self.pre_steps[name].append(steps[idx == rew.pre_neuron])
            pre = np.concatenate(self.pre_steps[name])
            steps, idx = fired[rew.post]
            for s in np.unique(steps[idx == rew.post_neuron]):
                earlier = pre[pre < s]
                if not earlier.size:
                    continue
                lag = s - int(earlier.max())
                if 0 < lag * self.dt <= rew.window + 1e-12 * self.dt:
                    delay = self.rngs[name].uniform(rew.delay_min, rew.delay_max)
                    due.append((int(s) + max(1, int(round(delay / self.dt))), rew.modulator, rew.amount))
        return due


def signal_levels(events: list[tuple[np.ndarray, float]], tau: float, dt: float, steps: list[int]) -> np.ndarray:
    """``n`` at each step of ``steps`` (after that step's events) from ``events``: (steps, size) pairs."""
    at = np.concatenate([e[0] for e in events]) if events else np.zeros(0, dtype=np.int64)
    size = np.concatenate([np.full(e[0].size, e[1]) for e in events]) if events else np.zeros(0)
    order = np.argsort(at, kind="stable")
    at, size = at[order], size[order]
    out, val, last, i = [], 0.0, 0, 0
    for s in steps:
        while i < at.size and at[i] <= s:
            val = val * math.exp(-((at[i] - last) * dt) / tau) + size[i]
            last = int(at[i])
            i += 1
        out.append(val * math.exp(-((s - last) * dt) / tau))
    return np.asarray(out)


def reward_relay(nest: Any, vt: Any, dt: float) -> Any:
    """A spike generator whose spikes reach the volume transmitter ``vt`` (through a parrot).

    NEST connects no device to a volume transmitter: a parrot relays the generator's spikes
    (and their multiplicities), stamped ``s + 1 + k`` like a neuron's spike of step ``s``, so
    that NEST's dopamine spike falls at ``s + k + 2`` (:func:`schedule_spikes`).
    """
    gen = nest.Create("spike_generator")
    nest.Connect(parrots(nest, gen, dt), vt, syn_spec={"delay": dt * MS})
    return gen


def schedule_spikes(gen: Any, steps: np.ndarray, mult: int | np.ndarray, dt: float, k: int) -> None:
    """Make ``gen`` (:func:`reward_relay`) send volume-transmitter spikes at plastinet steps ``steps``.

    Replaces the generator's spikes; ``mult``: spikes per event (one per step of ``steps``,
    or one for all), summed over events of the same step.
    """
    steps, mult = np.asarray(steps), np.broadcast_to(np.asarray(mult, dtype=np.int64), np.shape(steps))
    uniq, inv = np.unique(steps, return_inverse=True)
    total = np.bincount(inv, weights=mult).astype(np.int64)
    gen.set({"spike_times": ((uniq + k) * dt * MS).tolist(), "spike_multiplicities": total.tolist()})
