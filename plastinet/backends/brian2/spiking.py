"""Plastic spiking networks (:class:`plastinet.spiking.Network`) lowered to Brian2.

The backend lowers the spec itself: one builder per spec type
(:mod:`plastinet.backends.brian2.registry`: neuron models in
:mod:`~plastinet.backends.brian2.neurons`, plasticity rules in
:mod:`~plastinet.backends.brian2.plasticity`, sources and modulators here), with its own
equations and constants computed from the spec's parameters. It shares no code or state with
the numpy engine except the random draws (:mod:`plastinet.spiking.draws`: connectivity,
initial weights, replayed Poisson spikes, reward delays), so both simulate the very same
network and inputs for the same seed, and the step-order contract of ``docs/spiking.md``,
followed slot by slot (``docs/backends.md`` has the full table):

==============  =========================================================================
slot / order    Brian2 object
==============  =========================================================================
``groups``      ``run_regularly`` of each dynamic population: exact propagators (LIF,
                RateUnits), Euler / exponential Euler (ConductanceLIF), refractory hold
``thresholds``  ``NeuronGroup`` thresholds, ``SpikeGeneratorGroup`` / ``PoissonGroup``
``synapses``    in this order: coincidence rewards (due, earned, n1 recorded) and modulator source
                spikes (``Synapses`` onto the modulator group); dopamine synapses
                integrated up to ``t`` when their modulator jumps; the jump; the
                modulator value; pre pathways sorted by projection name; per-step rules
                (``run_regularly``); post pathways sorted by projection name
``resets``      ``NeuronGroup`` resets (``v = v_reset``, refractory counter)
``end``         monitors
==============  =========================================================================
"""

from __future__ import annotations

import math
import re
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from plastinet.backends.brian2 import neurons as _neurons  # noqa: F401  (registers the neuron builders)
from plastinet.backends.brian2.plasticity import NEVER, step_table, synapse_code
from plastinet.backends.brian2.registry import MODULATORS, POPULATIONS, RULES, SOURCES
from plastinet.backends.brian2.session import brian2_run, run_network
from plastinet.errors import UnsupportedError, ValidationError
from plastinet.results import finalize_dataset
from plastinet.spiking._noise import noise_draws
from plastinet.spiking._sources import _steps
from plastinet.spiking.draws import DELAY_ROUNDING, connectivity, delay_steps, seed_streams, sources
from plastinet.spiking.footprint import check_network_memory
from plastinet.spiking.guards import check_final_states, check_tau
from plastinet.spiking.network import (
    ModulatorProbe,
    Network,
    NoiseCurrent,
    PoissonGroup,
    ProgrammedSignal,
    SpikeGenerator,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    WeightProbe,
)
from plastinet.spiking.recordings import build_dataset
from plastinet.spiking.run_checks import check_run, sampled_probes

__all__ = ["simulate", "POISSON_MODES", "STEP_ORDER"]

POISSON_MODES = ("replay", "brian2")
STEP_ORDER = "groups,thresholds,synapses(mod,pre,continuous,post),resets,end"
_OWNER = "brian2 backend"

# orders inside the ``synapses`` slot (Brian2 sorts by order, then name)
_REWARD, _MODSRC, _DOPA_ALL, _JUMP, _MVAL = -5_000_000, -4_000_000, -3_000_000, -2_000_000, -1_500_000
_PRE, _NOISE, _CONT, _POST = -1_000_000, -500_000, 0, 1_000_000


