"""A fast-weight memory in spiking synapses, written and read one phase at a time.

:class:`SpikingMemory` keeps the fast weights of a Hebbian, decayed Hebbian, delta, gated
delta or three-factor FWP in the plastic synapses of spiking networks and runs every write and every read as its own simulation
(:func:`plastinet.simulate`), carrying the synaptic weights from one run to the next. A
programmer outside the network can therefore compute step ``t``'s keys, values and ``beta``
from the previous step's *spiking* read-out (the recurrent programmer of Irie et al. 2021),
which a single precomputed network cannot do. docs/spiking.md ("A spiking memory run phase
by phase") gives the construction and the measured figures.

Write phase of step ``t`` (duration ``phase``):

* ``keys``: ``d_phi * neurons_per_feature`` Poisson neurons, feature ``f`` firing at
  ``rate * phi(k_t)_f / s_t`` (``s_t`` the largest feature value of the phase); they reach
  the post units through the plastic projection ``fast``;
* the teacher: value neurons (a positive and a negative channel of ``value_neurons``
  Poisson neurons per value dimension) give the post units' ``soma`` the mean ``v_t``;
* delta rule only, the old prediction ``W_{t-1} phi(k_t)``: an independent copy of the key
  population (``keys_copy``, same rates, own spikes) drives ``dend`` through *static*
  synapses holding the weights at the start of the phase. The error ``soma - dend`` is the
  rate rule's ``v_t - W_{t-1} phi(k_t)`` in expectation and, not sharing spikes with the
  presynaptic traces of ``fast``, is independent of them: the expected weight change is the
  rate step for every ``beta`` (``beta |phi|^2 > 1`` included) and has no finite-size bias;
* with ``error="lif"`` the error is carried by spiking error neurons (Nengo's PES): per value
  dimension a positive and a negative group of ``error_neurons`` LIF neurons with bias
  current ``I_b`` receive ``I_b +- G (v_t - W_{t-1} phi(k_t))`` from the value and copied key
  spikes, and their filtered spikes, weighted by the linear decoder ``1 / (2 G f'(I_b))``,
  form ``soma - dend``. The LIF rate curve ``f`` makes the decoded error
  ``(f(I_b + G e) - f(I_b - G e)) / (2 G f'(I_b))``: the even terms cancel, the odd ones
  of third and higher order remain;
* the neuromodulator ``beta`` is 0 in the first quarter of the phase (the filters settle)
  and ``beta_t s_t`` afterwards; the rule (:class:`~plastinet.spiking.PES` or
  :class:`~plastinet.spiking.ModulatedHebbian`) has ``eta = 1 / (n rate^2 kappa^2 T_learn)``.

Decay (DecayedHebbian, GatedDelta; :meth:`SpikingMemory.decay`): modulator-gated synaptic
decay, one phase per decaying feature ``f``: its key neurons and their copy fire, the copy
drives ``dend`` with ``W[:, f]`` through static synapses, ``soma`` is silent, and PES synapses
gated by ``1 - alpha_f`` move ``W[:, f]`` to ``alpha_f W[:, f]`` in expectation.

Eligibility (ThreeFactor with ``gamma > 0``): a second set of plastic synapses from the key
neurons holds ``E``; per step it decays by ``gamma`` (replay as above), receives the Hebbian
write ``beta v phi(k)^T``, and a consolidation replay (the copy drives ``soma`` through static
synapses holding ``E``, ModulatedHebbian synapses gated by ``m_t``) adds ``m_t E`` to ``W``.

Read phase of a query (duration ``phase``): the key neurons fire at ``rate * phi(q)/s_q``
and reach the read-out through static synapses holding the current weights. With
``readout="rate"`` the read-out is ``s_q`` times the mean of a :class:`~plastinet.spiking.RateUnits`
input over the last three quarters of the phase; with ``readout="lif"`` it is decoded from
the spike counts of a positive and a negative group of ``readout_neurons`` LIF neurons per
value dimension (input current ``I_b +- G y``) by inverting the deterministic LIF rate curve
of the pair, ``y = h^{-1}(r_+ - r_-)`` with ``h(y) = f(I_b + G y) - f(I_b - G y)``.

Weights are stored per synapse, ``w_ij = W_{i f(j)} / (neurons_per_feature * rate * kappa)``
(``kappa = (dt/tau) / (1 - exp(-dt/tau))``, the mean of a once-per-step sampled filter).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from plastinet.errors import RangeError, ShapeError, UnsupportedError, ValidationError
from plastinet.simulation import check_run_options, simulate
from plastinet.spiking.network import (
    LIF,
    Network,
    PoissonGroup,
    ProgrammedSignal,
    Projection,
    RateUnits,
    SpikeProbe,
    StateProbe,
)
from plastinet.spiking.rules import PES, ModulatedHebbian

__all__ = ["SpikingMemory", "lif_rate", "READOUTS", "ERRORS"]

_OBJ = "SpikingMemory"
READOUTS = ("rate", "lif")     #: read-out populations: RateUnits or LIF neurons
ERRORS = ("rate", "lif")       #: carriers of the delta rule's error: RateUnits inputs or LIF error neurons

# The LIF neurons of read-out and error populations: plastinet's LIF defaults; the bias
# current is twice the rheobase (about 94 Hz at dt = 1 ms) and the gain maps the value range onto one
# rheobase current, so the negative group falls silent at |y| = y_range.
_LIF = LIF(name="lif_template", n=1)
_RHEOBASE = (_LIF.v_thresh - _LIF.v_rest) / _LIF.r_m


def lif_rate(current: Any, dt: float = 0.0) -> np.ndarray:
    """Deterministic firing rate (Hz) of the read-out and error LIF neurons at a constant current (A).

    ``1 / (t_ref + tau_m log((v_inf - v_reset) / (v_inf - v_thresh)) + dt / 2)`` for
    ``v_inf = v_rest + r_m I > v_thresh``, else 0 (plastinet's :class:`~plastinet.spiking.LIF`
    defaults). A clock-driven run detects the threshold crossing at the end of its step, so
    the interval is on average half a step (``dt``, s) longer than in continuous time
    (measured at dt = 1 ms with Poisson input, -50 %, +50 % and +100 % of the rheobase around
    the bias current: within 2 %; 4 % at the bias without input noise).
    """
    v_inf = _LIF.v_rest + _LIF.r_m * np.asarray(current, dtype=np.float64)
    above = v_inf > _LIF.v_thresh
    safe = np.where(above, v_inf, _LIF.v_thresh + 1.0)
    isi = _LIF.t_ref + _LIF.tau_m * np.log((safe - _LIF.v_reset) / (safe - _LIF.v_thresh)) + 0.5 * dt
    return np.where(above, 1.0 / isi, 0.0)


def _lif_slope(current: float, dt: float) -> float:
    """``f'(I)`` of :func:`lif_rate` (Hz / A), by a central difference."""
    h = 1e-4 * current
    return float((lif_rate(current + h, dt) - lif_rate(current - h, dt)) / (2 * h))


