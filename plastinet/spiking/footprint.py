"""Lower bounds of the memory a spiking run needs, from the network's sizes alone.

Used by the numpy engine to refuse, before it allocates anything, a network or a run that
cannot fit in memory (:func:`plastinet.sizes.check_memory`): every synapse is stored with its
pre and post index, its weight and its place in the post-sorted order (32 bytes), every
neuron with at least one 8-byte state, a connection probability draws one 8-byte number per
pre/post pair, a projection with a delay stores per synapse its delay in steps, its
presynaptic row and its place in the row-sorted order (24 bytes more), and every sampled probe
stores one 8-byte value per recorded entry and sample.
"""

from __future__ import annotations

import math

from plastinet.sizes import check_memory
from plastinet.spiking.network import ModulatorProbe, Network, PoissonGroup, StateProbe, WeightProbe

__all__ = ["synapse_count", "state_bytes", "probe_bytes", "check_network_memory"]

BYTES_PER_SYNAPSE = 32      #: pre and post index (int64), weight (float64), post-sorted position (int64)
BYTES_PER_NEURON = 8        #: at least one float64 state per neuron
BYTES_PER_DELAYED_SYNAPSE = 24   #: delay steps, presynaptic row, row-sorted position (int64 each)


def synapse_count(network: Network, projection: str) -> float:
    """Number of synapses of ``projection`` (expected number for a connection probability)."""
    proj = network.projections[projection]
    conn = proj.connectivity
    if isinstance(conn, tuple):
        return float(conn[0].size)
    pairs = float(proj.pre.n) * float(proj.post.n)
    return pairs if conn == "all" else pairs * float(conn)


def state_bytes(network: Network) -> dict[str, float]:
    """Bytes the engine allocates at least for each population and projection (by label)."""
    out: dict[str, float] = {}
    for name, pop in network.populations.items():
        rows = pop.rate.reshape(-1, pop.n).shape[0] if isinstance(pop, PoissonGroup) and pop.rate.ndim else 1
        out[f"population {name!r} (n={pop.n})"] = float(BYTES_PER_NEURON) * pop.n * max(1, rows)
    for name, proj in network.projections.items():
        n_syn = synapse_count(network, name)
        mask = 8.0 * proj.pre.n * proj.post.n if isinstance(proj.connectivity, float) else 0.0
        delayed = not (isinstance(proj.delay, float) and proj.delay == 0.0)
        per_syn = BYTES_PER_SYNAPSE + (BYTES_PER_DELAYED_SYNAPSE if delayed else 0)
        out[f"projection {name!r} ({n_syn:.4g} synapses)"] = per_syn * n_syn + mask
    return out


def probe_bytes(network: Network, duration: float) -> dict[str, float]:
    """Bytes the sampled probes record at least over ``duration`` seconds (by label)."""
    out: dict[str, float] = {}
    for name, probe in network.probes.items():
        if isinstance(probe, WeightProbe):
            width = synapse_count(network, probe.projection)
        elif isinstance(probe, StateProbe):
            idx = probe.indices
            width = float(network.populations[probe.population].n if idx is None else len(idx))
        elif isinstance(probe, ModulatorProbe):
            width = 1.0
        else:                                   # spikes: as many as the network fires
            continue
        samples = math.floor(duration / probe.sample_every) + 1
        out[f"probe {name!r} ({samples:.4g} samples every {probe.sample_every:g} s)"] = 8.0 * width * samples
    return out


def check_network_memory(parts: dict[str, float], obj: str, what: str) -> None:
    """Refuse (:class:`~plastinet.errors.SizeError`) when the sum of ``parts`` exceeds the available memory.

    The message names the largest part (a population, projection or probe) and the total.
    """
    if parts:
        largest = max(parts, key=parts.__getitem__)
        check_memory(sum(parts.values()), obj, largest, f"{parts[largest]:.4g} bytes", what=what)
