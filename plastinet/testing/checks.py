"""``check_*`` functions of the backend-compliance suite (see :mod:`plastinet.testing`)."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from plastinet.backends import Backend, get_backend
from plastinet.errors import ShapeError, UnsupportedError, ValidationError
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, State, ThreeFactor
from plastinet.testing.reference import rate_reference, spiking_reference

__all__ = ["CHECKS", "CapabilityMissing", "rate_cases", "spiking_cases", "compare_spiking",
           "check_spiking_matches_reference", "check_spiking_seeded_poisson", "check_rate_fwp_matches_reference",
           "check_rate_fwp_state_round_trip", "check_rate_fwp_rejects_bad_input"]

#: Agreement required of a backend with the float64 reference (max abs difference).
RATE_ATOL = 1e-10


class CapabilityMissing(Exception):
    """The backend does not declare what a check needs; the reason says what is missing."""


def _backend(backend: Backend | str) -> Backend:
    return get_backend(backend)


def _need(backend: Backend, capability: str, rule: Rule | None = None) -> None:
    if not backend.supports(capability):
        raise CapabilityMissing(f"backend {backend.name!r} does not declare {capability!r}")
    if rule is not None and not isinstance(rule, backend.rate_rules):
        raise CapabilityMissing(f"backend {backend.name!r} has no lowering of {type(rule).__name__}")


def rate_cases() -> dict[str, tuple[Rule, Callable[[np.random.Generator, tuple], dict[str, Any]]]]:
    """Named rate-rule cases: a rule and a function drawing its gates for shape (B, H, T)."""
    def beta(rng, s, hi=2.0):
        return {"beta": rng.uniform(0.0, hi, size=s)}

    return {
        "hebbian": (Hebbian(), lambda r, s: beta(r, s)),
        "hebbian_normalized_elu": (Hebbian(normalize=True, feature_map="elu+1"), lambda r, s: beta(r, s)),
        "decayed_hebbian_scalar": (DecayedHebbian(), lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s)}),
        "decayed_hebbian_per_key": (DecayedHebbian(),
                                    lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s + (4,))}),
        "delta": (Delta(), lambda r, s: beta(r, s)),
        "delta_l2_keys": (Delta(feature_map="relu"), lambda r, s: beta(r, s, 0.2)),
        "gated_delta": (GatedDelta(), lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s)}),
        "oja": (Oja(), lambda r, s: beta(r, s, 0.1)),
        "three_factor": (ThreeFactor(gamma=0.8), lambda r, s: {**beta(r, s), "modulator": r.normal(size=s)}),
    }


def _inputs(case: str, seed: int, B: int = 2, H: int = 2, T: int = 40, d_k: int = 4, d_v: int = 3):
    rule, gates = rate_cases()[case]
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(B, H, T, d_k))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    q = rng.normal(size=(B, H, T, d_k))
    v = rng.normal(size=(B, H, T, d_v))
    W0 = 0.3 * rng.normal(size=(B, H, d_v, rule.phi.out_dim(d_k)))
    return rule, q, k, v, gates(rng, (B, H, T)), W0


def check_rate_fwp_matches_reference(backend: Backend | str, case: str, seed: int = 0) -> None:
    """Read-outs and final weights equal a step-by-step loop of the rule's equation (1e-10).

    The reference (:func:`plastinet.testing.reference.rate_reference`) is written in the check
    suite from the rules' equations, not taken from any engine.
    """
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    y_ref, W_ref = rate_reference(rule, q, k, v, initial_state=W0, **gates)
    y, W = be.apply_fwp(rule, q, k, v, initial_state=W0, **gates)
    assert y.shape == y_ref.shape and W.shape == W_ref.shape, "shapes differ from the reference"
    assert y.dtype == q.dtype, f"dtype {y.dtype} differs from the inputs' {q.dtype}"
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=RATE_ATOL, err_msg=f"{case}: read-outs differ")
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=RATE_ATOL, err_msg=f"{case}: final weights differ")


def check_rate_fwp_state_round_trip(backend: Backend | str, case: str, seed: int = 1) -> None:
    """Two runs chained through ``return_state`` equal one run and the step-by-step loop."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    y_all, W_all = rate_reference(rule, q, k, v, initial_state=W0, **gates)
    cut = q.shape[2] // 3
    first = {g: a[:, :, :cut] for g, a in gates.items()}
    second = {g: a[:, :, cut:] for g, a in gates.items()}
    y1, s1 = be.apply_fwp(rule, q[:, :, :cut], k[:, :, :cut], v[:, :, :cut], initial_state=W0,
                          return_state=True, **first)
    assert isinstance(s1, State), "return_state=True must return a plastinet.fwp.State"
    y2, W2 = be.apply_fwp(rule, q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], initial_state=s1, **second)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=2), y_all, rtol=0, atol=RATE_ATOL)
    np.testing.assert_allclose(W2, W_all, rtol=0, atol=RATE_ATOL)