def unsupported_reason(network: Network, target: str) -> str | None:
    """Why ``network`` cannot be lowered for ``target`` (None when it can)."""
    for pop in network.populations.values():
        registry = SOURCES if pop.source else POPULATIONS
        if type(pop) not in registry:
            return f"population {pop.name!r}: the brian2 backend has no lowering of {type(pop).__name__}"
    for proj in network.projections.values():
        if type(proj.rule) not in RULES:
            return f"projection {proj.name!r}: the brian2 backend has no lowering of {type(proj.rule).__name__}"
    for mod in network.modulators.values():
        if type(mod) not in MODULATORS:
            return f"modulator {mod.name!r}: the brian2 backend has no lowering of {type(mod).__name__}"
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
        Poisson spikes are drawn by :mod:`plastinet.spiking.draws` exactly as the numpy
        engine draws them with this seed. ``None`` draws a seed (recorded in the result).
    target : {"numpy", "cython", "cpp_standalone"}
        Brian2 code-generation target (recorded as the ``brian2_target`` attr).
    progress : bool
        Brian2's text progress report.
    poisson : {"replay", "brian2"}
        ``"replay"``: Poisson spikes drawn from the run's streams and fed through
        ``SpikeGeneratorGroup`` (identical spikes to the numpy engine); ``"brian2"``:
        Brian2's own ``PoissonGroup`` seeded with ``seed`` (same statistics, other spikes).
    on_numerical : {"raise", "warn"}
        Numerical guard after the run (read-back states, weights, samples and spike
        counts): raise :class:`~plastinet.errors.NumericalError` or warn, naming the
        population or projection, the variable and the time.
    max_rate : float or str or None
        Runaway limit (Hz) of the mean rate of any spiking neuron over the run (default
        ``0.5 / dt``), as in :class:`plastinet.spiking.Simulator`.

    Raises
    ------
    UnsupportedError
        For features that cannot be lowered for ``target`` (the reason names them).
    ValidationError
        For inconsistent specs, time constants shorter than ``dt``, ``rate * dt > 1``, or a
        network or recording that would not fit in memory (:class:`~plastinet.errors.SizeError`).
    NumericalError
        With ``on_numerical="raise"``, for non-finite states or runaway rates.
    """
    if poisson not in POISSON_MODES:
        raise UnsupportedError(_OWNER, "poisson", poisson, "allowed: " + ", ".join(POISSON_MODES))
    if not isinstance(network, Network):
        raise ValidationError(_OWNER, "network", network, "expected a spiking Network")
    reason = unsupported_reason(network, target)
    if reason:
        raise UnsupportedError(_OWNER, "target", target, reason)
    network.validate()
    run = check_run(_OWNER, network, dt, duration, seed, on_numerical, max_rate)
    dt, duration, seed, n_steps, guard = run.dt, run.duration, run.seed, run.n_steps, run.guard
    if poisson == "replay" and network.noises:        # the replayed draws are held in memory
        check_network_memory({f"noise {name!r} draws (replayed)": 8.0 * n_steps * network.populations[x.population].n
                              for name, x in network.noises.items()}, _OWNER,
                             f"replaying {duration:g} s of noise (poisson='brian2' draws it in Brian2 instead)")
    plan = _plan(network, dt, seed)
    check_network_memory({f"reward {name!r} delays (drawn in advance)": 8.0 * max(n_steps, 1)
                          for name in network.rewards}, _OWNER, f"{duration:g} s of reward delays")
    plan.reward_delays = _reward_delays(network, plan.streams, dt, n_steps)
    plan.noise_draws = noise_draws(network, seed, 0, n_steps) if poisson == "replay" and network.noises else {}
    rng_state = np.random.get_state()
    t0 = time.perf_counter()
    try:
        with brian2_run(target) as b2:
            with np.errstate(over="ignore", invalid="ignore"):      # the numerical guard reports instead
                rec = _build_and_run(b2, plan, n_steps, progress, poisson)
            version = b2.__version__
    finally:
        np.random.set_state(rng_state)
    wall = time.perf_counter() - t0
    check_final_states(guard, _OWNER, dt, n_steps, plan.sampled, rec.states, rec._samples, rec._sample_times,
                       rec.counts)
    ds = build_dataset(rec, rec.final_w)
    delays = {"delay_rounding": DELAY_ROUNDING} if any(p.delay_steps is not None for p in plan.projs.values()) else {}
    return finalize_dataset(ds, backend="brian2", backend_version=version, dt=dt, seed=seed,
                            model_spec=network.to_dict(), t_start=0.0, t_stop=n_steps * dt,
                            step_order=STEP_ORDER, brian2_target=target, poisson=poisson,
                            wall_time=wall, run_loop_time=rec.loop_time, **delays)


# --------------------------------------------------------------------------------------

def _plan(net: Network, dt: float, seed: int) -> SimpleNamespace:
    """Everything decided before Brian2 is touched: code, constants, draws (validates the spec for ``dt``)."""
    streams = seed_streams(net, seed)
    srcs = sources(net, dt, streams)                     # validates rate * dt <= 1 and generator times
    targets: dict[str, set[str]] = {name: set() for name in net.populations}
    for proj in net.projections.values():
        targets[proj.post.name].add(proj.target)
    neuron_code = {name: POPULATIONS(pop, dt, targets[name]) for name, pop in net.populations.items()
                   if not pop.source}
    for name, mod in net.modulators.items():
        if isinstance(mod, SpikeSignal):
            check_tau(f"SpikeSignal {name!r}", "tau", mod.tau, dt)
    mod_sources: dict[str, list[str]] = {m: list(mod.sources) for m, mod in net.modulators.items()
                                         if isinstance(mod, SpikeSignal)}
    # SpikeSignals that can jump (sources or rewards); the others stay 0
    jumping = {m for m in mod_sources if mod_sources[m] or any(r.modulator == m for r in net.rewards.values())}
    projs = {}
    probed = {p.projection for p in net.probes.values() if isinstance(p, WeightProbe)}
    for name in sorted(net.projections):                # Brian2 sorts by name within a slot
        proj = net.projections[name]
        mod = net.modulators.get(getattr(proj.rule, "modulator", None) or "")
        drawn = connectivity(proj, streams.projections[name])
        projs[name] = SimpleNamespace(proj=proj, pre=drawn.pre, post=drawn.post, w=drawn.w,
                                      delay_steps=_delays(proj, drawn.delay, dt),
                                      n_pre=proj.pre.n, n_post=proj.post.n, dense=proj.connectivity == "all",
                                      code=synapse_code(proj, dt, getattr(mod, "tau", None),
                                                        _input_scale(neuron_code, proj.post.name),
                                                        probed=name in probed,
                                                        mod_silent=isinstance(mod, SpikeSignal)
                                                        and mod.name not in jumping))
    sampled, sample_steps = sampled_probes(net, dt)
    # modulators whose value rules read every step
    m_read = {p.proj.rule.modulator for p in projs.values() if "m" in p.code.linked}
    return SimpleNamespace(network=net, dt=dt, seed=seed, streams=streams, sources=srcs, neuron_code=neuron_code,
                           jumping=jumping, m_read=m_read,
                           projs=projs, sampled=sampled, sample_steps=sample_steps, mod_sources=mod_sources,
                           spike_pops={p.population for p in net.probes.values() if isinstance(p, SpikeProbe)},
                           spiking_dyn=[n for n, p in net.populations.items() if p.spiking and not p.source])


def _delays(proj: Any, seconds: np.ndarray, dt: float) -> np.ndarray | None:
    """Per-synapse delays in steps; None for a projection without a delay (0 s, the default)."""
    d = proj.delay
    return None if isinstance(d, float) and d == 0.0 else delay_steps(seconds, dt)


def _input_scale(neuron_code: dict, name: str) -> float:
    return neuron_code[name].input_scale if name in neuron_code else 1.0


def _noise_in_update(plan: SimpleNamespace, noise: NoiseCurrent) -> bool:
    """Whether the draws of a step can be added at the start of the next step's ``groups`` update.

    The numpy engine adds them in the ``synapses`` slot after the step's spikes; the target is
    next read by the population's update, so adding them there instead gives the same sums
    (spikes first, then the draws) with one code object fewer per step, unless something
    reads the target in between: a StateProbe of the population (sampled in the ``end``
    slot) or a per-step rule of a projection onto it.
    """
    net = plan.network
    if any(isinstance(p, StateProbe) and p.population == noise.population for p in net.probes.values()):
        return False
    return not any(p.proj.post.name == noise.population and p.code.continuous for p in plan.projs.values())


def _noise(noise: NoiseCurrent, b2: Any, ctx: SimpleNamespace, in_update: bool) -> tuple[str, dict]:
    """The statement adding one step's draws to the target (scaled as a spike), and its namespace.

    ``poisson="replay"`` replays the numpy engine's draws from the run's noise stream (a
    ``TimedArray`` of steps x neurons); ``"brian2"`` draws with Brian2's generator (the same
    distribution, other draws). ``in_update``: the statement opens the next step's update
    (:func:`_noise_in_update`), so it adds the previous step's draws (none in step 0).
    """
    n = noise.name
    if ctx.poisson == "replay":
        values = ctx.plan.noise_draws[n]
        if in_update:                           # row k: the draws of step k - 1
            values = np.concatenate([np.zeros((1, values.shape[1])), values[:-1]])
        if _runtime_numpy(b2):
            ns = {f"draws_{n}": _row_function(b2, values)}      # the step's row: a view, no index arithmetic
            draw = f"draws_{n}(t_in_timesteps)"
        else:
            ns = {f"draws_{n}": b2.TimedArray(values, dt=ctx.plan.dt * b2.second)}
            draw = f"draws_{n}(t, i)"
    else:
        if noise.distribution == "uniform":
            draw, ns = f"(lo_{n} + (hi_{n} - lo_{n}) * rand())", {f"lo_{n}": noise.low, f"hi_{n}": noise.high}
        else:
            draw, ns = f"(mu_{n} + sd_{n} * randn())", {f"mu_{n}": noise.mean, f"sd_{n}": noise.std}
        if in_update:
            draw = f"{draw} * int(t_in_timesteps > 0)"
    ns[f"sc_{n}"] = _input_scale(ctx.plan.neuron_code, noise.population)
    return f"{noise.target} = {noise.target} + sc_{n} * {draw}", ns


@SOURCES.register(PoissonGroup)
def _poisson(pop: PoissonGroup, b2: Any, ctx: SimpleNamespace) -> Any:
    name = pop.name
    if ctx.poisson == "replay":
        return _replay(pop, b2, ctx)
    sched = pop.rate_schedule()
    if sched.shape[0] == 1:
        return b2.PoissonGroup(pop.n, rates=sched[0] * b2.Hz, clock=ctx.clock, name=f"pop_{name}")
    ta = b2.TimedArray(sched * b2.Hz, dt=pop.rate_interval * b2.second)
    return b2.PoissonGroup(pop.n, rates=f"rates_{name}(t, i)", clock=ctx.clock, name=f"pop_{name}",
                           namespace={f"rates_{name}": ta})


@SOURCES.register(SpikeGenerator)
def _replay(pop: Any, b2: Any, ctx: SimpleNamespace) -> Any:
    """Spike generators, and Poisson spikes replayed from the run's streams."""
    steps, idx = ctx.plan.sources[pop.name].events(0, max(ctx.n_steps, 1))
    return b2.SpikeGeneratorGroup(pop.n, idx.astype(np.int64), (steps * ctx.plan.dt) * b2.second,
                                  clock=ctx.clock, name=f"pop_{pop.name}")


