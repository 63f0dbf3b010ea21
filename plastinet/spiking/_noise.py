"""Per-step noise inputs of the numpy engine (:class:`~plastinet.spiking.network.NoiseCurrent`).

Each noise has its own random stream, spawned from the run's seed after every other stream
(so adding a noise leaves the other streams, and results without noise, unchanged). The
draws of a step do not depend on how the engine chunks time: they come in fixed blocks of
steps, each block from its own stream derived from the noise's, as for Poisson sources.
The engine delivers the draws of step ``n`` to the population's ``target`` in the
``synapses`` slot of step ``n``, after the spikes of that step, exactly like a spike of
weight ``x``.
"""

from __future__ import annotations

import numpy as np

from plastinet.spiking.draws import seed_streams
from plastinet.spiking.network import Network, NoiseCurrent

__all__ = ["NoiseInput", "noise_streams", "noise_draws"]

#: Values drawn per block (steps x neurons), so a block stays small for large populations.
BLOCK_VALUES = 2 ** 17


class NoiseInput:
    """The draws of one :class:`NoiseCurrent` on its population of ``n`` neurons.

    Parameters
    ----------
    spec : NoiseCurrent
    n : int
        Size of the receiving population.
    seed_seq : numpy.random.SeedSequence
        The noise's stream.
    """

    def __init__(self, spec: NoiseCurrent, n: int, seed_seq: np.random.SeedSequence) -> None:
        self.spec, self.n, self.ss = spec, n, seed_seq
        self.population, self.target = spec.population, spec.target
        self.block = max(1, min(1000, BLOCK_VALUES // n))
        self._cache: dict[int, np.ndarray] = {}

    def _draw_block(self, b: int) -> np.ndarray:
        if b not in self._cache:
            for old in [k for k in self._cache if k < b - 1]:
                del self._cache[old]
            rng = np.random.default_rng(np.random.SeedSequence(self.ss.entropy, spawn_key=(*self.ss.spawn_key, b)))
            spec, shape = self.spec, (self.block, self.n)
            if spec.distribution == "uniform":
                self._cache[b] = spec.low + (spec.high - spec.low) * rng.random(shape)
            else:
                self._cache[b] = spec.mean + spec.std * rng.standard_normal(shape)
        return self._cache[b]

    def row(self, step: int) -> np.ndarray:
        """The draws of one step, an array ``(n,)`` (a view of the block)."""
        b = step // self.block
        return self._draw_block(b)[step - b * self.block]

    def draws(self, n0: int, n1: int) -> np.ndarray:
        """The draws of steps ``[n0, n1)``, an array ``(n1 - n0, n)`` (target units)."""
        B = self.block
        parts = []
        for b in range(n0 // B, (n1 - 1) // B + 1):
            lo, hi = max(n0, b * B) - b * B, min(n1, (b + 1) * B) - b * B
            parts.append(self._draw_block(b)[lo:hi])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def noise_streams(network: Network, seed: int) -> dict[str, np.random.SeedSequence]:
    """The stream of each noise of ``network`` for a run with ``seed`` (the engine's).

    The run's :class:`numpy.random.SeedSequence` first spawns one stream per population,
    projection and reward (in that order), then one per noise (in insertion order).
    """
    return seed_streams(network, seed).noises


def noise_draws(network: Network, seed: int, start: int, stop: int) -> dict[str, np.ndarray]:
    """Every noise's draws in steps ``[start, stop)`` of a run with ``seed``, by noise name.

    Another backend replays these to reproduce the numpy engine's noise bit for bit.

    Returns
    -------
    dict of str to ndarray
        ``(stop - start, n)`` arrays in the unit of each noise's target.
    """
    out = {}
    for name, seq in noise_streams(network, seed).items():
        spec = network.noises[name]
        out[name] = NoiseInput(spec, network.populations[spec.population].n, seq).draws(start, stop)
    return out