def check_rate_fwp_rejects_bad_input(backend: Backend | str, case: str = "delta", seed: int = 2) -> None:
    """Bad shapes and out-of-range learning rates raise plastinet errors naming the argument."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    try:
        be.apply_fwp(rule, q, k[:, :, :-1], v, **gates)
    except ShapeError as err:
        assert "k" in str(err)
    else:
        raise AssertionError("a key sequence of the wrong length was accepted")
    try:
        be.apply_fwp(Delta(), q, k, v, beta=np.full(q.shape[:3], 2.5))
    except ValidationError as err:
        assert "beta" in str(err)
    else:
        raise AssertionError("beta = 2.5 was accepted by the delta rule")


#: Every check with the cases it runs on: ``(check, [case, ...])``.
CHECKS: list[tuple[Callable[..., None], list[str]]] = [
    (check_rate_fwp_matches_reference, list(rate_cases())),
    (check_rate_fwp_state_round_trip, ["hebbian_normalized_elu", "delta", "gated_delta", "three_factor"]),
    (check_rate_fwp_rejects_bad_input, ["delta"]),
]


# --------------------------------------------------------------------------------------
# spiking networks: identical injected spike trains, deterministic neurons
# --------------------------------------------------------------------------------------

#: Agreement required of a backend's spiking weights with the numpy engine (relative).
SPIKE_RTOL = 1e-9
#: Biological time of every spiking check (s).
SPIKE_DURATION = 1.0


def _generator(name: str, n: int, rate: float, duration: float, seed: int, dt: float = 1e-4):
    """A SpikeGenerator with Poisson-like trains (at most one spike per neuron and step)."""
    from plastinet.spiking import SpikeGenerator

    rng = np.random.default_rng(seed)
    steps, idx = [], []
    for k in range(n):
        s = np.unique(rng.integers(0, int(duration / dt), rng.poisson(rate * duration)))
        steps.append(s)
        idx.append(np.full(s.size, k))
    return SpikeGenerator(name=name, n=n, indices=np.concatenate(idx), times=np.concatenate(steps) * dt)


def spiking_cases() -> dict[str, Callable[[], Any]]:
    """Named spiking cases: functions building a Network with spike-generator inputs.

    Every spike rule of the engine appears (pair STDP all-to-all / nearest, additive /
    soft-bound; triplet; dopamine STDP with rewards and spiking dopamine sources;
    modulated Hebbian onto rate units and onto spiking neurons; PES; Tsodyks-Markram), plus
    the neuron models (current LIF, conductance LIF with Euler and no refractory period,
    conductance LIF with exponential Euler). Every case makes its post neurons fire (where
    they spike) and changes its weights over the run.
    """
    from plastinet.spiking import (
        LIF,
        PES,
        CoincidenceReward,
        ConductanceLIF,
        DopamineSTDP,
        InhibitorySTDP,
        ModulatedHebbian,
        ModulatorProbe,
        Network,
        PairSTDP,
        ProgrammedSignal,
        Projection,
        RateUnits,
        SpikeProbe,
        SpikeSignal,
        StateProbe,
        TripletSTDP,
        TsodyksMarkram,
        WeightProbe,
    )

    T = SPIKE_DURATION + 0.1

    def lif_net(rule, post_gen=False, stp=None, n_pre=30, rate=15.0, **proj):
        net = Network()
        pre = net.add(_generator("pre", n_pre, rate, T, 1))
        if post_gen:
            post = net.add(_generator("post", 4, 12.0, T, 2))
            kw = dict(target="none", weight=0.5, w_min=0.0, w_max=1.0)
        else:
            post = net.add(LIF(name="post", n=4, t_ref=0.002))
            kw = dict(target="I_e", weight=("uniform", 0.0, 1.2e-9), w_min=0.0, w_max=1.5e-9)
        kw.update(proj)
        net.add(Projection(name="syn", pre=pre, post=post, rule=rule, stp=stp, **kw))
        net.add(SpikeProbe(name="post_spikes", population="post"))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
        if not post_gen:
            net.add(StateProbe(name="V", population="post", variable="v", sample_every=0.1))
        return net

    g = 1.5e-9 * 0.01

    def pair(pairing, bound):
        amp = 0.01 if bound == "soft" else g
        return lambda: lif_net(PairSTDP(A_plus=amp, A_minus=1.05 * amp, pairing=pairing, bound=bound))

    def triplet(pairing):   # the full visual-cortex amplitudes scaled to the weights, explicit for both pairings
        return lambda: lif_net(TripletSTDP(pairing=pairing, A2_plus=5e-10 * 1.5e-9, A3_plus=6.2e-3 * 1.5e-9,
                                           A2_minus=7e-3 * 1.5e-9, A3_minus=2.3e-4 * 1.5e-9, tau_x=0.101,
                                           tau_y=0.125))

    def dopamine(convention="all_to_all"):
        net = Network()
        pre = net.add(_generator("pre", 30, 15.0, T, 3))
        post = net.add(LIF(name="post", n=3, t_ref=0.002))
        net.add(_generator("da_neurons", 2, 4.0, T, 4))
        net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.5, sources=("da_neurons",)))
        net.add(CoincidenceReward(name="reward", modulator="dopamine", pre="pre", post="post", pre_neuron=0,
                                  post_neuron=0, window=0.02, delay_min=0.05, delay_max=0.2, amount=2.0))
        rule = DopamineSTDP(A_plus=0.1 * g, A_minus=0.15 * g, tau_c=0.3, b=0.2, modulator="dopamine",
                            convention=convention)
        net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=("uniform", 0.0, 1.2e-9),
                           w_min=0.0, w_max=1.5e-9, rule=rule))
        net.add(SpikeProbe(name="post_spikes", population="post"))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
        net.add(ModulatorProbe(name="da", modulator="dopamine", sample_every=0.1))
        return net

    def dopamine_no_reward():
        net = dopamine()
        del net.rewards["reward"]
        return net

    def hebbian_rate():
        net = Network()
        pre = net.add(_generator("pre", 12, 20.0, T, 5))
        teach = net.add(_generator("teacher", 3, 30.0, T, 6))
        post = net.add(RateUnits(name="out", n=3, tau=0.02))
        net.add(ProgrammedSignal(name="beta", values=[0.0, 1.0, 0.5, 0.0, 2.0, 1.0], interval=0.2))
        net.add(Projection(name="teach", pre=teach, post=post, target="soma", weight=1.0,
                           connectivity=([0, 1, 2], [0, 1, 2])))
        net.add(Projection(name="syn", pre=pre, post=post, target="dend", weight=("uniform", 0.0, 0.1),
                           w_min=-1.0, w_max=1.0, rule=ModulatedHebbian(eta=1e-3, tau_pre=0.02,
                                                                         post_variable="soma")))
        net.add(StateProbe(name="r", population="out", variable="rate", sample_every=0.05))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.05))
        net.add(ModulatorProbe(name="m", modulator="beta", sample_every=0.05))
        return net

    def hebbian_spiking():
        net = Network()
        pre = net.add(_generator("pre", 20, 20.0, T, 7))
        post = net.add(LIF(name="post", n=3, t_ref=0.002))
        net.add(SpikeSignal(name="beta", tau=0.1, increment=1.0, sources=("mod_neurons",)))
        net.add(_generator("mod_neurons", 1, 5.0, T, 8))
        net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=("uniform", 0.0, 1.2e-9),
                           w_min=0.0, w_max=1.5e-9, connectivity=0.7,
                           rule=ModulatedHebbian(eta=1e-13, tau_pre=0.02, modulator="beta")))
        net.add(SpikeProbe(name="post_spikes", population="post"))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
        return net

    def pes():
        net = Network()
        pre = net.add(_generator("pre", 12, 20.0, T, 9))
        teach = net.add(_generator("teacher", 3, 30.0, T, 10))
        post = net.add(RateUnits(name="out", n=3, tau=0.02, inputs=("target", "pred")))
        net.add(ProgrammedSignal(name="beta", values=[1.0, 0.5, 0.0, 1.0], interval=0.3))
        net.add(Projection(name="teach", pre=teach, post=post, target="target", weight=1.0,
                           connectivity=([0, 1, 2], [0, 1, 2])))
        net.add(Projection(name="syn", pre=pre, post=post, target="pred", weight=0.0,
                           rule=PES(eta=2e-3, tau_pre=0.02, target_variable="target",
                                    prediction_variable="pred")))
        net.add(StateProbe(name="r", population="out", variable="pred", sample_every=0.05))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.05))
        return net

    def tm(tau_facil):
        def build():
            net = lif_net(PairSTDP(A_plus=g, A_minus=1.05 * g), stp=TsodyksMarkram(U=0.4, tau_rec=0.3,
                                                                                 tau_facil=tau_facil),
                          rate=25.0, weight=("uniform", 0.5e-9, 1.5e-9), w_min=0.0, w_max=2e-9)
            return net
        return build

    def conductance(method, t_ref):
        def build():
            net = Network()
            exc = net.add(_generator("exc", 60, 15.0, T, 11))
            inh = net.add(_generator("inh", 20, 10.0, T, 12))
            post = net.add(ConductanceLIF(name="post", n=3, method=method, t_ref=t_ref))
            net.add(Projection(name="syn", pre=exc, post=post, target="g_e", weight=("uniform", 0.0, 0.2),
                               w_min=0.0, w_max=0.25, rule=PairSTDP(A_plus=2e-3, A_minus=2.1e-3)))
            net.add(Projection(name="inh_syn", pre=inh, post=post, target="g_i", weight=0.05))
            net.add(SpikeProbe(name="post_spikes", population="post"))
            net.add(StateProbe(name="ge", population="post", variable="g_e", sample_every=0.1))
            net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
            return net
        return build

    def delayed_inputs():       # heterogeneous delays up to 20 ms on injected trains; one scalar delay
        net = lif_net(PairSTDP(A_plus=g, A_minus=1.05 * g), delay=("uniform", 0.0, 0.020))
        inh = net.add(_generator("inh", 10, 10.0, T, 13))
        net.add(Projection(name="inh_syn", pre=inh, post=net.populations["post"], target="I_i", weight=-0.3e-9,
                           delay=0.0035))
        return net

    def delayed_recurrent():    # a recurrent LIF network: delays on the recurrent pathway and its STDP
        net = Network()
        inp = net.add(_generator("inp", 40, 20.0, T, 14))
        exc = net.add(LIF(name="exc", n=30, t_ref=0.002))
        net.add(Projection(name="drive", pre=inp, post=exc, target="I_e", connectivity=0.3,
                           weight=("uniform", 0.0, 1.0e-9)))
        net.add(Projection(name="rec", pre=exc, post=exc, target="I_e", connectivity=0.2,
                           weight=("uniform", 0.0, 0.4e-9), w_min=0.0, w_max=0.6e-9, delay=("uniform", 0.001, 0.005),
                           rule=PairSTDP(A_plus=0.4e-11, A_minus=0.42e-11)))
        net.add(Projection(name="self_inh", pre=exc, post=exc, target="I_i", connectivity=0.1,
                           weight=-0.3e-9, delay=0.002))
        net.add(SpikeProbe(name="exc_spikes", population="exc"))
        net.add(WeightProbe(name="W", projection="rec", sample_every=0.1))
        net.add(StateProbe(name="V", population="exc", variable="v", indices=[0, 1, 2], sample_every=0.1))
        return net

    def dopamine_nearest():     # Izhikevich's daspnet.m trace convention
        net = dopamine("nearest")
        del net.rewards["reward"]
        return net

    def inhibitory_stdp():      # Vogels et al. 2011 on a conductance LIF with a background current
        net = Network()
        exc = net.add(_generator("exc", 40, 10.0, T, 15))
        inh = net.add(_generator("inh", 20, 12.0, T, 16))
        post = net.add(ConductanceLIF(name="post", n=3, tau_m=0.02, E_l=-0.060, v_thresh=-0.050, v_reset=-0.060,
                                      g_l=1e-8, i_ext=1.5e-10, t_ref=0.005))
        net.add(Projection(name="exc_syn", pre=exc, post=post, target="g_e", weight=("uniform", 0.0, 0.1)))
        net.add(Projection(name="inh_syn", pre=inh, post=post, target="g_i", weight=("uniform", 0.0, 0.3),
                           w_min=0.0, w_max=1.0, delay=("uniform", 0.0, 0.002),
                           rule=InhibitorySTDP(eta=0.01, tau=0.02, rho0=5.0)))
        net.add(SpikeProbe(name="post_spikes", population="post"))
        net.add(StateProbe(name="gi", population="post", variable="g_i", sample_every=0.1))
        net.add(WeightProbe(name="W", projection="inh_syn", sample_every=0.1))
        return net

    return {
        "pair_all_additive": pair("all", "additive"),
        "pair_nearest_additive": pair("nearest", "additive"),
        "pair_all_soft": pair("all", "soft"),
        "pair_nearest_soft": pair("nearest", "soft"),
        "pair_generators_only": lambda: lif_net(PairSTDP(A_plus=0.01, A_minus=0.0105), post_gen=True),
        "triplet_all": triplet("all"),
        "triplet_nearest": triplet("nearest"),
        "dopamine_stdp": dopamine_no_reward,
        "dopamine_stdp_reward": lambda: dopamine(),
        "modulated_hebbian_rate": hebbian_rate,
        "modulated_hebbian_spiking": hebbian_spiking,
        "pes": pes,
        "tsodyks_markram": tm(0.0),
        "tsodyks_markram_facilitation": tm(0.5),
        "conductance_lif_euler": conductance("euler", 0.0),
        "conductance_lif_exponential_euler": conductance("exponential_euler", 0.002),
        "dopamine_stdp_nearest": dopamine_nearest,
        "inhibitory_stdp": inhibitory_stdp,
        "delays_injected": delayed_inputs,
        "delays_recurrent": delayed_recurrent,
    }


#: Values closer to zero than this fraction of a variable's largest magnitude are compared
#: relative to that floor (a value produced by cancellation near 0 has no relative precision).
SPIKE_FLOOR = 1e-6


def _close(a: np.ndarray, b: np.ndarray, what: str) -> float:
    """Assert ``b`` equals ``a`` within SPIKE_RTOL relative; returns the max relative difference.

    Each value is compared relative to itself, or to ``SPIKE_FLOOR`` times the largest
    magnitude of the variable when it is smaller than that; non-finite values must match.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {b.shape} differs from the reference {a.shape}"
    if not a.size:
        return 0.0
    bad = ~np.isfinite(a)
    assert np.array_equal(a[bad], b[bad], equal_nan=True), f"{what}: non-finite values differ"
    a, b = a[~bad], b[~bad]
    if not a.size:
        return 0.0
    scale = max(float(np.max(np.abs(a))), 1e-300)
    err = np.abs(a - b) / np.maximum(np.abs(a), scale * SPIKE_FLOOR)
    worst = float(np.max(err))
    assert worst <= SPIKE_RTOL, f"{what}: max relative difference {worst:.3g} > {SPIKE_RTOL:g}"
    return worst