@MODULATORS.register(ProgrammedSignal)
def _programmed(mod: ProgrammedSignal, b2: Any, ctx: SimpleNamespace, rank: int) -> Any:
    # segment k = step // SEG, looked up at the exact time k seconds of a 1 s TimedArray
    seg = _steps(mod.interval, ctx.plan.dt, "ProgrammedSignal", "interval")
    ta = b2.TimedArray(np.r_[mod.values, 0.0], dt=b2.second)
    g = b2.NeuronGroup(1, "m : 1", clock=ctx.clock, namespace={"prog": ta, "SEG": seg, "one_second": b2.second},
                       name=f"mod_{mod.name}")
    g.run_regularly("m = prog((t_in_timesteps // SEG) * one_second)", when="synapses",
                    order=_MVAL + rank, clock=ctx.clock, name=f"mod_{mod.name}_value")
    return g


#: a SpikeSignal's decay since its last jump (code of its group)
MOD_DECAY = "exp(-((t_in_timesteps - mlast) * DT) / tau)"


@MODULATORS.register(SpikeSignal)
def _spike_signal(mod: SpikeSignal, b2: Any, ctx: SimpleNamespace, rank: int) -> Any:
    """``mval`` (value at the last jump, step ``mlast``) jumps by the events counted this step.

    The group runs code only where something happens: the jump in the steps with events
    (none for a signal without sources and rewards, which stays at 0), the value ``m`` every
    step only for rules that read it (probes compute it when they sample).
    """
    name, srcs = mod.name, ctx.plan.mod_sources[mod.name]
    model = ["mval : 1", "mlast : integer", "mpend : 1", "mnev : 1", "m : 1"]
    model += [f"cnt_{k} : 1" for k in range(len(srcs))]
    amount = "mpend" + "".join(f" + cnt_{k} * inc" for k in range(len(srcs)))
    ns = {"DT": ctx.plan.dt, "tau": mod.tau, "inc": mod.increment}
    jumps = name in ctx.plan.jumping
    g = b2.NeuronGroup(1, "\n".join(model), clock=ctx.clock, namespace=ns, name=f"mod_{name}",
                       events={"jump": "mnev > 0"} if jumps else None)
    g.state_updater.active = False                  # no differential equations
    if jumps:
        # the jump event is checked after the step's rewards and source spikes, before the synapses' integration
        g.set_event_schedule("jump", when="synapses", order=_DOPA_ALL - 1000 + rank)
        jump = [f"mval = mval * {MOD_DECAY} + {amount}", "mlast = t_in_timesteps", "mpend = 0.0", "mnev = 0.0"]
        jump += [f"cnt_{k} = 0.0" for k in range(len(srcs))]
        g.run_on_event("jump", "\n".join(jump), when="synapses", order=_JUMP + rank)
    if name in ctx.plan.m_read:
        g.run_regularly(f"m = mval * {MOD_DECAY}", when="synapses", order=_MVAL + rank, clock=ctx.clock,
                        name=f"mod_{name}_value")
    for k, src in enumerate(srcs):
        n = ctx.plan.network.populations[src].n
        s = b2.Synapses(ctx.groups[src], g, on_pre=f"cnt_{k}_post += 1.0\nmnev_post += 1.0", clock=ctx.clock,
                        name=f"modsrc_{name}_{k}")
        s.connect(i=np.arange(n), j=np.zeros(n, dtype=int))
        s.pre.order = _MODSRC + rank * 1000 + k
        ctx.objects.append(s)
    return g


