"""The random draws of a spiking run, shared by every backend that must match the numpy engine.

A run's seed spawns one :class:`numpy.random.SeedSequence` per population, projection and
reward, in this order and in insertion order within each kind (:func:`seed_streams`).
Connectivity and initial weights of a projection come from its stream
(:func:`connectivity`); Poisson spikes from the population's sequence, in fixed blocks that do
not depend on how a backend steps through time (:func:`source_spikes`). A backend that draws
with these functions simulates the very same network and input spike trains as the numpy
engine for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from plastinet.spiking._sources import GeneratorSource, PoissonSource
from plastinet.spiking.network import Network, PoissonGroup, Projection

__all__ = ["Streams", "Connectivity", "DELAY_ROUNDING", "seed_streams", "connectivity", "delay_steps", "sources",
           "source_spikes"]


@dataclass(frozen=True)
class Streams:
    """The independent random streams of a run (see :func:`seed_streams`)."""

    #: population name -> its seed sequence (Poisson spikes are drawn from it)
    populations: dict[str, np.random.SeedSequence]
    #: projection name -> its generator (connectivity, then initial weights)
    projections: dict[str, np.random.Generator]
    #: reward name -> its generator (reward delays, in the order rewards are scheduled)
    rewards: dict[str, np.random.Generator]
    #: noise name -> its seed sequence (spawned after all others, so noises leave them unchanged)
    noises: dict[str, np.random.SeedSequence]


@dataclass(frozen=True)
class Connectivity:
    """Synapses of a projection sorted by presynaptic index (stable within a pre neuron)."""

    pre: np.ndarray         #: presynaptic index of each synapse (int64)
    post: np.ndarray        #: postsynaptic index of each synapse (int64)
    w: np.ndarray           #: initial weight of each synapse (float64, the projection's target units)
    delay: np.ndarray       #: delay of each synapse (float64, s; round with :func:`delay_steps`)


def seed_streams(network: Network, seed: int) -> Streams:
    """Spawn the streams of a run with ``seed``: populations, projections, rewards, then noises.

    Parameters
    ----------
    network : Network
        The specification (its insertion order fixes which stream each object gets).
    seed : int
        The run's seed (a ``None`` seed must be replaced by a drawn one before, so that the
        recorded seed reproduces the run).
    """
    root = np.random.SeedSequence(seed)
    seqs = iter(root.spawn(len(network.populations) + len(network.projections) + len(network.rewards)))
    pops = {name: next(seqs) for name in network.populations}
    projs = {name: np.random.default_rng(next(seqs)) for name in network.projections}
    rewards = {name: np.random.default_rng(next(seqs)) for name in network.rewards}
    return Streams(pops, projs, rewards, dict(zip(network.noises, root.spawn(len(network.noises)))))


def connectivity(proj: Projection, rng: np.random.Generator) -> Connectivity:
    """Draw the synapses and initial weights of ``proj`` from its stream ``rng``.

    All-to-all projections list every (pre, post) pair pre-major; a connection probability
    draws one uniform number per pair (pre-major) and keeps those below it; explicit index
    lists are sorted by pre index (stably). Initial weights ``("uniform", low, high)`` are
    then drawn per synapse in that order; a dense ``(n_post, n_pre)`` matrix is read at each
    synapse; a per-synapse array follows the sorting of explicit index lists. Delays are
    given or drawn the same way, after the weights.
    """
    n_pre, n_post = proj.pre.n, proj.post.n
    conn, w0 = proj.connectivity, proj.weight
    perm = None
    if conn == "all":
        pre = np.repeat(np.arange(n_pre), n_post)
        post = np.tile(np.arange(n_post), n_pre)
    elif isinstance(conn, float):
        pre, post = np.nonzero(rng.random((n_pre, n_post)) < conn)
    else:
        perm = np.argsort(conn[0], kind="stable")
        pre, post = conn[0][perm], conn[1][perm]
    pre, post = pre.astype(np.int64), post.astype(np.int64)
    w = _per_synapse(w0, pre, post, perm, rng)
    return Connectivity(pre, post, w, _per_synapse(proj.delay, pre, post, perm, rng))


def _per_synapse(value: Any, pre: np.ndarray, post: np.ndarray, perm: np.ndarray | None,
                 rng: np.random.Generator) -> np.ndarray:
    """A scalar, ``("uniform", low, high)``, dense ``(n_post, n_pre)`` or per-synapse value, per synapse."""
    if isinstance(value, tuple):
        return rng.uniform(value[1], value[2], pre.size)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(pre.size, float(arr))
    if arr.ndim == 2:
        return arr[post, pre]
    return arr[perm] if perm is not None else arr.copy()


#: How delays become steps (recorded in results of networks with delays as the ``delay_rounding`` attr).
DELAY_ROUNDING = "nearest step, halves up: d_steps = floor(delay / dt + 0.5), at least 0"


def delay_steps(delay: np.ndarray, dt: float) -> np.ndarray:
    """Delays (s) in whole steps: ``round(delay / dt)`` with halves rounded up (int64, >= 0)."""
    return np.maximum(np.floor(np.asarray(delay, dtype=np.float64) / dt + 0.5), 0).astype(np.int64)


def sources(network: Network, dt: float, streams: Streams) -> dict[str, PoissonSource | GeneratorSource]:
    """The spike sources of ``network`` (Poisson groups and generators) for time step ``dt`` (s)."""
    out: dict[str, PoissonSource | GeneratorSource] = {}
    for name, pop in network.populations.items():
        if isinstance(pop, PoissonGroup):
            out[name] = PoissonSource(pop, dt, streams.populations[name])
        elif pop.source:
            out[name] = GeneratorSource(pop, dt)
    return out


def source_spikes(network: Network, dt: float, seed: int, n_steps: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All spikes of the sources of ``network`` in steps ``[0, n_steps)``, as the numpy engine draws them.

    Parameters
    ----------
    network : Network
        The specification.
    dt : float
        Time step (s).
    seed : int
        The run's seed.
    n_steps : int
        Steps to draw.

    Returns
    -------
    dict
        Source population name -> ``(steps, neurons)`` (int64, sorted by step, then neuron).
    """
    return {name: src.events(0, max(n_steps, 1)) for name, src in
            sources(network, dt, seed_streams(network, seed)).items()}
