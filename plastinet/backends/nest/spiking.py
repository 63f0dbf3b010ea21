"""Plastic spiking networks (:class:`plastinet.spiking.Network`) lowered to NEST.

Populations, projections and probes are lowered through the registries of
:mod:`plastinet.backends.nest.lowering`; connectivity, initial weights and Poisson spikes
are those the numpy engine draws for the same seed, so both backends simulate the same
network and inputs. What NEST cannot run raises :class:`~plastinet.errors.UnsupportedError`
naming the object and the route (a NESTML model); conventions that make NEST's numbers
differ from plastinet's are listed in the result's ``nest_conventions`` attr and in
``docs/backends.md``.
"""

from __future__ import annotations

import json
import math
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from plastinet.backends.nest.gather import (
    communicator,
    connection_arrays,
    gather_arrays,
    in_node_order,
    local_node_values,
)
from plastinet.backends.nest.lowering import (
    MS,
    SHIFT_STEPS,
    SYNAPSES,
    is_source,
    neuron_model,
    parrot_times,
    rule_problem,
    synapse_model,
    tsodyks_params,
)
from plastinet.backends.nest.session import import_nest, reset_kernel
from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.results import finalize_dataset
from plastinet.seeds import check_seed, new_seed
from plastinet.spiking._sources import _steps
from plastinet.spiking.draws import DELAY_ROUNDING, connectivity, delay_steps, seed_streams, sources
from plastinet.spiking.footprint import check_network_memory, probe_bytes, state_bytes
from plastinet.spiking.guards import check_final_states, numerical_guard
from plastinet.spiking.network import Network, SpikeProbe, StateProbe, WeightProbe
from plastinet.spiking.recordings import build_dataset
from plastinet.spiking.rules import InhibitorySTDP
from plastinet.units import to_si

__all__ = ["simulate", "unsupported_reason", "inexact_reason"]

_NESTML = "write the model in NESTML (https://nestml.readthedocs.io) and lower it by hand, or use backend='numpy'"


def unsupported_reason(network: Network) -> str | None:
    """Why ``network`` cannot be lowered to NEST (None when it can)."""
    for pop in network.populations.values():
        if not is_source(pop) and type(pop).__name__ not in _neuron_names():
            return (f"{type(pop).__name__} {pop.name!r}: NEST has no lowering of this population type here; "
                    f"{_NESTML}")
    for name in ("modulators", "rewards"):
        objs = getattr(network, name)
        if objs:
            kinds = ", ".join(sorted({type(o).__name__ for o in objs.values()}))
            return f"{kinds} ({', '.join(objs)}): not lowered to NEST yet; {_NESTML}"
    post_params: dict[str, dict[str, float]] = {}
    for proj in network.projections.values():
        if proj.stp is not None and proj.rule is not None:
            return (f"Projection {proj.name!r}: short-term and long-term plasticity on one projection "
                    "(NEST's synapse models have one or the other)")
        if proj.rule is not None:
            if type(proj.rule) not in SYNAPSES:
                return f"{type(proj.rule).__name__} on {proj.name!r}: not lowered to NEST yet; {_NESTML}"
            problem = rule_problem(proj.rule, proj)
            if problem:
                return problem
            wanted = synapse_model(proj.rule, proj, 1.0).post_params
            have = post_params.setdefault(proj.post.name, dict(wanted))
            if any(have.get(k, v) != v for k, v in wanted.items()):
                return (f"{proj.post.name!r}: its plastic projections need different postsynaptic trace time "
                        f"constants ({have} vs {wanted}); NEST keeps one set per neuron")
        if proj.rule is not None and not is_source(proj.pre):
            return (f"{type(proj.rule).__name__} on {proj.name!r}: plastic projections from neurons are not "
                    "lowered to NEST yet (their presynaptic side needs the neurons' spike times)")
        if proj.target == "none" and not is_source(proj.post):
            return f"Projection {proj.name!r}: target 'none' onto a dynamic population"
        if proj.target != "none" and is_source(proj.post):
            return f"Projection {proj.name!r}: a source population has no input {proj.target!r}"
    for probe in network.probes.values():
        if isinstance(probe, WeightProbe) and network.projections[probe.projection].rule is not None:
            return (f"WeightProbe {probe.name!r}: NEST applies potentiation lazily at the next presynaptic "
                    "spike, so weights sampled during a run are not plastinet's; final weights are exact")
    return None