def _build_and_run(b2: Any, plan: SimpleNamespace, n_steps: int, progress: bool, poisson: str) -> SimpleNamespace:
    net, dt = plan.network, plan.dt
    DT = b2.second * dt
    # one explicit clock for every object (never the default clock): Brian2's run loop then
    # advances one clock per step instead of one per object
    clock = b2.Clock(DT, name="plastinet_step")
    ctx = SimpleNamespace(plan=plan, clock=clock, n_steps=n_steps, poisson=poisson, objects=[], groups={})
    objects, groups = ctx.objects, ctx.groups
    if poisson == "brian2" or net.noises:
        b2.seed(plan.seed % (2 ** 32))
    # ---- noise currents (added like spikes delivered in the step)
    noise_lines: dict[str, list[str]] = {name: [] for name in net.populations}
    noise_ns: dict[str, dict] = {name: {} for name in net.populations}
    late: list[tuple[int, NoiseCurrent, str]] = []
    for rank, noise in enumerate(net.noises.values()):
        in_update = _noise_in_update(plan, noise)
        line, ns = _noise(noise, b2, ctx, in_update)
        noise_ns[noise.population].update(ns)
        if in_update:
            noise_lines[noise.population].append(line)
        else:
            late.append((rank, noise, line))
    # ---- populations (with the synapses' variables kept per neuron, see SynapseCode.pre_vars)
    neuron_vars: dict[str, list[str]] = {name: [] for name in net.populations}
    for p in plan.projs.values():
        neuron_vars[p.proj.pre.name] += p.code.pre_vars
        neuron_vars[p.proj.post.name] += p.code.post_vars
    for name, pop in net.populations.items():
        if pop.source:
            g = SOURCES(pop, b2, ctx)
        else:
            code = plan.neuron_code[name]
            model = "\n".join([code.model] + [f"{var} : integer" for var in neuron_vars[name]])
            g = b2.NeuronGroup(pop.n, model, threshold=code.threshold, reset=code.reset,
                               clock=clock, namespace={**code.namespace, **noise_ns[name]}, name=f"pop_{name}")
            g.run_regularly("\n".join(noise_lines[name] + [code.update]), when="groups", clock=clock,
                            name=f"pop_{name}_update")
            # the model has no differential equations (the update above integrates it):
            # Brian2's state updater would run empty code every step
            g.state_updater.active = False
            for var, value in code.init.items():
                setattr(g, var, value)
            for var in neuron_vars[name]:
                setattr(g, var, NEVER)
        objects.append(g)
        groups[name] = g
    for rank, noise, line in late:      # noise whose target is read before the next update
        objects.append(groups[noise.population].run_regularly(
            line, when="synapses", order=_NOISE + rank, clock=clock, name=f"noise_{noise.name}"))
    # ---- modulators
    mgroups: dict[str, Any] = {}
    for rank, (name, mod) in enumerate(net.modulators.items()):
        mgroups[name] = MODULATORS(mod, b2, ctx, rank)
        objects.append(mgroups[name])
    # ---- projections (sorted by name: the engine's and our pathway order)
    syns: dict[str, Any] = {}
    tables: dict[tuple[str, float], Any] = {}         # TimedArrays of step_table, shared by projections
    for rank, (name, p) in enumerate(plan.projs.items()):
        code, proj = p.code, p.proj
        ns = dict(code.namespace)
        if "em1(" in "\n".join(code.on_pre + code.on_post + [code.on_jump, code.w_now]):
            ns["em1"] = _expm1(b2)
        for table, key in code.tables.items():
            if key not in tables:
                tables[key] = _table_function(b2, step_table(*key, dt))
            ns[table] = tables[key]
            ns["one_second"] = b2.second
        kw: dict[str, Any] = {}
        steps = np.zeros(0, dtype=np.int64) if p.delay_steps is None else p.delay_steps
        uniform_delay = not steps.size or bool(np.all(steps == steps[0]))
        if code.on_pre:
            kw["on_pre"] = "\n".join(code.on_pre)
            if uniform_delay and steps.size and steps[0] > 0:     # one delay: Brian2's scalar delay
                kw["delay"] = int(steps[0]) * DT
        if code.on_post:
            kw["on_post"] = "\n".join(code.on_post)
        s = b2.Synapses(groups[proj.pre.name], groups[proj.post.name], "\n".join(code.model), clock=clock,
                        namespace=ns, name=f"proj_{name}", **kw)
        s.connect(i=p.pre, j=p.post)
        if "w" in s.variables:
            s.w = p.w
        if code.on_pre and not uniform_delay:       # transmission and the pre side of plasticity
            s.pre.delay = (steps * dt) * b2.second
        for var in code.never:
            setattr(s, var, NEVER)
        if proj.stp is not None:
            s.R_s = 1.0
        if code.linked:
            s.midx = 0
            for var in code.linked:
                setattr(s, var, b2.linked_var(mgroups[proj.rule.modulator], var, index="midx"))
        if code.on_pre:
            s.pre.order = _PRE + rank
        if code.on_post:
            s.post.order = _POST + rank
        if code.on_jump and proj.rule.modulator in plan.jumping:
            objects.append(_on_jump(b2, code, ns, mgroups[proj.rule.modulator], s, rank, clock))
        if code.continuous:
            objects.append(s.run_regularly(code.continuous, when="synapses", order=_CONT + rank, clock=clock,
                                           name=f"proj_{name}_step"))
        objects.append(s)
        syns[name] = s
    # ---- coincidence rewards
    objects += _rewards(b2, plan, groups, mgroups, clock, n_steps)
    # ---- probes
    spike_mons = {pop: b2.SpikeMonitor(groups[pop], name=f"spikes_{pop}") for pop in plan.spike_pops}
    objects += list(spike_mons.values())
    # spike counts for the runaway guard: the spike probe's monitor where there is one (an
    # extra monitor costs a code object per step), else a count-only monitor
    count_mons = {pop: spike_mons[pop] if pop in spike_mons else
                  b2.SpikeMonitor(groups[pop], record=False, name=f"count_{pop}") for pop in plan.spiking_dyn}
    objects += [mon for pop, mon in count_mons.items() if pop not in spike_mons]
    state_mons: dict[str, Any] = {}
    sample_clock = b2.Clock(plan.sample_steps * DT, name="plastinet_sample") if plan.sampled else None
    for probe in plan.sampled:
        if isinstance(probe, StateProbe):
            rec = True if probe.indices is None else np.asarray(probe.indices)
            mon = b2.StateMonitor(groups[probe.population], probe.variable, record=rec, when="end",
                                  clock=sample_clock, name=f"probe_{probe.name}")
        elif isinstance(probe, WeightProbe):
            code = plan.projs[probe.projection].code
            var = "w"
            if code.w_now:
                var = "w_now"
                objects.append(syns[probe.projection].run_regularly(
                    code.w_now, when="end", order=-10, clock=sample_clock, name=f"probe_{probe.name}_now"))
            mon = b2.StateMonitor(syns[probe.projection], var, record=True, when="end", clock=sample_clock,
                                  name=f"probe_{probe.name}")
        else:
            if isinstance(net.modulators[probe.modulator], SpikeSignal) and probe.modulator not in plan.m_read:
                objects.append(mgroups[probe.modulator].run_regularly(
                    f"m = mval * {MOD_DECAY}", when="end", order=-10, clock=sample_clock, name=f"probe_{probe.name}_now"))
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
    for probe in plan.sampled:
        mon = state_mons[probe.name]
        var = mon.record_variables[0]
        vals = np.asarray(getattr(mon, var + "_") if hasattr(mon, var + "_") else getattr(mon, var))
        tt = np.rint(np.asarray(mon.t_[:]) / dt).astype(np.int64)
        if isinstance(probe, ModulatorProbe):
            samples[probe.name] = [np.array(vals[0, k]) for k in range(tt.size)]
        else:
            samples[probe.name] = [np.array(vals[:, k]) for k in range(tt.size)]
        times = tt.tolist()
    final_w: dict[str, np.ndarray] = {}
    for name, p in plan.projs.items():
        if p.proj.rule is None:
            continue
        s = syns[name]
        if p.code.w_now:         # integrated to the end of the run (as NEST does)
            w = _dopamine_weights_at(s, mgroups[p.proj.rule.modulator], p, n_steps, dt)
        else:
            w = np.array(s.w[:], dtype=np.float64)
        final_w[name] = w
    # final states for the numerical guard
    states = [("population", name, var, np.asarray(getattr(groups[name], var)[:], dtype=np.float64))
              for name, pop in net.populations.items() if not pop.source
              for var in pop.variables if var in groups[name].variables]
    states += [("projection", name, "w", w) for name, w in final_w.items()]
    counts = {pop: np.asarray(mon.count[:], dtype=np.int64) for pop, mon in count_mons.items()}
    return SimpleNamespace(network=net, dt=dt, _spikes=spikes, sampled=plan.sampled, _samples=samples,
                           _sample_times=times, projs=plan.projs, final_w=final_w, loop_time=loop_time,
                           states=states, counts=counts)