def compare_spiking(ref: Any, got: Any, case: str = "") -> dict[str, float]:
    """Compare two spiking Datasets: same variables, identical spikes, values within SPIKE_RTOL.

    Returns the max relative difference of every compared data variable.
    """
    missing = set(ref.variables) ^ set(got.variables)
    assert not missing, f"{case}: variables differ from the reference: {sorted(missing)}"
    for name in ref.variables:
        assert ref[name].dims == got[name].dims, f"{case}: dims of {name} {got[name].dims} != {ref[name].dims}"
        assert ref[name].attrs.get("units") == got[name].attrs.get("units"), f"{case}: units of {name} differ"
    for name in ("spike_time", "spike_neuron", "spike_population"):
        assert np.array_equal(ref[name].values, got[name].values), \
            f"{case}: {name} differs ({ref.sizes.get('spike', 0)} reference spikes, {got.sizes.get('spike', 0)} here)"
    out = {}
    for name in ref.data_vars:
        if name.startswith("spike_"):
            continue
        out[name] = _close(ref[name].values, got[name].values, f"{case}: {name}")
    for name in ref.coords:
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-12, atol=0,
                                   err_msg=f"{case}: coordinate {name}")
    return out


@functools.lru_cache(maxsize=None)
def _spiking_reference(case: str, seed: int) -> Any:
    return spiking_reference(spiking_cases()[case](), SPIKE_DURATION, 1e-4, seed)


