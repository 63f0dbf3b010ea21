"""Song 2000 through plastinet's brian2 backend versus a plain Brian2 script (run on demand).

    .venv/bin/python benchmarks/bench_backends.py              # N = 1,000 and 10,000, 10 s, all targets
    .venv/bin/python benchmarks/bench_backends.py --quick      # N = 1,000, 2 s, one repeat
    .venv/bin/python benchmarks/bench_backends.py --targets numpy cython --sizes 1000 --repeats 3
    .venv/bin/python benchmarks/bench_backends.py --targets nest --sizes 1000 --network-a 4000
    .venv/bin/python benchmarks/bench_backends.py --targets nest --structure --sizes 1000 --network-a 1000

The network is Song, Miller & Abbott 2000 as in Brian2's ``examples/synapses/STDP.py`` and
:func:`plastinet.experiments.protocols.song2000`: ``N`` Poisson inputs at 15 Hz onto one
conductance LIF (Euler), additive all-to-all pair STDP (tau = 20 ms, A+ = 0.01 g_max,
A- = 1.05 A+), 10 s of biological time, dt = 0.1 ms. ``g_max = 0.01 * 1000 / N`` (the
original 0.01 for N = 1,000; the same total input conductance for larger N, as in
``bench_spiking.py``). Both sides start from the same initial weights (uniform in
``[0, g_max]``, drawn once with numpy from the seed) and seed Brian2 with the same seed, so
they draw the same Poisson spikes and do the same work (the post spike counts printed
must agree). For every size and target (numpy,
cython, cpp_standalone) it runs, each in a fresh process:

``plain``
    a hand-written Brian2 script of the network (``PoissonGroup``, ``NeuronGroup`` with
    ``method='euler'``, ``Synapses`` with event-driven traces, one ``SpikeMonitor``, all on
    one clock as in Brian2's example) in an explicit ``Network``;
``plastinet``
    the same network as a plastinet spec, run by the brian2 backend with Brian2's own
    ``PoissonGroup`` (``poisson="brian2"``);
``plain-gen``, ``plastinet-gen``
    the same pair with the inputs as given spike trains (drawn once with numpy, a
    Bernoulli process with ``p = rate dt``): a ``SpikeGeneratorGroup`` in the plain script,
    a ``SpikeGenerator`` population in the spec. This is what the backend's default for
    Poisson populations (``poisson="replay"``: the numpy engine's spikes replayed) lowers
    to, so it measures the default path like for like.

The kinds are interleaved (plain, plastinet, plain-gen, plastinet-gen, plain, ...) ``--repeats`` times and
the fastest loop of each kind is kept, which is the least disturbed by other load on a
shared machine. ``loop`` is the wall time of the time-step loop alone (Brian2's
``_last_run_time``; for cpp_standalone the loop inside the compiled binary); ``cpu`` is the
process CPU time of that loop (runtime targets; the same instrumentation of Brian2's
``Network.before_run``/``after_run`` for every kind), which other processes on the machine
disturb much less than the wall time; ``setup`` is the rest of the call
(spec lowering, code generation, compilation, for cpp_standalone the build and the reading
back of results). For cython the first repeat of each kind starts from an empty Brian2
cache (``setup cold``: full compile), later repeats reuse it (``setup warm``); a
cpp_standalone run always builds from scratch. The two ``overhead`` columns are
``loop / plain loop - 1`` and ``cpu / plain cpu - 1`` (acceptance target of the backend:
<= +10 %). The numpy engine's time for the same
network is printed for reference.

``--targets nest`` (NEST installed) compares plastinet's NEST backend with a hand-written NEST
script of the same network (``spike_generator`` + ``parrot_neuron`` relays of the same input
trains, ``iaf_cond_exp``, ``stdp_synapse``, one ``spike_recorder``), on 1 and 2 threads:
``nest-plain``/``nest`` (1 thread) and ``nest-plain-2t``/``nest-2t``. ``loop`` is the wall time of
``nest.Simulate``; ``setup`` the rest (building the network, reading results back). NEST
integrates the conductance LIF adaptively, so its spike counts differ slightly from Brian2's.
The two NEST kinds do the same work; the backend times its relays to plastinet's step order
(``docs/backends.md``), so their final weights differ slightly from the plain script's.

With ``--targets nest`` the recurrent network (a) of ``bench_network.py`` follows (``--network-a
N_E``, ``--duration-a``): N_E excitatory and N_E/4 inhibitory ``iaf_psc_exp`` neurons, E->E
``stdp_synapse``, its 1,000 sources as ``spike_generator`` trains (Bernoulli at 20 Hz, drawn
once) straight onto the neurons, delays 0.1 ms; the hand-written NEST script of it against the
same network as a plastinet spec through the NEST backend, on 1 and 2 threads (same spike
counts: the same work). Its table adds ``wall`` (the whole call) and its overhead; ``setup`` is
wall minus loop (building, reading spikes and weights back; the backend also completes NEST's
pending potentiation of the final weights, which the plain script leaves out). For the NEST
kinds ``cpu`` is the process CPU time of ``nest.Simulate`` (all threads). Each network ends
with a ``verdict`` line: the backend's loop over the script's on 1 and 2 threads against the
1.1x target, the 1 -> 2 thread speed-ups, and whether the load average (before each run) was
below the number of cores (else the numbers are not conclusive).

``--targets nest --structure`` times nothing: it runs the script and the backend once each and
prints what NEST holds after the run (kernel settings, nodes by model, connections by synapse
model, recording devices, spike generators and their spikes, the ``nest.Simulate`` calls), which
shows whether both ask NEST for the same work regardless of the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

DT = 1e-4
RATE = 15.0
RATE_A = 20.0               #: network (a)'s sources (Hz)
KINDS = ("plain", "plastinet", "plain-gen", "plastinet-gen")
NEST_KINDS = ("nest-plain", "nest", "nest-plain-2t", "nest-2t")
#: the plain script each plastinet kind is compared with
BASE = {"plastinet": "plain", "plastinet-gen": "plain-gen", "nest": "nest-plain", "nest-2t": "nest-plain-2t"}


def g_max(n: int) -> float:
    """Maximum conductance (units of the leak) for ``n`` inputs: 0.01 at N = 1,000."""
    return 0.01 * 1000 / n


def initial_weights(n: int, seed: int):
    """The initial weights of both sides: uniform in ``[0, g_max]``."""
    import numpy as np

    return np.random.default_rng(seed).uniform(0.0, g_max(n), n)


def input_spikes(n: int, duration: float, seed: int, rate: float = RATE):
    """Bernoulli spike trains (p = rate dt per step) as (indices, times in s), drawn with numpy.

    Exact per-step Bernoulli process via geometric inter-spike intervals (at most one
    spike per neuron and step), the same statistics as ``PoissonGroup``.
    """
    import numpy as np

    n_steps = int(round(duration / DT))
    p = rate * DT
    rng = np.random.default_rng([seed, 1])
    m = int(n_steps * p + 8 * (n_steps * p) ** 0.5 + 20)
    steps = np.cumsum(rng.geometric(p, size=(n, m)), axis=1) - 1
    keep = steps < n_steps
    assert not keep[:, -1].any(), "too few intervals drawn"
    idx = np.broadcast_to(np.arange(n)[:, None], steps.shape)[keep]
    st = steps[keep]
    order = np.lexsort((idx, st))
    return idx[order], st[order] * DT


def summary(w, n_spikes: int, duration: float, gm: float) -> dict:
    """Weight-distribution fractions and the post rate (what Song 2000 reports)."""
    import numpy as np

    w = np.asarray(w) / gm
    return {"spikes": int(n_spikes), "post_rate": n_spikes / duration,
            "frac_low": float(np.mean(w < 0.1)), "frac_high": float(np.mean(w > 0.9))}


def plain(target: str, n: int, duration: float, seed: int, inputs: str = "poisson") -> dict:
    """The hand-written Brian2 script; returns wall, loop and setup times (s).

    ``inputs="poisson"``: a ``PoissonGroup``; ``"generator"``: a ``SpikeGeneratorGroup``
    fed with :func:`input_spikes` (spike trains drawn before the timing starts).
    """
    spikes = input_spikes(n, duration, seed) if inputs == "generator" else None
    import brian2 as b2
    from brian2 import Hz, ms, mV, second

    t0 = time.perf_counter()
    build_dir = None
    if target == "cpp_standalone":
        build_dir = tempfile.mkdtemp(prefix="bench-plain-")
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=True)
    else:
        b2.prefs.codegen.target = target
    b2.seed(seed)
    # one clock for all objects, like Brian2's example (which runs everything on the default
    # clock); explicit here so the script leaves no global state behind
    clock = b2.Clock(DT * second)
    gm = g_max(n)
    dA = 0.01 * gm
    ns = {"taum": 10 * ms, "El": -74 * mV, "vt": -54 * mV, "vr": -60 * mV, "Ee": 0 * mV, "taue": 5 * ms,
          "taupre": 20 * ms, "taupost": 20 * ms, "gmax": gm, "dApre": dA, "dApost": -1.05 * dA}
    eqs = """dv/dt = (ge * (Ee - v) + El - v) / taum : volt
             dge/dt = -ge / taue : 1"""
    if spikes is None:
        inp = b2.PoissonGroup(n, rates=RATE * Hz, clock=clock)
    else:
        inp = b2.SpikeGeneratorGroup(n, spikes[0], spikes[1] * second, clock=clock)
    post = b2.NeuronGroup(1, eqs, threshold="v > vt", reset="v = vr", method="euler", clock=clock,
                          namespace=ns)
    post.v = -74 * mV
    syn = b2.Synapses(inp, post, """w : 1
                      dApre/dt = -Apre / taupre : 1 (event-driven)
                      dApost/dt = -Apost / taupost : 1 (event-driven)""",
                      on_pre="""ge += w
                      Apre += dApre
                      w = clip(w + Apost, 0, gmax)""",
                      on_post="""Apost += dApost
                      w = clip(w + Apre, 0, gmax)""", clock=clock, namespace=ns)
    syn.connect()
    syn.w = initial_weights(n, seed)
    mon = b2.SpikeMonitor(post)
    net = b2.Network(inp, post, syn, mon)
    net.run(duration * second, namespace={})
    loop = float(b2.get_device()._last_run_time)
    out = {"wall": time.perf_counter() - t0, "loop": loop,
           **summary(syn.w[:], mon.num_spikes, duration, gm)}
    out["setup"] = out["wall"] - loop
    if build_dir is not None:
        shutil.rmtree(build_dir, ignore_errors=True)
    return out


def song_spec(n: int, seed: int, spikes=None):
    """The Song 2000 network as a plastinet spec (as :func:`~plastinet.experiments.protocols.song2000`).

    With ``spikes`` (indices, times) the inputs are a ``SpikeGenerator`` instead of a
    ``PoissonGroup``.
    """
    from plastinet.spiking import (
        ConductanceLIF,
        Network,
        PairSTDP,
        PoissonGroup,
        Projection,
        SpikeGenerator,
        SpikeProbe,
    )

    gm = g_max(n)
    dA = 0.01 * gm
    net = Network()
    if spikes is None:
        inp = net.add(PoissonGroup(name="inputs", n=n, rate=RATE))
    else:
        inp = net.add(SpikeGenerator(name="inputs", n=n, indices=spikes[0], times=spikes[1]))
    post = net.add(ConductanceLIF(name="post", n=1, tau_m=0.01, E_l=-0.074, v_thresh=-0.054,
                                  v_reset=-0.060, E_e=0.0, tau_e=0.005, t_ref=0.0, method="euler"))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=initial_weights(n, seed),
                       w_min=0.0, w_max=gm,
                       rule=PairSTDP(A_plus=dA, A_minus=1.05 * dA, tau_plus=0.02, tau_minus=0.02)))
    net.add(SpikeProbe(name="post_spikes", population="post"))
    return net


def backend(target: str, n: int, duration: float, seed: int, inputs: str = "poisson") -> dict:
    """The same network through plastinet's brian2 backend (spec built outside the timing).

    ``inputs="poisson"``: Brian2's ``PoissonGroup`` (``poisson="brian2"``); ``"generator"``:
    a ``SpikeGenerator`` population with the spike trains of :func:`input_spikes`.
    """
    from plastinet.backends import get_backend

    net = song_spec(n, seed, input_spikes(n, duration, seed) if inputs == "generator" else None)
    t0 = time.perf_counter()
    ds = get_backend("brian2", target=target, poisson="brian2").simulate(net, duration, dt=DT, seed=seed)
    wall = time.perf_counter() - t0
    loop = float(ds.attrs["run_loop_time"])
    assert ds.attrs["brian2_target"] == target
    return {"wall": wall, "loop": loop, "setup": wall - loop,
            **summary(ds["w_syn"].values, ds.sizes["spike"], duration, g_max(n))}


def engine(n: int, duration: float, seed: int) -> dict:
    """The numpy engine on the same spec (reference)."""
    from plastinet.spiking import run

    net = song_spec(n, seed)
    t0 = time.perf_counter()
    ds = run(net, duration, dt=DT, seed=seed)
    wall = time.perf_counter() - t0
    return {"wall": wall, "loop": wall, "setup": 0.0,
            **summary(ds["w_syn"].values, ds.sizes["spike"], duration, g_max(n))}


def nest_plain(n: int, duration: float, seed: int, threads: int) -> dict:
    """The hand-written NEST script of the network with the input trains of :func:`input_spikes`."""
    import os

    import numpy as np

    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    t0 = time.perf_counter()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT * 1e3, "local_num_threads": threads, "rng_seed": seed + 1})
    idx, times = input_spikes(n, duration, seed)
    gens = nest.Create("spike_generator", n)
    order = np.argsort(idx, kind="stable")
    bounds = np.searchsorted(idx[order], np.arange(n + 1))
    t_ms = (times[order] + DT) * 1e3                       # NEST needs spike times > 0
    gens.set([{"spike_times": t_ms[bounds[i]:bounds[i + 1]].tolist()} for i in range(n)])
    relays = nest.Create("parrot_neuron", n)
    nest.Connect(gens, relays, "one_to_one", syn_spec={"delay": DT * 1e3})
    g_l = 10.0                                              # nS; conductances of the spec are in units of it
    post = nest.Create("iaf_cond_exp", params={"C_m": g_l * 10.0, "g_L": g_l, "E_L": -74.0, "V_th": -54.0,
                                               "V_reset": -60.0, "E_ex": 0.0, "tau_syn_ex": 5.0, "t_ref": 0.0,
                                               "V_m": -74.0, "tau_minus": 20.0})
    gm = g_max(n)
    nest.Connect(relays, post, "all_to_all",
                 syn_spec={"synapse_model": "stdp_synapse", "weight": initial_weights(n, seed)[None, :] * g_l,
                           "delay": DT * 1e3, "Wmax": gm * g_l, "lambda": 0.01, "alpha": 1.05, "mu_plus": 0.0,
                           "mu_minus": 0.0, "tau_plus": 20.0})
    rec = nest.Create("spike_recorder")
    nest.Connect(post, rec)
    t1 = time.perf_counter()
    nest.Simulate(duration * 1e3)
    t2 = time.perf_counter()
    w = np.asarray(nest.GetConnections(relays, post).get("weight")) / g_l
    n_spikes = rec.get("n_events")
    t3 = time.perf_counter()
    return {"wall": t3 - t0, "loop": t2 - t1, "setup": (t1 - t0) + (t3 - t2), **summary(w, n_spikes, duration, gm)}


def nest_backend(n: int, duration: float, seed: int, threads: int) -> dict:
    """The same network (generator inputs) through plastinet's NEST backend."""
    from plastinet.backends import get_backend
    from plastinet.backends.nest import spiking  # noqa: F401  (imports outside the timing, as in nest_plain)

    net = song_spec(n, seed, input_spikes(n, duration, seed))
    backend = get_backend("nest", threads=threads)
    t0 = time.perf_counter()
    ds = backend.simulate(net, duration, dt=DT, seed=seed)
    wall = time.perf_counter() - t0
    loop = float(ds.attrs["run_loop_time"])
    return {"wall": wall, "loop": loop, "setup": wall - loop,
            **summary(ds["w_syn"].values, ds.sizes["spike"], duration, g_max(n))}