def inexact_reason(network: Network) -> str | None:
    """Why NEST's numbers for ``network`` differ from plastinet's by convention (None: identical)."""
    notes = _conventions(network)
    return "; ".join(notes) if notes else None


def _neuron_names() -> set[str]:
    from plastinet.backends.nest.lowering import NEURONS

    return {t.__name__ for t in NEURONS}


def _conventions(network: Network) -> list[str]:
    notes = []
    for pop in network.populations.values():
        nm = None if is_source(pop) else neuron_model(pop, 1e-4)
        if nm is not None and nm.exact:
            notes.append(nm.exact)
    for proj in network.projections.values():
        delay = proj.delay
        may_be_zero = delay[1] < 0.5 * 1e-4 if isinstance(delay, tuple) else bool(np.any(np.asarray(delay) == 0.0))
        if not is_source(proj.pre) and proj.target != "none" and may_be_zero:
            notes.append(f"{proj.name}: delay 0 between neurons is lowered to NEST's minimum delay dt "
                         "(transmission one step later)")
        if proj.rule is not None and not is_source(proj.post):
            notes.append(f"{proj.name}: NEST transmits the weight after the presynaptic update and sees "
                         "postsynaptic spikes two steps later (spike stamp at the step's end, dendritic delay)")
        heterogeneous = isinstance(delay, tuple) or np.ptp(np.asarray(delay, dtype=float).ravel()) > 0
        if proj.rule is not None and heterogeneous:
            notes.append(f"{proj.name}: NEST updates a plastic synapse when a spike is sent, plastinet when it "
                         "arrives: with heterogeneous delays spikes in flight at the end change NEST's final weights")
        if proj.rule is not None:
            notes.append(f"{proj.name}: a presynaptic and a postsynaptic spike in the same step do not pair in "
                         "NEST and pair once in plastinet (+A_plus in STDP)")
        if isinstance(proj.rule, InhibitorySTDP):
            notes.append(f"{proj.name}: at a presynaptic spike NEST clips after the potentiation and again after "
                         "the depression, plastinet once after both (differs only while w is near w_max)")
    return notes


_OWNER = "nest backend"


def simulate(network: Network, duration: Any, *, dt: Any = 1e-4, seed: int | None = None, threads: int = 1,
             on_numerical: str = "raise", max_rate: Any = None) -> xr.Dataset:
    """Simulate ``network`` with NEST; same contract and Dataset layout as the numpy engine.

    Parameters
    ----------
    network : Network
    duration : float or str
        Biological time (s).
    dt : float or str
        Time step (s), NEST's resolution.
    seed : int or None
        Seed: connectivity, initial weights, delays and Poisson spikes are drawn as the numpy
        engine draws them (:mod:`plastinet.spiking.draws`).
    threads : int
        NEST threads per process (results do not depend on it, nor on the number of MPI
        processes: under ``mpirun`` every rank returns the whole gathered result).
    on_numerical, max_rate
        The numerical guard on the read-back states, as for the numpy engine.

    Raises
    ------
    UnsupportedError
        For objects NEST cannot run here (the message names them and the route).
    """
    if not isinstance(network, Network):
        raise ValidationError(_OWNER, "network", network, "expected a spiking Network")
    reason = unsupported_reason(network)
    if reason:
        raise UnsupportedError(_OWNER, "network", "", reason)
    network.validate()
    dt = to_si(dt, "s", name="dt", owner=_OWNER)
    if not dt > 0 or not math.isfinite(dt):
        raise RangeError(_OWNER, "dt", dt, "expected a positive time step in s")
    guard = numerical_guard(_OWNER, dt, on_numerical, max_rate)
    duration = to_si(duration, "s", name="duration", owner=_OWNER)
    if not duration >= 0 or not math.isfinite(duration):
        raise RangeError(_OWNER, "duration", duration, "expected a duration >= 0 s")
    check_network_memory(state_bytes(network), _OWNER, "the network's state")
    check_network_memory(probe_bytes(network, duration), _OWNER, f"recording {duration:g} s")
    seed = check_seed(_OWNER, seed)
    if seed is None:                    # draw one, so that the recorded seed reproduces the run
        seed = new_seed()
    n_steps = int(round(duration / dt))
    plan = _plan(network, dt, seed, n_steps)
    nest = import_nest()
    comm = communicator(nest)           # under MPI: every rank's part is gathered into the whole result
    t0 = time.perf_counter()
    rec = _build_and_run(nest, plan, n_steps, threads, comm)
    wall = time.perf_counter() - t0
    check_final_states(guard, _OWNER, dt, n_steps, plan.sampled, rec.states, rec._samples, rec._sample_times,
                       rec.counts)
    ds = build_dataset(rec, rec.final_w)
    delays = ({"delay_rounding": DELAY_ROUNDING} if any(p.delay_steps is not None for p in plan.projs.values())
              else {})
    return finalize_dataset(ds, backend="nest", backend_version=str(nest.__version__), dt=dt, seed=seed,
                            model_spec=network.to_dict(), t_start=0.0, t_stop=n_steps * dt,
                            nest_threads=int(threads), nest_processes=1 if comm is None else comm.Get_size(),
                            nest_shift_steps=SHIFT_STEPS,
                            nest_conventions=json.dumps(_conventions(network)), wall_time=wall,
                            run_loop_time=rec.loop_time, **delays)