def _on_jump(b2: Any, code: Any, ns: dict, mg: Any, s: Any, rank: int, clock: Any) -> Any:
    """``code.on_jump`` on every synapse of ``s`` in the steps where its modulator jumps.

    Synapses from the modulator's group onto the synapses of ``s``, driven by the group's
    ``jump`` event (checked in the ``synapses`` slot after the step's rewards and source spikes):
    the synapses are only touched in those steps, instead of every synapse in every step.
    """
    own = set(re.findall(r"^\s*(\w+)\s*:", "\n".join(code.model), flags=re.M)) - set(code.linked)

    def side(m: re.Match) -> str:       # the synapse's variables are post, the modulator's are pre
        name = m.group(1)
        return name + "_pre" if name in code.linked else name + "_post" if name in own else name

    body = re.sub(r"\b(\w+)\b", side, code.on_jump)
    j = b2.Synapses(mg, s, on_pre=body, on_event="jump", clock=clock, namespace=ns, name=f"{s.name}_jump")
    j.connect(i=np.zeros(len(s), dtype=int), j=np.arange(len(s)))
    j.pre.order = _DOPA_ALL + rank
    return j


def _dopamine_weights_at(s: Any, mg: Any, p: SimpleNamespace, step: int, dt: float) -> np.ndarray:
    """Weights of a DopamineSTDP projection integrated from each synapse's last update to ``step``."""
    ns, bounded = p.code.namespace, math.isfinite(p.proj.w_min) or math.isfinite(p.proj.w_max)
    w = np.array(s.w[:], dtype=np.float64)
    c = np.array(s.c[:], dtype=np.float64)
    tl = np.array(s.tl[:], dtype=np.int64)
    mval, mlast = float(mg.mval[0]), int(mg.mlast[0])
    delta = (step - tl) * dt
    n0 = mval * np.exp(-((tl - mlast) * dt) / ns["tau_n"])
    w = w + c * (n0 * ns["tau_s"] * -np.expm1(-delta / ns["tau_s"])
                 - ns["b"] * ns["tau_c"] * -np.expm1(-delta / ns["tau_c"]))
    if bounded:
        np.clip(w, ns["w_lo"], ns["w_hi"], out=w)
    return w