def nest_plain_network_a(n_e: int, duration: float, seed: int, threads: int) -> dict:
    """The hand-written NEST script of network (a) of ``bench_network.py`` (its index lists and
    parameters; delays 0.1 ms, NEST's minimum), its sources as ``spike_generator`` trains of
    :func:`input_spikes` at 20 Hz straight onto the neurons, as plastinet's lowering does."""
    import os

    import numpy as np
    from bench_network import network_a_connectivity

    os.environ.setdefault("PYNEST_QUIET", "1")
    import nest

    t0 = time.perf_counter()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT * 1e3, "local_num_threads": threads, "rng_seed": seed + 1})
    c = network_a_connectivity(n_e, seed)
    sizes = c["sizes"]
    idx, times = input_spikes(sizes["P"], duration, seed, RATE_A)
    gens = nest.Create("spike_generator", sizes["P"])
    order = np.argsort(idx, kind="stable")
    bounds = np.searchsorted(idx[order], np.arange(sizes["P"] + 1))
    t_ms = (times[order] + DT) * 1e3                       # NEST needs spike times > 0
    gens.set([{"spike_times": t_ms[bounds[i]:bounds[i + 1]].tolist()} for i in range(sizes["P"])])
    common = dict(E_L=-70.0, V_th=-50.0, V_reset=-60.0, t_ref=2.0, tau_syn_ex=5.0, tau_syn_in=10.0,
                  V_m=-70.0, I_e=0.0, tau_minus=20.0)
    nodes = {"E": nest.Create("iaf_psc_exp", sizes["E"], params=dict(common, tau_m=20.0, C_m=200.0)),
             "I": nest.Create("iaf_psc_exp", sizes["I"], params=dict(common, tau_m=10.0, C_m=100.0)),
             "P": gens}
    for name, (pre, post, (i, j)) in c["conn"].items():
        syn = {"synapse_model": "static_synapse", "weight": np.full(i.size, -120.0 if pre == "I" else 30.0),
               "delay": np.full(i.size, DT * 1e3)}
        if name == "EE":       # A+ = 0.01 w = 0.3 pA, A- = 1.05 A+, bounds [0, 60 pA]
            syn.update({"synapse_model": "stdp_synapse", "tau_plus": 20.0, "lambda": 0.3 / 60.0, "alpha": 1.05,
                        "mu_plus": 0.0, "mu_minus": 0.0, "Wmax": 60.0})
        nest.Connect(np.asarray(nodes[pre].tolist())[i], np.asarray(nodes[post].tolist())[j], "one_to_one", syn)
    rec = nest.Create("spike_recorder")
    nest.Connect(nodes["E"] + nodes["I"], rec)
    t1 = time.perf_counter()
    nest.Simulate(duration * 1e3)
    t2 = time.perf_counter()
    w = np.asarray(nest.GetConnections(nodes["E"], nodes["E"]).get("weight"))
    n_spikes = rec.get("n_events")
    t3 = time.perf_counter()
    return {"wall": t3 - t0, "loop": t2 - t1, "setup": (t1 - t0) + (t3 - t2), **summary_a(w, n_spikes)}