class SpikingMemory:
    """Fast weights ``W (d_v, d_phi)`` of a Hebbian-family or delta-family FWP held by spiking synapses.

    Parameters
    ----------
    rule : plastinet.fwp.Hebbian, DecayedHebbian, Delta, GatedDelta or ThreeFactor
        The rate rule (its feature map must be non-negative; the Hebbian normaliser is not
        realised). The caller applies the feature map: :meth:`write` and :meth:`read` take
        features ``phi(k)``, ``phi(q)``.
    d_phi, d_v : int
        Feature and value dimensions.
    neurons_per_feature : int
        Key/query neurons per feature.
    rate : float
        Largest key firing rate (Hz).
    phase : float
        Duration of each write and read phase (s).
    value_neurons : int or None
        Teacher neurons per value channel (default ``neurons_per_feature``).
    readout : {"rate", "lif"}
        Read-out population: RateUnits, or LIF neurons decoded from their spike counts.
    readout_neurons : int
        LIF read-out neurons per value dimension and sign.
    error : {"rate", "lif"}
        Carrier of the delta rule's error: RateUnits inputs, or spiking LIF error neurons.
    error_neurons : int
        LIF error neurons per value dimension and sign.
    y_range : float
        Value range (value units) mapped onto one rheobase current by the LIF read-out and
        error neurons (``G = I_rheobase / y_range``).
    tau : float
        Filter time constant of traces and RateUnits inputs (s), ``<= phase / 12``.
    dt : float
        Time step (s).
    seed : int
        Seed of the first run; run ``n`` uses ``SeedSequence([seed, n])``.
    backend : str, Backend or None
        Any backend with the ``"spiking"`` capability.
    run_options : mapping or None
        Reliability options of every run (:data:`plastinet.simulation.RUN_OPTIONS`).
    """

    def __init__(self, rule: Any, d_phi: int, d_v: int, *, neurons_per_feature: int = 50, rate: float = 100.0,
                 phase: float = 0.2, value_neurons: int | None = None, readout: str = "rate",
                 readout_neurons: int = 20, error: str = "rate", error_neurons: int = 20, y_range: float = 1.0,
                 tau: float = 0.01, dt: float = 1e-3, seed: int = 0, backend: Any = None,
                 run_options: Any = None) -> None:
        from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, ThreeFactor

        if type(rule) not in (Hebbian, DecayedHebbian, Delta, GatedDelta, ThreeFactor):
            raise UnsupportedError(_OBJ, "rule", rule, "expected plastinet.fwp.Hebbian, DecayedHebbian, Delta, "
                                   "GatedDelta or ThreeFactor")
        if isinstance(rule, Hebbian) and rule.normalize:
            raise UnsupportedError(_OBJ, "rule", rule, "the attention normaliser has no spiking realisation here")
        for name, val in (("d_phi", d_phi), ("d_v", d_v), ("neurons_per_feature", neurons_per_feature),
                          ("readout_neurons", readout_neurons), ("error_neurons", error_neurons)):
            if not (isinstance(val, (int, np.integer)) and val >= 1):
                raise RangeError(_OBJ, name, val, "expected an integer >= 1")
        for name, val in (("rate", rate), ("phase", phase), ("tau", tau), ("dt", dt), ("y_range", y_range)):
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
                raise RangeError(_OBJ, name, val, "expected a positive finite value")
        if readout not in READOUTS:
            raise ValidationError(_OBJ, "readout", readout, f"allowed: {', '.join(READOUTS)}")
        if error not in ERRORS:
            raise ValidationError(_OBJ, "error", error, f"allowed: {', '.join(ERRORS)}")
        if error == "lif" and not isinstance(rule, (Delta, GatedDelta)):
            raise UnsupportedError(_OBJ, "error", error, "error neurons carry the delta rule's error; "
                                   "the Hebbian rule has none")
        if tau > phase / 12:
            raise RangeError(_OBJ, "tau", tau, f"must be <= phase / 12 = {phase / 12:g} s so the filters settle")
        if abs(phase / (4 * dt) - round(phase / (4 * dt))) > 1e-9:
            raise RangeError(_OBJ, "phase", phase, f"must be a multiple of 4 dt = {4 * dt:g} s")
        self.rule, self.d_phi, self.d_v = rule, int(d_phi), int(d_v)
        self.is_delta = isinstance(rule, (Delta, GatedDelta))
        self.decays = isinstance(rule, (DecayedHebbian, GatedDelta))
        self.n, self.n_v = int(neurons_per_feature), int(value_neurons or neurons_per_feature)
        self.n_r, self.n_e = int(readout_neurons), int(error_neurons)
        self.rate, self.phase, self.tau, self.dt = float(rate), float(phase), float(tau), float(dt)
        self.readout, self.error = readout, error
        self.gain = _RHEOBASE / float(y_range)              # G (A per value unit)
        self.bias = 2.0 * _RHEOBASE                          # I_b (A)
        self.kappa = (dt / tau) / -math.expm1(-dt / tau)
        self.steps_phase = int(round(phase / dt))
        self.t_learn = 3 * (self.steps_phase // 4) * dt
        self.seed, self.backend = seed, backend
        self.run_options = check_run_options(_OBJ + " run_options", run_options)
        self.w = np.zeros((self.d_v, self.d_phi * self.n))  # per-synapse weights (post, pre)
        self.e = np.zeros_like(self.w)                      # ThreeFactor's eligibility synapses
        self.runs = 0
        self._pre = np.tile(np.arange(self.d_phi * self.n), self.d_v)
        self._post = np.repeat(np.arange(self.d_v), self.d_phi * self.n)

    # -- weights ----------------------------------------------------------------------------
    @property
    def weight_unit(self) -> float:
        """Synaptic weight of one unit of rate weight per key neuron, ``1 / (n rate kappa)``."""
        return 1.0 / (self.n * self.rate * self.kappa)

    @property
    def W(self) -> np.ndarray:
        """The fast weights in rate units, ``(d_v, d_phi)``: per-feature sums of the synapses."""
        return self.w.reshape(self.d_v, self.d_phi, self.n).sum(-1) / (self.n * self.weight_unit)

    # -- building blocks --------------------------------------------------------------------
    def _key_rates(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rates ``(phases, d_phi n)`` of feature rows ``(phases, d_phi)`` and their scales ``s``."""
        if feats.min(initial=0.0) < 0:
            raise UnsupportedError(_OBJ, "features", feats.min(), "features become firing rates: they must be "
                                   "non-negative (use 'relu', 'elu+1', 'softmax' or 'dpfp-<nu>')")
        s = feats.max(axis=1)
        s = np.where(s > 0, s, 1.0)
        return np.repeat(feats / s[:, None], self.n, axis=1) * self.rate, s

    def _lif_projection(self, net: Network, lif: LIF, pre: PoissonGroup, weight: np.ndarray,
                        conn: tuple[np.ndarray, np.ndarray], n_per: int) -> None:
        """Static projection ``pre -> lif`` (target ``I_e``).

        ``lif`` has a positive and a negative group of ``n_per`` neurons per value dimension
        (neuron ``(sign d_v + i) n_per + m``); synapse ``s`` of ``conn = (pre index, value
        dimension)`` reaches every neuron of its dimension with current ``+weight[s]``
        (positive group) or ``-weight[s]`` (negative group).
        """
        pre_idx, dim = conn
        first = np.repeat(dim, n_per) * n_per + np.tile(np.arange(n_per), dim.size)
        net.add(Projection(name=f"{lif.name}_from_{pre.name}", pre=pre, post=lif, target="I_e",
                           weight=np.concatenate([np.repeat(weight, n_per), -np.repeat(weight, n_per)]),
                           connectivity=(np.concatenate([np.repeat(pre_idx, n_per)] * 2),
                                         np.concatenate([first, first + self.d_v * n_per]))))

    def _simulate(self, net: Network, phases: int) -> Any:
        run_seed = int(np.random.SeedSequence([self.seed, self.runs]).generate_state(1)[0])
        self.runs += 1
        return simulate(net, phases * self.phase, backend=self.backend, dt=self.dt, seed=run_seed,
                        **self.run_options)

    def _window(self, phase_index: int) -> slice:
        """Steps of the last three quarters of a phase."""
        a = phase_index * self.steps_phase
        return slice(a + self.steps_phase // 4, a + self.steps_phase)

    # -- write ------------------------------------------------------------------------------
    def write(self, phi_k: Any, v: Any, beta: float = 1.0, alpha: Any = None, modulator: float | None = None) -> None:
        """One step of the rule: a write phase, after replay phases where the rule decays.

        * Hebbian: ``W += beta v phi^T``; Delta: ``W += beta (v - W phi) phi^T``;
        * DecayedHebbian, GatedDelta: :meth:`decay` by ``alpha``, then the Hebbian or delta
          write (``alpha W + beta (v - alpha W phi) phi^T = alpha W (I - beta phi phi^T) + beta v phi^T``);
        * ThreeFactor: the eligibility ``E`` is a second set of plastic synapses (same key
          neurons, own post units): ``E`` decays by ``gamma`` (:meth:`decay`), receives the
          Hebbian write ``beta v phi^T``, and a consolidation replay moves ``W += m E``
          (``m`` the modulator; with ``gamma = 0`` one write phase ``W += m beta v phi^T``).

        Parameters
        ----------
        phi_k : array (d_phi,)
            Key features (non-negative).
        v : array (d_v,)
            Value.
        beta : float
            Learning rate, ``>= 0``.
        alpha : float, array (d_phi,) or None
            Decay of DecayedHebbian (scalar or per feature) and GatedDelta (scalar) in
            ``[0, 1]``; default the rule's ``decay``.
        modulator : float or None
            ThreeFactor's neuromodulator ``m_t`` (any sign; default 1).
        """
        from plastinet.fwp import ThreeFactor

        phi_k = np.asarray(phi_k, dtype=np.float64).reshape(-1)
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if phi_k.shape != (self.d_phi,) or v.shape != (self.d_v,):
            raise ShapeError(_OBJ, "phi_k", phi_k, f"expected phi_k ({self.d_phi},) and v ({self.d_v},)")
        if not (np.all(np.isfinite(phi_k)) and np.all(np.isfinite(v)) and math.isfinite(beta) and beta >= 0):
            raise RangeError(_OBJ, "beta", beta, "expected finite features and values and beta >= 0")
        three = isinstance(self.rule, ThreeFactor)
        if alpha is not None and not self.decays:
            raise UnsupportedError(_OBJ, "alpha", alpha, f"{type(self.rule).__name__} has no decay gate")
        if modulator is not None and not three:
            raise UnsupportedError(_OBJ, "modulator", modulator, f"{type(self.rule).__name__} reads no modulator")
        m = 1.0 if modulator is None else float(modulator)
        if not math.isfinite(m):
            raise RangeError(_OBJ, "modulator", modulator, "expected a finite value")
        if self.decays:
            self.decay(self._alpha(alpha))
        if not three:
            self.w = self._write_phase(self.w, phi_k, v, beta)
        elif self.rule.gamma == 0:
            self.w = self._write_phase(self.w, phi_k, v, m * beta)
        else:
            self.e = self._replay(self.e, self.e, np.full(self.d_phi, 1.0 - self.rule.gamma), decay=True)
            self.e = self._write_phase(self.e, phi_k, v, beta)
            self.w = self._replay(self.w, self.e, np.full(self.d_phi, m), decay=False)

    def _write_phase(self, w: np.ndarray, phi_k: np.ndarray, v: np.ndarray, beta: float) -> np.ndarray:
        """One write phase on the synapses ``w`` (Hebbian or delta, as the rule): the new weights."""
        key_rates, s = self._key_rates(phi_k[None])
        s_v = float(np.abs(v).max()) or 1.0
        n_k = self.d_phi * self.n
        net = Network()
        keys = net.add(PoissonGroup(name="keys", n=n_k, rate=key_rates[0]))
        values = net.add(PoissonGroup(name="values", n=2 * self.d_v * self.n_v,
                                      rate=np.concatenate([np.repeat(np.maximum(v, 0), self.n_v),
                                                           np.repeat(np.maximum(-v, 0), self.n_v)]) * (self.rate / s_v)))
        out = net.add(RateUnits(name="out", n=self.d_v, tau=self.tau, inputs=("soma", "dend", "y")))
        q4 = self.steps_phase // 4
        net.add(ProgrammedSignal(name="beta", values=[0.0] + [beta * s[0]] * 3, interval=q4 * self.dt))
        pre_v = np.arange(2 * self.d_v * self.n_v)
        dim_v = (pre_v // self.n_v) % self.d_v
        sign_v = np.where(pre_v < self.d_v * self.n_v, 1.0, -1.0)
        # the copied keys carry the old prediction W_{t-1} phi(k) (delta rule)
        copy = net.add(PoissonGroup(name="keys_copy", n=n_k, rate=key_rates[0])) if self.is_delta else None
        w_old = w[self._post, self._pre]
        if self.error == "rate":
            net.add(Projection(name="teacher", pre=values, post=out, target="soma",
                               weight=sign_v * s_v / (self.n_v * self.rate * self.kappa),
                               connectivity=(pre_v, dim_v)))
            if copy is not None:
                net.add(Projection(name="old", pre=copy, post=out, target="dend", weight=w_old * s[0],
                                   connectivity=(self._pre, self._post)))
        else:
            tau_e = _LIF.tau_e
            err = net.add(LIF(name="err", n=2 * self.d_v * self.n_e, i_ext=self.bias))
            self._lif_projection(net, err, values, sign_v * self.gain * s_v / (self.n_v * self.rate * tau_e),
                                 (pre_v, dim_v), self.n_e)
            self._lif_projection(net, err, copy, -self.gain * s[0] * self.kappa * w_old / tau_e,
                                 (self._pre, self._post), self.n_e)
            decoder = 1.0 / (2 * self.gain * _lif_slope(self.bias, self.dt) * self.n_e * self.kappa)
            idx = np.arange(2 * self.d_v * self.n_e)
            positive = idx < self.d_v * self.n_e
            dim_e = (idx // self.n_e) % self.d_v
            net.add(Projection(name="err_plus", pre=err, post=out, target="soma", weight=decoder,
                               connectivity=(idx[positive], dim_e[positive])))
            net.add(Projection(name="err_minus", pre=err, post=out, target="dend", weight=decoder,
                               connectivity=(idx[~positive], dim_e[~positive])))
        if self.is_delta:
            srule = PES(eta=self._eta, tau_pre=self.tau, target_variable="soma", prediction_variable="dend",
                        modulator="beta")
        else:
            srule = ModulatedHebbian(eta=self._eta, tau_pre=self.tau, post_variable="soma", modulator="beta")
        net.add(Projection(name="fast", pre=keys, post=out, target="y", weight=w_old,
                           connectivity=(self._pre, self._post), rule=srule))
        return self._final(self._simulate(net, 1))

    @property
    def _eta(self) -> float:
        """Learning rate of the plastic synapses, ``1 / (n rate^2 kappa^2 T_learn)``."""
        return 1.0 / (self.n * self.rate ** 2 * self.kappa ** 2 * self.t_learn)

    def _alpha(self, alpha: Any) -> np.ndarray:
        from plastinet.fwp import GatedDelta

        if alpha is None:
            if self.rule.decay is None:
                raise ValidationError(_OBJ, "alpha", None, f"{type(self.rule).__name__} needs a decay gate: pass "
                                      "alpha or construct the rule with decay=...")
            alpha = self.rule.decay
        a = np.asarray(alpha, dtype=np.float64)
        if a.ndim == 1 and isinstance(self.rule, GatedDelta):
            raise UnsupportedError(_OBJ, "alpha", alpha, "GatedDelta decays with a scalar alpha")
        a = np.broadcast_to(a, (self.d_phi,)) if a.ndim == 0 else a
        if a.shape != (self.d_phi,) or not np.all((a >= 0) & (a <= 1)):
            raise RangeError(_OBJ, "alpha", alpha, f"expected a scalar or ({self.d_phi},) decay in [0, 1]")
        return a

    def decay(self, alpha: Any) -> None:
        """Modulator-gated synaptic decay of the memory, ``W[:, f] *= alpha_f`` in expectation.

        One replay phase per feature ``f`` with ``alpha_f < 1``: its key neurons fire at
        ``rate``, an independent copy drives ``dend`` through static synapses holding the
        current weights (``<dend> = W[:, f]``), ``soma`` receives nothing, and PES synapses,
        gated by the modulator ``1 - alpha_f`` in the last three quarters, move ``W[:, f]`` by
        ``-(1 - alpha_f) W[:, f]`` in expectation (``alpha_f = 0`` erases the column).

        Parameters
        ----------
        alpha : array (d_phi,)
            Decay per feature in ``[0, 1]``.
        """
        self.w = self._replay(self.w, self.w, 1.0 - np.asarray(alpha, dtype=np.float64), decay=True)

    def _replay(self, w: np.ndarray, source: np.ndarray, mods: np.ndarray, *, decay: bool) -> np.ndarray:
        """Replay phases, one per feature ``f`` with ``mods[f] != 0``: the new weights ``w``.

        Feature ``f``'s key neurons and an independent copy fire at ``rate``; the copy reaches
        the post units through static synapses holding ``source``. ``decay=True``: into
        ``dend``, with PES towards a silent ``soma``, ``w[:, f] -= mods[f] source[:, f]``;
        ``decay=False``: into ``soma``, with ModulatedHebbian, ``w[:, f] += mods[f] source[:, f]``
        (in expectation, rate units).
        """
        feats = np.flatnonzero(mods != 0)
        if feats.size == 0:
            return w
        P = feats.size
        rates = np.zeros((P, self.d_phi))
        rates[np.arange(P), feats] = 1.0
        key_rates = np.repeat(rates, self.n, axis=1) * self.rate
        net = Network()
        keys = net.add(PoissonGroup(name="keys", n=self.d_phi * self.n, rate=key_rates, rate_interval=self.phase))
        copy = net.add(PoissonGroup(name="keys_copy", n=self.d_phi * self.n, rate=key_rates,
                                    rate_interval=self.phase))
        out = net.add(RateUnits(name="out", n=self.d_v, tau=self.tau, inputs=("soma", "dend", "y")))
        mod = np.zeros((P, 4))
        mod[:, 1:] = mods[feats][:, None]
        net.add(ProgrammedSignal(name="beta", values=mod.reshape(-1), interval=(self.steps_phase // 4) * self.dt))
        net.add(Projection(name="source", pre=copy, post=out, target="dend" if decay else "soma",
                           weight=source[self._post, self._pre], connectivity=(self._pre, self._post)))
        if decay:
            srule = PES(eta=self._eta, tau_pre=self.tau, target_variable="soma", prediction_variable="dend",
                        modulator="beta")
        else:
            srule = ModulatedHebbian(eta=self._eta, tau_pre=self.tau, post_variable="soma", modulator="beta")
        net.add(Projection(name="fast", pre=keys, post=out, target="y", weight=w[self._post, self._pre],
                           connectivity=(self._pre, self._post), rule=srule))
        return self._final(self._simulate(net, P))

    def _final(self, ds: Any) -> np.ndarray:
        """The final weights ``(d_v, d_phi n)`` of the plastic projection ``fast`` of a run."""
        w = np.zeros_like(self.w)
        w[ds["fast_post"].values, ds["fast_pre"].values] = ds["w_fast"].values
        return w

    # -- read -------------------------------------------------------------------------------
    def read(self, phi_q: Any) -> np.ndarray:
        """Read the memory with query features ``(Q, d_phi)`` (one phase each): ``(Q, d_v)``."""
        phi_q = np.asarray(phi_q, dtype=np.float64)
        if phi_q.ndim != 2 or phi_q.shape[1] != self.d_phi or not np.all(np.isfinite(phi_q)):
            raise ShapeError(_OBJ, "phi_q", phi_q, f"expected finite query features (Q, {self.d_phi})")
        Q = phi_q.shape[0]
        key_rates, s = self._key_rates(phi_q)
        net = Network()
        keys = net.add(PoissonGroup(name="keys", n=self.d_phi * self.n, rate=key_rates,
                                    rate_interval=self.phase))
        w = self.w[self._post, self._pre]
        y = np.zeros((Q, self.d_v))
        if self.readout == "rate":
            net.add(RateUnits(name="out", n=self.d_v, tau=self.tau, inputs=("y",)))
            net.add(Projection(name="read", pre=keys, post=net.populations["out"], target="y", weight=w,
                               connectivity=(self._pre, self._post)))
            net.add(StateProbe(name="pred", population="out", variable="y", sample_every=self.dt))
            pred = self._simulate(net, Q)["pred"].values
            for j in range(Q):
                y[j] = pred[self._window(j)].mean(axis=0) * s[j]
        else:
            # per-phase query scales s_j enter through the decoder, the synapses hold s = 1
            lif = net.add(LIF(name="readout", n=2 * self.d_v * self.n_r, i_ext=self.bias))
            self._lif_projection(net, lif, keys, self.gain * self.kappa * w / _LIF.tau_e,
                                       (self._pre, self._post), self.n_r)
            net.add(SpikeProbe(name="readout_spikes", population="readout"))
            ds = self._simulate(net, Q)
            sel = ds["spike_population"].values == "readout"
            step = np.rint(ds["spike_time"].values[sel] / self.dt).astype(np.int64)
            neuron = ds["spike_neuron"].values[sel]
            window = self.t_learn
            grid, table = self._readout_table()
            for j in range(Q):
                win = self._window(j)
                inside = (step >= win.start) & (step < win.stop)
                counts = np.bincount(neuron[inside], minlength=2 * self.d_v * self.n_r)
                r = counts.reshape(2, self.d_v, self.n_r).sum(-1) / (self.n_r * window)
                y[j] = np.interp(r[0] - r[1], table, grid) * s[j]
        return y

    def _readout_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``y`` grid and ``h(y) = f(I_b + G y) - f(I_b - G y)`` (increasing) to invert the LIF pair."""
        grid = np.linspace(-1.0, 1.0, 4001) ** 3 * (50.0 * _RHEOBASE / self.gain)
        return grid, (lif_rate(self.bias + self.gain * grid, self.dt) - lif_rate(self.bias - self.gain * grid, self.dt))
