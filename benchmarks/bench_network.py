"""Benchmark: recurrent spiking networks, plastinet against hand-written Brian2 (and NEST).

Run on demand (not part of the test suite)::

    python benchmarks/bench_network.py            # default: a few minutes
    python benchmarks/bench_network.py --quick    # a smoke run (short durations, small networks)
    python benchmarks/bench_network.py --networks a4000 a32000 --duration 2
    python benchmarks/bench_network.py --networks izhikevich --duration 2 --repeats 3   # busy machine

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
    dopamine STDP, thalamic noise, no reward), dt = 1 ms. Two hand-written Brian2 scripts:
    daspnet.m's simplification (eligibility and weights every 10 ms, kinds ``brian2-<target>``)
    and plastinet's DopamineSTDP equations in closed form at each synapse event (kinds
    ``brian2-exact-<target>``); the brian2 backend's ratio is given against both.

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
#: biological time (s) run before the timed run (code generation, loading, imports)
WARM_UP = 0.002


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
def plastinet_network_a(n_e: int, seed: int = 0, inputs: tuple | None = None):
    """Network (a) as a plastinet :class:`~plastinet.spiking.Network` (spikes of E and I probed);
    with ``inputs`` (indices, times in s) the sources are a ``SpikeGenerator`` of those trains."""
    from plastinet.spiking import LIF, Network, PairSTDP, PoissonGroup, Projection, SpikeGenerator, SpikeProbe

    c = network_a_connectivity(n_e, seed)
    sizes = c["sizes"]
    common = dict(v_rest=-0.070, v_thresh=-0.050, v_reset=-0.060, r_m=1e8, tau_e=0.005, tau_i=0.010,
                  t_ref=0.002)
    pops = {"P": PoissonGroup("P", sizes["P"], rate=20.0) if inputs is None else
            SpikeGenerator("P", sizes["P"], indices=inputs[0], times=inputs[1]),
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


def _plastinet_bytes(sim: Any) -> tuple[int, int]:
    """(bytes of the projections' arrays, synapses) of a plastinet simulator."""
    total = n_syn = 0
    for p in sim.projs.values():
        n_syn += p.w.size
        arrays = [a for a in vars(p).values() if isinstance(a, np.ndarray)]
        if p.plasticity is not None:
            arrays += list(p.plasticity.state().values())
        total += sum(a.nbytes for a in arrays)
    return total, n_syn


def run_plastinet(network: str, duration: float, seed: int = 0) -> dict[str, Any]:
    """plastinet's numpy engine (its compiled step loop where the network allows it)."""
    from plastinet.spiking import Simulator
    from plastinet.spiking.network_native import native_status, unsupported_reason

    t = time.perf_counter()
    net, dt = PLASTINET_BUILDERS[network](seed)
    sim = Simulator(net, dt=dt, seed=seed)
    sim.run(WARM_UP)                            # loads the compiled loop, imports xarray
    build = time.perf_counter() - t
    t = time.perf_counter()
    ds = sim.run(duration)
    loop = time.perf_counter() - t
    nbytes, n_syn = _plastinet_bytes(sim)
    path = "compiled" if sim._native is not None else f"numpy ({unsupported_reason(sim) or native_status()})"
    return {"build": build, "loop": loop, "spikes": int(ds.sizes["spike"]), "bytes": nbytes, "n_syn": n_syn,
            "note": path}


def run_plastinet_brian2(network: str, duration: float, target: str, seed: int = 0) -> dict[str, Any]:
    """plastinet's brian2 backend (``simulate(..., backend="brian2")``)."""
    from plastinet.backends.brian2.spiking import simulate

    net, dt = PLASTINET_BUILDERS[network](seed)
    t = time.perf_counter()
    ds = simulate(net, duration, dt=dt, seed=seed, target=target)
    total = time.perf_counter() - t
    loop = float(ds.attrs.get("run_loop_time", float("nan")))
    if not np.isfinite(loop):               # runtime targets: no separate loop time
        loop = total
    return {"build": total - loop, "loop": loop, "spikes": int(ds.sizes["spike"]), "bytes": 0, "n_syn": 0,
            "note": f"brian2 {target}"}


# -- hand-written Brian2 scripts ----------------------------------------------------------------
def _brian2_device(b2: Any, target: str, workdir: str) -> None:
    if target == "cpp_standalone":
        b2.set_device("cpp_standalone", directory=workdir, build_on_run=True)
    else:
        b2.prefs.codegen.target = target


def _brian2_result(b2: Any, target: str, net_run: Callable[[float], None], synapses: list, t0: float,
                   spikes: Callable[[], int], duration: float) -> dict[str, Any]:
    if target != "cpp_standalone":
        net_run(WARM_UP)                         # code generation
    t = time.perf_counter()
    net_run(duration)
    total = time.perf_counter() - t
    loop = float(getattr(b2.get_device(), "_last_run_time", float("nan"))) if target == "cpp_standalone" else total
    nbytes = n_syn = 0
    for S in synapses:
        n = len(S)
        n_syn += n
        for var in S.variables.values():
            if getattr(var, "owner", None) is not None and var.owner.name == S.name and hasattr(var, "get_value"):
                try:
                    value = np.asarray(var.get_value())
                except Exception:               # constants, dynamic references
                    continue
                if value.size == n:
                    nbytes += value.nbytes
    return {"build": t - t0 + (total - loop), "loop": loop, "spikes": spikes(), "bytes": nbytes, "n_syn": n_syn,
            "note": f"hand-written, {target}"}


def brian2_network_a(n_e: int, duration: float, target: str, workdir: str, seed: int = 0) -> dict[str, Any]:
    """Network (a) written directly in Brian2 (same synapses as plastinet's)."""
    import brian2 as b2

    t0 = time.perf_counter()
    _brian2_device(b2, target, workdir)
    b2.seed(seed)
    c = network_a_connectivity(n_e, seed)
    sizes = c["sizes"]
    ms, mV, pA, Mohm = b2.ms, b2.mV, b2.pA, b2.Mohm
    clock = b2.Clock(dt=DT_A * b2.second)
    eqs = """dv/dt = (v_rest - v + r_m * (I_e + I_i)) / tau_m : volt (unless refractory)
             dI_e/dt = -I_e / tau_e : amp
             dI_i/dt = -I_i / tau_i : amp
             tau_m : second (constant)"""
    ns = dict(v_rest=-70 * mV, r_m=100 * Mohm, tau_e=5 * ms, tau_i=10 * ms, A_plus=0.01 * 30 * pA,
              A_minus=1.05 * 0.01 * 30 * pA, tau_stdp=20 * ms, w_max=60 * pA)
    groups = {}
    for name, tau in (("E", 20 * ms), ("I", 10 * ms)):
        # exact integration is singular for tau_m == tau_i (the inhibitory group): Euler there
        g = b2.NeuronGroup(sizes[name], eqs, threshold="v > -50*mV", reset="v = -60*mV", refractory=2 * ms,
                           method="exact" if name == "E" else "euler", clock=clock, namespace=ns, name=name)
        g.v = -70 * mV
        g.tau_m = tau
        groups[name] = g
    groups["P"] = b2.PoissonGroup(sizes["P"], rates=20 * b2.Hz, clock=clock, name="P")
    synapses = []
    for name, (pre, post, (i, j)) in c["conn"].items():
        var = "I_i" if pre == "I" else "I_e"
        if name == "EE":
            S = b2.Synapses(groups[pre], groups[post],
                            """w : amp
                               dApre/dt = -Apre / tau_stdp : 1 (event-driven)
                               dApost/dt = -Apost / tau_stdp : 1 (event-driven)""",
                            on_pre=f"""{var}_post += w
                                       Apre += 1
                                       w = clip(w - A_minus * Apost, 0*pA, w_max)""",
                            on_post="""Apost += 1
                                       w = clip(w + A_plus * Apre, 0*pA, w_max)""",
                            clock=clock, namespace=ns, name=name)
            S.connect(i=i, j=j)
            S.w = 30 * pA
        else:
            S = b2.Synapses(groups[pre], groups[post], on_pre=f"{var}_post += {-120 if pre == 'I' else 30}*pA",
                            clock=clock, namespace=ns, name=name)
            S.connect(i=i, j=j)
        synapses.append(S)
    mons = [b2.SpikeMonitor(groups[k], name=f"mon_{k}") for k in ("E", "I")]
    net = b2.Network(*groups.values(), *synapses, *mons)
    return _brian2_result(b2, target, lambda T: net.run(T * b2.second, namespace={}), synapses, t0,
                          lambda: int(sum(m.num_spikes for m in mons)), duration)


# -- NEST ---------------------------------------------------------------------------------------
def nest_network_a(n_e: int, duration: float, seed: int = 0) -> dict[str, Any]:
    """Network (a) in NEST (iaf_psc_exp, stdp_synapse; delay 0.1 ms, NEST's minimum)."""
    import nest

    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.set_verbosity("M_ERROR")
    nest.SetKernelStatus({"resolution": DT_A * 1e3, "local_num_threads": 1, "rng_seed": seed + 1,
                          "print_time": False})
    c = network_a_connectivity(n_e, seed)
    sizes = c["sizes"]
    common = dict(E_L=-70.0, V_th=-50.0, V_reset=-60.0, t_ref=2.0, tau_syn_ex=5.0, tau_syn_in=10.0,
                  V_m=-70.0, tau_minus=20.0)
    nodes = {"E": nest.Create("iaf_psc_exp", sizes["E"], params=dict(common, tau_m=20.0, C_m=200.0)),
             "I": nest.Create("iaf_psc_exp", sizes["I"], params=dict(common, tau_m=10.0, C_m=100.0)),
             "P": nest.Create("parrot_neuron", sizes["P"])}
    gen = nest.Create("poisson_generator", params={"rate": 20.0})
    nest.Connect(gen, nodes["P"])
    nest.CopyModel("stdp_synapse", "stdp_ee", {"tau_plus": 20.0, "lambda": 0.3 / 60.0, "alpha": 1.05,
                                               "mu_plus": 0.0, "mu_minus": 0.0, "Wmax": 60.0})
    n_syn = 0
    for name, (pre, post, (i, j)) in c["conn"].items():
        ids_pre = np.asarray(nodes[pre].tolist())[i]
        ids_post = np.asarray(nodes[post].tolist())[j]
        w = -120.0 if pre == "I" else 30.0
        syn = {"synapse_model": "stdp_ee" if name == "EE" else "static_synapse", "weight": np.full(i.size, w),
               "delay": np.full(i.size, DT_A * 1e3)}
        nest.Connect(ids_pre, ids_post, "one_to_one", syn)
        n_syn += i.size
    rec = nest.Create("spike_recorder")
    nest.Connect(nodes["E"] + nodes["I"], rec)
    nest.Prepare()
    build = time.perf_counter() - t0
    t = time.perf_counter()
    nest.Run(duration * 1e3)
    loop = time.perf_counter() - t
    nest.Cleanup()
    return {"build": build, "loop": loop, "spikes": int(rec.n_events), "bytes": 0, "n_syn": n_syn,
            "note": "NEST 1 thread, delay 0.1 ms"}


# -- (b) Vogels et al. 2011 and (c) Izhikevich 2007 ---------------------------------------------
G_L = 10e-9                 #: Vogels: leak conductance (S), the unit of plastinet's g_e, g_i
DT_IZH = 1e-3               #: Izhikevich: 1 ms steps (v in two 0.5 ms half-steps)
IZH_UNIT = 1e-3             #: Izhikevich: one unit of synaptic strength (V per step)


def vogels_connectivity(seed: int = 0, n_e: int = 8000) -> dict[str, Any]:
    """Populations and index lists of Vogels et al. 2011 (E->all, I->I, I->E; p = 0.02)."""
    n_i = n_e // 4
    rng = np.random.default_rng(seed)
    sizes = {"exc": n_e, "inh": n_i}
    conn = {name: (pre, post, bernoulli_pairs(sizes[pre], sizes[post], 0.02, rng))
            for name, (pre, post) in {"ee": ("exc", "exc"), "ei": ("exc", "inh"), "ie": ("inh", "exc"),
                                      "ii": ("inh", "inh")}.items()}
    return {"sizes": sizes, "conn": conn}


def plastinet_vogels(seed: int = 0):
    """Vogels et al. 2011 (plasticity on from the start) as a plastinet Network."""
    from plastinet.spiking import ConductanceLIF, InhibitorySTDP, Network, Projection, SpikeProbe

    c = vogels_connectivity(seed)
    nS = 1e-9 / G_L
    kw = dict(tau_m=0.02, g_l=G_L, E_l=-0.060, v_thresh=-0.050, v_reset=-0.060, E_e=0.0, E_i=-0.080,
              tau_e=0.005, tau_i=0.010, t_ref=0.005, i_ext=200e-12, method="euler")
    pops = {name: ConductanceLIF(name, n, **kw) for name, n in c["sizes"].items()}
    net = Network(*pops.values())
    weights = {"ee": 0.3 * nS, "ei": 0.3 * nS, "ii": 3.0 * nS, "ie": 1e-10 * nS}
    for name, (pre, post, ij) in c["conn"].items():
        kw = dict(rule=InhibitorySTDP(eta=1e-2 * nS, tau=0.02, rho0=3.0), w_min=0.0, w_max=100 * nS) if name == "ie" else {}
        net.add(Projection(name, pops[pre], pops[post], target="g_i" if pre == "inh" else "g_e",
                           weight=weights[name], connectivity=ij, **kw))
    net.add(SpikeProbe("spikes_exc", population="exc"))
    return net


def brian2_vogels(duration: float, target: str, workdir: str, seed: int = 0) -> dict[str, Any]:
    """Vogels et al. 2011 written directly in Brian2 (same synapses; plasticity on from the start)."""
    import brian2 as b2

    t0 = time.perf_counter()
    _brian2_device(b2, target, workdir)
    b2.seed(seed)
    c = vogels_connectivity(seed)
    ms, mV, nS, pA, pF = b2.ms, b2.mV, b2.nS, b2.pA, b2.pF
    clock = b2.Clock(dt=DT_A * b2.second)
    ns = dict(gl=10 * nS, el=-60 * mV, er=-80 * mV, vt=-50 * mV, memc=200 * pF, bgcurrent=200 * pA,
              tau_ampa=5 * ms, tau_gaba=10 * ms, tau_stdp=20 * ms, eta=1e-2, alpha=3 * b2.Hz * 20 * ms * 2,
              gmax=100)
    eqs = """dv/dt = (-gl * (v - el) - (g_ampa * v + g_gaba * (v - er)) + bgcurrent) / memc : volt (unless refractory)
             dg_ampa/dt = -g_ampa / tau_ampa : siemens
             dg_gaba/dt = -g_gaba / tau_gaba : siemens"""
    groups = {}
    for name, n in c["sizes"].items():
        g = b2.NeuronGroup(n, eqs, threshold="v > vt", reset="v = el", refractory=5 * ms, method="euler",
                           clock=clock, namespace=ns, name=name)
        g.v = -60 * mV
        groups[name] = g
    synapses = []
    for name, (pre, post, (i, j)) in c["conn"].items():
        if name == "ie":
            S = b2.Synapses(groups[pre], groups[post],
                            """w : 1
                               dApre/dt = -Apre / tau_stdp : 1 (event-driven)
                               dApost/dt = -Apost / tau_stdp : 1 (event-driven)""",
                            on_pre="""Apre += 1.
                                      w = clip(w + (Apost - alpha) * eta, 0, gmax)
                                      g_gaba += w * nS""",
                            on_post="""Apost += 1.
                                       w = clip(w + Apre * eta, 0, gmax)""",
                            clock=clock, namespace=ns, name=name)
            S.connect(i=i, j=j)
            S.w = 1e-10
        else:
            S = b2.Synapses(groups[pre], groups[post],
                            on_pre="g_gaba += 3*nS" if pre == "inh" else "g_ampa += 0.3*nS",
                            clock=clock, namespace=ns, name=name)
            S.connect(i=i, j=j)
        synapses.append(S)
    mon = b2.SpikeMonitor(groups["exc"], name="mon")
    net = b2.Network(*groups.values(), *synapses, mon)
    return _brian2_result(b2, target, lambda T: net.run(T * b2.second, namespace={}), synapses, t0,
                          lambda: int(mon.num_spikes), duration)


def izhikevich_connectivity(seed: int = 0, n_e: int = 800, n_i: int = 200, fan_out: int = 100) -> dict[str, Any]:
    """daspnet.m's wiring: each excitatory neuron onto 100 random neurons, each inhibitory
    neuron onto 100 random excitatory ones (repeats allowed, as in his code)."""
    rng = np.random.default_rng(seed)
    n_all = n_e + n_i
    pre = np.repeat(np.arange(n_e), fan_out)
    tgt = rng.integers(0, n_all, size=n_e * fan_out)
    to_e = tgt < n_e
    conn = {"ee": ("exc", "exc", (pre[to_e], tgt[to_e])), "ei": ("exc", "inh", (pre[~to_e], tgt[~to_e] - n_e)),
            "ie": ("inh", "exc", (np.repeat(np.arange(n_i), fan_out), rng.integers(0, n_e, size=n_i * fan_out)))}
    return {"sizes": {"exc": n_e, "inh": n_i}, "conn": conn}


def plastinet_izhikevich(seed: int = 0):
    """The Izhikevich 2007 network (without the reward, whose rare events cost nothing) as a
    plastinet Network: half-step Izhikevich neurons, thalamic noise, nearest-spike dopamine STDP."""
    import math

    from plastinet.spiking import DopamineSTDP, Izhikevich, Network, NoiseCurrent, Projection, SpikeProbe, SpikeSignal

    c = izhikevich_connectivity(seed)
    s = IZH_UNIT
    tau_stdp, tau_c, tau_d = -1e-3 / math.log(0.95), -1e-2 / math.log(0.99), -1e-3 / math.log(0.995)
    rule = DopamineSTDP(A_plus=0.1 * s, A_minus=0.15 * s, tau_plus=tau_stdp, tau_minus=tau_stdp, tau_c=tau_c,
                        b=-0.002 / 0.01, modulator="dopamine", convention="nearest")
    pops = {"exc": Izhikevich("exc", 800, a=20.0, b=200.0, c=-0.065, d=8.0, method="half_steps"),
            "inh": Izhikevich("inh", 200, a=100.0, b=200.0, c=-0.065, d=2.0, method="half_steps")}
    net = Network(*pops.values())
    for name in pops:
        net.add(NoiseCurrent(f"thalamus_{name}", population=name, target="I", distribution="uniform",
                             low=-6.5 * s, high=6.5 * s))
    net.add(SpikeSignal("dopamine", tau=tau_d, increment=0.0))
    for name, (pre, post, ij) in c["conn"].items():
        kw = dict(rule=rule, w_min=0.0, w_max=4 * s) if pre == "exc" else {}
        net.add(Projection(name, pops[pre], pops[post], target="I", weight=-s if pre == "inh" else s,
                           connectivity=ij, **kw))
    net.add(SpikeProbe("spikes_exc", population="exc"))
    net.add(SpikeProbe("spikes_inh", population="inh"))
    return net


def brian2_izhikevich(duration: float, target: str, workdir: str, seed: int = 0,
                      exact: bool = False) -> dict[str, Any]:
    """The Izhikevich 2007 network written directly in Brian2: daspnet.m's per-ms loop (two
    0.5 ms half-steps of v, nearest-spike traces x0.95 per ms, set to 0.1 at a spike).

    Eligibility and weights: daspnet.m's simplification by default (``w += 0.002 c`` and
    ``c *= 0.99`` every 10 ms, no dopamine variable); with ``exact`` the equations of
    plastinet's ``DopamineSTDP`` as a Brian2 user writes them: ``dc/dt = -c / tau_c``,
    ``dw/dt = c (n - b)`` with the dopamine n = 0 of this unrewarded network, integrated in
    closed form from the synapse's last event at each of its events (one ``exp``), ``w``
    clipped there.
    """
    import brian2 as b2

    t0 = time.perf_counter()
    _brian2_device(b2, target, workdir)
    b2.seed(seed)
    c = izhikevich_connectivity(seed)
    ms = b2.ms
    clock = b2.Clock(dt=DT_IZH * b2.second)
    model = """v : 1
               u : 1
               I : 1
               x : 1
               a : 1 (constant)
               d : 1 (constant)"""
    groups = {}
    for name, n, a, d in (("exc", 800, 0.02, 8.0), ("inh", 200, 0.1, 2.0)):
        g = b2.NeuronGroup(n, model, threshold="v >= 30", reset="v = -65\nu += d\nx = 0.1", clock=clock,
                           name=name)
        g.v, g.a, g.d = -65.0, a, d
        g.u = 0.2 * -65.0
        g.run_regularly("""I += 13 * (rand() - 0.5)
                           v += 0.5 * (0.04 * v**2 + 5 * v + 140 - u + I)
                           v += 0.5 * (0.04 * v**2 + 5 * v + 140 - u + I)
                           u += a * (0.2 * v - u)
                           I = 0
                           x *= 0.95""", when="groups", clock=clock)
        groups[name] = g
    # DopamineSTDP's b = -0.2 / s (daspnet's 0.002 per 10 ms) and tau_c (c x0.99 per 10 ms)
    ns = {"minus_b": 0.2 * b2.Hz, "tau_c": -10 * ms / np.log(0.99)}
    synapses = []
    for name, (pre, post, (i, j)) in c["conn"].items():
        if pre == "exc" and exact:
            # the closed form from the synapse's last event (Brian2's event-driven solver takes
            # independent equations only, and w depends on c)
            catch_up = """e = exp(-(t - tl) / tau_c)
                          w = clip(w + minus_b * tau_c * c * (1 - e), 0, 4)
                          c = c * e
                          tl = t"""
            S = b2.Synapses(groups[pre], groups[post], "w : 1\nc : 1\ntl : second",
                            on_pre=catch_up + "\nI_post += w\nc -= 1.5 * x_post",
                            on_post=catch_up + "\nc += x_pre", clock=clock, namespace=ns, name=name)
            S.connect(i=i, j=j)
            S.w = 1.0
        elif pre == "exc":
            S = b2.Synapses(groups[pre], groups[post], "w : 1\nc : 1",
                            on_pre="I_post += w\nc -= 1.5 * x_post", on_post="c += x_pre", clock=clock, name=name)
            S.connect(i=i, j=j)
            S.w = 1.0
            S.run_regularly("w = clip(w + 0.002 * c, 0, 4)\nc *= 0.99", dt=10 * ms)
        else:
            S = b2.Synapses(groups[pre], groups[post], on_pre="I_post -= 1", clock=clock, name=name)
            S.connect(i=i, j=j)
        synapses.append(S)
    mons = [b2.SpikeMonitor(g, name=f"mon_{k}") for k, g in groups.items()]
    net = b2.Network(*groups.values(), *synapses, *mons)
    result = _brian2_result(b2, target, lambda T: net.run(T * b2.second, namespace={}), synapses, t0,
                            lambda: int(sum(m.num_spikes for m in mons)), duration)
    result["note"] += ", DopamineSTDP in closed form per event" if exact else ", daspnet.m's 10 ms update"
    return result


# -- what plastinet lacks -----------------------------------------------------------------------
#: neurons of the fixed-size networks
NEURONS = {"vogels": 10000, "izhikevich": 1000}


def missing_features(network: str) -> str:
    """What plastinet lacks for ``network`` ("" when nothing): a spec class, or the numpy
    engine's implementation of it (``spiking.Simulator`` rejects the network)."""
    if network.startswith("a"):
        return ""
    try:
        from plastinet.spiking import Simulator

        net, dt = PLASTINET_BUILDERS[network](0)
        Simulator(net, dt=dt, seed=0)
    except Exception as err:                    # noqa: BLE001 - reported in the table
        return f"{type(err).__name__}: {str(err)[:120]}"
    return ""


# -- the harness --------------------------------------------------------------------------------
def _size(network: str) -> int:
    return int(network[1:])


PLASTINET_BUILDERS: dict[str, Callable[[int], tuple[Any, float]]] = {
    "vogels": lambda seed: (plastinet_vogels(seed), DT_A),
    "izhikevich": lambda seed: (plastinet_izhikevich(seed), DT_IZH)}
BRIAN2_SCRIPTS: dict[str, Callable[..., dict[str, Any]]] = {"vogels": brian2_vogels, "izhikevich": brian2_izhikevich}
#: second hand-written scripts with the same equations as plastinet's spec where the first one
#: simplifies the model (kinds ``brian2-exact-<target>``)
EXACT_SCRIPTS: dict[str, Callable[..., dict[str, Any]]] = {
    "izhikevich": lambda duration, target, workdir, seed=0: brian2_izhikevich(duration, target, workdir, seed,
                                                                              exact=True)}
NEST_SCRIPTS: dict[str, Callable[..., dict[str, Any]]] = {}


def _register_a(network: str) -> None:
    n_e = _size(network)
    PLASTINET_BUILDERS[network] = lambda seed: (plastinet_network_a(n_e, seed), DT_A)
    BRIAN2_SCRIPTS[network] = lambda duration, target, workdir, seed=0: brian2_network_a(
        n_e, duration, target, workdir, seed)
    NEST_SCRIPTS[network] = lambda duration, seed=0: nest_network_a(n_e, duration, seed)


def measure(kind: str, network: str, duration: float) -> dict[str, Any]:
    """One measurement (run in a fresh process by :func:`_in_process`)."""
    if network.startswith("a") and network not in PLASTINET_BUILDERS:
        _register_a(network)
    if kind == "plastinet":
        return run_plastinet(network, duration)
    if kind.startswith("plastinet-brian2-"):
        return run_plastinet_brian2(network, duration, kind[len("plastinet-brian2-"):])
    if kind.startswith("brian2-"):
        exact = kind.startswith("brian2-exact-")
        scripts = EXACT_SCRIPTS if exact else BRIAN2_SCRIPTS
        with tempfile.TemporaryDirectory(prefix="bench_network_") as workdir:
            return scripts[network](duration, kind[len("brian2-exact-" if exact else "brian2-"):], workdir)
    if kind == "nest":
        return NEST_SCRIPTS[network](duration)
    raise ValueError(kind)


def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _in_process(kind: str, network: str, duration: float, timeout: float) -> dict[str, Any]:
    args = [sys.executable, __file__, "--worker", json.dumps([kind, network, duration])]
    try:
        run = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    for line in reversed(run.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": tail[:200]}


def _machine() -> str:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _load() -> str:
    return "load average " + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min)"


#: (kind, hand-written baseline it is compared with); the brian2 backend's rows are also
#: compared with the same-equations script (``brian2-exact-<target>``) where there is one
KINDS = (("plastinet", "brian2-numpy"), ("plastinet-brian2-numpy", "brian2-numpy"),
         ("plastinet-brian2-cpp_standalone", "brian2-cpp_standalone"), ("brian2-numpy", None),
         ("brian2-cpp_standalone", None), ("brian2-exact-numpy", None), ("brian2-exact-cpp_standalone", None),
         ("nest", None))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", nargs="+", default=None,
                    help="a<N_E> (e.g. a4000 a32000), vogels, izhikevich (default: all)")
    ap.add_argument("--duration", type=float, default=None, help="biological seconds per run")
    ap.add_argument("--kinds", nargs="+", default=[k for k, _ in KINDS], choices=[k for k, _ in KINDS])
    ap.add_argument("--quick", action="store_true", help="a smoke run: a4000 only, 0.2 s, no cpp_standalone")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    ap.add_argument("--repeats", type=int, default=1,
                    help="measurements per kind, interleaved (kind by kind, round after round); the fastest "
                         "loop is reported (for a busy machine)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        kind, network, duration = json.loads(args.worker)
        out = measure(kind, network, duration)
        out["peak_rss_mb"] = _peak_rss_mb()
        print("RESULT " + json.dumps(out))
        return
    networks = args.networks or (["a4000"] if args.quick else ["a4000", "a32000", "vogels", "izhikevich"])
    kinds = [k for k in args.kinds if not (args.quick and "cpp_standalone" in k)]
    durations = {"a4000": 2.0, "a32000": 0.5, "vogels": 2.0, "izhikevich": 10.0}
    print(f"# bench_network.py: {_machine()}")
    print(f"# at start: {_load()}; {args.repeats} interleaved measurement(s) per kind, the fastest loop kept")
    try:
        import brian2
        print(f"# Brian2 {brian2.__version__}", end="")
    except ImportError:
        print("# Brian2 not importable", end="")
    try:
        import nest
        print(f", NEST {nest.__version__}")
    except ImportError:
        print(", NEST not importable")
        kinds = [k for k in kinds if k != "nest"]
    print("| network | simulator | build / compile (s) | loop per biological s (s) | ratio to hand-written "
          "Brian2 (same target) | bytes / synapse | peak RSS (MB) | spikes / neuron / s | note |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for network in networks:
        duration = args.duration or (0.2 if args.quick else durations.get(network, 0.5))
        if network.startswith("a"):
            _register_a(network)
        missing = missing_features(network)
        results: dict[str, dict[str, Any]] = {}
        for _ in range(max(1, args.repeats)):
            for kind in kinds:
                if kind.startswith("brian2-exact-") and network not in EXACT_SCRIPTS:
                    continue
                if missing and kind.startswith("plastinet"):
                    results[kind] = {"error": "missing in plastinet: " + missing}
                elif network in ("vogels", "izhikevich") and kind == "nest":
                    results[kind] = {"error": "no NEST script for this network"}
                else:
                    r = _in_process(kind, network, duration, args.timeout)
                    old = results.get(kind, {})
                    if "loop" not in old or ("loop" in r and r["loop"] < old["loop"]):
                        results[kind] = r
                    print(f"# {network} {kind}: loop {r.get('loop', float('nan')):.4g} s ({_load()})", flush=True)
        n_neurons = NEURONS.get(network) or int(_size(network) * 1.25)
        for kind, base in KINDS:
            if kind not in results:
                continue
            r = results[kind]
            if "error" in r:
                print(f"| {network} | {kind} | - | - | - | - | - | - | {r['error']} |")
                continue
            per_s = r["loop"] / duration
            b = results.get(base or "", {})
            ratio = f"{r['loop'] / b['loop']:.2f}" if base and "loop" in b else "-"
            exact = results.get(base.replace("brian2-", "brian2-exact-"), {}) if base and kind.startswith(
                "plastinet-brian2-") else {}
            if "loop" in exact:
                ratio = f"{r['loop'] / exact['loop']:.2f} (same equations) / {ratio} (simplified)"
            bps = f"{r['bytes'] / r['n_syn']:.1f}" if r.get("n_syn") and r.get("bytes") else "-"
            print(f"| {network} | {kind} | {r['build']:.1f} | {per_s:.3g} | {ratio} | {bps} | "
                  f"{r.get('peak_rss_mb', float('nan')):.0f} | {r['spikes'] / n_neurons / duration:.2f} | "
                  f"{r.get('note', '')} (T = {duration:g} s) |", flush=True)
    print(f"# at end: {_load()}")


if __name__ == "__main__":
    main()
