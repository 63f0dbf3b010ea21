"""Plastic spiking networks (:class:`plastinet.spiking.Network`) lowered to Brian2.

The lowering follows the numpy engine's step-order contract
(:mod:`plastinet.spiking.engine`) slot by slot; ``docs/backends.md`` has the full table.

==============  =========================================================================
slot / order    Brian2 object
==============  =========================================================================
``groups``      ``run_regularly`` of each dynamic population: exact propagators (LIF,
                RateUnits), Euler / exponential Euler (ConductanceLIF), refractory hold
``thresholds``  ``NeuronGroup`` thresholds, ``SpikeGeneratorGroup`` / ``PoissonGroup``
``synapses``    in this order: rewards due (``network_operation``) and modulator source
                spikes (``Synapses`` onto the modulator group); dopamine synapses
                integrated up to ``t`` when their modulator jumps; the jump; the
                modulator value; pre pathways sorted by projection name; per-step rules
                (``run_regularly``); post pathways sorted by projection name
``resets``      ``NeuronGroup`` resets (``v = v_reset``, refractory counter)
``end``         coincidence rewards scheduled (``network_operation``); monitors
==============  =========================================================================

Connectivity, initial weights and (by default) Poisson spikes are drawn exactly as the
numpy engine draws them for the same seed (the engine's own constructor is used), so both
backends simulate the very same network and input spike trains.
"""

from __future__ import annotations

import heapq
import math
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from plastinet.backends.brian2.session import brian2_run, run_network
from plastinet.backends.brian2.spiking_code import NEVER, population_code, population_namespace, projection_code
from plastinet.errors import RangeError, UnsupportedError, ValidationError
from plastinet.results import finalize_dataset
from plastinet.spiking.engine import Simulator as _EngineSimulator
from plastinet.spiking.engine import check_final_states
from plastinet.spiking.network import (
    ModulatorProbe,
    Network,
    PoissonGroup,
    ProgrammedSignal,
    StateProbe,
    WeightProbe,
)
from plastinet.spiking.recordings import build_dataset
from plastinet.units import to_si

__all__ = ["simulate", "POISSON_MODES", "STEP_ORDER"]

POISSON_MODES = ("replay", "brian2")
STEP_ORDER = "groups,thresholds,synapses(mod,pre,continuous,post),resets,end"

# orders inside the ``synapses`` slot (Brian2 sorts by order, then name)
_REWARD, _MODSRC, _DOPA_ALL, _JUMP, _MVAL = -5_000_000, -4_000_000, -3_000_000, -2_000_000, -1_500_000
_PRE, _CONT, _POST = -1_000_000, 0, 1_000_000


def unsupported_reason(network: Network, target: str) -> str | None:
    """Why ``network`` cannot be lowered for ``target`` (None when it can)."""
    if target == "cpp_standalone" and network.rewards:
        names = ", ".join(sorted(network.rewards))
        return (f"CoincidenceReward ({names}) needs Python-side callbacks (random reward delays "
                "scheduled at run time), which target='cpp_standalone' cannot run; use 'numpy' or 'cython'")
    return None