def _runtime_numpy(b2: Any) -> bool:
    return b2.prefs.codegen.target == "numpy" and b2.get_device().__class__.__name__ == "RuntimeDevice"


def _table_function(b2: Any, values: np.ndarray) -> Any:
    """``f(k * one_second) = values[min(k, last)]`` for whole numbers ``k`` (:func:`step_table`).

    A 1 s ``TimedArray`` on compiled targets (its index arithmetic is a few instructions);
    on the numpy target, where each of its numpy operations costs a call, a function that
    takes the clipped entries directly.
    """
    if not _runtime_numpy(b2):
        return b2.TimedArray(values, dt=b2.second)
    last = values.size - 1

    def lookup(k: np.ndarray) -> np.ndarray:
        return values[np.minimum(k, last).astype(np.intp)]

    f = b2.Function(lookup, arg_units=[b2.second], return_unit=1, arg_names=["k"])
    f.implementations.add_implementation("numpy", code=lookup)
    return f


def _row_function(b2: Any, values: np.ndarray) -> Any:
    """``f(step) = values[step]`` (a row of steps x neurons) for the numpy target.

    Brian2's ``TimedArray`` computes the index from ``t`` with rounding and clipping and
    gathers the row element by element on every call (three times the cost of drawing the
    numbers); a group's ``run_regularly`` covers all its neurons in order, so the row itself
    is the per-neuron value.
    """
    f = b2.Function(values.__getitem__, arg_units=[1], return_unit=1, arg_names=["step"])
    f.implementations.add_implementation("numpy", code=values.__getitem__)
    return f