def check_spiking_matches_reference(backend: Backend | str, case: str, seed: int = 0) -> dict[str, float]:
    """Spike times identical and weights/states within 1e-9 relative of the step-by-step reference (1 s).

    The reference (:func:`plastinet.testing.reference.spiking_reference`) steps the network
    in plain loops written in the check suite from the models' equations and the step-order
    contract; it is computed once per case and seed in a process.
    """
    be = _backend(backend)
    if not be.supports("spiking"):
        raise CapabilityMissing(f"backend {be.name!r} does not declare 'spiking'")
    got = _simulate(be, spiking_cases()[case](), SPIKE_DURATION, 1e-4, seed)
    assert got.attrs["backend"] == be.name, "the result's backend attr does not name the backend"
    for attr in ("backend_version", "dt", "seed", "model_spec"):
        assert attr in got.attrs, f"attr {attr!r} missing from the result"
    assert got.attrs["dt"] == 1e-4 and got.attrs["seed"] == seed
    return compare_spiking(_spiking_reference(case, seed), got, case)


#: Poisson check: ``n`` inputs at ``rate`` for ``duration`` (and the tolerance in standard deviations).
POISSON_N, POISSON_RATE, POISSON_DURATION, POISSON_SIGMAS = 100, 15.0, 0.5, 5.0


