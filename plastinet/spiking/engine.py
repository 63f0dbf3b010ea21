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
identical to stepping one step at a time (tests check this bit for bit). The speculative
length adapts: after a chunk cut short by a spike the next one spans twice the steps taken,
and it doubles back towards ``chunk_steps`` while chunks run to their end, so a recurrent
network that spikes every few steps does not redo a whole chunk's source pathways per step.

Reliability (``docs/reliability.md``). Numerical guards run every :data:`GUARD_STEPS`
steps (at least), before every checkpoint and at the end of a run: every state (membrane
potentials, synaptic currents/conductances, weights, traces, STP and eligibility
variables, modulators) must be finite, and no LIF neuron may fire faster than
``max_rate``; a violation is reported with the population or projection, the variable and
the time, by raising :class:`~plastinet.errors.NumericalError` (``on_numerical="raise"``)
or warning (``"warn"``). ``Simulator.run(..., checkpoint_every=..., checkpoint_path=...)``
writes atomic, data-only checkpoints from which a new simulator of the same network, dt
and seed resumes bit-identically; Ctrl-C (honoured at the next chunk boundary) or an
exception saves the results collected so far, marked ``partial = 1``.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import signal
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np
import xarray as xr

from plastinet._version import __version__
from plastinet.errors import (
    CheckpointError,
    PlastinetWarning,
    RangeError,
    ValidationError,
    report_numerical,
)
from plastinet.io.checkpoints import load_npz_checkpoint, save_npz_checkpoint, spec_hash
from plastinet.results import finalize_dataset
from plastinet.spiking import builders  # noqa: F401  (registers every builder)
from plastinet.spiking._noise import NoiseInput
from plastinet.spiking._sources import _steps
from plastinet.spiking._synapses import ProjectionState
from plastinet.spiking.draws import seed_streams
from plastinet.spiking.footprint import check_network_memory, state_bytes
from plastinet.spiking.guards import check_tau, nonfinite_summary, numerical_guard, warn_runaway
from plastinet.spiking.network import (
    ModulatorProbe,
    Network,
    ProgrammedSignal,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    WeightProbe,
)
from plastinet.spiking.network_native import native_network
from plastinet.spiking.recordings import build_dataset
from plastinet.spiking.registry import MODULATORS, POPULATIONS
from plastinet.spiking.run_checks import check_dt, check_duration, run_seed
from plastinet.units import to_si

__all__ = ["Simulator", "run", "GUARD_STEPS", "CHECKPOINT_FORMAT"]

#: The numerical guard runs at least every this many steps (and before checkpoints, at the end).
GUARD_STEPS = 1000
#: ``format`` entry of the spiking engine's checkpoints.
CHECKPOINT_FORMAT = "plastinet-spiking-checkpoint"
CHECKPOINT_VERSION = 3
#: File name of the checkpoint when ``checkpoint_path`` is a directory.
CHECKPOINT_NAME = "spiking_checkpoint.npz"
_OWNER = "spiking.Simulator.run"
@contextlib.contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C into a flag the run loop checks at chunk boundaries (main thread only).

    A second Ctrl-C before the boundary interrupts at once. Elsewhere (other threads, or a
    custom SIGINT handler installed) nothing changes and the returned check is always False.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield lambda: False
        return
    flag = [False]

    def handler(signum: int, frame: Any) -> None:
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def _projection_state(p: ProjectionState) -> dict[str, np.ndarray]:
    """The mutable state of a projection: weights, STP and the rule's traces and arrays."""
    out = {"w": p.w}
    if p.stp is not None:
        out.update({"stp_u": p.u, "stp_R": p.R, "stp_last": p.stp_last})
    if p.plasticity is not None:
        out.update(p.plasticity.state())
    return out


def _set_projection_state(p: ProjectionState, arrays: dict[str, np.ndarray]) -> None:
    plain = {"w": "w", "stp_u": "u", "stp_R": "R", "stp_last": "stp_last"}
    for name, arr in arrays.items():
        if name in plain:
            setattr(p, plain[name], arr)
    if p.plasticity is not None:
        p.plasticity.load_state({k: v for k, v in arrays.items() if k not in plain})