def _expm1(b2: Any) -> Any:
    """``expm1`` without Brian2's per-call unit check (which formats the array: slow on numpy)."""
    f = b2.Function(np.expm1, arg_units=[1], return_unit=1, arg_names=["x"])
    f.implementations.add_implementation("numpy", code=np.expm1)
    f.implementations.add_implementation("cython", code="", name="expm1")
    f.implementations.add_implementation("cpp", code="", name="expm1")
    return f


def _reward_delays(net: Network, streams: Any, dt: float, n_steps: int) -> dict[str, np.ndarray]:
    """Each reward's delays in steps, in the order rewards are earned, drawn as the numpy engine draws them.

    The engine draws one ``uniform(delay_min, delay_max)`` from the reward's stream per reward
    earned and waits ``max(1, round(delay / dt))`` steps; a run earns at most one reward per
    step after the first, so ``n_steps`` draws from the same stream are all it can use.
    """
    out = {}
    for name, rew in net.rewards.items():
        delays = streams.rewards[name].uniform(rew.delay_min, rew.delay_max, size=max(n_steps, 1))
        out[name] = np.maximum(1.0, np.rint(delays / dt))
    return out


def _reward_slots(rew: Any, dt: float, n_steps: int) -> int:
    """Pending-reward slots that can never all be in use (rewards fill them round-robin).

    Rewards are earned at distinct steps and wait at most ``D = max(1, round(delay_max / dt))``
    steps, so the reward ``K = D + 1`` places earlier is always delivered by the time its slot
    is reused; a run of ``n_steps`` earns fewer than ``n_steps`` rewards, so no slot is ever
    reused when ``K = n_steps``.
    """
    return max(1, min(max(1, int(round(rew.delay_max / dt))) + 1, n_steps))