def nest_backend_network_a(n_e: int, duration: float, seed: int, threads: int) -> dict:
    """Network (a), the same input trains, through plastinet's NEST backend."""
    from bench_network import network_a_connectivity, plastinet_network_a

    from plastinet.backends import get_backend
    from plastinet.backends.nest import spiking  # noqa: F401  (imports outside the timing, as in the plain script)

    n_p = network_a_connectivity(n_e, seed)["sizes"]["P"]
    net = plastinet_network_a(n_e, seed, inputs=input_spikes(n_p, duration, seed, RATE_A))
    backend = get_backend("nest", threads=threads)
    t0 = time.perf_counter()
    ds = backend.simulate(net, duration, dt=DT, seed=seed)
    wall = time.perf_counter() - t0
    loop = float(ds.attrs["run_loop_time"])
    return {"wall": wall, "loop": loop, "setup": wall - loop, **summary_a(ds["w_EE"].values * 1e12, ds.sizes["spike"])}


def summary_a(w_pa, n_spikes: int) -> dict:
    """Network (a): spike count and the E->E weights' mean (pA) and fraction at the bounds 0 and 60 pA."""
    import numpy as np

    w = np.asarray(w_pa)
    return {"spikes": int(n_spikes), "w_mean": float(w.mean()), "frac_low": float(np.mean(w < 6.0)),
            "frac_high": float(np.mean(w > 54.0))}