def simulate(network: Network, duration: Any, *, dt: Any = 1e-4, seed: int | None = None,
             target: str = "numpy", progress: bool = False, poisson: str = "replay",
             on_numerical: str = "raise", max_rate: Any = None) -> xr.Dataset:
    """Simulate ``network`` with Brian2; same contract and Dataset layout as the numpy engine.

    Parameters
    ----------
    network : Network
        The specification.
    duration : float or str
        Biological time (s), rounded to whole steps.
    dt : float or str
        Time step (s) of the one explicit ``Clock`` shared by every Brian2 object (the
        default clock is not touched); probes sample on a second clock.
    seed : int or None
        Seed; connectivity, initial weights, rewards' delays and (``poisson="replay"``)
        Poisson spikes are drawn exactly as by the numpy engine with this seed.
    target : {"numpy", "cython", "cpp_standalone"}
        Brian2 code-generation target (recorded as the ``brian2_target`` attr).
    progress : bool
        Brian2's text progress report.
    poisson : {"replay", "brian2"}
        ``"replay"``: Poisson spikes drawn by the numpy engine's streams and fed through
        ``SpikeGeneratorGroup`` (identical spikes to the numpy engine); ``"brian2"``:
        Brian2's own ``PoissonGroup`` seeded with ``seed`` (same statistics, other spikes).
    on_numerical : {"raise", "warn"}
        Numerical guard after the run (read-back states, weights, samples and spike
        counts): raise :class:`~plastinet.errors.NumericalError` or warn, naming the
        population or projection, the variable and the time.
    max_rate : float or str or None
        Runaway limit (Hz) of the mean rate of any LIF neuron over the run (default
        ``0.5 / dt``), as in :class:`plastinet.spiking.Simulator`.

    Raises
    ------
    UnsupportedError
        For features that cannot be lowered for ``target`` (the reason names them).
    NumericalError
        With ``on_numerical="raise"``, for non-finite states or runaway rates.
    """
    if poisson not in POISSON_MODES:
        raise UnsupportedError("brian2 backend", "poisson", poisson, "allowed: " + ", ".join(POISSON_MODES))
    if not isinstance(network, Network):
        raise ValidationError("brian2 backend", "network", network, "expected a spiking Network")
    reason = unsupported_reason(network, target)
    if reason:
        raise UnsupportedError("brian2 backend", "target", target, reason)
    ref = _EngineSimulator(network, dt=dt, seed=seed,        # validation, streams, connectivity
                           on_numerical=on_numerical, max_rate=max_rate)
    dt = ref.dt
    duration = to_si(duration, "s", name="duration", owner="brian2 backend")
    if not duration >= 0 or not math.isfinite(duration):
        raise RangeError("brian2 backend", "duration", duration, "expected a duration >= 0 s")
    n_steps = int(round(duration / dt))
    for probe in network.probes.values():
        if isinstance(probe, StateProbe) and probe.population not in ref.dyn:
            raise ValidationError("StateProbe", "population", probe.population,
                                  "state can only be recorded from LIF, ConductanceLIF or RateUnits")
    rng_state = np.random.get_state()
    t0 = time.perf_counter()
    try:
        with brian2_run(target) as b2:
            with np.errstate(over="ignore", invalid="ignore"):      # the numerical guard reports instead
                rec = _build_and_run(b2, ref, network, n_steps, dt, seed, target, progress, poisson)
            version = b2.__version__
    finally:
        np.random.set_state(rng_state)
    wall = time.perf_counter() - t0
    check_final_states(ref, "brian2 backend", n_steps, rec.states, rec._samples, rec._sample_times, rec.counts)
    ds = build_dataset(rec, rec.final_w)
    return finalize_dataset(ds, backend="brian2", backend_version=version, dt=dt, seed=ref.seed,
                            model_spec=network.to_dict(), t_start=0.0, t_stop=n_steps * dt,
                            step_order=STEP_ORDER, brian2_target=target, poisson=poisson,
                            wall_time=wall, run_loop_time=rec.loop_time)


# --------------------------------------------------------------------------------------

