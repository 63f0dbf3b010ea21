"""Benchmark: recurrent spiking networks, plastinet against hand-written Brian2 (and NEST).

Run on demand (not part of the test suite)::

    python benchmarks/bench_network.py            # default: a few minutes
    python benchmarks/bench_network.py --quick    # a smoke run (short durations, small networks)
    python benchmarks/bench_network.py --networks a4000 a32000 --duration 2

Networks (docs/benchmarks.md):

(a) ``a<N_E>``: N_E excitatory + N_E/4 inhibitory current-based LIF neurons (tau_m 20/10 ms,
    threshold -50 mV, reset -60 mV, rest -70 mV, r_m 100 MOhm, tau_e 5 ms, tau_i 10 ms,
    t_ref 2 ms), recurrent connection probability 0.02 * 5000 / (N_E + N_I) (in-degree kept at
    that of N_E = 4,000), 1,000 Poisson sources at 20 Hz connected to every neuron with
    p = 0.1, weights 30 pA (inhibitory -120 pA), additive pair STDP on E->E (A+ = 0.01 w,
    A- = 1.05 A+, tau 20 ms, bounds [0, 2 w]), dt = 0.1 ms.
(b) ``vogels``: Vogels et al. 2011 as Brian2's ``examples/frompapers/Vogels_et_al_2011.py``
    (8,000 E + 2,000 I conductance LIF, p = 0.02, inhibitory STDP on I->E).
(c) ``izhikevich``: the full Izhikevich 2007 network (1,000 neurons, 100 synapses each,
    dopamine STDP, thalamic noise), dt = 1 ms.

Every network is built once as explicit index lists (numpy, fixed seed), so plastinet and
the hand-written Brian2 scripts simulate the same synapses. Each measurement runs in its own
Python process (clean memory, no Brian2 device state shared between runs): wall time of the
simulation loop per biological second (building and compilation reported separately), the
ratio to the hand-written Brian2 script of the same target measured in the same run, and
bytes per synapse of the synapse state (plastinet's arrays; Brian2's synaptic variables).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

PA = 1e-12
DT_A = 1e-4


# -- connectivity ---------------------------------------------------------------------------
def bernoulli_pairs(n_pre: int, n_post: int, p: float, rng: np.random.Generator,
                    no_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Index lists ``(pre, post)`` of independent connections with probability ``p``
    (sorted by pre, then post), without ``pre == post`` if ``no_self``; memory O(n_syn)."""
    total = n_pre * n_post
    flat: list[np.ndarray] = []
    pos = -1
    while True:
        expected = int((total - pos) * p * 1.05) + 64
        gaps = rng.geometric(p, size=expected)
        cand = pos + np.cumsum(gaps)
        flat.append(cand[cand < total])
        if cand[-1] >= total:
            break
        pos = int(cand[-1])
    idx = np.concatenate(flat)
    pre, post = idx // n_post, idx % n_post
    if no_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return pre.astype(np.int64), post.astype(np.int64)


def network_a_connectivity(n_e: int, seed: int = 0) -> dict[str, Any]:
    """Populations and index lists of network (a) with ``n_e`` excitatory neurons."""
    n_i, n_p = n_e // 4, 1000
    p_rec = 0.02 * 5000 / (n_e + n_i)
    rng = np.random.default_rng(seed)
    conn = {}
    sizes = {"P": n_p, "E": n_e, "I": n_i}
    for name, (pre, post, p) in {"PE": ("P", "E", 0.1), "PI": ("P", "I", 0.1),
                                 "EE": ("E", "E", p_rec), "EI": ("E", "I", p_rec),
                                 "IE": ("I", "E", p_rec), "II": ("I", "I", p_rec)}.items():
        conn[name] = (pre, post, bernoulli_pairs(sizes[pre], sizes[post], p, rng, no_self=pre == post))
    return {"sizes": sizes, "conn": conn}


# -- plastinet specs --------------------------------------------------------------------------
def plastinet_network_a(n_e: int, seed: int = 0):
    """Network (a) as a plastinet :class:`~plastinet.spiking.Network` (spikes of E and I probed)."""
    from plastinet.spiking import LIF, Network, PairSTDP, PoissonGroup, Projection, SpikeProbe

    c = network_a_connectivity(n_e, seed)
    sizes = c["sizes"]
    common = dict(v_rest=-0.070, v_thresh=-0.050, v_reset=-0.060, r_m=1e8, tau_e=0.005, tau_i=0.010,
                  t_ref=0.002)
    pops = {"P": PoissonGroup("P", sizes["P"], rate=20.0),
            "E": LIF("E", sizes["E"], tau_m=0.020, **common),
            "I": LIF("I", sizes["I"], tau_m=0.010, **common)}
    w = 30 * PA
    net = Network(*pops.values())
    for name, (pre, post, ij) in c["conn"].items():
        inhibitory = pre == "I"
        kw: dict[str, Any] = {}
        if name == "EE":
            kw = dict(rule=PairSTDP(A_plus=0.01 * w, A_minus=1.05 * 0.01 * w, tau_plus=0.02, tau_minus=0.02),
                      w_min=0.0, w_max=2 * w)
        net.add(Projection(name, pops[pre], pops[post], target="I_i" if inhibitory else "I_e",
                           weight=-120 * PA if inhibitory else w, connectivity=ij, **kw))
    net.add(SpikeProbe("spikes_E", population="E"))
    net.add(SpikeProbe("spikes_I", population="I"))
    return net