def _time_loop_cpu(brian2) -> dict:
    """Record the process CPU time of runtime Brian2's time-step loop (between its
    ``before_run`` and ``after_run``) into the returned dict, for plain and plastinet alike."""
    stamps: dict = {}
    before, after = brian2.Network.before_run, brian2.Network.after_run

    def timed_before(self, *args, **kwargs):
        before(self, *args, **kwargs)
        stamps["start"] = time.process_time()

    def timed_after(self, *args, **kwargs):
        stamps["cpu"] = time.process_time() - stamps.pop("start")
        after(self, *args, **kwargs)

    brian2.Network.before_run, brian2.Network.after_run = timed_before, timed_after
    return stamps


def _record_simulate_calls(nest) -> list:
    """Make ``nest.Simulate`` record each call's biological time (ms), wall time (s) and process CPU time
    (s, all threads) in the returned list."""
    calls: list = []
    simulate = nest.Simulate

    def recorded(t):
        t0, c0 = time.perf_counter(), time.process_time()
        simulate(t)
        calls.append((float(t), time.perf_counter() - t0, time.process_time() - c0))

    types.ModuleType.__setattr__(nest, "Simulate", recorded)       # PyNEST's module refuses plain assignment
    return calls


def nest_structure(nest) -> dict:
    """What NEST holds after a run: kernel settings, nodes by model, connections by synapse
    model, recording devices (what they record, events) and spike generators (spikes).

    Read after the timing; it does not depend on the load of the machine, so it shows
    whether the backend and the script build the same network.
    """
    from collections import Counter

    import numpy as np

    ks = nest.GetKernelStatus()
    kernel = {k: ks[k] for k in ("resolution", "min_delay", "max_delay", "local_num_threads",
                                 "total_num_virtual_procs", "num_processes", "biological_time", "network_size",
                                 "num_connections")}
    nodes = nest.GetNodes()
    models = [str(m) for m in np.atleast_1d(nodes.get("model"))]
    conns = nest.GetConnections()
    syn = Counter(str(m) for m in np.atleast_1d(conns.get("synapse_model"))) if len(conns) else Counter()
    ids = np.asarray(nodes.tolist())
    recorders = []
    for i in ids[np.isin(models, ["spike_recorder", "multimeter"])]:
        node = nest.NodeCollection([int(i)])
        st = node.get()
        recorders.append({"model": st["model"], "record_from": list(st.get("record_from", ["spikes"])),
                          "interval": st.get("interval"), "sources": len(nest.GetConnections(target=node)),
                          "events": int(st["n_events"])})
    gens = ids[np.asarray(models) == "spike_generator"]
    times = nest.NodeCollection(gens.tolist()).get("spike_times") if gens.size else []
    times = [times] if gens.size == 1 else times
    return {"kernel": kernel, "nodes": dict(Counter(models)), "synapses": dict(syn), "recorders": recorders,
            "generators": int(gens.size), "generator_spikes": int(sum(len(np.atleast_1d(t)) for t in times))}


