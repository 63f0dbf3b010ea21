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
    parrots,
    rule_problem,
    synapse_model,
    tsodyks_params,
)
from plastinet.backends.nest.modulation import (
    RewardScanner,
    dopamine_params,
    modulation_problem,
    multiplicity,
    reward_relay,
    schedule_spikes,
    signal_levels,
    signal_unit,
)
from plastinet.backends.nest.session import import_nest, reset_kernel
from plastinet.errors import UnsupportedError, ValidationError
from plastinet.results import finalize_dataset
from plastinet.spiking._noise import NoiseInput
from plastinet.spiking.draws import DELAY_ROUNDING, connectivity, delay_steps, seed_streams, sources
from plastinet.spiking.guards import check_final_states
from plastinet.spiking.network import ModulatorProbe, Network, SpikeProbe, StateProbe, WeightProbe
from plastinet.spiking.recordings import build_dataset
from plastinet.spiking.rules import DopamineSTDP, InhibitorySTDP, PairSTDP
from plastinet.spiking.run_checks import check_dt, check_run, sampled_probes

__all__ = ["simulate", "unsupported_reason", "inexact_reason"]

_NESTML = "write the model in NESTML (https://nestml.readthedocs.io) and lower it by hand, or use backend='numpy'"


def unsupported_reason(network: Network) -> str | None:
    """Why ``network`` cannot be lowered to NEST (None when it can)."""
    for pop in network.populations.values():
        if not is_source(pop) and type(pop).__name__ not in _neuron_names():
            return (f"{type(pop).__name__} {pop.name!r}: NEST has no lowering of this population type here; "
                    f"{_NESTML}")
    problem = modulation_problem(network, 1e-4)
    if problem:
        return problem
    for noise in network.noises.values():
        nm = neuron_model(network.populations[noise.population], 1e-4)
        if nm is not None and nm.receptors[noise.target][0] != 0:
            return (f"NoiseCurrent {noise.name!r}: NEST's {nm.model} routes inputs to {noise.target!r} by their "
                    "sign, so a noise of both signs cannot reach it; lowered onto Izhikevich neurons only")
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
        if proj.target == "none" and not is_source(proj.pre):
            return f"Projection {proj.name!r}: target 'none' from a dynamic population"
        if proj.target == "none" and not is_source(proj.post):
            return f"Projection {proj.name!r}: target 'none' onto a dynamic population"
        if proj.target != "none" and is_source(proj.post):
            return f"Projection {proj.name!r}: a source population has no input {proj.target!r}"
    for probe in network.probes.values():
        proj = network.projections[probe.projection] if isinstance(probe, WeightProbe) else None
        if (proj is not None and proj.rule is not None and not is_source(proj.pre)
                and not isinstance(proj.rule, DopamineSTDP)):
            return (f"WeightProbe {probe.name!r}: weights sampled during a run are completed from the spikes "
                    "NEST has sent (it potentiates lazily), which needs a source population before "
                    f"{proj.name!r}; final weights are read back")
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
    def nm_of(pop: Any) -> Any:
        return None if is_source(pop) else neuron_model(pop, 1e-4)

    for proj in network.projections.values():
        delay = proj.delay
        may_be_zero = delay[1] < 0.5 * 1e-4 if isinstance(delay, tuple) else bool(np.any(np.asarray(delay) == 0.0))
        instant = nm_of(proj.post) is not None and nm_of(proj.post).input_steps == 0
        if not is_source(proj.pre) and proj.target != "none" and may_be_zero and instant:
            notes.append(f"{proj.name}: delay 0 between neurons is lowered to NEST's minimum delay dt "
                         "(transmission one step later)")
        if proj.rule is not None and not is_source(proj.post):
            inp = nm_of(proj.post).input_steps       # Izhikevich: NEST's delay is one step longer
            shift = (f"2D + {2 + inp}" if is_source(proj.pre) else f"2D + {inp}" if inp else "max(2D, 1)")
            notes.append(f"{proj.name}: NEST transmits the weight after the presynaptic update and pairs a "
                         f"presynaptic spike with a postsynaptic one {shift} steps later than plastinet (delay D "
                         "in steps; spike stamps at the step's end, NEST's delay dendritic, plastinet's axonal)")
        heterogeneous = isinstance(delay, tuple) or np.ptp(np.asarray(delay, dtype=float).ravel()) > 0
        if proj.rule is not None and heterogeneous:
            notes.append(f"{proj.name}: NEST updates a plastic synapse when a spike is sent, plastinet when it "
                         "arrives: with heterogeneous delays spikes in flight at the end change NEST's final weights")
        if proj.rule is not None:
            notes.append(f"{proj.name}: a presynaptic and a postsynaptic spike in the same step do not pair in "
                         "NEST and pair once in plastinet (+A_plus in STDP)")
        if isinstance(proj.rule, DopamineSTDP) and proj.rule.convention == "nearest":
            notes.append(f"{proj.name}: DopamineSTDP(convention='nearest') runs with all-to-all traces: NEST's "
                         "stdp_dopamine_synapse adds 1 per spike to its traces (Izhikevich's code resets them to 1)")
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
    network.validate()
    dt = check_dt(_OWNER, dt)
    reason = unsupported_reason(network) or modulation_problem(network, dt)
    if reason:
        raise UnsupportedError(_OWNER, "network", "", reason)
    run = check_run(_OWNER, network, dt, duration, seed, on_numerical, max_rate)
    dt, seed, n_steps, guard = run.dt, run.seed, run.n_steps, run.guard
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
                            nest_shift_steps=plan.k,
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
    sampled, sample_steps = sampled_probes(net, dt)
    # NEST brings dopamine synapses' weights up to date every ``deliver_steps`` (absolute) steps: as rarely as
    # the weights are read (samples, end); the lead-in is lengthened so that the reads fall on those steps
    deliver = 1
    if any(isinstance(p.rule, DopamineSTDP) for p in net.projections.values()) and n_steps:
        deliver = n_steps
        if any(isinstance(p, WeightProbe) for p in sampled):
            deliver = math.gcd(deliver, sample_steps)
    k = SHIFT_STEPS + (-(SHIFT_STEPS + 2)) % deliver
    return SimpleNamespace(network=net, dt=dt, streams=streams, k=k, deliver_steps=deliver, events=events,
                           models=models, projs=projs, sampled=sampled,
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


def _build_and_run(nest: Any, plan: SimpleNamespace, n_steps: int, threads: int, comm: Any) -> SimpleNamespace:
    """Build the network in NEST, run it and read it back (``comm``: every MPI rank's part gathered)."""
    k, dt, net = plan.k, plan.dt, plan.network
    reset_kernel(dt, threads, 0)          # NEST draws nothing here: every random number is plastinet's
    nodes = {name: nest.Create(nm.model, net.populations[name].n, params=nm.params)
             for name, nm in plan.models.items()}
    events = plan.events
    vts, signal_events = _volume_transmitters(nest, plan, nodes, n_steps)
    plastic: dict[str, tuple] = {}
    shared_gens: dict[str, Any] = {}
    for pname, p in plan.projs.items():
        proj = p.proj
        pre, post = proj.pre.name, proj.post.name
        D = p.steps
        pre_events = events.get(pre)           # None for neurons: their spikes are read back after the run
        if proj.rule is not None and is_source(proj.pre) and D.size and (D == D[0]).all() and D[0] > 0:
            # plastinet never delivers spikes still in flight at the end; NEST would update the weights with
            # them (it updates when a spike is sent): leave them out of the relays
            keep = pre_events[0] < n_steps - D[0]
            pre_events = (pre_events[0][keep], pre_events[1][keep])
        if proj.target == "none":             # injected trains: parrots on both sides, plasticity only
            d0 = int(D[0]) if D.size else 0
            pre_nodes = parrots(nest, _generators(nest, *pre_events, proj.pre.n, dt, k + 1 + d0), dt)
            post_nodes = parrots(nest, _generators(nest, *events[post], proj.post.n, dt, k), dt)
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
                # (one step later for neurons whose input enters the next update)
                if proj.rule is None and proj.stp is None:     # one set of generators per source population
                    if pre not in shared_gens:
                        shared_gens[pre] = _generators(nest, *pre_events, proj.pre.n, dt, k)
                    pre_nodes = shared_gens[pre]
                else:
                    pre_nodes = parrots(nest, _generators(nest, *pre_events, proj.pre.n, dt, k - 1), dt)
                d_nest = D + 1 + nm.input_steps
                lag = d_nest + 1
            else:                             # neuron stamp (s + 1 + k) dt: delay D, at least NEST's one step
                pre_nodes = nodes[pre]
                d_nest = np.maximum(D + nm.input_steps, 1)
                lag = d_nest
        syn: dict[str, Any] = {"synapse_model": "static_synapse"}
        if proj.rule is not None:
            sm = synapse_model(proj.rule, proj, factor)
            # each plastic projection on its own copy of the model (read back by model); common properties
            # (dopamine synapses) can only be set on the copy
            copy = f"plastinet_{sm.model}_{pname}"
            if sm.common:
                mod = proj.rule.modulator
                nest.CopyModel(sm.model, copy, dopamine_params(sm, net.modulators[mod],
                                                               signal_unit(net, mod), vts[mod]))
                syn = {"synapse_model": copy}
            else:
                nest.CopyModel(sm.model, copy)
                syn = {"synapse_model": copy, **sm.params}
            post_nodes.set(sm.post_params)
        elif proj.stp is not None:
            syn = {"synapse_model": "tsodyks2_synapse", **tsodyks_params(proj.stp)}
        syn.update({"weight": p.w * factor, "delay": d_nest.astype(np.float64) * dt * MS})
        if receptor:
            syn["receptor_type"] = receptor
        src_ids = np.asarray(pre_nodes.tolist())[p.pre]
        tgt_ids = np.asarray(post_nodes.tolist())[p.post]
        if proj.rule is None:
            nest.Connect(src_ids, tgt_ids, "one_to_one", syn_spec=syn)
        else:                                 # the k-th synapse of each (pre, post) pair on the k-th model copy
            rank = _pair_rank(p)
            for r in range(int(rank.max()) + 1 if rank.size else 0):
                on = rank == r
                if r:
                    nest.CopyModel(syn["synapse_model"], _rank_model(syn["synapse_model"], r))
                spec = {**syn, "synapse_model": _rank_model(syn["synapse_model"], r), "weight": syn["weight"][on],
                        "delay": syn["delay"][on]}
                nest.Connect(src_ids[on], tgt_ids[on], "one_to_one", syn_spec=spec)
        if proj.rule is not None:
            plastic[pname] = (pre_nodes, post_nodes, syn, factor, lag, pre_events)
    noises = _noise_inputs(nest, plan, nodes)
    if noises and n_steps:
        _load_noise(noises, 0, min(_noise_chunk(noises), n_steps), k, dt)
    recorder = None                        # one for every spiking population: output, guard, weight read-back
    if plan.spiking_dyn:
        recorder = nest.Create("spike_recorder")
        for name in plan.spiking_dyn:
            nest.Connect(nodes[name], recorder)
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
    sample_times = list(range(0, n_steps, sample_steps)) if sample_steps else []
    weight_probes = [p for p in plan.sampled if isinstance(p, WeightProbe)]
    # rewards reach NEST through one relay per rewarded signal, built before the run: its generator's spike
    # times are replaced after each scan (under MPI, rewards sent through nodes created between runs change
    # NEST's dopamine weights: docs/cluster.md)
    relays = {mod: reward_relay(nest, vts[mod], dt) for mod in sorted({r.modulator for r in net.rewards.values()})}
    rewarded: dict[str, list[tuple[int, int]]] = {mod: [] for mod in relays}
    t_loop = time.perf_counter()
    if plan.deliver_steps > 1:            # frozen neurons until the lead-in proper (nothing moves)
        a, b = nest.Create("parrot_neuron", 2)          # NEST's min_delay is one step, so the interval is exact
        nest.Connect(a, b, syn_spec={"delay": dt * MS})
        for vt in vts.values():
            vt.set(deliver_interval=plan.deliver_steps)
        for name in nodes:
            nodes[name].set(frozen=True)
        nest.Simulate((k - SHIFT_STEPS) * dt * MS)
        for name in nodes:
            nodes[name].set(frozen=False)
    now = k - SHIFT_STEPS                 # NEST's time (steps)
    starts = {name: nm.start for name, nm in plan.models.items() if nm.start is not None}
    if starts:                            # the input-free lead-in, then plastinet's initial states
        nest.Simulate(SHIFT_STEPS * dt * MS)
        now = k
        for name, start in starts.items():
            nodes[name].set(start)
    # stops (NEST steps; kind, step or sample, probe): reward scans (every chunk), noise refills, the end of
    # the run (n + k + 2, where dopamine weights are read, with dopamine synapses only), the steps delivering
    # the last source spikes, and weight samples (below); without them the run is one nest.Simulate call
    stops: dict[int, set] = {}
    scanner = RewardScanner(net.rewards, plan.streams.rewards, dt) if net.rewards else None
    if scanner is not None:
        for s1 in range(scanner.chunk_steps(), n_steps + scanner.chunk_steps(), scanner.chunk_steps()):
            stops.setdefault(min(s1, n_steps) + k, set()).add(("rewards", min(s1, n_steps), ""))
    if noises:                            # refill the noise generators a step before their next draws
        for s0 in range(_noise_chunk(noises), n_steps, _noise_chunk(noises)):
            stops.setdefault(s0 + k - 1, set()).add(("noise", s0, ""))
    if any(isinstance(p.proj.rule, DopamineSTDP) for p in plan.projs.values()):
        stops.setdefault(n_steps + k + 2, set()).add(("end", n_steps, ""))
    max_delay = max((int(p.steps.max()) for p in plan.projs.values() if p.steps.size), default=0)
    stops.setdefault(n_steps + k + 2 + max_delay, set())
    # weight samples: dopamine synapses (and static ones) are read at s + k + 2, where NEST has brought them
    # up to date; NEST holds another plastic weight as plastinet's at the end of step s once it has delivered
    # the presynaptic relay spikes of the arrivals up to s (stamped s + k + 2 for injected trains, s - D + k
    # onto neurons) and no later ones: snapshot its weights then, complete them after the run
    for probe in weight_probes:
        p = plan.projs[probe.projection]
        if probe.projection in plastic and not isinstance(p.proj.rule, DopamineSTDP):
            off = 2 if p.proj.target == "none" else -int(p.steps.min(initial=0))
            for i, s in enumerate(sample_times):
                stops.setdefault(s + k + 1 + off, set()).add(("snapshot", i, probe.name))
        else:
            for i, s in enumerate(sample_times):
                stops.setdefault(s + k + 2, set()).add(("sample", i, probe.name))
    scanned = 0
    weight_rows: dict[str, list] = {p.name: [None] * len(sample_times) for p in weight_probes}
    snapshots: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    dopamine_final: dict[str, np.ndarray] = {}
    for stop in sorted(stops):
        if stop > now:
            nest.Simulate((stop - now) * dt * MS)
            now = stop
        for kind, s, name in sorted(stops[stop]):
            if kind == "rewards" and s > scanned:
                fired = _fired(nest, plan, recorder, nodes, scanned, s, comm)
                earned = [r for r in scanner.scan(fired) if r[0] < n_steps]
                for due, mod, amount in earned:
                    rewarded[mod].append((due, multiplicity(amount, signal_unit(net, mod))))
                    signal_events[mod].append((np.array([due]), amount))
                for mod in {mod for _, mod, _ in earned}:       # the rewards still to come (NEST stamp > now)
                    due_steps, mult = np.array(rewarded[mod], dtype=np.int64).reshape(-1, 2).T
                    ahead = due_steps + k > now
                    schedule_spikes(relays[mod], due_steps[ahead], mult[ahead], dt, k)
                scanned = s
            elif kind == "noise":
                _load_noise(noises, s, min(s + _noise_chunk(noises), n_steps), k, dt)
            elif kind == "sample":
                weight_rows[name][s] = _read_weights(nest, plan, plastic, net.probes[name].projection, comm)
            elif kind == "snapshot":
                pname = net.probes[name].projection
                snapshots[s, name] = _connections(nest, plan.projs[pname], *plastic[pname][:3], comm)
            elif kind == "end":            # NEST integrates these weights to the end of every run
                dopamine_final = {pname: _read_weights(nest, plan, plastic, pname, comm) for pname in plastic
                                  if isinstance(plan.projs[pname].proj.rule, DopamineSTDP)}
    loop_time = time.perf_counter() - t_loop
    fired = _fired(nest, plan, recorder, nodes, 0, n_steps, comm)
    for (i, name), conns in snapshots.items():
        upto, pname = sample_times[i], net.probes[name].projection
        before = {pop: (st[st <= upto], ix[st <= upto]) for pop, (st, ix) in fired.items()}
        weight_rows[name][i] = _final_weights(plan.projs[pname], *plastic[pname], before, dt, upto=upto, conns=conns)
    spikes = {pop: [fired[pop]] for pop in plan.spike_pops}
    counts = {name: np.bincount(fired[name][1], minlength=net.populations[name].n) for name in plan.spiking_dyn}
    samples: dict[str, list[np.ndarray]] = {p.name: [] for p in plan.sampled}
    for probe in plan.sampled:
        if isinstance(probe, WeightProbe):
            samples[probe.name] = weight_rows[probe.name]
            continue
        if isinstance(probe, ModulatorProbe):
            mod = net.modulators[probe.modulator]
            sent = [(fired[st][0], size) if isinstance(st, str) else (st, size)
                    for st, size in signal_events[probe.modulator]]
            samples[probe.name] = [np.array(v) for v in signal_levels(sent, mod.tau, dt, sample_times)]
            continue
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
    final_w = {pname: dopamine_final[pname] if pname in dopamine_final
               else _final_weights(plan.projs[pname], *args, fired, dt,
                                   conns=_connections(nest, plan.projs[pname], *args[:3], comm))
               for pname, args in plastic.items()}
    states = []
    for name, nm in plan.models.items():
        for var, (nest_var, fac) in nm.variables.items():
            if var == "v":
                got = gather_arrays(comm, local_node_values(nodes[name], nest_var))
                v = in_node_order(got["ids"], got["values"], nodes[name].tolist()[0], len(nodes[name]))
                states.append(("population", name, var, v * fac))
    states += [("projection", name, "w", w) for name, w in final_w.items()]
    return SimpleNamespace(network=net, dt=dt, _spikes=spikes, sampled=plan.sampled, _samples=samples,
                           _sample_times=sample_times, projs=plan.projs, final_w=final_w, states=states,
                           counts=counts, loop_time=loop_time)


def _fired(nest: Any, plan: SimpleNamespace, recorder: Any, nodes: dict, s0: int, s1: int, comm: Any
           ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Spikes (steps, indices, sorted) of every population in plastinet steps ``[s0, s1)``.

    ``recorder`` records every spiking neuron population (None: there is none). Under MPI
    each rank records the spikes of the neurons it hosts: those of ``[s0, s1)`` are gathered
    (``comm``), so that every rank sees them all (and scans rewards alike).
    """
    out = {}
    for name, (st, ix) in plan.events.items():
        keep = (st >= s0) & (st < s1)
        out[name] = (st[keep], ix[keep])
    if recorder is None:
        return out
    ev = recorder.events
    st = np.rint(np.asarray(ev["times"]) / (plan.dt * MS)).astype(np.int64) - 1 - plan.k
    keep = (st >= s0) & (st < s1)
    got = gather_arrays(comm, {"st": st[keep], "ids": np.asarray(ev["senders"], dtype=np.int64)[keep]})
    order = np.lexsort((got["ids"], got["st"]))
    st, ids = got["st"][order], got["ids"][order]
    for name in plan.spiking_dyn:
        first = int(nodes[name].tolist()[0])
        mine = (ids >= first) & (ids < first + len(nodes[name]))
        out[name] = (st[mine], ids[mine] - first)
    return out


def _volume_transmitters(nest: Any, plan: SimpleNamespace, nodes: dict, n_steps: int
                         ) -> tuple[dict[str, Any], dict[str, list]]:
    """One volume transmitter per SpikeSignal, fed with its source populations' spikes.

    Source populations' spikes go through spike generators; neurons connect to it directly
    (their stamp ``s + 1 + k`` plus one step), once per unit of the signal's increment.
    Returns the transmitters and the events sent by signal: (steps, size), or (population
    name, size) for neurons, whose spikes are known after the run.
    """
    net, dt, k = plan.network, plan.dt, plan.k
    vts, sent = {}, {}
    for name, mod in net.modulators.items():
        vt = vts[name] = nest.Create("volume_transmitter")
        sent[name] = []
        if not mod.increment:
            continue
        m = multiplicity(mod.increment, signal_unit(net, name))
        for src in mod.sources:
            if src in plan.events:
                st = plan.events[src][0]
                st = st[st < n_steps]
                if st.size:
                    schedule_spikes(reward_relay(nest, vt, dt), st, m, dt, k)
                sent[name].append((st, mod.increment))
            else:
                for _ in range(m):
                    nest.Connect(nodes[src], vt, syn_spec={"delay": dt * MS})
                sent[name].append((src, mod.increment))
    return vts, sent


#: Noise draws handed to NEST at once (values), so that long runs refill the generators in chunks.
NOISE_BLOCK_VALUES = 2 ** 22


def _noise_inputs(nest: Any, plan: SimpleNamespace, nodes: dict) -> list[tuple[Any, NoiseInput, float, int]]:
    """One spike generator per neuron of every :class:`NoiseCurrent`, connected (no spikes yet).

    A draw at step ``s`` enters the input as a spike of that weight delivered at ``s`` would:
    generator time ``(s + k) dt``, delay ``1 + input_steps``; :func:`_load_noise` fills them.
    """
    net, dt = plan.network, plan.dt
    out = []
    for name, spec in net.noises.items():
        nm, n = plan.models[spec.population], net.populations[spec.population].n
        gens = nest.Create("spike_generator", n)
        nest.Connect(gens, nodes[spec.population], "one_to_one",
                     syn_spec={"weight": 1.0, "delay": (1 + nm.input_steps) * dt * MS})
        out.append((gens, NoiseInput(spec, n, plan.streams.noises[name]), nm.receptors[spec.target][1], n))
    return out


def _noise_chunk(noises: list) -> int:
    """Steps of noise handed to NEST at once."""
    return max(1, NOISE_BLOCK_VALUES // max(n for *_, n in noises))


def _load_noise(noises: list, s0: int, s1: int, k: int, dt: float) -> None:
    """plastinet's noise draws of steps ``[s0, s1)`` as the generators' next spikes (weights)."""
    times = ((np.arange(s0, s1) + k) * dt * MS).tolist()
    for gens, draws, factor, n in noises:
        x = draws.draws(s0, s1) * factor
        gens.set([{"spike_times": times, "spike_weights": x[:, i].tolist()} for i in range(n)])


def _ordered(nest: Any, p: Any, pre_nodes: Any, post_nodes: Any, model: str, keys: tuple[str, ...], comm: Any
             ) -> list[np.ndarray]:
    """Connection properties ``keys`` of a plastic projection in plastinet's synapse order.

    Synapses are matched by (pre, post); NEST sorts connections by source, so several
    synapses of one pair (multapses) are told apart by the model copy of their rank. Under
    MPI each rank holds the synapses onto its neurons: they are gathered (``comm``) first.
    """
    rank = _pair_rank(p)
    out = [np.empty(rank.size) for _ in keys]
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        on = np.flatnonzero(rank == r)
        got = gather_arrays(comm, connection_arrays(nest.GetConnections(synapse_model=_rank_model(model, r)),
                                                    ("source", "target", *keys)))
        src = got["source"] - int(pre_nodes.tolist()[0])
        tgt = got["target"] - int(post_nodes.tolist()[0])
        key = src * p.n_post + tgt
        order = np.argsort(key)
        pos = order[np.searchsorted(key[order], p.pre[on] * p.n_post + p.post[on])]
        for arr, name in zip(out, keys):
            arr[on] = got[name][pos]
    return out


def _pair_rank(p: Any) -> np.ndarray:
    """How many earlier synapses of the projection join the same (pre, post) pair (0 without multapses)."""
    key = p.pre.astype(np.int64) * p.n_post + p.post
    order = np.argsort(key, kind="stable")
    sk = key[order]
    first = np.r_[True, sk[1:] != sk[:-1]] if sk.size else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(first)
    rank = np.empty(key.size, dtype=np.int64)
    rank[order] = np.arange(sk.size) - np.repeat(starts, np.diff(np.r_[starts, sk.size]))
    return rank


def _rank_model(model: str, rank: int) -> str:
    return model if rank == 0 else f"{model}_multapse{rank}"


def _read_weights(nest: Any, plan: SimpleNamespace, plastic: dict, pname: str, comm: Any) -> np.ndarray:
    """A projection's weights now (static: the initial ones; dopamine synapses: integrated to now)."""
    p = plan.projs[pname]
    if pname not in plastic:
        return p.w.copy()
    pre_nodes, post_nodes, syn, factor = plastic[pname][:4]
    return _ordered(nest, p, pre_nodes, post_nodes, syn["synapse_model"], ("weight",), comm)[0] / factor


def _connections(nest: Any, p: Any, pre_nodes: Any, post_nodes: Any, syn: dict, comm: Any
                 ) -> tuple[np.ndarray, np.ndarray]:
    """NEST's weights and presynaptic traces ``Kplus`` of a projection, in plastinet's synapse order."""
    w, kplus = _ordered(nest, p, pre_nodes, post_nodes, syn["synapse_model"], ("weight", "Kplus"), comm)
    return w, kplus


def _final_weights(p: Any, pre_nodes: Any, post_nodes: Any, syn: dict, factor: float, lag: np.ndarray,
                   pre_events: tuple[np.ndarray, np.ndarray] | None, fired: dict, dt: float, *,
                   conns: tuple[np.ndarray, np.ndarray], upto: int | None = None) -> np.ndarray:
    """Weights in plastinet's synapse order from NEST's (``conns``: weights, ``Kplus``), with NEST's
    pending potentiation applied; ``upto``: a sample at the end of that step (``fired`` cut there).

    NEST's ``stdp_synapse`` potentiates for postsynaptic spikes only when the next
    presynaptic spike arrives; plastinet potentiates at the postsynaptic spike. Postsynaptic
    spikes after a synapse's last presynaptic spike are therefore applied here, with NEST's
    own trace ``Kplus`` and update (capped at ``Wmax``).
    """
    w, kplus = conns[0].copy(), conns[1]
    # pending potentiation: post spikes after the last (delayed) pre spike, in plastinet steps
    proj = p.proj
    rule = proj.rule
    # the presynaptic spikes NEST's synapses received (a neuron population's: those it fired)
    pre_steps, pre_idx = fired[proj.pre.name] if pre_events is None else pre_events
    if upto is not None:       # a sample: the presynaptic spikes that have arrived by then
        arrived = pre_steps + int(p.steps.min(initial=0)) <= upto
        pre_steps, pre_idx = pre_steps[arrived], pre_idx[arrived]
    last_pre = np.full(proj.pre.n, -(2 ** 62), dtype=np.int64)
    np.maximum.at(last_pre, pre_idx, pre_steps)
    post_steps, post_idx = fired[proj.post.name]
    # ``lag``: how many steps later than plastinet NEST sees the post spikes of each synapse
    # relative to its presynaptic spikes (spike stamps, dendritic delays; 0 on injected trains)
    tau_pre = rule.tau if isinstance(rule, InhibitorySTDP) else rule.tau_plus      # the presynaptic trace
    # the increments are >= 0, so capping after each equals capping their sum once
    by_post = np.argsort(p.post, kind="stable")
    bounds = np.searchsorted(p.post[by_post], np.arange(proj.post.n + 1))
    order = np.argsort(post_idx, kind="stable")
    spike_bounds = np.searchsorted(post_idx[order], np.arange(proj.post.n + 1))
    for j in range(proj.post.n):
        own = post_steps[order[spike_bounds[j]:spike_bounds[j + 1]]]
        mine = by_post[bounds[j]:bounds[j + 1]]
        t_last = last_pre[p.pre[mine]]
        has_pre = t_last > -(2 ** 61)
        if not own.size or not has_pre.any():
            continue
        mine, t_last, lags = mine[has_pre], t_last[has_pre], lag[mine[has_pre]]
        first = np.searchsorted(own, (t_last - lags).min(), side="right")    # posts pending somewhere
        if first == own.size:
            continue
        amp = _potentiation_amplitudes(rule, syn, own, dt)[first:]    # per post spike, before the trace Kplus
        gap = own[first:][None, :] + lags[:, None] - t_last[:, None]
        total = (np.where(gap > 0, np.exp(-np.maximum(gap, 0) * dt / tau_pre), 0.0) * amp).sum(axis=1)
        mag = np.minimum(np.abs(w[mine]) + kplus[mine] * total, abs(syn["Wmax"]))
        w[mine] = np.copysign(mag, syn["Wmax"])
    return w / factor


def _potentiation_amplitudes(rule: Any, syn: dict, posts: np.ndarray, dt: float) -> np.ndarray:
    """NEST's potentiation per unit of the presynaptic trace at each postsynaptic spike ``posts``."""
    if isinstance(rule, PairSTDP):                  # stdp_synapse
        return np.full(posts.size, syn["lambda"] * syn["Wmax"])
    if isinstance(rule, InhibitorySTDP):            # vogels_sprekeler_synapse
        return np.full(posts.size, syn["eta"])
    # stdp_triplet_synapse: Aplus + Aplus_triplet * (post triplet trace just before the spike)
    before = np.zeros(posts.size)
    decay = np.exp(-np.diff(posts) * dt / rule.tau_y)
    for k in range(1, posts.size):
        before[k] = (before[k - 1] + 1.0) * decay[k - 1]
    return syn["Aplus"] + syn["Aplus_triplet"] * before