def _plan(net: Network, dt: float, seed: int, n_steps: int) -> SimpleNamespace:
    """The draws (the numpy engine's), NEST models and delays, before NEST is touched."""
    streams = seed_streams(net, seed)
    srcs = sources(net, dt, streams)                     # validates rate * dt <= 1 and generator times
    events = {name: src.events(0, max(n_steps, 1)) for name, src in srcs.items()}
    models = {name: neuron_model(pop, dt) for name, pop in net.populations.items() if not pop.source}
    projs = {}
    for name in sorted(net.projections):
        proj = net.projections[name]
        drawn = connectivity(proj, streams.projections[name])
        steps = delay_steps(drawn.delay, dt)
        if proj.target == "none" and steps.size and (steps != steps[0]).any():
            raise UnsupportedError(f"Projection {name!r}", "delay", "heterogeneous",
                                   "onto a source population (injected trains) NEST reproduces plastinet's pair "
                                   "timing only with one delay per projection")
        no_delay = isinstance(proj.delay, float) and proj.delay == 0.0     # as the numpy engine records it
        projs[name] = SimpleNamespace(proj=proj, pre=drawn.pre, post=drawn.post, w=drawn.w, steps=steps,
                                      delay_steps=None if no_delay else steps,
                                      n_pre=proj.pre.n, n_post=proj.post.n, dense=proj.connectivity == "all")
    sampled = [p for p in net.probes.values() if not isinstance(p, SpikeProbe)]
    sample_steps = (_steps(sampled[0].sample_every, dt, type(sampled[0]).__name__, "sample_every")
                    if sampled else 0)
    for probe in sampled:
        if isinstance(probe, StateProbe) and net.populations[probe.population].source:
            raise ValidationError("StateProbe", "population", probe.population,
                                  "state can only be recorded from dynamic populations (not sources)")
    return SimpleNamespace(network=net, dt=dt, events=events, models=models, projs=projs, sampled=sampled,
                           sample_steps=sample_steps,
                           spike_pops={p.population for p in net.probes.values() if isinstance(p, SpikeProbe)},
                           spiking_dyn=[n for n, p in net.populations.items() if p.spiking and not p.source])


def _generators(nest: Any, steps: np.ndarray, idx: np.ndarray, n: int, dt: float, offset: int) -> Any:
    """``n`` spike generators emitting neuron ``i``'s spikes ``offset`` steps after ``steps``."""
    gens = nest.Create("spike_generator", n)
    order = np.argsort(idx, kind="stable")
    times = parrot_times(steps, dt, offset)[order]
    bounds = np.searchsorted(idx[order], np.arange(n + 1))
    gens.set([{"spike_times": times[bounds[i]:bounds[i + 1]].tolist()} for i in range(n)])
    return gens