def one(job: dict) -> dict:
    """Run one measurement (inside a fresh process)."""
    import warnings

    warnings.simplefilter("ignore")
    kind, target, n, duration, seed = job["kind"], job["target"], job["n"], job["duration"], job["seed"]
    if kind == "engine":
        return engine(n, duration, seed)
    if kind.startswith("nest"):
        threads = 2 if kind.endswith("-2t") else 1
        if job.get("network") == "a":
            run_one = nest_plain_network_a if kind.startswith("nest-plain") else nest_backend_network_a
        else:
            run_one = nest_plain if kind.startswith("nest-plain") else nest_backend
        os.environ.setdefault("PYNEST_QUIET", "1")
        import nest

        calls = _record_simulate_calls(nest)
        out = run_one(n, duration, seed, threads)
        out.update(cpu=sum(c[2] for c in calls), simulate_calls=calls)
        if job.get("structure"):
            out["structure"] = nest_structure(nest)
        return out
    import brian2

    if job.get("cache_dir"):
        brian2.prefs.codegen.runtime.cython.cache_dir = job["cache_dir"]
    stamps = _time_loop_cpu(brian2)
    inputs = "generator" if kind.endswith("-gen") else "poisson"
    if kind.startswith("plain"):
        out = plain(target, n, duration, seed, inputs)
    else:
        out = backend(target, n, duration, seed, inputs)
    # cpp_standalone: the loop runs in the compiled binary, not in this process
    out["cpu"] = float("nan") if target == "cpp_standalone" else stamps.get("cpu", float("nan"))
    return out