def check_spiking_seeded_poisson(backend: Backend | str, case: str = "song", seed: int = 3) -> None:
    """Poisson inputs: the same seed gives the same result twice; the input count is Poisson.

    The inputs fire ``n rate T`` spikes in expectation (standard deviation ``sqrt(n rate T)``
    for independent Bernoulli steps); the count must lie within :data:`POISSON_SIGMAS` of it.
    The result holds exactly the documented variables.
    """
    from plastinet.spiking import ConductanceLIF, Network, PairSTDP, PoissonGroup, Projection, SpikeProbe

    be = _backend(backend)
    if not be.supports("spiking"):
        raise CapabilityMissing(f"backend {be.name!r} does not declare 'spiking'")
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=POISSON_N, rate=POISSON_RATE))
    post = net.add(ConductanceLIF(name="post", n=1, method="euler"))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=("uniform", 0.0, 0.05),
                       w_min=0.0, w_max=0.05, rule=PairSTDP(A_plus=5e-4, A_minus=5.25e-4)))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(SpikeProbe(name="sp_in", population="inputs"))
    a = be.simulate(net, POISSON_DURATION, seed=seed)
    b = be.simulate(net, POISSON_DURATION, seed=seed)
    assert np.array_equal(a["w_syn"].values, b["w_syn"].values), "same seed, different weights"
    assert np.array_equal(a["spike_time"].values, b["spike_time"].values), "same seed, different spikes"
    assert set(a.variables) == {"spike_time", "spike_neuron", "spike_population", "w_syn", "syn_pre", "syn_post",
                                "time"}
    assert a["w_syn"].dims == ("syn_synapse",) and a["w_syn"].size == POISSON_N
    mean = POISSON_N * POISSON_RATE * POISSON_DURATION
    count = int(np.sum(a["spike_population"].values == "inputs"))
    assert abs(count - mean) <= POISSON_SIGMAS * np.sqrt(mean), \
        f"{count} input spikes, expected {mean:g} +- {POISSON_SIGMAS:g} sd ({np.sqrt(mean):.3g})"