def _before(events: dict[str, tuple[np.ndarray, np.ndarray]], step: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The events (sorted by step) of each list before ``step``."""
    out = {}
    for k, (s, i) in events.items():
        n = np.searchsorted(s, step)
        out[k] = (s[:n], i[:n])
    return out


def _next_span(span: int, K: int, k_star: int, chunk_steps: int) -> int:
    """Speculative length of the next chunk after one of ``K`` steps stopped at ``k_star``.

    A chunk's source pathways are computed for all ``K`` steps and rolled back after the
    first spike of a dynamic population, so in a recurrent network that spikes nearly every
    step long chunks are mostly wasted work: the span shrinks to twice the steps actually
    taken and doubles again (up to ``chunk_steps``) while chunks run to their end. Chunk
    boundaries never change results.
    """
    if k_star < K - 1:
        return max(2, min(span, 2 * (k_star + 1)))
    return min(chunk_steps, 2 * span) if K >= span else span


def _rounds(neurons: np.ndarray) -> list[np.ndarray | None]:
    """Events split into rounds of distinct neurons (the k-th event of each neuron in round k)."""
    order = np.argsort(neurons, kind="stable")
    sn = neurons[order]
    first = np.r_[True, sn[1:] != sn[:-1]]
    starts = np.flatnonzero(first)
    occ_sorted = np.arange(sn.size) - np.repeat(starts, np.diff(np.r_[starts, sn.size]))
    occ = np.empty_like(occ_sorted)
    occ[order] = occ_sorted
    n_rounds = int(occ.max()) + 1
    return [np.flatnonzero(occ == r) for r in range(n_rounds)] if n_rounds > 1 else [None]


@MODULATORS.register(ProgrammedSignal)
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


@MODULATORS.register(SpikeSignal)
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
        bit-reproducible. ``None`` draws a seed from fresh entropy; it is recorded (the
        ``seed`` attribute of results), so passing it back reproduces the run.
    progress : bool
        Show a tqdm progress bar.
    chunk_steps : int
        Maximum number of steps advanced at once between events (results do not depend
        on it).
    on_numerical : {"raise", "warn"}
        What the numerical guard does when a state becomes non-finite or a neuron fires
        faster than ``max_rate``: raise :class:`~plastinet.errors.NumericalError` (default)
        or warn :class:`~plastinet.errors.NumericalWarning` (once per population or
        projection and variable) and continue.
    max_rate : float or str or None
        Highest firing rate (Hz) a LIF / conductance LIF neuron may reach, averaged over
        guard windows (each long enough for 100 spikes at ``max_rate``, at least
        :data:`GUARD_STEPS` steps); a violation is handled by ``on_numerical``. Default
        ``None``: the limit is ``0.5 / dt`` (a spike every other step) and, in addition, a
        neuron faster than :data:`~plastinet.spiking.guards.PLAUSIBLE_MAX_RATE` (200 Hz) over a window of at least
        20 spikes at that rate warns :class:`~plastinet.errors.RunawayFiringWarning` once
        per population (an explicit ``max_rate`` replaces that warning).

    Raises
    ------
    ValidationError
        For inconsistent specs, time constants shorter than ``dt``, ``rate * dt > 1`` ...
    """

    backend = "numpy"

    def __init__(self, network: Network, dt: Any = 1e-4, seed: int | None = None,
                 progress: bool = False, chunk_steps: int = 256, *, on_numerical: str = "raise",
                 max_rate: Any = None) -> None:
        if not isinstance(network, Network):
            raise ValidationError("spiking.Simulator", "network", network, "expected a spiking Network")
        network.validate()
        self.dt = dt = check_dt("spiking.Simulator", dt)
        if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, (int, np.integer)) or chunk_steps < 1:
            raise RangeError("spiking.Simulator", "chunk_steps", chunk_steps, "expected an integer >= 1")
        guard = numerical_guard("spiking.Simulator", dt, on_numerical, max_rate)
        self.on_numerical, self.max_rate, self._rate_window = guard.on_numerical, guard.max_rate, guard.rate_window
        self.warn_rate, self._warn_window = guard.warn_rate, guard.warn_window
        check_network_memory(state_bytes(network), "spiking.Simulator", "the network's state")   # before allocating
        self._guard_steps = max(GUARD_STEPS, self._rate_window)
        self.network, self.progress, self.chunk_steps = network, progress, int(chunk_steps)
        #: steps the next chunk integrates speculatively (adapts to the dynamic populations' spiking)
        self._span = self.chunk_steps
        self.seed = seed = run_seed("spiking.Simulator", seed)
        streams = seed_streams(network, seed)
        self.sources: dict[str, Any] = {}
        self.dyn: dict[str, Any] = {}
        for name, pop in network.populations.items():
            state = POPULATIONS.build(pop, dt, streams.populations[name])
            (self.sources if pop.source else self.dyn)[name] = state
        self.spiking_dyn = {k: v for k, v in self.dyn.items() if v.spiking}
        self.mods: dict[str, Any] = {name: MODULATORS.build(mod, dt) for name, mod in network.modulators.items()}
        self.projs = {name: ProjectionState(network.projections[name], dt, streams.projections[name], self.mods)
                      for name in sorted(network.projections)}   # Brian2 sorts by name in a slot
        self.reward_rngs = streams.rewards
        # per-step noise inputs, on streams spawned after all others (results without noise unchanged)
        self.noise_inputs = [NoiseInput(spec, network.populations[spec.population].n, streams.noises[name])
                             for name, spec in network.noises.items()]
        # which populations feed which projections
        self.out_of: dict[str, list[ProjectionState]] = {}
        self.into: dict[str, list[ProjectionState]] = {}
        for p in self.projs.values():
            self.out_of.setdefault(p.proj.pre.name, []).append(p)
            if p.has_post_pathway:
                self.into.setdefault(p.proj.post.name, []).append(p)
        # delays: projections whose pre pathway runs later than the spike; a dynamic pre
        # population keeps its spikes of the last max_delay steps (the spikes in flight)
        self.delayed = [p for p in self.projs.values() if p.max_delay]
        self.delayed_from_dyn = [p for p in self.delayed if p.proj.pre.name in self.dyn]
        self.in_flight: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.flight_steps: dict[str, int] = {}
        for p in self.delayed_from_dyn:
            pre = p.proj.pre.name
            self.flight_steps[pre] = max(self.flight_steps.get(pre, 0), p.max_delay)
            self.in_flight[pre] = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        self.continuous = [p for p in self.projs.values() if p.continuous]
        self.mod_listeners = [p for p in self.projs.values()
                              if p.plasticity is not None and p.plasticity.listens_to_modulator]
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
        # numerical guard: spikes per neuron since ``_count_since``; state checked at ``_checked``
        self._spike_count = {name: np.zeros(network.populations[name].n, dtype=np.int64)
                             for name in self.spiking_dyn}
        self._count_since = 0
        self._checked = 0
        self._reported: set[tuple[str, str, str]] = set()
        self._network_hash = spec_hash(network.to_dict())
        #: The partial result of the last run that stopped early (also saved, see :meth:`run`).
        self.partial_result: xr.Dataset | None = None
        self._in_chunk = False
        self._reset_records()
        #: the compiled step loop (``network_native``), None: the numpy path
        self._native = native_network(self)

    def _reset_records(self) -> None:
        self._spikes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {p: [] for p in self.spike_pops}
        self._samples: dict[str, list[np.ndarray]] = {p.name: [] for p in self.sampled}
        self._sample_times: list[int] = []

    # ------------------------------------------------------------------------------------
    def run(self, duration: Any, *, checkpoint_every: Any = None, checkpoint_path: Any = None,
            partial_path: Any = None) -> xr.Dataset:
        """Advance the network by ``duration`` and return what the probes recorded.

        Parameters
        ----------
        duration : float or str
            Biological time to simulate (s), rounded to whole steps.
        checkpoint_every : float or str or None
            Write a checkpoint every this much biological time (s, rounded to whole steps,
            counted from the start of this call). Needs ``checkpoint_path``.
        checkpoint_path : str or os.PathLike or None
            Checkpoint file (``.npz``, data only, written atomically; a directory means
            ``<directory>/spiking_checkpoint.npz``). If it exists when
            the run starts, the run resumes from it: the checkpoint must come from the same
            network, ``dt`` and seed and from a call that started at the same step (a new
            simulator, or one in the same state), else :class:`~plastinet.errors.CheckpointError`.
            The result is bit-identical to an uninterrupted run. A checkpoint is also
            written when the run completes (repeating the call returns the result at once;
            a longer ``duration`` continues it) and on Ctrl-C.
        partial_path : str or os.PathLike or None
            netCDF file (``.nc``) for the partial result if the run stops early; default
            ``<checkpoint_path without suffix>.partial.nc`` when checkpointing, else none.

        Returns
        -------
        xarray.Dataset
            Spikes as an event table (``spike`` dim: ``spike_time``, ``spike_neuron``,
            ``spike_population``), sampled probes on the ``time`` axis, and the final
            weights of plastic projections (``w_<projection>``); see ``docs/spiking.md``.
            The attribute ``partial`` is 0.

        Raises
        ------
        NumericalError
            With ``on_numerical="raise"``, when a state becomes non-finite or a neuron
            fires above ``max_rate`` (the message names the population or projection, the
            variable and the time).
        KeyboardInterrupt, Exception
            Propagated after the results collected so far were saved as a Dataset with
            ``partial = 1`` (to ``partial_path`` if there is one, always to
            :attr:`partial_result` and the exception's ``partial_result`` attribute); a
            note on the exception says where. Ctrl-C takes effect at the next chunk
            boundary (at most ``chunk_steps`` steps), where a checkpoint is also written.
        """
        duration = check_duration(_OWNER, self.network, duration)
        n_steps = int(round(duration / self.dt))
        ckpt = None if checkpoint_path is None else Path(checkpoint_path)
        if ckpt is not None and (ckpt.is_dir() or str(checkpoint_path).endswith(("/", "\\"))):
            ckpt = ckpt / CHECKPOINT_NAME
        every = None
        if checkpoint_every is not None:
            if ckpt is None:
                raise ValidationError(_OWNER, "checkpoint_path", None, "checkpoint_every needs a checkpoint_path (an .npz file)")
            period = to_si(checkpoint_every, "s", name="checkpoint_every", owner=_OWNER)
            if not period > 0 or not math.isfinite(period):
                raise RangeError(_OWNER, "checkpoint_every", period, "expected a biological time > 0 s")
            every = max(1, int(round(period / self.dt)))
        if partial_path is None and ckpt is not None:
            partial_path = ckpt.with_suffix(".partial.nc")
        partial = None if partial_path is None else Path(partial_path)
        if partial is not None and partial.suffix != ".nc":
            raise ValidationError(_OWNER, "partial_path", str(partial), "expected a netCDF file name ending in .nc")
        start = self.step
        end_all = start + n_steps
        self._reset_records()
        self.partial_result = None
        if ckpt is not None and ckpt.exists():
            self._load_checkpoint(ckpt, start, end_all)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=n_steps, initial=self.step - start, unit="step", desc="spiking (numpy)", leave=False)
        self._in_chunk = False
        try:
            with np.errstate(over="ignore", invalid="ignore"), _deferred_sigint() as interrupted:
                while self.step < end_all:
                    n0 = self.step
                    stop = end_all
                    if every is not None:
                        stop = min(stop, start + ((n0 - start) // every + 1) * every)
                    self._in_chunk = True
                    self._chunk(n0, stop)
                    self._in_chunk = False
                    if bar is not None:
                        bar.update(self.step - n0)
                    if interrupted():
                        raise KeyboardInterrupt(f"spiking run interrupted at t = {self.step * self.dt:g} s")
                    at_checkpoint = every is not None and (self.step - start) % every == 0
                    if at_checkpoint or self.step - self._checked >= self._guard_steps:
                        self._guard()
                    if at_checkpoint and self.step < end_all:
                        self._save_checkpoint(ckpt, start, end_all)
                self._guard()
        except BaseException as err:
            try:
                self._abort(err, start, end_all, ckpt, partial)
            except Exception as abort_err:     # never hide the original error
                err.add_note(f"plastinet: the partial results could not be assembled ({abort_err!r})")
            raise
        finally:
            if bar is not None:
                bar.close()
        ds = self._dataset(start, self.step, self._spikes, self._samples, self._sample_times, True)
        if ckpt is not None:
            try:
                self._save_checkpoint(ckpt, start, end_all)
            except OSError as err:              # the result is complete: return it anyway
                warnings.warn(f"spiking run: the final checkpoint could not be written to {ckpt} ({err}); "
                              "the result is returned, but repeating the call will not find it",
                              PlastinetWarning, stacklevel=2)
        if partial is not None and partial.exists():
            partial.unlink()            # a leftover of an earlier, interrupted attempt
        return ds

    def _dataset(self, start: int, stop: int, spikes: dict, samples: dict, sample_times: list[int],
                 with_weights: bool, **attrs: Any) -> xr.Dataset:
        """The result Dataset of records ``spikes``/``samples`` covering steps ``[start, stop)``."""
        final_w = ({name: p.weights_at(stop) for name, p in self.projs.items() if p.rule is not None}
                   if with_weights else {})
        view = SimpleNamespace(network=self.network, dt=self.dt, _spikes=spikes, _samples=samples,
                               _sample_times=sample_times, sampled=self.sampled, projs=self.projs)
        ds = build_dataset(view, final_w)
        return finalize_dataset(ds, backend="numpy", backend_version=__version__, dt=self.dt,
                                seed=self.seed, model_spec=self.network.to_dict(),
                                t_start=start * self.dt, t_stop=stop * self.dt,
                                step_order="groups,thresholds,synapses(mod,pre,continuous,post),resets,end",
                                **{"partial": 0, **attrs})

    # -- reliability: guards, checkpoints, partial results ---------------------------------
    def _states(self) -> Iterator[tuple[str, str, str, np.ndarray]]:
        """``(kind, name, variable, array)`` of every floating-point state the guard checks.

        Projections come first: a diverging plasticity rule is the usual cause of
        non-finite neuron states.
        """
        for name, p in self.projs.items():
            for var, arr in _projection_state(p).items():
                if arr.dtype.kind == "f":
                    yield "projection", name, var.replace("trace_", "trace ").replace(".val", ""), arr
        for name, d in self.dyn.items():
            for var, arr in d.state().items():
                if arr.dtype.kind == "f":
                    yield "population", name, var.replace("x.", ""), arr
        for name, m in self.mods.items():
            if isinstance(m, _Spiking):
                yield "modulator", name, "value", np.array(m.val)

    def _first_nonfinite(self) -> tuple[str, str, str, str] | None:
        for kind, name, var, arr in self._states():
            summary = nonfinite_summary(arr)
            if summary is not None:
                return kind, name, var, summary
        return None

    def _guard(self) -> None:
        """Check every state for NaN/inf and every LIF neuron's rate; report per the policy."""
        now, dt = self.step, self.dt
        span = (f"between t = {self._checked * dt:g} s (step {self._checked}, last check) and "
                f"t = {now * dt:g} s (step {now})")
        bad = []
        for kind, name, var, arr in self._states():
            summary = None if (kind, name, var) in self._reported else nonfinite_summary(arr)
            if summary is not None:
                self._reported.add((kind, name, var))
                bad.append((f"{kind} {name!r}, {var}", f"{var} of {kind} {name!r} ({summary})"))
        if bad:
            span += self._first_bad_sample(self._checked)
            report_numerical(self.on_numerical,
                             f"spiking engine: non-finite values {span}: " + "; ".join(b[1] for b in bad)
                             + ". Reduce weights, learning rates or input rates, or check the parameters",
                             step=now, where=bad[0][0], time=now * dt, stacklevel=4)
        window = now - self._count_since
        if window >= self._rate_window:
            for name, counts in self._spike_count.items():
                key = ("population", name, "rate")
                rates = counts / (window * dt)
                k = int(np.argmax(rates)) if rates.size else 0
                if key not in self._reported and rates.size and rates[k] > self.max_rate:
                    self._reported.add(key)
                    report_numerical(self.on_numerical,
                                     f"spiking engine: runaway firing in population {name!r}: neuron {k} fired "
                                     f"at {rates[k]:.4g} Hz (population mean {rates.mean():.4g} Hz) between "
                                     f"t = {self._count_since * dt:g} s and t = {now * dt:g} s, above "
                                     f"max_rate = {self.max_rate:g} Hz; check weights, reset and refractory "
                                     "period, or raise max_rate",
                                     step=now, where=f"population {name!r}, rate", time=now * dt, stacklevel=4)
                elif (self.warn_rate is not None and window >= self._warn_window and rates.size
                      and self.max_rate >= rates[k] > self.warn_rate and key not in self._reported
                      and ("population", name, "plausible rate") not in self._reported):
                    self._reported.add(("population", name, "plausible rate"))
                    warn_runaway(f"spiking engine: population {name!r}: neuron {k} fired at {rates[k]:.4g} Hz "
                                 f"(population mean {rates.mean():.4g} Hz) between t = {self._count_since * dt:g} s "
                                 f"and t = {now * dt:g} s", self.warn_rate)
                counts[:] = 0
            self._count_since = now
        self._checked = now

    def _first_bad_sample(self, since: int) -> str:
        """`` (first seen by probe P at t = ...)`` for the earliest non-finite sample after ``since``."""
        times = self._sample_times
        for k in range(int(np.searchsorted(np.asarray(times, dtype=np.int64), since, side="right")), len(times)):
            for probe in self.sampled:
                if not np.isfinite(self._samples[probe.name][k]).all():
                    return f" (first seen by probe {probe.name!r} at t = {times[k] * self.dt:g} s)"
        return ""

    def _save_checkpoint(self, path: Path, start: int, stop: int) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name, d in self.dyn.items():
            arrays.update({f"pop/{name}/{k}": v for k, v in d.state().items()})
        for name, p in self.projs.items():
            arrays.update({f"proj/{name}/{k}": v for k, v in _projection_state(p).items()})
        for name, m in self.mods.items():
            if isinstance(m, _Spiking):
                arrays[f"mod/{name}/val"], arrays[f"mod/{name}/last"] = np.array(m.val), np.array(m.last)
        for name, arr in self.last_spike.items():
            arrays[f"last_spike/{name}"] = arr
        for name, (st, nn) in self.in_flight.items():
            arrays[f"in_flight/{name}/step"], arrays[f"in_flight/{name}/neuron"] = st, nn
        for name, arr in self._spike_count.items():
            arrays[f"spike_count/{name}"] = arr
        for pop, chunks in self._spikes.items():
            arrays[f"rec/spikes/{pop}/step"] = (np.concatenate([c[0] for c in chunks]) if chunks
                                                else np.zeros(0, np.int64))
            arrays[f"rec/spikes/{pop}/neuron"] = (np.concatenate([c[1] for c in chunks]) if chunks
                                                  else np.zeros(0, np.int64))
        for name, rows in self._samples.items():
            if rows:
                arrays[f"rec/samples/{name}"] = np.stack(rows)
        arrays["rec/sample_times"] = np.asarray(self._sample_times, dtype=np.int64)
        meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "network_hash": self._network_hash,
                "dt": self.dt, "seed": self.seed, "step": self.step, "run_start": start, "run_stop": stop,
                "reward_rngs": {name: g.bit_generator.state for name, g in self.reward_rngs.items()},
                "reward_queue": [list(item) for item in self.reward_queue],
                "reward_counter": self._reward_counter, "count_since": self._count_since,
                "checked": self._checked, "reported": sorted(map(list, self._reported))}
        save_npz_checkpoint(path, arrays, meta)

    def _load_checkpoint(self, path: Path, start: int, stop: int) -> None:
        arrays, meta = load_npz_checkpoint(path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
        if meta.get("network_hash") != self._network_hash:
            raise CheckpointError(path, "network", str(meta.get("network_hash"))[:12] + "...",
                                  "this checkpoint was written by a different network; use another "
                                  "checkpoint_path or delete the file")
        if meta.get("dt") != self.dt:
            raise CheckpointError(path, "dt", meta.get("dt"), f"this run has dt = {self.dt:g} s; resume with "
                                  f"dt = {meta.get('dt')} or delete the file")
        if meta.get("seed") != self.seed:
            raise CheckpointError(path, "seed", meta.get("seed"), f"this run has seed {self.seed}; "
                                  f"pass seed={meta.get('seed')} to resume, or delete the file")
        if meta.get("run_start") != start:
            raise CheckpointError(path, "run_start", meta.get("run_start"),
                                  f"the checkpointed run started at step {meta.get('run_start')}, this one at "
                                  f"step {start}; resume with a new simulator repeating the same call")
        if meta["step"] > stop:
            raise CheckpointError(path, "duration", (stop - start) * self.dt,
                                  f"the checkpoint is at t = {meta['step'] * self.dt:g} s, beyond the end of "
                                  f"this run; use duration >= {(meta['step'] - start) * self.dt:g} s")
        try:
            self._restore(arrays, meta)
        except (KeyError, ValueError, TypeError, IndexError) as err:
            raise CheckpointError(path, "contents", type(err).__name__,
                                  f"an incomplete or inconsistent checkpoint ({err}); delete the file") from None

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        def group(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: np.array(v) for k, v in arrays.items() if k.startswith(prefix)}

        for name, d in self.dyn.items():
            state = group(f"pop/{name}/")
            if set(state) != set(d.state()):
                raise KeyError(f"population {name!r}")
            d.load_state(state)
        for name, p in self.projs.items():
            state = group(f"proj/{name}/")
            if set(state) != set(_projection_state(p)) or state["w"].shape != p.w.shape:
                raise KeyError(f"projection {name!r}")
            _set_projection_state(p, state)
        for name, m in self.mods.items():
            if isinstance(m, _Spiking):
                m.val, m.last = float(arrays[f"mod/{name}/val"]), int(arrays[f"mod/{name}/last"])
        for name in self.last_spike:
            self.last_spike[name] = np.array(arrays[f"last_spike/{name}"])
        for name in self.in_flight:
            self.in_flight[name] = (np.array(arrays[f"in_flight/{name}/step"]),
                                    np.array(arrays[f"in_flight/{name}/neuron"]))
        for name in self._spike_count:
            self._spike_count[name] = np.array(arrays[f"spike_count/{name}"])
        for name, g in self.reward_rngs.items():
            g.bit_generator.state = meta["reward_rngs"][name]
        self.reward_queue = [(int(a), int(b), str(c), float(d)) for a, b, c, d in meta["reward_queue"]]
        self._reward_counter = int(meta["reward_counter"])
        self._count_since, self._checked = int(meta["count_since"]), int(meta["checked"])
        self._reported = {tuple(k) for k in meta["reported"]}
        for pop in self._spikes:
            s, i = arrays[f"rec/spikes/{pop}/step"], arrays[f"rec/spikes/{pop}/neuron"]
            self._spikes[pop] = [(s, i)] if s.size else []
        for name in self._samples:
            rows = arrays.get(f"rec/samples/{name}")
            self._samples[name] = [] if rows is None else list(rows)
        self._sample_times = arrays["rec/sample_times"].tolist()
        self.step = int(meta["step"])

    def _abort(self, err: BaseException, start: int, stop: int, ckpt: Path | None, partial: Path | None) -> None:
        """Save what a run that stops early has collected; annotate ``err`` with where it went.

        At a chunk boundary (Ctrl-C, a numerical error) the state is consistent: the partial
        result includes the weights at that time, and on Ctrl-C a checkpoint is written
        (unless the state is non-finite: the last good checkpoint is kept). An exception
        inside a step leaves that step half done: only the records of completed steps are
        kept, without weights.
        """
        safe = self.step
        consistent = not self._in_chunk
        notes = []
        if ckpt is not None and consistent and isinstance(err, KeyboardInterrupt) and self._first_nonfinite() is None:
            try:
                self._save_checkpoint(ckpt, start, stop)
                notes.append(f"plastinet: checkpoint at t = {safe * self.dt:g} s written to {ckpt}; "
                             "repeat the call to resume")
            except Exception as save_err:   # the original error matters more
                notes.append(f"plastinet: could not write the checkpoint {ckpt} ({save_err})")
        spikes = {}
        for pop, chunks in self._spikes.items():
            kept = [(s[s < safe], i[s < safe]) for s, i in chunks]
            spikes[pop] = [c for c in kept if c[0].size]
        n_keep = int(np.searchsorted(np.asarray(self._sample_times, dtype=np.int64), safe))
        samples = {name: rows[:n_keep] for name, rows in self._samples.items()}
        reason = f"{type(err).__name__}: {err}".rstrip(": ")
        ds = self._dataset(start, safe, spikes, samples, self._sample_times[:n_keep], consistent,
                           partial=1, partial_reason=reason[:500], partial_weights=int(consistent),
                           t_requested=stop * self.dt)
        self.partial_result = ds
        try:
            err.partial_result = ds  # type: ignore[attr-defined]
        except AttributeError:
            pass
        if partial is not None:
            try:
                from plastinet.io.result_files import save_result

                save_result(ds, partial, rescue=True)
                notes.append(f"plastinet: partial results up to t = {safe * self.dt:g} s (of {stop * self.dt:g} s) "
                             f"saved to {partial} (attribute partial = 1)")
            except Exception as save_err:
                notes.append(f"plastinet: could not save the partial results to {partial} ({save_err})")
        else:
            notes.append(f"plastinet: partial results up to t = {safe * self.dt:g} s are in the exception's and "
                         "the simulator's partial_result attribute (attribute partial = 1)")
        for note in notes:
            err.add_note(note)

    # ------------------------------------------------------------------------------------
    def _continuous_active(self, step: int) -> bool:
        for p in self.continuous:
            mod = self.mods[p.rule.modulator]
            if isinstance(mod, _Spiking) or mod.value(step) != 0.0:
                return True
        return False

    def _chunk(self, n0: int, end_all: int) -> None:
        if self._native is not None:
            self._native.chunk(n0, end_all)
            return
        span = self._span if self.spiking_dyn else self.chunk_steps
        end = min(n0 + span, end_all)
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
        if end < n0 + span:
            events = {k: (s[: np.searchsorted(s, end)], i[: np.searchsorted(s, end)]) for k, (s, i) in events.items()}
        arrivals = self._arrivals(n0, end, events)
        last = end - 1
        bulk, bulk_arr = _before(events, last), _before(arrivals, last)
        spikes: dict[str, np.ndarray] = {}
        if self.dyn:
            K = end - n0
            snaps = None
            if self.spiking_dyn:
                # a static projection's pre pathway only reads its weights: nothing to roll back
                snaps = {p.name: p.snapshot() for p, _, st, _ in self._pre_work(bulk, bulk_arr)
                         if st.size and (p.plasticity is not None or p.stp is not None)}
            incs = self._bulk(n0, K, bulk, bulk_arr)
            k_star, spikes = self._integrate(n0, K, incs)
            if self.spiking_dyn:
                self._span = _next_span(self._span, K, k_star, self.chunk_steps)
            if k_star < K - 1:
                last = n0 + k_star
                for name, snap in (snaps or {}).items():
                    self.projs[name].restore(snap)
                bulk, bulk_arr = _before(bulk, last), _before(bulk_arr, last)
                self._bulk(n0, None, bulk, bulk_arr)
        else:
            self._bulk(n0, None, bulk, bulk_arr)
        self._commit_records(bulk)
        at_last = {}
        for k, (s, i) in events.items():
            lo, hi = np.searchsorted(s, [last, last + 1])
            if hi > lo:
                at_last[k] = i[lo:hi]
        at_last.update({k: v for k, v in spikes.items() if v.size})
        rows_last = {}
        for k, (s, r) in arrivals.items():
            lo, hi = np.searchsorted(s, [last, last + 1])
            rows_last[k] = r[lo:hi]
        self._final_step(last, at_last, rows_last)
        self.step = last + 1

    def _arrivals(self, n0: int, end: int, events: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``(steps, rows)`` reached in ``[n0, end)`` by delayed pre spikes, per delayed projection.

        Source spikes are known for any window; spikes of dynamic populations inside the
        chunk happen only in its last step and reach rows with delay 0 there
        (:meth:`_final_step`), so earlier ones come from :attr:`in_flight`.
        """
        out = {}
        for p in self.delayed:
            pre = p.proj.pre.name
            src = self.sources.get(pre)
            if src is None:
                st, nn = self.in_flight[pre]
            else:
                st, nn = events[pre]
                lo = max(0, n0 - p.max_delay)
                if lo < n0:
                    s0, i0 = src.events(lo, n0)
                    st, nn = np.concatenate([s0, st]), np.concatenate([i0, nn])
            out[p.name] = p.arrivals(st, nn, n0, end)
        return out

    def _pre_work(self, events: dict, arrivals: dict) -> Iterator[tuple[ProjectionState, str, np.ndarray, np.ndarray]]:
        """``(projection, key, steps, rows)`` of the bulk pre pathways in canonical order.

        ``key`` names the event list (shared by the undelayed projections of one source).
        """
        for src, (steps, neurons) in events.items():
            for p in self.out_of.get(src, ()):
                if p.max_delay:
                    yield (p, p.name, *arrivals[p.name])
                else:
                    yield p, src, steps, neurons
        for p in self.delayed_from_dyn:
            yield (p, p.name, *arrivals[p.name])

    def _bulk(self, n0: int, K: int | None, events: dict, arrivals: dict) -> dict:
        """Pre pathways of the chunk's events (not the last step); increments if ``K`` is given."""
        incs: dict[tuple[str, str], np.ndarray] = {}
        rounds_of: dict[str, list] = {}
        for p, key, steps, neurons in self._pre_work(events, arrivals):
            if not steps.size:
                continue
            rounds = rounds_of.get(key)
            if rounds is None:
                rounds = rounds_of[key] = _rounds(neurons)
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
            # canonical summation order (step, pre row, synapse), as in one-step mode
            st_a, pre_a, post_a, val_a = (np.concatenate(x) for x in zip(*parts))
            if len(parts) > 1:
                o = np.lexsort((pre_a, st_a))
                st_a, post_a, val_a = st_a[o], post_a[o], val_a[o]
            key2 = (post_name, p.target)
            arr = incs.get(key2)
            if arr is None:
                arr = incs[key2] = np.zeros((K, p.n_post))
            np.add.at(arr, (st_a - n0, post_a), val_a)
        return incs

    def _integrate(self, n0: int, K: int, incs: dict) -> tuple[int, dict[str, np.ndarray]]:
        """Groups + thresholds for K steps from ``n0``, stopping at the first spike; adds increments, then noise."""
        dyn = list(self.dyn.values())
        spk_states = list(self.spiking_dyn.items())
        if (len(dyn) == 1 and len(spk_states) == 1 and hasattr(dyn[0], "fast_chunk") and dyn[0].v.size == 1
                and not self.noise_inputs):
            name, d = spk_states[0]
            k = d.fast_chunk(K, {t: arr for (pop, t), arr in incs.items()})
            idx = d.threshold()
            return k, ({name: idx} if idx.size else {})
        inc_list = []
        for (pop, target), arr in incs.items():
            rows = np.flatnonzero(arr.any(axis=1))
            inc_list.append((self.dyn[pop], target, arr, set(rows.tolist())))
        noise = [(self.dyn[x.population], x) for x in self.noise_inputs]
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
            for d, x in noise:
                d.receive(x.target, x.row(n0 + k))
        return K - 1, {}

    def _commit_records(self, bulk: dict) -> None:
        for k, (s, i) in bulk.items():
            if not s.size:
                continue
            if k in self._spikes:
                self._spikes[k].append((s, i))
            if k in self.last_spike:
                self.last_spike[k][i] = s

    def _modulator_events(self, s: int, spk: dict[str, np.ndarray]) -> None:
        """Synapses slot, order -2, of step ``s``: rewards due at ``s`` and the modulator
        sources' spikes ``spk`` make modulators jump (dopamine synapses integrated up to ``s`` first)."""
        events: dict[str, float] = {}
        while self.reward_queue and self.reward_queue[0][0] == s:
            _, _, mod, amount = heapq.heappop(self.reward_queue)
            events[mod] = events.get(mod, 0.0) + amount
        for src, mods in self.mod_sources.items():
            if src in spk:
                for m in mods:
                    events[m] = events.get(m, 0.0) + spk[src].size * self.mods[m].increment
        for m, amount in events.items():
            for p in self.mod_listeners:
                if p.rule.modulator == m:
                    p.plasticity.before_modulator_jump(s)
            self.mods[m].jump(s, amount)

    def _schedule_rewards(self, s: int, spk: dict[str, np.ndarray]) -> None:
        """End slot of step ``s``: a coincidence (n2 in ``spk`` within the window after n1's
        last spike before ``s``) schedules its reward after a drawn delay."""
        for rname, rew in self.network.rewards.items():
            idx = spk.get(rew.post)
            if idx is not None and np.any(idx == rew.post_neuron):
                lag = s - self.last_spike[rew.pre][rew.pre_neuron]
                if 0 < lag * self.dt <= rew.window + 1e-12 * self.dt:
                    delay = self.reward_rngs[rname].uniform(rew.delay_min, rew.delay_max)
                    due = s + max(1, int(round(delay / self.dt)))
                    self._reward_counter += 1
                    heapq.heappush(self.reward_queue, (due, self._reward_counter, rew.modulator, rew.amount))

    def _final_step(self, s: int, spk: dict[str, np.ndarray], rows_at: dict[str, np.ndarray]) -> None:
        """Synapses slot, resets and end slot of step ``s`` (groups/thresholds already done).

        ``spk``: spikes at ``s`` by population; ``rows_at``: rows of delayed projections
        reached at ``s`` by earlier spikes (and by source spikes at ``s`` with delay 0).
        """
        self._modulator_events(s, spk)
        # (-1) pre pathways, by projection name
        acc: dict[tuple[str, str], np.ndarray] = {}
        for p in self.projs.values():
            if p.max_delay:
                idx = rows_at[p.name]
                now = spk.get(p.proj.pre.name) if p.proj.pre.name in self.dyn else None
                if now is not None:             # rows with delay 0 of this step's spikes
                    idx = np.sort(np.concatenate([idx, p.arrivals(np.full(now.size, s), now, s, s + 1)[1]]))
                if not idx.size:
                    continue
            else:
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
        for x in self.noise_inputs:
            self.dyn[x.population].receive(x.target, x.row(s))
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
        self._schedule_rewards(s, spk)
        for name, (st, nn) in self.in_flight.items():
            keep = int(np.searchsorted(st, s + 1 - self.flight_steps[name]))
            idx = spk.get(name)
            if idx is not None:
                st, nn = np.concatenate([st[keep:], np.full(idx.size, s, dtype=np.int64)]), np.concatenate([nn[keep:], idx])
            elif keep:
                st, nn = st[keep:], nn[keep:]
            self.in_flight[name] = (st, nn)
        for name, idx in spk.items():
            counts = self._spike_count.get(name)
            if counts is not None:
                counts[idx] += 1
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
        progress: bool = False, chunk_steps: int = 256, *, on_numerical: str = "raise",
        max_rate: Any = None, checkpoint_every: Any = None, checkpoint_path: Any = None,
        partial_path: Any = None) -> xr.Dataset:
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
    on_numerical : {"raise", "warn"}
        Numerical policy (see :class:`Simulator`).
    max_rate : float or str or None
        Runaway-rate limit (Hz) of LIF neurons (see :class:`Simulator`).
    checkpoint_every, checkpoint_path, partial_path
        Durable runs (see :meth:`Simulator.run`).

    Returns
    -------
    xarray.Dataset
        See :meth:`Simulator.run`.
    """
    sim = Simulator(network, dt=dt, seed=seed, progress=progress, chunk_steps=chunk_steps,
                    on_numerical=on_numerical, max_rate=max_rate)
    return sim.run(duration, checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path,
                   partial_path=partial_path)