def _parrots(nest: Any, gens: Any, dt: float) -> Any:
    par = nest.Create("parrot_neuron", len(gens))
    nest.Connect(gens, par, "one_to_one", syn_spec={"delay": dt * MS})
    return par


def _build_and_run(nest: Any, plan: SimpleNamespace, n_steps: int, threads: int, comm: Any) -> SimpleNamespace:
    k, dt, net = SHIFT_STEPS, plan.dt, plan.network
    reset_kernel(dt, threads, 0)          # NEST draws nothing here: every random number is plastinet's
    nodes = {name: nest.Create(nm.model, net.populations[name].n, params=nm.params)
             for name, nm in plan.models.items()}
    events = plan.events
    plastic: dict[str, tuple] = {}
    for pname, p in plan.projs.items():
        proj = p.proj
        pre, post = proj.pre.name, proj.post.name
        D = p.steps
        pre_events = events.get(pre)
        if proj.rule is not None and is_source(proj.pre) and D.size and (D == D[0]).all() and D[0] > 0:
            # plastinet never delivers spikes still in flight at the end; NEST would update the weights with
            # them (it updates when a spike is sent): leave them out of the relays
            keep = pre_events[0] < n_steps - D[0]
            pre_events = (pre_events[0][keep], pre_events[1][keep])
        if proj.target == "none":             # injected trains: parrots on both sides, plasticity only
            d0 = int(D[0]) if D.size else 0
            pre_nodes = _parrots(nest, _generators(nest, *pre_events, proj.pre.n, dt, k + 1 + d0), dt)
            post_nodes = _parrots(nest, _generators(nest, *events[post], proj.post.n, dt, k), dt)
            factor, receptor, d_nest, lag = 1.0, 1, np.ones_like(D), -D
        else:
            nm = plan.models[post]
            sign, factor = nm.receptors[proj.target]
            w_lo, w_hi = (p.w.min(), p.w.max()) if p.w.size else (0.0, 0.0)
            if proj.rule is not None:
                w_lo, w_hi = min(w_lo, proj.w_min), max(w_hi, proj.w_max)
            if (sign > 0 and w_lo < 0) or (sign < 0 and w_hi > 0):
                raise UnsupportedError(f"Projection {pname!r}", "weight", f"[{proj.w_min:g}, {proj.w_max:g}]",
                                       f"NEST routes spikes onto {proj.target!r} by the sign of the weight: weights "
                                       f"and bounds must be {'>= 0' if sign > 0 else '<= 0'}")
            if proj.rule is not None and factor < 0 and not isinstance(proj.rule, InhibitorySTDP):
                raise UnsupportedError(f"Projection {pname!r}", "target", proj.target,
                                       "NEST's plastic synapses keep the sign of Wmax; plastic inhibitory "
                                       "conductances are lowered for InhibitorySTDP only")
            receptor, post_nodes = 0, nodes[post]
            if is_source(proj.pre):
                # generator spike at (s + k) dt straight onto the neurons, or through a parrot relay
                # (plastic synapses) stamped (s + k) dt; both reach the neuron at (s + D + k + 1) dt
                if proj.rule is None and proj.stp is None:
                    pre_nodes = _generators(nest, *pre_events, proj.pre.n, dt, k)
                else:
                    pre_nodes = _parrots(nest, _generators(nest, *pre_events, proj.pre.n, dt, k - 1), dt)
                d_nest, lag = D + 1, D + 2
            else:                             # neuron stamp (s + 1 + k) dt: delay D, at least NEST's one step
                pre_nodes = nodes[pre]
                d_nest, lag = np.maximum(D, 1), np.maximum(D, 1)
        syn: dict[str, Any] = {"synapse_model": "static_synapse"}
        if proj.rule is not None:
            sm = synapse_model(proj.rule, proj, factor)
            syn = {"synapse_model": sm.model, **sm.params}
            post_nodes.set(sm.post_params)
        elif proj.stp is not None:
            syn = {"synapse_model": "tsodyks2_synapse", **tsodyks_params(proj.stp)}
        syn.update({"weight": p.w * factor, "delay": d_nest.astype(np.float64) * dt * MS})
        if receptor:
            syn["receptor_type"] = receptor
        src_ids = np.asarray(pre_nodes.tolist())[p.pre]
        tgt_ids = np.asarray(post_nodes.tolist())[p.post]
        nest.Connect(src_ids, tgt_ids, "one_to_one", syn_spec=syn)
        if proj.rule is not None:
            plastic[pname] = (pre_nodes, post_nodes, syn, factor, lag, pre_events)
    recorders = {}
    for name in plan.spiking_dyn:          # every spiking population: output, guard, weight read-back
        recorders[name] = nest.Create("spike_recorder")
        nest.Connect(nodes[name], recorders[name])
    sample_steps = plan.sample_steps
    mm = {}
    for probe in plan.sampled:
        if isinstance(probe, StateProbe):
            nm = plan.models[probe.population]
            m = nest.Create("multimeter", params={"record_from": [nm.variables[probe.variable][0]],
                                                  "interval": sample_steps * dt * MS,
                                                  "offset": (k + 1) * dt * MS})
            nest.Connect(m, nodes[probe.population])
            mm[probe.name] = m
    t_loop = time.perf_counter()
    # the input-free lead-in, the run, and the steps in which the last source spikes are delivered
    max_delay = max((int(p.steps.max()) for p in plan.projs.values() if p.steps.size), default=0)
    nest.Simulate((n_steps + k + 2 + max_delay) * dt * MS)
    loop_time = time.perf_counter() - t_loop
    fired = dict(events)
    for name, sr in recorders.items():
        ev = gather_arrays(comm, {"times": np.asarray(sr.events["times"], dtype=np.float64),
                                  "senders": np.asarray(sr.events["senders"], dtype=np.int64)})
        st = np.rint(ev["times"] / (dt * MS)).astype(np.int64) - 1 - k
        ix = np.asarray(ev["senders"], dtype=np.int64) - int(nodes[name].tolist()[0])
        keep = st < n_steps
        order = np.lexsort((ix[keep], st[keep]))
        fired[name] = (st[keep][order], ix[keep][order])
    spikes = {pop: [fired[pop]] for pop in plan.spike_pops}
    counts = {name: np.bincount(fired[name][1], minlength=net.populations[name].n) for name in recorders}
    sample_times = list(range(0, n_steps, sample_steps)) if sample_steps else []
    samples: dict[str, list[np.ndarray]] = {p.name: [] for p in plan.sampled}
    for probe in plan.sampled:
        nm = plan.models[probe.population]
        var, fac = nm.variables[probe.variable]
        ev = mm[probe.name].events
        ev = gather_arrays(comm, {"times": np.asarray(ev["times"], dtype=np.float64),
                                  "senders": np.asarray(ev["senders"], dtype=np.int64),
                                  var: np.asarray(ev[var], dtype=np.float64)})
        steps = np.rint(ev["times"] / (dt * MS)).astype(np.int64) - 1 - k
        senders = ev["senders"] - int(nodes[probe.population].tolist()[0])
        vals = ev[var] * fac
        table = np.full((n_steps + 1, net.populations[probe.population].n), np.nan)
        ok = (steps >= 0) & (steps <= n_steps)
        table[steps[ok], senders[ok]] = vals[ok]
        idx = probe.indices if probe.indices is not None else slice(None)
        samples[probe.name] = [table[s][idx] for s in sample_times]
    final_w = {pname: _final_weights(nest, plan.projs[pname], *args, fired, dt, comm)
               for pname, args in plastic.items()}
    states = []
    for name in nodes:
        v = gather_arrays(comm, local_node_values(nodes[name], "V_m"))
        states.append(("population", name, "v",
                       in_node_order(v["ids"], v["values"], nodes[name].tolist()[0], len(nodes[name])) * 1e-3))
    states += [("projection", name, "w", w) for name, w in final_w.items()]
    return SimpleNamespace(network=net, dt=dt, _spikes=spikes, sampled=plan.sampled, _samples=samples,
                           _sample_times=sample_times, projs=plan.projs, final_w=final_w, states=states,
                           counts=counts, loop_time=loop_time)