#: Delay of :func:`check_delays_shift_transmission` (s): 3.04 ms, 30.4 steps of 0.1 ms, rounds to 30.
SHIFT_DELAY, SHIFT_STEPS = 0.00304, 30


def check_delays_shift_transmission(backend: Backend | str, case: str = "lif", seed: int = 0) -> None:
    """A delay of ``d`` steps shifts every post spike of a static feed-forward network by exactly ``d``.

    Injected trains drive LIF neurons through static synapses, once without and once with
    a delay of :data:`SHIFT_DELAY` s, which must round to :data:`SHIFT_STEPS` whole steps of
    0.1 ms: the post spike trains are then identical up to a shift of exactly that many steps,
    and a result with delays records how they were rounded (the ``delay_rounding`` attr).
    """
    from plastinet.spiking import LIF, Network, Projection, SpikeProbe

    be = _backend(backend)
    if not be.supports("spiking"):
        raise CapabilityMissing(f"backend {be.name!r} does not declare 'spiking'")
    dt, T = 1e-4, 0.5

    def build(delay: float) -> Any:
        net = Network()
        pre = net.add(_generator("pre", 20, 30.0, T, 21))
        post = net.add(LIF(name="post", n=3, t_ref=0.002))
        net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=("uniform", 0.0, 1.5e-9),
                           delay=delay))
        net.add(SpikeProbe(name="sp", population="post"))
        return net

    ref = _simulate(be, build(0.0), T, dt, seed)
    got = _simulate(be, build(SHIFT_DELAY), T + SHIFT_STEPS * dt, dt, seed)
    assert "delay_rounding" in got.attrs, "a result with delays must say how they were rounded (attr 'delay_rounding')"
    steps_ref = np.rint(ref["spike_time"].values / dt).astype(np.int64)
    steps = np.rint(got["spike_time"].values / dt).astype(np.int64)
    assert steps_ref.size > 10, "the undelayed network barely fires: the check lost its point"
    assert np.array_equal(steps, steps_ref + SHIFT_STEPS), \
        f"post spikes are not shifted by exactly {SHIFT_STEPS} steps ({steps_ref[:5]} -> {steps[:5]})"
    assert np.array_equal(got["spike_neuron"].values, ref["spike_neuron"].values)


# --------------------------------------------------------------------------------------
# neuron models against their own formulas
# --------------------------------------------------------------------------------------

#: Biological time (s) of the neuron-formula checks.
FORMULA_DURATION = 0.5
#: Cases whose potentials are compared with a looser relative tolerance (spike steps stay exact):
#: at 1 ms steps Izhikevich's quadratic membrane overshoots to ~1 V in the step before a reset,
#: where one step multiplies a rounding difference by ~100, and ``u`` carries it on; a backend
#: that evaluates the same formula in another order (Brian2 rewrites expressions) drifts by up
#: to ~2e-3 relative within 0.5 s while firing at the very same steps.
LOOSE_FORMULA_RTOL = {"izhikevich_half_steps_1ms": 1e-2}


def _one_neuron(pop: Any, drive: tuple[float, float] | None = None, dt: float = 1e-4) -> Any:
    """``pop`` alone (optionally driven by a regular train: (period s, weight)), spikes and v every ms."""
    from plastinet.spiking import Network, Projection, SpikeGenerator, SpikeProbe, StateProbe

    net = Network()
    net.add(pop)
    if drive is not None:
        period, weight = drive
        times = np.arange(0.0, FORMULA_DURATION + 0.01, period)
        gen = net.add(SpikeGenerator(name="drive", n=1, indices=np.zeros(times.size, dtype=int), times=times))
        net.add(Projection(name="drive_syn", pre=gen, post=pop, target=pop.targets[0], weight=weight))
    net.add(SpikeProbe(name="sp", population=pop.name))
    net.add(StateProbe(name="v", population=pop.name, variable="v", sample_every=0.001))
    return net


