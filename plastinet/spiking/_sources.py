"""Spike sources of the numpy engine: Poisson groups and spike generators.

Their spikes do not depend on the network, so the engine asks for all spikes of a range
of steps at once (``events(n0, n1)``). Poisson spikes are drawn in fixed blocks of
``BLOCK`` steps from the population's own random stream, independently of how the engine
chunks time, so runs are bit-reproducible for a given seed and ``dt``. Both are registered
for their population type in :data:`plastinet.spiking.registry.POPULATIONS`.
"""

from __future__ import annotations

import numpy as np

from plastinet.errors import RangeError, ValidationError
from plastinet.spiking.network import PoissonGroup, SpikeGenerator
from plastinet.spiking.registry import POPULATIONS

BLOCK = 1000  #: steps per Poisson block


def _steps(duration: float, dt: float, owner: str, name: str) -> int:
    k = duration / dt
    if abs(k - round(k)) > 1e-6 * max(1.0, k):
        raise RangeError(owner, name, duration, f"must be a multiple of dt={dt:g} s")
    return int(round(k))


@POPULATIONS.register(PoissonGroup)
class PoissonSource:
    """Bernoulli-per-step spikes with probability ``rate * dt`` (exact, event-cost)."""

    def __init__(self, pop: PoissonGroup, dt: float, seed_seq: np.random.SeedSequence) -> None:
        self.pop, self.n, self.ss = pop, pop.n, seed_seq
        sched = pop.rate_schedule() * dt
        if sched.size and sched.max() > 1.0:
            raise RangeError("PoissonGroup", "rate", float(pop.rate_schedule().max()),
                             f"{pop.name!r}: rate * dt must be <= 1 (dt={dt:g} s allows at most {1 / dt:g} Hz)")
        self.p = sched                                  # (S, n) spike probability per step
        self.seg_steps = _steps(pop.rate_interval, dt, "PoissonGroup", "rate_interval") if sched.shape[0] > 1 else 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        if b in self._cache:
            return self._cache[b]
        for old in [k for k in self._cache if k < b - 1]:
            del self._cache[old]
        # each block has its own stream (derived from the population's), so a block drawn
        # twice is identical and the spikes do not depend on how the engine chunks time
        self.rng = np.random.default_rng(np.random.SeedSequence(self.ss.entropy,
                                                                spawn_key=(*self.ss.spawn_key, b)))
        n0 = b * BLOCK
        S = self.p.shape[0]
        if S == 1:
            seg = np.zeros(1, dtype=np.int64)
            pmax = self.p[0]
            varying = False
        else:
            seg = np.minimum(np.arange(n0, n0 + BLOCK) // self.seg_steps, S - 1)
            pmax = self.p[np.unique(seg)].max(axis=0)
            varying = bool(np.unique(seg).size > 1)
        idx = np.flatnonzero(pmax > 0)
        pm = pmax[idx]
        steps_l, neur_l = [], []
        if idx.size:
            pos = self.rng.geometric(pm) - 1
            while True:
                alive = pos < BLOCK
                if not alive.any():
                    break
                idx, pm, pos = idx[alive], pm[alive], pos[alive]
                steps_l.append(pos)
                neur_l.append(idx)
                pos = pos + self.rng.geometric(pm)
        steps = np.concatenate(steps_l) if steps_l else np.zeros(0, np.int64)
        neur = np.concatenate(neur_l) if neur_l else np.zeros(0, np.int64)
        if varying and steps.size:  # thinning: accept with p(step) / pmax
            p_now = self.p[seg[steps], neur]
            keep = self.rng.random(steps.size) * pmax[neur] < p_now
            steps, neur = steps[keep], neur[keep]
        order = np.lexsort((neur, steps))
        out = (steps[order].astype(np.int64) + n0, neur[order].astype(np.int64))
        self._cache[b] = out
        return out

    def events(self, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
        """Spikes in steps ``[n0, n1)`` as ``(steps, neurons)`` sorted by step, then neuron."""
        parts_s, parts_n = [], []
        for b in range(n0 // BLOCK, (n1 - 1) // BLOCK + 1):
            s, i = self._block(b)
            lo, hi = np.searchsorted(s, [n0, n1])
            parts_s.append(s[lo:hi])
            parts_n.append(i[lo:hi])
        if len(parts_s) == 1:
            return parts_s[0], parts_n[0]
        return np.concatenate(parts_s), np.concatenate(parts_n)


@POPULATIONS.register(SpikeGenerator)
class GeneratorSource:
    """Spikes at given times, rounded to the nearest step."""

    def __init__(self, pop: SpikeGenerator, dt: float, seed_seq: np.random.SeedSequence | None = None) -> None:
        self.n = pop.n
        steps = np.rint(pop.times.reshape(-1) / dt).astype(np.int64)
        order = np.lexsort((pop.indices, steps))
        self.steps, self.neurons = steps[order], pop.indices[order].astype(np.int64)
        dup = (np.diff(self.steps) == 0) & (np.diff(self.neurons) == 0)
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise ValidationError("SpikeGenerator", "times", pop.times,
                                  f"{pop.name!r}: neuron {self.neurons[k]} has two spikes in the time step "
                                  f"starting at {self.steps[k] * dt:g} s (dt={dt:g} s)")

    def events(self, n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
        """Spikes in steps ``[n0, n1)`` as ``(steps, neurons)`` sorted by step, then neuron."""
        lo, hi = np.searchsorted(self.steps, [n0, n1])
        return self.steps[lo:hi], self.neurons[lo:hi]
