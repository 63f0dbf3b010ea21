"""The numpy spiking engine: clock-driven, event-driven synapses, chunked between spikes.

Step order of step ``n`` (time ``t = n dt``), Brian2's scheduling slots
(``docs/spiking.md`` has the full contract):

1. ``groups``: dynamic populations advance from ``t`` to ``t + dt`` (exact propagators;
   Euler for ``ConductanceLIF(method="euler")``).
2. ``thresholds``: LIF neurons with ``v > v_thresh`` (not refractory) spike; Poisson
   neurons spike with probability ``rate dt``; generators at their steps.
3. ``synapses``: (order -2) modulator events (spikes of SpikeSignal sources, due
   rewards; dopamine synapses are first integrated up to ``t``); (order -1) the pre
   pathways of all projections, sorted by name; (order 0) per-step rules (PES,
   ModulatedHebbian) when their modulator is non-zero; (order +1) the post pathways of
   all projections, sorted by name.
4. ``resets``: spiking LIF neurons are reset and become refractory.
5. ``end``: coincidence rewards are scheduled; probes record.

Chunking. Between spikes of dynamic populations nothing but linear recurrences happens,
so the engine takes up to ``chunk_steps`` steps at once: it draws all source spikes of the
chunk, runs their pre pathways (vectorised over the chunk, sequential only across the
spikes of one neuron), integrates the dynamic populations until the first step in which
one of them spikes, rolls the source events after that step back, and then runs that
step through the full step order. Chunks also end at sampling steps, modulator events,
modulator changes and at spikes of sources that drive post pathways, so the result is
identical to stepping one step at a time (tests check this bit for bit).
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import RangeError, ValidationError
from plastinet.results import finalize_dataset
from plastinet.spiking._neurons import check_tau, make_state
from plastinet.spiking._sources import GeneratorSource, PoissonSource, _steps
from plastinet.spiking._synapses import ProjectionState
from plastinet.spiking.network import (ModulatorProbe, Network, PoissonGroup, ProgrammedSignal,
                                       SpikeProbe, SpikeSignal, StateProbe, WeightProbe)
from plastinet.spiking.results import build_dataset
from plastinet.units import to_si

__all__ = ["Simulator", "run"]


class _Programmed:
    def __init__(self, spec: ProgrammedSignal, dt: float) -> None:
        self.values = spec.values
        self.seg = _steps(spec.interval, dt, "ProgrammedSignal", "interval")

    def value(self, step: int) -> float:
        k = step // self.seg
        return float(self.values[k]) if k < self.values.size else 0.0

    def next_change(self, step: int) -> int:
        """First step > ``step`` where the value may change."""
        k = step // self.seg
        return (k + 1) * self.seg if k < self.values.size else 2 ** 62


class _Spiking:
    def __init__(self, spec: SpikeSignal, dt: float) -> None:
        check_tau(f"SpikeSignal {spec.name!r}", "tau", spec.tau, dt)
        self.tau, self.dt, self.increment = spec.tau, dt, spec.increment
        self.val, self.last = 0.0, 0

    def value(self, step: int) -> float:
        return self.val * math.exp(-((step - self.last) * self.dt) / self.tau)

    def jump(self, step: int, amount: float) -> None:
        self.val = self.value(step) + amount
        self.last = step


class Simulator:
    """The numpy reference engine for :class:`~plastinet.spiking.Network` specs.

    Parameters
    ----------
    network : Network
        The specification (validated here).
    dt : float or str
        Time step (s); default 0.1 ms.
    seed : int or None
        Seed of the run. A :class:`numpy.random.SeedSequence` spawns one independent
        stream per population, projection and reward (in insertion order), so a run is
        bit-reproducible.
    progress : bool
        Show a tqdm progress bar.
    chunk_steps : int
        Maximum number of steps advanced at once between events (results do not depend
        on it).

    Raises
    ------
    ValidationError
        For inconsistent specs, time constants shorter than ``dt``, ``rate * dt > 1`` ...
    """

    backend = "numpy"

    def __init__(self, network: Network, dt: Any = 1e-4, seed: int | None = None,
                 progress: bool = False, chunk_steps: int = 256) -> None:
        if not isinstance(network, Network):
            raise ValidationError("spiking.Simulator", "network", network, "expected a spiking Network")
        network.validate()
        self.dt = dt = to_si(dt, "s", name="dt", owner="spiking.Simulator")
        if not dt > 0 or not math.isfinite(dt):
            raise RangeError("spiking.Simulator", "dt", dt, "expected a positive time step in s")
        if int(chunk_steps) < 1:
            raise RangeError("spiking.Simulator", "chunk_steps", chunk_steps, "expected an integer >= 1")
        self.network, self.progress, self.chunk_steps = network, progress, int(chunk_steps)
        ss = np.random.SeedSequence(seed)
        self.seed = seed if seed is not None else int(ss.entropy % (2 ** 63))
        n_streams = len(network.populations) + len(network.projections) + len(network.rewards)
        seqs = iter(ss.spawn(n_streams))
        streams = (np.random.default_rng(q) for q in seqs)
        self.sources: dict[str, Any] = {}
        self.dyn: dict[str, Any] = {}
        for name, pop in network.populations.items():
            seq = next(seqs)
            if isinstance(pop, PoissonGroup):
                self.sources[name] = PoissonSource(pop, dt, seq)
            elif pop.source:
                self.sources[name] = GeneratorSource(pop, dt)
            else:
                self.dyn[name] = make_state(pop, dt)
        self.spiking_dyn = {k: v for k, v in self.dyn.items() if v.spiking}
        self.mods: dict[str, Any] = {}
        for name, mod in network.modulators.items():
            self.mods[name] = _Programmed(mod, dt) if isinstance(mod, ProgrammedSignal) else _Spiking(mod, dt)
        proj_rngs = {name: next(streams) for name in network.projections}
        self.projs = {name: ProjectionState(network.projections[name], dt, proj_rngs[name], self.mods)
                      for name in sorted(network.projections)}   # Brian2 sorts by name in a slot
        self.reward_rngs = {name: next(streams) for name in network.rewards}
        # which populations feed which projections
        self.out_of: dict[str, list[ProjectionState]] = {}
        self.into: dict[str, list[ProjectionState]] = {}
        for p in self.projs.values():
            self.out_of.setdefault(p.proj.pre.name, []).append(p)
            if p.has_post_pathway:
                self.into.setdefault(p.proj.post.name, []).append(p)
        self.continuous = [p for p in self.projs.values() if p.continuous]
        self.dopa = [p for p in self.projs.values() if p.kind == "DopamineSTDP"]
        # source spikes that must end a chunk: post pathways, modulator sources, reward posts
        crit = set(self.into)
        for mod in network.modulators.values():
            if isinstance(mod, SpikeSignal):
                crit.update(mod.sources)
        crit.update(r.post for r in network.rewards.values())
        self.critical = [s for s in self.sources if s in crit]
        self.mod_sources: dict[str, list[str]] = {}
        for mod in network.modulators.values():
            if isinstance(mod, SpikeSignal):
                for src in mod.sources:
                    self.mod_sources.setdefault(src, []).append(mod.name)
        self.reward_queue: list[tuple[int, int, str, float]] = []
        self._reward_counter = 0
        self.last_spike = {r.pre: np.full(network.populations[r.pre].n, -(2 ** 40), dtype=np.int64)
                           for r in network.rewards.values()}
        # probes
        self.sampled = [p for p in network.probes.values() if not isinstance(p, SpikeProbe)]
        self.sample_steps = (_steps(self.sampled[0].sample_every, dt, type(self.sampled[0]).__name__,
                                    "sample_every") if self.sampled else 0)
        self.spike_pops = {p.population for p in network.probes.values() if isinstance(p, SpikeProbe)}
        self.step = 0

    # ------------------------------------------------------------------------------------
    def run(self, duration: Any) -> xr.Dataset:
        """Advance the network by ``duration`` and return what the probes recorded.

        Parameters
        ----------
        duration : float or str
            Biological time to simulate (s), rounded to whole steps.

        Returns
        -------
        xarray.Dataset
            Spikes as an event table (``spike`` dim: ``spike_time``, ``spike_neuron``,
            ``spike_population``), sampled probes on the ``time`` axis, and the final
            weights of plastic projections (``w_<projection>``); see ``docs/spiking.md``.
        """
        duration = to_si(duration, "s", name="duration", owner="spiking.Simulator.run")
        if not duration >= 0 or not math.isfinite(duration):
            raise RangeError("spiking.Simulator.run", "duration", duration, "expected a duration >= 0 s")
        n_steps = int(round(duration / self.dt))
        start = self.step
        self._spikes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {p: [] for p in self.spike_pops}
        self._samples: dict[str, list[np.ndarray]] = {p.name: [] for p in self.sampled}
        self._sample_times: list[int] = []
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=n_steps, unit="step", desc="spiking (numpy)", leave=False)
        end_all = start + n_steps
        while self.step < end_all:
            n0 = self.step
            self._chunk(n0, end_all)
            if bar is not None:
                bar.update(self.step - n0)
        if bar is not None:
            bar.close()
        final_w = {name: p.weights_at(self.step) for name, p in self.projs.items() if p.rule is not None}
        ds = build_dataset(self, final_w)
        return finalize_dataset(ds, backend="numpy", backend_version=np.__version__, dt=self.dt,
                                seed=self.seed, model_spec=self.network.to_dict(),
                                t_start=start * self.dt, t_stop=self.step * self.dt,
                                step_order="groups,thresholds,synapses(mod,pre,continuous,post),resets,end")

    # ------------------------------------------------------------------------------------
    def _continuous_active(self, step: int) -> bool:
        for p in self.continuous:
            mod = self.mods[p.rule.modulator]
            if isinstance(mod, _Spiking) or mod.value(step) != 0.0:
                return True
        return False

    def _chunk(self, n0: int, end_all: int) -> None:
        end = min(n0 + self.chunk_steps, end_all)
        if self.sample_steps:
            nxt = -(-n0 // self.sample_steps) * self.sample_steps
            end = min(end, nxt + 1)
        if self.reward_queue:
            end = min(end, self.reward_queue[0][0] + 1)
        if self.continuous:
            if self._continuous_active(n0):
                end = n0 + 1
            else:
                for p in self.continuous:
                    end = min(end, self.mods[p.rule.modulator].next_change(n0))
        events = {name: src.events(n0, end) for name, src in self.sources.items()}
        for name in self.critical:
            steps = events[name][0]
            if steps.size:
                end = min(end, int(steps[0]) + 1)
        if end < n0 + self.chunk_steps:
            events = {k: (s[: np.searchsorted(s, end)], i[: np.searchsorted(s, end)]) for k, (s, i) in events.items()}
        last = end - 1
        bulk = {k: (s[: np.searchsorted(s, last)], i[: np.searchsorted(s, last)]) for k, (s, i) in events.items()}
        spikes: dict[str, np.ndarray] = {}
        if self.dyn:
            K = end - n0
            need_snapshot = bool(self.spiking_dyn)
            snaps = None
            if need_snapshot:
                snaps = {name: p.snapshot() for src in bulk for p in self.out_of.get(src, ()) 
                         if bulk[src][0].size for name in (p.name,)}
            incs = self._bulk(n0, K, bulk)
            k_star, spikes = self._integrate(K, incs)
            if k_star < K - 1:
                last = n0 + k_star
                for name, snap in (snaps or {}).items():
                    self.projs[name].restore(snap)
                bulk = {k: (s[: np.searchsorted(s, last)], i[: np.searchsorted(s, last)])
                        for k, (s, i) in bulk.items()}
                self._bulk(n0, None, bulk)
        else:
            self._bulk(n0, None, bulk)
        self._commit_records(bulk)
        at_last = {}
        for k, (s, i) in events.items():
            lo, hi = np.searchsorted(s, [last, last + 1])
            if hi > lo:
                at_last[k] = i[lo:hi]
        at_last.update({k: v for k, v in spikes.items() if v.size})
        self._final_step(last, at_last)
        self.step = last + 1

    def _bulk(self, n0: int, K: int | None, events: dict) -> dict:
        """Pre pathways of source spikes (not the last step); increments if ``K`` is given."""
        incs: dict[tuple[str, str], np.ndarray] = {}
        for src, (steps, neurons) in events.items():
            if not steps.size or src not in self.out_of:
                continue
            # occurrence index of each event within its neuron -> rounds of distinct neurons
            order = np.argsort(neurons, kind="stable")
            sn = neurons[order]
            first = np.r_[True, sn[1:] != sn[:-1]]
            starts = np.flatnonzero(first)
            occ_sorted = np.arange(sn.size) - np.repeat(starts, np.diff(np.r_[starts, sn.size]))
            occ = np.empty_like(occ_sorted)
            occ[order] = occ_sorted
            n_rounds = int(occ.max()) + 1
            rounds = [np.flatnonzero(occ == r) for r in range(n_rounds)] if n_rounds > 1 else [None]
            for p in self.out_of[src]:
                post_name = p.proj.post.name
                parts = []
                for sel in rounds:
                    st = steps if sel is None else steps[sel]
                    js = neurons if sel is None else neurons[sel]
                    out = p.pre_round(st, js)
                    if out is not None and K is not None and post_name in self.dyn:
                        rep, post_idx, val = out
                        parts.append((st[rep], js[rep], post_idx, val))
                if not parts:
                    continue
                # canonical summation order (step, pre neuron, synapse), as in one-step mode
                st_a, pre_a, post_a, val_a = (np.concatenate(x) for x in zip(*parts))
                if len(parts) > 1:
                    o = np.lexsort((pre_a, st_a))
                    st_a, post_a, val_a = st_a[o], post_a[o], val_a[o]
                key = (post_name, p.target)
                arr = incs.get(key)
                if arr is None:
                    arr = incs[key] = np.zeros((K, p.n_post))
                np.add.at(arr, (st_a - n0, post_a), val_a)
        return incs

    def _integrate(self, K: int, incs: dict) -> tuple[int, dict[str, np.ndarray]]:
        """Groups + thresholds for K steps, stopping at the first spike; adds increments."""
        dyn = list(self.dyn.values())
        spk_states = list(self.spiking_dyn.items())
        if len(dyn) == 1 and len(spk_states) == 1 and hasattr(dyn[0], "fast_chunk") and dyn[0].v.size == 1:
            name, d = spk_states[0]
            k = d.fast_chunk(K, {t: arr for (pop, t), arr in incs.items()})
            idx = d.threshold()
            return k, ({name: idx} if idx.size else {})
        inc_list = []
        for (pop, target), arr in incs.items():
            rows = np.flatnonzero(arr.any(axis=1))
            inc_list.append((self.dyn[pop], target, arr, set(rows.tolist())))
        for k in range(K):
            for d in dyn:
                d.update()
            spikes = None
            for name, d in spk_states:
                idx = d.threshold()
                if idx.size:
                    if spikes is None:
                        spikes = {}
                    spikes[name] = idx
            if spikes is not None or k == K - 1:
                return k, spikes or {}
            for d, target, arr, rows in inc_list:
                if k in rows:
                    d.receive(target, arr[k])
        return K - 1, {}

    def _commit_records(self, bulk: dict) -> None:
        for k, (s, i) in bulk.items():
            if not s.size:
                continue
            if k in self._spikes:
                self._spikes[k].append((s, i))
            if k in self.last_spike:
                self.last_spike[k][i] = s

    def _final_step(self, s: int, spk: dict[str, np.ndarray]) -> None:
        """Synapses slot, resets and end slot of step ``s`` (groups/thresholds already done)."""
        # (-2) modulator events
        events: dict[str, float] = {}
        while self.reward_queue and self.reward_queue[0][0] == s:
            _, _, mod, amount = heapq.heappop(self.reward_queue)
            events[mod] = events.get(mod, 0.0) + amount
        for src, mods in self.mod_sources.items():
            if src in spk:
                for m in mods:
                    events[m] = events.get(m, 0.0) + spk[src].size * self.mods[m].increment
        for m, amount in events.items():
            for p in self.dopa:
                if p.rule.modulator == m:
                    p.integrate_dopamine(slice(None), s)
            self.mods[m].jump(s, amount)
        # (-1) pre pathways, by projection name
        acc: dict[tuple[str, str], np.ndarray] = {}
        for p in self.projs.values():
            idx = spk.get(p.proj.pre.name)
            if idx is None:
                continue
            out = p.pre_round(s, idx)
            if out is not None and p.proj.post.name in self.dyn:
                _, post_idx, val = out
                key = (p.proj.post.name, p.target)
                if key not in acc:
                    acc[key] = np.zeros(p.n_post)
                np.add.at(acc[key], post_idx, val)
        for (pop, target), arr in acc.items():
            self.dyn[pop].receive(target, arr)
        # (0) per-step rules
        for p in self.continuous:
            m = self.mods[p.rule.modulator].value(s)
            if m != 0.0:
                p.continuous_update(s, m, self.dyn.get(p.proj.post.name))
        # (+1) post pathways
        for p in self.projs.values():
            if p.has_post_pathway:
                idx = spk.get(p.proj.post.name)
                if idx is not None:
                    p.post_pathway(s, idx)
        # resets
        for name, idx in spk.items():
            d = self.dyn.get(name)
            if d is not None:
                d.reset(idx)
        # end: rewards, records
        for rname, rew in self.network.rewards.items():
            idx = spk.get(rew.post)
            if idx is not None and np.any(idx == rew.post_neuron):
                lag = s - self.last_spike[rew.pre][rew.pre_neuron]
                if 0 < lag * self.dt <= rew.window + 1e-12 * self.dt:
                    delay = self.reward_rngs[rname].uniform(rew.delay_min, rew.delay_max)
                    due = s + max(1, int(round(delay / self.dt)))
                    self._reward_counter += 1
                    heapq.heappush(self.reward_queue, (due, self._reward_counter, rew.modulator, rew.amount))
        for name, idx in spk.items():
            if name in self.last_spike:
                self.last_spike[name][idx] = s
            if name in self._spikes:
                self._spikes[name].append((np.full(idx.size, s, dtype=np.int64), idx))
        if self.sample_steps and s % self.sample_steps == 0:
            self._sample_times.append(s)
            for probe in self.sampled:
                self._samples[probe.name].append(self._read(probe, s))

    def _read(self, probe: Any, s: int) -> np.ndarray:
        if isinstance(probe, StateProbe):
            d = self.dyn.get(probe.population)
            if d is None:
                raise ValidationError("StateProbe", "population", probe.population,
                                      "state can only be recorded from LIF, ConductanceLIF or RateUnits")
            val = np.array(d.get(probe.variable), dtype=np.float64)
            return val if probe.indices is None else val[probe.indices]
        if isinstance(probe, WeightProbe):
            return self.projs[probe.projection].weights_at(s)
        if isinstance(probe, ModulatorProbe):
            return np.array(self.mods[probe.modulator].value(s))
        raise TypeError(type(probe).__name__)


def run(network: Network, duration: Any, dt: Any = 1e-4, seed: int | None = None,
        progress: bool = False, chunk_steps: int = 256) -> xr.Dataset:
    """Simulate ``network`` for ``duration`` with the numpy engine.

    Parameters
    ----------
    network : Network
        The specification.
    duration : float or str
        Biological time (s).
    dt : float or str
        Time step (s), default 0.1 ms.
    seed : int or None
        Seed (one independent stream per population, projection and reward).
    progress : bool
        Show a tqdm progress bar.
    chunk_steps : int
        Maximum steps advanced at once (does not change results).

    Returns
    -------
    xarray.Dataset
        See :meth:`Simulator.run`.
    """
    return Simulator(network, dt=dt, seed=seed, progress=progress, chunk_steps=chunk_steps).run(duration)