def _exponential_spike_steps(v0: float, v_inf: float, v_th: float, v_reset: float, tau: float, ref: int,
                             dt: float, n_steps: int) -> np.ndarray:
    """Steps of the threshold crossings of ``v -> v_inf`` relaxing exactly with ``tau`` from ``v0``.

    After ``k`` updates ``v = v_inf + (v0 - v_inf) exp(-k dt / tau)``, so the first spike is in
    step ``floor(T0 / dt)`` with ``T0 = tau ln((v_inf - v0) / (v_inf - v_th))``; after a spike
    ``v`` is held for ``ref`` steps and then relaxes from ``v_reset``: the intervals are
    ``ref + floor(T / dt) + 1`` steps, ``T = tau ln((v_inf - v_reset) / (v_inf - v_th))``.
    """
    first = math.floor(tau * math.log((v_inf - v0) / (v_inf - v_th)) / dt)
    isi = ref + math.floor(tau * math.log((v_inf - v_reset) / (v_inf - v_th)) / dt) + 1
    return np.arange(first, n_steps, isi)


def _izhikevich_loop(pop: Any, drive: tuple[float, float], dt: float, n_steps: int) -> tuple[list, list]:
    """Izhikevich's step as the spec states it, in Python floats: spikes and v at every ms.

    Each step integrates with the input of the previous step's drive spike (``w / dt``), then
    ``v >= v_peak`` spikes and resets (``v = c``, ``u += d``).
    """
    period, weight = drive
    every = int(round(period / dt))
    v = pop.c if pop.v_init is None else pop.v_init
    u = pop.b * v if pop.u_init is None else pop.u_init
    inp, spikes, vs = 0.0, [], []
    for n in range(n_steps):
        if pop.method == "half_steps":
            for _ in range(2):
                v = v + 0.5 * dt * (4e4 * v * v + 5e3 * v + 140.0 - u + inp)
            u = u + dt * pop.a * (pop.b * v - u)
        else:
            v, u = v + dt * (4e4 * v * v + 5e3 * v + 140.0 - u + inp), u + dt * pop.a * (pop.b * v - u)
        inp = weight / dt if n % every == 0 else 0.0     # the drive's spike of this step, used in the next
        if v >= pop.v_peak:
            spikes.append(n)
            v, u = pop.c, u + pop.d
        if n % int(round(0.001 / dt)) == 0:
            vs.append(v)
    return spikes, vs


def _adex_loop(pop: Any, dt: float, n_steps: int) -> tuple[list, list]:
    """AdEx by forward Euler (v held at V_reset for t_ref after a spike, w evolving), Python floats."""
    v = pop.E_L if pop.v_init is None else pop.v_init
    w, ref, hold_steps = pop.w_init, 0, int(round(pop.t_ref / dt))
    spikes, vs = [], []
    for n in range(n_steps):
        dv = (-pop.g_L * (v - pop.E_L) + pop.g_L * pop.Delta_T * math.exp((v - pop.V_T) / pop.Delta_T) - w
              + pop.i_ext) / pop.C
        w = w + dt * (pop.a * (v - pop.E_L) - w) / pop.tau_w
        held = ref > 0
        if held:
            ref -= 1
        else:
            v = v + dt * dv
        if v > pop.V_peak and not held:
            spikes.append(n)
            v, w, ref = pop.V_reset, w + pop.b, hold_steps
        if n % int(round(0.001 / dt)) == 0:
            vs.append(v)
    return spikes, vs