def spawn(job: dict) -> dict:
    """Run ``job`` in a fresh Python process; adds the 1-min load average before the run."""
    load = os.getloadavg()[0]
    cmd = [sys.executable, os.path.abspath(__file__), "--one", json.dumps(job)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        return {"error": tail[-1][:300], "load": load}
    return {**json.loads(lines[-1]), "load": load}


def measure(target: str, n: int, duration: float, seed: int, repeats: int, kinds=KINDS,
            network: str = "song") -> dict[str, dict]:
    """Interleaved repeats of every kind; per kind the fastest loop, cold and warm setup."""
    caches = {k: tempfile.mkdtemp(prefix=f"bench-b2cache-{k}-") for k in kinds} if target == "cython" else {}
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    try:
        for _ in range(repeats):
            for kind in kinds:
                job = {"kind": kind, "target": target, "n": n, "duration": duration, "seed": seed,
                       "cache_dir": caches.get(kind), "network": network}
                runs[kind].append(spawn(job))
    finally:
        for d in caches.values():
            shutil.rmtree(d, ignore_errors=True)
    out = {}
    for kind, rs in runs.items():
        good = [r for r in rs if "error" not in r]
        if not good:
            out[kind] = {"error": rs[0]["error"]}
            continue
        best = dict(min(good, key=lambda r: r["loop"]))
        best["setup_cold"] = rs[0].get("setup", float("nan"))
        best["setup_warm"] = min((r["setup"] for r in good[1:]), default=float("nan"))
        best["loops"] = [r["loop"] for r in good]
        best["loop_median"] = sorted(best["loops"])[len(good) // 2]
        cpus = [r["cpu"] for r in good if r.get("cpu", float("nan")) == r.get("cpu", float("nan"))]
        best["cpu"] = min(cpus) if cpus else float("nan")
        best["cpus"] = cpus
        best["loads"] = [r["load"] for r in rs]
        out[kind] = best
    return out


def verdict(label: str, res: dict[str, dict]) -> str:
    """One line: plastinet-on-NEST against the script (target <= 1.1x the loop) and 1 -> 2 thread scaling."""
    loop = {k: res.get(k, {}).get("loop") for k in NEST_KINDS}
    if any(v is None for v in loop.values()):
        return f"verdict {label}: incomplete (a kind failed)"
    ratio1, ratio2 = loop["nest"] / loop["nest-plain"], loop["nest-2t"] / loop["nest-plain-2t"]
    cpu1 = res["nest"]["cpu"] / res["nest-plain"]["cpu"]
    loads = [x for k in NEST_KINDS for x in res[k]["loads"]]
    cpus = os.cpu_count() or 1
    quiet = max(loads) < cpus
    return (f"verdict {label}: plastinet-on-NEST loop {ratio1:.2f}x the script on 1 thread, {ratio2:.2f}x on 2 "
            f"(target <= 1.10x: {'met' if max(ratio1, ratio2) <= 1.10 else 'NOT met'}; CPU time {cpu1:.2f}x on 1 thread); "
            f"1 -> 2 threads speed-up: "
            f"script {loop['nest-plain'] / loop['nest-plain-2t']:.2f}x, plastinet {loop['nest'] / loop['nest-2t']:.2f}x; "
            f"load {min(loads):.1f}-{max(loads):.1f} on {cpus} cpus"
            + ("" if quiet else f" (load >= {cpus} cpus: not conclusive, rerun on a quiet machine)"))


def _devices(structure: dict) -> str:
    return "; ".join(f"{d['model']} of {','.join(d['record_from'])} from {d['sources']} nodes, {d['events']} events"
                     for d in structure["recorders"]) or "none"


def structure_report(label: str, n: int, duration: float, seed: int, network: str) -> dict:
    """Print what NEST holds after the script's and the backend's run of one network (1 thread)."""
    got = {kind: spawn({"kind": kind, "target": "nest", "n": n, "duration": duration, "seed": seed,
                        "network": network, "structure": True}) for kind in ("nest-plain", "nest")}
    print(f"\nstructure of {label} in NEST after the run: the hand-written script | plastinet's backend (1 thread)")
    if any("error" in r for r in got.values()):
        print("  error: " + "; ".join(r["error"] for r in got.values() if "error" in r))
        return got
    a, b = got["nest-plain"]["structure"], got["nest"]["structure"]
    rows = [(f"kernel {k}", a["kernel"][k], b["kernel"][k]) for k in a["kernel"]]
    rows += [(f"nodes {m}", a["nodes"].get(m, 0), b["nodes"].get(m, 0)) for m in sorted({*a["nodes"], *b["nodes"]})]
    rows += [(f"synapses {m}", a["synapses"].get(m, 0), b["synapses"].get(m, 0))
             for m in sorted({*a["synapses"], *b["synapses"]})]
    rows += [("spike generators", a["generators"], b["generators"]),
             ("generator spikes", a["generator_spikes"], b["generator_spikes"])]
    rows.append(("recording devices", _devices(a), _devices(b)))
    calls = {k: got[k]["simulate_calls"] for k in got}
    rows.append(("nest.Simulate calls", len(calls["nest-plain"]), len(calls["nest"])))
    rows.append(("  biological ms each", " ".join(f"{c[0]:g}" for c in calls["nest-plain"]),
                 " ".join(f"{c[0]:g}" for c in calls["nest"])))
    rows.append(("  wall s each", " ".join(f"{c[1]:.3f}" for c in calls["nest-plain"]),
                 " ".join(f"{c[1]:.3f}" for c in calls["nest"])))
    for name, x, y in rows:
        print(f"  {name:<40} {str(x):>28} | {str(y):<28}{'' if x == y else '  <- differs'}")
    return got


def network_a_table(n_e: int, duration: float, seed: int, repeats: int) -> list[dict]:
    """Network (a) on NEST: plastinet's backend against the hand-written script, 1 and 2 threads."""
    print(f"\nnetwork (a) of bench_network.py: {n_e} E + {n_e // 4} I LIF, 1000 sources at 20 Hz, E->E pair STDP; "
          f"{duration:g} s at dt = 0.1 ms; fastest of {repeats} interleaved runs")
    print(f"{'kind':>13} {'loop s':>8} {'overhead':>9} {'cpu s':>8} {'overhead':>9} {'wall s':>8} {'overhead':>9} "
          f"{'setup':>7} {'spikes':>8} {'w_EE pA':>8} {'load':>9}")
    res = measure("nest", n_e, duration, seed, repeats, NEST_KINDS, network="a")
    out = []
    for kind in NEST_KINDS:
        r = res[kind]
        if "error" in r:
            print(f"{kind:>13} error: {r['error']}", flush=True)
            continue
        base = res.get(BASE.get(kind, ""), {})
        over = f"{100 * (r['loop'] / base['loop'] - 1):+8.1f}%" if "loop" in base else ""
        over_wall = f"{100 * (r['wall'] / base['wall'] - 1):+8.1f}%" if "wall" in base else ""
        over_cpu = f"{100 * (r['cpu'] / base['cpu'] - 1):+8.1f}%" if "cpu" in base else ""
        load = f"{min(r['loads']):.1f}-{max(r['loads']):.1f}"
        print(f"{kind:>13} {r['loop']:>8.2f} {over:>9} {r['cpu']:>8.2f} {over_cpu:>9} {r['wall']:>8.2f} {over_wall:>9} "
              f"{r['setup']:>7.2f} "
              f"{r['spikes']:>8d} {r['w_mean']:>8.2f} {load:>9}", flush=True)
        out.append({"n": n_e, "target": "nest", "network": "a", "kind": kind, **r})
    print(verdict(f"network (a) N_E = {n_e}", res), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="N = 1000, 2 s, one repeat")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--targets", nargs="+", default=["numpy", "cython", "cpp_standalone"],
                    help="brian2 targets, and 'nest' for the NEST backend against a plain NEST script")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats per kind (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--network-a", type=int, default=None, metavar="N_E",
                    help="with --targets nest: N_E of bench_network.py's recurrent network (a) (default 4000, "
                         "--quick 1000)")
    ap.add_argument("--duration-a", type=float, default=None, help="network (a): biological time (s; default 1)")
    ap.add_argument("--structure", action="store_true",
                    help="with --targets nest: print what NEST holds after the script's and the backend's run of "
                         "each network (kernel, nodes, synapses, recorders, generators, nest.Simulate calls) and "
                         "stop; independent of the machine's load")
    ap.add_argument("--json", help="also write all measurements to this file")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return
    sizes = args.sizes or ([1000] if args.quick else [1000, 10000])
    duration = args.duration or (2.0 if args.quick else 10.0)
    repeats = args.repeats or (1 if args.quick else 5)
    if args.structure:
        n_e = args.network_a or (1000 if args.quick else 4000)
        for n in sizes:
            structure_report(f"Song 2000 N = {n}, {duration:g} s", n, duration, args.seed, "song")
        structure_report(f"network (a) N_E = {n_e}, {args.duration_a or 1.0:g} s", n_e, args.duration_a or 1.0,
                         args.seed, "a")
        return
    import brian2

    import plastinet

    t_start = time.time()
    print(f"Song 2000, {duration:g} s at dt = 0.1 ms, g_max = 0.01 * 1000 / N; plastinet {plastinet.__version__}, "
          f"brian2 {brian2.__version__}; {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f} at start; "
          f"fastest of {repeats} interleaved runs")
    hdr = (f"{'N':>6} {'target':>15} {'kind':>13} {'loop s':>8} {'overhead':>9} {'cpu s':>8} {'overhead':>9} "
           f"{'setup cold':>10} {'setup warm':>10} {'spikes':>7} {'low':>6} {'high':>6} {'load':>9}")
    print(hdr)
    results = []
    for n in sizes:
        r = spawn({"kind": "engine", "target": "numpy", "n": n, "duration": duration, "seed": args.seed})
        if "error" in r:
            print(f"{n:>6} {'numpy engine':>15} error: {r['error']}", flush=True)
        else:
            print(f"{n:>6} {'numpy engine':>15} {'':>13} {r['loop']:>8.2f} {'':>9} {'':>8} {'':>9} {'':>10} {'':>10} "
                  f"{r['spikes']:>7d} {r['frac_low']:>6.3f} {r['frac_high']:>6.3f} {r['load']:>9.1f}", flush=True)
            results.append({"n": n, "target": "numpy", "kind": "engine", **r})
        for target in args.targets:
            kinds = NEST_KINDS if target == "nest" else KINDS
            res = measure(target, n, duration, args.seed, repeats, kinds)
            for kind in kinds:
                r = res[kind]
                ref = res.get(BASE.get(kind, ""), {})
                base, base_cpu = ref.get("loop"), ref.get("cpu", float("nan"))
                if "error" in r:
                    print(f"{n:>6} {target:>15} {kind:>13} error: {r['error']}", flush=True)
                    continue
                over = f"{100 * (r['loop'] / base - 1):+8.1f}%" if base and kind in BASE else ""
                cpu = f"{r['cpu']:>8.2f}" if r["cpu"] == r["cpu"] else f"{'-':>8}"
                over_cpu = f"{100 * (r['cpu'] / base_cpu - 1):+8.1f}%" \
                    if kind in BASE and r["cpu"] == r["cpu"] and base_cpu == base_cpu else ""
                warm = f"{r['setup_warm']:>10.2f}" if r["setup_warm"] == r["setup_warm"] else f"{'':>10}"
                load = f"{min(r['loads']):.1f}-{max(r['loads']):.1f}"
                print(f"{n:>6} {target:>15} {kind:>13} {r['loop']:>8.2f} {over:>9} {cpu} {over_cpu:>9} "
                      f"{r['setup_cold']:>10.2f} {warm} {r['spikes']:>7d} {r['frac_low']:>6.3f} "
                      f"{r['frac_high']:>6.3f} {load:>9}", flush=True)
                results.append({"n": n, "target": target, "kind": kind, **r})
            if target == "nest":
                print(verdict(f"Song 2000 N = {n}", res), flush=True)
    if "nest" in args.targets:
        results += network_a_table(args.network_a or (1000 if args.quick else 4000),
                                   args.duration_a or (0.2 if args.quick else 1.0), args.seed, repeats)
    print(f"total {time.time() - t_start:.0f} s; load {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