def _rewards(b2: Any, plan: SimpleNamespace, groups: dict, mgroups: dict, clock: Any, n_steps: int) -> list:
    """CoincidenceReward in generated code (every target, cpp_standalone included).

    Per reward, a ``NeuronGroup`` of K pending-reward slots (:func:`_reward_slots`) holds the
    step its slot is due (``due``), the step of n1's last spike (``t_n1``) and the number
    of rewards earned (``nrew``; every slot holds the same two copies). In the ``synapses``
    slot, in this order: a slot whose ``due`` is now spikes (its threshold) and adds ``amount``
    to the modulator's pending jump; a spike of n2 earns a reward when ``0 < t - t_n1 <=
    window`` and writes ``t + delays[nrew]`` into slot ``nrew % K`` (the delays drawn in advance
    by :func:`_reward_delays`); a spike of n1 then sets ``t_n1`` (so n1 and n2 firing in the
    same step compare n2 with n1's previous spike, as the engine's ``end`` slot does).
    """
    net, dt = plan.network, plan.dt
    objects: list = []
    for rank, (name, rew) in enumerate(net.rewards.items()):
        k = _reward_slots(rew, dt, n_steps)
        ns = {"K": k, "DT": dt, "WIN": rew.window + 1e-12 * dt, "AMOUNT": rew.amount, "one_second": b2.second,
              f"delays_{name}": b2.TimedArray(plan.reward_delays[name], dt=b2.second)}
        slots = b2.NeuronGroup(k, "due : 1\nt_n1 : 1\nnrew : integer", threshold="due == t_in_timesteps", reset="",
                               clock=clock, namespace=ns, name=f"reward_{name}")
        slots.state_updater.active = False
        slots.due = -1.0
        slots.t_n1 = -float(2 ** 40)
        deliver = b2.Synapses(slots, mgroups[rew.modulator], on_pre="mpend_post += AMOUNT\nmnev_post += 1.0",
                              clock=clock, namespace=ns, name=f"reward_{name}_deliver")
        deliver.connect(i=np.arange(k), j=np.zeros(k, dtype=int))
        earn = b2.Synapses(groups[rew.post], slots, clock=clock, namespace=ns, name=f"reward_{name}_earn", on_pre="""
            lag = t_in_timesteps - t_n1_post
            hit = int(lag > 0) * int(lag * DT <= WIN)
            mine = hit * int(nrew_post % K == j)
            due_post = mine * (t_in_timesteps + DELAYS(nrew_post * one_second)) + (1 - mine) * due_post
            nrew_post += hit""".replace("DELAYS", f"delays_{name}"))
        earn.connect(i=np.full(k, rew.post_neuron), j=np.arange(k))
        pre = b2.Synapses(groups[rew.pre], slots, on_pre="t_n1_post = 1.0 * t_in_timesteps", clock=clock,
                          namespace=ns, name=f"reward_{name}_pre")
        pre.connect(i=np.full(k, rew.pre_neuron), j=np.arange(k))
        for order, s in enumerate((deliver, earn, pre)):
            s.pre.order = _REWARD + 1000 * rank + order
        objects += [slots, deliver, earn, pre]
    return objects