def _build_and_run(b2: Any, ref: Any, net: Network, n_steps: int, dt: float, seed: int | None,
                   target: str, progress: bool, poisson: str) -> SimpleNamespace:
    DT = b2.second * dt
    # one explicit clock for every object (never the default clock): Brian2's run loop then
    # advances one clock per step instead of one per object
    clock = b2.Clock(DT, name="plastinet_step")
    objects: list[Any] = []
    groups: dict[str, Any] = {}
    if poisson == "brian2":
        b2.seed(ref.seed % (2 ** 32))
    uses_gi = {(p.proj.post.name) for p in ref.projs.values() if p.target == "g_i"}
    # ---- populations
    for name, pop in net.populations.items():
        if name in ref.dyn:
            code = population_code(pop, name in uses_gi, getattr(ref.dyn[name], "ref_steps", 0) > 0)
            ns = {**population_namespace(pop, ref.dyn[name]), "DT": dt}
            g = b2.NeuronGroup(pop.n, code["model"], threshold=code["threshold"], reset=code["reset"],
                               clock=clock, namespace=ns, name=f"pop_{name}")
            g.run_regularly(code["update"], when="groups", clock=clock, name=f"pop_{name}_update")
            # the model has no differential equations (the update above integrates it):
            # Brian2's state updater would run empty code every step
            g.state_updater.active = False
            state = ref.dyn[name]
            if hasattr(state, "v"):
                g.v = state.v
            objects.append(g)
        elif isinstance(pop, PoissonGroup) and poisson == "brian2":
            sched = pop.rate_schedule()
            if sched.shape[0] == 1:
                g = b2.PoissonGroup(pop.n, rates=sched[0] * b2.Hz, clock=clock, name=f"pop_{name}")
            else:
                ta = b2.TimedArray(sched * b2.Hz, dt=pop.rate_interval * b2.second)
                g = b2.PoissonGroup(pop.n, rates=f"rates_{name}(t, i)", clock=clock, name=f"pop_{name}",
                                    namespace={f"rates_{name}": ta})
            objects.append(g)
        else:  # spike generators, and Poisson spikes replayed from the engine's streams
            steps, idx = ref.sources[name].events(0, max(n_steps, 1))
            g = b2.SpikeGeneratorGroup(pop.n, idx.astype(np.int64), (steps * dt) * b2.second, clock=clock,
                                       name=f"pop_{name}")
            objects.append(g)
        groups[name] = g
    # ---- modulators
    mgroups: dict[str, Any] = {}
    src_order: dict[str, list[str]] = {m: [] for m in net.modulators}
    for src, mods in ref.mod_sources.items():
        for m in mods:
            src_order[m].append(src)
    for rank, (name, mod) in enumerate(net.modulators.items()):
        if isinstance(mod, ProgrammedSignal):
            # segment k = step // SEG, looked up at the exact time k seconds of a 1 s TimedArray
            ta = b2.TimedArray(np.r_[mod.values, 0.0], dt=b2.second)
            g = b2.NeuronGroup(1, "m : 1", clock=clock, namespace={"prog": ta, "SEG": ref.mods[name].seg,
                                                             "one_second": b2.second},
                               name=f"mod_{name}")
            g.run_regularly("m = prog((t_in_timesteps // SEG) * one_second)", when="synapses",
                            order=_MVAL + rank, clock=clock, name=f"mod_{name}_value")
        else:
            srcs = src_order[name]
            model = ["mval : 1", "mlast : integer", "mpend : 1", "mnev : 1", "m : 1"]
            model += [f"cnt_{k} : 1" for k in range(len(srcs))]
            amount = "mpend" + "".join(f" + cnt_{k} * inc" for k in range(len(srcs)))
            ns = {"DT": dt, "tau": mod.tau, "inc": mod.increment}
            g = b2.NeuronGroup(1, "\n".join(model), clock=clock, namespace=ns, name=f"mod_{name}")
            jump = ["ev = int(mnev > 0)",
                    f"mval = ev * (mval * exp(-((t_in_timesteps - mlast) * DT) / tau) + {amount}) + (1 - ev) * mval",
                    "mlast = ev * t_in_timesteps + (1 - ev) * mlast", "mpend = 0.0", "mnev = 0.0"]
            jump += [f"cnt_{k} = 0.0" for k in range(len(srcs))]
            g.run_regularly("\n".join(jump), when="synapses", order=_JUMP + rank, clock=clock, name=f"mod_{name}_jump")
            g.run_regularly("m = mval * exp(-((t_in_timesteps - mlast) * DT) / tau)", when="synapses",
                            order=_MVAL + rank, clock=clock, name=f"mod_{name}_value")
            for k, src in enumerate(srcs):
                s = b2.Synapses(groups[src], g, on_pre=f"cnt_{k}_post += 1.0\nmnev_post += 1.0", clock=clock,
                                name=f"modsrc_{name}_{k}")
                s.connect(i=np.arange(net.populations[src].n), j=np.zeros(net.populations[src].n, dtype=int))
                s.pre.order = _MODSRC + rank * 1000 + k
                objects.append(s)
        objects.append(g)
        mgroups[name] = g
    # ---- projections (ref.projs is sorted by name: the engine's and our pathway order)
    syns: dict[str, Any] = {}
    for rank, (name, p) in enumerate(ref.projs.items()):
        code = projection_code(p)
        ns = {**code["namespace"], "DT": dt}
        if p.rule_name == "DopamineSTDP":
            ns["em1"] = _expm1(b2)
        kw: dict[str, Any] = {}
        if code["on_pre"]:
            kw["on_pre"] = code["on_pre"]
        if code["on_post"]:
            kw["on_post"] = code["on_post"]
        s = b2.Synapses(groups[p.proj.pre.name], groups[p.proj.post.name], code["model"], clock=clock,
                        namespace=ns, name=f"proj_{name}", **kw)
        s.connect(i=p.pre, j=p.post)
        s.w = p.w
        for var in ("lx", "ly", "lr", "lo", "lkp", "lkm", "l_s"):
            if var in s.variables:
                setattr(s, var, NEVER)
        if p.stp is not None:
            s.R_s = 1.0
        if "midx" in s.variables:
            s.midx = 0
            mg = mgroups[p.rule.modulator]
            if p.rule_name == "DopamineSTDP":
                s.mval = b2.linked_var(mg, "mval", index="midx")
                s.mlast = b2.linked_var(mg, "mlast", index="midx")
                s.mnev = b2.linked_var(mg, "mnev", index="midx")
            else:
                s.m = b2.linked_var(mg, "m", index="midx")
        if code["on_pre"]:
            s.pre.order = _PRE + rank
        if code["on_post"]:
            s.post.order = _POST + rank
        if code["continuous"]:
            order = _DOPA_ALL + rank if p.rule_name == "DopamineSTDP" else _CONT + rank
            objects.append(s.run_regularly(code["continuous"], when="synapses", order=order, clock=clock,
                                           name=f"proj_{name}_step"))
        objects.append(s)
        syns[name] = s
    # ---- coincidence rewards (Python-side, runtime targets only)
    if net.rewards:
        objects += _reward_operations(b2, ref, net, groups, mgroups, dt, clock)
    # ---- probes
    spike_mons = {pop: b2.SpikeMonitor(groups[pop], name=f"spikes_{pop}") for pop in ref.spike_pops}
    objects += list(spike_mons.values())
    # spike counts for the runaway guard: the spike probe's monitor where there is one (an
    # extra monitor costs a code object per step), else a count-only monitor
    count_mons = {pop: spike_mons[pop] if pop in spike_mons else
                  b2.SpikeMonitor(groups[pop], record=False, name=f"count_{pop}") for pop in ref.spiking_dyn}
    objects += [mon for pop, mon in count_mons.items() if pop not in spike_mons]
    state_mons: dict[str, Any] = {}
    S = ref.sample_steps
    sample_clock = b2.Clock(S * DT, name="plastinet_sample") if ref.sampled else None
    for probe in ref.sampled:
        if isinstance(probe, StateProbe):
            rec = True if probe.indices is None else np.asarray(probe.indices)
            mon = b2.StateMonitor(groups[probe.population], probe.variable, record=rec, when="end",
                                  clock=sample_clock, name=f"probe_{probe.name}")
        elif isinstance(probe, WeightProbe):
            p = ref.projs[probe.projection]
            var = "w"
            if p.rule_name == "DopamineSTDP":
                var = "w_now"
                objects.append(syns[probe.projection].run_regularly(
                    projection_code(p)["w_now"], when="end", order=-10, clock=sample_clock,
                    name=f"probe_{probe.name}_now"))
            mon = b2.StateMonitor(syns[probe.projection], var, record=True, when="end", clock=sample_clock,
                                  name=f"probe_{probe.name}")
        else:
            mon = b2.StateMonitor(mgroups[probe.modulator], "m", record=True, when="end", clock=sample_clock,
                                  name=f"probe_{probe.name}")
        state_mons[probe.name] = mon
        objects.append(mon)
    network = b2.Network(*objects)
    run_network(network, n_steps * DT, namespace={}, report="text" if progress else None)
    loop_time = float(getattr(b2.get_device(), "_last_run_time", float("nan")))   # the time-step loop
    # ---- read back
    spikes: dict[str, list] = {}
    for pop, mon in spike_mons.items():
        st = np.rint(np.asarray(mon.t_[:]) / dt).astype(np.int64)
        ii = np.asarray(mon.i[:]).astype(np.int64)
        o = np.lexsort((ii, st))
        spikes[pop] = [(st[o], ii[o])]
    samples: dict[str, list] = {}
    times: list[int] = []
    for probe in ref.sampled:
        mon = state_mons[probe.name]
        var = probe.variable if isinstance(probe, StateProbe) else (
            "w_now" if isinstance(probe, WeightProbe) and ref.projs[probe.projection].rule_name == "DopamineSTDP"
            else ("w" if isinstance(probe, WeightProbe) else "m"))
        vals = np.asarray(getattr(mon, var + "_") if hasattr(mon, var + "_") else getattr(mon, var))
        tt = np.rint(np.asarray(mon.t_[:]) / dt).astype(np.int64)
        if isinstance(probe, ModulatorProbe):
            samples[probe.name] = [np.array(vals[0, k]) for k in range(tt.size)]
        else:
            samples[probe.name] = [np.array(vals[:, k]) for k in range(tt.size)]
        times = tt.tolist()
    final_w: dict[str, np.ndarray] = {}
    for name, p in ref.projs.items():
        if p.rule is None:
            continue
        s = syns[name]
        w = np.array(s.w[:], dtype=np.float64)
        if p.rule_name == "DopamineSTDP":
            mg = mgroups[p.rule.modulator]
            c = np.array(s.c[:], dtype=np.float64)
            tl = np.array(s.tl[:], dtype=np.int64)
            mval, mlast = float(mg.mval[0]), int(mg.mlast[0])
            rule = p.rule
            delta = (n_steps - tl) * dt
            n0 = mval * np.exp(-((tl - mlast) * dt) / p.mod.tau)
            w = w + c * (n0 * p.tau_s * -np.expm1(-delta / p.tau_s)
                         - rule.b * rule.tau_c * -np.expm1(-delta / rule.tau_c))
            if p.bounded:
                np.clip(w, p.w_min, p.w_max, out=w)
        final_w[name] = w
    # final states for the numerical guard
    states = [("population", name, var, np.asarray(getattr(groups[name], var)[:], dtype=np.float64))
              for name, pop in net.populations.items() if name in ref.dyn
              for var in pop.variables if var in groups[name].variables]
    states += [("projection", name, "w", w) for name, w in final_w.items()]
    counts = {pop: np.asarray(mon.count[:], dtype=np.int64) for pop, mon in count_mons.items()}
    return SimpleNamespace(network=net, dt=dt, _spikes=spikes, sampled=ref.sampled, _samples=samples,
                           _sample_times=times, projs=ref.projs, final_w=final_w, loop_time=loop_time,
                           states=states, counts=counts)