def neuron_cases() -> dict[str, Callable[[], tuple[Any, float, Callable[[int], tuple[Any, Any]]]]]:
    """Named one-neuron cases: ``() -> (network, dt, expected)`` with ``expected(n_steps)`` giving
    the spike steps and the potentials sampled every ms (None where only spikes are checked)."""
    from plastinet.spiking.network import LIF, AdEx, ConductanceLIF, Izhikevich

    def lif():
        pop = LIF(name="n", n=1, i_ext=0.25e-9, t_ref=0.002)
        v_inf, dt = pop.v_rest + pop.r_m * pop.i_ext, 1e-4

        def expected(n):
            steps = _exponential_spike_steps(pop.v_rest, v_inf, pop.v_thresh, pop.v_reset, pop.tau_m, 20, dt, n)
            t = np.arange(0, steps[0], 10)          # samples before the first spike
            return steps, (t // 10, v_inf + (pop.v_rest - v_inf) * np.exp(-(t + 1) * dt / pop.tau_m))
        return _one_neuron(pop), dt, expected

    def relaxation(method):
        def build():
            pop = ConductanceLIF(name="n", n=1, method=method, v_init=-0.056)
            dt = 1e-4

            def expected(n):
                t = np.arange(0, n, 10)
                k = dt / pop.tau_m
                factor = (1.0 - k) ** (t + 1) if method == "euler" else np.exp(-(t + 1) * k)
                return np.zeros(0, dtype=np.int64), (t // 10, pop.E_l + (pop.v_init - pop.E_l) * factor)
            return _one_neuron(pop), dt, expected
        return build

    def background():        # Vogels et al. 2011's cell: 200 pA over 10 nS lifts E_l = -60 mV by 20 mV
        pop = ConductanceLIF(name="n", n=1, tau_m=0.02, E_l=-0.060, v_thresh=-0.050, v_reset=-0.060, g_l=1e-8,
                             i_ext=2e-10, t_ref=0.005)
        v_inf, dt = pop.E_l + pop.i_ext / pop.g_l, 1e-4
        return _one_neuron(pop), dt, lambda n: (_exponential_spike_steps(pop.E_l, v_inf, pop.v_thresh, pop.v_reset,
                                                                         pop.tau_m, 50, dt, n), None)

    def izhikevich(method, dt):
        def build():
            pop = Izhikevich(name="n", n=1, a="0.02/ms", b="0.2/ms", c="-65 mV", d="8 mV/ms", method=method)
            drive = (0.001, 0.010)          # 10 mV each ms: Izhikevich's I = 10 on average
            return _one_neuron(pop, drive, dt), dt, lambda n: _samples(_izhikevich_loop(pop, drive, dt, n))
        return build

    def adex():
        pop = AdEx(name="n", n=1, i_ext=0.8e-9, t_ref=0.0005)
        return _one_neuron(pop), 1e-4, lambda n: _samples(_adex_loop(pop, 1e-4, n))

    return {"lif_constant_current": lif, "conductance_lif_euler_relaxation": relaxation("euler"),
            "conductance_lif_exponential_euler_relaxation": relaxation("exponential_euler"),
            "conductance_lif_background_current": background,
            "izhikevich_half_steps_1ms": izhikevich("half_steps", 1e-3), "izhikevich_euler": izhikevich("euler", 1e-4),
            "adex": adex}


def _samples(loop: tuple[list, list]) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    spikes, vs = loop
    return np.asarray(spikes, dtype=np.int64), (np.arange(len(vs)), np.asarray(vs))


def check_neuron_formula(backend: Backend | str, case: str, seed: int = 0) -> None:
    """One neuron against its model's own formula: identical spike steps, potentials within 1e-9.

    Closed forms (LIF under a constant current, conductance LIF relaxing with Euler and
    exponential Euler, with a background current) or the model's integration scheme written
    out in this suite (Izhikevich, both schemes; AdEx), never an engine.
    """
    be = _backend(backend)
    if not be.supports("spiking"):
        raise CapabilityMissing(f"backend {be.name!r} does not declare 'spiking'")
    net, dt, expected = neuron_cases()[case]()
    n_steps = int(round(FORMULA_DURATION / dt))
    got = _simulate(be, net, FORMULA_DURATION, dt, seed)
    steps_want, v_want = expected(n_steps)
    steps = np.rint(got["spike_time"].values / dt).astype(np.int64)
    assert np.array_equal(steps, steps_want), \
        f"{case}: spike steps {steps[:6]} ({steps.size}) differ from the formula's {steps_want[:6]} ({steps_want.size})"
    if v_want is not None:
        idx, values = v_want
        if case in LOOSE_FORMULA_RTOL:
            np.testing.assert_allclose(got["v"].values[idx, 0], values, rtol=LOOSE_FORMULA_RTOL[case],
                                       err_msg=f"{case}: v")
        else:
            _close(values, got["v"].values[idx, 0], f"{case}: v")


def _simulate(be: Backend, net: Any, duration: float, dt: float, seed: int) -> Any:
    """``be.simulate`` with features the backend refuses reported as a missing capability."""
    reason = getattr(be, "unsupported", lambda n: None)(net)
    if reason:
        raise CapabilityMissing(f"backend {be.name!r}: {reason}")
    try:
        return be.simulate(net, duration, dt=dt, seed=seed)
    except UnsupportedError as err:
        raise CapabilityMissing(f"backend {be.name!r}: {err}") from None


CHECKS += [
    (check_spiking_matches_reference, list(spiking_cases())),
    (check_delays_shift_transmission, ["lif"]),
    (check_neuron_formula, list(neuron_cases())),
    (check_spiking_seeded_poisson, ["song"]),
]