def _final_weights(nest: Any, p: Any, pre_nodes: Any, post_nodes: Any, syn: dict, factor: float,
                   lag: np.ndarray, pre_events: tuple[np.ndarray, np.ndarray], fired: dict, dt: float,
                   comm: Any) -> np.ndarray:
    """Final weights in plastinet's synapse order, with NEST's pending potentiation applied.

    NEST's ``stdp_synapse`` potentiates for postsynaptic spikes only when the next
    presynaptic spike arrives; plastinet potentiates at the postsynaptic spike. Postsynaptic
    spikes after a synapse's last presynaptic spike are therefore applied here, with NEST's
    own trace ``Kplus`` and update (capped at ``Wmax``). Under MPI each rank holds the
    synapses onto its neurons: they are gathered (``comm``) before being read back.
    """
    conns = nest.GetConnections(source=pre_nodes, target=post_nodes, synapse_model=syn["synapse_model"])
    pre_first, post_first = int(pre_nodes.tolist()[0]), int(post_nodes.tolist()[0])
    got = gather_arrays(comm, connection_arrays(conns, ("source", "target", "weight", "Kplus")))
    src, tgt = got["source"] - pre_first, got["target"] - post_first
    w, kplus = got["weight"], got["Kplus"]
    key = src * p.n_post + tgt
    ours = p.pre * p.n_post + p.post
    if np.unique(ours).size != ours.size:
        raise UnsupportedError(f"Projection {p.name!r}", "connectivity", "multapses",
                               "the NEST backend reads weights back by (pre, post) and needs at most one "
                               "synapse per pair")
    order = np.argsort(key)
    pos = np.searchsorted(key[order], ours)
    w, kplus = w[order][pos], kplus[order][pos]
    # pending potentiation: post spikes after the last (delayed) pre spike, in plastinet steps
    proj = p.proj
    rule = proj.rule
    pre_steps, pre_idx = pre_events                 # the presynaptic spikes NEST's synapses received
    last_pre = np.full(proj.pre.n, -(2 ** 62), dtype=np.int64)
    np.maximum.at(last_pre, pre_idx, pre_steps)
    post_steps, post_idx = fired[proj.post.name]
    # ``lag``: how many steps later than plastinet NEST sees the post spikes of each synapse
    # relative to its presynaptic spikes (spike stamps, dendritic delays; 0 on injected trains)
    tau_pre = rule.tau if isinstance(rule, InhibitorySTDP) else rule.tau_plus      # the presynaptic trace
    for j in range(proj.post.n):
        own = post_steps[post_idx == j]
        if not own.size:
            continue
        amp = _potentiation_amplitudes(rule, syn, own, dt)         # per post spike, before the trace Kplus
        mine = np.flatnonzero(p.post == j)
        for syn_i in mine:
            posts = own + lag[syn_i]
            t_last = last_pre[p.pre[syn_i]]
            pending = posts > t_last
            if t_last < -(2 ** 61) or not pending.any():
                continue
            decay = np.exp(-(posts[pending] - t_last) * dt / tau_pre)
            mag = abs(w[syn_i])
            for a in kplus[syn_i] * decay * amp[pending]:
                mag = min(mag + a, abs(syn["Wmax"]))
            w[syn_i] = math.copysign(mag, syn["Wmax"])
    return w / factor


def _potentiation_amplitudes(rule: Any, syn: dict, posts: np.ndarray, dt: float) -> np.ndarray:
    """NEST's potentiation per unit of the presynaptic trace at each postsynaptic spike ``posts``."""
    if syn["synapse_model"] == "stdp_synapse":
        return np.full(posts.size, syn["lambda"] * syn["Wmax"])
    if syn["synapse_model"] == "vogels_sprekeler_synapse":
        return np.full(posts.size, syn["eta"])
    # stdp_triplet_synapse: Aplus + Aplus_triplet * (post triplet trace just before the spike)
    before = np.zeros(posts.size)
    decay = np.exp(-np.diff(posts) * dt / rule.tau_y)
    for k in range(1, posts.size):
        before[k] = (before[k - 1] + 1.0) * decay[k - 1]
    return syn["Aplus"] + syn["Aplus_triplet"] * before