def _expm1(b2: Any) -> Any:
    """``expm1`` without Brian2's per-call unit check (which formats the array: slow on numpy)."""
    f = b2.Function(np.expm1, arg_units=[1], return_unit=1, arg_names=["x"])
    f.implementations.add_implementation("numpy", code=np.expm1)
    f.implementations.add_implementation("cython", code="", name="expm1")
    f.implementations.add_implementation("cpp", code="", name="expm1")
    return f


def _reward_operations(b2: Any, ref: Any, net: Network, groups: dict, mgroups: dict, dt: float,
                       clock: Any) -> list:
    """CoincidenceReward as two network operations (delivery in ``synapses``, detection in ``end``)."""
    queue: list[tuple[int, int, str, float]] = []
    counter = [0]
    last_spike = {r.pre: np.full(net.populations[r.pre].n, -(2 ** 40), dtype=np.int64)
                  for r in net.rewards.values()}

    def step_now() -> int:
        return int(clock.timestep[:])

    @b2.network_operation(clock=clock, when="synapses", order=_REWARD, name="rewards_deliver")
    def deliver() -> None:
        s = step_now()
        while queue and queue[0][0] == s:
            _, _, mod, amount = heapq.heappop(queue)
            g = mgroups[mod]
            g.mpend[0] = float(g.mpend[0]) + amount
            g.mnev[0] = float(g.mnev[0]) + 1.0

    @b2.network_operation(clock=clock, when="end", order=-1000, name="rewards_detect")
    def detect() -> None:
        s = step_now()
        spk = {name: np.asarray(groups[name].spikes) for name in
               {r.post for r in net.rewards.values()} | set(last_spike)}
        for rname, rew in net.rewards.items():
            idx = spk[rew.post]
            if idx.size and np.any(idx == rew.post_neuron):
                lag = s - last_spike[rew.pre][rew.pre_neuron]
                if 0 < lag * dt <= rew.window + 1e-12 * dt:
                    delay = ref.reward_rngs[rname].uniform(rew.delay_min, rew.delay_max)
                    due = s + max(1, int(round(delay / dt)))
                    counter[0] += 1
                    heapq.heappush(queue, (due, counter[0], rew.modulator, rew.amount))
        for name, arr in last_spike.items():
            if spk[name].size:
                arr[spk[name]] = s

    return [deliver, detect]
